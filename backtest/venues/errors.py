"""Errors raised by the venue layer. Every message names the subject, what was expected,
what was found and how to fix it."""
from __future__ import annotations

__all__ = ["TierError", "UnknownSymbolError", "UnknownVenueError", "VenueError", "VersionError"]


class VenueError(ValueError):
    """Base class of every error of ``backtest.venues``."""


class TierError(VenueError):
    """A tier table or schedule is malformed, or a lookup falls outside it."""


class VersionError(VenueError):
    """A versioned venue parameter is asked for before its first known version."""


class UnknownVenueError(VenueError, KeyError):
    """A venue or exchange name that has no module/data."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownSymbolError(VenueError, KeyError):
    """A symbol without default venue data."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
