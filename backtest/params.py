"""Strategy parameters: declared once as class attributes, with a type and an allowed range.

A parameter is either a plain class attribute (``fast = 50``: its type is the default's) or a
:class:`Param` (``fast = Param(50, ge=1, doc="bars")``) that adds a range, a set of choices or
"None allowed". Both are checked by the same code (:meth:`Param.check`) whether the value
comes from Python, a TOML run file or ``--param``/``--grid`` text on the command line: the
value is converted to the declared type and refused, with a
:class:`~backtest.errors.StrategyError` naming the strategy, the parameter, what is expected,
what was found and an example, when it is of the wrong kind (a boolean or a text where a number
is expected), not finite (``inf``, ``nan``), out of range or not one of the choices.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from backtest.errors import StrategyError, did_you_mean

__all__ = ["Param"]

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_KINDS = (bool, int, float, str)


class Param:
    """A strategy parameter: its default, type and allowed values.

    Used as a class attribute of a :class:`~backtest.strategy.Strategy`; reading it on an
    instance gives the instance's value (the default unless overridden).

    Parameters
    ----------
    default : bool, int, float, str or None
        The default value (None only with ``optional=True``).
    kind : type, optional
        ``bool``, ``int``, ``float`` or ``str``; default: the type of ``default``.
    ge, gt, le, lt : float, optional
        Bounds of a number (``>=``, ``>``, ``<=``, ``<``).
    choices : sequence of str, optional
        The allowed values of a text parameter.
    optional : bool, default False
        None is allowed (given as ``none`` on the command line) and means ``doc``'s default
        behaviour.
    doc : str
        What the parameter means, with its unit.
    """

    __slots__ = ("choices", "default", "doc", "ge", "gt", "kind", "le", "lt", "name", "optional")

    def __init__(self, default: Any, *, kind: type | None = None, ge: float | None = None,
                 gt: float | None = None, le: float | None = None, lt: float | None = None,
                 choices: Sequence[str] | None = None, optional: bool = False, doc: str = "") -> None:
        if kind is None:
            kind = type(default) if isinstance(default, _KINDS) else None
        if kind is not None and kind not in _KINDS:
            raise TypeError(f"Param kind must be one of bool, int, float, str; found {kind!r}")
        self.default, self.kind, self.optional, self.doc = default, kind, optional or default is None, doc
        self.ge, self.gt, self.le, self.lt = ge, gt, le, lt
        self.choices = tuple(choices) if choices is not None else None
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # a non-data descriptor: an instance's own value (set by Strategy.__init__) wins
        return self.default

    def __repr__(self) -> str:
        return f"Param({self.default!r}, {self.describe()})"

    @classmethod
    def infer(cls, name: str, default: Any) -> Param:
        """The parameter of a plain class attribute: its default's type, numbers finite."""
        param = cls(default)
        param.name = name
        return param

    def with_default(self, default: Any) -> Param:
        """This parameter with another default (a subclass overriding a plain value)."""
        param = Param(default, kind=self.kind, ge=self.ge, gt=self.gt, le=self.le, lt=self.lt,
                      choices=self.choices, optional=self.optional, doc=self.doc)
        param.name = self.name
        return param

    # ------------------------------------------------------------------ checks
    def describe(self) -> str:
        """What a value must be, in words (for messages and docs)."""
        if self.choices is not None:
            text = " or ".join(repr(c) for c in self.choices)
        elif self.kind is bool:
            text = "true or false"
        elif self.kind is int:
            text = "a whole number" + self._bounds()
        elif self.kind is float:
            text = "a finite number" + self._bounds()
        elif self.kind is str:
            text = "a non-empty text" if self.default != "" else "a text"
        else:
            text = "any value"
        return f"none or {text}" if self.optional and self.kind is not None else text

    def _bounds(self) -> str:
        parts = [f"{op} {value:g}" for op, value in ((">=", self.ge), (">", self.gt), ("<=", self.le),
                                                      ("<", self.lt)) if value is not None]
        return " " + " and ".join(parts) if parts else ""

    def check(self, owner: str, value: Any) -> Any:
        """``value`` converted to this parameter's type, or a StrategyError.

        Parameters
        ----------
        owner : str
            The strategy's name, for the message.
        value : Any
            A Python value or command-line text.
        """
        if value is None or (self.optional and isinstance(value, str) and value.strip().lower() == "none"):
            if self.optional:
                return None
            self._fail(owner, value)
        if self.kind is None:
            return value
        try:
            converted = _convert(self.kind, value, allow_empty=self.default == "")
        except (TypeError, ValueError, OverflowError):
            self._fail(owner, value)
        if self.choices is not None and converted not in self.choices:
            self._fail(owner, value, did_you_mean(str(converted), self.choices))
        if self.kind in (int, float) and not self._in_range(converted):
            self._fail(owner, value)
        return converted

    def _in_range(self, v: float) -> bool:
        return ((self.ge is None or v >= self.ge) and (self.gt is None or v > self.gt)
                and (self.le is None or v <= self.le) and (self.lt is None or v < self.lt))

    def _fail(self, owner: str, value: Any, hint: str = "") -> None:
        example = self.default if self.default is not None else self._example()
        meaning = f" ({self.doc})" if self.doc else ""
        raise StrategyError(
            f"{owner}: parameter {self.name!r}{meaning} expects {self.describe()}, found "
            f"{value!r}{hint}; pass e.g. {self.name}={_text(example)} (the default is "
            f"{_text(self.default)})")

    def _example(self) -> Any:
        for bound in (self.ge, self.gt):
            if bound is not None:
                return bound if self.ge is not None else bound + 1
        return 1


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _convert(kind: type, value: Any, *, allow_empty: bool) -> Any:
    """``value`` as ``kind``; ValueError/TypeError when it is not one (booleans are not numbers)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(value)
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number or a text")
    if kind is int:
        if isinstance(value, numbers.Integral):
            return int(value)
        number = float(value.strip()) if isinstance(value, str) else value
        if isinstance(number, numbers.Real) and float(number).is_integer():
            return int(number)
        raise ValueError(value)
    if kind is float:
        if isinstance(value, str):
            value = value.strip()
        elif not isinstance(value, numbers.Real):
            raise TypeError(value)
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(value)
        return number
    if isinstance(value, numbers.Real):
        value = str(value)
    if not isinstance(value, str) or (not value.strip() and not allow_empty):
        raise ValueError(value)
    return value
