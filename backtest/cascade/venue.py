"""Venue rule sets of the cascade engine and vectorized mirrors of the venue functions.

The cascade runs on arrays, so the per-position rules of ``backtest.venues`` are written here
once more in numpy form, each citing the scalar function it mirrors;
``tests/cascade/test_venue.py`` checks equality against those functions on random inputs.

A rule set (:class:`VenueRules`) names what differs between venues in a cascade: the tier
table (maintenance margin), the ADL ranking, the price at which ADL closes, and the disposal
policy (Hyperliquid's 20 % then 30 s slices; the others send the whole position).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from backtest.cascade import adl
from backtest.cascade.errors import CascadeError

__all__ = ["VENUES", "TierArrays", "VenueRules", "bankruptcy_prices", "isolated_liquidation_prices",
           "maintenance_margins", "venue_rules"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class TierArrays:
    """A tier table as arrays: ``floor``, ``mmr``, ``cum`` (one element per bracket)."""

    floor: Array
    mmr: Array
    cum: Array

    @classmethod
    def from_table(cls, table) -> TierArrays:  # noqa: ANN001 - backtest.venues.tiers.TierTable
        tiers = table.tiers
        if getattr(table, "basis", "notional") != "notional" and len(tiers) > 1:
            # the cascade's population is in notional: a contract-count table (OKX's) would
            # pick brackets by the wrong unit
            raise CascadeError(
                f"tiers {table.label}: the cascade looks brackets up by position notional, this table "
                f"counts {table.basis}; pass a notional tier table (--tiers / the venue's built-in one)")
        return cls(np.array([t.floor for t in tiers], dtype=np.float64),
                   np.array([t.mmr for t in tiers], dtype=np.float64),
                   np.array([t.cum for t in tiers], dtype=np.float64))

    def index(self, notional: Array) -> NDArray[np.intp]:
        """Bracket of each ``|notional|``; a floor belongs to the upper bracket.

        Mirrors :meth:`backtest.venues.tiers.TierTable.index_for`.
        """
        return np.maximum(0, np.searchsorted(self.floor, np.abs(notional), side="right") - 1)


def maintenance_margins(notional: Array, tiers: TierArrays) -> Array:
    """``N * mmr_k - cum_k`` with the bracket of ``N``, quote currency.

    Mirrors :func:`backtest.venues.binance_usdm.maintenance_margin` with
    ``TierTable.for_notional`` (and Hyperliquid's ``maintenance_margin``, the same form).
    """
    k = tiers.index(notional)
    return np.abs(notional) * tiers.mmr[k] - tiers.cum[k]


def bankruptcy_prices(side: Array, qty: Array, entry: Array, margin: Array) -> Array:
    """Isolated bankruptcy price ``EP - s * margin / q``, quote per base unit.

    Mirrors :func:`backtest.venues.binance_usdm.bankruptcy_price` with the isolated margin as
    the wallet balance.
    """
    return entry - side * margin / qty


def isolated_liquidation_prices(side: Array, qty: Array, entry: Array, margin: Array,
                                tiers: TierArrays) -> Array:
    """Isolated liquidation price with the bracket taken at the LP notional, quote per base.

    Solves ``margin + s q (P - EP) = q P mmr_k - cum_k`` (``_liquidation_price_one_leg``) and
    repeats with the bracket of ``q * P`` until no bracket changes, as
    :func:`backtest.venues.binance_usdm.liquidation_price_resolved` does for one leg. A long
    with ``P <= 0`` cannot be liquidated (the price is returned as computed, <= 0).
    """
    k = np.zeros(len(qty), dtype=np.intp)
    price = np.full(len(qty), np.nan)
    for _ in range(len(tiers.floor) + 2):
        numerator = margin + tiers.cum[k] - side * qty * entry
        denominator = qty * tiers.mmr[k] - side * qty
        price = numerator / denominator
        new_k = tiers.index(qty * np.maximum(price, 0.0))
        if np.array_equal(new_k, k):
            break
        k = new_k
    return price


# ---- rule sets --------------------------------------------------------------------------------

@dataclass(frozen=True)
class VenueRules:
    """What a venue decides in a cascade.

    Attributes
    ----------
    name : str
        Rule-set name (``binance_usdm``, ``bybit``, ``bitmex``, ``hyperliquid``).
    score : str
        ADL ranking: ``binance`` (LeveragePnL), ``bitmex`` (PnL% x effective leverage, also
        Bybit's principle), ``hyperliquid`` ((mark/entry) x (notional/account value)).
    adl_price : str
        ``bankruptcy`` (Binance, Bybit, BitMEX: the liquidated order's BP) or
        ``previous_mark`` (Hyperliquid).
    sliced_disposal : bool
        Hyperliquid: positions above 100k USDC go 20 % first, the rest after 30 s.
    tier_exchange : str
        Whose tier tables give the maintenance margin (``binanceusdm`` or ``hyperliquid``).
    """

    name: str
    score: str
    adl_price: str
    sliced_disposal: bool
    tier_exchange: str

    def tiers(self, symbol: str, ts_ms: int, given=None) -> TierArrays:  # noqa: ANN001
        """The tier table of ``symbol`` in force at ``ts_ms`` as arrays.

        ``given`` (a ``TierSchedule`` or ``TierTable``) replaces the built-in tables.
        """
        if given is not None:
            return TierArrays.from_table(given.at(ts_ms) if hasattr(given, "at") else given)
        from backtest.venues.base import RULEBOOKS, get_rulebook
        from backtest.venues.defaults import default_tier_schedule

        if self.tier_exchange in RULEBOOKS:  # a venue modelled by its rulebook (Hyperliquid)
            table = get_rulebook(self.tier_exchange).margin_table(symbol, ts_ms)
            return TierArrays.from_table(table)

        return TierArrays.from_table(default_tier_schedule(self.tier_exchange, symbol).at(ts_ms))

    def scores(self, *, side: Array, qty: Array, entry: Array, margin: Array, mark: float,
               maintenance: Array) -> Array:
        """ADL ranking of positions (higher is deleveraged first)."""
        upnl = side * qty * (mark - entry)
        if self.score == "binance":
            return adl.binance_leverage_pnl(upnl, margin, maintenance)
        if self.score == "hyperliquid":
            return adl.hyperliquid_score(side, mark, entry, qty * mark, margin + upnl)
        bankrupt = bankruptcy_prices(side, qty, entry, margin)
        return adl.bitmex_score(side * qty * mark, side * qty * entry, side * qty * bankrupt)


#: The built-in rule sets (cascades.md §C). Bybit and BitMEX use Binance's BTC/ETH brackets
#: for maintenance here (their own USDT-perp tables are not built in): a documented stand-in.
VENUES: dict[str, VenueRules] = {
    "binance_usdm": VenueRules("binance_usdm", "binance", "bankruptcy", False, "binanceusdm"),
    "bybit": VenueRules("bybit", "bitmex", "bankruptcy", False, "binanceusdm"),
    "bitmex": VenueRules("bitmex", "bitmex", "bankruptcy", False, "binanceusdm"),
    "hyperliquid": VenueRules("hyperliquid", "hyperliquid", "previous_mark", True, "hyperliquid"),
}


def venue_rules(name: str) -> VenueRules:
    """The rule set called ``name`` (did-you-mean error otherwise)."""
    try:
        return VENUES[name]
    except KeyError:
        from backtest.errors import did_you_mean

        raise CascadeError(f"venue rule set {name!r}: expected one of {', '.join(VENUES)}"
                           f"{did_you_mean(name, VENUES)}; e.g. --venue binance_usdm") from None
