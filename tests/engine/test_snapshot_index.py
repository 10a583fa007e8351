"""The per-bar snapshot index of the summary (``backtest.metrics._snapshot_index``) is the
binary search it replaces: for every bar of a range, the last snapshot at or before it."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.metrics import _snapshot_index


@st.composite
def journals(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    """Increasing snapshot bars (the journal keeps one per bar, -1 before the loop) and a range."""
    n = draw(st.integers(0, 80))
    bars = sorted(draw(st.sets(st.integers(-1, n + 3), max_size=25)))
    start = draw(st.integers(0, n))
    stop = draw(st.integers(start, n))
    return np.asarray(bars, dtype=np.int64), start, stop


@settings(max_examples=400, deadline=None)
@given(journals())
def test_snapshot_index_is_the_last_snapshot_at_or_before_each_bar(case: tuple[np.ndarray, int, int]) -> None:
    snap_bar, start, stop = case
    expected = np.maximum(np.searchsorted(snap_bar, np.arange(start, stop, dtype=np.int64), side="right") - 1, 0)
    got = _snapshot_index(snap_bar, start, stop)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_snapshot_index_of_a_flip_every_bar_and_none_inside() -> None:
    # one snapshot per bar: the identity; no snapshot inside the range: the one before it
    assert _snapshot_index(np.arange(-1, 10, dtype=np.int64), 0, 10).tolist() == list(range(1, 11))
    assert _snapshot_index(np.asarray([-1, 2], dtype=np.int64), 3, 7).tolist() == [1, 1, 1, 1]
    assert _snapshot_index(np.asarray([5], dtype=np.int64), 0, 3).tolist() == [0, 0, 0]
