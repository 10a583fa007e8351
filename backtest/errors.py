"""Errors the engine raises for bad input (outcomes such as rejections are data, not errors).

Every message names the subject, what was expected, what was found and how to fix it.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["ConfigError", "EngineError", "MarketDataError", "StrategyError", "did_you_mean"]


class EngineError(Exception):
    """Base class of every error raised by :mod:`backtest` outside the venue math."""


class ConfigError(EngineError, ValueError):
    """A run configuration key or value is invalid."""


class MarketDataError(EngineError, ValueError):
    """Market data given to the engine is unusable (missing columns, unsorted, gaps...)."""


class StrategyError(EngineError, ValueError):
    """A strategy name, class or parameter is invalid."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest candidate, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


from backtest.formatting import utc_text  # noqa: E402  (one home of the time format)
