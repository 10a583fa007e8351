"""Scenario tests: tiny candle tables, expected trades derived by hand from the formulas.

Common setup (scenario.config): 10,000 USDT, 10x isolated, one maintenance tier of 0.5 % with
no maintenance amount, no fees, no slippage, no rounding. A long of 1x wallet opened at 100
holds qty 100 and posts 1,000 USDT, so its liquidation price is
LP = (1000 - 100*100) / (100*0.005 - 100) = 90.4522613... and its bankruptcy price 90.
"""
from __future__ import annotations

import math

import polars as pl
import pytest

from backtest import MarketData, run_backtest
from backtest.errors import ConfigError
from backtest.slippage import FixedBps
from backtest.venues.tiers import TierTable
from tests.engine.scenario import (ETH, HOUR, LATENCY, MINUTE, SYMBOL, T0, Script, candles, config,
                                   market, path_at, trigger_ms)

FLAT = (100.0, 100.0, 100.0, 100.0)
LP_10X = (1000.0 - 100 * 100.0) / (100 * 0.005 - 100.0)


def long_at_bar0(ctx) -> None:  # noqa: ANN001
    ctx.target_exposure(1.0)


def row(frame: pl.DataFrame, k: int = 0) -> dict:
    return frame.row(k, named=True)


def ms(value) -> int:  # noqa: ANN001 - datetime
    return int(value.timestamp() * 1000)


def test_liquidated_on_mark_low_fills_at_deeper_last_low():
    rows = [FLAT, FLAT, (100, 100.5, 88, 95, 100, 100.2, 90.3, 96), (95, 96, 94, 95)]
    result = run_backtest(market(rows), Script({0: long_at_bar0}), config=config())
    liq = result.liquidations
    assert liq.height == 1
    r = row(liq)
    assert r["liquidation_price"] == pytest.approx(LP_10X, rel=1e-12)
    assert r["bankruptcy_price"] == pytest.approx(90.0)
    # worst case for a long: open -> low -> high -> close; the mark crosses LP inside the
    # first segment at f; the liquidation engine fills 1 s later on the last-price path:
    # trigger at 19,685 ms, fill at 20,685 ms = 685 ms into the low (88) -> high (100.5) leg
    f = (100 - LP_10X) / (100 - 90.3)
    assert r["mark_price"] == pytest.approx(LP_10X, rel=1e-9)
    assert r["last_price"] == pytest.approx(100 + (88 - 100) * f, rel=1e-9)
    trig = T0 + 2 * MINUTE + int(f * 20_000)
    assert ms(r["trigger_ts"]) == trig
    assert ms(r["ts"]) == trig + LATENCY
    fill = 88 + (100.5 - 88) * (trig + LATENCY - (T0 + 2 * MINUTE + 20_000)) / 20_000
    assert fill == pytest.approx(path_at(T0 + 2 * MINUTE, MINUTE, (100, 88, 100.5, 95), trig + LATENCY))
    assert r["fill_price"] == pytest.approx(fill, rel=1e-12)
    remaining = 1000 + 100 * (fill - 100)  # about -191: worse than bankruptcy
    assert remaining < 0
    assert r["bad_debt"] == pytest.approx(-remaining)
    assert r["insurance_fund_delta"] == pytest.approx(remaining)
    assert r["margin_lost"] == pytest.approx(1000.0)
    assert r["equity_after"] == pytest.approx(9000.0)
    assert result.summary["final_equity"] == pytest.approx(9000.0)
    assert result.summary["bad_debt"] == pytest.approx(-remaining)
    # at the crossing the pool's maintenance margin equals its margin balance: ratio 1, and that
    # is the run's worst (bar closes after the liquidation never see the breached pool)
    assert result.summary["worst_margin_ratio"] == pytest.approx(1.0, rel=1e-9)
    from backtest.metrics import iso

    assert result.summary["worst_margin_ratio_ts"] == iso(T0 + 2 * MINUTE + int(f * 20_000))
    trade = row(result.trades)
    assert trade["exit_reason"] == "liquidation" and trade["pnl"] == pytest.approx(-1000.0)


def test_last_price_wick_without_mark_breach_does_not_liquidate():
    rows = [FLAT, FLAT, (100, 100.5, 80, 95, 100, 100.2, 91, 96), (95, 96, 94, 95)]
    result = run_backtest(market(rows), Script({0: long_at_bar0}), config=config())
    assert result.liquidations.height == 0
    equity = result.equity["equity"].to_list()
    assert equity[2] == pytest.approx(10_000 + 100 * (96 - 100))
    ratios = [100 * m * 0.005 / (1000 + 100 * (m - 100)) for m in (96, 95)]  # bar 2, bar 3 closes
    assert result.summary["worst_margin_ratio"] == pytest.approx(max(ratios))


