"""The venue seam: what an engine needs from a venue, without knowing which venue it is.

A :class:`Venue` bundles a venue's pure formulas (one module per venue) with its versioned
default data. Venues are found by name through :func:`get_venue`; the registry maps each
name to ``"module:attribute"`` and imports the module on first use, so adding a venue is one
new module defining ``VENUE = Venue(...)`` plus one registry line. The engine (``backtest/``
outside ``backtest/venues/``) imports no venue module: it asks the :class:`Venue` it was given.

The protocol (keyword-only, floats, units of the symbol's margin asset; the contract
arithmetic of a symbol is a :class:`backtest.contracts.Contract`):

* ``maintenance_margin(notional, tier) -> float``: of a notional in the margin asset.
* ``initial_margin(notional, leverage) -> float``.
* :meth:`Venue.formulas` ``(contract) -> PoolFormulas``: the pool formulas for one symbol's
  contract (a linear venue ignores it; COIN-M binds the contract size):

  - ``liquidation_price(*, wallet_balance, both=None, long=None, short=None,
    other_maintenance=0.0, other_unrealized=0.0) -> float`` (legs are :class:`Leg`);
  - ``liquidation_price_resolved(*, wallet_balance, tiers, ...)`` (brackets re-solved at the
    liquidation notional);
  - ``one_leg(wallet, side, qty, entry, mmr, cum, other_mm, other_upnl)`` or None: the same
    float as ``liquidation_price`` of one valid leg, without building it (a hot path);
  - ``bankruptcy_price(*, wallet_balance, side, qty, entry_price, other_unrealized=0.0)``;
  - ``funding_payment(*, signed_qty, mark_price, rate) -> float`` (+ = received).

  When a venue publishes no closed form, :func:`root_liquidation_price` (a root-find on
  equity minus maintenance) is the default.
* :meth:`Venue.liquidation_procedure` -> :class:`LiquidationPlan`: what the venue does to a
  breached pool (full takeover at bankruptcy, tier-by-tier plan, then takeover).
* ``adl_score(...)`` (None until a venue implements its ranking; see :class:`Venue`), or the
  whole rule as ``adl_rule`` (:class:`backtest.venues.adl_rules.AdlRule`: ranking, quantiles
  and the close price basis), read through :meth:`Venue.adl_ranking`.
* ``liquidation_fill_price(...)`` (None: the market's price; dYdX v4: its fillable price) and
  ``position_modes`` (a venue without hedge mode refuses a hedge run).

A venue modelled only for market-wide simulation (the cascade lab) and not yet a full
:class:`Venue` publishes a :class:`VenueRulebook` instead (its margin tables and liquidation
slicing), found by name through :func:`get_rulebook` the same lazy way.
"""
from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from backtest.venues.adl_rules import AdlRule, legacy_rule
from backtest.venues.errors import UnknownVenueError, VenueError
from backtest.venues.fees import FeeRates
from backtest.venues.liquidation_plan import LiquidationPlan, LiquidationStep, SlicedLiquidation
from backtest.venues.markets import MarketSpec
from backtest.venues.tiers import Tier, TierSchedule, TierTable

__all__ = ["LONG", "RULEBOOKS", "SHORT", "VENUES", "Leg", "LiquidationPlan", "LiquidationStep",
           "Pool", "PoolFormulas", "SlicedLiquidation", "Venue", "VenueRulebook",
           "available_venues", "get_rulebook", "get_venue", "inverse_pool_formulas",
           "root_liquidation_price"]

LONG = 1
SHORT = -1

#: Venue name -> "module:attribute" of its :class:`Venue` (one module per venue).
VENUES: MappingProxyType[str, str] = MappingProxyType({
    "binance_usdm": "backtest.venues.binance_usdm:VENUE",
    "binance_coinm": "backtest.venues.binance_coinm:VENUE",
    "bybit_linear": "backtest.venues.bybit:VENUE_LINEAR",
    "bybit_inverse": "backtest.venues.bybit:VENUE_INVERSE",
    "okx": "backtest.venues.okx:VENUE",
    "bitmex_inverse": "backtest.venues.bitmex_inverse:VENUE",
    "hyperliquid": "backtest.venues.hyperliquid:VENUE",
    "dydx_v4": "backtest.venues.dydx_v4:VENUE",
    "aave_v3": "backtest.venues.aave_loop:VENUE",
    "compound_v3": "backtest.venues.compound_loop:VENUE",
})

#: Venue name -> "module:attribute" of its :class:`VenueRulebook` (venues the cascade lab
#: models that are not yet a full :class:`Venue`).
RULEBOOKS: MappingProxyType[str, str] = MappingProxyType({
    "hyperliquid": "backtest.venues.hyperliquid:RULEBOOK",
})

