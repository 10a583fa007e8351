"""Price and gas paths for the lending simulation, built from stored candles.

:func:`candle_path` turns OHLC candles into a path sampled every ``step`` seconds (12 s = one
Ethereum block): inside each bar the price visits the open, then the extreme a bar of its
direction is conventionally assumed to reach first (a falling bar: high then low; a rising
bar: low then high), at 1/3 and 2/3 of the bar, moving log-linearly between these waypoints;
a bar's close is reached at the next bar's open (the two differ by a tick on a continuous
market). So wicks are on the path, which a close-to-close path would lose.

:func:`gas_path` is a piecewise-constant network gas price (gwei) from a base level and
dated spikes.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from numpy.typing import NDArray

from backtest.lending.checks import positive
from backtest.lending.errors import LendingParameterError

__all__ = ["candle_path", "gas_path"]


def candle_path(bars: pl.DataFrame, *, step: float, bar_seconds: float | None = None
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(times, prices)``: epoch seconds every ``step`` from the first bar's open to the last
    bar's end (exclusive), and the price there.

    Parameters
    ----------
    bars : DataFrame
        ``ts`` (datetime, bar open) and ``open``, ``high``, ``low``, ``close``; sorted.
    step : float
        Seconds between samples.
    bar_seconds : float, optional
        The bar length; by default the smallest gap between bar opens.
    """
    step = positive("path step seconds", step)
    if bars.height == 0:
        raise LendingParameterError("candle path: expected at least one candle, found none; "
                                    "check the symbol, timeframe and window")
    ts = bars["ts"].dt.epoch("ms").to_numpy().astype(np.float64) / 1000.0
    if bars.height > 1 and np.any(np.diff(ts) <= 0):
        raise LendingParameterError("candle path: candle open times must be strictly increasing")
    length = bar_seconds if bar_seconds is not None else (
        float(np.diff(ts).min()) if ts.size > 1 else step)
    o, h, lo, c = (bars[k].cast(pl.Float64).to_numpy() for k in ("open", "high", "low", "close"))
    if not (np.all(np.isfinite(np.stack([o, h, lo, c]))) and np.all(lo > 0)):
        raise LendingParameterError("candle path: prices must be finite and > 0")
    falling = c < o
    first, second = np.where(falling, h, lo), np.where(falling, lo, h)
    wp_t = np.stack([ts, ts + length / 3, ts + 2 * length / 3], axis=1).ravel()
    wp_p = np.stack([o, first, second], axis=1).ravel()
    wp_t, wp_p = np.append(wp_t, ts[-1] + length), np.append(wp_p, c[-1])
    times = np.arange(ts[0], ts[-1] + length, step)
    prices = np.exp(np.interp(times, wp_t, np.log(wp_p)))
    return times, prices


def gas_path(times: NDArray[np.float64], *, base_gwei: float,
             spikes: Sequence[tuple[float, float, float]] = ()) -> NDArray[np.float64]:
    """Network gas price (gwei) at ``times``: ``base_gwei``, or a spike's level inside
    ``[start, end)`` (epoch seconds; later spikes win where they overlap)."""
    gas = np.full(np.asarray(times).shape, positive("base gas price (gwei)", base_gwei))
    for start, end, level in spikes:
        if not end > start:
            raise LendingParameterError(
                f"gas spike {start}..{end}: expected the end after the start; fix the spike")
        gas[(times >= start) & (times < end)] = positive("gas spike level (gwei)", level)
    return gas
