"""What every lending protocol run as a venue shares: the loop's price, oracle and interest.

A long of ``q`` units at entry ``E`` on a lending venue is a loop: ``q`` of the asset supplied
as collateral, ``D = q*E - W`` of the debt asset borrowed (``W`` the pool's wallet: the
isolated margin, or the whole wallet in cross mode), equity ``q*P - D = W + q*(P - E)``. The
venue modules (``aave_loop.py``, ``compound_loop.py``) give the protocol's maintenance and
liquidation; this module gives, for any of them:

* :func:`pool_liquidation_price`: the root of equity minus the venue's maintenance
  (:func:`~backtest.venues.base.root_liquidation_price`), 0 without debt; a short is refused;
* :func:`oracle_bars` / :func:`prepare_market`: marks replaced by a Chainlink-rule feed built
  from the candles ([ORACLE]), funding rows by hourly interest settlements;
* :func:`interest_settlements` / :func:`interest_payment`: the debt charged the borrow rate, the
  collateral credited its supply rate, through the compounded index ([MATH]).

A protocol's parameters object is a :class:`LoopParameters` (``name``, ``label``,
``debt_asset``, ``heartbeat_s``, ``deviation``, ``reserve_of(symbol)`` and
``rates_at(ts_ms) -> (borrow, supply)`` APRs), read from its data file by
:func:`read_section` and :func:`loop_fields`; :func:`loop_venue` and :func:`loop_venue_info`
build the registered venue and its catalog entry around the protocol's own rules.

Sources:

* [ORACLE] backtest/lending/oracle.py ``chainlink_path`` (Chainlink heartbeat and deviation
  threshold).
* [MATH] backtest/lending/interest.py ``compounded_interest`` (aave-v3-core MathUtils; Comet's
  per-second indices accrue alike).
"""
from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

import numpy as np

from backtest.lending.interest import compounded_interest
from backtest.lending.oracle import chainlink_path
from backtest.venues.base import LONG, Leg, Venue, root_liquidation_price
from backtest.venues.catalog import RuleVersion, VenueInfo
from backtest.venues.errors import VenueError
from data_loaders.schemas import to_ms

__all__ = ["INTEREST_INTERVAL_MS", "LoopFunctions", "LoopLiquidation", "LoopParameters", "bankruptcy_price",
           "interest_payment", "interest_settlements", "loop_fields", "loop_functions", "loop_venue",
           "loop_venue_info", "oracle_bars", "oracle_rule", "pool_liquidation_price", "prepare_market",
           "read_section", "short_refusal"]

#: Interest settles every hour (the run's ``funding`` rows of a lending venue).
INTEREST_INTERVAL_MS = 3_600_000


def short_refusal(label: str, venue: str, debt_asset: str) -> str:
    """Why ``venue`` refuses a short (the ``short_unsupported`` rejection's text)."""
    return (f"{label} (venue {venue}) holds a position as a loop: the asset supplied as collateral and "
            f"{debt_asset} borrowed, i.e. a long. A short would borrow the asset against {debt_asset} "
            "collateral, whose liquidation line depends on that collateral and not on the notional; "
            f"it is not modelled. Trade the long side on {venue}, or the short on a perpetual venue "
            "(--venue binance_usdm)")


# ---- the protocol's parameters --------------------------------------------------------------

#: ``(effective_from ms, borrow APR per asset, supply APR per asset)`` versions, in time order.
Rates = tuple[tuple[int, MappingProxyType[str, float], MappingProxyType[str, float]], ...]