#: Accepted spellings (ccxt ids) -> venue name.
ALIASES: MappingProxyType[str, str] = MappingProxyType({
    "binanceusdm": "binance_usdm",
    "binance": "binance_usdm",
    "binancecoinm": "binance_coinm",
    "bybit": "bybit_linear",
    "bitmex": "bitmex_inverse",
    "dydx": "dydx_v4",
})


@dataclass(frozen=True, slots=True)
class Leg:
    """One position of a symbol as a venue's liquidation formula sees it (venue-neutral).

    Attributes
    ----------
    side : int
        +1 long, -1 short. In hedge mode the LONG leg has side +1 and the SHORT leg -1.
    qty : float
        Absolute size (>= 0): base units (linear) or contracts (inverse).
    entry_price : float
        Average entry price, quote per base unit.
    mmr : float
        Maintenance-margin rate of the bracket used for this leg (fraction).
    cum : float
        Maintenance amount of that bracket, margin asset.
    """

    side: int
    qty: float
    entry_price: float
    mmr: float = 0.0
    cum: float = 0.0

    def __post_init__(self) -> None:
        if self.side not in (LONG, SHORT):
            raise ValueError(f"Leg.side must be +1 (long) or -1 (short), found {self.side!r}")
        if not self.qty >= 0:
            raise ValueError(f"Leg.qty is the absolute size and must be >= 0, found {self.qty}")
        if not self.entry_price > 0:
            raise ValueError(f"Leg.entry_price must be > 0, found {self.entry_price}")

    @classmethod
    def from_signed(cls, signed_qty: float, entry_price: float, tier: Tier | None = None) -> Leg:
        """A leg from a signed quantity (+ long, - short) and optionally its bracket."""
        side = LONG if signed_qty >= 0 else SHORT
        mmr, cum = (tier.mmr, tier.cum) if tier is not None else (0.0, 0.0)
        return cls(side, abs(signed_qty), entry_price, mmr, cum)

    def with_tier(self, tier: Tier) -> Leg:
        """The same leg priced with another bracket."""
        return replace(self, mmr=tier.mmr, cum=tier.cum)


@dataclass(frozen=True)
class Pool:
    """A margin pool: an isolated position alone, or the cross legs sharing one wallet.

    Attributes
    ----------
    wallet_balance : float
        The isolated margin, or the cross wallet, margin asset.
    legs : tuple of (str, Leg)
        ``(position_side, leg)`` with position_side ``both``, ``long`` or ``short``.
    other_maintenance, other_unrealized : float
        Cross only: maintenance and unrealized PnL of the pool's positions in other symbols.
    """

    wallet_balance: float
    legs: tuple[tuple[str, Leg], ...]
    other_maintenance: float = 0.0
    other_unrealized: float = 0.0


@dataclass(frozen=True)
class PoolFormulas:
    """A venue's pool formulas for one symbol's contract (see the module docstring)."""

    liquidation_price: Callable[..., float]
    liquidation_price_resolved: Callable[..., float]
    bankruptcy_price: Callable[..., float]
    funding_payment: Callable[..., float]
    one_leg: Callable[..., float] | None = None
    #: True when the venue takes each leg's bracket at its entry value, not at the notional at
    #: the liquidation price (Bybit classic): the engine then always asks
    #: ``liquidation_price_resolved`` instead of trying the first bracket first.
    brackets_at_entry: bool = False
    #: True when the venue charges maintenance on the position's ENTRY value, not its value at
    #: the mark (Bybit classic, BitMEX's posMaint on posCost): the engine's maintenance
    #: figures (equity table, margin ratio, pool checks) then use the entry value too.
    maintenance_at_entry: bool = False


