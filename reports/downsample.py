"""Downsampling for charts that keeps every extreme.

A year of 1m bars is 525,600 points per series; a browser draws that slowly and the report
would weigh tens of megabytes. These functions cut a series into equal-count buckets and
keep, for each bucket, the points that shape what the eye sees:

* :func:`minmax_downsample` (lines): the bucket's first and last points, its minimum and
  maximum, and the edges of any gap (null/NaN run) inside it, so a flat period of a
  liquidation-price line stays a gap. Indices passed in ``keep`` (liquidation bars) are
  always kept.
* :func:`ohlc_downsample` (candles): coarser candles, open of the first bar, close of the
  last, highest high and lowest low, so every wick low and high survives exactly.

Both are vectorized (reshape into a ``(buckets, size)`` matrix), so 500k points take a few
milliseconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_BUCKETS = 2_000


def _bucket_size(n: int, buckets: int) -> int:
    if buckets <= 0:
        raise ValueError(f"bucket count must be positive, found {buckets}")
    return max(1, -(-n // buckets))


def _padded(values: np.ndarray, size: int, fill: float) -> np.ndarray:
    n = values.size
    rows = -(-n // size)
    out = np.full(rows * size, fill, dtype=np.float64)
    out[:n] = values
    return out.reshape(rows, size)


def minmax_indices(values: np.ndarray, buckets: int = DEFAULT_BUCKETS,
                   keep: np.ndarray | None = None) -> np.ndarray:
    """Indices of the points to keep from ``values`` (sorted, unique).

    Parameters
    ----------
    values : numpy.ndarray
        The series (float; NaN marks a gap).
    buckets : int
        Number of equal-count buckets; a series no longer than ``4 * buckets`` is returned
        whole.
    keep : numpy.ndarray, optional
        Indices that must survive (e.g. the bars of liquidations).

    Returns
    -------
    numpy.ndarray
        int64 indices into ``values`` in increasing order.
    """
    data = np.asarray(values, dtype=np.float64)
    n = data.size
    if n <= 4 * buckets:
        return np.arange(n, dtype=np.int64)
    size = _bucket_size(n, buckets)
    nan = np.isnan(data)
    lows = _padded(np.where(nan, np.inf, data), size, np.inf)
    highs = _padded(np.where(nan, -np.inf, data), size, -np.inf)
    gaps = _padded(nan.astype(np.float64), size, 0.0)
    starts = np.arange(lows.shape[0], dtype=np.int64) * size
    has_value = np.isfinite(lows).any(axis=1) | np.isfinite(highs).any(axis=1)
    has_gap = gaps.any(axis=1)
    last = np.minimum(starts + size - 1, n - 1)
    parts = [
        starts,
        last,
        (starts + np.argmin(lows, axis=1))[has_value],
        (starts + np.argmax(highs, axis=1))[has_value],
        (starts + np.argmax(gaps, axis=1))[has_gap],
        (starts + size - 1 - np.argmax(gaps[:, ::-1], axis=1))[has_gap],
    ]
    if keep is not None and np.size(keep):
        forced = np.asarray(keep, dtype=np.int64)
        parts.append(forced[(forced >= 0) & (forced < n)])
    return np.unique(np.concatenate(parts))


def minmax_downsample(x: np.ndarray, y: np.ndarray, buckets: int = DEFAULT_BUCKETS,
                      keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Downsample a line ``(x, y)`` keeping each bucket's first, last, min, max and gap edges.

    Parameters
    ----------
    x : numpy.ndarray
        Sorted x values (e.g. int64 ms timestamps).
    y : numpy.ndarray
        Values (NaN for gaps).
    buckets : int
        Number of equal-count buckets (output is at most ~6 points per bucket).
    keep : numpy.ndarray, optional
        Indices that must survive.

    Returns
    -------
    tuple of numpy.ndarray
        The kept ``x`` and ``y``, in order.
    """
    xs = np.asarray(x)
    ys = np.asarray(y, dtype=np.float64)
    if xs.size != ys.size:
        raise ValueError(f"x and y must have the same length, found {xs.size} and {ys.size}")
    idx = minmax_indices(ys, buckets, keep)
    return xs[idx], ys[idx]


@dataclass(frozen=True)
class Candles:
    """OHLC candles as parallel arrays (``ts`` is each candle's open time, int64 ms)."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray


def ohlc_downsample(ts: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                    close: np.ndarray, buckets: int = DEFAULT_BUCKETS) -> Candles:
    """Merge consecutive candles into at most ``buckets`` coarser candles.

    Each merged candle opens at its first bar's open and time, closes at its last bar's
    close, and spans the highest high and lowest low of its bars, so no wick is lost.

    Parameters
    ----------
    ts, open_, high, low, close : numpy.ndarray
        Candle arrays of equal length, sorted by ``ts`` (int64 ms).
    buckets : int
        Maximum number of output candles.
    """
    t = np.asarray(ts, dtype=np.int64)
    arrays = [np.asarray(a, dtype=np.float64) for a in (open_, high, low, close)]
    n = t.size
    if any(a.size != n for a in arrays):
        raise ValueError("ts, open, high, low and close must have the same length")
    if n <= buckets:
        return Candles(t, *arrays)
    size = _bucket_size(n, buckets)
    starts = np.arange(0, n, size, dtype=np.int64)
    ends = np.minimum(starts + size - 1, n - 1)
    highs = _padded(np.nan_to_num(arrays[1], nan=-np.inf), size, -np.inf).max(axis=1)
    lows = _padded(np.nan_to_num(arrays[2], nan=np.inf), size, np.inf).min(axis=1)
    highs[~np.isfinite(highs)] = np.nan  # a bucket without any price stays a gap
    lows[~np.isfinite(lows)] = np.nan
    return Candles(t[starts], arrays[0][starts], highs, lows, arrays[3][ends])


def bucket_of(n: int, buckets: int, index: int) -> tuple[int, int]:
    """The ``[start, stop)`` index range of the bucket holding ``index`` (for tests and callers).

    Matches the bucketing of :func:`minmax_indices` and :func:`ohlc_downsample`.
    """
    size = _bucket_size(n, buckets)
    start = (index // size) * size
    return start, min(start + size, n)
