"""Errors of the cascade engine: a caller's mistake (bad population file, unknown venue rule
set, impossible parameter). Outcomes — liquidations, ADL, bad debt, a runaway spiral — are rows
of the result, never exceptions. Every message names the subject, what was expected, what was
found and how to fix it.
"""
from __future__ import annotations

from backtest.errors import EngineError

__all__ = ["CascadeError", "PopulationError"]


class CascadeError(EngineError, ValueError):
    """A cascade input (parameter, path, venue rule set, liquidity model) is invalid."""


class PopulationError(CascadeError):
    """A population of positions (file or generator arguments) is unusable."""
