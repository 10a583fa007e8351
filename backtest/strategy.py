"""The strategy surface: parameters as class attributes, vectorized features, ``on_bar``.

Example (about 15 lines)::

    class SmaCross(Strategy):
        fast = 50
        slow = 200

        def features(self, bars):
            return bars.with_columns(fast=pl.col("close").rolling_mean(self.fast),
                                     slow=pl.col("close").rolling_mean(self.slow))

        def on_bar(self, ctx):
            fast, slow = ctx.feature("fast"), ctx.feature("slow")
            if fast > slow:
                ctx.target_exposure(1.0)
            elif fast < slow:
                ctx.target_exposure(-1.0)

Strategies are found by name (``hold``, ``sma_cross``, ``dca``, ``funding_carry``) or by
``"module:Class"``.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any

import polars as pl

from backtest.errors import StrategyError, did_you_mean

__all__ = ["BUILTIN_STRATEGIES", "Strategy", "load_strategy"]

#: Built-in strategies by name.
BUILTIN_STRATEGIES = {
    "hold": "strategies.hold:Hold",
    "sma_cross": "strategies.sma_cross:SmaCross",
    "dca": "strategies.dca:Dca",
    "funding_carry": "strategies.funding_carry:FundingCarry",
}


class Strategy:
    """Base class of strategies.

    Subclasses declare parameters as public class attributes (numbers, strings, booleans)
    and implement :meth:`on_bar`. ``Strategy(**params)`` overrides parameters; an unknown
    name raises :class:`~backtest.errors.StrategyError` with a suggestion.
    """

    #: Registry name (defaults to the class name).
    name: str = ""

    def __init__(self, **params: Any) -> None:
        known = self.parameters()
        for key, value in params.items():
            if key not in known:
                raise StrategyError(
                    f"{type(self).__name__}: unknown parameter {key!r}{did_you_mean(key, known)}; "
                    f"parameters are {', '.join(known) or '(none)'}")
            default = known[key]
            setattr(self, key, _coerce(type(self).__name__, key, value, default))

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """Parameter name -> default value (public, non-callable class attributes)."""
        out: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if klass is object or klass is Strategy:
                continue
            for key, value in vars(klass).items():
                if key.startswith("_") or key == "name" or callable(value) \
                        or isinstance(value, (classmethod, staticmethod, property)):
                    continue
                out[key] = value
        return out

    def params(self) -> dict[str, Any]:
        """Current parameter values of this instance."""
        return {key: getattr(self, key) for key in self.parameters()}

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
        """Called at each bar close; place orders through ``ctx``."""
        raise NotImplementedError(f"{type(self).__name__} must implement on_bar(ctx)")

    # Optional hooks; the engine calls them only when a subclass overrides them.
    def on_fill(self, ctx: Any, fill: dict[str, Any]) -> None:
        """A fill happened (``fill``: symbol, side, qty, price, order_id, position_qty)."""

    def on_funding(self, ctx: Any, event: dict[str, Any]) -> None:
        """A funding settlement was paid or received (symbol, rate, mark_price, payment)."""

    def on_liquidation(self, ctx: Any, event: dict[str, Any]) -> None:
        """A position was liquidated (the liquidations.parquet row as a dict)."""


def _coerce(owner: str, key: str, value: Any, default: Any) -> Any:
    """Convert CLI strings to the default's type; reject values of the wrong kind."""
    if default is None or type(value) is type(default):
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return str(value)
    except (TypeError, ValueError):
        pass
    raise StrategyError(f"{owner}: parameter {key!r} expects {type(default).__name__} "
                        f"(default {default!r}), found {value!r}")


def load_strategy(spec: str | type[Strategy] | Strategy, params: dict[str, Any] | None = None) -> Strategy:
    """A strategy instance from a name, ``"module:Class"``, a class or an instance.

    Raises
    ------
    StrategyError
        Unknown name (with a suggestion), import failure, not a Strategy, bad parameters.
    """
    params = dict(params or {})
    if isinstance(spec, Strategy):
        if params:
            for key, value in params.items():
                if key not in spec.parameters():
                    raise StrategyError(f"{type(spec).__name__}: unknown parameter {key!r}"
                                        f"{did_you_mean(key, spec.parameters())}")
                setattr(spec, key, _coerce(type(spec).__name__, key, value, spec.parameters()[key]))
        return spec
    if inspect.isclass(spec):
        cls = spec
    else:
        target = BUILTIN_STRATEGIES.get(spec, spec)
        if ":" not in target:
            raise StrategyError(f"strategy {spec!r} is not a built-in"
                                f"{did_you_mean(spec, BUILTIN_STRATEGIES)}; built-ins are "
                                f"{', '.join(BUILTIN_STRATEGIES)}, or pass 'module:Class'")
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise StrategyError(f"strategy {spec!r}: cannot import module {module_name!r} ({exc})") from None
        if not hasattr(module, attr):
            names = [n for n, v in vars(module).items() if inspect.isclass(v) and issubclass(v, Strategy)]
            raise StrategyError(f"strategy {spec!r}: module {module_name!r} has no {attr!r}"
                                f"{did_you_mean(attr, names)}; strategies there: {names}")
        cls = getattr(module, attr)
    if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
        raise StrategyError(f"strategy {spec!r}: expected a Strategy subclass, found {cls!r}")
    return cls(**params)
