"""Binance USDⓈ-M formulas against the exchange's own worked examples (freqtrade style),
the bracket re-solve at the liquidation notional, and equity/maintenance properties."""
from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.venues import binance_usdm as um
from backtest.venues.defaults import default_tier_schedule
from backtest.venues.rounding import round_price
from backtest.venues.tiers import TierTable

LONG, SHORT = 1, -1
BTC_2022 = TierTable.from_rates([
    (0, 0.004, 125), (50_000, 0.005, 100), (250_000, 0.01, 50), (1_000_000, 0.025, 20),
    (7_500_000, 0.05, 10), (40_000_000, 0.1, 5), (100_000_000, 0.125, 4),
    (200_000_000, 0.15, 3), (400_000_000, 0.25, 2), (600_000_000, 0.5, 1),
], label="BTCUSDT 2022")

# freqtrade@c9ae5e1e tests/exchange/test_exchange.py::test_get_liquidation_price, binance rows
# (isolated, mmr 0.01, maintenance amount 0.01, wallet = amount * entry / leverage):
# (side, leverage, entry, amount, expected LP)
FREQTRADE_ISOLATED = [
    (LONG, 5.0, 10.0, 0.6, 8.063973063973064),
    (LONG, 3.0, 10.0, 1.0, 6.723905723905723),
    (LONG, 5.0, 8.0, 1.0, 6.454545454545454),
    (SHORT, 5.0, 10.0, 1.0, 11.89108910891089),
    (SHORT, 3.0, 10.0, 1.0, 13.211221122079207),
    (SHORT, 5.0, 8.0, 1.0, 9.514851485148514),
]


@pytest.mark.parametrize(("side", "leverage", "entry", "amount", "expected"), FREQTRADE_ISOLATED)
def test_freqtrade_isolated_liquidation_price(side, leverage, entry, amount, expected) -> None:
    leg = um.Leg(side, amount, entry, mmr=0.01, cum=0.01)
    price = um.liquidation_price(wallet_balance=amount * entry / leverage, both=leg)
    assert price == pytest.approx(expected, rel=1e-6)


# freqtrade test_binance.py::test_liquidation_price_binance, the FAQ's two-position account:
# WB 1,535,443.01; BTCUSDT long 109.488 @ 32,481.98 (mark 31,967.27, 2.5 %/16,300);
# ETHUSDT long 3,683.979 @ 1,456.84 (mark 1,335.18, 10 %/135,365).
BTC_LEG = um.Leg(LONG, 109.488, 32_481.98, 0.025, 16_300.0)
ETH_LEG = um.Leg(LONG, 3_683.979, 1_456.84, 0.1, 135_365.0)
WALLET = 1_535_443.01


def test_faq_cross_account_btc_leg() -> None:
    price = um.liquidation_price(
        wallet_balance=WALLET, both=BTC_LEG,
        other_maintenance=um.leg_maintenance_margin(ETH_LEG, 1_335.18),
        other_unrealized=um.leg_unrealized_pnl(ETH_LEG, 1_335.18))
    assert round_price(price, decimals=2) == pytest.approx(26_316.89, abs=0.005)


def test_faq_cross_account_eth_leg() -> None:
    price = um.liquidation_price(
        wallet_balance=WALLET, both=ETH_LEG,
        other_maintenance=um.leg_maintenance_margin(BTC_LEG, 31_967.27),
        other_unrealized=um.leg_unrealized_pnl(BTC_LEG, 31_967.27))
    assert round_price(price, decimals=2) == pytest.approx(1_153.26, abs=0.005)


def test_freqtrade_isolated_eth_whole_wallet() -> None:
    price = um.liquidation_price(wallet_balance=WALLET, both=ETH_LEG)
    assert round_price(price, decimals=2) == pytest.approx(1_114.78, abs=0.005)


