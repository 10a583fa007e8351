"""Liquidation barriers per leverage, from the venue's own formulas.

The Monte Carlo never re-derives a margin formula: for each leverage it sizes an isolated
position (margin fixed, notional = margin x leverage, qty = notional / entry) and asks the
venue for the liquidation price with the tier re-solved at the LP notional
(:func:`backtest.venues.binance_usdm.resolve_liquidation`), the bankruptcy price and the
clearance-fee rate — the same rules the engine applies bar by bar. A path is liquidated when
its *mark* price reaches that barrier.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from backtest.risk.errors import RiskError
from backtest.venues.base import Leg, get_venue
from backtest.venues.tiers import TierTable

__all__ = ["LiquidationBarrier", "barrier_frame", "liquidation_barriers", "position_barrier"]


@dataclass(frozen=True)
class LiquidationBarrier:
    """An isolated position at one leverage and where the venue liquidates it.

    Attributes
    ----------
    leverage : float
        Notional / isolated margin.
    side : int
        +1 long, -1 short.
    entry_price : float
        Entry (and starting mark) price, USDT.
    margin : float
        Isolated wallet of the position, USDT.
    notional : float
        Entry notional, USDT.
    qty : float
        Size in base units.
    liquidation_price : float
        Mark price at which equity = maintenance margin (tier at the LP notional), USDT;
        ``<= 0`` for a long means no positive price liquidates it.
    bankruptcy_price : float
        Mark price at which the isolated equity is zero, USDT.
    tier : int
        1-based bracket used at the liquidation price.
    mmr : float
        Maintenance-margin rate of that bracket.
    max_leverage : float
        Largest leverage the bracket of the entry notional allows.
    allowed : bool
        ``leverage <= max_leverage`` (a venue would reject the order otherwise).
    clearance_fee : float
        Liquidation clearance fee at the liquidation price, USDT (capped at the margin left).
    """

    leverage: float
    side: int
    entry_price: float
    margin: float
    notional: float
    qty: float
    liquidation_price: float
    bankruptcy_price: float
    tier: int
    mmr: float
    max_leverage: float
    allowed: bool
    clearance_fee: float

    @property
    def distance(self) -> float:
        """Signed log distance ``ln(LP / entry)`` (negative for a long)."""
        if self.liquidation_price <= 0:
            return -math.inf
        return math.log(self.liquidation_price / self.entry_price)


def position_barrier(
    *, leverage: float, side: int, entry_price: float, margin: float, tiers: TierTable,
    clearance_fee_rate: float = 0.0,
) -> LiquidationBarrier:
    """Size an isolated one-way position and solve its liquidation price with the venue rules.

    Parameters
    ----------
    leverage : float
        Notional / margin, finite and >= 1 (below 1 the margin exceeds the position).
    side : int
        +1 long, -1 short.
    entry_price : float
        Entry price, USDT (> 0).
    margin : float
        Isolated margin, USDT (> 0).
    tiers : TierTable
        The symbol's bracket table in force.
    clearance_fee_rate : float, default 0
        Liquidation clearance fee, fraction of the liquidated notional.
    """
    if not (math.isfinite(leverage) and leverage >= 1 and math.isfinite(entry_price) and entry_price > 0
            and math.isfinite(margin) and margin > 0) or side not in (1, -1):
        raise RiskError(
            f"liquidation barrier: need a finite leverage >= 1, entry_price > 0, margin > 0 and side +1/-1; "
            f"found leverage={leverage}, entry_price={entry_price}, margin={margin}, side={side}"
        )
    if tiers.basis != "notional" and len(tiers) > 1:  # Binance's brackets are by notional
        raise RiskError(
            f"liquidation barrier: the barrier solves Binance USDⓈ-M brackets by notional, tiers "
            f"{tiers.label} count {tiers.basis}; use the venue's notional tier table")
    notional = margin * leverage
    if not notional < tiers.max_notional:  # no bracket holds it: the venue would refuse the position outright
        raise RiskError(
            f"liquidation barrier at leverage {leverage:g}x: expected a position notional (margin x leverage) "
            f"under the largest bracket cap {tiers.max_notional:,.0f} USDT, found {notional:,.2f} USDT; lower "
            f"--leverage below {tiers.max_notional / margin:,.6g}x or --margin")
    qty = notional / entry_price
    venue = get_venue("binance_usdm")  # the barrier is Binance USDⓈ-M's, asked through the seam
    leg = Leg(side=side, qty=qty, entry_price=entry_price)
    solution = venue.resolve_liquidation(wallet_balance=margin, tiers=tiers, both=leg)
    lp = solution.price
    bp = venue.bankruptcy_price(wallet_balance=margin, side=side, qty=qty, entry_price=entry_price)
    tier_index = solution.tier_indices[0]
    max_lev = tiers.max_leverage_for(notional)
    margin_left = max(0.0, margin + side * qty * (lp - entry_price)) if lp > 0 else 0.0
    fee = min(clearance_fee_rate * qty * max(lp, 0.0), margin_left)
    return LiquidationBarrier(
        leverage=float(leverage), side=side, entry_price=entry_price, margin=margin, notional=notional,
        qty=qty, liquidation_price=float(lp), bankruptcy_price=float(bp), tier=tier_index + 1,
        mmr=solution.legs[0].mmr, max_leverage=float(max_lev), allowed=bool(leverage <= max_lev + 1e-12),
        clearance_fee=float(fee),
    )


def liquidation_barriers(
    leverages: Sequence[float], *, side: int, entry_price: float, margin: float, tiers: TierTable,
    clearance_fee_rate: float = 0.0,
) -> list[LiquidationBarrier]:
    """:func:`position_barrier` for each leverage of a grid (same order)."""
    if not leverages:
        raise RiskError("liquidation barriers: the leverage grid is empty; pass e.g. 2,5,10,20,50")
    return [position_barrier(leverage=lev, side=side, entry_price=entry_price, margin=margin, tiers=tiers,
                             clearance_fee_rate=clearance_fee_rate) for lev in leverages]


def barrier_frame(barriers: Sequence[LiquidationBarrier]) -> pl.DataFrame:
    """The barriers as a table (one row per leverage)."""
    return pl.DataFrame([{
        "leverage": b.leverage, "side": "long" if b.side > 0 else "short", "entry_price": b.entry_price,
        "margin": b.margin, "notional": b.notional, "qty": b.qty, "liquidation_price": b.liquidation_price,
        "bankruptcy_price": b.bankruptcy_price, "tier": b.tier, "mmr": b.mmr, "max_leverage": b.max_leverage,
        "allowed": b.allowed, "clearance_fee": b.clearance_fee,
    } for b in barriers])
