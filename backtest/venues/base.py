"""The venue seam: what an engine needs from a venue, without knowing which venue it is.

A :class:`Venue` bundles a venue's pure formulas (one module per venue) with its versioned
default data. Venues are found by name through :func:`get_venue`; the registry maps each
name to ``"module:attribute"`` and imports the module on first use, so adding a venue is one
new module defining ``VENUE = Venue(...)`` plus one registry line.

Formula call conventions (keyword-only, floats, units of the venue's margin asset):

* ``maintenance_margin(notional, tier) -> float``
* ``liquidation_price(*, wallet_balance, both=None, long=None, short=None,
  other_maintenance=0.0, other_unrealized=0.0) -> float`` (legs are
  :class:`backtest.venues.binance_usdm.Leg`)
* ``liquidation_price_resolved(*, wallet_balance, tiers, both=None, long=None, short=None,
  other_maintenance=0.0, other_unrealized=0.0) -> float``
* ``bankruptcy_price(*, wallet_balance, side, qty, entry_price, other_unrealized=0.0)``
* ``funding_payment(*, signed_qty, mark_price, rate) -> float`` (+ = received)
* ``unrealized_pnl(*, signed_qty, entry_price, mark_price) -> float``
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from backtest.venues.errors import UnknownVenueError
from backtest.venues.fees import FeeRates
from backtest.venues.markets import MarketSpec
from backtest.venues.tiers import Tier, TierSchedule

__all__ = ["VENUES", "Venue", "available_venues", "get_venue"]

#: Venue name -> "module:attribute" of its :class:`Venue`. Planned next, each as one module:
#: bybit_linear, okx, bitmex_inverse, binance_coinm, hyperliquid, dydx_v4.
VENUES: MappingProxyType[str, str] = MappingProxyType({
    "binance_usdm": "backtest.venues.binance_usdm:VENUE",
})

#: Accepted spellings (ccxt ids) -> venue name.
ALIASES: MappingProxyType[str, str] = MappingProxyType({
    "binanceusdm": "binance_usdm",
    "binance": "binance_usdm",
})


@dataclass(frozen=True)
class Venue:
    """A venue's formulas and data accessors (immutable).

    Attributes
    ----------
    name : str
        Venue name (``"binance_usdm"``).
    exchange : str
        ccxt exchange id of its data (``"binanceusdm"``).
    contract_type : str
        ``"linear"`` or ``"inverse"``.
    maintenance_margin, liquidation_price, liquidation_price_resolved, bankruptcy_price,
    funding_payment, unrealized_pnl : callable
        Pure formulas with the call conventions of the module docstring.
    rule_versions : mapping
        Sources of the formulas (written to the run manifest).
    max_open_orders : int or None
        Most orders resting on one symbol at once (limit, stop and take-profit together);
        None = no limit.
    max_stop_orders : int or None
        Most stop / take-profit ("algo") orders resting on one symbol at once; None = no limit.
    tier_down_plan : callable or None
        The venue's partial liquidation by bracket (``binance_usdm.tier_down_plan``); None
        when the venue has none (``liquidation_mode="tier_down"`` then takes over in full).
    """

    name: str
    exchange: str
    contract_type: str
    maintenance_margin: Callable[[float, Tier], float]
    liquidation_price: Callable[..., float]
    liquidation_price_resolved: Callable[..., float]
    bankruptcy_price: Callable[..., float]
    funding_payment: Callable[..., float]
    unrealized_pnl: Callable[..., float]
    rule_versions: MappingProxyType[str, str] = field(
        default_factory=lambda: MappingProxyType({}))
    max_open_orders: int | None = None
    max_stop_orders: int | None = None
    tier_down_plan: Callable[..., Any] | None = None

    def tier_schedule(self, symbol: str) -> TierSchedule:
        """Built-in bracket tables of ``symbol`` (see :func:`defaults.default_tier_schedule`)."""
        from backtest.venues.defaults import default_tier_schedule
        return default_tier_schedule(self.name, symbol)

    def market(self, symbol: str, ts_ms: int | None = None) -> MarketSpec:
        """Built-in contract spec with the fees in force at ``ts_ms`` (latest when None)."""
        from backtest.venues.defaults import default_market
        return default_market(self.name, symbol, ts_ms)

    def clearance_fee_rate(self, symbol: str, ts_ms: int) -> float:
        """Liquidation (clearance) fee rate at ``ts_ms``, fraction of liquidated notional."""
        from backtest.venues.defaults import clearance_fee_rate
        return clearance_fee_rate(self.name, symbol, ts_ms)

    def default_fees(self, ts_ms: int | None = None) -> FeeRates:
        """Regular-tier maker/taker fees at ``ts_ms`` (latest when None)."""
        from backtest.venues.defaults import default_fees
        return default_fees(self.name, ts_ms)

    def describe(self) -> dict[str, Any]:
        """``{name, rule_versions}`` for the run manifest."""
        return {"name": self.name, "rule_versions": dict(self.rule_versions)}


def available_venues() -> tuple[str, ...]:
    """Registered venue names, sorted."""
    return tuple(sorted(VENUES))


def get_venue(name: str) -> Venue:
    """The :class:`Venue` registered under ``name`` (or a ccxt-id alias).

    Raises
    ------
    UnknownVenueError
        For an unregistered name; the message lists the registered ones.
    """
    key = ALIASES.get(name, name)
    try:
        target = VENUES[key]
    except KeyError:
        import difflib
        close = difflib.get_close_matches(name, [*VENUES, *ALIASES], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownVenueError(
            f"venue {name!r} is not registered; available: {', '.join(available_venues())}.{hint}"
        ) from None
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)
