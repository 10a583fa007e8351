"""Bybit's worked examples through the registered venues ``bybit_linear`` / ``bybit_inverse``.

Each Bybit vector of ../shared/specs/vectors.json is its own case, evaluated with the functions
the engine calls: ``get_venue(...).formulas(contract)`` (liquidation and bankruptcy prices),
``maintenance_margin`` and ``initial_margin`` of the :class:`Venue`, the tier table the engine
looks brackets up in. Plus the protocol's edges (contract kind, tier at the entry value, the
risk-limit step-down plan).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from backtest.contracts import InverseContract, LinearContract
from backtest.venues import bybit
from backtest.venues.base import Leg, get_venue
from backtest.venues.errors import VenueError
from backtest.venues.rounding import round_price
from backtest.venues.tiers import Tier, TierTable
from tests.vector_cases import assert_vector, load_vectors, vector_params
from tests.venues.vector_eval import within_tolerance

SIDES = {"long": 1, "short": -1}
LINEAR = get_venue("bybit_linear")
INVERSE = get_venue("bybit_inverse")
USDT = LinearContract("USDT", 1.0)


def _isolated_lp(inputs: dict[str, Any]) -> float:
    """Isolated LP through the engine's pool formula: the wallet is IM + extra margin."""
    size = inputs.get("amount", 1.0)
    entry = inputs["entry_price"]
    wallet = size * entry / inputs["leverage"] + inputs.get("extra_margin", 0.0)
    leg = Leg(SIDES[inputs["side"]], size, entry, inputs["mmr"], inputs.get("mm_deduction", 0.0))
    return LINEAR.formulas(USDT).liquidation_price(wallet_balance=wallet, both=leg)


def _bankruptcy_linear(inputs: dict[str, Any]) -> float:
    entry = inputs["entry_price"]
    return LINEAR.formulas(USDT).bankruptcy_price(
        wallet_balance=entry / inputs["leverage"], side=SIDES[inputs["side"]], qty=1.0,
        entry_price=entry)


def _progressive_mm(inputs: dict[str, Any]) -> float:
    total = 0.0
    for item in inputs["items"]:
        table = TierTable.from_rates([tuple(t) for t in item["tiers"]], label=item["asset"])
        total += LINEAR.maintenance_margin(item["value"], table.for_notional(item["value"]))
    return total


def _inverse_cross(inputs: dict[str, Any]) -> float:
    contract = InverseContract("BTC", 1.0)
    formulas = INVERSE.formulas(contract)
    available = inputs["account_balance"] - inputs["order_margin"]
    fee = inputs["taker_fee"]
    if inputs["output"] == "bankruptcy_price":
        return formulas.bankruptcy_price(wallet_balance=available, side=1,
                                         qty=inputs["contracts"], entry_price=inputs["entry_price"],
                                         fee_to_close=fee)
    leg = Leg(1, inputs["contracts"], inputs["entry_price"], inputs["mmr"], 0.0)
    price = formulas.liquidation_price(wallet_balance=available, both=leg, fee_to_close=fee)
    mode = {"ceil": "up", "floor": "down"}[inputs["tick_rounding"]]
    return round_price(price, tick=inputs["tick"], mode=mode)


def _inverse_im(inputs: dict[str, Any]) -> float:
    contract = InverseContract("BTC", inputs["contract_size_usd"])
    return INVERSE.initial_margin(contract.notional(inputs["contracts"], inputs["price"]),
                                  inputs["leverage"])


EVALUATORS = {
    "isolated_margin_liq_price": _isolated_lp,
    "isolated_rate_liq_price": _isolated_lp,
    "isolated_bankruptcy_linear": _bankruptcy_linear,
    "tiered_progressive_sum": _progressive_mm,
    "bybit_inverse_cross": _inverse_cross,
    "inverse_initial_margin": _inverse_im,
}


@pytest.fixture(scope="module")
def vectors(shared_dir: Path) -> dict[str, dict[str, Any]]:
    return load_vectors(shared_dir)


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", vector_params({"bybit"}))
def test_bybit_vector_through_the_venue(vector_id: str, vectors: dict[str, dict[str, Any]]) -> None:
    vector = vectors[vector_id]
    assert_vector(vector, lambda v: EVALUATORS[v["formula"]](v["inputs"]), within_tolerance)


@pytest.mark.shared
def test_every_bybit_formula_has_a_venue_evaluator(vectors: dict[str, dict[str, Any]]) -> None:
    formulas = {v["formula"] for v in vectors.values() if v["venue"] == "bybit"}
    assert formulas and formulas <= set(EVALUATORS), formulas - set(EVALUATORS)


def test_liquidation_price_takes_the_risk_limit_of_the_entry_value() -> None:
    """The engine's resolver: tier by Q*EP, not by the notional at the LP (Bybit classic)."""
    tiers = TierTable([Tier(0.0, 5_000.0, 100.0, 0.01, 0.0),
                       Tier(5_000.0, 1e6, 10.0, 0.05, 200.0)], label="two limits")
    formulas = LINEAR.formulas(USDT)
    assert formulas.brackets_at_entry
    leg = Leg(1, 200.0, 100.0)  # entry value 20,000: tier 2; LP notional 10,800 also tier 2
    lp = formulas.liquidation_price_resolved(wallet_balance=10_000.0, tiers=tiers, both=leg)
    assert lp == pytest.approx(100.0 - (10_000.0 - (20_000 * 0.05 - 200.0)) / 200.0)
    # 60 units @ 100 at 2x: entry value 6,000 (tier 2), LP ~ 51.7 where the notional ~3,100 is
    # in tier 1; Bybit keeps the entry value's tier 2
    small = Leg(1, 60.0, 100.0)
    lp2 = formulas.liquidation_price_resolved(wallet_balance=3_000.0, tiers=tiers, both=small)
    mm_entry = 6_000.0 * 0.05 - 200.0
    assert lp2 == pytest.approx(100.0 - (3_000.0 - mm_entry) / 60.0)
    assert tiers.index_for(60.0 * lp2) == 0  # the Binance rule would have re-solved in tier 1