def inverse_pool_formulas(contract: Any, *, venue: str, hint: str,
                          liquidation_price: Callable[..., float],
                          liquidation_price_resolved: Callable[..., float],
                          bankruptcy_price: Callable[..., float],
                          funding_payment: Callable[..., float],
                          brackets_at_entry: bool = False,
                          maintenance_at_entry: bool = False) -> PoolFormulas:
    """An inverse venue's pool formulas bound to the symbol's contract size (USD per contract).

    Every inverse formula takes ``contract_size`` (coin value = contracts x size / price,
    margin_rules.md §1 "inverse"); the venue passes its four functions and this binds them.

    Parameters
    ----------
    contract : Contract
        The symbol's :class:`backtest.contracts.Contract`; must be inverse.
    venue : str
        The venue's name, for the error message.
    hint : str
        How to fix a linear spec (which venue or symbol to use instead).

    Raises
    ------
    VenueError
        For a linear contract (the venue trades inverse contracts only).
    """
    if not getattr(contract, "inverse", False):
        raise VenueError(
            f"venue {venue} trades inverse (coin-margined) contracts, the market spec is "
            f"linear ({contract!r}); {hint}")
    size = contract.contract_size
    return PoolFormulas(
        liquidation_price=functools.partial(liquidation_price, contract_size=size),
        liquidation_price_resolved=functools.partial(liquidation_price_resolved,
                                                     contract_size=size),
        bankruptcy_price=functools.partial(bankruptcy_price, contract_size=size),
        funding_payment=functools.partial(funding_payment, contract_size=size),
        brackets_at_entry=brackets_at_entry, maintenance_at_entry=maintenance_at_entry)


