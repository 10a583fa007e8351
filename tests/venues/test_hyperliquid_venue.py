"""Hyperliquid (``--venue hyperliquid``): every Hyperliquid worked example of
../shared/specs/vectors.json through the functions a run calls, one test case per vector, and
the venue's tables, liquidation plan (20 % slice / backstop) and funding.

The liquidation prices go through ``get_venue("hyperliquid").liquidation_price`` with the
position's maintenance rate ``1/(2 x max leverage)`` in its leg (what a run's tier table
gives); the funding-rate example through :func:`hyperliquid.premium_clamp_funding` (a run
reads its funding rates from the data).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backtest.venues import hyperliquid as hl
from backtest.venues.base import Leg, get_venue
from backtest.venues.catalog import day_ms
from backtest.venues.tiers import TierTable
from tests.vector_cases import assert_vector, load_vectors, vector_params
from tests.venues.vector_eval import evaluate, within_tolerance

VENUE = get_venue("hyperliquid")
SIDES = {"long": 1, "short": -1}


def _liq_price(inputs: dict[str, Any]) -> float:
    leg = Leg(SIDES[inputs["side"]], inputs["size"], inputs["entry_price"],
              hl.maintenance_rate(inputs["max_leverage"]), 0.0)
    formulas = VENUE.formulas(None)
    return formulas.liquidation_price(wallet_balance=inputs["margin"], both=leg)


def _evaluate(vector: dict[str, Any]) -> Any:
    if vector["formula"] == "hyperliquid_liq_price":
        return _liq_price(vector["inputs"])
    return evaluate(vector)  # premium_clamp_funding: hyperliquid.premium_clamp_funding


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", vector_params({"hyperliquid"}))
def test_hyperliquid_vector_through_the_venue(vector_id: str, shared_dir: Path) -> None:
    assert_vector(load_vectors(shared_dir)[vector_id], _evaluate, within_tolerance)


@pytest.mark.shared
def test_ten_hyperliquid_vectors(shared_dir: Path) -> None:
    assert sum(v["venue"] == "hyperliquid" for v in load_vectors(shared_dir).values()) == 10


@pytest.mark.parametrize("symbol", ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT",
                                    "DOGE/USDT:USDT"])
def test_every_table_row_is_half_the_initial_margin_at_max_leverage(symbol: str) -> None:
    """The data file's rows follow [TIERS]: MMR = 1/(2 x max leverage), deduction by recursion."""
    for _, table in VENUE.tier_schedule(symbol).versions:
        rebuilt = hl.margin_table_from_leverage([(t.floor, t.max_leverage) for t in table])
        for row, rule in zip(table, rebuilt):
            assert row.mmr == pytest.approx(rule.mmr, rel=1e-12)
            assert row.cum == pytest.approx(rule.cum, rel=1e-9, abs=1e-6)


def test_rulebook_reads_the_same_tables_as_the_venue() -> None:
    t = day_ms("2025-06-01")
    assert hl.RULEBOOK.margin_table("BTC", t) is VENUE.tier_schedule("BTC/USDT:USDT").at(t)
    assert hl.margin_table("ETH/USDC:USDC", t).tiers[0].max_leverage == 25.0


def test_tiered_price_in_the_second_tier() -> None:
    """200M USDC of BTC at 40x: the resolved price uses the >150M tier's rate and deduction."""
    table = VENUE.tier_schedule("BTC/USDT:USDT").at(day_ms("2025-06-01"))
    leg = Leg(1, 2_000.0, 100_000.0)
    got = VENUE.liquidation_price_resolved(wallet_balance=20_000_000.0, tiers=table, both=leg)
    tier = table.tiers[1]
    # 20M + 2,000 (P - 100,000) = 2,000 P x 2.5 % - 1.875M
    expected = (20_000_000.0 - 200_000_000.0 + tier.cum) / (2_000.0 * (tier.mmr - 1.0))
    assert got == pytest.approx(expected)
    assert table.index_for(2_000.0 * got) == 1


def _table() -> TierTable:
    return VENUE.tier_schedule("BTC/USDT:USDT").at(day_ms("2025-06-01"))


def test_plan_small_position_goes_whole_to_the_book() -> None:
    plan = VENUE.liquidation_procedure(mode="tier_down", qty=1.0, mark_price=50_000.0,
                                       bankruptcy_price=45_000.0, margin_balance=620.0,
                                       tiers=_table(), clearance_rate=0.0)
    assert [(s.qty, s.kind) for s in plan.steps] == [(1.0, "takeover")] and plan.takeover


def test_plan_large_position_sends_a_20_percent_slice() -> None:
    """4 BTC at 50,000 = 200k USDC > 100k: 0.8 BTC first; the rest waits for the re-check."""
    mm = 200_000.0 * 0.0125
    plan = VENUE.liquidation_procedure(mode="tier_down", qty=4.0, mark_price=50_000.0,
                                       bankruptcy_price=45_000.0, margin_balance=mm * 0.9,
                                       tiers=_table(), clearance_rate=0.0)
    assert [(s.qty, s.kind) for s in plan.steps] == [(pytest.approx(0.8), "partial")]
    assert plan.remainder == pytest.approx(3.2) and not plan.takeover


def test_plan_below_two_thirds_of_maintenance_is_the_backstop() -> None:
    mm = 200_000.0 * 0.0125
    plan = VENUE.liquidation_procedure(mode="tier_down", qty=4.0, mark_price=50_000.0,
                                       bankruptcy_price=45_000.0, margin_balance=mm * 0.6,
                                       tiers=_table(), clearance_rate=0.0)
    assert plan.takeover and [(s.qty, s.kind) for s in plan.steps] == [(4.0, "takeover")]
    assert hl.liquidation_plan(qty=4.0, mark_price=50_000.0, margin_balance=mm * 0.6,
                               tiers=_table()).kind == "backstop"


def test_hourly_funding_uses_the_rate_as_given() -> None:
    """1 BTC long at 60,000 and an hourly rate of 0.00125 % pays 0.75 USDC."""
    assert VENUE.funding_payment(signed_qty=1.0, mark_price=60_000.0,
                                 rate=0.0000125) == pytest.approx(-0.75)


def test_market_spec_is_usdc_margined() -> None:
    spec = VENUE.market("BTC/USDT:USDT", day_ms("2025-06-01"))
    assert (spec.settle, spec.contract_type, spec.liquidation_fee_rate) == ("USDC", "linear", 0.0)
    assert (spec.maker_fee, spec.taker_fee) == (0.0001, 0.00035)


def test_data_file_states_the_hourly_funding() -> None:
    import tomllib
    from importlib import resources

    text = resources.files("backtest.venues").joinpath("data", "hyperliquid.toml").read_text("utf-8")
    assert tomllib.loads(text)["venue"]["funding_interval_hours"] == 1
    assert VENUE.position_modes == ("one_way",) and VENUE.max_open_orders == 1000