# bradkyle/Qenv@bf999d43 logic/binance.md (Binance's 2019-2020 text), two worked examples
# whose published results carry the page's own rounding of the inputs.
def test_qenv_btcusdt_short_cross_example() -> None:
    leg = um.Leg(SHORT, 0.005, 9_451.53, 0.004, 0.0)
    price = um.liquidation_price(wallet_balance=10.72, both=leg, other_maintenance=1.3,
                                 other_unrealized=0.47)
    assert price == pytest.approx(11_383.99, abs=0.05)


def test_qenv_ethusdt_long_cross_example() -> None:
    leg = um.Leg(LONG, 1.0, 199.53, 0.0065, 0.0)
    price = um.liquidation_price(wallet_balance=10.72, both=leg, other_maintenance=0.19,
                                 other_unrealized=-0.06)
    assert price == pytest.approx(190.29, abs=0.02)


# freqtrade test_calculate_funding_fees / test__fetch_and_calculate_funding_fees:
# (signed qty, [(rate, mark)], expected payment received)
FUNDING = [
    (-10.0, [(0.0001, 2.0)], 0.002),
    (-10.0, [(0.0002, 2.5)], 0.005),
    (-50.0, [(-8e-06, 2.77), (-3e-06, 2.77)], -0.0015235),
    (10.0, [(0.0001, 2.0)], -0.002),  # a long pays a positive rate
]


@pytest.mark.parametrize(("signed_qty", "settlements", "expected"), FUNDING)
def test_funding_payments(signed_qty, settlements, expected) -> None:
    assert um.funding_payments(signed_qty=signed_qty, settlements=settlements) == pytest.approx(expected, rel=1e-9)