@dataclass(frozen=True)
class LoopParameters:
    """What every lending venue's data file gives: the loop's assets, oracle rule and rates.

    A protocol subclasses it with its own risk parameters and the class attributes below.

    Attributes
    ----------
    debt_asset : str
        The borrowed asset (``"USDC"``), valued at 1 USD.
    collateral : mapping
        Price symbol -> collateral asset (``"ETH/USDT:USDT"`` -> ``"WETH"``).
    heartbeat_s, deviation : float
        The oracle's update rule (seconds; relative move).
    rates : tuple of (int, mapping, mapping)
        ``(effective_from ms, borrow APR per asset, supply APR per asset)``, in time order.
    effective_from : int
        UTC ms from which the parameters are used.
    sources : mapping
        What -> source text, for the catalog.
    """

    debt_asset: str
    collateral: MappingProxyType[str, str]
    heartbeat_s: float
    deviation: float
    rates: Rates
    effective_from: int
    sources: MappingProxyType[str, str]

    #: The venue's name and how messages name the protocol.
    name: ClassVar[str]
    label: ClassVar[str]
    #: Where the parameters come from (data file, TOML section) and what the protocol calls a
    #: collateral (``"reserve"``, ``"asset"``), for the error naming a missing one.
    data_file: ClassVar[str]
    section: ClassVar[str]
    collateral_word: ClassVar[str] = "asset"

    def reserve_of(self, symbol: str) -> str:
        """The collateral a loop on ``symbol``'s prices supplies.

        Raises
        ------
        VenueError
            For a symbol without a collateral (names the ones there are).
        """
        try:
            return self.collateral[symbol]
        except KeyError:
            raise VenueError(
                f"{self.name}: no collateral {self.collateral_word} for prices of {symbol}; expected one of "
                f"{', '.join(sorted(self.collateral))} (backtest/venues/data/{self.data_file} "
                f"[{self.section}] collateral); pick one of those symbols") from None

    def rates_at(self, ts_ms: int) -> tuple[MappingProxyType[str, float], MappingProxyType[str, float]]:
        """``(borrow, supply)`` APRs per asset in force at ``ts_ms`` (the first version before it)."""
        chosen = self.rates[0]
        for version in self.rates:
            if version[0] <= ts_ms:
                chosen = version
        return chosen[1], chosen[2]


def read_section(data_file: str, section: str) -> dict[str, Any]:
    """The ``[section]`` of the packaged ``backtest/venues/data/<data_file>``."""
    text = resources.files("backtest.venues").joinpath("data", data_file).read_text("utf-8")
    return tomllib.loads(text)[section]


def loop_fields(raw: Mapping[str, Any], *, debt_key: str, sources: dict[str, str]) -> dict[str, Any]:
    """The :class:`LoopParameters` fields of a data file's section, as keyword arguments.

    ``debt_key`` names the borrowed asset's key (``"debt_asset"``, Comet's ``"base_asset"``);
    ``sources`` (the protocol's own) gains the oracle's and the latest rates' sources.
    """
    rates = tuple(sorted((to_ms(v["effective_from"]),
                          MappingProxyType({k: float(x) for k, x in v["borrow"].items()}),
                          MappingProxyType({k: float(x) for k, x in v["supply"].items()}))
                         for v in raw["rates"]))
    sources = {**sources, "oracle": raw["oracle"]["source"], "rates": raw["rates"][-1]["source"]}
    return dict(debt_asset=str(raw[debt_key]), collateral=MappingProxyType(dict(raw["collateral"])),
                heartbeat_s=float(raw["oracle"]["heartbeat_s"]), deviation=float(raw["oracle"]["deviation"]),
                rates=rates, effective_from=to_ms(raw["effective_from"]), sources=MappingProxyType(sources))


@dataclass(frozen=True)
class LoopLiquidation:
    """What a lending venue's liquidation plan gives ``Venue.liquidation_procedure``; a protocol
    subclasses it with its own outcome (positional after ``remainder``).

    Attributes
    ----------
    steps : tuple of float
        Collateral seized by each of the protocol's liquidation steps, units of the asset.
    remainder : float
        Collateral left after the steps.
    takeover : bool
        Always False: no lending protocol takes a position over at the bankruptcy price.
    kind : str
        ``"partial"``: the name of every step.
    """

    steps: tuple[float, ...]
    remainder: float
    takeover: bool = field(default=False, kw_only=True)
    kind: str = field(default="partial", kw_only=True)


class LoopFunctions(NamedTuple):
    """A protocol's loop functions, bound to its parameters and maintenance (:func:`loop_functions`)."""

    pool_liquidation_price: Callable[..., float]
    interest_payment: Callable[..., float]
    interest_settlements: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
    prepare_market: Callable[[Any, Any], Any]