@pytest.mark.parametrize("policy, rate", [("insurance_fund", 0.01), ("trader", 0.005)])
def test_clearance_fee_and_remainder_policy(policy, rate):
    rows = [FLAT, FLAT, (100, 100.5, 90.8, 95, 100, 100.2, 90.3, 96), (95, 96, 94, 95)]
    cfg = config(liquidation_fee_rate=rate, liquidation_remainder=policy)
    result = run_backtest(market(rows), Script({0: long_at_bar0}), config=cfg)
    r = row(result.liquidations)
    bar = T0 + 2 * MINUTE
    fill = path_at(bar, MINUTE, (100, 90.8, 100.5, 95),
                   trigger_ms(bar, MINUTE, (100, 90.3, 100.2, 96), LP_10X) + LATENCY)
    left = 1000 + 100 * (fill - 100)   # what the isolated wallet has at the fill (~81)
    fee = min(rate * 100 * fill, left)  # 1 %: all of it; 0.5 %: 0.5 % of the notional
    if policy == "insurance_fund":
        wallet, fund = 9000.0, left        # the trader loses the wallet; the fund gets the rest
    else:
        wallet, fund = 9000.0 + left - fee, fee  # the trader keeps what the fee leaves
    assert r["fill_price"] == pytest.approx(fill, rel=1e-12)
    assert r["fee"] == pytest.approx(fee)
    assert r["insurance_fund_delta"] == pytest.approx(fund)
    assert r["bad_debt"] == 0.0
    assert result.summary["final_equity"] == pytest.approx(wallet)


def test_gap_through_liquidation_price_gives_bad_debt_paid_by_the_fund():
    rows = [FLAT, FLAT, (85, 86, 84, 85.5), (85, 86, 84, 85)]
    result = run_backtest(market(rows), Script({0: long_at_bar0}), config=config())
    r = row(result.liquidations)
    assert ms(r["trigger_ts"]) == T0 + 2 * MINUTE  # breached at the open
    assert r["mark_price"] == pytest.approx(85.0)
    # 1 s into the open (85) -> low (84) leg (worst case): 85 - 1 * 1000 / 20000
    fill = 85 + (84 - 85) * LATENCY / 20_000
    assert r["fill_price"] == pytest.approx(fill)
    assert r["bad_debt"] == pytest.approx(-(1000 + 100 * (fill - 100)))  # 505
    assert r["insurance_fund_delta"] == pytest.approx(1000 + 100 * (fill - 100))
    assert result.summary["final_equity"] == pytest.approx(9000.0)
    assert min(result.equity["wallet_balance"].to_list()) >= 0.0
    # a gap breaches beyond the threshold: MM / balance at the open mark 85
    gap_ratio = 100 * 85 * 0.005 / (1000 + 100 * (85 - 100))
    assert gap_ratio < 0  # the pool is already below zero: the ratio is unbounded
    assert result.summary["worst_margin_ratio"] == math.inf


def _hourly_flat(n: int = 24) -> list[tuple]:
    return [FLAT] * n


