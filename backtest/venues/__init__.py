"""Pure venue math (margin, liquidation, funding) and versioned venue data.

Public surface: :mod:`backtest.venues.tiers` (``Tier``, ``TierTable``, ``TierSchedule``),
:mod:`backtest.venues.binance_usdm` and :mod:`backtest.venues.binance_coinm` (formulas),
:mod:`backtest.venues.base` (``Venue``, ``get_venue``; ``VenueRulebook``, ``get_rulebook`` for
venues only the cascade lab models), :mod:`backtest.venues.defaults`
(built-in tiers, markets, fees), :mod:`backtest.venues.errors`.
"""
from backtest.venues.base import (
    SlicedLiquidation,
    Venue,
    VenueRulebook,
    available_venues,
    get_rulebook,
    get_venue,
)
from backtest.venues.defaults import (
    clearance_fee_rate,
    default_fees,
    default_market,
    default_tier_schedule,
)
from backtest.venues.errors import (
    TierError,
    UnknownSymbolError,
    UnknownVenueError,
    VenueError,
    VersionError,
)
from backtest.venues.fees import ClearanceFee, FeeRates
from backtest.venues.markets import MarketSpec
from backtest.venues.tiers import Tier, TierSchedule, TierTable

__all__ = [
    "ClearanceFee",
    "FeeRates",
    "MarketSpec",
    "SlicedLiquidation",
    "Tier",
    "TierError",
    "TierSchedule",
    "TierTable",
    "UnknownSymbolError",
    "UnknownVenueError",
    "Venue",
    "VenueRulebook",
    "VenueError",
    "VersionError",
    "available_venues",
    "clearance_fee_rate",
    "default_fees",
    "default_market",
    "default_tier_schedule",
    "get_rulebook",
    "get_venue",
]
