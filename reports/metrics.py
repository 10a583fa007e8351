"""Headline performance and risk metrics computed from a run's tables.

Every function here is pure: arrays in, numbers out, no I/O. Conventions:

* Timestamps are ``int64`` milliseconds since the epoch (UTC).
* Years have 365 days (crypto trades every day); annualization uses the bar interval
  inferred from the equity table's ``ts`` (the median spacing), so a 1m run is annualized
  with 525,600 periods per year and a 1h run with 8,760.
* Returns and drawdowns are fractions (``0.12`` is 12 %). A drawdown depth is reported as a
  positive fraction of the running peak.
* Money is in the margin asset (USDT for linear contracts).
* A bar whose previous equity is zero or negative (a wiped-out account) has return 0: there
  is nothing left to gain or lose, and dividing by it would poison every ratio with inf/NaN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

MS_PER_DAY = 86_400_000
MS_PER_YEAR = 365 * MS_PER_DAY


def infer_interval_ms(ts_ms: np.ndarray) -> int:
    """Return the bar interval of a timestamp column.

    Parameters
    ----------
    ts_ms : numpy.ndarray
        Sorted bar timestamps, int64 milliseconds since the epoch.

    Returns
    -------
    int
        The median positive spacing in milliseconds (robust to gaps in the data).

    Raises
    ------
    ValueError
        When fewer than two distinct timestamps are given.
    """
    diffs = np.diff(np.asarray(ts_ms, dtype=np.int64))
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        raise ValueError(
            f"cannot infer the bar interval: expected at least two distinct timestamps, "
            f"found {len(ts_ms)} row(s); a report needs a run of two bars or more"
        )
    return int(np.median(diffs))


def periods_per_year(interval_ms: int) -> float:
    """Number of bars in a 365-day year for bars ``interval_ms`` milliseconds long."""
    if interval_ms <= 0:
        raise ValueError(f"bar interval must be positive milliseconds, found {interval_ms}")
    return MS_PER_YEAR / interval_ms


def bar_returns(equity: np.ndarray, initial: float) -> np.ndarray:
    """Simple per-bar returns of an equity curve, the first measured against ``initial``.

    Parameters
    ----------
    equity : numpy.ndarray
        Equity at each bar's close (margin asset).
    initial : float
        Equity before the first bar (the initial balance).

    Returns
    -------
    numpy.ndarray
        ``equity[i] / equity[i-1] - 1`` (``equity[-1]`` being ``initial``); 0 where the
        previous equity is <= 0.
    """
    values = np.asarray(equity, dtype=np.float64)
    previous = np.concatenate(([float(initial)], values[:-1]))
    alive = previous > 0
    returns = np.zeros_like(values)
    np.divide(values, previous, out=returns, where=alive)
    returns[alive] -= 1.0
    return returns


def total_return(final_equity: float, initial: float) -> float:
    """``final / initial - 1`` as a fraction."""
    if initial <= 0:
        raise ValueError(f"initial balance must be positive, found {initial}")
    return final_equity / initial - 1.0


def cagr(final_equity: float, initial: float, duration_ms: int) -> float:
    """Compound annual growth rate over ``duration_ms`` milliseconds (365-day years).

    A run that ends at or below zero equity has a CAGR of -100 %; a growth that annualizes
    beyond the float range (a few lucky hours) is ``inf``.
    """
    if initial <= 0:
        raise ValueError(f"initial balance must be positive, found {initial}")
    if duration_ms <= 0:
        raise ValueError(f"run duration must be positive milliseconds, found {duration_ms}")
    if final_equity <= 0:
        return -1.0
    years = duration_ms / MS_PER_YEAR
    log_growth = math.log(final_equity / initial) / years
    if log_growth > 700.0:  # a short, lucky run annualizes beyond float range
        return math.inf
    return math.expm1(log_growth)


def annualized_volatility(returns: np.ndarray, per_year: float) -> float:
    """Sample standard deviation of bar returns times ``sqrt(per_year)``; 0 for < 2 bars."""
    values = np.asarray(returns, dtype=np.float64)
    if values.size < 2:
        return 0.0
    return float(np.std(values, ddof=1) * math.sqrt(per_year))


def sharpe_ratio(returns: np.ndarray, per_year: float) -> float | None:
    """Annualized Sharpe ratio with a zero risk-free rate: ``mean / std * sqrt(per_year)``.

    Returns ``None`` when the standard deviation is zero (undefined).
    """
    values = np.asarray(returns, dtype=np.float64)
    if values.size < 2:
        return None
    std = float(np.std(values, ddof=1))
    if std == 0.0:
        return None
    return float(np.mean(values)) / std * math.sqrt(per_year)


def sortino_ratio(returns: np.ndarray, per_year: float) -> float | None:
    """Annualized Sortino ratio: ``mean / downside deviation * sqrt(per_year)``.

    The downside deviation is ``sqrt(mean(min(r, 0)^2))`` over all bars (target 0).
    Returns ``None`` when no bar lost money (undefined).
    """
    values = np.asarray(returns, dtype=np.float64)
    if values.size == 0:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(values, 0.0) ** 2)))
    if downside == 0.0:
        return None
    return float(np.mean(values)) / downside * math.sqrt(per_year)


def drawdown_series(equity: np.ndarray, initial: float) -> np.ndarray:
    """Drawdown at each bar as a non-positive fraction of the running peak.

    The running peak starts at ``initial``. A non-positive peak (never the case for a
    positive initial balance) would give 0.
    """
    values = np.asarray(equity, dtype=np.float64)
    peaks = np.maximum.accumulate(np.concatenate(([float(initial)], values)))[1:]
    out = np.zeros_like(values)
    np.divide(values, peaks, out=out, where=peaks > 0)
    out[peaks > 0] -= 1.0
    return out


@dataclass(frozen=True)
class Drawdown:
    """The deepest peak-to-trough fall of an equity curve.

    Attributes
    ----------
    depth : float
        Fall as a positive fraction of the peak (0.25 is -25 %); 0 when equity never fell.
    peak_ts, trough_ts : int
        Timestamps (ms) of the peak and of the trough. A peak at the initial balance is
        dated ``start_ts`` (the run's start).
    recovery_ts : int or None
        First timestamp after the trough at which equity regained the peak; ``None`` when
        it never did.
    """

    depth: float
    peak_ts: int
    trough_ts: int
    recovery_ts: int | None


def max_drawdown(equity: np.ndarray, ts_ms: np.ndarray, initial: float, start_ts: int) -> Drawdown:
    """Find the maximum drawdown of ``equity`` (peak starting at ``initial`` at ``start_ts``).

    Parameters
    ----------
    equity : numpy.ndarray
        Equity at each bar (margin asset).
    ts_ms : numpy.ndarray
        The bars' timestamps, int64 ms.
    initial : float
        Equity before the first bar.
    start_ts : int
        Timestamp (ms) to give a peak that is the initial balance.
    """
    values = np.asarray(equity, dtype=np.float64)
    ts = np.asarray(ts_ms, dtype=np.int64)
    if values.size == 0:
        return Drawdown(0.0, start_ts, start_ts, None)
    dd = drawdown_series(values, initial)
    trough = int(np.argmin(dd))
    depth = float(-dd[trough])
    if depth <= 0.0:
        return Drawdown(0.0, start_ts, start_ts, None)
    series = np.concatenate(([float(initial)], values[: trough + 1]))
    peak_pos = int(np.argmax(series))  # first occurrence of the running peak
    peak_value = series[peak_pos]
    peak_ts = start_ts if peak_pos == 0 else int(ts[peak_pos - 1])
    after = np.nonzero(values[trough + 1 :] >= peak_value)[0]
    recovery_ts = int(ts[trough + 1 + after[0]]) if after.size else None
    return Drawdown(depth, peak_ts, int(ts[trough]), recovery_ts)


def calmar_ratio(annual_growth: float, drawdown_depth: float) -> float | None:
    """CAGR divided by the maximum drawdown depth; ``None`` when there was no drawdown."""
    if drawdown_depth <= 0.0:
        return None
    return annual_growth / drawdown_depth


def exposure(gross_notional: np.ndarray) -> float:
    """Fraction of bars with an open position (gross notional > 0)."""
    values = np.nan_to_num(np.asarray(gross_notional, dtype=np.float64), nan=0.0)
    if values.size == 0:
        return 0.0
    return float(np.mean(np.abs(values) > 0.0))


def worst_margin_ratio(margin_ratio: np.ndarray, ts_ms: np.ndarray) -> tuple[float | None, int | None]:
    """Highest margin ratio reached (1 liquidates) and the first timestamp it was reached."""
    values = np.asarray(margin_ratio, dtype=np.float64)
    if values.size == 0 or np.all(np.isnan(values)):
        return None, None
    pos = int(np.nanargmax(values))
    return float(values[pos]), int(np.asarray(ts_ms, dtype=np.int64)[pos])


def run_worst_margin_ratio(summary: dict | None, margin_ratio: np.ndarray,
                           ts_ms: np.ndarray) -> tuple[float | None, int | None]:
    """The run's worst margin ratio and its time: ONE figure for every surface.

    The engine computes it once (``backtest.metrics.summarize``: the bar closes and every
    liquidation trigger, where the ratio is >= 1) and writes it to ``manifest.json``'s
    summary; the report card and the margin chart show that figure. Only a run folder
    without it (older runs) falls back to the bar closes of ``equity.parquet``.
    """
    summary = summary or {}
    value = summary.get("worst_margin_ratio")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        stamp = summary.get("worst_margin_ratio_ts")
        ts = None
        if isinstance(stamp, str) and stamp:
            from datetime import datetime

            ts = int(round(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000))
        return float(value), ts
    return worst_margin_ratio(margin_ratio, ts_ms)


@dataclass(frozen=True)
class HeadlineMetrics:
    """The numbers at the top of a report (fractions, margin-asset money, ms timestamps)."""

    initial_balance: float
    final_equity: float
    total_return: float
    cagr: float
    volatility: float
    sharpe: float | None
    sortino: float | None
    max_drawdown: Drawdown
    calmar: float | None
    exposure: float
    n_liquidations: int
    liquidation_loss: float
    fees: float
    funding_paid: float
    funding_received: float
    slippage_cost: float
    bad_debt: float
    worst_margin_ratio: float | None
    worst_margin_ratio_ts: int | None
    first_liquidation_ts: int | None
    interval_ms: int
    start_ts: int
    end_ts: int
    bars: int


def _column_sum(frame: pl.DataFrame, column: str) -> float:
    if frame.height == 0 or column not in frame.columns:
        return 0.0
    return float(frame.get_column(column).cast(pl.Float64).fill_null(0.0).sum())


def _ts_ms(frame: pl.DataFrame, column: str = "ts") -> np.ndarray:
    series = frame.get_column(column)
    if series.dtype == pl.Datetime or isinstance(series.dtype, pl.Datetime):
        series = series.dt.epoch("ms")
    return series.cast(pl.Int64).to_numpy()


def headline_metrics(
    equity: pl.DataFrame,
    *,
    initial_balance: float,
    fills: pl.DataFrame,
    funding: pl.DataFrame,
    liquidations: pl.DataFrame,
    summary: dict | None = None,
) -> HeadlineMetrics:
    """Compute every headline metric of a run from its §6 tables.

    Parameters
    ----------
    equity : polars.DataFrame
        ``equity.parquet`` (needs ``ts``, ``equity``, ``gross_notional``, ``margin_ratio``).
    initial_balance : float
        The account's starting balance (margin asset).
    fills, funding, liquidations : polars.DataFrame
        ``fills.parquet`` (fees, slippage), ``funding.parquet`` (payments, + = received) and
        ``liquidations.parquet`` (``margin_lost``, ``bad_debt``).
    summary : dict, optional
        ``manifest.json``'s summary: its worst margin ratio is the one shown
        (:func:`run_worst_margin_ratio`).

    Returns
    -------
    HeadlineMetrics
        Fees, slippage, liquidation loss and bad debt are positive costs; funding paid and
        received are both non-negative amounts.
    """
    ts = _ts_ms(equity)
    values = equity.get_column("equity").cast(pl.Float64).to_numpy()
    interval = infer_interval_ms(ts)
    per_year = periods_per_year(interval)
    start_ts = int(ts[0]) - interval
    end_ts = int(ts[-1])
    final = float(values[-1])
    returns = bar_returns(values, initial_balance)
    growth = cagr(final, initial_balance, end_ts - start_ts)
    drawdown = max_drawdown(values, ts, initial_balance, start_ts)
    payments = (
        funding.get_column("payment").cast(pl.Float64).fill_null(0.0).to_numpy()
        if funding.height
        else np.zeros(0)
    )
    ratio_ts = run_worst_margin_ratio(
        summary,
        equity.get_column("margin_ratio").cast(pl.Float64).fill_null(float("nan")).to_numpy(), ts
    )
    first_liq = int(_ts_ms(liquidations).min()) if liquidations.height else None
    return HeadlineMetrics(
        initial_balance=float(initial_balance),
        final_equity=final,
        total_return=total_return(final, initial_balance),
        cagr=growth,
        volatility=annualized_volatility(returns, per_year),
        sharpe=sharpe_ratio(returns, per_year),
        sortino=sortino_ratio(returns, per_year),
        max_drawdown=drawdown,
        calmar=calmar_ratio(growth, drawdown.depth),
        exposure=exposure(equity.get_column("gross_notional").cast(pl.Float64).to_numpy()),
        n_liquidations=liquidations.height,
        liquidation_loss=_column_sum(liquidations, "margin_lost"),
        fees=_column_sum(fills, "fee"),
        funding_paid=float(-payments[payments < 0].sum()),
        funding_received=float(payments[payments > 0].sum()),
        slippage_cost=_column_sum(fills, "slippage_cost"),
        bad_debt=_column_sum(liquidations, "bad_debt"),
        worst_margin_ratio=ratio_ts[0],
        worst_margin_ratio_ts=ratio_ts[1],
        first_liquidation_ts=first_liq,
        interval_ms=interval,
        start_ts=start_ts,
        end_ts=end_ts,
        bars=int(ts.size),
    )