def loop_functions(parameters: Callable[[], LoopParameters], maintenance_margin: Callable[[Any, Any], Any],
                   refusal: str) -> LoopFunctions:
    """This module's functions for one protocol: its (cached) ``parameters()``, its
    ``maintenance_margin(notional, tier)`` and its short ``refusal`` filled in, so a venue module
    exports them under the same names without restating them."""
    label = parameters().label

    def liquidation_price(**kwargs: Any) -> float:
        return pool_liquidation_price(maintenance_margin, refusal=refusal, **kwargs)

    def payment(**kwargs: Any) -> float:
        return interest_payment(parameters(), **kwargs)

    def settlements(ts: np.ndarray, interval_ms: int) -> tuple[np.ndarray, np.ndarray]:
        return interest_settlements(parameters(), ts, interval_ms)

    def market(data: Any, config: Any) -> Any:
        return prepare_market(parameters(), data, config)

    bound = []
    for function, shared, what in (
            (liquidation_price, pool_liquidation_price, "the oracle price at the liquidation line, "
             "USDC per unit, the root of equity minus the venue's maintenance_margin"),
            (payment, interest_payment, "one hour of interest on the loop, USDC (+ = received)"),
            (settlements, interest_settlements, "hourly settlements over the bars and each hour's "
             "borrow interest"),
            (market, prepare_market, "the run's market with oracle marks and interest instead of funding")):
        functools.update_wrapper(function, shared, assigned=("__name__", "__qualname__"))
        function.__doc__ = (f"{label}: {what} (:func:`backtest.venues.lending_loop.{shared.__name__}` "
                            "with the venue's data file).")
        bound.append(function)
    return LoopFunctions(*bound)


def oracle_rule(params: LoopParameters) -> str:
    """The ``oracle`` entry of a lending venue's rule versions: its Chainlink rule ([ORACLE])."""
    return (f"Chainlink rule heartbeat {params.heartbeat_s:g} s, deviation {params.deviation:g} "
            "(backtest/lending/oracle.py)")


def loop_venue(params: LoopParameters, functions: LoopFunctions, *,
               maintenance_margin: Callable[[Any, Any], Any], tier_down_plan: Callable[..., Any],
               short_refusal: str, rule_versions: Mapping[str, str]) -> Venue:
    """The registered venue of a lending protocol: a linear, one-way loop whose equity is the
    perpetual's (``q*(P - E)`` unrealized), with the protocol's maintenance, liquidation plan,
    :func:`loop_functions` (liquidation price, interest, oracle market) and
    :func:`bankruptcy_price`."""
    return Venue(
        name=params.name, exchange=params.name, contract_type="linear",
        maintenance_margin=maintenance_margin,
        liquidation_price=functions.pool_liquidation_price,
        liquidation_price_resolved=functions.pool_liquidation_price,
        bankruptcy_price=bankruptcy_price, funding_payment=functions.interest_payment,
        unrealized_pnl=lambda *, signed_qty, entry_price, mark_price:
            signed_qty * (mark_price - entry_price),
        tier_down_plan=tier_down_plan,
        position_modes=("one_way",),  # one loop per asset
        label=params.label,
        prepare_market=functions.prepare_market, short_refusal=short_refusal, lending=True,
        rule_versions=MappingProxyType(dict(rule_versions)))


def loop_venue_info(params: LoopParameters, title: str) -> VenueInfo:
    """Coverage for ``margincall venues``: a loop per isolated position, or the whole wallet as
    one account (cross, one symbol); the parameter versions of the data file's section."""
    return VenueInfo(
        name=params.name, title=title, modes=(("linear", "isolated"), ("linear", "cross")),
        rule_versions=tuple(RuleVersion(what, params.effective_from, source, date_known=False)
                            for what, source in params.sources.items()))


@dataclass(frozen=True, slots=True)
class _Rate:
    """A bracket reduced to its maintenance rate (a leg carries only that)."""

    mmr: float


