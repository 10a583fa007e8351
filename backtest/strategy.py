"""The strategy surface: parameters as class attributes, vectorized features or a signal, ``on_bar``.

Example (about 15 lines)::

    class SmaCross(Strategy):
        fast = Param(50, ge=1, doc="fast SMA window, bars")
        slow = Param(200, ge=1, doc="slow SMA window, bars")

        def signal(self, inputs):
            close = pl.Series(inputs.close)
            fast, slow = close.rolling_mean(self.fast), close.rolling_mean(self.slow)
            return np.where(fast > slow, 1.0, np.where(fast < slow, -1.0, np.nan))

A strategy either implements ``on_bar(ctx)`` (any logic, event path only) or declares a
vectorized ``signal(inputs)``: the target exposure decided at each bar's close, NaN for "no
decision". A signal strategy has no ``on_bar`` of its own: the event path's ``on_bar`` targets
the signal's value (:meth:`Strategy.on_bar`) and the array path
(:func:`backtest.fastpath.run_signals`, the sweep) runs the very same array, so the two cannot
drift. **Exposure** is notional / sizing basis (the wallet by default): ``1.0`` is a long of 1x
the wallet in notional whatever the leverage, which sets only the margin (notional / leverage).

Strategies are found by name (``hold``, ``sma_cross``, ``dca``, ``funding_carry``,
``loop_rebalance``), by
``"module:Class"`` or by ``"path/to/file.py:Class"``.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from backtest.errors import StrategyError, did_you_mean
from backtest.params import Param
from backtest.strategy_events import FundingPaid, OrderFilled, PositionDeleveraged, PositionLiquidated

__all__ = ["BUILTIN_STRATEGIES", "ParameterConflict", "Param", "SignalInputs", "Strategy",
           "StrategyFailed", "load_strategy", "settled_rates", "strategy_class"]

#: Built-in strategies by name.
BUILTIN_STRATEGIES = {
    "hold": "strategies.hold:Hold",
    "sma_cross": "strategies.sma_cross:SmaCross",
    "dca": "strategies.dca:Dca",
    "funding_carry": "strategies.funding_carry:FundingCarry",
    "loop_rebalance": "strategies.loop_rebalance:LoopRebalance",
}
#: Names that are part of the surface, never parameters.
_RESERVED = frozenset({"name", "signal"})


class ParameterConflict(StrategyError):
    """Each parameter is valid alone but the combination is meaningless (``slow <= fast``).

    A sweep skips such grid points (and says how many); a run refuses them.
    """


class StrategyFailed(StrategyError):
    """A user's strategy raised inside one of its hooks.

    The message names the strategy, the hook, the bar time (UTC) and the user's own traceback
    lines (:mod:`backtest.strategy_failure`); ``original`` is the exception raised.
    """

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.original = original


def settled_rates(funding: Any, times: Any) -> np.ndarray:
    """Rate of the latest funding settlement at or before each of ``times`` (NaN before the first).

    Parameters
    ----------
    funding : SymbolFunding
        Settlements (``ts`` UTC ms, ``rate`` fraction per interval).
    times : array_like of int
        Instants, UTC ms (a bar's close: a settlement at that very instant is known).
    """
    times = np.asarray(times, dtype=np.int64)
    k = np.searchsorted(funding.ts, times, side="right") - 1
    out = np.full(times.shape, np.nan)
    known = k >= 0
    out[known] = funding.rate[k[known]]
    return out


@dataclass(frozen=True)
class SignalInputs:
    """What a vectorized signal reads: the first symbol's bars, funding and sizing of one run.

    Attributes
    ----------
    close : ndarray of float
        Last-price close per bar (quote per base). A signal's value at bar ``i`` must depend
        on ``close[: i + 1]`` only (it is decided at that bar's close).
    ts : ndarray of int64
        Bar open times, UTC ms.
    time : ndarray of int64
        Bar close times (the decision instants), UTC ms.
    funding_rate : ndarray of float
        Rate of the latest settlement at or before each bar's close (NaN before the first).
    leverage : float
        The run's leverage for the symbol (``RunConfig.leverage``).
    maker_fee, taker_fee : float
        Trading-fee rates the run charges, fractions of notional.
    sizing_basis : str
        What exposures are fractions of: ``"wallet"`` or ``"equity"``.
    """

    close: np.ndarray
    ts: np.ndarray
    time: np.ndarray
    funding_rate: np.ndarray
    leverage: float
    maker_fee: float
    taker_fee: float
    sizing_basis: str

    @classmethod
    def of_run(cls, data: Any, config: Any) -> SignalInputs:
        """The inputs of a run of ``data`` under ``config`` (both paths build them here)."""
        from backtest.state import run_fee_rates

        symbol = data.symbols[0]
        ts = data.bars[symbol].ts
        # per-bar columns built once per data (chunk by chunk on disk for a long run)
        time = data.per_bar(("close_ts",), lambda a, b: ts[a:b] + data.interval_ms, np.int64)
        maker, taker = run_fee_rates(config, data.markets[symbol])
        return cls(close=data.bars[symbol].close, ts=ts, time=time,
                   funding_rate=data.per_bar(("settled_rates", symbol),
                                             lambda a, b: settled_rates(data.funding[symbol], time[a:b])),
                   leverage=float(config.for_symbol("leverage", symbol)), maker_fee=float(maker),
                   taker_fee=float(taker), sizing_basis=config.sizing_basis)


class Strategy:
    """Base class of strategies.

    Subclasses declare parameters as public class attributes (plain values or
    :class:`~backtest.params.Param` with a range) and implement either :meth:`on_bar` or
    :meth:`signal`. ``Strategy(**params)`` overrides parameters, each checked by its
    declaration; an unknown name raises :class:`~backtest.errors.StrategyError` with a
    suggestion, a meaningless combination :class:`ParameterConflict` (see :meth:`conflict`).
    """

    #: Registry name (defaults to the class name).
    name: str = ""
    #: ``(context, signal values)`` of the run the base ``on_bar`` is trading.
    _signal_run: tuple[Any, list[float]] | None = None

    def __init__(self, **params: Any) -> None:
        kind = type(self)
        if kind.has_signal() and kind.on_bar is not Strategy.on_bar:
            raise StrategyError(
                f"{kind.label()}: declares both signal() and on_bar(); a strategy with a signal "
                "trades its signal on both paths (the base on_bar targets it), so remove on_bar "
                "or rename signal")
        self.set_params(params)

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Check and set parameters (by their declarations), then the combination."""
        specs = self.param_specs()
        label = self.label()
        for key, value in params.items():
            if key not in specs:
                raise StrategyError(
                    f"{label}: unknown parameter {key!r}{did_you_mean(key, specs)}; "
                    f"parameters are {', '.join(specs) or '(none)'}")
            setattr(self, key, specs[key].check(label, value))
        problem = self.conflict()
        if problem:
            values = ", ".join(f"{k}={getattr(self, k)!r}" for k in specs)
            raise ParameterConflict(f"{label}: parameters {values}: {problem}")

    @classmethod
    def label(cls) -> str:
        """The name messages use: ``name``, else the class name."""
        return cls.name or cls.__name__

    @classmethod
    def param_specs(cls) -> dict[str, Param]:
        """Parameter name -> declaration (public, non-callable class attributes)."""
        out: dict[str, Param] = {}
        for klass in reversed(cls.__mro__):
            if klass is object or klass is Strategy:
                continue
            for key, value in vars(klass).items():
                if key.startswith("_") or key in _RESERVED or (callable(value) and not isinstance(value, Param)) \
                        or isinstance(value, (classmethod, staticmethod, property)):
                    continue
                if isinstance(value, Param):
                    out[key] = value
                elif key in out:
                    out[key] = out[key].with_default(value)  # a subclass's new default, same rule
                else:
                    out[key] = Param.infer(key, value)
        return out

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """Parameter name -> default value."""
        return {key: spec.default for key, spec in cls.param_specs().items()}

    def params(self) -> dict[str, Any]:
        """Current parameter values of this instance."""
        return {key: getattr(self, key) for key in self.param_specs()}

    def conflict(self) -> str | None:
        """Why this combination of (individually valid) parameters is meaningless, or None."""
        return None

    # ------------------------------------------------------------------ signal
    @classmethod
    def has_signal(cls) -> bool:
        """Whether the strategy declares a vectorized :meth:`signal`."""
        return cls.signal is not Strategy.signal

    def signal(self, inputs: SignalInputs) -> np.ndarray:
        """Target exposure per bar, decided at its close (declare it instead of ``on_bar``).

        Parameters
        ----------
        inputs : SignalInputs
            Bars, settled funding rates, leverage and fees of the run's first symbol.

        Returns
        -------
        ndarray of float, shape (n_bars,)
            Notional / sizing basis per bar, signed by side (``1.0`` long 1x, ``-1.0``
            short, ``0.0`` flat); NaN = no decision (keep what is held). Value ``i`` may use
            bars ``0..i`` only. A position already on the wanted side is not resized.
        """
        raise NotImplementedError(f"{self.label()} has no vectorized signal")

    def signal_array(self, inputs: SignalInputs) -> np.ndarray:
        """:meth:`signal` checked: float64, one finite value (or NaN) per bar."""
        values = self.signal(inputs)
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise StrategyError(f"{self.label()}.signal: expected an array of floats, found "
                                f"{type(values).__name__}; return one target exposure per bar") from None
        n = inputs.close.size
        if array.shape != (n,):
            raise StrategyError(f"{self.label()}.signal: expected shape ({n},) (one target exposure "
                                f"per bar), found {array.shape}")
        bad = np.flatnonzero(np.isinf(array))
        if bad.size:
            raise StrategyError(f"{self.label()}.signal: bar {int(bad[0])} has an infinite target "
                                "exposure; return finite fractions of the sizing basis or NaN")
        return array

    # ------------------------------------------------------------------ hooks
    def features(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Vectorized features, computed once per symbol before the loop.

        Parameters
        ----------
        bars : polars.DataFrame
            The symbol's bars (``ts``, prices, volume, mark prices), all of them.

        Returns
        -------
        polars.DataFrame
            Same height; new columns are readable in ``on_bar`` through ``ctx.feature``.
            Only rows up to the current bar are ever revealed to ``on_bar``.
        """
        return bars

    def on_start(self, ctx: Any) -> None:
        """Called once before the first bar."""

    def on_bar(self, ctx: Any) -> None:
        """Called at each bar close; place orders through ``ctx``.

        A strategy with a :meth:`signal` keeps this one: it targets the signal's value of the
        closed bar (``ctx.target_exposure``), exactly what the array path does.
        """
        run = self._signal_run
        if run is None or run[0] is not ctx:
            if not self.has_signal():
                raise NotImplementedError(f"{self.label()} must implement on_bar(ctx) or signal(inputs)")
            values = np.ascontiguousarray(self.signal_array(ctx.signal_inputs()), dtype=np.float64)
            # a memoryview reads Python floats like a list would, without a list of every bar
            run = self._signal_run = (ctx, memoryview(values) if values.ndim == 1 else values.tolist())
        value = run[1][ctx.bar_index]
        if value == value:
            ctx.target_exposure(value)

    # Optional hooks; the engine calls them only when a subclass overrides them. Each
    # receives a frozen dataclass of backtest.strategy_events (read fields as attributes).
    def on_fill(self, ctx: Any, event: OrderFilled) -> None:
        """One of the strategy's orders filled (:class:`~backtest.strategy_events.OrderFilled`:
        ts, order_id, symbol, side, qty, price, position_qty, tag, order_type, exit_reason)."""

    def on_funding(self, ctx: Any, event: FundingPaid) -> None:
        """A funding settlement was paid or received on a held position
        (:class:`~backtest.strategy_events.FundingPaid`: ts, symbol, rate, mark_price,
        position_qty, payment)."""

    def on_liquidation(self, ctx: Any, event: PositionLiquidated) -> None:
        """A position was liquidated (:class:`~backtest.strategy_events.PositionLiquidated`:
        the liquidations.parquet row)."""

    def on_adl(self, ctx: Any, event: PositionDeleveraged) -> None:
        """A position was auto-deleveraged (:class:`~backtest.strategy_events.PositionDeleveraged`:
        the adl.parquet row)."""


def strategy_class(spec: str | type[Strategy]) -> type[Strategy]:
    """The class of a built-in name, ``"module:Class"`` or ``"path/file.py:Class"``.

    Raises
    ------
    StrategyError
        Unknown name (with a suggestion), missing file, import failure, missing class (with
        a suggestion over the file's strategies), not a Strategy subclass.
    """
    if inspect.isclass(spec):
        cls = spec
    else:
        text = str(spec).strip()
        target = BUILTIN_STRATEGIES.get(text, text)
        where, sep, attr = target.rpartition(":")
        if not sep and text.endswith(".py"):
            raise StrategyError(f"strategy {spec!r}: name the class too, e.g. '{text}:MyStrategy'"
                                f"{_classes_note(_load_file(Path(text), text))}")
        if not sep or not where or not attr:
            raise StrategyError(f"strategy name {spec!r} is not a built-in"
                                f"{did_you_mean(text, BUILTIN_STRATEGIES)}; expected a built-in, one of "
                                f"{', '.join(BUILTIN_STRATEGIES)}, or pass 'module:Class' or "
                                "'path/to/file.py:Class'")
        if where.endswith(".py") or "/" in where or "\\" in where:
            module = _load_file(Path(where), text)
        else:
            try:
                module = importlib.import_module(where)
            except ImportError as exc:
                raise StrategyError(f"strategy {spec!r}: cannot import module {where!r} ({exc}); "
                                    "check the name, or pass a file as 'path/to/file.py:Class'") from None
            except Exception as exc:  # noqa: BLE001 - the user's module failed while importing
                from backtest.strategy_failure import user_traceback

                raise StrategyError(f"strategy {spec!r}: importing module {where!r} raised "
                                    f"{type(exc).__name__}: {exc}\n{user_traceback(exc)}") from None
        if not hasattr(module, attr):
            names = _strategies_in(module)
            raise StrategyError(f"strategy {spec!r}: {where!r} has no {attr!r}"
                                f"{did_you_mean(attr, names)}; strategies there: {', '.join(names) or '(none)'}")
        cls = getattr(module, attr)
    if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
        raise StrategyError(f"strategy {spec!r}: expected a subclass of backtest.Strategy, found "
                            f"{cls!r}; subclass Strategy and implement on_bar(ctx) or signal(inputs)")
    return cls


def _strategies_in(module: Any) -> list[str]:
    return sorted(n for n, v in vars(module).items()
                  if inspect.isclass(v) and issubclass(v, Strategy) and v is not Strategy)


def _classes_note(module: Any) -> str:
    names = _strategies_in(module)
    return f"; strategies in the file: {', '.join(names)}" if names else "; the file defines no Strategy subclass"


def _load_file(path: Path, spec: str) -> Any:
    """Import a strategy file once per resolved path (a stable module name, so it pickles)."""
    if not path.is_file():
        folder = path.parent if str(path.parent) else Path(".")
        near = [p.name for p in folder.glob("*.py")] if folder.is_dir() else []
        hint = did_you_mean(path.name, near) if near else f"; folder {str(folder)!r} does not exist"
        raise StrategyError(f"strategy {spec!r}: no file {str(path)!r}{hint}; pass an existing "
                            "Python file as 'path/to/file.py:Class'")
    resolved = path.resolve()
    name = "margincall_user_" + hashlib.sha256(str(resolved).encode()).hexdigest()[:12] + "_" + \
        "".join(c if c.isalnum() else "_" for c in resolved.stem)
    if name in sys.modules:
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, resolved)
    if loader_spec is None or loader_spec.loader is None:
        raise StrategyError(f"strategy {spec!r}: {str(path)!r} is not a loadable Python file; "
                            "give a .py file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise StrategyError(f"strategy {spec!r}: syntax error in {str(path)!r} line {exc.lineno}: "
                            f"{exc.msg}; fix the file") from None
    except Exception as exc:  # noqa: BLE001 - any error of the user's module, shown with its lines
        sys.modules.pop(name, None)
        from backtest.strategy_failure import user_traceback

        raise StrategyError(f"strategy {spec!r}: importing {str(path)!r} raised "
                            f"{type(exc).__name__}: {exc}\n{user_traceback(exc)}") from None
    return module


def load_strategy(spec: str | type[Strategy] | Strategy, params: dict[str, Any] | None = None) -> Strategy:
    """A strategy instance from a name, ``"module:Class"``, ``"file.py:Class"``, a class or an instance.

    Raises
    ------
    StrategyError
        Unknown name (with a suggestion), import failure, not a Strategy, bad parameters.
    """
    params = dict(params or {})
    if isinstance(spec, Strategy):
        if params:
            spec.set_params(params)
        return spec
    return strategy_class(spec)(**params)
