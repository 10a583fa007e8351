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
* [ADL] Hyperliquid docs "Auto-deleveraging",
  https://hyperliquid.gitbook.io/hyperliquid-docs/trading/auto-deleveraging (opposite users
  in profit ranked by ``(mark_price / entry_price) * (notional_position / account_value)``,
  closed at the previous oracle price against the underwater user).
* [FT] freqtrade/freqtrade @ 3b1fb5af847863302393b0413321642d454e35a5
  ``freqtrade/exchange/hyperliquid.py`` and ``tests/exchange/test_hyperliquid.py`` (29 real
  positions' ``liquidationPx``; 2024 max leverage BTC/ETH 50x, SOL/DOGE 20x).
* Project summary: ../shared/specs/margin_rules.md §6, ../shared/specs/cascades.md §B.6, §C.5.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from backtest.venues.adl_rules import PREVIOUS_ORACLE, AdlCandidate, AdlRule, rank_quantiles
from backtest.venues.base import Leg, SlicedLiquidation, Venue, VenueRulebook
from backtest.venues.catalog import VenueInfo
from backtest.venues.errors import TierError, UnknownSymbolError, VenueError
from backtest.venues.tiers import TierSchedule, TierTable

__all__ = [
    "ADL_RULE",
    "BACKSTOP_FRACTION",
    "FIRST_SLICE_FRACTION",
    "LARGE_POSITION_USDC",
    "LIQUIDATION_COOLDOWN_S",
    "MARGIN_TABLES",
    "RULEBOOK",
    "VENUE",
    "adl_score",
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


def _tables_from_data() -> MappingProxyType[str, TierSchedule]:
    """The dated margin tables of backtest/venues/data/hyperliquid.toml, by base asset.

    That file is the one place the tables live (the venue's runs read it too); its symbols are
    the store's names (``"BTC/USDT:USDT"``), keyed here by their base asset (``"BTC"``).
    """
    from backtest.venues.defaults import venue_data

    return MappingProxyType({symbol.split("/")[0]: schedule
                             for symbol, schedule in venue_data("hyperliquid").tiers.items()})


#: Dated margin tables by asset (from the venue's data file). 2023-02-28: the values of
#: freqtrade's 2024 market fixture ([FT]; the day they took effect is not known: used from the
#: first Hyperliquid record in ../shared, an ASSUMPTION). 2025-03-13: the mainnet tiers of [TIERS], after leverage was
#: cut following the 2025-03-12 ETH-whale backstop (cascades.md §B.6); SOL/DOGE kept 20x.
MARGIN_TABLES: MappingProxyType[str, TierSchedule] = _tables_from_data()


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


# ---- the venue behind the engine's protocol (``--venue hyperliquid``) -----------------------

def maintenance_margin_of_tier(notional: float, tier: Any) -> float:
    """``|N| x MMR_k - deduction_k`` of the tier, USDC ([TIERS]; :func:`maintenance_margin`)."""
    return abs(notional) * tier.mmr - tier.cum


def _one_leg(both: Leg | None, long: Leg | None, short: Leg | None) -> Leg:
    legs = [leg for leg in (both, long, short) if leg is not None]
    if len(legs) != 1:
        raise VenueError(f"Hyperliquid: an asset holds one position (no hedge mode), found "
                         f"{len(legs)} legs; run with position_mode='one_way'")
    return legs[0]


def pool_liquidation_price(*, wallet_balance: float, both: Leg | None = None,
                           long: Leg | None = None, short: Leg | None = None,
                           other_maintenance: float = 0.0, other_unrealized: float = 0.0) -> float:
    """The engine's liquidation price: [LIQ]'s formula (:func:`liquidation_price`), USDC.

    The leg's tier gives ``max_leverage = 1/(2*MMR)`` and its deduction joins the other
    maintenance (``MM = N*MMR - deduction``); the margin is the wallet backing the position plus
    the other positions' PnL, measured at the entry price.
    """
    leg = _one_leg(both, long, short)
    if not leg.mmr > 0:
        raise VenueError(f"Hyperliquid: the maintenance rate must be > 0, found {leg.mmr!r}")
    return liquidation_price(side=leg.side, size=leg.qty, price=leg.entry_price,
                             margin=wallet_balance + other_unrealized,
                             max_leverage=1.0 / (2.0 * leg.mmr),
                             other_maintenance=other_maintenance - leg.cum)


def pool_liquidation_price_resolved(*, wallet_balance: float, tiers: TierTable,
                                    both: Leg | None = None, long: Leg | None = None,
                                    short: Leg | None = None, other_maintenance: float = 0.0,
                                    other_unrealized: float = 0.0) -> float:
    """The liquidation price with the tier of the notional there (:func:`liquidation_price_tiered`)."""
    leg = _one_leg(both, long, short)
    return liquidation_price_tiered(side=leg.side, size=leg.qty, price=leg.entry_price,
                                    margin=wallet_balance + other_unrealized, table=tiers,
                                    other_maintenance=other_maintenance)


def _funding(*, signed_qty: float, mark_price: float, rate: float) -> float:
    """:func:`funding_payment` with the run's rate as the hourly rate and the mark as oracle."""
    return funding_payment(signed_size=signed_qty, oracle_price=mark_price, hourly_rate=rate)


@dataclass(frozen=True)
class SlicePlan:
    """Hyperliquid's liquidation of one position (read by ``Venue.liquidation_procedure``).

    ``steps``: sizes sent to the book now (base units); ``remainder``: size left for the
    second order after the cooldown when the account is still liquidatable; ``takeover``:
    the whole position at once (a small one at market, or the backstop vault); ``kind``:
    ``"partial"`` or ``"backstop"``.
    """

    steps: tuple[float, ...]
    remainder: float
    takeover: bool
    kind: str = "partial"


def liquidation_plan(*, qty: float, mark_price: float, margin_balance: float, tiers: TierTable,
                     other_maintenance: float = 0.0, lot_size: float = 0.0,
                     **_: Any) -> SlicePlan:
    """What the clearinghouse does to a breached position ([LIQ]), as a plan of steps.

    Equity below 2/3 of the maintenance margin (:func:`is_backstop_liquidatable`): the
    backstop liquidator vault takes over everything. Otherwise :func:`liquidation_slices`: up
    to 100k USDC of notional the whole position at market; above it 20 % first and the
    remainder after the 30 s cooldown if the account is still liquidatable (a bar engine sends
    the remainder at once when the first slice did not restore the margin). ``lot_size`` > 0
    rounds the first slice down to the lot.
    """
    maintenance = tiers.maintenance_margin(qty * mark_price) + other_maintenance
    if is_backstop_liquidatable(equity=margin_balance, maintenance=maintenance):
        return SlicePlan((), qty, True, "backstop")
    slices = liquidation_slices(size=qty, mark_price=mark_price)
    if len(slices) < 2:
        return SlicePlan((), qty, True)
    first = slices[0][1]
    if lot_size > 0:
        first = math.floor(first / lot_size + 1e-9) * lot_size
    if not first > 0:
        return SlicePlan((), qty, True)
    return SlicePlan((first,), qty - first, False)


def adl_score(c: AdlCandidate) -> float:
    """Hyperliquid's ADL sorting index ``(mark_price / entry_price) * (notional_position /
    account_value)`` of a position in profit; 0 (never reached) otherwise, dimensionless.

    "The users on the opposite side of the position are ranked by unrealized pnl and leverage
    used"; the index is applied as the docs write it, to both sides (for a short in profit
    the mark is below the entry). ``account_value`` is the pool's margin balance (the cross
    account value, or the isolated margin plus PnL). Source: [ADL] Hyperliquid docs
    "Auto-deleveraging", https://hyperliquid.gitbook.io/hyperliquid-docs/trading/auto-deleveraging.
    """
    if not (c.unrealized_pnl > 0.0 and c.equity > 0.0):
        return 0.0
    return (c.mark_price / c.entry_price) * (abs(c.mark_value) / c.equity)


#: Hyperliquid's ADL rule in runs: the sorting index of :func:`adl_score`, the queue position
#: as quantile, and the close at the PREVIOUS ORACLE price, not the bankruptcy price ([ADL]
#: as margin_rules.md §6 quotes it; a later doc version says the previous mark price, which a
#: run prices the same: its mark series is the oracle's stand-in, see ``_funding``).
ADL_RULE = AdlRule("hyperliquid_pnl_x_leverage_index", adl_score, rank_quantiles,
                   PREVIOUS_ORACLE,
                   "https://hyperliquid.gitbook.io/hyperliquid-docs/trading/auto-deleveraging")


def _venue() -> Venue:
    from backtest.venues.binance_usdm import bankruptcy_price

    return Venue(
        name="hyperliquid", exchange="hyperliquid", contract_type="linear",
        maintenance_margin=maintenance_margin_of_tier,
        liquidation_price=pool_liquidation_price,
        liquidation_price_resolved=pool_liquidation_price_resolved,
        # the price where the position's equity is zero: the linear form margin_rules.md §1
        bankruptcy_price=bankruptcy_price,
        funding_payment=_funding,
        unrealized_pnl=lambda *, signed_qty, entry_price, mark_price:
            signed_qty * (mark_price - entry_price),
        initial_margin=lambda notional, leverage: abs(notional) / _positive("leverage", leverage),
        tier_down_plan=liquidation_plan,
        adl_rule=ADL_RULE,
        position_modes=("one_way",),  # one position per symbol: no hedge mode
        label="Hyperliquid",
        rule_versions=MappingProxyType({
            "liquidation_price": "https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations",
            "margin_tiers": "https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers",
            "funding": "https://hyperliquid.gitbook.io/hyperliquid-docs/trading/funding (hourly)",
            "tiers": "backtest/venues/data/hyperliquid.toml",
            "partial_liquidation": "liquidation_mode=tier_down: 20 % slice, then the remainder",
            "adl_ranking": "https://hyperliquid.gitbook.io/hyperliquid-docs/trading/auto-deleveraging "
                           "((mark/entry) x (notional/account value); previous oracle price)",
        }),
        max_open_orders=1000)


#: The registered venue ``hyperliquid`` (see :func:`backtest.venues.base.get_venue`).
VENUE: Venue = _venue()

#: Coverage for ``margincall venues``: isolated and cross (:func:`liquidation_price`); the
#: dated margin tables are listed from the venue's data file (:data:`MARGIN_TABLES`).
VENUE_INFO = VenueInfo(
    name="hyperliquid", title="Hyperliquid perpetuals (USDC-margined)",
    modes=(("linear", "isolated"), ("linear", "cross")))