def pool_liquidation_price(maintenance: Callable[[Any, Any], Any], *, refusal: str,
                           wallet_balance: float, both: Leg | None = None, long: Leg | None = None,
                           short: Leg | None = None, other_maintenance: float = 0.0,
                           other_unrealized: float = 0.0, tiers: Any = None) -> float:
    """The oracle price at which the loop reaches its liquidation line, per unit.

    The root of ``W + other + q*(P - E) - maintenance(q*P, tier)`` (the venue's maintenance of
    the collateral's value ``q*P``) by :func:`~backtest.venues.base.root_liquidation_price`;
    0 when there is no debt (``q*E <= W + other``: no price breaches).

    Raises
    ------
    VenueError
        For several legs (one loop per asset) or a short leg (``refusal``).
    """
    legs = [leg for leg in (both, long, short) if leg is not None]
    if len(legs) != 1:
        raise VenueError(f"lending venue: an account holds one loop per asset, found {len(legs)} legs; "
                         "run with position_mode='one_way'")
    (leg,) = legs
    if leg.side != LONG:
        raise VenueError(refusal)
    tier = tiers.tiers[0] if tiers is not None else _Rate(leg.mmr)
    base = wallet_balance + other_unrealized - other_maintenance
    q, entry = leg.qty, leg.entry_price
    if q * entry - base <= 0.0:  # no debt: never liquidatable
        return 0.0

    def gap(price: float) -> float:
        return base + q * (price - entry) - maintenance(q * price, tier)

    return root_liquidation_price(gap, side=LONG, entry_price=entry)


def bankruptcy_price(*, wallet_balance: float, side: int, qty: float, entry_price: float,
                     other_unrealized: float = 0.0) -> float:
    """Price at which the collateral is worth the debt (equity 0): ``E - (W + other)/q``."""
    return entry_price - side * (wallet_balance + other_unrealized) / qty


# ---- interest -------------------------------------------------------------------------------

def interest_payment(params: Any, *, signed_qty: float, mark_price: float, rate: float,
                     entry_price: float | None = None, wallet_balance: float | None = None,
                     ts_ms: int | None = None, symbol: str | None = None) -> float:
    """One hour of interest on the loop, debt asset (+ = received): ``-D*rate + q*P*supply``.

    ``D = max(0, q*entry - wallet)`` is the pool's debt and ``rate`` the settlement's borrow
    interest as a fraction of the debt (:func:`interest_settlements`); the collateral earns the
    supply rate of its reserve in force at ``ts_ms`` over the hour, both through the compounded
    index ([MATH]). The engine passes the pool (``Venue.lending``).

    Raises
    ------
    VenueError
        When called without the pool (a caller that knows only quantity and mark).
    """
    if entry_price is None or wallet_balance is None or ts_ms is None or symbol is None:
        raise VenueError(f"{params.name}: interest is charged on the pool's debt; pass entry_price, "
                         "wallet_balance, ts_ms and symbol (the engine does for Venue.lending venues)")
    debt = max(0.0, signed_qty * entry_price - wallet_balance)
    _, supply = params.rates_at(ts_ms)
    supply_rate = supply.get(params.reserve_of(symbol), 0.0)
    earned = compounded_interest(supply_rate, INTEREST_INTERVAL_MS / 1000) - 1.0
    return -debt * rate + signed_qty * mark_price * earned


