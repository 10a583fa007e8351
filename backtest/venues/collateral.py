"""Collateral haircut tables, dated: Binance Multi-Assets Mode and Bybit's unified account.

Pure data and pure valuation (no engine imports). A table says, per asset, what fraction of
its market value counts as margin (the *collateral value ratio*, 1 - haircut), possibly in
tiers by quantity, and at which rate the venue converts it when it auto-exchanges a negative
margin-asset balance. Tables are versioned by ``effective_from`` like the risk tiers.

Sources
-------
[MA]   Binance FAQ "Multi-Assets Mode" https://www.binance.com/en/support/faq/29b45c485d664028b9ca1cdf90b24f6f
       and https://www.binance.com/en-NG/futures/trading-rules/perpetual/multi-asset-info
       (margin_rules.md §11): 2021 list BTC/ETH/BNB 95 %, XRP/ADA/DOT/SOL 90 %,
       USDT 99.99 %, BUSD 100 %; auto-exchange of a negative balance at 97.5 % (the page's
       example), below -10,000 USD, on liquidation, or when LTV >= 1 with no positions.
[UTA]  Bybit "Assets Collateral Value Ratio List (UTA)"
       https://testnet.bytick.com/en/help-center/article/Assets-Collateral-Value-Ratio-List-UTA
       (margin_rules.md §3.6, §11): every positive balance x USD index price x a tiered
       ratio (BTC 0-10: 0.98, 10-20: 0.95, ..., > 50: 0); negative balances count at 100 %.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from backtest.venues.binance_usdm import collateral_value
from backtest.venues.errors import VenueError, VersionError

__all__ = [
    "AssetRule",
    "BINANCE_MULTI_ASSETS",
    "BYBIT_UTA",
    "CollateralTier",
    "HaircutSchedule",
    "HaircutTable",
    "SCHEDULES",
    "tiered_collateral_value",
]


@dataclass(frozen=True)
class CollateralTier:
    """A quantity band ``[floor, cap)`` of one asset (asset units) and its ratio (0..1).

    ``ratio`` is None where the source does not give the band (the value is then refused
    rather than guessed).
    """

    floor: float
    cap: float
    ratio: float | None


@dataclass(frozen=True)
class AssetRule:
    """How one collateral asset counts.

    Attributes
    ----------
    asset : str
        Asset code (``BTC``).
    tiers : tuple of CollateralTier
        Quantity bands from 0 upwards, contiguous; one band ``[0, inf)`` for a flat ratio.
    exchange_rate : float
        Conversion factor of an auto-exchange (fraction of market value credited), (0, 1].
    """

    asset: str
    tiers: tuple[CollateralTier, ...]
    exchange_rate: float = 1.0


def tiered_collateral_value(qty: float, price: float, tiers: Sequence[CollateralTier], *,
                            progressive: bool = True, asset: str = "asset") -> float:
    """Collateral value of ``qty`` units at ``price``: market value times the band ratios, USD.

    Progressive (like tax brackets): each band's slice of the quantity counts at that band's
    ratio; flat: the whole quantity at the ratio of the band it falls in. A negative balance
    counts at 100 % (a liability, [UTA]). A one-band table gives
    ``binance_usdm.collateral_value(qty * price, ratio)`` ([MA]: "ADA worth $1,000 counts as
    $900").

    Source: [UTA] for the bands and the negative-balance rule; whether the bands apply
    progressively is margin_rules.md §14 open question 5 (progressive is the default, as
    the page's wording implies).

    Raises
    ------
    VenueError
        The quantity reaches a band whose ratio the source does not give.
    """
    if qty <= 0.0:
        return qty * price  # a liability counts in full
    if len(tiers) == 1:
        return collateral_value(qty * price, _known(tiers[0], qty, asset))
    if not progressive:
        floors = [t.floor for t in tiers]
        band = tiers[max(bisect.bisect_right(floors, qty) - 1, 0)]
        return collateral_value(qty * price, _known(band, qty, asset))
    total = 0.0
    for band in tiers:
        if qty <= band.floor:
            break
        part = min(qty, band.cap) - band.floor
        total += collateral_value(part * price, _known(band, qty, asset))
    return total


def _known(band: CollateralTier, qty: float, asset: str) -> float:
    if band.ratio is None:
        raise VenueError(
            f"collateral {asset}: {qty:g} units reach the band [{band.floor:g}, {band.cap:g}) whose "
            "collateral value ratio the source does not give (margin_rules.md §11 elides it); "
            "hold less of it or supply a table with that band")
    return band.ratio


@dataclass(frozen=True)
class HaircutTable:
    """The collateral rules of one venue mode at one time.

    Attributes
    ----------
    rules : mapping of str to AssetRule
        Accepted collateral assets.
    progressive : bool
        Quantity bands apply progressively (see :func:`tiered_collateral_value`).
    auto_exchange_below : float
        A negative margin-asset balance below ``-auto_exchange_below`` (USD) is auto-exchanged
        at once, positions or not ([MA]: 10,000 USD).
    """

    rules: Mapping[str, AssetRule]
    progressive: bool = True
    auto_exchange_below: float = 10_000.0

    def rule(self, asset: str) -> AssetRule:
        """The rule of ``asset`` (a clear error naming the accepted assets when absent)."""
        try:
            return self.rules[asset]
        except KeyError:
            from backtest.errors import did_you_mean

            raise VenueError(
                f"collateral {asset!r}: not accepted by this table{did_you_mean(asset, self.rules)}; "
                f"accepted: {', '.join(self.rules)}") from None

    def value(self, asset: str, qty: float, price: float) -> float:
        """Collateral value of ``qty`` of ``asset`` at ``price`` (USD)."""
        return tiered_collateral_value(qty, price, self.rule(asset).tiers,
                                       progressive=self.progressive, asset=asset)


class HaircutSchedule:
    """Haircut tables by ``effective_from`` (UTC ms), like ``tiers.TierSchedule``.

    Parameters
    ----------
    versions : sequence of (int, HaircutTable)
        Start instant (UTC ms) and table, any order.
    label : str
        Name used in messages (``binance_multi_assets``).
    source : str
        Where the tables come from (recorded in the manifest).
    """

    def __init__(self, versions: Sequence[tuple[int, HaircutTable]], *, label: str, source: str) -> None:
        if not versions:
            raise VenueError(f"haircut schedule {label}: expected at least one table, found none")
        self.versions = tuple(sorted(versions, key=lambda v: v[0]))
        self.starts = [v[0] for v in self.versions]
        self.label = label
        self.source = source

    def at(self, ts_ms: int) -> HaircutTable:
        """The table in force at ``ts_ms``; a date before the first table is refused."""
        k = bisect.bisect_right(self.starts, ts_ms) - 1
        if k < 0:
            from backtest.errors import utc_text

            raise VersionError(
                f"collateral table {self.label}: no table before {utc_text(self.starts[0])} "
                f"(asked for {utc_text(ts_ms)}); the mode did not exist then as far as the "
                "source says — run without collateral or from a later date")
        return self.versions[k][1]

    def next_change(self, ts_ms: int) -> int | None:
        """The first start after ``ts_ms`` (None when none)."""
        k = bisect.bisect_right(self.starts, ts_ms)
        return self.starts[k] if k < len(self.starts) else None


def _flat(asset: str, ratio: float, exchange_rate: float = 1.0) -> AssetRule:
    return AssetRule(asset, (CollateralTier(0.0, math.inf, ratio),), exchange_rate)


#: Binance Multi-Assets Mode, the 2021 list of [MA]. The launch date is not in the spec:
#: 2021-06-01 00:00 UTC is the start of the list's publication month as we date it (an
#: assumption recorded in the manifest). The 97.5 % auto-exchange factor is the page's
#: example, used for every non-stable asset; stablecoins convert 1:1.
BINANCE_MULTI_ASSETS = HaircutSchedule(
    [(1_622_505_600_000, HaircutTable(MappingProxyType({
        "USDT": _flat("USDT", 0.9999),
        "BUSD": _flat("BUSD", 1.0),
        "BTC": _flat("BTC", 0.95, 0.975),
        "ETH": _flat("ETH", 0.95, 0.975),
        "BNB": _flat("BNB", 0.95, 0.975),
        "XRP": _flat("XRP", 0.90, 0.975),
        "ADA": _flat("ADA", 0.90, 0.975),
        "DOT": _flat("DOT", 0.90, 0.975),
        "SOL": _flat("SOL", 0.90, 0.975),
    }), progressive=False))],
    label="binance_multi_assets",
    source="https://www.binance.com/en/support/faq/29b45c485d664028b9ca1cdf90b24f6f (2021 list; "
           "effective_from 2021-06-01 assumed)",
)

#: Bybit UTA collateral value ratios of [UTA]. Only the BTC bands the spec quotes are known
#: (0-10: 0.98, 10-20: 0.95, > 50: 0); the 20-50 band is refused rather than guessed. The
#: table is undated in the source: 2022-10-01 (the UTA's launch season) is our assumption.
BYBIT_UTA = HaircutSchedule(
    [(1_664_582_400_000, HaircutTable(MappingProxyType({
        "USDT": _flat("USDT", 1.0),
        "USDC": _flat("USDC", 1.0),
        "BTC": AssetRule("BTC", (CollateralTier(0.0, 10.0, 0.98), CollateralTier(10.0, 20.0, 0.95),
                                 CollateralTier(20.0, 50.0, None), CollateralTier(50.0, math.inf, 0.0))),
    }), progressive=True))],
    label="bybit_uta",
    source="https://testnet.bytick.com/en/help-center/article/Assets-Collateral-Value-Ratio-List-UTA "
           "(BTC bands 0-10, 10-20, >50 only; effective_from 2022-10-01 assumed)",
)

#: Tables selectable by name (``RunConfig.collateral_table``).
SCHEDULES: Mapping[str, HaircutSchedule] = MappingProxyType({
    "binance_multi_assets": BINANCE_MULTI_ASSETS,
    "bybit_uta": BYBIT_UTA,
})
