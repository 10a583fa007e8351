"""The array path's scan: skip to the next bar where anything can happen, run the engine's step.

See :mod:`backtest.fastpath` for why the bars in between are no-ops. The step, its gate and
the schedule are the event engine's own (``backtest.engine.RunLoop.step`` / ``run_bars``,
``backtest.gate``); this module adds only the signal's action tables (:class:`ActionIndex`:
the next bar where the signal wants another side, the bound of a skip) and the strategy
phase that trades the signal there.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Any

import numpy as np

from backtest.config import RunConfig
from backtest.engine import RunLoop
from backtest.gate import block_extremes
from backtest.fastpath import validate_signals
from backtest.market_data import MarketData
from backtest.results import RunResult

__all__ = ["ActionIndex", "SignalScanner", "block_extremes", "next_true_index"]

_NO_SIGNAL = 2


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


def _scalar_view(values: np.ndarray) -> Any:
    """``values`` for per-element reads: a memoryview when float64 and contiguous (indexing it
    gives the Python float equal to ``values[i]``), else the array itself."""
    if values.dtype == np.float64 and values.flags.c_contiguous:
        return memoryview(values)
    return values


class _ArrayRun(RunLoop):
    """The engine's run with the array path's two differences: quiet bars are skipped up to
    the signal's next action (:meth:`next_action`), and the strategy phase trades the signal
    only where it asks for another side (elsewhere its target order is a no-op)."""

    quiet_calls = False

    def next_action(self, i: int, end: int) -> int:
        """First bar in ``[i, end)`` whose signal wants another side than the one held."""
        sides = self.sides
        if self.single_column is not None:  # one symbol: ActionIndex.next inlined (hot)
            r = bisect_right(self.starts, i) - 1
            hit = self.next_run[sides[0]][r]
            act = i if hit == r else self.run_start[hit]
            return act if act < end else end
        for s, action in enumerate(self.actions):
            act = action.next(i, sides[s])
            if act < end:
                end = act
        return end

    def strategy_phase(self, i: int) -> None:
        """The signal's target on bar ``i`` (one symbol: only where it wants another side)."""
        column = self.single_column
        if column is None:
            super().strategy_phase(i)
            self.strategy_calls += 1
            return
        self.ctx._i = i
        # no order is pending at this point (the open fill just consumed it); the signal
        # acts where ActionIndex.next(i, side) == i
        r = bisect_right(self.starts, i) - 1
        if self.next_run[self.sides[0]][r] == r:
            value = column[i]
            if value == value:
                self.target(value)
            self.strategy_calls += 1

    def use_actions(self, actions: list[ActionIndex]) -> None:
        """Adopt the signal's action tables (bound once: read on every visited bar)."""
        self.actions = actions
        self.sides = self.st.account.sides  # updated in place by the account
        self.starts, self.next_run, self.run_start = actions[0].starts, actions[0].next_run, actions[0].run_start
        self.target = self.ctx.target_exposure


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
    signals : ndarray, optional
        The signal of a strategy that declares one (``Strategy.signal``) and is run as itself
        (``backtest.fastpath.run_strategy``): the strategy is left untouched (the run and its
        manifest see the very object the event path would) and only its signal is scanned.
        Without it, ``strategy`` is a :class:`~backtest.fastpath.SignalStrategy`.
    """

    def __init__(self, data: MarketData, strategy: Any, config: RunConfig,
                 actions: Any = None, signals: np.ndarray | None = None) -> None:
        holder = signals is None  # a SignalStrategy: it holds the signal and reads it in on_bar
        if holder:
            if actions is None:
                strategy._signals = validate_signals(strategy._signals, len(data), data.symbols)
            strategy._validated = (strategy._signals, tuple(data.symbols))
            signals = strategy._signals
        elif actions is None:
            signals = validate_signals(signals, len(data), data.symbols)
        self.run = _ArrayRun(data, strategy, config)
        self.data = data
        self.strategy = strategy
        self.config = config
        self.n = len(data)
        self.n_symbols = len(data.symbols)
        self.run.strategy_calls = 0
        if actions is None:
            self._action_tables(signals)
        else:
            self.actions = list(actions)
        self.run.use_actions(self.actions)
        # on_bar reads the signal only on visited bars: views, not a list of every bar
        columns = [_scalar_view(signals[:, s]) for s in range(self.n_symbols)]
        if holder:
            strategy._columns = columns
        self.run.single_column = columns[0] if self.n_symbols == 1 else None

    @property
    def visited(self) -> int:
        """Bars handed to the engine's step so far (the rest were skipped as no-ops)."""
        return self.run.visited

    @property
    def strategy_calls(self) -> int:
        """Strategy phases that traded the signal (the others would have been no-ops)."""
        return self.run.strategy_calls

    # ------------------------------------------------------------------ precomputation
    def _action_tables(self, signals: np.ndarray) -> None:
        """Per symbol, where the signal next asks for another side (see :class:`ActionIndex`)."""
        self.actions = [ActionIndex(signals[:, s]) for s in range(self.n_symbols)]

    def _next_bar(self, i: int, stop: int) -> int:
        """First bar in ``[i, stop)`` where the strategy acts or a threshold is reached."""
        run = self.run
        return run.gate.next_hit(i, run.next_action(i, stop))

    def loop(self) -> None:
        """Run the engine's loop (schedule, ``on_start``, progress) with the array path's skips."""
        self.run.loop()

    def result(self) -> RunResult:
        """The run's :class:`RunResult` (built by the engine, as for the event path)."""
        self.run.scanner = None  # no run <-> scanner cycle left: a finished run is freed at once
        return self.run.result()