def test_multi_assets_examples() -> None:
    # Binance Multi-Assets Mode FAQ and multi-asset-info page
    assert um.collateral_value(1_000, 0.9) == pytest.approx(900.0)
    assert um.collateral_value(1_000, 0.95) == pytest.approx(950.0)
    assert um.auto_exchange_amount(-20_000, 0.975) == pytest.approx(20_513, abs=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        um.collateral_value(1_000, 1.5)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        um.auto_exchange_amount(100, 0.0)


def test_next_maintenance_amount_faq_level_3() -> None:
    assert um.next_maintenance_amount(floor=250_000, mmr=0.01, previous_mmr=0.005,
                                      previous_cum=50) == pytest.approx(1_300.0)


def test_margin_ratio_initial_margin_and_pnl() -> None:
    assert um.margin_ratio(maintenance=50.0, margin_balance=100.0) == 0.5
    assert um.margin_ratio(maintenance=50.0, margin_balance=-1.0) == math.inf
    assert um.margin_ratio(maintenance=0.0, margin_balance=0.0) == 0.0
    assert um.initial_margin(-50_000.0, 20.0) == 2_500.0
    assert um.unrealized_pnl(signed_qty=-2.0, entry_price=100.0, mark_price=90.0) == 20.0
    tier = BTC_2022.for_notional(264_000)
    assert um.maintenance_margin(264_000, tier) == pytest.approx(264_000 * 0.01 - 1_300)
    with pytest.raises(ValueError, match="leverage must be > 0"):
        um.initial_margin(1.0, 0.0)


def test_leg_validation() -> None:
    with pytest.raises(ValueError, match=r"side must be \+1"):
        um.Leg(2, 1.0, 100.0)
    with pytest.raises(ValueError, match="qty"):
        um.Leg(LONG, -1.0, 100.0)
    with pytest.raises(ValueError, match="not both kinds"):
        um.liquidation_price(wallet_balance=1.0, both=um.Leg(LONG, 1, 10), long=um.Leg(LONG, 1, 10))
    with pytest.raises(ValueError, match="`short` leg must have side -1"):
        um.liquidation_price(wallet_balance=1.0, short=um.Leg(LONG, 1, 10))
    with pytest.raises(ValueError, match="at least one leg"):
        um.liquidation_price(wallet_balance=1.0)
    assert um.Leg.from_signed(-3.0, 10.0).side == SHORT


def test_flat_hedge_has_no_liquidation_price() -> None:
    price = um.liquidation_price(wallet_balance=100.0, long=um.Leg(LONG, 1, 10), short=um.Leg(SHORT, 1, 10))
    assert math.isnan(price)


def test_long_below_one_x_never_liquidates() -> None:
    leg = um.Leg(LONG, 1.0, 100.0, 0.004, 0.0)
    assert um.liquidation_price(wallet_balance=150.0, both=leg) < 0


# ---- equity helpers for the properties --------------------------------------------------
def equity(wallet: float, legs: list[um.Leg], price: float, other_upnl: float = 0.0) -> float:
    return wallet + other_upnl + sum(um.leg_unrealized_pnl(leg, price) for leg in legs)


def table_mm(table: TierTable, legs: list[um.Leg], price: float, other_mm: float = 0.0) -> float:
    return other_mm + sum(table.maintenance_margin(leg.qty * price) for leg in legs)


# ---- bracket re-solve ---------------------------------------------------------------------
def test_resolve_long_drops_to_a_lower_bracket() -> None:
    # 30 BTC @ 40,000 = 1.2M notional (bracket 4: 2.5 %/16,300) at 5x: the LP with bracket 4
    # is 32,263.2, whose notional 967.9k lies in bracket 3 (1 %/1,300); re-solved: 32,279.5.
    leg = um.Leg(LONG, 30.0, 40_000.0).with_tier(BTC_2022.for_notional(1_200_000))
    wallet = 1_200_000 / 5
    naive = um.liquidation_price(wallet_balance=wallet, both=leg)
    solution = um.resolve_liquidation(wallet_balance=wallet, both=leg, tiers=BTC_2022)
    assert naive == pytest.approx((wallet + 16_300 - 1_200_000) / (30 * 0.025 - 30))
    assert solution.tier_indices == (2,)
    assert solution.price == pytest.approx((wallet + 1_300 - 1_200_000) / (30 * 0.01 - 30))
    assert solution.price != pytest.approx(naive, abs=1.0)
    assert equity(wallet, [leg], solution.price) == pytest.approx(table_mm(BTC_2022, [leg], solution.price), rel=1e-10)
    # the naive price does not balance equity against the table's MM
    assert abs(equity(wallet, [leg], naive) - table_mm(BTC_2022, [leg], naive)) > 100
    assert um.liquidation_price_resolved(wallet_balance=wallet, both=leg, tiers=BTC_2022) == solution.price


def test_resolve_short_climbs_to_a_higher_bracket() -> None:
    leg = um.Leg(SHORT, 20.0, 40_000.0).with_tier(BTC_2022.for_notional(800_000))
    wallet = 400_000.0
    solution = um.resolve_liquidation(wallet_balance=wallet, both=leg, tiers=BTC_2022)
    assert solution.tier_indices == (3,)
    assert 20 * solution.price > 1_000_000
    assert equity(wallet, [leg], solution.price) == pytest.approx(table_mm(BTC_2022, [leg], solution.price), rel=1e-10)


def test_resolve_starts_from_bracket_one_when_the_leg_has_none() -> None:
    leg = um.Leg(LONG, 30.0, 40_000.0)
    price = um.liquidation_price_resolved(wallet_balance=240_000, both=leg, tiers=BTC_2022)
    assert price == pytest.approx((240_000 + 1_300 - 1_200_000) / (30 * 0.01 - 30))


def test_resolve_cross_hedge_mode_both_legs() -> None:
    long = um.Leg(LONG, 50.0, 30_000.0)
    short = um.Leg(SHORT, 10.0, 31_000.0)
    wallet = 200_000.0
    solution = um.resolve_liquidation(wallet_balance=wallet, long=long, short=short, tiers=BTC_2022,
                                      other_maintenance=1_000.0, other_unrealized=-5_000.0)
    legs = list(solution.legs)
    assert equity(wallet, legs, solution.price, -5_000.0) == pytest.approx(
        table_mm(BTC_2022, legs, solution.price, 1_000.0), rel=1e-9)


# ---- properties ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def btc_tables() -> list[TierTable]:
    return [table for _, table in default_tier_schedule("binanceusdm", "BTC/USDT:USDT").versions]


def test_property_equity_equals_mm_at_resolved_lp_isolated(btc_tables) -> None:
    rng = np.random.default_rng(20240805)
    checked = 0
    for _ in range(400):
        table = btc_tables[rng.integers(len(btc_tables))]
        side = LONG if rng.random() < 0.5 else SHORT
        entry = float(rng.uniform(5_000, 100_000))
        notional = float(10 ** rng.uniform(2, 8.5))
        leverage = float(rng.uniform(1, min(table.max_leverage_for(notional), 100)))
        leg = um.Leg(side, notional / entry, entry)
        wallet = notional / leverage
        solution = um.resolve_liquidation(wallet_balance=wallet, both=leg, tiers=table)
        if solution.price <= 0:
            # only a long with about 1x leverage or less survives every positive price
            assert side == LONG and leverage < 1.1
            continue
        legs = list(solution.legs)
        assert table.index_for(leg.qty * solution.price) == solution.tier_indices[0]
        assert equity(wallet, legs, solution.price) == pytest.approx(
            table_mm(table, legs, solution.price), rel=1e-9, abs=1e-6)
        # adverse side of the LP is below maintenance, the favourable side above
        step = solution.price * 1e-4
        worse = solution.price - side * step
        better = solution.price + side * step
        assert equity(wallet, legs, worse) < table_mm(table, legs, worse)
        assert equity(wallet, legs, better) > table_mm(table, legs, better)
        checked += 1
    assert checked > 300


def test_property_equity_equals_mm_at_resolved_lp_cross(btc_tables) -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        table = btc_tables[rng.integers(len(btc_tables))]
        side = LONG if rng.random() < 0.5 else SHORT
        entry = float(rng.uniform(5_000, 100_000))
        qty = float(10 ** rng.uniform(-2, 3))
        other_mm = float(rng.uniform(0, 50_000))
        other_upnl = float(rng.uniform(-50_000, 50_000))
        wallet = qty * entry / float(rng.uniform(1, 20)) + other_mm + abs(other_upnl)
        leg = um.Leg(side, qty, entry)
        solution = um.resolve_liquidation(wallet_balance=wallet, both=leg, tiers=table,
                                          other_maintenance=other_mm, other_unrealized=other_upnl)
        if solution.price <= 0:
            continue
        legs = list(solution.legs)
        assert equity(wallet, legs, solution.price, other_upnl) == pytest.approx(
            table_mm(table, legs, solution.price, other_mm), rel=1e-9, abs=1e-6)


def test_property_equity_is_zero_at_bankruptcy_price() -> None:
    rng = np.random.default_rng(11)
    for _ in range(300):
        side = LONG if rng.random() < 0.5 else SHORT
        entry = float(rng.uniform(10, 100_000))
        qty = float(10 ** rng.uniform(-3, 3))
        wallet = qty * entry / float(rng.uniform(1, 125))
        other_upnl = float(rng.uniform(-0.5, 0.5)) * wallet
        price = um.bankruptcy_price(wallet_balance=wallet, side=side, qty=qty, entry_price=entry,
                                    other_unrealized=other_upnl)
        leg = um.Leg(side, qty, entry)
        assert equity(wallet, [leg], price, other_upnl) == pytest.approx(0.0, abs=1e-9 * qty * entry)


def test_bankruptcy_price_is_beyond_the_liquidation_price() -> None:
    leg = um.Leg(LONG, 1.0, 20_000.0, 0.004, 0.0)
    wallet = 20_000 / 50
    lp = um.liquidation_price(wallet_balance=wallet, both=leg)
    bp = um.bankruptcy_price(wallet_balance=wallet, side=LONG, qty=1.0, entry_price=20_000.0)
    assert bp == pytest.approx(19_600.0)
    assert bp < lp < 20_000.0
    with pytest.raises(ValueError, match="side"):
        um.bankruptcy_price(wallet_balance=1, side=0, qty=1, entry_price=1)
    with pytest.raises(ValueError, match="qty"):
        um.bankruptcy_price(wallet_balance=1, side=1, qty=0, entry_price=1)


# ---------------------------------------------------------------- tier-down plan (smart liquidation)
PLAN_TIERS = TierTable.from_rates([(0.0, 0.005, 50.0), (50_000.0, 0.01, 25.0),
                                   (100_000.0, 0.02, 20.0)])  # cum 0 / 250 / 1,250


def test_tier_down_plan_one_bracket_when_the_fee_leaves_the_pool_compliant():
    # 1,100 at mark 95.78 (105,358 notional, bracket 3) breached exactly at maintenance
    mark = (5500 + 1250 - 110_000) / (1100 * 0.02 - 1100)
    balance = 1100 * mark * 0.02 - 1250
    plan = um.tier_down_plan(qty=1100, mark_price=mark, margin_balance=balance, tiers=PLAN_TIERS,
                             clearance_rate=0.005)
    keep = 100_000 / mark * (1 - 1e-9)
    assert plan.steps == pytest.approx((1100 - keep,), rel=1e-12)
    assert plan.remainder == pytest.approx(keep) and not plan.takeover
    # by hand: 857.14 - 0.005 * 55.9 * 95.78 = 830.4 > MM(keep) = 1000 - 250 = 750
    assert balance - 0.005 * (1100 - keep) * mark > keep * mark * 0.01 - 250


def test_tier_down_plan_steps_several_brackets_for_a_deeper_deficit():
    # a gap: margin balance 550 at mark 95.5, maintenance 851 (bracket 3)
    plan = um.tier_down_plan(qty=1100, mark_price=95.5, margin_balance=550.0, tiers=PLAN_TIERS,
                             clearance_rate=0.005)
    keep2, keep1 = 100_000 / 95.5 * (1 - 1e-9), 50_000 / 95.5 * (1 - 1e-9)
    assert plan.steps == pytest.approx((1100 - keep2, keep2 - keep1), rel=1e-12)
    assert plan.remainder == pytest.approx(keep1) and not plan.takeover


def test_tier_down_plan_hands_over_to_the_takeover_when_no_bracket_is_enough():
    plan = um.tier_down_plan(qty=1100, mark_price=95.5, margin_balance=100.0, tiers=PLAN_TIERS,
                             clearance_rate=0.005)
    assert plan.takeover and len(plan.steps) == 2  # down to the first bracket, still short
    first = um.tier_down_plan(qty=100, mark_price=95.0, margin_balance=10.0, tiers=PLAN_TIERS,
                              clearance_rate=0.005)
    assert first.steps == () and first.takeover  # already in the first bracket


def test_tier_down_plan_rounds_to_the_lot_and_refuses_bad_input():
    plan = um.tier_down_plan(qty=1100, mark_price=95.5, margin_balance=550.0, tiers=PLAN_TIERS,
                             clearance_rate=0.005, lot_size=0.1)
    assert plan.remainder == pytest.approx(523.5)  # floor(523.56 / 0.1) * 0.1
    assert 523.5 * 95.5 < 50_000
    with pytest.raises(ValueError, match="qty > 0"):
        um.tier_down_plan(qty=0.0, mark_price=95.0, margin_balance=1.0, tiers=PLAN_TIERS,
                          clearance_rate=0.005)


def test_the_venue_exposes_its_tier_down_plan():
    assert um.VENUE.tier_down_plan is um.tier_down_plan