def root_liquidation_price(gap: Callable[[float], float], *, side: int, entry_price: float,
                           tolerance: float = 1e-10, max_iterations: int = 400) -> float:
    """The generic liquidation price: the mark where ``gap = equity - maintenance`` crosses 0.

    The default for a venue without a published closed form: equity minus maintenance of a
    pool is monotone in the mark for one net direction (margin_rules.md §1: the trigger is
    ``equity <= MM``), so the root is bracketed between the entry and 0 (long) or the entry
    and a price where the gap is negative (short), and bisection finds it (after one
    false-position step, which is the root itself when the gap is affine in the mark and is
    kept only when the gap changes sign within the tolerance around it).

    Parameters
    ----------
    gap : callable
        ``gap(mark) -> equity - maintenance`` at that mark, margin asset.
    side : int
        Net direction of the pool: +1 (breaches as the mark falls) or -1.
    entry_price : float
        A starting price (> 0), the pool's entry.

    Returns
    -------
    float
        The liquidation mark; ``0.0`` (long) / ``inf`` (short) when no positive price breaches;
        for a pool already below maintenance at ``entry_price`` the entry itself.
    """
    if gap(entry_price) <= 0.0:
        return entry_price
    if side > 0:
        lo, hi = 0.0, entry_price
        if gap(lo) > 0.0:
            return 0.0
    else:
        lo, hi = entry_price, entry_price * 2.0
        while gap(hi) > 0.0:
            lo, hi = hi, hi * 2.0
            if hi > 1e300:
                return math.inf
    # invariant: the breach side is at `lo` for a long (gap <= 0) and at `hi` for a short
    # one false-position step first: exact for a gap affine in the mark (one linear position,
    # the common case), kept only when the gap changes sign within the tolerance around it;
    # otherwise bisection from the same bracket
    g_lo, g_hi = gap(lo), gap(hi)
    if g_lo != g_hi:
        guess = lo - g_lo * (hi - lo) / (g_hi - g_lo)
        if lo < guess < hi:
            step = 0.5 * tolerance * max(1.0, guess)
            below, above = gap(guess - step), gap(guess + step)
            if (below <= 0.0) != (above <= 0.0):
                return guess
    for _ in range(max_iterations):
        mid = 0.5 * (lo + hi)
        breached = gap(mid) <= 0.0
        if (side > 0) == breached:
            lo = mid
        else:
            hi = mid
        if hi - lo <= tolerance * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


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
    one_leg_liquidation_price : callable or None
        ``(wallet, side, qty, entry, mmr, cum, other_mm, other_upnl) -> float``: the same
        float as ``liquidation_price`` of one valid leg without building it (the engine's hot
        path); None when the venue has no such fast path.
    contract_formulas : callable or None
        ``(contract) -> PoolFormulas`` for a venue whose formulas depend on the contract
        (inverse contract size); None: the plain fields serve every symbol.
    positional_formulas : mapping or None
        The one definition behind some keyword-only formulas, as plain positional functions a
        compiled path can compile (numba compiles no keyword-only function; the kernel asks
        ``binance_usdm``'s): ``"maintenance_margin"`` ``(notional, mmr, cum)``,
        ``"bankruptcy_price"`` ``(wallet, side, qty, entry, other_unrealized)``,
        ``"funding_payment"`` ``(signed_qty, mark, rate)``. None: the venue has none.
    initial_margin : callable
        ``(notional, leverage) -> float``, margin asset (default ``|N| / leverage``).
    adl_score : callable or None
        The venue's auto-deleveraging ranking, ``adl_score(*, unrealized_pnl,
        wallet_balance, maintenance_margin) -> float`` (higher = deleveraged first); None
        when the venue has none.
    adl_quantiles : callable or None
        ``(scores) -> quantiles``: the rank the venue shows (Binance's ADL light).
    auto_exchange_amount : callable or None
        ``(deficit, rate) -> float``: collateral sold to cover a negative balance
        (Binance Multi-Assets Mode).
    liquidation_fill_price : callable or None
        ``(*, side, mark_price, mmr, margin_ratio, market_price) -> float``: the price the
        venue's liquidation order of a position fills at (``side`` is the position's, +1
        long), given the trigger mark, the position's maintenance rate, the pool's margin
        ratio (maintenance / margin balance) and the market's price after slippage; None:
        the market price (dYdX v4: its fillable price).
    resolve_liquidation : callable or None
        The liquidation price together with the brackets it was solved with
        (``binance_usdm.resolve_liquidation`` -> ``LiquidationSolution``), for the risk lab.
    position_modes : tuple of str
        The position modes the venue offers (``"one_way"``, ``"hedge"``); a run in another
        mode is refused before it starts.
    label : str
        How messages name the venue's operator (``"Binance"``).
    tier_basis : str
        What the venue's own tier tables count (``backtest.venues.tiers.TIER_BASES``):
        ``"notional"`` (margin asset) or ``"contracts"`` (OKX); its built-in tables are read so.
    tier_bases : tuple of str
        The bases its formulas can look a position up in; a run handing it another table is
        refused before the loop (the engine looks positions up through
        ``TierTable.for_position``, which honours each table's basis).
    partial_liquidation_fee : callable or None
        ``(*, fee_due, piece_above_bankruptcy, pool_left) -> float``: the fee of one partial
        liquidation step (dYdX: capped by what the closed piece holds above its bankruptcy
        price); None: ``min(fee_due, what the pool has left)``.
    liquidation_block_s : float or None
        The venue's block time, seconds: its per-block liquidation limits are mapped to the
        run's time steps through it (dYdX v4); None: no per-block limits.
    funding_maintenance_rate : callable or None
        ``(side, next_rate) -> float``: the extra maintenance rate, on the position's entry
        value, that the next funding adds (BitMEX: ``max(0, s*F)``); the run passes the rate
        of the next settlement in its funding data (none: 0). None: no funding term.
    adl_rule : AdlRule or None
        The venue's whole ADL rule (ranking, quantiles, close price basis;
        :mod:`backtest.venues.adl_rules`); None: ``adl_score``/``adl_quantiles`` rank at the
        bankruptcy price (see :meth:`adl_ranking`).
    prepare_market : callable or None
        ``(data, config) -> MarketData``: the run's market as the venue sees it, applied once
        when a run starts (Aave: marks replaced by its oracle's answers, funding by interest
        settlements); None: the data as given.
    short_refusal : str or None
        Why the venue holds no short position (an order that would open or grow one is
        rejected with reason ``short_unsupported`` and this text); None: shorts are allowed.
    lending : bool
        A lending protocol's account (Aave): a breached pool is reduced only by the plan's
        partial steps, never taken over (a pool still breached waits for its next trigger);
        the part of a step's liquidation bonus the pool cannot pay is bad debt (the
        protocol's deficit); and ``funding_payment`` also receives the pool
        (``entry_price``, ``wallet_balance``, ``ts_ms``, ``symbol``) to charge interest on
        the debt.
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
    one_leg_liquidation_price: Callable[..., float] | None = None
    contract_formulas: Callable[[Any], PoolFormulas] | None = None
    initial_margin: Callable[[float, float], float] = field(default=lambda n, lev: abs(n) / lev)
    adl_score: Callable[..., float] | None = None
    resolve_liquidation: Callable[..., Any] | None = None
    adl_quantiles: Callable[..., Any] | None = None
    auto_exchange_amount: Callable[[float, float], float] | None = None
    liquidation_fill_price: Callable[..., float] | None = None
    position_modes: tuple[str, ...] = ("one_way", "hedge")
    label: str = "the venue"
    tier_basis: str = "notional"
    tier_bases: tuple[str, ...] = ("notional",)
    adl_rule: AdlRule | None = None
    funding_maintenance_rate: Callable[[int, float], float] | None = None
    liquidation_block_s: float | None = None
    partial_liquidation_fee: Callable[..., float] | None = None
    prepare_market: Callable[..., Any] | None = None
    short_refusal: str | None = None
    lending: bool = False
    positional_formulas: Any = None  # Mapping[str, Callable[..., float]] | None

    def adl_ranking(self) -> AdlRule | None:
        """The venue's ADL rule: ``adl_rule``, else one built from ``adl_score`` (None: no ADL)."""
        if self.adl_rule is not None:
            return self.adl_rule
        if self.adl_score is None:
            return None
        return legacy_rule(f"{self.name}_leverage_pnl", self.adl_score, self.adl_quantiles,
                           self.rule_versions.get("adl", ""))

    def formulas(self, contract: Any) -> PoolFormulas:
        """The pool formulas of a symbol with ``contract`` (a :class:`backtest.contracts.Contract`).

        Raises
        ------
        VenueError
            When the contract's kind is not the venue's (e.g. an inverse spec on USDⓈ-M).
        """
        if self.contract_formulas is not None:
            return self.contract_formulas(contract)
        if contract is not None and getattr(contract, "inverse", False) != (
                self.contract_type == "inverse"):
            from backtest.venues.errors import VenueError
            raise VenueError(
                f"venue {self.name} trades {self.contract_type} contracts, the market spec is "
                f"{'inverse' if contract.inverse else 'linear'} ({contract!r}); pick the venue "
                "of the data (e.g. --venue binance_coinm for coin-margined symbols)")
        return PoolFormulas(self.liquidation_price, self.liquidation_price_resolved,
                            self.bankruptcy_price, self.funding_payment,
                            self.one_leg_liquidation_price)

    def liquidation_procedure(self, *, mode: str, qty: float, mark_price: float,
                              bankruptcy_price: float, margin_balance: float, tiers: TierTable,
                              clearance_rate: float, contract: Any = None,
                              other_maintenance: float = 0.0,
                              lot_size: float = 0.0,
                              window_s: float | None = None) -> LiquidationPlan:
        """The venue's procedure for one breached position, as a :class:`LiquidationPlan`.

        ``mode="takeover"``: the whole position at the bankruptcy price (margin_rules.md
        §2.1 step 3). ``mode="tier_down"`` with a venue ``tier_down_plan``: its bracket-by-
        bracket steps at the trigger mark, then a takeover of the remainder when they do not
        restore compliance (step 2). ``contract`` is the symbol's
        :class:`backtest.contracts.Contract` (None: linear). ``window_s``: seconds left to the
        venue in this time step; a venue with a block time (``liquidation_block_s``) gets
        ``blocks = floor(window_s / block time)`` for its per-block limits.
        """
        takeover_all = LiquidationPlan((LiquidationStep(qty, bankruptcy_price, "takeover"),),
                                       0.0, True, clearance_rate)
        if (mode != "tier_down" and not self.lending) or self.tier_down_plan is None:
            return takeover_all  # a lending venue's plan applies in every mode (Venue.lending)
        extra = {}
        if self.liquidation_block_s is not None and window_s is not None:
            extra["blocks"] = int(max(0.0, window_s) // self.liquidation_block_s)
        plan = self.tier_down_plan(qty=qty, mark_price=mark_price, margin_balance=margin_balance,
                                   tiers=tiers, clearance_rate=clearance_rate,
                                   other_maintenance=other_maintenance, lot_size=lot_size,
                                   contract=contract, **extra)
        # a venue's plan may name its steps (Hyperliquid's slices are "partial")
        kind = getattr(plan, "kind", "tier_down")
        steps = tuple(LiquidationStep(q, mark_price, kind) for q in plan.steps)
        if plan.takeover and plan.remainder > 0.0:
            steps += (LiquidationStep(plan.remainder, bankruptcy_price, "takeover"),)
        return LiquidationPlan(steps, plan.remainder, plan.takeover, clearance_rate,
                               getattr(plan, "deferred", False))

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


@dataclass(frozen=True)
class VenueRulebook:
    """The rules a market-wide simulator needs from a venue, as pure callables and numbers.

    Attributes
    ----------
    name : str
        Venue name (``"hyperliquid"``).
    margin_table : callable
        ``(symbol, ts_ms) -> TierTable``: the maintenance table in force at ``ts_ms``.
    sliced_liquidation : SlicedLiquidation or None
        The venue's slicing of large liquidations; None when it sends a position whole.
    """

    name: str
    margin_table: Callable[[str, int], TierTable]
    sliced_liquidation: SlicedLiquidation | None = None


def get_rulebook(name: str) -> VenueRulebook:
    """The :class:`VenueRulebook` registered under ``name``.

    Raises
    ------
    UnknownVenueError
        For an unregistered name; the message lists the registered ones.
    """
    try:
        target = RULEBOOKS[name]
    except KeyError:
        raise UnknownVenueError(
            f"venue {name!r} has no rulebook; available: {', '.join(sorted(RULEBOOKS))}"
        ) from None
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


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
