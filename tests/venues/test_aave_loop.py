"""Aave v3 as a venue (``--venue aave_v3``): the loop's formulas against the protocol module.

The data file restates the reserve parameters in the engine's terms (one bracket, a clearance
fee); these tests pin each derived value to :mod:`backtest.lending.aave_v3`, check maintenance
and the liquidation price against the health factor, the liquidation plan against
``liquidation_call`` arithmetic written out, the oracle candles against ``chainlink_path`` and
the interest against ``compounded_interest``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtest.lending import aave_v3 as aave
from backtest.lending.interest import compounded_interest
from backtest.lending.oracle import chainlink_path
from backtest.venues import aave_loop as loop
from backtest.venues.base import LONG, SHORT, Leg, get_venue
from backtest.venues.catalog import venue_catalog
from backtest.venues.defaults import clearance_fee_rate, default_market, default_tier_schedule
from backtest.venues.errors import VenueError

VENUE = get_venue("aave_v3")
ETH = "ETH/USDT:USDT"
BTC = "BTC/USDT:USDT"
T = 1_704_067_200_000  # 2024-01-01


def _table(symbol: str = ETH):
    return default_tier_schedule("aave_v3", symbol).at(T)


@pytest.mark.parametrize("symbol", [ETH, BTC])
def test_the_data_files_bracket_and_fee_are_the_reserves_parameters(symbol: str) -> None:
    ltv, lt, bonus = loop.parameters().risk(symbol)
    (tier,) = _table(symbol).tiers
    assert tier.mmr == 1.0 - lt  # equity at HF 1 is collateral x (1 - LT)
    assert tier.max_leverage == 1.0 / (1.0 - ltv)  # debt <= LTV x collateral
    assert tier.cum == 0.0 and tier.floor == 0.0 and math.isinf(tier.cap)
    assert clearance_fee_rate("aave_v3", symbol, T) == 1.0 - 1.0 / bonus
    spec = default_market("aave_v3", symbol, T)
    assert spec.settle == "USDC" and spec.contract_type == "linear"


def test_weth_parameters_are_the_ones_the_lending_modules_use() -> None:
    from backtest.lending.position import LoopedLong

    ltv, lt, bonus = loop.parameters().risk(ETH)
    default = LoopedLong(ltv=0.5)
    assert (ltv, lt, bonus) == (default.max_ltv, default.liquidation_threshold, default.liquidation_bonus)


@given(collateral=st.floats(1.0, 1e9), ltv=st.floats(0.01, 0.99))
def test_maintenance_is_the_equity_at_health_factor_one(collateral: float, ltv: float) -> None:
    (tier,) = _table().tiers
    lt = 1.0 - tier.mmr
    debt = collateral * ltv
    # the debt at HF 1 is HF's numerator: health_factor against a unit debt
    assert loop._debt_at_health_one(collateral, lt) == pytest.approx(
        aave.health_factor([(collateral, lt)], 1.0), rel=1e-15)
    gap = (collateral - debt) - loop.maintenance_margin(collateral, tier)
    hf = aave.health_factor([(collateral, lt)], debt)
    assert gap == pytest.approx(debt * (hf - 1.0), rel=1e-9, abs=1e-6 * collateral)
    if abs(hf - 1.0) > 1e-9:
        assert (gap < 0) == (hf < 1.0)


def test_maintenance_takes_arrays_like_the_per_bar_metrics() -> None:
    (tier,) = _table().tiers
    values = loop.maintenance_margin(np.array([0.0, 1000.0, -2000.0]), tier)
    assert values.tolist() == pytest.approx([0.0, 1000.0 * tier.mmr, 2000.0 * tier.mmr])


@given(qty=st.floats(0.01, 1e4), entry=st.floats(10.0, 1e5), leverage=st.floats(1.01, 5.0))
def test_liquidation_price_is_where_the_health_factor_reaches_one(qty: float, entry: float,
                                                                   leverage: float) -> None:
    table = _table()
    lt = 1.0 - table.tiers[0].mmr
    wallet = qty * entry / leverage
    debt = qty * entry - wallet
    leg = Leg(LONG, qty, entry, table.tiers[0].mmr, 0.0)
    lp = VENUE.liquidation_price(wallet_balance=wallet, both=leg)
    assert lp == pytest.approx(debt / (qty * lt), rel=1e-9)
    assert aave.health_factor([(qty * lp, lt)], debt) == pytest.approx(1.0, rel=1e-9)
    assert VENUE.liquidation_price_resolved(wallet_balance=wallet, both=leg, tiers=table) == lp
    # equity zero at the bankruptcy price: the collateral is worth the debt
    assert VENUE.bankruptcy_price(wallet_balance=wallet, side=LONG, qty=qty,
                                  entry_price=entry) == pytest.approx(debt / qty, rel=1e-12)


def test_a_loop_without_debt_has_no_liquidation_price() -> None:
    leg = Leg(LONG, 2.0, 2000.0, _table().tiers[0].mmr, 0.0)
    assert VENUE.liquidation_price(wallet_balance=4000.0, both=leg) == 0.0


def test_the_leverage_cap_is_aaves_borrow_limit() -> None:
    ltv, _, _ = loop.parameters().risk(ETH)
    cap = _table().tiers[0].max_leverage
    params = loop.parameters()
    # a 10,000 USDC equity at the cap: 50,000 of WETH against 40,000 of USDC borrowed
    equity, price = 10_000.0, 2_000.0
    position = aave.Position({"WETH": equity * cap / price}, {})
    prices = {"WETH": price, "USDC": 1.0}
    borrow = equity * cap - equity
    assert borrow == pytest.approx(ltv * equity * cap)
    assert aave.borrow_refusal(position, prices, params.market, asset="USDC", amount=borrow * (1 - 1e-9)) is None
    assert aave.borrow_refusal(position, prices, params.market, asset="USDC",
                               amount=borrow * (1 + 1e-6)) == "ltv_exceeded"


def test_a_short_leg_is_refused_with_the_reason() -> None:
    leg = Leg(SHORT, 1.0, 2000.0, 0.175, 0.0)
    with pytest.raises(VenueError, match="short would borrow the asset"):
        VENUE.liquidation_price(wallet_balance=1000.0, both=leg)


# ---- the liquidation plan, by hand ---------------------------------------------------------

def _plan(qty: float, mark: float, equity: float):
    table = _table()
    return VENUE.liquidation_procedure(mode="full", qty=qty, mark_price=mark, bankruptcy_price=0.0,
                                       margin_balance=equity, tiers=table,
                                       clearance_rate=clearance_fee_rate("aave_v3", ETH, T)), \
        loop.liquidation_plan(qty=qty, mark_price=mark, margin_balance=equity, tiers=table,
                              clearance_rate=clearance_fee_rate("aave_v3", ETH, T))


def test_half_the_debt_above_hf_095_with_the_bonus_in_collateral() -> None:
    # 25 WETH against 40,000 USDC at 1,900: HF = 25 x 1,900 x 0.825 / 40,000 = 0.9796 (> 0.95),
    # both reserves above 2,000 USD: the close factor is 50 % of the debt (v3.3)
    qty, mark, debt = 25.0, 1_900.0, 40_000.0
    plan, raw = _plan(qty, mark, qty * mark - debt)
    assert raw.calls[0].health_factor_before == pytest.approx(25 * 1_900 * 0.825 / 40_000)
    seized = 20_000.0 * 1.05 / 1_900.0  # repay 20,000, seize its value plus 5 %
    assert [s.qty for s in plan.steps] == pytest.approx([seized])
    assert [s.kind for s in plan.steps] == ["partial"] and not plan.takeover
    assert plan.steps[0].price == mark
    assert raw.calls[0].debt_repaid == pytest.approx(20_000.0)
    # the protocol's fee is its share of the bonus part (seized - seized / bonus), 10 %
    assert raw.calls[0].protocol_fee == pytest.approx(0.10 * (seized - seized / 1.05))
    assert raw.calls[0].collateral_to_liquidator == pytest.approx(seized - raw.calls[0].protocol_fee)
    assert raw.calls[0].health_factor_after == pytest.approx((qty - seized) * 1_900 * 0.825 / 20_000)
    assert raw.remainder == pytest.approx(qty - seized)
    # the engine charges the bonus as the clearance fee: seized value x (1 - 1/bonus) = 1,000
    assert seized * mark * plan.clearance_fee_rate == pytest.approx(1_000.0)


def test_the_whole_debt_at_or_below_hf_095() -> None:
    qty, mark, debt = 25.0, 1_800.0, 40_000.0  # HF = 0.928
    _, raw = _plan(qty, mark, qty * mark - debt)
    (call,) = raw.calls
    assert call.health_factor_before == pytest.approx(25 * 1_800 * 0.825 / 40_000)
    assert call.debt_repaid == pytest.approx(40_000.0)
    assert raw.steps[0] == pytest.approx(40_000.0 * 1.05 / 1_800.0)
    assert math.isinf(call.health_factor_after)


def test_collateral_running_out_leaves_a_deficit() -> None:
    # 25 WETH at 1,500 against 40,000: all 25 WETH go for 25 x 1,500 / 1.05 = 35,714.29 of
    # debt; the other 4,285.71 is burned as the reserve's deficit (v3.3)
    qty, mark, debt = 25.0, 1_500.0, 40_000.0
    _, raw = _plan(qty, mark, qty * mark - debt)
    (call,) = raw.calls
    assert raw.steps == (25.0,) and raw.remainder == 0.0
    assert call.debt_repaid == pytest.approx(25 * 1_500 / 1.05)
    assert call.deficit["USDC"] == pytest.approx(40_000 - 25 * 1_500 / 1.05)


def test_calls_repeat_while_the_health_factor_stays_below_one() -> None:
    # e-mode-like parameters (LT 95 %, bonus 1 %): a 50 % call at HF h > 0.95 leaves
    # h' = (C - 0.5 D x 1.01) x 0.95 / (0.5 D) = 2h - 1.01 x 0.95, so from 0.955 the liquidator
    # calls at 0.955 (half of D), at 0.9505 (half of D/2), then at 0.9415 <= 0.95 (all of D/4,
    # which needs D/4 x 1.01 of collateral: more than is left, so all of it goes for
    # left / 1.01 of debt and the rest is the deficit)
    from backtest.venues.tiers import TierTable

    table = TierTable.from_rates([(0.0, 1.0 - 0.95)], max_leverage=[1.0 / (1.0 - 0.93)])
    qty, mark = 100.0, 1_000.0
    debt = qty * mark * 0.95 / 0.955
    plan = loop.liquidation_plan(qty=qty, mark_price=mark, margin_balance=qty * mark - debt, tiers=table,
                                 clearance_rate=1.0 - 1.0 / 1.01)
    first, second, third = plan.calls
    hf1 = 2 * 0.955 - 1.01 * 0.95
    assert [c.health_factor_before for c in plan.calls] == pytest.approx([0.955, hf1, 2 * hf1 - 1.01 * 0.95])
    left = qty - (debt / 2 + debt / 4) * 1.01 / mark
    assert list(plan.steps) == pytest.approx([debt / 2 * 1.01 / mark, debt / 4 * 1.01 / mark, left])
    assert [c.debt_repaid for c in plan.calls] == pytest.approx([debt / 2, debt / 4, left * mark / 1.01])
    assert third.deficit["USDC"] == pytest.approx(debt / 4 - left * mark / 1.01)
    assert plan.remainder == 0.0


def test_a_trigger_on_the_liquidation_price_itself_is_liquidated() -> None:
    # the engine walks the oracle's candle as a path, so its trigger lands on HF = 1 (up to
    # rounding); the call is made as at the first answer below it
    qty, debt = 25.0, 40_000.0
    lp = debt / (qty * 0.825)
    _, raw = _plan(qty, lp, qty * lp - debt)
    assert len(raw.calls) == 1 and raw.calls[0].debt_repaid == pytest.approx(20_000.0)


# ---- oracle and interest ----------------------------------------------------------------------

def test_oracle_candles_are_the_feeds_answers_at_four_points_of_each_candle() -> None:
    hour = 3_600_000
    ts = np.array([0, hour, 2 * hour], dtype=np.int64)
    o = np.array([100.0, 100.2, 100.0])
    h = np.array([100.3, 100.4, 100.0])
    lo = np.array([99.9, 100.1, 90.0])
    c = np.array([100.2, 100.3, 91.0])
    mo, mh, ml, mc = loop.oracle_bars(ts, o, h, lo, c, hour, heartbeat_s=3600.0, deviation=0.005)
    # moves under 0.5 % publish nothing until the heartbeat (bar 1's open, 3,600 s later)
    assert mo[0] == mh[0] == ml[0] == mc[0] == 100.0
    assert mo[1] == 100.2
    # a falling candle: high first, then the low (publishes 90, a 10 % move), then the close
    assert (mo[2], mh[2], ml[2], mc[2]) == (mo[2], mh[2], 90.0, 91.0)
    offsets = [0, hour // 3, 2 * hour // 3, hour - 1]
    times = [(t + d) / 1000 for t in ts.tolist() for d in offsets]
    prices = [100.0, 99.9, 100.3, 100.2, 100.2, 100.1, 100.4, 100.3, 100.0, 100.0, 90.0, 91.0]
    answers, _ = chainlink_path(times, prices, heartbeat=3600.0, deviation=0.005)
    assert mc.tolist() == answers.reshape(3, 4)[:, 3].tolist()


def test_interest_is_the_borrow_rate_on_the_debt_less_the_supply_rate_on_the_collateral() -> None:
    times, rates = loop.interest_settlements(np.array([T + 60_000, T + 7_200_000]), 60_000)
    assert times.tolist() == [T + 3_600_000, T + 7_200_000]  # on the hour, inside the window
    borrow = compounded_interest(0.05, 3600) - 1.0
    assert rates.tolist() == [borrow, borrow]
    # 25 WETH at entry 2,000 on a 10,000 wallet: debt 40,000; collateral 25 x 2,100
    payment = VENUE.funding_payment(signed_qty=25.0, mark_price=2_100.0, rate=borrow,
                                    entry_price=2_000.0, wallet_balance=10_000.0, ts_ms=T, symbol=ETH)
    supply = compounded_interest(0.02, 3600) - 1.0
    assert payment == pytest.approx(-40_000.0 * borrow + 25 * 2_100.0 * supply, rel=1e-12)
    with pytest.raises(VenueError, match="interest is charged on the pool's debt"):
        VENUE.funding_payment(signed_qty=25.0, mark_price=2_100.0, rate=borrow)


def test_an_unknown_symbol_names_the_reserves() -> None:
    with pytest.raises(VenueError, match="no collateral reserve for prices of SOL/USDT:USDT"):
        loop.parameters().reserve_of("SOL/USDT:USDT")


def test_venues_catalog_lists_aave_with_its_rule_versions() -> None:
    (entry,) = [e for e in venue_catalog() if e.info.name == "aave_v3"]
    assert entry.selectable and entry.module == "backtest.venues.aave_loop"
    whats = [v.what for v in entry.rule_versions]
    assert "reserve WETH" in whats and "oracle" in whats and "rates" in whats
    assert "tiers ETH/USDT:USDT" in whats and "liquidation fee ETH/USDT:USDT" in whats
    assert entry.engine_sources["liquidation"].startswith("backtest/lending/aave_v3.py liquidation_call v3.3")


def test_emode_overrides_are_the_categorys_parameters_and_keep_its_protocol_fee() -> None:
    overrides = loop.emode_overrides(ETH, 1)
    ltv, lt, bonus = loop.parameters().market.risk_params("WETH", 1)
    (tier,) = overrides["tiers"][ETH].tiers
    assert (tier.mmr, tier.max_leverage) == (1.0 - lt, 1.0 / (1.0 - ltv))
    assert overrides["liquidation_fee_rate"] == 1.0 - 1.0 / bonus
    # HF 0.99 under e-mode: 50 % of the debt (one call: after it HF = 2 x 0.99 - 1.01 x 0.95 > 1),
    # the bonus 1 %, the treasury 10 % of the bonus part
    qty, mark = 10.0, 2_000.0
    debt = qty * mark * lt / 0.99
    plan = loop.liquidation_plan(qty=qty, mark_price=mark, margin_balance=qty * mark - debt,
                                 tiers=overrides["tiers"][ETH], clearance_rate=overrides["liquidation_fee_rate"])
    (call,) = plan.calls
    seized = debt / 2 * bonus / mark
    assert call.collateral_seized == pytest.approx(seized)
    assert call.protocol_fee == pytest.approx(0.10 * (seized - seized / bonus))
    with pytest.raises(Exception, match="category 7 is not defined"):
        loop.emode_overrides(ETH, 7)
