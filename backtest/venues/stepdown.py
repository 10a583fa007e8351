"""Partial liquidation by tier: close a breached position down to each lower tier in turn.

Binance ("smart liquidation", margin_rules.md §2.1), Bybit ("lowers the risk limit step by step before a full takeover", margin_rules.md §3.4) and
OKX ("partial liquidation steps the position down by tiers while the ratio is <= 100 % and the
position is above tier 1; at tier 1 the whole position is taken over", §4) share one procedure
and differ in what a tier requires (Binance ``N*MMR - cum``; Bybit ``N*MMR - deduction``; OKX ``N*(MMR + fee)``, no
deduction). This module holds the procedure once; each venue passes its requirement.

Units: quantities in the contract's units (base units linear, contracts inverse), money in the
margin asset; the tier table is keyed by its own basis (notional in the margin asset, or a
contract count for OKX), looked up through ``TierTable.index_for_position`` / ``qty_for_key``.
Binance applies the same smart liquidation to COIN-M ("IF and ADL logic match USDⓈ-M",
margin_rules.md §2.2), with its requirement in coin.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backtest.venues.tiers import Tier, TierTable

__all__ = ["TierDownPlan", "step_down_plan"]


@dataclass(frozen=True)
class TierDownPlan:
    """The partial liquidation of one breached position, bracket by bracket.

    Attributes
    ----------
    steps : tuple of float
        Quantities (base units, > 0) the forced orders close, in order; each brings the
        position into the next lower bracket.
    remainder : float
        Size left after the steps (base units).
    takeover : bool
        True when the remainder is still at or below maintenance at the trigger mark (or
        nothing can be kept): the full takeover at the bankruptcy price follows.
    """

    steps: tuple[float, ...]
    remainder: float
    takeover: bool


def _linear_notional(qty: float, price: float) -> float:
    return abs(qty) * price


def step_down_plan(*, qty: float, mark_price: float, margin_balance: float, tiers: TierTable,
                   clearance_rate: float, requirement: Callable[[float, Tier], float],
                   other_maintenance: float = 0.0, lot_size: float = 0.0,
                   contract: Any = None,
                   step_fee: Callable[[float, float], float] | None = None) -> TierDownPlan:
    """Reduce a breached position tier by tier at the trigger mark until it is compliant.

    Each step closes, at ``mark_price``, what takes the notional just below the floor of its
    tier (lot-rounded down); the margin balance changes only by the step's fee
    (``clearance_rate * notional closed``: closing at the mark moves PnL from unrealized to the
    wallet). The plan stops at the first step after which
    ``margin_balance - fees - other_maintenance - requirement(remainder)`` is > 0; when the first
    tier is reached without that, ``takeover`` is set (the venue takes the rest over at the
    bankruptcy price).

    Parameters
    ----------
    qty : float
        Absolute position size (> 0), base units (linear) or contracts (inverse).
    mark_price : float
        Mark at the trigger, quote per base unit.
    margin_balance : float
        The pool's wallet plus unrealized PnL at the mark, margin asset.
    tiers : TierTable
        The tier (risk-limit) table in force, keyed by its basis (notional or contracts).
    clearance_rate : float
        Fee fraction of each step's notional.
    requirement : callable
        ``(notional, tier) -> float``: what the venue requires of a position of that notional.
    other_maintenance : float
        Requirement of the pool's other positions (cross), margin asset.
    lot_size : float
        Quantity step (0: no rounding).
    contract : Contract, optional
        The symbol's :class:`backtest.contracts.Contract` (None: linear, base units).
    step_fee : callable, optional
        ``(qty_closed, mark_price) -> fee`` in the margin asset; None:
        ``clearance_rate * notional(qty_closed)``. Binance passes its own spelling so its
        floats stay bit-identical.

    Returns
    -------
    TierDownPlan
        ``steps`` (quantities closed), ``remainder`` and ``takeover``.
    """
    if not (qty > 0 and mark_price > 0):
        raise ValueError(f"step_down_plan: expected qty > 0 and mark_price > 0, found "
                         f"qty={qty!r}, mark_price={mark_price!r}")
    notional: Callable[[float, float], float] = (
        contract.notional if contract is not None else _linear_notional)
    steps: list[float] = []
    held = qty
    balance = margin_balance
    index = tiers.index_for_position(held, mark_price, contract)
    while index > 0:
        # just below the tier's floor, so the remainder is in the tier under it
        keep = tiers.qty_for_key(tiers.tiers[index].floor, mark_price, contract) * (1.0 - 1e-9)
        if lot_size > 0:
            keep = math.floor(keep / lot_size + 1e-9) * lot_size
        keep = min(keep, held)
        if keep <= 0.0:
            break
        step = held - keep
        if step > 0.0:
            steps.append(step)
            balance -= (step_fee(step, mark_price) if step_fee is not None
                        else clearance_rate * notional(step, mark_price))
            held = keep
        remaining = notional(held, mark_price)
        index = tiers.index_for_position(held, mark_price, contract, remaining)
        if balance - other_maintenance - requirement(remaining, tiers.tiers[index]) > 0.0:
            return TierDownPlan(tuple(steps), held, False)
    return TierDownPlan(tuple(steps), held, True)
