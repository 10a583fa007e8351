"""Errors raised by the risk lab.

Every message names the subject, what was expected, what was found and how to fix it.
Outcomes (a liquidation, a failed survival target) are never errors: they are rows in results.
"""
from __future__ import annotations


class RiskError(ValueError):
    """Base class of every error the risk lab raises for bad input."""


class CrashLibraryError(RiskError):
    """A crash-window TOML file is missing, unparsable, or has an invalid entry."""


class MissingWindowDataError(RiskError, LookupError):
    """The store lacks the candles a crash window (or a fit) needs."""


class ScenarioError(RiskError):
    """A stress scenario is misconfigured or does not fit the market data it is applied to."""


class FitError(RiskError):
    """A return model could not be fitted (too little data, non-finite values, no convergence)."""