def interest_settlements(params: Any, ts: np.ndarray, interval_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Hourly settlement times over the bars ``ts`` and each hour's borrow interest.

    Returns
    -------
    (times, rates) : int64 UTC ms on the hour within ``[ts[0], ts[-1] + interval)``, and
    ``compounded_interest(borrow APR, 1 h) - 1`` of the debt asset in force at each ([MATH]).
    """
    if not len(ts):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    first = -(-int(ts[0]) // INTEREST_INTERVAL_MS) * INTEREST_INTERVAL_MS
    times = np.arange(first, int(ts[-1]) + interval_ms, INTEREST_INTERVAL_MS, dtype=np.int64)
    rates = np.array([compounded_interest(params.rates_at(int(t))[0].get(params.debt_asset, 0.0),
                                          INTEREST_INTERVAL_MS / 1000) - 1.0 for t in times.tolist()])
    return times, rates


# ---- the oracle -----------------------------------------------------------------------------

def oracle_bars(ts: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                close: np.ndarray, interval_ms: int, *, heartbeat_s: float,
                deviation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The oracle's answers as mark candles ``(open, high, low, close)``, one per bar.

    The feed watches four points of each candle: the open at its start, the low and the high
    (low first on a rising candle, high first on a falling one) at a third and two thirds of
    the bar, the close at its end; it publishes under its heartbeat/deviation rule ([ORACLE]).
    A bar's mark open is the answer at its open, its mark close the answer after the close,
    its mark high/low the extremes of the answers inside it.
    """
    n = len(ts)
    rising = close >= open_
    points = np.column_stack([open_, np.where(rising, low, high), np.where(rising, high, low), close])
    offsets = np.array([0, interval_ms // 3, 2 * interval_ms // 3, interval_ms - 1], dtype=np.int64)
    times = (np.asarray(ts, dtype=np.int64)[:, None] + offsets[None, :]).ravel() / 1000.0
    answers, _ = chainlink_path(times, points.ravel(), heartbeat=heartbeat_s, deviation=deviation)
    grid = answers.reshape(n, 4)
    return grid[:, 0].copy(), grid.max(axis=1), grid.min(axis=1), grid[:, 3].copy()


def _oracle_view(bars: Any, interval_ms: int, params: Any) -> Any:
    mo, mh, ml, mc = oracle_bars(bars.ts, bars.open, bars.high, bars.low, bars.close, interval_ms,
                                 heartbeat_s=params.heartbeat_s, deviation=params.deviation)
    for column in (mo, mh, ml, mc):
        column.setflags(write=False)
    return dataclasses.replace(bars, mark_open=mo, mark_high=mh, mark_low=ml, mark_close=mc)


def prepare_market(params: Any, data: Any, config: Any) -> Any:
    """The run's market as the protocol sees it: oracle marks, interest instead of funding.

    Each symbol's (and detail candles') marks become :func:`oracle_bars` of its last-price
    candles; its funding rows become :func:`interest_settlements`. Built once per
    ``MarketData`` and venue (cached on it: the runs of a sweep share it) and noted in the
    quality warnings, which the manifest and the CLI show.

    Raises
    ------
    VenueError
        For a symbol without a collateral reserve, or a cross account over several symbols
        (one loop per run: its interest is charged on one debt).
    """
    from backtest.market_data import SymbolFunding, timeframe_ms

    for symbol in data.symbols:
        params.reserve_of(symbol)
    modes = list(config.margin_mode.values()) if isinstance(config.margin_mode, Mapping) \
        else [config.margin_mode]
    if "cross" in modes and len(data.symbols) > 1:
        raise VenueError(
            f"{params.name}: a cross account over {len(data.symbols)} symbols ({', '.join(data.symbols)}) "
            "shares one debt, which the hourly interest cannot split; expected one symbol in cross "
            "mode, or margin_mode = 'isolated' (each loop its own account)")
    cache = data.__dict__.setdefault("_run_cache", {})
    key = ("venue_market", params.name, params.heartbeat_s, params.deviation, id(data.bars))
    if key in cache:
        return cache[key]
    bars = {s: _oracle_view(b, data.interval_ms, params) for s, b in data.bars.items()}
    detail = None
    if data.detail is not None:
        detail_ms = timeframe_ms(data.detail_timeframe)
        detail = {s: _oracle_view(b, detail_ms, params) for s, b in data.detail.items()}
    funding = {}
    times, rates = interest_settlements(params, data.ts, data.interval_ms)
    for symbol in data.symbols:
        settled = SymbolFunding(ts=times.copy(), rate=rates.copy(), interval_hours=np.full(times.size, 1.0),
                                mark_price=np.full(times.size, np.nan))
        for column in (settled.ts, settled.rate, settled.interval_hours, settled.mark_price):
            column.setflags(write=False)
        funding[symbol] = settled
    borrow, supply = params.rates_at(int(data.ts[0]))
    note = (f"{params.name}: marks are the oracle's answers built from the candles (Chainlink rule: "
            f"heartbeat {params.heartbeat_s:g} s, deviation {params.deviation:.2%}); the funding "
            f"table holds {params.label} interest, not perpetual funding (borrow {params.debt_asset} "
            f"{borrow.get(params.debt_asset, 0.0):.2%}/yr, supply "
            + ", ".join(f"{a} {r:.2%}/yr" for a, r in sorted(supply.items())) + ", settled hourly)")
    prepared = dataclasses.replace(data, bars=bars, detail=detail, funding=funding,
                                   quality_warnings=[*data.quality_warnings, note])
    cache[key] = prepared
    return prepared
