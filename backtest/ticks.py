"""Intrabar paths: how a candle becomes an ordered list of ticks carrying last and mark price.

A candle gives four points per price series. The engine visits them as four ticks::

    tick   0          1                 2                 3
    time   ts         ts + iv/3         ts + 2*iv/3       ts + iv - 1 ms
    price  open  ->   first extreme ->  second extreme -> close      (piecewise linear)

Which extreme comes first is the path policy (see docs/engine.md):

* ``ohlc``: open, high, low, close;  ``olhc``: open, low, high, close;
* ``adaptive``: the extreme nearer the open (by last price) first;
* ``worst_case``: the extreme adverse to the symbol's open positions first (low first when net
  long, high first when net short, adaptive when flat). The conservative default.

The last-price high and the mark-price high share a tick (likewise the lows): the mark is
the venue's smoothed price of the same move.
"""
from __future__ import annotations

__all__ = ["high_first", "tick_times", "trade_path"]


def high_first(policy: str, open_: float, high: float, low: float, net_side: int) -> bool:
    """True when the path visits the high before the low.

    Parameters
    ----------
    policy : str
        ``worst_case``, ``adaptive``, ``ohlc`` or ``olhc``.
    open_, high, low : float
        The candle's last-price open, high and low.
    net_side : int
        Sign of the symbol's net open position (+1 long, -1 short, 0 flat); only
        ``worst_case`` uses it.
    """
    if policy == "worst_case":
        if net_side > 0:
            return False
        if net_side < 0:
            return True
        return high - open_ <= open_ - low
    if policy == "adaptive":
        return high - open_ <= open_ - low
    return policy == "ohlc"


def tick_times(ts: int, interval_ms: int) -> tuple[int, int, int, int]:
    """Timestamps (UTC ms) of the four ticks of a candle opening at ``ts``."""
    return ts, ts + interval_ms // 3, ts + (2 * interval_ms) // 3, ts + interval_ms - 1


def trade_path(ts: int, interval_ms: int, open_: float, mark: tuple[float, float, float, float],
               stamps: list[int], prices: list[float]) -> tuple[list[int], list[float], list[float]]:
    """Merge a bar's trade ticks with its mark candle into one stream of (time, last, mark).

    The trades are the last-price ticks. The mark candle's high and low are placed at the
    times of the highest and the lowest trade (in the order the trades visited them), its
    open at ``ts`` and its close at ``ts + interval - 1``; the mark is linear in time between
    these points. Every trade carries the mark interpolated at its time; every mark point
    carries the latest trade price before it (the candle open before the first trade). At
    one millisecond a trade sorts before a mark point, so a forced order meets that trade.

    Parameters
    ----------
    ts, interval_ms : int
        Bar open time and length, UTC ms.
    open_ : float
        The bar's last-price open.
    mark : tuple of float
        Mark open, high, low, close.
    stamps, prices : list
        Trade times (UTC ms, non-decreasing, inside the bar) and prices; not empty.

    Returns
    -------
    times, lasts, marks : list
    """
    k_high, k_low = prices.index(max(prices)), prices.index(min(prices))
    mo, mh, ml, mc = mark
    if k_high <= k_low:
        points, first, second = (mo, mh, ml, mc), stamps[k_high], stamps[k_low]
    else:
        points, first, second = (mo, ml, mh, mc), stamps[k_low], stamps[k_high]
    point_times = (ts, first, second, ts + interval_ms - 1)
    merged = sorted([(t, 0, k) for k, t in enumerate(stamps)]
                    + [(t, 1, k) for k, t in enumerate(point_times)])
    times: list[int] = []
    lasts: list[float] = []
    marks: list[float] = []
    last = open_
    for t, is_mark, k in merged:
        if is_mark:
            value = points[k]
        else:
            last = prices[k]
            seg = min(2, sum(1 for pt in point_times[1:] if pt < t))
            ta, tb = point_times[seg], point_times[seg + 1]
            frac = min(max((t - ta) / (tb - ta), 0.0), 1.0) if tb > ta else 1.0
            value = points[seg] + (points[seg + 1] - points[seg]) * frac
        times.append(t)
        lasts.append(last)
        marks.append(value)
    return times, lasts, marks
