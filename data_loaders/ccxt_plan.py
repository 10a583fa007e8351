"""Resume planning for ``margincall data fetch``: which time ranges are still missing.

The store reports what it covers (:meth:`data_loaders.store.MarketStore.coverage`: half-open
``[start, end)`` intervals, candles ending at the last bar's close, funding one interval after
the last settlement). :func:`uncovered` returns the parts of the requested window outside
those intervals, so a second run after an interruption (or over a wider window) asks the
exchange only for what is missing. Pure functions on epoch milliseconds.
"""
from __future__ import annotations

from collections.abc import Iterable


def uncovered(covered: Iterable[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """Sub-ranges of ``[start, end)`` not inside any ``covered`` interval.

    Parameters
    ----------
    covered : iterable of (int, int)
        Half-open covered intervals, epoch ms (any order, may overlap).
    start, end : int
        Requested window, epoch ms, half-open.

    Returns
    -------
    list of (int, int)
        Sorted, disjoint, non-empty half-open ranges.

    Examples
    --------
    >>> uncovered([(0, 120_000), (180_000, 240_000)], 0, 300_000)
    [(120000, 180000), (240000, 300000)]
    """
    if start >= end:
        return []
    missing: list[tuple[int, int]] = []
    cursor = start
    for lo, hi in sorted(covered):
        if hi <= cursor:
            continue
        if lo >= end:
            break
        if lo > cursor:
            missing.append((cursor, lo))
        cursor = max(cursor, hi)
        if cursor >= end:
            break
    if cursor < end:
        missing.append((cursor, end))
    return missing
