"""The rules a risk-tier (bracket) table must satisfy: one definition for the importer and the engine.

The engine (:class:`backtest.venues.tiers.TierTable`) refuses a table that breaks any of these
rules, so the importer checks the same rules before storing a table (a table the engine
refuses would otherwise import cleanly and then break every run). ``data_loaders`` must not
import ``backtest``, so the rules live here and ``backtest.venues.tiers`` calls them.

Rules (Binance USDⓈ-M "Leverage and Margin" brackets): the first bracket starts at notional 0;
brackets are contiguous (each cap is the next floor) with cap > floor; ``0 <= mmr < 1``,
rates non-decreasing; max leverage positive and non-increasing; every maintenance amount
agrees with the recursion of :func:`maintenance_amounts`; tier numbers are ``1..n``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Protocol

__all__ = ["CUM_ABS_TOL", "CUM_REL_TOL", "maintenance_amounts", "table_problem", "tier_numbers_problem"]

#: Relative tolerance when checking a stored maintenance amount against the recursion.
CUM_REL_TOL = 1e-9
#: Absolute tolerance (quote currency) for the same check.
CUM_ABS_TOL = 1e-6


class TierLike(Protocol):
    """A bracket: ``floor``/``cap`` notional (quote currency), ``max_leverage``, ``mmr``, ``cum``."""

    floor: float
    cap: float
    max_leverage: float
    mmr: float
    cum: float


def maintenance_amounts(floors_and_rates: Iterable[tuple[float, float]]) -> list[float]:
    """Return the maintenance amount ("cum") of every bracket by Binance's recursion.

    ``cum_1 = 0`` and ``cum_k = cum_{k-1} + floor_k * (mmr_k - mmr_{k-1})``.

    Source: Binance FAQ b3c689c1f50a44cabb3a84e663b81d93 ("Maintenance Amount on Level n =
    Floor of Position Bracket on Level n * (MMR_n - MMR_{n-1}) + Maintenance Amount on Level
    n-1", worked example: level 3 of BTCUSDT = 250,000 * (1 % - 0.5 %) + 50 = 1,300 USDT).

    Parameters
    ----------
    floors_and_rates : iterable of (float, float)
        ``(notional_floor, maintenance_margin_rate)`` per bracket, in ascending floor order,
        the first floor being 0.

    Returns
    -------
    list of float
        The maintenance amount of each bracket, in the notional's unit.
    """
    amounts: list[float] = []
    previous_rate = 0.0
    cum = 0.0
    for index, (floor, rate) in enumerate(floors_and_rates):
        cum = 0.0 if index == 0 else cum + floor * (rate - previous_rate)
        amounts.append(cum)
        previous_rate = rate
    return amounts


def table_problem(tiers: Sequence[TierLike], label: str) -> str | None:
    """The first rule ``tiers`` breaks, as a message naming ``label`` and the tier; None when valid."""
    if not tiers:
        return f"{label}: expected at least one tier, found none"
    if tiers[0].floor != 0.0:
        return (f"{label}: the first tier must start at notional 0, found floor {tiers[0].floor}; "
                "add the missing lowest bracket")
    expected_cums = maintenance_amounts((tier.floor, tier.mmr) for tier in tiers)
    for index, tier in enumerate(tiers):
        where = f"{label}: tier {index + 1}"
        values = (tier.floor, tier.mmr, tier.cum, tier.max_leverage)
        if any(math.isnan(v) for v in values) or math.isnan(tier.cap):
            return f"{where} has a NaN field: {tier}"
        if not tier.cap > tier.floor:
            return f"{where}: expected cap > floor, found floor {tier.floor} cap {tier.cap}"
        if not 0.0 <= tier.mmr < 1.0:
            return f"{where}: expected 0 <= mmr < 1, found {tier.mmr}"
        if not tier.max_leverage > 0:
            return f"{where}: expected max_leverage > 0, found {tier.max_leverage}"
        if index + 1 < len(tiers):
            nxt = tiers[index + 1]
            if nxt.floor != tier.cap:
                return (f"{where}: brackets must be contiguous; cap {tier.cap} but tier {index + 2} "
                        f"starts at {nxt.floor} (sort the rows by floor and close the gap)")
            if nxt.mmr < tier.mmr:
                return f"{where}: maintenance rates must not decrease; {tier.mmr} then {nxt.mmr}"
            if nxt.max_leverage > tier.max_leverage:
                return (f"{where}: max leverage must not increase with size; "
                        f"{tier.max_leverage} then {nxt.max_leverage}")
        expected = expected_cums[index]
        if not math.isclose(tier.cum, expected, rel_tol=CUM_REL_TOL, abs_tol=CUM_ABS_TOL):
            return (f"{where}: maintenance amount {tier.cum} disagrees with the recursion "
                    f"cum_k = cum_(k-1) + floor_k * (mmr_k - mmr_(k-1)) = {expected}; "
                    "check the floor or rate of this tier or the one before")
    return None


def tier_numbers_problem(numbers: Sequence[int], label: str) -> str | None:
    """A message when the tier numbers of one table are not ``1..n``; None when they are."""
    if list(numbers) != list(range(1, len(numbers) + 1)):
        return f"{label}: tier numbers must be 1..n without gaps or duplicates, found {list(numbers)}"
    return None
