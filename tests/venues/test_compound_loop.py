"""Compound v3 as a venue (``--venue compound_v3``): the loop's formulas against the protocol
module :mod:`backtest.lending.compound_v3` (the data file's derived bracket and fee pinned to
the asset's factors; maintenance and the liquidation price against ``is_liquidatable``;
``absorb`` with the arithmetic written in)."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtest.lending import compound_v3 as comet
from backtest.venues import compound_loop as loop
from backtest.venues.base import LONG, SHORT, Leg, get_venue
from backtest.venues.catalog import venue_catalog
from backtest.venues.defaults import clearance_fee_rate, default_tier_schedule
from backtest.venues.errors import VenueError

VENUE = get_venue("compound_v3")
ETH, BTC = "ETH/USDT:USDT", "BTC/USDT:USDT"
T = 1_704_067_200_000


def _table(symbol: str = ETH):
    return default_tier_schedule("compound_v3", symbol).at(T)


@pytest.mark.parametrize("symbol", [ETH, BTC])
def test_the_data_files_bracket_and_fee_are_the_assets_factors(symbol: str) -> None:
    asset = loop.parameters().asset(symbol)
    (tier,) = _table(symbol).tiers
    assert tier.mmr == 1.0 - asset.liquidate_collateral_factor
    assert tier.max_leverage == 1.0 / (1.0 - asset.borrow_collateral_factor)
    assert clearance_fee_rate("compound_v3", symbol, T) == 1.0 - asset.liquidation_factor


def test_weth_factors_are_the_ones_the_lending_population_uses() -> None:
    from backtest.lending.population import PROTOCOL_DEFAULTS

    asset = loop.parameters().asset(ETH)
    liquidate_cf, _ = PROTOCOL_DEFAULTS["compound_v3"]  # its bonus 1.05 rounds 1/0.95
    assert asset.liquidate_collateral_factor == liquidate_cf


@given(qty=st.floats(0.01, 1e4), price=st.floats(10.0, 1e5), ltv=st.floats(0.01, 0.99))
def test_maintenance_is_the_liquidatable_line(qty: float, price: float, ltv: float) -> None:
    (tier,) = _table().tiers
    asset = loop.parameters().asset(ETH)
    value, debt = qty * price, qty * price * ltv
    gap = (value - debt) - loop.maintenance_margin(value, tier)
    assert gap == pytest.approx(value * asset.liquidate_collateral_factor - debt, rel=1e-9, abs=1e-9 * value)
    if abs(gap) > 1e-7 * value:
        assert (gap < 0) == comet.is_liquidatable(base_balance=-debt, base_price=1.0,
                                                  holdings=[comet.Holding(asset, qty, price)])


def test_liquidation_price_and_leverage_cap() -> None:
    (tier,) = _table().tiers
    leg = Leg(LONG, 10.0, 2_000.0, tier.mmr, 0.0)
    lp = VENUE.liquidation_price(wallet_balance=5_000.0, both=leg)  # debt 15,000
    assert lp == pytest.approx(15_000.0 / (10.0 * 0.90), rel=1e-12)
    asset = loop.parameters().asset(ETH)
    # at the cap 1/(1 - 0.83) the borrow is exactly collateralized
    equity = 1_000.0
    value = equity * tier.max_leverage
    holdings = [comet.Holding(asset, value / 2_000.0, 2_000.0)]
    assert comet.is_borrow_collateralized(base_balance=-(value - equity) * (1 - 1e-9), base_price=1.0,
                                          holdings=holdings)
    assert not comet.is_borrow_collateralized(base_balance=-(value - equity) * (1 + 1e-6), base_price=1.0,
                                              holdings=holdings)
    with pytest.raises(VenueError, match="short would borrow the asset"):
        VENUE.liquidation_price(wallet_balance=5_000.0, both=Leg(SHORT, 1.0, 2_000.0, tier.mmr, 0.0))


def _plan(qty: float, mark: float, debt: float):
    return loop.liquidation_plan(qty=qty, mark_price=mark, margin_balance=qty * mark - debt, tiers=_table(),
                                 clearance_rate=clearance_fee_rate("compound_v3", ETH, T))


def test_absorb_takes_all_the_collateral_and_credits_its_liquidation_value() -> None:
    # 10 WETH at 1,600 against 15,000: 16,000 x 0.90 = 14,400 < 15,000, liquidatable. absorb
    # credits 16,000 x 0.95 = 15,200: the debt is repaid and 200 USDC stay with the account
    plan = _plan(10.0, 1_600.0, 15_000.0)
    assert plan.steps == (10.0,) and plan.remainder == 0.0
    assert plan.absorption.value_credited_usd == pytest.approx(15_200.0)
    assert plan.absorption.new_base_balance == pytest.approx(200.0)
    # the engine charges 1 - 0.95 of the seized value: 16,000 x 0.05 = 800 = 16,000 - 15,200
    plan_through_venue = VENUE.liquidation_procedure(
        mode="full", qty=10.0, mark_price=1_600.0, bankruptcy_price=1_500.0, margin_balance=1_000.0,
        tiers=_table(), clearance_rate=clearance_fee_rate("compound_v3", ETH, T))
    assert [(s.qty, s.price, s.kind) for s in plan_through_venue.steps] == [(10.0, 1_600.0, "partial")]
    assert 10.0 * 1_600.0 * plan_through_venue.clearance_fee_rate == pytest.approx(800.0)


def test_a_shortfall_is_the_reserves_loss() -> None:
    # 10 WETH at 1,500 against 15,000: credited 14,250, the reserves pay the other 750
    plan = _plan(10.0, 1_500.0, 15_000.0)
    assert plan.absorption.new_base_balance == 0.0
    assert plan.absorption.reserves_after == pytest.approx(-15_000.0)
    assert 15_000.0 - plan.absorption.value_credited_usd == pytest.approx(750.0)


def test_a_healthy_account_is_not_absorbed_and_the_line_itself_is() -> None:
    assert _plan(10.0, 2_000.0, 15_000.0).steps == ()
    lp = 15_000.0 / (10.0 * 0.90)
    assert _plan(10.0, lp, 15_000.0).steps == (10.0,)


def test_venues_catalog_lists_compound() -> None:
    (entry,) = [e for e in venue_catalog() if e.info.name == "compound_v3"]
    assert entry.selectable
    whats = [v.what for v in entry.rule_versions]
    assert "asset WETH" in whats and "tiers ETH/USDT:USDT" in whats
    assert math.isclose(VENUE.maintenance_margin(1_000.0, _table().tiers[0]), 100.0)