def test_funding_every_8h_at_recorded_mark():
    funding = pl.DataFrame({"ts": [T0 + h * HOUR for h in (0, 8, 16)], "rate": [0.0001] * 3,
                            "interval_hours": [8.0] * 3, "mark_price": [101.0] * 3}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    data = market(_hourly_flat(), funding=funding, timeframe="1h")
    result = run_backtest(data, Script({0: long_at_bar0}), config=config())
    fund = result.funding
    assert fund["ts"].to_list() == [row(fund, k)["ts"] for k in range(2)]
    assert [ms(t) for t in fund["ts"]] == [T0 + 8 * HOUR, T0 + 16 * HOUR]  # 00:00 is before entry
    assert fund["payment"].to_list() == pytest.approx([-100 * 101 * 0.0001] * 2)
    assert result.summary["funding_paid"] == pytest.approx(2.02)
    last = result.positions.tail(1).row(0, named=True)
    assert last["isolated_margin"] == pytest.approx(1000 - 2.02)


def test_funding_every_hour_uses_bar_mark_when_not_recorded_and_skips_the_entry_instant():
    funding = pl.DataFrame({"ts": [T0 + h * HOUR for h in range(24)], "rate": [0.00002] * 24,
                            "interval_hours": [1.0] * 24, "mark_price": [None] * 24}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")), pl.col("mark_price").cast(pl.Float64))
    data = market(_hourly_flat(), funding=funding, timeframe="1h")
    result = run_backtest(data, Script({0: long_at_bar0}), config=config())
    # the order fills at 01:00; the 01:00 settlement applies to positions held before it
    assert result.funding.height == 22
    assert result.summary["funding_paid"] == pytest.approx(22 * 100 * 100 * 0.00002)


def test_stop_market_fills_at_its_trigger_with_taker_fee():
    def protect(ctx):  # noqa: ANN001
        ctx.sell(100, trigger=95.0, reduce_only=True)

    rows = [FLAT, FLAT, (100, 101, 94, 96), (96, 97, 95, 96)]
    result = run_backtest(market(rows), Script({0: long_at_bar0, 1: protect}),
                          config=config(fees=(0.0002, 0.0005)))
    fills = result.fills
    assert fills.height == 2
    stop = row(fills, 1)
    assert stop["price"] == pytest.approx(95.0) and stop["liquidity"] == "taker"
    assert stop["fee"] == pytest.approx(100 * 95 * 0.0005)
    assert stop["realized_pnl"] == pytest.approx(-500.0)
    assert result.summary["final_equity"] == pytest.approx(10_000 - 5.0 - 500.0 - 4.75)
    order = result.orders.filter(pl.col("type") == "stop_market").row(0, named=True)
    assert order["status"] == "filled"


def test_take_profit_fills_at_its_trigger():
    def target(ctx):  # noqa: ANN001
        ctx.sell(100, trigger=110.0, reduce_only=True)

    rows = [FLAT, FLAT, (100, 111, 99.5, 105), (105, 106, 104, 105)]
    result = run_backtest(market(rows), Script({0: long_at_bar0, 1: target}),
                          config=config(fees=(0.0002, 0.0005)))
    tp = row(result.fills, 1)
    assert tp["price"] == pytest.approx(110.0)
    assert tp["realized_pnl"] == pytest.approx(1000.0)
    assert tp["fee"] == pytest.approx(100 * 110 * 0.0005)


def test_reduce_only_that_would_increase_is_rejected_not_raised():
    rows = [FLAT, FLAT, FLAT]
    result = run_backtest(market(rows), Script({0: lambda ctx: ctx.sell(1.0, reduce_only=True)}),
                          config=config())
    rej = row(result.rejections)
    assert rej["reason"] == "reduce_only_increase"
    assert ms(rej["ts"]) == T0 + MINUTE  # the bar-0 close
    assert result.fills.height == 0
    assert row(result.orders)["status"] == "rejected"


def test_leverage_above_tier_cap_is_refused_before_the_run_and_rejected_mid_run():
    capped = TierTable.from_rates([(0.0, 0.005, 20.0)])
    # configured above the cap: refused before the first bar, with the cap and the bracket
    with pytest.raises(ConfigError, match=r"BTC/USDT:USDT: leverage 25x is above the venue's "
                                          r"cap 20x .*bracket 1 .*max 20x.*Lower the leverage"):
        run_backtest(market([FLAT] * 3), Script({0: long_at_bar0}),
                     config=config(leverage=25.0, tiers=capped))
    attempts = {}

    def act(ctx):  # noqa: ANN001
        attempts["set"] = ctx.set_leverage(30.0)
        ctx.buy(10.0)

    result = run_backtest(market([FLAT] * 3), Script({0: act}),
                          config=config(leverage=10.0, tiers=capped))
    # a change asked mid-run is an outcome: a rejection row, the order fills at 10x
    assert result.rejections["reason"].to_list() == ["leverage_cap"]
    assert result.rejections["type"].to_list() == ["set_leverage"]
    assert attempts["set"] is False
    assert result.fills.height == 1


def test_the_pre_run_leverage_check_uses_the_configured_notional():
    two = TierTable.from_rates([(0.0, 0.005, 50.0), (50_000.0, 0.01, 25.0)])

    class Sized(Script):
        exposure = 2.0  # 20,000 notional: bracket 1 allows 50x

    run_backtest(market([FLAT] * 3), Sized({}), config=config(leverage=40.0, tiers=two))
    # hold-like strategies without an exposure post the whole wallet: 400,000 in bracket 2
    with pytest.raises(ConfigError, match=r"leverage 40x is above the venue's cap 25x for the "
                                          r"configured position notional 400,000\.00 USDT: "
                                          r"bracket 2"):
        run_backtest(market([FLAT] * 3), Script({}), config=config(leverage=40.0, tiers=two))


def test_min_notional_and_lot_size_rejections_with_venue_rounding():
    def act(ctx):  # noqa: ANN001
        ctx.buy(0.5)      # 50 USDT < 100 USDT BTC minimum notional
        ctx.buy(0.0004)   # rounds to 0 at the 0.001 lot

    result = run_backtest(market([FLAT] * 3), Script({0: act}), config=config(rounding=True))
    assert result.rejections["reason"].to_list() == ["min_notional", "lot_size"]


def test_cross_margin_loss_on_one_symbol_liquidates_both():
    def both(ctx):  # noqa: ANN001
        ctx.target_exposure(5.0, SYMBOL)
        ctx.target_exposure(5.0, ETH)

    crash = (100, 100.2, 80.5, 81, 100, 100.1, 80, 81)
    data = market([FLAT, FLAT, crash, (81, 82, 80, 81)], extra={ETH: [FLAT] * 4})
    result = run_backtest(data, Script({0: both}), config=config(margin_mode="cross"))
    liq = result.liquidations
    assert liq.height == 2 and set(liq["symbol"]) == {SYMBOL, ETH}
    # equity = 10000 + 500*(P - 100); MM = 0.005*500*P + 0.005*500*100 -> breach at P <= 80.9045
    trigger_mark = row(liq.filter(pl.col("symbol") == SYMBOL))["mark_price"]
    assert trigger_mark == pytest.approx(40250 / 497.5, rel=1e-9)
    # both closed 1 s after the trigger: BTC on its last path (ETH stays at 100)
    bar = T0 + 2 * MINUTE
    fill = path_at(bar, MINUTE, (100, 80.5, 100.2, 81),
                   trigger_ms(bar, MINUTE, (100, 80, 100.1, 81), trigger_mark) + LATENCY)
    remaining = 10_000 + 500 * (fill - 100)
    assert liq["insurance_fund_delta"].sum() == pytest.approx(remaining)
    assert liq["margin_lost"].sum() == pytest.approx(10_000)
    assert result.summary["final_equity"] == pytest.approx(0.0)


def test_hedge_mode_long_and_short_legs():
    def open_legs(ctx):  # noqa: ANN001
        ctx.buy(10.0)   # long leg
        ctx.sell(10.0)  # short leg (hedge mode opens it)

    def reduce_long(ctx):  # noqa: ANN001
        ctx.sell(10.0, reduce_only=True)

    # the short leg's own isolated LP is (100 + 10*100) / (10*0.005 + 10) = 109.45: 105 is safe
    rows = [FLAT, FLAT, (100, 105, 100, 105), (105, 105, 105, 105), (105, 105, 105, 105)]
    result = run_backtest(market(rows), Script({0: open_legs, 2: reduce_long}),
                          config=config(position_mode="hedge"))
    legs = result.positions.filter(pl.col("ts") == result.positions["ts"][0])
    assert sorted(legs["position_side"]) == ["long", "short"]
    assert sorted(legs["qty"]) == [-10.0, 10.0]
    assert sorted(legs["isolated_margin"]) == [pytest.approx(100.0)] * 2
    close = row(result.fills, 2)
    assert close["realized_pnl"] == pytest.approx(50.0)  # 10 * (105 - 100)
    assert result.liquidations.height == 0
    last = result.positions.tail(1).row(0, named=True)
    assert last["position_side"] == "short" and last["unrealized_pnl"] == pytest.approx(-50.0)
    assert last["liquidation_price"] == pytest.approx(1100 / 10.05)


def test_leverage_changed_mid_run_applies_to_the_next_position():
    actions = {0: long_at_bar0, 1: lambda ctx: (ctx.set_leverage(5.0), ctx.close()),
               2: long_at_bar0}
    result = run_backtest(market([FLAT] * 5), Script(actions), config=config())
    pos = result.positions
    first = pos.filter(pl.col("ts") == pl.col("ts").min()).row(0, named=True)
    last = pos.tail(1).row(0, named=True)
    assert first["isolated_margin"] == pytest.approx(1000.0)
    assert last["isolated_margin"] == pytest.approx(2000.0) and last["leverage"] == 5.0
    assert last["liquidation_price"] == pytest.approx((2000 - 10_000) / (0.5 - 100))


@pytest.mark.parametrize("policy, liquidated", [("adaptive", False), ("worst_case", True)])
def test_path_policy_changes_the_outcome(policy, liquidated):
    def target(ctx):  # noqa: ANN001
        ctx.sell(100, trigger=101.0, reduce_only=True)

    rows = [FLAT, FLAT, (100, 101.5, 89, 95, 100, 101.2, 90, 95.5), (95, 96, 94, 95)]
    result = run_backtest(market(rows), Script({0: long_at_bar0, 1: target}),
                          config=config(path_policy=policy))
    assert (result.liquidations.height == 1) is liquidated
    if not liquidated:
        assert row(result.fills, 1)["realized_pnl"] == pytest.approx(100.0)
    else:
        bar = T0 + 2 * MINUTE
        fill = path_at(bar, MINUTE, (100, 89, 101.5, 95),
                       trigger_ms(bar, MINUTE, (100, 90, 101.2, 95.5), LP_10X) + LATENCY)
        assert row(result.liquidations)["bad_debt"] == pytest.approx(-(1000 + 100 * (fill - 100)))


def test_detail_candles_drive_the_liquidation_inside_a_coarse_bar():
    coarse = [FLAT, (100, 100, 89.5, 95, 100, 100, 90, 95), (95, 95, 95, 95)]
    detail = [FLAT] * 60 + [FLAT] * 30 + [(100, 100, 89.5, 95, 100, 100, 90, 95)] \
        + [(95, 95, 95, 95)] * 29 + [(95, 95, 95, 95)] * 60
    script = Script({0: long_at_bar0})
    fine = run_backtest(market(coarse, timeframe="1h", detail=detail, detail_timeframe="1m"),
                        script, config=config())
    assert script.seen == [0, 1, 2]  # the strategy runs on the hourly bars only
    coarse_only = run_backtest(market(coarse, timeframe="1h"), Script({0: long_at_bar0}),
                               config=config())
    start = T0 + HOUR + 30 * MINUTE  # the detail minute that crosses
    trig = trigger_ms(start, MINUTE, (100, 90, 100, 95), LP_10X)
    assert ms(row(fine.liquidations)["trigger_ts"]) == trig
    assert ms(row(fine.liquidations)["ts"]) == trig + LATENCY
    coarse_trig = trigger_ms(T0 + HOUR, HOUR, (100, 90, 100, 95), LP_10X)
    assert ms(row(coarse_only.liquidations)["ts"]) == coarse_trig + LATENCY
    assert row(fine.liquidations)["fill_price"] == pytest.approx(
        path_at(start, MINUTE, (100, 89.5, 100, 95), trig + LATENCY))


def test_forced_orders_cost_more_than_orderly_exits():
    def exit_(ctx):  # noqa: ANN001
        ctx.close()

    model = FixedBps(bps=2.0, forced_bps=10.0)
    rows = [FLAT, FLAT, FLAT, (100, 100.5, 88, 95, 100, 100.2, 90.3, 96), FLAT]
    orderly = run_backtest(market(rows), Script({0: long_at_bar0, 1: exit_}),
                           config=config(slippage=model))
    forced = run_backtest(market(rows), Script({0: long_at_bar0}), config=config(slippage=model))
    assert row(orderly.fills, 1)["slippage_bps"] == pytest.approx(2.0)
    liq = row(forced.liquidations)
    assert liq["slippage_bps"] == pytest.approx(10.0)
    bar = T0 + 3 * MINUTE  # the LP is the slipped entry's (100.02), read from the row
    ref = path_at(bar, MINUTE, (100, 88, 100.5, 95),
                  trigger_ms(bar, MINUTE, (100, 90.3, 100.2, 96), liq["liquidation_price"]) + LATENCY)
    assert liq["reference_price"] == pytest.approx(ref)
    assert liq["fill_price"] == pytest.approx(ref * (1 - 0.001))
    assert liq["slippage_cost"] > row(orderly.fills, 1)["slippage_cost"]
    assert math.isclose(sum(forced.summary["attribution"].values()),
                        forced.summary["final_equity"] - 10_000, abs_tol=1e-6)


def test_candle_helper_keeps_marks():
    frame = candles([(1, 2, 0.5, 1.5, 1.1, 1.9, 0.6, 1.4)])
    assert frame["mark_low"][0] == 0.6


def _trades(rows: list[tuple[int, float]]) -> pl.DataFrame:
    return pl.DataFrame({"ts": [t for t, _ in rows], "price": [p for _, p in rows],
                         "qty": [0.1] * len(rows), "side": ["sell"] * len(rows)}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def _with_trades(rows: list[tuple], trades: pl.DataFrame):  # noqa: ANN202
    from backtest import MarketData

    return MarketData.from_frames({SYMBOL: candles(rows)}, timeframe="1m", trades={SYMBOL: trades})


def test_trade_ticks_fill_a_stop_at_the_trade_that_crossed_it():
    bar2 = T0 + 2 * MINUTE
    ticks = _trades([(bar2 + 10_000, 99.0), (bar2 + 20_000, 96.0), (bar2 + 30_000, 93.0),
                     (bar2 + 50_000, 97.0)])
    rows = [FLAT, FLAT, (100, 100, 93, 97, 100, 100, 96, 97), (97, 97, 97, 97)]

    def protect(ctx):  # noqa: ANN001
        ctx.sell(100, trigger=95.0, reduce_only=True)

    result = run_backtest(_with_trades(rows, ticks), Script({0: long_at_bar0, 1: protect}),
                          config=config())
    stop = row(result.fills, 1)
    assert stop["price"] == pytest.approx(93.0)  # the candle path would have filled at 95
    assert ms(stop["ts"]) == bar2 + 30_000
    assert stop["realized_pnl"] == pytest.approx(100 * (93 - 100))


def test_trade_ticks_liquidation_fills_at_the_trade_in_force_after_the_latency():
    bar2 = T0 + 2 * MINUTE
    ticks = _trades([(bar2 + 5_000, 99.0), (bar2 + 15_000, 95.0), (bar2 + 25_000, 89.0),
                     (bar2 + 35_000, 92.0), (bar2 + 50_000, 96.0)])
    rows = [FLAT, FLAT, (100, 100.5, 89, 96, 100, 100.2, 90.3, 96), (96, 96, 96, 96)]
    result = run_backtest(_with_trades(rows, ticks), Script({0: long_at_bar0}), config=config())
    r = row(result.liquidations)
    # mark: 100 at the open, 100.2 at the highest trade (5 s), 90.3 at the lowest (25 s);
    # at the 15 s trade it is 100.2 + (90.3 - 100.2) * 10/20 = 95.25, so LP is crossed between
    # the 15 s and the 25 s trade (at 24.69 s); 1 s later the last trade is the 25 s one at 89
    mark_15 = 100.2 + (90.3 - 100.2) * 0.5
    f = (mark_15 - LP_10X) / (mark_15 - 90.3)
    trig = bar2 + 15_000 + int(f * 10_000)
    assert ms(r["trigger_ts"]) == trig
    assert bar2 + 25_000 <= trig + LATENCY < bar2 + 35_000
    assert ms(r["ts"]) == trig + LATENCY
    assert r["fill_price"] == pytest.approx(89.0)
    assert r["bad_debt"] == pytest.approx(100.0)


TWO_TIERS = TierTable.from_rates([(0.0, 0.005, 50.0), (50_000.0, 0.01, 25.0)])  # cum 0 / 250


def _tier_down_run(low: float, last_low: float | None = None, mode: str = "tier_down",
                   tiers: TierTable = TWO_TIERS, exposure: float = 6.0):  # noqa: ANN202
    last_low = low if last_low is None else last_low
    rows = [FLAT, FLAT, (100, 100, last_low, 97, 100, 100, low, 97), (97, 97, 97, 97)]
    cfg = config(leverage=20.0, tiers=tiers, liquidation_fee_rate=0.005, liquidation_mode=mode)
    return run_backtest(market(rows), Script({0: lambda ctx: ctx.target_exposure(exposure)}),
                        config=cfg)


def test_tier_down_liquidation_reduces_to_the_lower_bracket_and_survives():
    result = _tier_down_run(95.5)
    # 600 @ 100, isolated 3000; LP in bracket 2: (3000 + 250 - 60000) / (600*0.01 - 600)
    lp = (3000 + 250 - 60_000) / (6 - 600)
    keep = 50_000 / lp * (1 - 1e-9)          # just below the bracket-2 floor at the trigger mark
    reduced = 600 - keep
    # the plan at the trigger mark: balance = MM(600 @ lp) = 600*lp*1% - 250, less the fee on
    # the reduced part, is above the remainder's bracket-1 MM -> one step is enough
    assert 600 * lp * 0.01 - 250 - 0.005 * reduced * lp - keep * lp * 0.005 > 0
    bar = T0 + 2 * MINUTE
    fill = path_at(bar, MINUTE, (100, 95.5, 100, 97),
                   trigger_ms(bar, MINUTE, (100, 95.5, 100, 97), lp) + LATENCY)
    assert fill > 100 - 3000 / 600            # better than bankruptcy (95): no bound needed
    fee = 0.005 * reduced * fill              # clearance fee on the reduced amount only
    margin = 3000 + reduced * (fill - 100) - fee  # the pool keeps its margin for the remainder
    liq = result.liquidations
    assert liq.height == 1
    r = row(liq)
    assert r["liquidation_price"] == pytest.approx(lp, rel=1e-12) and r["tier"] == 2
    assert r["qty"] == pytest.approx(reduced, rel=1e-9)
    assert r["fill_price"] == pytest.approx(fill, rel=1e-12)
    assert r["fee"] == pytest.approx(fee, rel=1e-9) and r["insurance_fund_delta"] == pytest.approx(fee)
    assert r["bad_debt"] == 0.0
    last = result.positions.tail(1).row(0, named=True)
    assert last["qty"] == pytest.approx(keep, rel=1e-9)
    assert last["isolated_margin"] == pytest.approx(margin, rel=1e-9)
    # the survivor's new LP is solved in bracket 1
    assert last["liquidation_price"] == pytest.approx((margin - keep * 100) / (keep * 0.005 - keep),
                                                      rel=1e-9)
    assert result.summary["final_equity"] == pytest.approx(10_000 + reduced * (fill - 100) - fee
                                                           + keep * (97 - 100), rel=1e-9)


def test_tier_down_then_takeover_when_still_deficient():
    result = _tier_down_run(95.0)
    liq = result.liquidations
    # the step leaves the pool compliant at the trigger mark, the mark keeps falling to 95
    # and the remainder (bracket 1: no lower bracket) is taken over in full
    assert liq.height == 2
    assert liq["qty"].sum() == pytest.approx(600.0)
    assert result.equity["position_qty"][-1] == 0.0
    full = _tier_down_run(95.0, mode="full")
    assert full.liquidations.height == 1
    # either way the trader loses the whole isolated margin of 3000, never more
    assert result.summary["final_equity"] == pytest.approx(7000.0)
    assert full.summary["final_equity"] == pytest.approx(7000.0)
    assert result.liquidations["margin_lost"].sum() == pytest.approx(3000.0)


THREE_TIERS = TierTable.from_rates([(0.0, 0.005, 50.0), (50_000.0, 0.01, 25.0),
                                    (100_000.0, 0.02, 20.0)])  # cum 0 / 250 / 1,250


def test_tier_down_steps_through_several_brackets_in_one_trigger():
    # 1,100 @ 100 at 20x: 110,000 notional in bracket 3, isolated 5,500. The mark gaps to 95.5
    # at bar 2's open (below the LP ~95.78): the pool is 301 short of maintenance there.
    # With continuous maintenance amounts one bracket down is enough only when the fee rate is
    # below the bracket's rate; a gap's deficit needs more brackets in the same trigger.
    rows = [FLAT, FLAT, (95.5, 97, 95.5, 97), (97, 97, 97, 97)]
    cfg = config(leverage=20.0, tiers=THREE_TIERS, liquidation_fee_rate=0.005,
                 liquidation_mode="tier_down")
    result = run_backtest(market(rows), Script({0: lambda ctx: ctx.target_exposure(11.0)}),
                          config=cfg)
    m = 95.5
    balance = 5500 + 1100 * (m - 100)                 # 550
    assert balance < 1100 * m * 0.02 - 1250           # MM 851: breached, bracket 3
    keep2 = 100_000 / m * (1 - 1e-9)
    keep1 = 50_000 / m * (1 - 1e-9)
    fee2 = 0.005 * (1100 - keep2) * m
    fee1 = 0.005 * (keep2 - keep1) * m
    assert balance - fee2 - (keep2 * m * 0.01 - 250) <= 0          # one bracket: still short
    assert balance - fee2 - fee1 - keep1 * m * 0.005 > 0            # two: compliant
    liq = result.liquidations
    assert liq.height == 2
    assert liq["trigger_ts"].n_unique() == 1                        # both steps of one trigger
    assert ms(liq["trigger_ts"][0]) == T0 + 2 * MINUTE
    assert liq["qty"].to_list() == pytest.approx([1100 - keep2, keep2 - keep1], rel=1e-9)
    assert liq["fill_price"].to_list() == pytest.approx([95.5, 95.5])  # open -> low at 95.5
    last = result.positions.tail(1).row(0, named=True)
    assert last["qty"] == pytest.approx(keep1, rel=1e-9)
    margin = 5500 + (1100 - keep1) * (95.5 - 100) - fee2 - fee1
    assert last["isolated_margin"] == pytest.approx(margin, rel=1e-9)
    assert liq["bad_debt"].sum() == 0.0


def test_tier_down_step_is_bounded_by_bankruptcy_like_the_takeover():
    # the mark only touches the LP (95.54) but the last price wicks to 80 at the fill: the
    # step's fill (~80.3) is far below the bankruptcy price 95
    tier_down = _tier_down_run(95.5, last_low=80.0)
    full = _tier_down_run(95.5, last_low=80.0, mode="full")
    r = row(tier_down.liquidations)
    lp = (3000 + 250 - 60_000) / (6 - 600)
    bar = T0 + 2 * MINUTE
    fill = path_at(bar, MINUTE, (100, 80.0, 100, 97),
                   trigger_ms(bar, MINUTE, (100, 95.5, 100, 97), lp) + LATENCY)
    reduced = 600 - 50_000 / lp * (1 - 1e-9)
    assert r["fill_price"] == pytest.approx(fill, rel=1e-12) and fill < 95.0
    # the trader's loss on the step is taken at the bankruptcy price 95: 5 per unit, no more
    left = 3000 + reduced * (95.0 - 100)
    fee = min(0.005 * reduced * fill, left)
    assert r["margin_lost"] == pytest.approx(reduced * 5.0 + fee, rel=1e-9)
    assert r["bad_debt"] == pytest.approx(reduced * (95.0 - fill), rel=1e-9)
    assert r["insurance_fund_delta"] == pytest.approx(fee - reduced * (95.0 - fill), rel=1e-9)
    for result in (tier_down, full):
        assert min(result.equity["wallet_balance"].to_list()) >= 0.0
        assert min(result.positions["isolated_margin"].to_list()) >= 0.0
        # the trader never loses more than the isolated margin of 3000
        assert result.summary["final_equity"] >= 7000.0 - 1e-9
        # the wallet identity: every loss is the trader's or the fund's, counted once
        s = result.summary
        assert s["final_equity"] + s["insurance_fund_delta"] == pytest.approx(
            10_000 + _cash_pnl(result), abs=1e-6)


def _cash_pnl(result) -> float:  # noqa: ANN001
    """Sum of -side*qty*price over all fills plus the open quantity at the last mark."""
    fills = result.fills
    sign = pl.when(pl.col("side") == "buy").then(-1.0).otherwise(1.0)
    cash = fills.select((sign * pl.col("qty") * pl.col("price")).sum()).item()
    fees = fills.filter(pl.col("liquidity") != "liquidation")["fee"].sum()
    last = result.equity.tail(1).row(0, named=True)
    return cash - fees + last["position_qty"] * last["mark_price"]


def test_slippage_scale_column_multiplies_fills_in_its_bars_only():
    """A thin book in bars 3-4 (``slippage_scale`` 5): the orderly exit and the forced fill
    there pay five times the model's bps; the entry at bar 1 pays the model's own."""
    def exit_(ctx):  # noqa: ANN001
        ctx.close()

    model = FixedBps(bps=2.0, forced_bps=10.0)
    rows = [FLAT, FLAT, FLAT, (100, 100.5, 88, 95, 100, 100.2, 90.3, 96), FLAT]
    thin = [1.0, 1.0, 5.0, 5.0, 1.0]

    def with_scale(scale: list[float]) -> MarketData:
        frame = candles(rows).with_columns(pl.Series("slippage_scale", scale))
        return MarketData.from_frames({SYMBOL: frame}, timeframe="1m")

    orderly = run_backtest(with_scale(thin), Script({0: long_at_bar0, 1: exit_}), config=config(slippage=model))
    assert row(orderly.fills, 0)["slippage_bps"] == pytest.approx(2.0)  # bar 1: normal book
    assert row(orderly.fills, 1)["slippage_bps"] == pytest.approx(10.0)  # bar 2: x5
    forced = run_backtest(with_scale(thin), Script({0: long_at_bar0}), config=config(slippage=model))
    liq = row(forced.liquidations)
    assert liq["slippage_bps"] == pytest.approx(50.0)  # forced 10 bps x5 in bar 3
    bar = T0 + 3 * MINUTE  # the LP is the slipped entry's, read from the row
    ref = path_at(bar, MINUTE, (100, 88, 100.5, 95),
                  trigger_ms(bar, MINUTE, (100, 90.3, 100.2, 96), liq["liquidation_price"]) + LATENCY)
    assert liq["fill_price"] == pytest.approx(ref * (1 - 0.005))
    normal = run_backtest(with_scale([1.0] * 5), Script({0: long_at_bar0}), config=config(slippage=model))
    assert row(normal.liquidations)["slippage_bps"] == pytest.approx(10.0)
    # an impact is never above 100 %: a huge factor fills at zero, not below
    huge = run_backtest(with_scale([1.0, 1.0, 1.0, 1e9, 1.0]), Script({0: long_at_bar0}),
                        config=config(slippage=model))
    assert row(huge.liquidations)["fill_price"] == 0.0


def test_the_venue_caps_resting_orders_per_symbol():
    """Binance USDⓈ-M: 200 open orders per symbol (MAX_NUM_ORDERS), 10 of them stop /
    take-profit (MAX_NUM_ALGO_ORDERS); beyond, each order is a rejection row."""
    placed: list = []

    def flood(ctx):  # noqa: ANN001
        for k in range(12):
            placed.append(ctx.buy(1.0, trigger=150.0 + k))  # far above: never triggers
        for k in range(195):
            placed.append(ctx.buy(1.0, price=50.0 - k * 0.1))  # far below: never fills

    def one_more(ctx):  # noqa: ANN001
        ctx.cancel(placed[0])
        placed.append(ctx.buy(1.0, trigger=149.0))

    result = run_backtest(market([FLAT] * 4), Script({0: flood, 1: one_more}),
                          config=config(venue="binance_usdm"))
    reasons = result.rejections.get_column("reason").to_list()
    assert reasons.count("max_stop_orders") == 2  # stops 11 and 12
    assert reasons.count("max_open_orders") == 5  # limits 191..195: 10 stops + 190 limits rest
    accepted = [o for o in placed[:207] if o.status != "rejected"]
    assert len(accepted) == 200 and sum(o.type == "stop_market" for o in accepted) == 10
    assert placed[-1].status == "open"  # cancelling a stop makes room for another
    message = result.rejections.filter(pl.col("reason") == "max_open_orders").get_column("message")[0]
    assert "allows 200 per symbol" in message


@pytest.mark.parametrize("offset", [8 * HOUR, 8 * HOUR + 30 * MINUTE])  # at an open, inside a bar
def test_funding_beyond_the_margin_empties_the_pool_and_liquidates_at_that_instant(offset):
    # 50 % per 8 h on a long of 100 @ 100 (isolated 1,000): the payment is 5,000
    funding = pl.DataFrame({"ts": [T0 + offset], "rate": [0.5], "interval_hours": [8.0],
                            "mark_price": [100.0]}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    data = market(_hourly_flat(), funding=funding, timeframe="1h")
    result = run_backtest(data, Script({0: long_at_bar0}), config=config())
    assert result.funding["payment"].to_list() == pytest.approx([-5000.0])
    # the pool pays what it has (1,000); the other 4,000 is bad debt paid by the fund
    assert result.summary["bad_debt"] == pytest.approx(4000.0)
    assert min(result.equity["wallet_balance"].to_list()) >= 0.0
    assert min(result.positions["isolated_margin"].to_list()) >= 0.0
    liq = row(result.liquidations)
    # an empty pool is below maintenance at once: the liquidation triggers at the settlement
    assert ms(liq["trigger_ts"]) == T0 + offset
    assert liq["bad_debt"] == pytest.approx(0.0)  # flat prices: nothing left to lose
    assert result.summary["final_equity"] == pytest.approx(9000.0)
    s = result.summary
    # money is conserved: trader + fund = initial + price PnL + funding
    assert s["final_equity"] + s["insurance_fund_delta"] == pytest.approx(
        10_000 + _cash_pnl(result) + result.funding["payment"].sum())


def test_liquidation_latency_is_configurable_and_validated():
    rows = [FLAT, FLAT, (100, 100.5, 88, 95, 100, 100.2, 90.3, 96), (95, 96, 94, 95)]
    bar = T0 + 2 * MINUTE
    trig = trigger_ms(bar, MINUTE, (100, 90.3, 100.2, 96), LP_10X)
    for latency in (0, 250, 5_000):
        result = run_backtest(market(rows), Script({0: long_at_bar0}),
                              config=config(liquidation_latency_ms=latency))
        r = row(result.liquidations)
        assert ms(r["ts"]) == trig + latency
        assert r["fill_price"] == pytest.approx(path_at(bar, MINUTE, (100, 88, 100.5, 95),
                                                        trig + latency), rel=1e-12)
    for bad in (-1, 1.5, float("nan"), "1s", True):
        with pytest.raises(ConfigError, match="liquidation_latency_ms: expected an integer >= 0"):
            config(liquidation_latency_ms=bad)
