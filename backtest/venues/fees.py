"""Versioned fee rates: trading fees (maker/taker) and liquidation (clearance) fees.

A :class:`RateSchedule` holds dated versions of one rate, each with its source; ``at(ts)``
returns the version in force (the latest with ``effective_from <= ts``).
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from backtest.errors import utc_text
from backtest.venues.errors import VersionError

__all__ = ["ClearanceFee", "FeeRates", "RateSchedule"]


@dataclass(frozen=True, slots=True)
class FeeRates:
    """Trading fees as fractions of the traded notional (0.0005 = 0.05 %).

    Attributes
    ----------
    maker, taker : float
        Fee rates of resting (maker) and aggressing (taker) fills.
    effective_from : int
        UTC ms the rates took effect.
    source : str
        Where the values come from.
    effective_from_known : bool
        False when the date is an assumption (the source gives no change date).
    """

    maker: float
    taker: float
    effective_from: int
    source: str = ""
    effective_from_known: bool = True


@dataclass(frozen=True, slots=True)
class ClearanceFee:
    """Liquidation (insurance clearance) fee rate on the liquidated notional, fraction."""

    rate: float
    effective_from: int
    source: str = ""
    note: str = ""


V = TypeVar("V", FeeRates, ClearanceFee)


_iso = utc_text


class RateSchedule(Generic[V]):
    """Dated versions of one rate (``FeeRates`` or ``ClearanceFee``), sorted by start.

    Parameters
    ----------
    versions : iterable
        Items with an ``effective_from`` attribute (UTC ms); duplicates are an error.
    label : str
        Names the schedule in errors, e.g. ``"binanceusdm BTC/USDT:USDT clearance fee"``.
    """

    __slots__ = ("_starts", "label", "versions")

    def __init__(self, versions: Iterable[V], *, label: str) -> None:
        ordered = sorted(versions, key=lambda v: v.effective_from)
        if not ordered:
            raise VersionError(f"{label}: expected at least one version, found none")
        starts = [v.effective_from for v in ordered]
        if len(set(starts)) != len(starts):
            raise VersionError(f"{label}: two versions share an effective_from; keep one per instant")
        self.label = label
        self.versions: tuple[V, ...] = tuple(ordered)
        self._starts = starts

    def at(self, ts_ms: int) -> V:
        """The version in force at ``ts_ms`` (UTC ms).

        Raises
        ------
        VersionError
            Before the first version.
        """
        index = bisect.bisect_right(self._starts, int(ts_ms)) - 1
        if index < 0:
            raise VersionError(
                f"{self.label}: nothing is known at {_iso(int(ts_ms))}; the first version takes "
                f"effect {_iso(self._starts[0])}. Start the run later or pass the rate explicitly"
            )
        return self.versions[index]

    @property
    def latest(self) -> V:
        """The newest version."""
        return self.versions[-1]
