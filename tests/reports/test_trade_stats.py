"""Trade statistics, monthly returns, drawdown periods, benchmark and effective leverage."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from reports.charts import attribution_steps
from reports.compare import effective_leverage
from reports.rundir import load_run
from reports.trade_stats import (
    buy_and_hold,
    drawdown_periods,
    monthly_returns,
    net_results,
    trade_stats,
)

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 UTC


def _trades(rows):
    return pl.DataFrame(rows, schema={
        "symbol": pl.String, "side": pl.String, "entry_ts": pl.Int64, "exit_ts": pl.Int64,
        "qty": pl.Float64, "entry_price": pl.Float64, "exit_price": pl.Float64, "pnl": pl.Float64,
        "fees": pl.Float64, "funding": pl.Float64, "exit_reason": pl.String}, orient="row",
    ).with_columns(pl.col("entry_ts", "exit_ts").cast(pl.Datetime("ms", "UTC")))


TRADES = _trades([
    ("X", "long", T0, T0 + 2 * H, 1.0, 100.0, 110.0, 10.0, 1.0, 0.5, "signal"),        # +9.5
    ("X", "short", T0 + 3 * H, T0 + 4 * H, 1.0, 110.0, 115.0, -5.0, 1.0, 0.0, "stop"),  # -6
    ("X", "long", T0 + 5 * H, T0 + 9 * H, 2.0, 100.0, 80.0, -40.0, 2.0, -1.0, "liquidation"),  # -43
    ("X", "long", T0 + 10 * H, T0 + 11 * H, 1.0, 80.0, 90.0, 10.0, 0.5, 0.0, "take_profit"),  # +9.5
])


def test_trade_statistics_from_a_table_computed_by_hand():
    net = net_results(TRADES)
    assert net.tolist() == pytest.approx([9.5, -6.0, -43.0, 9.5])
    s = trade_stats(TRADES)
    assert s.all.trades == 4 and s.all.wins == 2 and s.all.win_rate == pytest.approx(0.5)
    assert s.all.profit_factor == pytest.approx(19.0 / 49.0)
    assert s.all.expectancy == pytest.approx(-30.0 / 4)
    assert (s.all.best, s.all.worst) == (pytest.approx(9.5), pytest.approx(-43.0))
    assert s.all.mean_holding_ms == pytest.approx((2 + 1 + 4 + 1) / 4 * H)
    assert s.all.max_holding_ms == 4 * H
    assert (s.long.trades, s.short.trades) == (3, 1)
    assert s.short.net == pytest.approx(-6.0)
    # exit reasons in the documented order, only those the run had
    assert list(s.by_exit_reason) == ["signal", "stop", "take_profit", "liquidation"]
    assert s.by_exit_reason["liquidation"].net == pytest.approx(-43.0)


def test_no_losing_trade_has_no_profit_factor():
    s = trade_stats(TRADES.head(1))
    assert s.all.profit_factor is None and s.all.win_rate == 1.0
    assert trade_stats(TRADES.head(0)).all.trades == 0


def _ms(y, m, d):
    return int(datetime(y, m, d, tzinfo=timezone.utc).timestamp() * 1000)


def test_monthly_returns_chain_month_end_equity():
    ts = np.array([_ms(2024, 1, 10), _ms(2024, 1, 31), _ms(2024, 2, 15), _ms(2024, 3, 1)])
    eq = np.array([1_050.0, 1_100.0, 990.0, 1_089.0])
    table = monthly_returns(ts, eq, 1_000.0)
    assert table.get_column("month").to_list() == [1, 2, 3]
    assert table.get_column("return").to_list() == pytest.approx([0.10, -0.10, 0.10])


def test_drawdown_periods_find_each_fall_and_its_recovery():
    ts = np.arange(8, dtype=np.int64) * 86_400_000 + T0
    eq = np.array([100.0, 90.0, 95.0, 101.0, 70.0, 80.0, 102.0, 99.0])
    periods = drawdown_periods(ts, eq, 100.0, T0 - 86_400_000)
    assert periods.get_column("depth").to_list() == pytest.approx(
        [1 - 70 / 101, 0.10, 1 - 99 / 102])
    first = periods.row(0, named=True)
    assert (first["peak"], first["trough"], first["recovery"]) == (ts[3], ts[4], ts[6])
    assert first["days"] == pytest.approx(3.0)
    assert periods.row(2, named=True)["recovered"] is False


def test_buy_and_hold_scales_the_initial_balance_by_the_price():
    hold = buy_and_hold(np.array([np.nan, 100.0, 150.0, 50.0]), 1_000.0)
    assert hold[1:].tolist() == [1_000.0, 1_500.0, 500.0]


def test_attribution_splits_absorbed_bad_debt_out_of_the_penalty():
    parts = {"price_move": -1_300.0, "fees": -10.0, "funding": 2.0, "slippage": -3.0,
             "liquidation_penalty": 290.0}
    steps = dict(attribution_steps(parts, bad_debt=300.0))
    assert steps["liquidation_penalty"] == pytest.approx(-10.0)
    assert steps["bad_debt_covered"] == pytest.approx(300.0)
    assert sum(steps.values()) == pytest.approx(sum(parts.values()))
    assert "bad_debt_covered" not in dict(attribution_steps(parts, bad_debt=0.0))


def test_effective_leverage_is_notional_over_equity_at_entry(demo_run):
    run = load_run(demo_run.path)
    median, high = effective_leverage(run)
    trades = run.trades
    ts = run.ts_ms("equity")
    eq = run.equity.get_column("equity").to_numpy()
    first = trades.row(0, named=True)
    at = np.searchsorted(ts, int(first["entry_ts"].timestamp() * 1000), side="right") - 1
    base = eq[at] if at >= 0 else run.initial_balance
    assert high >= first["qty"] * first["entry_price"] / base - 1e-9
    assert 0 < median <= high
