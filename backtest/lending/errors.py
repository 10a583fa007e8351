"""Errors raised by the lending-protocol math for invalid input.

Outcomes (a liquidation refused by the protocol's dust rule, an auction bid below the current
price, a deficit) are never errors: they are fields of the returned records. Only a caller's
mistake raises: a negative amount, a factor outside its range, an unknown asset. Every message
names the subject, what was expected, what was found and how to fix it.
"""
from __future__ import annotations

__all__ = ["LendingError", "LendingParameterError", "UnknownAssetError"]


class LendingError(ValueError):
    """Base class of every error of :mod:`backtest.lending`."""


class LendingParameterError(LendingError):
    """A protocol parameter or a position field is outside the range the protocol allows."""


class UnknownAssetError(LendingError, KeyError):
    """A position names an asset that has no reserve/asset configuration or no price."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
