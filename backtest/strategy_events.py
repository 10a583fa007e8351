"""What a strategy's optional hooks receive: frozen dataclasses with past-tense names.

``on_fill(ctx, event: OrderFilled)``, ``on_funding(ctx, event: FundingPaid)``,
``on_liquidation(ctx, event: PositionLiquidated)``, ``on_adl(ctx, event: PositionDeleveraged)``.
Read fields as attributes (``event.price``). Dict-style access (``event["price"]``), the
hooks' former argument, still works for one release and warns (``DeprecationWarning``).

Not to be confused with :mod:`backtest.events`, the engine's schedule of event sources.
Money is in the symbol's margin asset (USDT for linear, the coin for inverse), prices in the
quote currency, quantities signed by side in base units (contracts for inverse), times UTC ms.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["FundingPaid", "OrderFilled", "PositionDeleveraged", "PositionLiquidated", "StrategyEvent"]


class StrategyEvent:
    """Base of the hook events: attribute access, plus dict-style access that warns."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        warnings.warn(f"{type(self).__name__}[{key!r}]: hook events are dataclasses now; read "
                      f"event.{key} (dict-style access goes in the next release)",
                      DeprecationWarning, stacklevel=2)
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def keys(self) -> list[str]:
        """Field names (for the deprecated dict-style use)."""
        return [f.name for f in fields(self)]  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class OrderFilled(StrategyEvent):
    """One fill of one of the strategy's orders (``on_fill``).

    Attributes
    ----------
    ts : int
        Fill time, UTC ms.
    order_id : int
        The order (``orders.parquet``).
    symbol : str
        Symbol (ccxt name).
    side : str
        ``buy`` or ``sell``.
    qty : float
        Filled quantity, base units (contracts for inverse), > 0.
    price : float
        Fill price after slippage, quote currency.
    position_qty : float
        The position after the fill, signed (+ long), base units.
    tag : str
        The order's tag.
    order_type : str
        ``market``, ``limit``, ``stop_market``, ``take_profit`` or ``close_position``.
    exit_reason : str
        What the order is when it closes a position: ``signal``, ``stop``, ``take_profit``
        or ``trailing_stop`` (a bracket's exits).
    """

    ts: int
    order_id: int
    symbol: str
    side: str
    qty: float
    price: float
    position_qty: float
    tag: str
    order_type: str
    exit_reason: str


@dataclass(frozen=True, slots=True)
class FundingPaid(StrategyEvent):
    """A funding settlement on a held position (``on_funding``).

    Attributes
    ----------
    ts : int
        Settlement time, UTC ms.
    symbol : str
        Symbol.
    rate : float
        Funding rate of the interval, fraction (longs pay shorts when > 0).
    mark_price : float
        Mark price of the settlement, quote currency.
    position_qty : float
        Position at the settlement, signed, base units.
    payment : float
        Amount credited to the wallet, margin asset (negative: paid).
    """

    ts: int
    symbol: str
    rate: float
    mark_price: float
    position_qty: float
    payment: float


@dataclass(frozen=True, slots=True)
class PositionLiquidated(StrategyEvent):
    """A position taken over by the liquidation engine (``on_liquidation``): the
    ``liquidations.parquet`` row (CONTRACTS §6).

    Attributes
    ----------
    ts, trigger_ts : int
        Forced fill and trigger times, UTC ms.
    symbol : str
        Symbol.
    side : str
        The liquidated position's side, ``long`` or ``short``.
    qty : float
        Quantity closed, base units (> 0).
    margin_mode : str
        ``isolated`` or ``cross``.
    entry_price, mark_price, last_price, liquidation_price, bankruptcy_price : float
        Quote currency; mark and last at the trigger.
    fill_price, reference_price : float
        The forced fill's price and its pre-slippage reference, quote currency.
    slippage_bps : float
        Slippage of the forced fill, basis points.
    slippage_cost, fee, margin_lost, insurance_fund_delta, bad_debt : float
        Margin asset: slippage value, clearance fee, margin the trader lost, the insurance
        fund's change (+ it gained), the loss beyond the margin nobody paid.
    equity_before, equity_after : float
        Account equity around the liquidation, margin asset.
    maint_margin_rate : float
        Maintenance margin rate of the position's tier, fraction.
    tier : int
        Tier (bracket) number, 1-based.
    """

    ts: int
    trigger_ts: int
    symbol: str
    side: str
    qty: float
    margin_mode: str
    entry_price: float
    mark_price: float
    last_price: float
    liquidation_price: float
    bankruptcy_price: float
    fill_price: float
    reference_price: float
    slippage_bps: float
    slippage_cost: float
    fee: float
    margin_lost: float
    insurance_fund_delta: float
    bad_debt: float
    equity_before: float
    equity_after: float
    maint_margin_rate: float
    tier: int


@dataclass(frozen=True, slots=True)
class PositionDeleveraged(StrategyEvent):
    """A position reduced by auto-deleveraging (``on_adl``): the ``adl.parquet`` row.

    Attributes
    ----------
    ts : int
        Time, UTC ms.
    symbol : str
        Symbol.
    side : str
        The reduced position's side, ``long`` or ``short``.
    qty : float
        Quantity closed, base units (> 0).
    price : float
        The price the position was closed at (see ``price_basis``), quote currency.
    realized_pnl : float
        PnL realized by the close, margin asset.
    score : float
        The ADL ranking score (the venue's formula; NaN where the venue does not rank).
    quantile : float
        The position's ADL quantile (0..1; 1 = first in the queue; NaN without a ranking).
    cause : str
        What triggered the deleveraging.
    rule : str
        The venue's ADL rule (``backtest.venues.adl_rules.AdlRule.name``).
    price_basis : str
        ``bankruptcy`` (the liquidated order's bankruptcy price) or ``previous_oracle``.
    """

    ts: int
    symbol: str
    side: str
    qty: float
    price: float
    realized_pnl: float
    score: float
    quantile: float
    cause: str
    rule: str = ""
    price_basis: str = "bankruptcy"
