"""dYdX v4 (``--venue dydx_v4``): every dYdX worked example of ../shared/specs/vectors.json
through the functions a run calls, one test case per vector, and the venue's table, liquidation
price and fill price.

Through the venue: the full-close bankruptcy vectors of one position (``bankruptcy_price``, per
unit, times the size) and the fillable-price vectors (``liquidation_fill_price``, the pool's
margin ratio ``TMMR/TNC``). The partial and multi-position bankruptcy quotes, the funding index
and the open-interest IMF go through the module's functions (a run holds no such state).
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from backtest.venues import dydx_v4 as dy
from backtest.venues.base import Leg, get_venue
from backtest.venues.catalog import day_ms
from tests.vector_cases import assert_vector, load_vectors, vector_params
from tests.venues.vector_eval import evaluate, within_tolerance

VENUE = get_venue("dydx_v4")


def _one_position(inputs: dict[str, Any]) -> tuple[int, float, float, float, float]:
    (p,) = inputs["positions"]
    size, price = float(p["size"]), float(p["price"])
    tnc = float(inputs["usdc"]) + size * price
    return (1 if size > 0 else -1), abs(size), price, float(p["mmf"]), tnc


def _bankruptcy(vector: dict[str, Any]) -> float:
    inputs = vector["inputs"]
    full = len(inputs["positions"]) == 1 and \
        Fraction(inputs["delta_size"]) == -Fraction(inputs["positions"][0]["size"])
    if not full:
        return evaluate(vector)  # dydx_v4.bankruptcy_quote
    side, qty, price, _, tnc = _one_position(inputs)
    per_unit = VENUE.bankruptcy_price(wallet_balance=tnc, side=side, qty=qty, entry_price=price)
    return side * per_unit * qty  # the quote the closing order receives (+) or pays (-)


def _fillable(vector: dict[str, Any]) -> float:
    inputs = vector["inputs"]
    side, _, price, mmf, tnc = _one_position(inputs)
    return VENUE.liquidation_fill_price(
        side=side, mark_price=price, mmr=mmf, margin_ratio=qty_mm(inputs) / tnc,
        market_price=math.nan, bankruptcy_adjustment_ppm=inputs["bankruptcy_adjustment_ppm"],
        spread_to_mmr_ppm=inputs["spread_to_mmr_ppm"])


def qty_mm(inputs: dict[str, Any]) -> float:
    """TMMR of the vector's subaccount, USDC."""
    return sum(abs(float(p["size"])) * float(p["price"]) * float(p["mmf"])
               for p in inputs["positions"])


def _evaluate(vector: dict[str, Any]) -> Any:
    if vector["formula"] == "dydx_bankruptcy_quote":
        return _bankruptcy(vector)
    if vector["formula"] == "dydx_fillable_price":
        return _fillable(vector)
    return evaluate(vector)  # funding index, OIMF: dydx_v4's functions


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", vector_params({"dydx_v4"}))
def test_dydx_vector_through_the_venue(vector_id: str, shared_dir: Path) -> None:
    assert_vector(load_vectors(shared_dir)[vector_id], _evaluate, within_tolerance)


@pytest.mark.shared
def test_fifteen_dydx_vectors(shared_dir: Path) -> None:
    assert sum(v["venue"] == "dydx_v4" for v in load_vectors(shared_dir).values()) == 15


@pytest.mark.parametrize("symbol", ["BTC/USDT:USDT", "ETH/USDT:USDT"])
def test_table_is_the_genesis_large_cap_tier(symbol: str) -> None:
    (row,) = VENUE.tier_schedule(symbol).at(day_ms("2024-06-01")).tiers
    tier = dy.GENESIS_TIERS["large_cap"]
    assert row.mmr == tier.mmf and row.max_leverage == pytest.approx(1.0 / tier.imf)
    assert row.cum == 0.0


def test_liquidation_price_is_where_tnc_meets_mmr() -> None:
    """1 BTC long at 40,000 on 4,000 USDC: 4,000 + (P - 40,000) = 1.2 % P -> P = 36,000/0.988."""
    leg = Leg(1, 1.0, 40_000.0, 0.012, 0.0)
    price = VENUE.liquidation_price(wallet_balance=4_000.0, both=leg)
    assert price == pytest.approx(36_000.0 / 0.988, rel=1e-9)
    account = dy.Subaccount(usdc=4_000.0 - 40_000.0, positions=(dy.Position(1.0, price, 0.012),))
    risk = dy.risk(account)
    assert risk.tnc == pytest.approx(risk.mmr, abs=1e-5)


def test_short_liquidation_price() -> None:
    leg = Leg(-1, 2.0, 3_000.0, 0.012, 0.0)
    price = VENUE.liquidation_price(wallet_balance=600.0, both=leg)
    # 600 - 2 (P - 3,000) = 0.024 P -> P = 6,600 / 2.024
    assert price == pytest.approx(6_600.0 / 2.024, rel=1e-9)


def test_fill_price_at_the_trigger_is_the_oracle_and_worse_after_a_gap() -> None:
    at_trigger = VENUE.liquidation_fill_price(side=1, mark_price=36_000.0, mmr=0.012,
                                              margin_ratio=1.0, market_price=35_000.0)
    assert at_trigger == pytest.approx(36_000.0)
    gone = VENUE.liquidation_fill_price(side=1, mark_price=36_000.0, mmr=0.012,
                                        margin_ratio=math.inf, market_price=35_000.0)
    assert gone == pytest.approx(36_000.0 * (1 - 1.5 * 0.012))  # ABR 1, SMMR 150 %
    short = VENUE.liquidation_fill_price(side=-1, mark_price=36_000.0, mmr=0.012,
                                         margin_ratio=2.0, market_price=0.0)
    assert short == pytest.approx(36_000.0 * (1 + 0.5 * 1.5 * 0.012))


def test_clearance_fee_is_the_max_liquidation_fee() -> None:
    spec = VENUE.market("BTC/USDT:USDT", day_ms("2024-06-01"))
    assert spec.liquidation_fee_rate == 15_000 / 1_000_000 and spec.settle == "USDC"


@pytest.mark.parametrize(("side", "qty", "entry", "tnc"), [
    (1, 0.1, 50_000.0, 499.0), (-1, 0.1, 50_000.0, 499.0), (1, 2.5, 3_123.4, 777.77),
    (-1, 0.37, 61_234.5, 1_234.56)])
def test_run_bankruptcy_is_the_ported_full_close_quote(side: int, qty: float, entry: float,
                                                       tnc: float) -> None:
    account = dy.Subaccount(usdc=tnc - side * qty * entry,
                            positions=(dy.Position(side * qty, entry, 0.012),))
    quote = dy.bankruptcy_quote(account, target=0, delta_size=-side * qty)
    per_unit = VENUE.bankruptcy_price(wallet_balance=tnc, side=side, qty=qty, entry_price=entry)
    assert side * per_unit * qty == pytest.approx(quote, abs=2e-6)


def test_data_file_states_the_hourly_funding() -> None:
    import tomllib
    from importlib import resources

    text = resources.files("backtest.venues").joinpath("data", "dydx_v4.toml").read_text("utf-8")
    assert tomllib.loads(text)["venue"]["funding_interval_hours"] == 1
    # one settlement's rate over its hour: -size x oracle x rate
    assert VENUE.funding_payment(signed_qty=-2.0, mark_price=3_000.0, rate=0.0001) == \
        pytest.approx(0.6)
