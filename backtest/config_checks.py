"""Value checks for configuration schemas: each says what it expects and gives an example.

A check is a callable ``check(value) -> normalized value`` that raises :class:`BadValue` when
the value is of the wrong kind or out of range. Checks hold no state, so one schema table
(``backtest.config``) can declare every key's type and range once; the TOML run file, the
command-line flags and the Python constructor all go through it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["BadValue", "Check", "Choice", "Custom", "Flag", "Integer", "Number", "Optional",
           "Pair", "PerSymbol", "Table", "Text", "describe"]


class BadValue(Exception):
    """Raised by a check; ``expected`` overrides the check's own text when the fault is deeper."""

    def __init__(self, expected: str | None = None, found: Any = None, *, has_found: bool = False) -> None:
        super().__init__(expected)
        self.expected = expected
        self.found = found
        self.has_found = has_found


def describe(value: Any) -> str:
    """A value as a user wrote it, with its kind: ``'ten' (text)``, ``inf (a number)``."""
    if isinstance(value, bool):
        kind = "true/false"
    elif isinstance(value, int):
        kind = "an integer"
    elif isinstance(value, float):
        kind = "a number"
    elif isinstance(value, str):
        kind = "text"
    elif isinstance(value, Mapping):
        kind = "a table"
    elif isinstance(value, (list, tuple)):
        kind = "a list"
    else:
        kind = type(value).__name__
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({kind})"


class Check:
    """Base class: ``expected`` (what is accepted) and ``example`` (a valid TOML value)."""

    expected = "a value"
    example = ""

    def __call__(self, value: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Number(Check):
    """A finite real number (bools refused) within ``[lo, hi]`` or ``(lo, hi)``.

    Parameters
    ----------
    lo, hi : float, optional
        Bounds; ``None`` leaves that side open.
    lo_open, hi_open : bool
        Exclude the bound itself.
    """

    def __init__(self, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                 hi_open: bool = False, example: str = "1", why: str = "") -> None:
        parts = []
        if lo is not None:
            parts.append(f"{'>' if lo_open else '>='} {lo:g}")
        if hi is not None:
            parts.append(f"{'<' if hi_open else '<='} {hi:g}")
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open
        self.expected = "a finite number" + (f" {' and '.join(parts)}" if parts else "") + why
        self.example = example

    def __call__(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadValue()
        number = float(value)
        if not math.isfinite(number):
            raise BadValue()
        if self.lo is not None and (number < self.lo or (self.lo_open and number == self.lo)):
            raise BadValue()
        if self.hi is not None and (number > self.hi or (self.hi_open and number == self.hi)):
            raise BadValue()
        return number


class Integer(Check):
    """A whole number (bools refused; a float such as ``3.0`` refused too) ``>= lo``."""

    def __init__(self, *, lo: int | None = None, example: str = "0") -> None:
        self.lo = lo
        self.expected = "an integer" + (f" >= {lo}" if lo is not None else "")
        self.example = example

    def __call__(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadValue()
        if self.lo is not None and value < self.lo:
            raise BadValue()
        return value


class Flag(Check):
    """``true`` or ``false`` (not 0/1 or text: a typo there should not pass as a setting)."""

    expected = "true or false"
    example = "true"

    def __call__(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise BadValue()
        return value


class Choice(Check):
    """One of a fixed set of names."""

    def __init__(self, options: Sequence[str]) -> None:
        self.options = tuple(options)
        self.expected = "one of " + ", ".join(repr(o) for o in self.options)
        self.example = repr(self.options[0]).replace("'", '"')

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise BadValue()
        return value


class Text(Check):
    """Non-empty text, optionally checked further by ``verify`` (raises on a bad value)."""

    def __init__(self, expected: str = "non-empty text", example: str = '"x"',
                 verify: Callable[[str], Any] | None = None) -> None:
        self.expected, self.example, self.verify = expected, example, verify

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise BadValue()
        if self.verify is not None:
            self.verify(value)
        return value


class Custom(Check):
    """Any predicate; ``convert`` may normalise an accepted value."""

    def __init__(self, accept: Callable[[Any], bool], expected: str, example: str,
                 convert: Callable[[Any], Any] | None = None) -> None:
        self.accept, self.expected, self.example, self.convert = accept, expected, example, convert

    def __call__(self, value: Any) -> Any:
        if not self.accept(value):
            raise BadValue()
        return self.convert(value) if self.convert is not None else value


class Optional(Check):
    """``None`` (the default: not settable from TOML, which has no null) or ``inner``."""

    def __init__(self, inner: Check) -> None:
        self.inner = inner
        self.expected = inner.expected  # None is the default; a run file cannot write it
        self.example = inner.example

    def __call__(self, value: Any) -> Any:
        return None if value is None else self.inner(value)


class Table(Check):
    """A table of ``name -> value``, each value checked by ``inner``."""

    def __init__(self, inner: Check, *, what: str = "name") -> None:
        self.inner = inner
        self.expected = f"a table of {what} = {inner.expected}"
        self.example = f"{{ {what} = {inner.example} }}"

    def __call__(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise BadValue()
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadValue(f"{self.expected} (text keys)", key, has_found=True)
            try:
                out[key] = self.inner(item)
            except BadValue:
                raise BadValue(f"{self.expected}; entry {key!r} must be {self.inner.expected}",
                               item, has_found=True) from None
        return out


class PerSymbol(Check):
    """One value for every symbol, or a table ``{symbol = value, default = value}``."""

    def __init__(self, inner: Check) -> None:
        self.inner = inner
        self.table = Table(inner, what="symbol")
        self.expected = f"{inner.expected} (or a table {{symbol = value, default = value}})"
        self.example = inner.example

    def __call__(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return self.table(value)
        return self.inner(value)


class Pair(Check):
    """Two values checked by ``inner``: a 2-list, or a table with the two ``names``."""

    def __init__(self, inner: Check, names: tuple[str, str], example: str) -> None:
        self.inner, self.names, self.example = inner, names, example
        self.expected = (f"[{names[0]}, {names[1]}] (or {{ {names[0]} = .., {names[1]} = .. }}), "
                         f"each {inner.expected}")

    def __call__(self, value: Any) -> tuple[Any, Any]:
        if isinstance(value, Mapping):
            if set(value) != set(self.names):
                raise BadValue()
            value = (value[self.names[0]], value[self.names[1]])
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise BadValue()
        return (self.inner(value[0]), self.inner(value[1]))
