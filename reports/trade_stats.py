"""Trade statistics, monthly returns and drawdown periods of a run, from its §6 tables.

Pure functions: polars frames / numpy arrays in, numbers and frames out, no I/O.

Conventions (docs/report.md "Trade statistics"):

* A trade is a row of ``trades.parquet`` (a round trip). Its **net result** is
  ``pnl - fees + funding`` in the margin asset: ``pnl`` is the realized price PnL, ``fees``
  the trading and liquidation fees charged to it (positive costs), ``funding`` the funding it
  received (+) or paid (-) while open.
* A win is a net result > 0. Profit factor = gross wins / gross losses (``None`` without a
  losing trade). Expectancy = mean net result per trade.
* Holding time = ``exit_ts - entry_ts``.
* Exit reasons are reported in the engine's order (:data:`backtest.orders.EXIT_REASONS`:
  signal, stop, take_profit, trailing_stop, liquidation, adl, end_of_data), followed by any
  other code a run holds (a reason a run never had is not listed).
* Monthly return = equity at the month's last bar / equity at the previous month's last bar
  - 1 (the first month against the initial balance); months are UTC calendar months.
* A drawdown period runs from a peak (the last bar at the running maximum, or the run's
  start for the initial balance) through its trough to the first bar back at the peak
  (``recovery`` is None while it never recovered). Depth is a positive fraction of the peak;
  printed negative (:func:`backtest.formatting.fmt_drawdown`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import polars as pl

from backtest.orders import EXIT_REASONS
from reports.metrics import drawdown_series

EXIT_REASON_ORDER = EXIT_REASONS
"""Exit reasons in the order reports list them (CONTRACTS §6 ``trades.exit_reason``)."""


@dataclass(frozen=True)
class SideStats:
    """Statistics of one group of trades (all, longs, shorts, one exit reason).

    Money in the margin asset; fractions as fractions; durations in milliseconds.
    """

    trades: int
    wins: int
    win_rate: float | None
    net: float
    gross_profit: float
    gross_loss: float
    profit_factor: float | None
    expectancy: float | None
    average_win: float | None
    average_loss: float | None
    best: float | None
    worst: float | None
    mean_holding_ms: float | None
    median_holding_ms: float | None
    max_holding_ms: float | None


def net_results(trades: pl.DataFrame) -> np.ndarray:
    """Net result of each trade: ``pnl - fees + funding`` (margin asset)."""
    if trades.height == 0:
        return np.zeros(0)
    cols = [trades.get_column(c).cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy()
            for c in ("pnl", "fees", "funding")]
    return cols[0] - cols[1] + cols[2]


def _holding_ms(trades: pl.DataFrame) -> np.ndarray:
    if trades.height == 0:
        return np.zeros(0)
    entry = trades.get_column("entry_ts").dt.epoch("ms").to_numpy().astype(np.float64)
    exit_ = trades.get_column("exit_ts").dt.epoch("ms").to_numpy().astype(np.float64)
    return exit_ - entry


def group_stats(net: np.ndarray, holding_ms: np.ndarray) -> SideStats:
    """Statistics of the trades whose net results and holding times are given."""
    n = int(net.size)
    if n == 0:
        return SideStats(0, 0, None, 0.0, 0.0, 0.0, None, None, None, None, None, None,
                         None, None, None)
    wins = net[net > 0]
    losses = net[net < 0]
    gross_profit = float(wins.sum())
    gross_loss = float(-losses.sum())
    held = holding_ms[np.isfinite(holding_ms)]
    return SideStats(
        trades=n,
        wins=int(wins.size),
        win_rate=wins.size / n,
        net=float(net.sum()),
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=gross_profit / gross_loss if gross_loss > 0 else None,
        expectancy=float(net.mean()),
        average_win=float(wins.mean()) if wins.size else None,
        average_loss=float(losses.mean()) if losses.size else None,
        best=float(net.max()),
        worst=float(net.min()),
        mean_holding_ms=float(held.mean()) if held.size else None,
        median_holding_ms=float(np.median(held)) if held.size else None,
        max_holding_ms=float(held.max()) if held.size else None,
    )


@dataclass(frozen=True)
class TradeStats:
    """Trade statistics of a run: all trades, longs, shorts, and per exit reason."""

    all: SideStats
    long: SideStats
    short: SideStats
    by_exit_reason: dict[str, SideStats]


def exit_reason_order(reasons: list[str]) -> list[str]:
    """The reasons present, in :data:`EXIT_REASON_ORDER` then alphabetical order."""
    present = set(reasons)
    known = [r for r in EXIT_REASON_ORDER if r in present]
    return known + sorted(present - set(EXIT_REASON_ORDER))


def trade_stats(trades: pl.DataFrame) -> TradeStats:
    """Compute :class:`TradeStats` from ``trades.parquet``."""
    net = net_results(trades)
    held = _holding_ms(trades)
    sides = trades.get_column("side").to_numpy() if trades.height else np.zeros(0, dtype=object)
    reasons = [str(r) for r in trades.get_column("exit_reason").to_list()] if trades.height else []
    reason_arr = np.asarray(reasons, dtype=object)
    by_reason = {r: group_stats(net[reason_arr == r], held[reason_arr == r])
                 for r in exit_reason_order(reasons)}
    return TradeStats(all=group_stats(net, held),
                      long=group_stats(net[sides == "long"], held[sides == "long"]),
                      short=group_stats(net[sides == "short"], held[sides == "short"]),
                      by_exit_reason=by_reason)


def monthly_returns(ts_ms: np.ndarray, equity: np.ndarray, initial: float) -> pl.DataFrame:
    """Return per UTC calendar month: ``year``, ``month`` (1-12), ``return`` (fraction).

    The equity of a month is the equity at its last bar; the first month is measured
    against ``initial``. A month starting from zero or negative equity has return None.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    values = np.asarray(equity, dtype=np.float64)
    if ts.size == 0:
        return pl.DataFrame(schema={"year": pl.Int32, "month": pl.Int8, "return": pl.Float64})
    frame = pl.DataFrame({"ts": pl.Series(ts).cast(pl.Datetime("ms", "UTC")), "equity": values})
    months = (frame.group_by_dynamic("ts", every="1mo").agg(pl.col("equity").last())
              .sort("ts"))
    ends = months.get_column("equity").to_numpy()
    starts = np.concatenate(([float(initial)], ends[:-1]))
    ok = starts > 0
    rets = np.full(ends.shape, np.nan)
    np.divide(ends, starts, out=rets, where=ok)
    rets[ok] -= 1.0
    return pl.DataFrame({
        "year": months.get_column("ts").dt.year().cast(pl.Int32),
        "month": months.get_column("ts").dt.month().cast(pl.Int8),
        "return": pl.Series(rets).fill_nan(None),
    })


