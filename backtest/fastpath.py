"""The array path: a target-exposure signal array in, the event path's ``RunResult`` out.

:func:`run_signals` gives exactly the result of :func:`backtest.run_backtest` with
:class:`SignalStrategy` (an ``on_bar`` that calls ``ctx.target_exposure(signals[i])`` on every
bar whose signal is not NaN): same fills, orders, funding, liquidations, equity and summary,
bit for bit. Only the *scan* differs. The event path visits every bar in Python; this path
finds, with NumPy, the next bar on which anything can happen and hands that bar to the very
same phase code of the engine (``backtest.engine``: bar-open events, fills at the open, the
intrabar walk, the strategy's order), which runs the shared accounting (``Account``,
``Position``, ``MarginModel``, ``Liquidator``, ``FundingSchedule``, slippage, ``Journal``).

Why the skipped bars are no-ops
-------------------------------
Between two state changes the account is frozen: positions, wallet and the cached
liquidation thresholds (``MarginModel.mark_below`` / ``mark_above``) do not move. In the event
path a bar then does something only when

1. it is an *event bar*: a funding settlement or a tier-table version falls on it;
2. an order is pending (it fills at this bar's open);
3. its mark range (or last range, for resting orders) reaches a cached threshold, so the
   intrabar walk runs (``ml[i] <= mark_below``, ``mh[i] >= mark_above``, ...);
4. the strategy wants another side: ``sign(signals[i]) != current side`` (a target order with
   ``tolerance=None`` is a no-op while the side already matches).

Every other bar leaves no trace: equity and positions per bar are expanded from the journal's
snapshots after the loop (``backtest.metrics.BarState``), identically for both paths. So the
next bar to visit is the minimum of: the next event bar (a sorted list), the next action bar
(the signal cut into runs of equal sign; per held side a reversed running minimum over the
runs; one bisection per lookup, :class:`~backtest.fastpath_scan.ActionIndex`) and the next
gate hit, the first ``mark_low[a:b] <= lp`` (or ``mark_high[a:b] >= lp`` for a short) in the
window ``[a, b)`` that ends at the earlier of the two others. Windows follow each other, so
the scan compares each bar about once; a window whose 64-bar blocks all keep their lowest mark
above ``lp`` (highest below, for a short) is passed without comparing its bars
(:func:`~backtest.gate.block_extremes`, computed once per ``MarketData``).
:func:`prepare_signals` checks a signal and builds its action tables once for several runs.

Cases the scan cannot vectorize fall back to visiting bars one by one, with the same result:
``RunConfig(gating=False)`` (every bar walked), and a cross-margin pool spanning several
symbols (``MarginModel.cross_multi``; its breach depends on all marks at once).

Seam with the engine: the scan is the engine's own schedule (``backtest.engine.RunLoop.run_bars``)
driving the engine's one bar step (``RunLoop.step``) and its one gate (``backtest.gate.Gate``);
the array run (``backtest.fastpath_scan``) changes only what may be skipped (quiet bars up to
the next action) and the strategy phase (the signal's target where it wants another side).
``tests/engine/test_fastpath*.py`` assert table-by-table equality with the event path so that
any drift of either fails loudly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from backtest.config import RunConfig
from backtest.errors import StrategyError
from backtest.market_data import MarketData
from backtest.results import RunResult
from backtest.strategy import Strategy

__all__ = ["PreparedSignals", "SignalStrategy", "array_path_applies", "prepare_signals", "run_signals", "run_strategy",
           "validate_signals"]


class SignalStrategy(Strategy):
    """Event-path twin of :func:`run_signals`: holds ``signals[i]`` as its target exposure.

    On each bar ``i`` it calls ``ctx.target_exposure(signals[i, s], symbol)`` for every symbol
    ``s`` whose signal is not NaN. A fraction is a multiple of the sizing basis (``wallet`` or
    ``equity``, :class:`~backtest.config.RunConfig`), its sign the side, ``0.0`` flat. As with
    ``target_exposure(tolerance=None)``, a position already on the wanted side is kept as is.

    Parameters
    ----------
    signals : array_like
        Shape ``(n_bars,)`` for one symbol or ``(n_bars, n_symbols)``; floats, NaN = no
        opinion (keep whatever is held).
    """

    name = "signals"

    def __init__(self, signals: Any) -> None:
        super().__init__()
        self._signals = _as_float_array(signals)
        #: Per-symbol signal columns read by ``on_bar`` (lists, or arrays set by the scan).
        self._columns: list[Any] | None = None
        self._symbols: tuple[str | None, ...] = (None,)
        #: ``(array, symbols)`` once ``validate_signals`` accepted that very array for those
        #: symbols (set by the scan, which validates first): ``on_start`` then skips the check.
        self._validated: tuple[np.ndarray, tuple[str, ...]] | None = None

    def features(self, bars: pl.DataFrame) -> pl.DataFrame:
        """No features; checks that there is one signal row per bar."""
        if self._signals.shape[:1] != (bars.height,):
            raise StrategyError(
                f"SignalStrategy: expected one signal row per bar ({bars.height}), found shape "
                f"{self._signals.shape}; give one target exposure per bar (NaN for no signal)")
        return bars

    def on_start(self, ctx: Any) -> None:
        """Check the signal columns against the run's symbols; cache them for ``on_bar``."""
        symbols = ctx.symbols
        done = self._validated
        if done is None or done[0] is not self._signals or done[1] != tuple(symbols):
            self._signals = validate_signals(self._signals, self._signals.shape[0], symbols)
        if self._columns is None:
            self._columns = [self._signals[:, s].tolist() for s in range(len(symbols))]
        self._symbols = (None,) if len(symbols) == 1 else symbols

    def on_bar(self, ctx: Any) -> None:
        """Target the signal of the closed bar for every symbol that has one."""
        i = ctx.bar_index
        for column, symbol in zip(self._columns, self._symbols):
            value = column[i]
            if value == value:
                ctx.target_exposure(float(value), symbol)


