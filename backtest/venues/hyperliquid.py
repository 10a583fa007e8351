"""Hyperliquid perpetuals (USDC-margined, linear): margin tables, liquidation, funding; pure.

Units: prices in USDC per 1 base unit, ``size`` in base units, money in USDC. Sides are +1
(long) and -1 (short). Rates are fractions; funding rates are per 8 h unless a name says
``hourly``.

Sources (cited per function):

* [TIERS] Hyperliquid docs "Margin tiers" and "Margining",
  https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers (maintenance margin is
  half of the initial margin at max leverage; tiers with a maintenance deduction; mainnet
  BTC 0-150M 40x / >150M 20x, ETH 0-100M 25x / >100M 15x).
* [LIQ] Hyperliquid docs "Liquidations" (community mirrors
  https://hyperliquid-co.gitbook.io/wiki/ and https://www.cortex-vigil.com/wiki/):
  ``liq_price = price - side*margin_available/position_size/(1 - l*side)`` with
  ``l = 1/(2*max_leverage)``; positions above 100k USDC send 20 % to the book, then after a
  30 s cooldown the remainder; backstop liquidation to the liquidator vault when equity is
  below 2/3 of the maintenance margin.
* [FUND] Hyperliquid docs "Funding": hourly payment of 1/8 of the 8-hour rate
  ``F = P + clamp(I - P, -0.05 %, 0.05 %)``, ``I = 0.01 %`` per 8 h, premium from impact
  prices against the oracle, cap 4 %/hour, payment = size x oracle price x rate (doc example:
  impact bid 10,100 vs oracle 10,000 -> 0.95 % per 8 h).
* [FT] freqtrade/freqtrade @ 3b1fb5af847863302393b0413321642d454e35a5
  ``freqtrade/exchange/hyperliquid.py`` and ``tests/exchange/test_hyperliquid.py`` (29 real
  positions' ``liquidationPx``; 2024 max leverage BTC/ETH 50x, SOL/DOGE 20x).
* Project summary: ../shared/specs/margin_rules.md §6, ../shared/specs/cascades.md §B.6, §C.5.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone
from types import MappingProxyType

from backtest.venues.base import SlicedLiquidation, VenueRulebook
from backtest.venues.catalog import RuleVersion, VenueInfo
from backtest.venues.errors import TierError, UnknownSymbolError, VenueError
from backtest.venues.tiers import TierSchedule, TierTable

__all__ = [
    "BACKSTOP_FRACTION",
    "FIRST_SLICE_FRACTION",
    "LARGE_POSITION_USDC",
    "LIQUIDATION_COOLDOWN_S",
    "MARGIN_TABLES",
    "RULEBOOK",
    "backstop_threshold",
    "funding_payment",
    "hourly_funding_rate",
    "initial_margin",
    "is_backstop_liquidatable",
    "is_liquidatable",
    "liquidation_price",
    "liquidation_price_tiered",
    "liquidation_slices",
    "maintenance_margin",
    "maintenance_rate",
    "margin_table",
    "margin_table_from_leverage",
    "premium",
    "premium_clamp_funding",
]

#: Positions above this notional are liquidated in slices ([LIQ]; 10k on testnet), USDC.
LARGE_POSITION_USDC = 100_000.0
#: Share of a large position sent to the book first ([LIQ]).
FIRST_SLICE_FRACTION = 0.2
#: Cooldown before the remainder of a large position is sent ([LIQ]), seconds.
LIQUIDATION_COOLDOWN_S = 30.0
#: Backstop liquidation when equity < this fraction of the maintenance margin ([LIQ]).
BACKSTOP_FRACTION = 2.0 / 3.0
_HOURLY_CAP = 0.04


def _side(side: int) -> int:
    if side not in (1, -1):
        raise VenueError(f"Hyperliquid: side must be +1 (long) or -1 (short), found {side!r}")
    return side


def _positive(name: str, value: float) -> float:
    if not value > 0 or math.isinf(value):
        raise VenueError(f"Hyperliquid: {name} must be a finite number > 0, found {value!r}")
    return value


# ---- margin tables ------------------------------------------------------------------------

def maintenance_rate(max_leverage: float) -> float:
    """Maintenance-margin rate ``1/(2*max_leverage)``: half the initial margin at max leverage.

    1.25 % at 40x, 1 % at 50x. Source: [TIERS].
    """
    return 1.0 / (2.0 * _positive("max_leverage", max_leverage))


def margin_table_from_leverage(floors_and_leverage: Sequence[tuple[float, float]], *,
                               label: str = "hyperliquid margin table") -> TierTable:
    """A margin table from ``(notional_floor_usdc, max_leverage)`` rows, ascending.

    Each tier's MMR is :func:`maintenance_rate` of its max leverage and its deduction follows
    the usual recursion (``MM = N*MMR_k - deduction_k``, continuous in N). Source: [TIERS].
    """
    rows = [(float(floor), maintenance_rate(lev), float(lev)) for floor, lev in floors_and_leverage]
    if not rows:
        raise TierError(f"{label}: expected at least one (floor, max_leverage) row, found none")
    return TierTable.from_rates(rows, label=label)


def _ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() * 1000)


def _schedule(asset: str, versions: Sequence[tuple[str, Sequence[tuple[float, float]]]]) -> TierSchedule:
    label = f"hyperliquid {asset}"
    return TierSchedule(((_ms(day), margin_table_from_leverage(rows, label=label))
                         for day, rows in versions), label=label)


#: Dated margin tables by asset. 2024-01-01: the values of freqtrade's 2024 market fixture
#: ([FT]; the day they took effect is not known, the table is the earliest evidenced one).
#: 2025-03-13: the mainnet tiers of [TIERS], after leverage was cut following the 2025-03-12
#: ETH-whale backstop (cascades.md §B.6); SOL/DOGE kept their 20x.
MARGIN_TABLES: MappingProxyType[str, TierSchedule] = MappingProxyType({
    "BTC": _schedule("BTC", [("2024-01-01", [(0.0, 50.0)]),
                             ("2025-03-13", [(0.0, 40.0), (150_000_000.0, 20.0)])]),
    "ETH": _schedule("ETH", [("2024-01-01", [(0.0, 50.0)]),
                             ("2025-03-13", [(0.0, 25.0), (100_000_000.0, 15.0)])]),
    "SOL": _schedule("SOL", [("2024-01-01", [(0.0, 20.0)])]),
    "DOGE": _schedule("DOGE", [("2024-01-01", [(0.0, 20.0)])]),
})


def margin_table(asset: str, ts_ms: int) -> TierTable:
    """The margin table of ``asset`` (``"BTC"``, or a ccxt symbol ``"BTC/USDC:USDC"``) at ``ts_ms``.

    Raises
    ------
    UnknownSymbolError
        For an asset without a built-in table.
    TierError
        Before the asset's first known table.
    """
    base = asset.split("/")[0].upper()
    if base not in MARGIN_TABLES:
        raise UnknownSymbolError(
            f"Hyperliquid: no built-in margin table for {asset!r}; known assets are "
            f"{', '.join(sorted(MARGIN_TABLES))}. Pass a table built with "
            "margin_table_from_leverage() instead")
    return MARGIN_TABLES[base].at(ts_ms)


def initial_margin(*, size: float, mark_price: float, leverage: float) -> float:
    """Initial margin ``|size|*mark/leverage``, USDC. Source: [TIERS] ("Margining")."""
    return abs(size) * mark_price / _positive("leverage", leverage)


def maintenance_margin(*, size: float, mark_price: float, table: TierTable) -> float:
    """Maintenance margin ``N*MMR_k - deduction_k`` at ``N = |size|*mark``, USDC. Source: [TIERS]."""
    return table.maintenance_margin(abs(size) * mark_price)


# ---- trigger, liquidation price and the liquidation procedure -----------------------------

def is_liquidatable(*, equity: float, maintenance: float) -> bool:
    """True when account value (cross) or isolated margin + UPNL is below MM. Source: [LIQ]."""
    return equity < maintenance


def backstop_threshold(maintenance: float) -> float:
    """Equity below which the backstop liquidator vault takes over: 2/3 of MM, USDC. [LIQ]."""
    return BACKSTOP_FRACTION * maintenance


def is_backstop_liquidatable(*, equity: float, maintenance: float) -> bool:
    """True when equity < 2/3 of MM: positions and margin go to the liquidator vault.

    Cross: all cross positions and the cross margin; isolated: that position and its margin.
    The maintenance margin is not returned to the trader. Source: [LIQ].
    """
    return equity < backstop_threshold(maintenance)


def liquidation_price(*, side: int, size: float, price: float, margin: float,
                      max_leverage: float, other_maintenance: float = 0.0) -> float:
    """Price at which equity reaches the maintenance margin, USDC (docs formula).

    ``l = 1/(2*max_leverage)``, ``margin_available = margin - l*|size|*price - other_maintenance``,
    ``liq = price - s*margin_available/|size|/(1 - l*s)``.

    Parameters
    ----------
    price : float
        The price at which ``margin`` is measured (entry price with the position's collateral,
        or the current mark with the current equity: both give the same answer).
    margin : float
        Isolated: the position's isolated margin plus its UPNL at ``price``. Cross: the
        account value at ``price``.
    other_maintenance : float
        Cross only: maintenance margin of the account's other positions (held fixed), USDC.

    Returns ``0.0`` when the price would be negative (a 1x long is never liquidated).
    Source: [LIQ]; matches Hyperliquid's own ``liquidationPx`` of real positions ([FT]).
    """
    s = _side(side)
    q = _positive("size", abs(size))
    rate = maintenance_rate(max_leverage)
    available = margin - rate * q * price - other_maintenance
    return max(0.0, price - s * available / q / (1.0 - rate * s))


def liquidation_price_tiered(*, side: int, size: float, price: float, margin: float,
                             table: TierTable, other_maintenance: float = 0.0) -> float:
    """:func:`liquidation_price` for a tiered table: the tier is the one holding ``|size|*LP``.

    Solves ``margin + s*q*(P - price) = q*P*MMR_k - deduction_k + other`` for each tier and
    keeps the solution whose notional lies in that tier ([TIERS]; the docs formula is the
    single-tier case). Falls back to the first tier's solution when none is self-consistent
    (the MM is continuous, so this happens only at a boundary within float noise).
    """
    s = _side(side)
    q = _positive("size", abs(size))
    candidates = []
    for tier in table:
        denom = q * (tier.mmr - s)
        p = (margin - s * q * price + tier.cum - other_maintenance) / denom
        p = max(0.0, p)
        candidates.append(p)
        if tier.floor <= q * p < tier.cap:
            return p
    return candidates[0]


def liquidation_slices(*, size: float, mark_price: float,
                       large_position_usdc: float = LARGE_POSITION_USDC,
                       first_fraction: float = FIRST_SLICE_FRACTION,
                       cooldown_s: float = LIQUIDATION_COOLDOWN_S) -> list[tuple[float, float]]:
    """Market orders the clearinghouse sends: ``[(delay_s, size), ...]``, base units.

    Up to ``large_position_usdc`` notional the whole position at once; above it 20 % first,
    then, after the 30 s cooldown, the whole remainder (if the account is still liquidatable —
    the caller re-checks). Source: [LIQ].
    """
    q = abs(size)
    if q == 0:
        return []
    if q * mark_price <= large_position_usdc:
        return [(0.0, q)]
    first = q * first_fraction
    return [(0.0, first), (cooldown_s, q - first)]


# ---- funding --------------------------------------------------------------------------------

def premium(*, oracle_price: float, impact_bid: float, impact_ask: float) -> float:
    """One premium sample ``[max(bid - oracle, 0) - max(oracle - ask, 0)]/oracle``. [FUND]."""
    _positive("oracle_price", oracle_price)
    return (max(impact_bid - oracle_price, 0.0) - max(oracle_price - impact_ask, 0.0)) / oracle_price


def premium_clamp_funding(*, average_premium: float, interest_rate: float = 0.0001,
                          clamp: float = 0.0005) -> float:
    """8-hour funding rate ``F = P + clamp(I - P, -clamp, clamp)``, fraction (+ = longs pay).

    Doc example: premium 1 % -> 0.95 %. Source: [FUND].
    """
    return average_premium + min(max(interest_rate - average_premium, -clamp), clamp)


def hourly_funding_rate(rate_8h: float, *, cap: float = _HOURLY_CAP) -> float:
    """Rate paid each hour: 1/8 of the 8-hour rate, capped at 4 %/hour. Source: [FUND]."""
    return min(max(rate_8h / 8.0, -cap), cap)


def funding_payment(*, signed_size: float, oracle_price: float, hourly_rate: float) -> float:
    """Hourly funding of a position, USDC, + = received (positive rate: longs pay).

    Uses the **oracle** price, not the mark. Source: [FUND].
    """
    return -signed_size * oracle_price * hourly_rate


#: What the cascade lab asks of Hyperliquid, through :func:`backtest.venues.base.get_rulebook`
#: (the engine imports no venue module by name): the dated margin tables and [LIQ]'s slicing.
RULEBOOK = VenueRulebook(
    "hyperliquid", margin_table,
    SlicedLiquidation(LARGE_POSITION_USDC, FIRST_SLICE_FRACTION, LIQUIDATION_COOLDOWN_S))


#: Coverage for ``margincall venues``: isolated and cross (:func:`liquidation_price`); one
#: dated version per table of :data:`MARGIN_TABLES`.
VENUE_INFO = VenueInfo(
    name="hyperliquid", title="Hyperliquid perpetuals (USDC-margined)",
    modes=(("linear", "isolated"), ("linear", "cross")),
    rule_versions=tuple(RuleVersion(f"margin table {asset}", start, "MARGIN_TABLES: [FT], [TIERS]",
                                    date_known=start != schedule.first_effective_ms)
                        for asset, schedule in MARGIN_TABLES.items() for start, _ in schedule.versions))
