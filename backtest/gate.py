"""The gate: does a liquidation or order threshold lie inside a candle's price ranges?

One definition, asked two ways. :meth:`Gate.hit` answers for one candle (the bar step, the
intrabar walk's detail candles); :meth:`Gate.next_hit` finds the first candle of a window
that the same test would pass, with NumPy (the schedules that skip quiet bars). Both read the
levels the run keeps current: ``MarginModel.mark_below`` / ``mark_above`` (a pool breaches as
the mark falls to / rises to them) and ``OrderBook.last_below`` / ``last_above`` (a resting
trigger on the last price); ``-inf`` / ``inf`` mean "no level". A cross pool spanning several
symbols (``MarginModel.cross_multi``) has no single level: its test is the pool's lower bound
of equity minus maintenance over the candle's mark ranges (``MarginModel.cross_bound_gap``);
:meth:`Gate.next_hit` skips the candles inside the pool's safe mark bands with NumPy
(:meth:`Gate.band_exit`) and asks the bound only where a mark range leaves them.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = ["BLOCK_SHIFT", "Gate", "bar_gate", "block_extremes"]

#: Bars per block of :func:`block_extremes` (as a shift: 64 bars).
BLOCK_SHIFT = 6
#: Candles per span of :meth:`Gate.band_exit`'s block extremes (as a shift: 2^15, a loop chunk).
SPAN_SHIFT = 15
SPAN_BARS = 1 << SPAN_SHIFT
_INF = math.inf


def block_extremes(values: np.ndarray, *, lowest: bool) -> tuple[float, ...]:
    """Per block of 64 consecutive values, the least (``lowest``) or the greatest, NaN ignored.

    A block of NaN only gives NaN. Block ``b`` covers ``values[64*b : 64*(b+1)]``; a window
    of values whose covering blocks all have a least value above a level has no value at or
    below it (that is all :meth:`Gate.next_hit` asks of them).
    """
    if not values.size:
        return ()
    starts = np.arange(0, values.size, 1 << BLOCK_SHIFT)
    with np.errstate(invalid="ignore"):
        return tuple((np.fmin if lowest else np.fmax).reduceat(values, starts).tolist())


def _view(values: np.ndarray) -> Any:
    """``values`` for per-element reads: a memoryview when float64 and contiguous (indexing it
    gives the Python float equal to ``values[i]``), else the array itself."""
    if values.dtype == np.float64 and values.flags.c_contiguous:
        return memoryview(values)
    return values


class Gate:
    """The threshold test of one run over per-symbol candle ranges.

    Parameters
    ----------
    state : RunState
        The run (its ``margin``, ``book`` and ``account`` hold the levels).
    ranges : sequence of 4-tuples of ndarray
        Per symbol ``(mark_low, mark_high, last_low, last_high)`` per candle (float64).
    blocks : sequence of 2-tuples, optional
        Per symbol :func:`block_extremes` of ``mark_low`` (least) and ``mark_high`` (greatest);
        computed here when not given (callers pass cached ones for the data's own arrays).
    """

    def __init__(self, state: Any, ranges: Sequence[tuple[np.ndarray, ...]],
                 blocks: Sequence[tuple[tuple, tuple]] | None = None) -> None:
        self.st = state
        self.ranges = [tuple(np.asarray(a, dtype=np.float64) for a in r) for r in ranges]
        self.views = [tuple(_view(a) for a in r) for r in self.ranges]
        self._blocks = list(blocks) if blocks is not None else None
        self.n = len(self.ranges)
        # the run's margin model and order book hold the levels (same objects for the run)
        self.margin = state.margin
        self.book = state.book
        self._one = self.views[0] if self.n == 1 else None
        #: ``(span, lows, highs)`` of :meth:`_span_blocks` (the last span asked).
        self._span_cache: tuple[int, np.ndarray, np.ndarray] | None = None

    @property
    def blocks(self) -> list[tuple[tuple, tuple]]:
        """Per symbol the mark ranges' :func:`block_extremes` (built on first use)."""
        if self._blocks is None:
            self._blocks = [(block_extremes(r[0], lowest=True), block_extremes(r[1], lowest=False))
                            for r in self.ranges]
        return self._blocks

    def hit(self, j: int) -> bool:
        """True when a threshold lies inside candle ``j``'s ranges (the intrabar walk must run)."""
        margin = self.margin
        book = self.book
        if self._one is not None:  # one symbol (the common case): no loop, no pool bound
            ml, mh, ll, lh = self._one
            return ml[j] <= margin.mark_below[0] or mh[j] >= margin.mark_above[0] \
                or ll[j] <= book.last_below[0] or lh[j] >= book.last_above[0]
        mb, ma, lb, la = margin.mark_below, margin.mark_above, book.last_below, book.last_above
        for s, (ml, mh, ll, lh) in enumerate(self.views):
            if ml[j] <= mb[s] or mh[j] >= ma[s] or ll[j] <= lb[s] or lh[j] >= la[s]:
                return True
        return margin.cross_multi and self.cross_breach(j)

    def cross_breach(self, j: int) -> bool:
        """True when the multi-symbol cross pool may breach inside candle ``j``."""
        st = self.st
        lows = [v[0][j] for v in self.views]
        highs = [v[1][j] for v in self.views]
        return st.margin.cross_bound_gap(st.account, lows, highs) <= 0.0

    def next_hit(self, i: int, end: int) -> int:
        """First candle in ``[i, end)`` that :meth:`hit` passes under the current levels, else
        ``end``. A mark window whose 64-candle blocks all stay clear of the level is passed
        without comparing its candles; each other finite level costs one slice."""
        if end <= i:
            return end
        margin = self.margin
        book = self.book
        blocks = self._blocks or self.blocks
        for s in range(self.n):
            ml, mh, ll, lh = self.ranges[s]
            level = margin.mark_below[s]
            if level != -_INF:
                low_blocks = blocks[s][0]
                b, last = i >> BLOCK_SHIFT, (end - 1) >> BLOCK_SHIFT
                if not (low_blocks[b] if b == last else min(low_blocks[b:last + 1])) > level:
                    hit = ml[i:end] <= level
                    k = int(hit.argmax())  # the first True (0 when none: checked below)
                    if hit[k]:
                        end = i + k
            level = margin.mark_above[s]
            if level != _INF and end > i:
                high_blocks = blocks[s][1]
                b, last = i >> BLOCK_SHIFT, (end - 1) >> BLOCK_SHIFT
                if not (high_blocks[b] if b == last else max(high_blocks[b:last + 1])) < level:
                    hit = mh[i:end] >= level
                    k = int(hit.argmax())
                    if hit[k]:
                        end = i + k
            level = book.last_below[s]
            if level != -_INF and end > i:
                hit = ll[i:end] <= level
                k = int(hit.argmax())
                if hit[k]:
                    end = i + k
            level = book.last_above[s]
            if level != _INF and end > i:
                hit = lh[i:end] >= level
                k = int(hit.argmax())
                if hit[k]:
                    end = i + k
            if end <= i:
                return i
        if margin.cross_multi:
            return self.next_cross_breach(i, end)
        return end

    def next_cross_breach(self, i: int, end: int) -> int:
        """First candle in ``[i, end)`` where :meth:`cross_breach` is True, else ``end``.

        The same answers as asking :meth:`cross_breach` candle by candle: while the pool's
        safe bands are valid (``CrossBounds.band_limits``) every candle whose mark ranges lie
        inside them answers "no breach" without a sum, so the first candle leaving them is
        found with NumPy (:meth:`band_exit`) and only that one is asked (which rebuilds the
        bands around it when the pool is still safe). Without bands, candle by candle.
        """
        cross = self.margin.cross
        account = self.st.account
        j = i
        while j < end:
            limits = cross.band_limits(account)
            if limits is not None:
                j = self.band_exit(limits, j, end)
                if j >= end:
                    return end
            if self.cross_breach(j):
                return j
            j += 1
        return end

    def band_exit(self, limits: tuple[np.ndarray, np.ndarray, np.ndarray], i: int, end: int) -> int:
        """First candle in ``[i, end)`` whose mark range is not strictly inside a band, else ``end``.

        ``limits`` is ``(symbols, floors, ceilings)``; candle ``j`` leaves when, for one of
        the symbols, ``not (mark_low[j] > floor and mark_high[j] < ceiling)`` (NaN leaves).
        Per span of :data:`SPAN_BARS` candles the 64-candle block extremes of every symbol
        (NaN-propagating) rule out whole blocks; only candidate blocks are compared candle
        by candle.
        """
        syms, floors, ceilings = limits
        floors_col, ceilings_col = floors[:, None], ceilings[:, None]
        j = i
        while j < end:
            span = j >> SPAN_SHIFT
            base = span << SPAN_SHIFT
            span_end = min(end, base + SPAN_BARS)
            low_blocks, high_blocks = self._span_blocks(span)
            b0, b1 = (j - base) >> BLOCK_SHIFT, ((span_end - 1 - base) >> BLOCK_SHIFT) + 1
            with np.errstate(invalid="ignore"):
                out = ~(low_blocks[syms, b0:b1] > floors_col) | ~(high_blocks[syms, b0:b1] < ceilings_col)
            for b in np.flatnonzero(out.any(axis=0)).tolist():
                lo = max(j, base + ((b0 + b) << BLOCK_SHIFT))
                first = min(span_end, base + ((b0 + b + 1) << BLOCK_SHIFT))
                stop = first
                for r in np.flatnonzero(out[:, b]).tolist():
                    ml, mh = self.ranges[syms[r]][0], self.ranges[syms[r]][1]
                    with np.errstate(invalid="ignore"):
                        leaves = ~(ml[lo:first] > floors[r]) | ~(mh[lo:first] < ceilings[r])
                    k = int(leaves.argmax())
                    if leaves[k]:
                        first = lo + k
                        if k == 0:  # no earlier candle is left to find
                            break
                if first < stop:
                    return first
            j = span_end
        return end

    def _span_blocks(self, span: int) -> tuple[np.ndarray, np.ndarray]:
        """Per symbol the least mark low and greatest mark high of each 64-candle block of
        span ``span`` (NaN-propagating, unlike :func:`block_extremes`: a NaN must stop
        :meth:`band_exit`), as ``(symbols, blocks)`` arrays; the last span's only is kept."""
        cached = self._span_cache
        if cached is not None and cached[0] == span:
            return cached[1], cached[2]
        start = span << SPAN_SHIFT
        stop = min(len(self.ranges[0][0]), start + SPAN_BARS)
        starts = np.arange(0, stop - start, 1 << BLOCK_SHIFT)
        lows = np.empty((self.n, starts.size))
        highs = np.empty((self.n, starts.size))
        for s, r in enumerate(self.ranges):
            lows[s] = np.minimum.reduceat(r[0][start:stop], starts)
            highs[s] = np.maximum.reduceat(r[1][start:stop], starts)
        self._span_cache = (span, lows, highs)
        return lows, highs


def bar_gate(state: Any, data: Any, walker: Any) -> Gate:
    """The gate of a run's strategy bars: per symbol the bars' mark and last ranges, widened by
    the detail candles (``walker.d_lo`` / ``d_hi``) and trade ticks (``walker.t_lo`` /
    ``t_hi``) inside each bar when the data has them."""
    ranges, blocks = [], []
    for s, symbol in enumerate(data.symbols):
        bars = data.bars[symbol]
        arrays = [bars.mark_low, bars.mark_high, bars.low, bars.high]
        own = True
        if data.detail is not None:
            own = False
            detail = data.detail[symbol]
            starts = np.asarray(walker.d_lo)
            nonempty = np.asarray(walker.d_hi) > starts
            clipped = np.minimum(starts, len(detail) - 1)
            agg = [np.minimum.reduceat(detail.mark_low, clipped), np.maximum.reduceat(detail.mark_high, clipped),
                   np.minimum.reduceat(detail.low, clipped), np.maximum.reduceat(detail.high, clipped)]
            arrays = [np.where(nonempty, np.minimum(a, g) if k % 2 == 0 else np.maximum(a, g), a)
                      for k, (a, g) in enumerate(zip(arrays, agg))]
        if data.trades is not None:
            trades = data.trades[symbol]
            if trades.ts.size:
                starts = np.minimum(np.asarray(walker.t_lo), trades.ts.size - 1)
                nonempty = np.asarray(walker.t_hi) > np.asarray(walker.t_lo)
                tmin = np.minimum.reduceat(trades.price, starts)
                tmax = np.maximum.reduceat(trades.price, starts)
                arrays[2] = np.where(nonempty, np.minimum(arrays[2], tmin), arrays[2])
                arrays[3] = np.where(nonempty, np.maximum(arrays[3], tmax), arrays[3])
        arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in arrays]
        ranges.append(arrays)
        blocks.append(_mark_blocks(data, s, arrays[0], arrays[1]) if own else None)
    return Gate(state, ranges, None if any(b is None for b in blocks) else blocks)


def _mark_blocks(data: Any, s: int, low: np.ndarray, high: np.ndarray) -> tuple[tuple, tuple]:
    """:func:`block_extremes` of symbol ``s``'s own mark ranges, cached on ``data``.

    Like the funding maps, they depend only on the market data: runs sharing it compute them
    once (read-only tuples; the entry is rebuilt if the arrays were replaced).
    """
    cache = data.__dict__.setdefault("_run_cache", {})
    hit = cache.get(("mark_blocks", s))
    if hit is not None and hit[0] is low and hit[1] is high:
        return hit[2]
    blocks = (block_extremes(low, lowest=True), block_extremes(high, lowest=False))
    cache[("mark_blocks", s)] = (low, high, blocks)
    return blocks