def drawdown_periods(ts_ms: np.ndarray, equity: np.ndarray, initial: float, start_ts: int,
                     *, top: int = 10) -> pl.DataFrame:
    """The ``top`` deepest drawdown periods, deepest first.

    Columns: ``peak`` ``trough`` ``recovery`` (int ms, recovery null while underwater),
    ``depth`` (positive fraction of the peak), ``days`` (peak to recovery, or to the last bar
    when not recovered), ``recovered`` (bool).
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    values = np.asarray(equity, dtype=np.float64)
    dd = drawdown_series(values, initial)
    rows: list[tuple[int, int, int | None, float, float, bool]] = []
    i, n = 0, values.size
    peak_ts = int(start_ts)
    while i < n:
        if dd[i] >= 0:
            peak_ts = int(ts[i])
            i += 1
            continue
        j = i
        while j < n and dd[j] < 0:
            j += 1
        segment = dd[i:j]
        trough = i + int(np.argmin(segment))
        recovered = j < n
        end_ts = int(ts[j]) if recovered else int(ts[-1])
        rows.append((peak_ts, int(ts[trough]), int(ts[j]) if recovered else None,
                     float(-segment.min()), (end_ts - peak_ts) / 86_400_000, recovered))
        if recovered:
            peak_ts = int(ts[j])
        i = j + 1 if recovered else j
    rows.sort(key=lambda r: -r[3])
    rows = rows[:top]
    return pl.DataFrame(rows, schema={"peak": pl.Int64, "trough": pl.Int64, "recovery": pl.Int64,
                                      "depth": pl.Float64, "days": pl.Float64,
                                      "recovered": pl.Boolean}, orient="row")


def buy_and_hold(last_price: np.ndarray, initial: float) -> np.ndarray:
    """Equity of holding ``initial`` worth of the coin unlevered from the first bar's price.

    ``initial * price / price[0]`` in the margin asset (a linear contract at 1x, no fees or
    funding): the benchmark a leveraged strategy has to beat.
    """
    prices = np.asarray(last_price, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(prices) & (prices > 0))
    if finite.size == 0:
        return np.full(prices.shape, np.nan)
    return float(initial) * prices / prices[finite[0]]


def month_label(month: int) -> str:
    """``1`` -> ``Jan``."""
    return datetime(2000, int(month), 1, tzinfo=timezone.utc).strftime("%b")