def test_short_and_hedged_legs() -> None:
    formulas = LINEAR.formulas(USDT)
    short = formulas.liquidation_price(wallet_balance=100.0, both=Leg(-1, 1.0, 1_000.0, 0.01, 0.0))
    assert short == pytest.approx(1_000.0 + (100.0 - 10.0))
    hedged = formulas.liquidation_price(wallet_balance=100.0, long=Leg(1, 1.0, 1_000.0, 0.01),
                                        short=Leg(-1, 1.0, 1_000.0, 0.01))
    assert math.isnan(hedged)


def test_inverse_short_and_isolated_form() -> None:
    """UTA isolated inverse: LP(short) = Q / [PV - (IM - MM)] (§3.3)."""
    formulas = INVERSE.formulas(InverseContract("BTC", 1.0))
    q, ep, lev, mmr = 10_000.0, 8_000.0, 20.0, 0.005
    pv = q / ep
    im, mm = pv / lev, pv * mmr
    short = formulas.liquidation_price(wallet_balance=im, both=Leg(-1, q, ep, mmr, 0.0))
    assert short == pytest.approx(q / (pv - (im - mm)), rel=1e-12)
    long = formulas.liquidation_price(wallet_balance=im, both=Leg(1, q, ep, mmr, 0.0))
    assert long == pytest.approx(q / (pv + (im - mm)), rel=1e-12)
    # short bankruptcy with the fee reserved: zero equity after the fee to close
    bp = formulas.bankruptcy_price(wallet_balance=0.5, side=-1, qty=q, entry_price=ep,
                                   fee_to_close=0.00075)
    assert bp == pytest.approx(bybit.inverse_cross_bankruptcy_price(
        side=-1, contracts=q, entry_price=ep, available_balance=0.5, taker_fee=0.00075))
    # funding in coin: a long pays Q/mark*rate
    assert formulas.funding_payment(signed_qty=q, mark_price=10_000.0, rate=0.0001) == \
        pytest.approx(-q / 10_000.0 * 0.0001)


def test_each_venue_refuses_the_other_contract_kind() -> None:
    with pytest.raises(VenueError, match="bybit_inverse"):
        LINEAR.formulas(InverseContract("BTC", 1.0))
    with pytest.raises(VenueError, match="bybit_linear"):
        INVERSE.formulas(USDT)


def test_risk_limit_step_down_plan() -> None:
    """Bybit lowers the risk limit by closing to just below each lower limit, at the mark."""
    tiers = TierTable([Tier(0.0, 5_000.0, 100.0, 0.01, 0.0), Tier(5_000.0, 10_000.0, 20.0, 0.02, 50.0),
                       Tier(10_000.0, 1e6, 10.0, 0.05, 350.0)], label="three limits")
    plan = LINEAR.liquidation_procedure(mode="tier_down", qty=300.0, mark_price=50.0,
                                        bankruptcy_price=45.0, margin_balance=400.0, tiers=tiers,
                                        clearance_rate=0.0)
    # 15,000 -> just below 10,000 (tier 2 needs 200 - 50 = 150 < 400: compliant at once)
    assert [s.kind for s in plan.steps] == ["tier_down"]
    assert plan.steps[0].qty == pytest.approx(300.0 - 10_000.0 / 50.0 * (1 - 1e-9))
    assert not plan.takeover
    # a balance too small for tier 1: both steps, then the takeover at the bankruptcy price
    plan = LINEAR.liquidation_procedure(mode="tier_down", qty=300.0, mark_price=50.0,
                                        bankruptcy_price=45.0, margin_balance=40.0, tiers=tiers,
                                        clearance_rate=0.0)
    assert [s.kind for s in plan.steps] == ["tier_down", "tier_down", "takeover"]
    assert plan.steps[-1].price == 45.0 and plan.takeover


def test_registry_data_and_manifest_sources() -> None:
    assert get_venue("bybit") is LINEAR
    assert LINEAR.tier_schedule("BTC/USDT:USDT").at(1_700_000_000_000).tiers[1].cum == 1_200.0
    assert INVERSE.market("BTC/USD:BTC").contract_size == 1.0
    assert LINEAR.max_open_orders == 500 and LINEAR.max_stop_orders == 10
    for venue in (LINEAR, INVERSE):
        assert venue.describe()["rule_versions"]["liquidation_price"].startswith("https://")


def test_one_leg_resolver_is_the_general_formula_at_the_entry_tier() -> None:
    """The resolver's one-leg shortcut gives the very float of the general path."""
    import random

    tiers = TierTable([Tier(0.0, 5_000.0, 100.0, 0.01, 0.0),
                       Tier(5_000.0, 1e6, 10.0, 0.05, 200.0)], label="two limits")
    rng = random.Random(7)
    for _ in range(500):
        leg = Leg(rng.choice([1, -1]), rng.uniform(0.1, 300.0), rng.uniform(10.0, 200.0))
        kw = dict(wallet_balance=rng.uniform(-100.0, 5_000.0), other_maintenance=rng.uniform(0, 50),
                  other_unrealized=rng.uniform(-50.0, 50.0))
        fast = bybit.liquidation_price_linear_resolved(tiers=tiers, both=leg, **kw)
        general = bybit.liquidation_price_linear(
            both=leg.with_tier(tiers.for_notional(leg.qty * leg.entry_price)), **kw)
        assert fast == general
