"""Input checks shared by the lending modules: one definition of each range rule.

Each helper returns the value it checked (as ``float``) so a call reads as an assignment, and
raises :class:`~backtest.lending.errors.LendingParameterError` naming the subject, the expected
range, the value found and how to fix it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from backtest.errors import did_you_mean
from backtest.lending.errors import LendingParameterError, UnknownAssetError

__all__ = ["at_least", "fraction", "lookup", "non_negative", "positive"]


def _finite(name: str, value: float, hint: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LendingParameterError(
            f"{name}: expected a number, found {value!r}; {hint}") from None
    if math.isnan(number):
        raise LendingParameterError(f"{name}: expected a number, found NaN; {hint}")
    return number


def non_negative(name: str, value: float, *, allow_inf: bool = False) -> float:
    """``value`` as float when ``>= 0`` (``inf`` only with ``allow_inf``)."""
    number = _finite(name, value, "pass an amount >= 0")
    if number < 0 or (math.isinf(number) and not allow_inf):
        expected = ">= 0" if allow_inf else "a finite number >= 0"
        raise LendingParameterError(
            f"{name}: expected {expected}, found {value!r}; amounts and balances are never "
            "negative here (a debt is its own field)")
    return number


def positive(name: str, value: float, *, allow_inf: bool = False) -> float:
    """``value`` as float when ``> 0`` (``inf`` only with ``allow_inf``)."""
    number = _finite(name, value, "pass a number > 0")
    if number <= 0 or (math.isinf(number) and not allow_inf):
        raise LendingParameterError(
            f"{name}: expected a finite number > 0, found {value!r}; prices, rates and "
            "durations must be positive")
    return number


def fraction(name: str, value: float, *, high: float = 1.0, high_open: bool = False) -> float:
    """``value`` as float when ``0 <= value <= high`` (``< high`` with ``high_open``)."""
    number = _finite(name, value, f"pass a fraction in [0, {high}]")
    if number < 0 or number > high or (high_open and number == high):
        bracket = ")" if high_open else "]"
        raise LendingParameterError(
            f"{name}: expected a fraction in [0, {high}{bracket}, found {value!r}; give "
            "percentages as fractions (80% -> 0.8)")
    return number


def at_least(name: str, value: float, low: float, why: str) -> float:
    """``value`` as float when finite and ``>= low``; ``why`` says what the bound means."""
    number = _finite(name, value, f"pass a number >= {low}")
    if number < low or math.isinf(number):
        raise LendingParameterError(f"{name}: expected a finite number >= {low} ({why}), "
                                    f"found {value!r}")
    return number


def lookup(kind: str, key: str, table: Mapping[str, object], subject: str) -> object:
    """``table[key]`` or an :class:`UnknownAssetError` listing what is known."""
    try:
        return table[key]
    except KeyError:
        known = ", ".join(sorted(table)) or "none"
        raise UnknownAssetError(
            f"{subject}: no {kind} for asset {key!r}{did_you_mean(key, table)}; known: {known}. "
            f"Add the asset's {kind} or fix the name") from None
