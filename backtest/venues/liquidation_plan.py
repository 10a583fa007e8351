"""A liquidation procedure as data: the steps a venue takes against a breached position.

:class:`LiquidationPlan` is what :meth:`backtest.venues.base.Venue.liquidation_procedure`
returns (tier-down or partial steps, then a takeover or a deferral); :class:`SlicedLiquidation`
is how a venue that slices large positions (Hyperliquid) declares it to the cascade lab.
Both are re-exported by :mod:`backtest.venues.base`, the seam's one import for callers.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LiquidationPlan", "LiquidationStep", "SlicedLiquidation"]


@dataclass(frozen=True)
class LiquidationStep:
    """One forced order of a liquidation procedure.

    Attributes
    ----------
    qty : float
        Quantity closed (> 0), base units or contracts.
    price : float
        The price the venue closes it at before market impact: the trigger mark for a
        tier-down step, the bankruptcy price for a takeover.
    kind : str
        ``"tier_down"``, ``"partial"``, ``"takeover"`` or ``"backstop"``.
    """

    qty: float
    price: float
    kind: str


@dataclass(frozen=True)
class LiquidationPlan:
    """What a venue does to one breached position (the liquidation procedure as data).

    Attributes
    ----------
    steps : tuple of LiquidationStep
        The forced orders, in order.
    remainder : float
        Size left after ``steps`` (0 after a takeover).
    takeover : bool
        True when the venue takes over what is left at the bankruptcy price.
    clearance_fee_rate : float
        Fee fraction charged on each step's liquidated notional.
    deferred : bool
        True when the venue cannot liquidate more now (dYdX v4's per-block limits over the
        time left): the remainder waits for the next trigger, it is not taken over.
    """

    steps: tuple[LiquidationStep, ...]
    remainder: float
    takeover: bool
    clearance_fee_rate: float
    deferred: bool = False


@dataclass(frozen=True)
class SlicedLiquidation:
    """A venue that sends a large liquidated position to the book in slices.

    Attributes
    ----------
    large_notional : float
        Positions above this notional (margin asset, e.g. USDC) are sliced.
    first_fraction : float
        Share of such a position sent at once (0 < f <= 1).
    cooldown_s : float
        Seconds before the remainder is sent.
    """

    large_notional: float
    first_fraction: float
    cooldown_s: float
