"""Downsampling keeps every extreme, every gap and every forced (liquidation) point."""
from __future__ import annotations

import numpy as np
import pytest

from reports.downsample import bucket_of, minmax_downsample, minmax_indices, ohlc_downsample


@pytest.fixture
def walk() -> np.ndarray:
    rng = np.random.default_rng(3)
    return 100 + np.cumsum(rng.normal(0, 1, 525_600))


def test_short_series_is_untouched():
    y = np.arange(10.0)
    x, out = minmax_downsample(np.arange(10), y, buckets=5)
    np.testing.assert_array_equal(out, y)


def test_global_and_bucket_extremes_survive(walk):
    x = np.arange(walk.size, dtype=np.int64) * 60_000
    xs, ys = minmax_downsample(x, walk, buckets=2_000)
    assert ys.size <= 4 * 2_000 + 10
    assert walk.min() in ys and walk.max() in ys
    assert np.all(np.diff(xs) > 0)
    kept = set(xs.tolist())
    for i in np.random.default_rng(0).integers(0, walk.size, 50):
        start, stop = bucket_of(walk.size, 2_000, int(i))
        chunk = walk[start:stop]
        assert x[start + int(np.argmin(chunk))] in kept
        assert x[start + int(np.argmax(chunk))] in kept


def test_forced_points_survive(walk):
    forced = np.array([123_457, 400_001])
    idx = minmax_indices(walk, 1_000, keep=forced)
    assert set(forced.tolist()) <= set(idx.tolist())


def test_gaps_stay_gaps():
    y = np.arange(100_000, dtype=np.float64)
    y[40_000:60_000] = np.nan
    _, ys = minmax_downsample(np.arange(y.size), y, buckets=100)
    assert np.isnan(ys).any()
    assert np.nanmin(ys) == 0 and np.nanmax(ys) == 99_999


def test_ohlc_keeps_every_wick(walk):
    n = walk.size
    ts = np.arange(n, dtype=np.int64) * 60_000
    high, low = walk + 0.5, walk - 0.5
    low[77_777] -= 50.0  # one deep wick
    candles = ohlc_downsample(ts, walk, high, low, walk, buckets=1_500)
    assert candles.ts.size <= 1_500
    assert candles.low.min() == low.min() and candles.high.max() == high.max()
    start, stop = bucket_of(n, 1_500, 77_777)
    assert candles.low[np.searchsorted(candles.ts, ts[start])] == low[start:stop].min()
    assert candles.open[0] == walk[0] and candles.close[-1] == walk[-1]


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="same length"):
        minmax_downsample(np.arange(3), np.arange(4.0))
