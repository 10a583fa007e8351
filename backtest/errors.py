"""Errors the engine raises for bad input (outcomes such as rejections are data, not errors).

Every message names the subject, what was expected, what was found and how to fix it.
"""
from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable

__all__ = ["ConfigError", "EngineError", "MarketDataError", "StrategyError", "did_you_mean",
           "user_error_types"]

#: Every package's base class of "bad input" errors, as (module, class name). The CLI prints
#: these as ``error: <message>`` (exit 2); anything else is an internal error (a bug). A
#: package that adds an error base class outside these hierarchies registers it here.
USER_ERROR_BASES: tuple[tuple[str, str], ...] = (
    ("backtest.errors", "EngineError"),
    ("backtest.risk.errors", "RiskError"),
    ("backtest.venues.errors", "VenueError"),
    ("data_loaders.errors", "DataError"),
    ("data_loaders.ccxt_retry", "RetriesExhaustedError"),
    ("reports.rundir", "RunDirError"),
)


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


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes that mean "bad input, clearly explained" (see ``USER_ERROR_BASES``).

    Only modules already imported are looked at: an error can only have been raised by a
    module that was loaded, so the check never imports plotly, ccxt or the report package.
    """
    found: list[type[BaseException]] = []
    for module_name, class_name in USER_ERROR_BASES:
        module = sys.modules.get(module_name)
        error_type = getattr(module, class_name, None) if module is not None else None
        if isinstance(error_type, type) and issubclass(error_type, BaseException):
            found.append(error_type)
    return tuple(found)