def validate_signals(signals: Any, n_bars: int, symbols: tuple[str, ...]) -> np.ndarray:
    """Return ``signals`` as a ``(n_bars, n_symbols)`` float64 array, or raise.

    Raises
    ------
    StrategyError
        Wrong shape, or infinite values (NaN is allowed: it means "no opinion").
    """
    array = _as_float_array(signals)
    if array.ndim == 1:
        array = array[:, None]
    expected = (n_bars, len(symbols))
    if array.ndim != 2 or array.shape != expected:
        raise StrategyError(
            f"signals: expected shape {expected[0]} (one symbol) or {expected} (bars x symbols "
            f"{', '.join(symbols)}), found {np.shape(signals)}; give one target exposure per "
            "bar of the market data (NaN where there is no signal)")
    if np.isinf(array).any():
        bad = np.flatnonzero(np.isinf(array).any(axis=1))
        raise StrategyError(
            f"signals: row {int(bad[0])} holds an infinite target exposure; expected a finite "
            "fraction of the sizing basis (e.g. 1.0 long, -1.0 short, 0.0 flat) or NaN for no "
            "signal")
    return np.ascontiguousarray(array)


def _as_float_array(signals: Any) -> np.ndarray:
    try:
        return np.asarray(signals, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StrategyError(
            f"signals: expected numbers (target exposures, NaN for no signal), found "
            f"{type(signals).__name__} that does not convert to float ({exc}); pass a float "
            "NumPy array or a list of floats") from None


@dataclass(frozen=True, eq=False)
class PreparedSignals:
    """Signals checked against one market's bars and symbols, with the scan's action tables.

    Runs that differ only in their configuration (a leverage sweep) share one: the check and
    the per-symbol :class:`~backtest.fastpath_scan.ActionIndex` tables are computed once.
    Build it with :func:`prepare_signals`; read-only (the array is not writeable).

    Attributes
    ----------
    signals : ndarray of float, shape (n_bars, n_symbols)
        Target exposure per bar and symbol (NaN = no opinion), not writeable.
    symbols : tuple of str
        The symbols of the market data the signals were checked against.
    actions : tuple
        One ``ActionIndex`` per symbol (where the signal next asks for another side).
    """

    signals: np.ndarray
    symbols: tuple[str, ...]
    actions: tuple[Any, ...]


def prepare_signals(data: MarketData, signals: Any) -> PreparedSignals:
    """Check ``signals`` against ``data`` once, for several :func:`run_signals` calls.

    Parameters
    ----------
    data : MarketData
        The market the runs will replay.
    signals : array_like of float
        As for :func:`run_signals`.

    Raises
    ------
    StrategyError
        When the signal array does not match the data (shape, infinite values).
    """
    from backtest.fastpath_scan import ActionIndex

    array = np.array(validate_signals(signals, len(data), tuple(data.symbols)), dtype=np.float64)
    array.setflags(write=False)
    return PreparedSignals(array, tuple(data.symbols),
                           tuple(ActionIndex(array[:, s]) for s in range(array.shape[1])))


def run_signals(data: MarketData, signals: Any, *, config: RunConfig | None = None,
                kernel: bool | None = None) -> RunResult:
    """Run target-exposure signals through the engine's accounting with a vectorized scan.

    Parameters
    ----------
    data : MarketData
        Bars, funding, tiers and specs of the run (as for :func:`backtest.run_backtest`).
    signals : array_like of float, or PreparedSignals
        Target exposure per bar, decided at the bar's close (orders fill at the next open):
        shape ``(n_bars,)`` for one symbol or ``(n_bars, n_symbols)``. A value is a fraction
        of the sizing basis (``config.sizing_basis``: wallet or equity) of notional, signed by
        side (``1.0`` long 1x, ``-1.0`` short 1x, ``0.0`` flat); ``NaN`` means no opinion
        (keep what is held). A position already on the wanted side is not resized.
        A :class:`PreparedSignals` of the same data skips the per-run check.
    config : RunConfig, optional
        Run configuration (default ``RunConfig()``).
    kernel : bool, optional
        Run through the compiled kernel (:mod:`backtest.kernel`) when the run is in its
        scope (one symbol, isolated, linear, fixed slippage, ...); False: always the scan;
        None (default): the kernel when it is already loaded in this process
        (``backtest.kernel.ready``: a sweep worker, or after ``backtest.kernel.warm()``), as
        a single run does not repay numba's start-up. The result is the same either way.

    Returns
    -------
    RunResult
        Identical to ``run_backtest(data, SignalStrategy(signals), config=config)``.

    Raises
    ------
    StrategyError
        When the signal array does not match the data (shape, infinite values), or prepared
        signals were checked against other data.
    """
    from backtest.fastpath_scan import SignalScanner

    config = config or RunConfig()
    if isinstance(signals, PreparedSignals):
        if signals.symbols != tuple(data.symbols) or signals.signals.shape[0] != len(data):
            raise StrategyError(
                f"signals: prepared for {signals.signals.shape[0]} bars of "
                f"{', '.join(signals.symbols)}, but the market data has {len(data)} bars of "
                f"{', '.join(data.symbols)}; prepare them with prepare_signals(data, signals) "
                "on the data of the run")
        array = signals.signals
    else:
        array = validate_signals(signals, len(data), tuple(data.symbols))
    if _use_kernel(kernel) and array.shape[1] == 1:
        from backtest.kernel import run_kernel

        done = run_kernel(data, array[:, 0], config)
        if done is not None:
            return done.result(SignalStrategy(array))
    if isinstance(signals, PreparedSignals):
        scanner = SignalScanner(data, SignalStrategy(signals.signals), config, actions=signals.actions)
    else:
        scanner = SignalScanner(data, SignalStrategy(array), config, actions=None)
    scanner.loop()
    return scanner.result()


#: Strategy hooks that may place orders or read state: a strategy overriding any of them is
#: not a pure signal, and runs on the event path.
_HOOKS = ("on_start", "on_bar", "on_fill", "on_funding", "on_liquidation")


def array_path_applies(data: MarketData, strategy: Strategy) -> bool:
    """Whether :func:`run_strategy` runs ``strategy`` on ``data`` through the array path.

    True for a pure signal strategy (it declares :meth:`~backtest.strategy.Strategy.signal`
    and overrides no hook of :data:`_HOOKS`: the base ``on_bar`` targets the signal, exactly
    what the scan does) of one symbol (the signal is the first symbol's).
    """
    kind = type(strategy)
    return (kind.has_signal() and len(data.symbols) == 1 and len(data) > 0
            and all(getattr(kind, hook) is getattr(Strategy, hook) for hook in _HOOKS))


def _use_kernel(kernel: bool | None) -> bool:
    """``kernel`` as asked; None: whether the compiled kernel is already loaded."""
    if kernel is None:
        from backtest.kernel import ready

        return ready()
    return bool(kernel)


def run_strategy(data: MarketData, strategy: Any = "hold", *, params: dict[str, Any] | None = None,
                 config: RunConfig | None = None, kernel: bool | None = None) -> RunResult:
    """:func:`backtest.run_backtest`, through the array path whenever that gives the same result.

    A pure signal strategy (:func:`array_path_applies`) has its signal computed once and
    scanned (:class:`~backtest.fastpath_scan.SignalScanner`) with the strategy itself in the
    run, so every table, the summary and the manifest are those of the event path; any other
    strategy runs on the event path. ``margincall run`` runs backtests through here.

    Parameters
    ----------
    data, strategy, params, config
        As for :func:`backtest.run_backtest`.
    kernel : bool, optional
        Take the compiled kernel (:mod:`backtest.kernel`) when the run is in its scope, as
        :func:`run_signals` does (None: when it is already loaded); False: always the scan.
    """
    from backtest.engine import run_backtest
    from backtest.fastpath_scan import SignalScanner
    from backtest.strategy import SignalInputs, load_strategy

    config = config or RunConfig()
    instance = load_strategy(strategy, params)
    if not array_path_applies(data, instance):
        return run_backtest(data, instance, config=config)
    signal = instance.signal_array(SignalInputs.of_run(data, config))  # what the base on_bar trades
    if _use_kernel(kernel):
        from backtest.kernel import run_kernel

        done = run_kernel(data, signal, config)
        if done is not None:
            return done.result(instance)
    scanner = SignalScanner(data, instance, config, signals=signal)
    scanner.loop()
    return scanner.result()
