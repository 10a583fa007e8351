"""The array path's scan: find the next bar where anything can happen, run the engine's phases.

See :mod:`backtest.fastpath` for why the bars in between are no-ops. The phases themselves
(bar-open events, fills at the open, the intrabar walk, the strategy's order, the result) are
the event engine's own (``backtest.engine``); this module only decides *which* bars to give
them, in the same order and with the same per-bar checks as the engine's bar loop.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

import numpy as np

from backtest.config import RunConfig
from backtest.engine import RunLoop
from backtest.fastpath import validate_signals
from backtest.market_data import MarketData
from backtest.results import RunResult

__all__ = ["ActionIndex", "SignalScanner", "block_extremes", "next_true_index"]

_NO_SIGNAL = 2
#: Bars per block of :func:`block_extremes` (as a shift: 64 bars).
_BLOCK_SHIFT = 6


def next_true_index(mask: np.ndarray) -> np.ndarray:
    """For each position ``i``, the smallest ``j >= i`` with ``mask[j]``, else ``len(mask)``.

    Returns an int array of length ``len(mask) + 1`` (the extra last entry is the sentinel
    ``len(mask)``), computed with one reversed running minimum.
    """
    n = mask.size
    dtype = np.int32 if n < 2**31 - 1 else np.int64
    idx = np.where(mask, np.arange(n, dtype=dtype), dtype(n))
    out = np.empty(n + 1, dtype=dtype)
    out[n] = n
    if n:
        out[:n] = np.minimum.accumulate(idx[::-1])[::-1]
    return out


class ActionIndex:
    """Where one symbol's signal next asks for another side than the one held.

    A target order (``tolerance=None``) does something only when the signal's sign differs
    from the held side, and NaN means no opinion. The signal is cut into runs of equal sign
    code (-1, 0, +1, NaN); for each held side a reversed running minimum over the runs gives
    the next run that wants a change. A query is one bisection and one lookup.

    Parameters
    ----------
    signal : ndarray of float
        Target exposure per bar (NaN = no opinion).
    """

    def __init__(self, signal: np.ndarray) -> None:
        n = signal.size
        code = np.sign(signal)
        code[np.isnan(code)] = _NO_SIGNAL
        starts = np.flatnonzero(code[1:] != code[:-1]) + 1
        starts = np.concatenate([np.zeros(min(n, 1), dtype=starts.dtype), starts])
        run_code = code[starts]
        self.starts = starts.tolist()
        self.run_start = self.starts + [n]
        wants = run_code != _NO_SIGNAL
        self.next_run = {side: next_true_index(wants & (run_code != side)).tolist()
                         for side in (-1, 0, 1)}

    def next(self, i: int, side: int) -> int:
        """First bar ``>= i`` whose signal wants a side other than ``side`` (n when none)."""
        r = bisect_right(self.starts, i) - 1
        hit = self.next_run[side][r]
        return i if hit == r else self.run_start[hit]


def block_extremes(values: np.ndarray, *, lowest: bool) -> tuple[float, ...]:
    """Per block of 64 consecutive values, the least (``lowest``) or the greatest, NaN ignored.

    A block of NaN only gives NaN. Block ``b`` covers ``values[64*b : 64*(b+1)]``; a window
    of values whose covering blocks all have a least value above a level has no value at or
    below it (that is all the scan asks of them).
    """
    if not values.size:
        return ()
    starts = np.arange(0, values.size, 1 << _BLOCK_SHIFT)
    with np.errstate(invalid="ignore"):
        return tuple((np.fmin if lowest else np.fmax).reduceat(values, starts).tolist())


def _mark_blocks(data: MarketData, s: int, low: np.ndarray, high: np.ndarray) -> tuple[tuple, tuple]:
    """:func:`block_extremes` of symbol ``s``'s mark ranges, cached on ``data`` for its own arrays.

    Like the funding maps, they depend only on the market data: runs sharing it compute them
    once (read-only tuples; the entry is rebuilt if the arrays were replaced).
    """
    bars = data.bars[data.symbols[s]]
    own = low is bars.mark_low and high is bars.mark_high
    cache = data.__dict__.setdefault("_run_cache", {}) if own else {}
    hit = cache.get(("mark_blocks", s))
    if hit is not None and hit[0] is low and hit[1] is high:
        return hit[2]
    blocks = (block_extremes(low, lowest=True), block_extremes(high, lowest=False))
    cache[("mark_blocks", s)] = (low, high, blocks)
    return blocks


def _scalar_view(values: np.ndarray) -> Any:
    """``values`` for per-element reads: a memoryview when float64 and contiguous (indexing it
    gives the Python float equal to ``values[i]``), else the array itself."""
    if values.dtype == np.float64 and values.flags.c_contiguous:
        return memoryview(values)
    return values


class _ArrayRun(RunLoop):
    """The engine's run wiring and phases, with the gate ranges kept as NumPy arrays.

    The event loop reads its gate ranges as Python lists (fast per-bar reads); the scan
    slices arrays instead, so the list conversion is skipped unless detail candles or trade
    ticks widen the ranges (then the engine's own aggregation is reused).
    """

    def build_gates(self) -> None:
        data = self.data
        if data.detail is not None or getattr(data, "trades", None) is not None:
            super().build_gates()
            self.gate_ranges = [tuple(np.asarray(a, dtype=np.float64) for a in g)
                                for g in self.gates]
        else:
            self.gates = []
            self.gate_ranges = [(b.mark_low, b.mark_high, b.low, b.high)
                                for b in (data.bars[s] for s in data.symbols)]

    def run_bars(self, start: int, stop: int) -> None:
        """Bars ``[start, stop)``: the scan instead of the per-bar loop (same schedule)."""
        self.scanner.scan(start, stop)


class SignalScanner:
    """Drives one run of :class:`~backtest.fastpath.SignalStrategy` bar-event by bar-event.

    Parameters
    ----------
    data : MarketData
        The run's market data.
    strategy : SignalStrategy
        Holds the signal array (validated here to ``(n_bars, n_symbols)``).
    config : RunConfig
        The run configuration.
    actions : sequence of ActionIndex, optional
        The action tables of the strategy's signals, already validated for ``data``
        (``backtest.fastpath.prepare_signals``); computed here when not given.
    """

    def __init__(self, data: MarketData, strategy: Any, config: RunConfig,
                 actions: Any = None) -> None:
        if actions is None:
            strategy._signals = validate_signals(strategy._signals, len(data), data.symbols)
        strategy._validated = (strategy._signals, tuple(data.symbols))
        self.run = _ArrayRun(data, strategy, config)
        self.run.scanner = self
        self.data = data
        self.strategy = strategy
        self.config = config
        self.n = len(data)
        self.n_symbols = len(data.symbols)
        #: Bars handed to the engine's phases so far (the rest were skipped as no-ops).
        self.visited = 0
        #: ``on_bar`` calls made on visited bars (the others would have been no-ops).
        self.strategy_calls = 0
        self.gates = self.run.gate_ranges
        if actions is None:
            self._action_tables(strategy._signals)
        else:
            self.actions = list(actions)
        # on_bar reads the signal only on visited bars: views, not a list of every bar
        strategy._columns = [_scalar_view(strategy._signals[:, s]) for s in range(self.n_symbols)]

    # ------------------------------------------------------------------ precomputation
    def _action_tables(self, signals: np.ndarray) -> None:
        """Per symbol, where the signal next asks for another side (see :class:`ActionIndex`)."""
        self.actions = [ActionIndex(signals[:, s]) for s in range(self.n_symbols)]

    # ------------------------------------------------------------------ scan
    def _next_bar(self, i: int, stop: int) -> int:
        """First bar in ``[i, stop)`` where the strategy acts or a threshold is reached."""
        st = self.run.st
        sides = st.account.sides
        margin = st.margin
        book = st.book
        end = stop
        for s in range(self.n_symbols):
            act = self.actions[s].next(i, sides[s])
            if act < end:
                end = act
        if end <= i:
            return i
        for s in range(self.n_symbols):
            ml, mh, ll, lh = self.gates[s]
            for values, level, below in ((ml, margin.mark_below[s], True),
                                         (mh, margin.mark_above[s], False),
                                         (ll, book.last_below[s], True),
                                         (lh, book.last_above[s], False)):
                if math.isinf(level):
                    continue
                window = values[i:end]
                hits = np.flatnonzero(window <= level if below else window >= level)
                if hits.size:
                    end = i + int(hits[0])
                    if end == i:
                        return i
        if margin.cross_multi:
            for j in range(i, end):
                if self._cross_breach(j):
                    return j
        return end

    def _last_hit(self, i: int, end: int) -> int:
        """First bar in ``[i, end)`` whose last-price range reaches a resting order's trigger."""
        book = self.run.st.book
        _, _, ll, lh = self.gates[0]
        for values, level, below in ((ll, book.last_below[0], True),
                                     (lh, book.last_above[0], False)):
            if math.isinf(level) or end <= i:
                continue
            hit = values[i:end] <= level if below else values[i:end] >= level
            k = int(hit.argmax())
            if hit[k]:
                end = i + k
        return end

    def _cross_breach(self, j: int) -> bool:
        st = self.run.st
        lows = [float(g[0][j]) for g in self.gates]
        highs = [float(g[1][j]) for g in self.gates]
        return st.margin.cross_bound_gap(st.account, lows, highs) <= 0.0

    def _gate(self, j: int) -> bool:
        """The engine's per-bar gate: does any threshold lie in bar ``j``'s ranges?"""
        st = self.run.st
        margin = st.margin
        book = st.book
        for s in range(self.n_symbols):
            ml, mh, ll, lh = self.gates[s]
            if ml[j] <= margin.mark_below[s] or mh[j] >= margin.mark_above[s] \
                    or ll[j] <= book.last_below[s] or lh[j] >= book.last_above[s]:
                return True
        return self.n_symbols > 1 and margin.cross_multi and self._cross_breach(j)

    def loop(self) -> None:
        """Run the engine's loop (schedule, ``on_start``, progress) with the scan inside."""
        self.run.loop()

    def scan(self, start: int, stop: int) -> None:
        """Visit, in order, every bar of ``[start, stop)`` where the event path does anything."""
        run = self.run
        if self.n_symbols == 1 and self.config.gating:
            self._loop_single(start, stop, run.event_bars, run.forced)
        else:
            self._loop_general(start, stop, run.event_bars, run.forced)

    def _loop_general(self, start: int, stop: int, events: list[int], forced: set[int]) -> None:
        """Any number of symbols, gated or not (mirrors ``RunLoop._bars_multi``)."""
        run = self.run
        ctx = run.ctx
        on_bar = self.strategy.on_bar
        pending = run.st.book.pending
        gating = self.config.gating
        e = int(np.searchsorted(events, start))
        i = start
        while i < stop:
            j = i if (pending or not gating) else self._next_bar(i, min(events[e], stop))
            if j >= stop:
                break
            self.visited += 1
            force = not gating
            if j == events[e]:
                run.bar_open(j)
                e += 1
                force = force or j in forced
            if pending:
                run.fill_open(j)
            if force or self._gate(j):
                run.walk(j)
            ctx._i = j
            on_bar(ctx)
            self.strategy_calls += 1
            i = j + 1

    def _loop_single(self, start: int, stop: int, events: list[int], forced: set[int]) -> None:
        """One symbol, gated: the hot path, with the scan inlined (mirrors ``_bars_single``)."""
        run = self.run
        st = run.st
        ctx = run.ctx
        # SignalStrategy.on_bar for one symbol, inlined: the signal of the bar as the target
        target = ctx.target_exposure
        column = memoryview(np.ascontiguousarray(self.strategy._signals[:, 0]))  # Python floats
        margin = st.margin
        book = st.book
        pending = book.pending
        sides = st.account.sides
        action = self.actions[0]  # ActionIndex.next inlined (two lookups per visited bar)
        starts, next_run, run_start = action.starts, action.next_run, action.run_start
        ml, mh, ll, lh = self.gates[0]
        # a window whose 64-bar blocks all stay clear of the level needs no element test
        low_blocks, high_blocks = _mark_blocks(self.data, 0, ml, mh)
        # scalar reads of bar i as Python floats (the same values; slices stay on the arrays)
        vml, vmh, vll, vlh = (_scalar_view(a) for a in self.gates[0])
        inf = math.inf
        visited = calls = 0
        e = int(np.searchsorted(events, start))
        i = start
        while i < stop:
            if not pending:
                end = min(events[e], stop)
                r = bisect_right(starts, i) - 1
                hit = next_run[sides[0]][r]
                act = i if hit == r else run_start[hit]
                if act < end:
                    end = act
                if end > i:  # the first gate hit in [i, end): one slice per finite level
                    level = margin.mark_below[0]
                    if level != -inf:
                        b, last = i >> _BLOCK_SHIFT, (end - 1) >> _BLOCK_SHIFT
                        if not (low_blocks[b] if b == last else min(low_blocks[b:last + 1])) > level:
                            hit = ml[i:end] <= level
                            k = int(hit.argmax())
                            if hit[k]:
                                end = i + k
                    level = margin.mark_above[0]
                    if level != inf and end > i:
                        b, last = i >> _BLOCK_SHIFT, (end - 1) >> _BLOCK_SHIFT
                        if not (high_blocks[b] if b == last else max(high_blocks[b:last + 1])) < level:
                            hit = mh[i:end] >= level
                            k = int(hit.argmax())
                            if hit[k]:
                                end = i + k
                    if book.last_below[0] != -inf or book.last_above[0] != inf:
                        end = self._last_hit(i, end)
                if end >= stop:
                    break
                i = end
            visited += 1
            force = False
            if i == events[e]:
                run.bar_open(i)
                e += 1
                force = i in forced
            if pending:
                run.fill_open(i)
            if force or vml[i] <= margin.mark_below[0] or vmh[i] >= margin.mark_above[0] \
                    or vll[i] <= book.last_below[0] or vlh[i] >= book.last_above[0]:
                run.walk(i)
            ctx._i = i
            # on_bar only where the signal wants another side: elsewhere its target order is
            # a no-op (no order is pending at this point: the open fill just consumed it)
            r = bisect_right(starts, i) - 1
            if next_run[sides[0]][r] == r:  # ActionIndex.next(i, side) == i
                value = column[i]
                if value == value:
                    target(value)
                calls += 1
            i += 1
        self.visited += visited
        self.strategy_calls += calls

    def result(self) -> RunResult:
        """The run's :class:`RunResult` (built by the engine, as for the event path)."""
        self.run.scanner = None  # no run <-> scanner cycle left: a finished run is freed at once
        return self.run.result()
