"""Aave v3 as a venue (``--venue aave_v3``): a looped long behind the venue protocol.

A long of ``q`` units at entry ``E`` with leverage ``L`` is a loop: ``q`` WETH (or WBTC)
supplied as collateral and ``D = q*E*(1 - 1/L)`` USDC borrowed. With the pool's wallet ``W``
(the isolated margin, or the whole wallet in cross mode) the debt is ``D = q*E - W`` and
the account's equity ``q*P - D = W + q*(P - E)``: the perpetual's equity, so every strategy,
``margincall run``, ``compare --venues`` and the risk lab run a loop unchanged. The protocol's
rules enter through its own pure functions (:mod:`backtest.lending.aave_v3`; one definition):

* **maintenance**: the account is liquidatable when ``HF = q*P*LT / D < 1``, i.e. when the
  equity falls to ``q*P - (debt at HF 1)`` = ``q*P*(1 - LT)`` (:func:`maintenance_margin`
  computes the debt at HF 1 with :func:`~backtest.lending.aave_v3.health_factor`); the
  liquidation price is the root of equity minus that (:func:`pool_liquidation_price`,
  :func:`~backtest.venues.base.root_liquidation_price`);
* **initial margin** from the LTV: the borrow limit ``D <= LTV*q*P`` is a leverage cap
  ``1/(1 - LTV)`` (the data file's one bracket);
* **liquidation**: :func:`liquidation_plan` replays ``liquidationCall`` (close factor 50 %,
  100 % at HF <= 0.95 or below the v3.3 2,000 USD threshold; collateral seized with the
  bonus, the protocol fee out of it) while ``HF < 1``; each call is a partial step of the
  plan, the bonus the engine's clearance fee ``1 - 1/bonus`` of the seized value, and the
  bonus the collateral cannot pay is bad debt (the v3.3 deficit; ``Venue.lending``);
* **the oracle is the mark**: :func:`prepare_market` replaces the candles' marks by the
  answers of a Chainlink-rule feed built from the candles (:func:`oracle_bars`, heartbeat and
  deviation, :func:`backtest.lending.oracle.chainlink_path`); liquidations trigger on it and
  fill at the market's price with the run's liquidation slippage;
* **interest** replaces funding: hourly settlements charge the debt the variable borrow
  rate and credit the collateral's supply rate through Aave's compounded index
  (:func:`interest_payment`, :func:`backtest.lending.interest.compounded_interest`); the
  ``funding`` table's ``rate`` is the hour's interest as a fraction of the debt.

A short (borrowing the asset against USDC) is refused: its liquidation line depends on the
USDC collateral, not on the notional, so it does not fit the notional-based maintenance
(an order that would open one is a ``short_unsupported`` rejection).

Sources:

* [AAVE] backtest/lending/aave_v3.py: health factor, close factor, ``liquidationCall`` with
  bonus, protocol fee and the v3.3 deficit (its sources [LL30] aave/aave-v3-core @ 782f5191
  and [LL33] aave-dao/aave-v3-origin @ fd1fbd91); ../shared/specs/margin_rules.md §8.
* [ORACLE] backtest/lending/oracle.py ``chainlink_path`` (Chainlink heartbeat and deviation
  threshold).
* [MATH] backtest/lending/interest.py ``compounded_interest`` (aave-v3-core MathUtils).
* [PARAMS] backtest/venues/data/aave_v3.toml: dated reserve parameters, oracle rule and rates
  (each with its source; ASSUMPTION-marked where ../shared has no primary data).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from types import MappingProxyType
from typing import Any

import numpy as np

from backtest.lending import aave_v3 as aave
from backtest.lending.interest import compounded_interest
from backtest.lending.oracle import chainlink_path
from backtest.venues.base import LONG, Leg, Venue, root_liquidation_price
from backtest.venues.catalog import RuleVersion, VenueInfo
from backtest.venues.errors import VenueError

__all__ = ["INTEREST_INTERVAL_MS", "SHORT_REFUSAL", "VENUE", "VENUE_INFO", "VENUE_INFOS", "AaveParameters",
           "LoopPlan", "emode_overrides", "interest_payment", "interest_settlements", "liquidation_plan",
           "maintenance_margin", "oracle_bars", "parameters", "pool_liquidation_price",
           "prepare_market"]

#: Interest settles every hour (the run's ``funding`` rows of an Aave run).
INTEREST_INTERVAL_MS = 3_600_000

SHORT_REFUSAL = (
    "Aave v3 (venue aave_v3) holds a position as a loop: the asset supplied as collateral and "
    "USDC borrowed, i.e. a long. A short would borrow the asset against USDC collateral, whose "
    "liquidation line depends on that collateral and not on the notional; it is not modelled. "
    "Trade the long side on aave_v3, or the short on a perpetual venue (--venue binance_usdm)")

_COLLATERAL = "collateral"  # the plan's reserve name for the symbol's collateral asset
#: Relative distance from HF 1 within which a breach seen by the engine is the line itself.
_AT_THE_LINE = 1e-9


@dataclass(frozen=True)
class AaveParameters:
    """The ``[aave]`` section of ``backtest/venues/data/aave_v3.toml`` (see its comments).

    Attributes
    ----------
    market : backtest.lending.aave_v3.Market
        Reserves and e-mode categories.
    version : str
        Liquidation rules (``"3.3"``).
    debt_asset : str
        The borrowed reserve (``"USDC"``), valued at 1 USD.
    emode : int
        The account's e-mode category (0: none).
    collateral : mapping
        Price symbol -> collateral reserve (``"ETH/USDT:USDT"`` -> ``"WETH"``).
    heartbeat_s, deviation : float
        The oracle's update rule (seconds; relative move).
    rates : tuple of (int, mapping, mapping)
        ``(effective_from ms, borrow APR per asset, supply APR per asset)``, in time order.
    effective_from : int
        UTC ms from which the parameters are used.
    sources : mapping
        What -> source text, for the catalog.
    """

    market: aave.Market
    version: str
    debt_asset: str
    emode: int
    collateral: MappingProxyType[str, str]
    heartbeat_s: float
    deviation: float
    rates: tuple[tuple[int, MappingProxyType[str, float], MappingProxyType[str, float]], ...]
    effective_from: int
    sources: MappingProxyType[str, str]

    def reserve_of(self, symbol: str) -> str:
        """The collateral reserve a loop on ``symbol``'s prices supplies.

        Raises
        ------
        VenueError
            For a symbol without a collateral reserve (names the ones there are).
        """
        try:
            return self.collateral[symbol]
        except KeyError:
            raise VenueError(
                f"aave_v3: no collateral reserve for prices of {symbol}; expected one of "
                f"{', '.join(sorted(self.collateral))} (backtest/venues/data/aave_v3.toml [aave] "
                "collateral); pick one of those symbols") from None

    def risk(self, symbol: str) -> tuple[float, float, float]:
        """``(ltv, liquidation_threshold, liquidation_bonus)`` of ``symbol``'s collateral for
        the account's e-mode ([AAVE] ``Market.risk_params``)."""
        return self.market.risk_params(self.reserve_of(symbol), self.emode)

    def rates_at(self, ts_ms: int) -> tuple[MappingProxyType[str, float], MappingProxyType[str, float]]:
        """``(borrow, supply)`` APRs per asset in force at ``ts_ms`` (the first version before it)."""
        chosen = self.rates[0]
        for version in self.rates:
            if version[0] <= ts_ms:
                chosen = version
        return chosen[1], chosen[2]


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


@functools.cache
def parameters() -> AaveParameters:
    """The venue's parameters, read once from its data file ([PARAMS])."""
    text = resources.files("backtest.venues").joinpath("data", "aave_v3.toml").read_text("utf-8")
    raw = tomllib.loads(text)["aave"]
    reserves = {r["asset"]: aave.ReserveConfig(
        asset=r["asset"], ltv=float(r["ltv"]), liquidation_threshold=float(r["liquidation_threshold"]),
        liquidation_bonus=float(r["liquidation_bonus"]),
        liquidation_protocol_fee=float(r["liquidation_protocol_fee"])) for r in raw["reserves"]}
    categories = {int(c["category_id"]): aave.EModeCategory(
        category_id=int(c["category_id"]), ltv=float(c["ltv"]),
        liquidation_threshold=float(c["liquidation_threshold"]),
        liquidation_bonus=float(c["liquidation_bonus"]),
        collateral_assets=frozenset(c["collateral_assets"])) for c in raw.get("emode_categories", [])}
    rates = tuple(sorted((_ms(v["effective_from"]),
                          MappingProxyType({k: float(x) for k, x in v["borrow"].items()}),
                          MappingProxyType({k: float(x) for k, x in v["supply"].items()}))
                         for v in raw["rates"]))
    sources = {f"reserve {r['asset']}": r["source"] for r in raw["reserves"]}
    sources.update({f"e-mode {c['category_id']}": c["source"] for c in raw.get("emode_categories", [])})
    sources["oracle"] = raw["oracle"]["source"]
    sources["rates"] = raw["rates"][-1]["source"]
    market = aave.Market(reserves, categories)
    market.category(int(raw["emode"]))  # an undefined category fails here, not mid-run
    return AaveParameters(
        market=market, version=str(raw["version"]), debt_asset=str(raw["debt_asset"]),
        emode=int(raw["emode"]), collateral=MappingProxyType(dict(raw["collateral"])),
        heartbeat_s=float(raw["oracle"]["heartbeat_s"]), deviation=float(raw["oracle"]["deviation"]),
        rates=rates, effective_from=_ms(raw["effective_from"]), sources=MappingProxyType(sources))


# ---- maintenance and the liquidation price ---------------------------------------------------

def _debt_at_health_one(collateral_value: Any, liquidation_threshold: float) -> Any:
    """The debt at which ``HF = 1``: HF's numerator ``value*LT`` ([AAVE] ``health_factor``
    is ``value*LT / debt``). Written in arithmetic so the engine's per-bar arrays pass too;
    a test pins it to ``health_factor`` of the collateral against a unit debt."""
    return collateral_value * liquidation_threshold


def maintenance_margin(notional: Any, tier: Any) -> Any:
    """Equity at which the loop's health factor is 1, USDC: ``|N| - debt at HF 1``.

    ``HF = N*LT/D`` ([AAVE] ``health_factor``) is below 1 exactly when the equity ``N - D``
    is below ``N - N*LT``; the tier's rate is ``1 - LT`` (the data file's bracket, pinned to
    the reserve's LT by a test). ``notional`` may be a float or an array (per-bar metrics).
    """
    value = abs(notional)
    return value - _debt_at_health_one(value, 1.0 - tier.mmr)


def _leg(both: Leg | None, long: Leg | None, short: Leg | None) -> Leg:
    legs = [leg for leg in (both, long, short) if leg is not None]
    if len(legs) != 1:
        raise VenueError(f"aave_v3: an account holds one loop per asset, found {len(legs)} legs; "
                         "run with position_mode='one_way'")
    if legs[0].side != LONG:
        raise VenueError(SHORT_REFUSAL)
    return legs[0]


def pool_liquidation_price(*, wallet_balance: float, both: Leg | None = None,
                           long: Leg | None = None, short: Leg | None = None,
                           other_maintenance: float = 0.0, other_unrealized: float = 0.0,
                           tiers: Any = None) -> float:
    """The oracle price at which ``HF = 1``, USDC per unit: the root of equity minus
    :func:`maintenance_margin` (:func:`~backtest.venues.base.root_liquidation_price`; the gap is
    affine in the price, so its first false-position step is the answer ``D/(q*LT)``).

    ``wallet_balance`` is the pool's wallet (the debt is ``q*entry - wallet``); 0 when no
    positive price breaches (no debt).
    """
    leg = _leg(both, long, short)
    tier = tiers.tiers[0] if tiers is not None else _Rate(leg.mmr)
    base = wallet_balance + other_unrealized - other_maintenance
    q, entry = leg.qty, leg.entry_price
    if q * entry - base <= 0.0:  # no debt: the health factor is infinite at every price
        return 0.0

    def gap(price: float) -> float:
        return base + q * (price - entry) - maintenance_margin(q * price, tier)

    return root_liquidation_price(gap, side=LONG, entry_price=entry)


@dataclass(frozen=True, slots=True)
class _Rate:
    """A bracket reduced to its maintenance rate (a leg carries only that)."""

    mmr: float


def _bankruptcy(*, wallet_balance: float, side: int, qty: float, entry_price: float,
                other_unrealized: float = 0.0) -> float:
    """Price at which the collateral is worth the debt (equity 0): ``E - (W + other)/q``."""
    return entry_price - side * (wallet_balance + other_unrealized) / qty


# ---- interest -------------------------------------------------------------------------------

def interest_payment(*, signed_qty: float, mark_price: float, rate: float,
                     entry_price: float | None = None, wallet_balance: float | None = None,
                     ts_ms: int | None = None, symbol: str | None = None) -> float:
    """One hour of interest on the loop, USDC (+ = received): ``-D*rate + q*P*supply``.

    ``D = max(0, q*entry - wallet)`` is the pool's debt and ``rate`` the settlement's borrow
    interest as a fraction of the debt (:func:`interest_settlements`); the collateral earns
    the supply rate of its reserve in force at ``ts_ms`` over the hour, both through
    Aave's compounded index ([MATH]). The engine passes the pool (``Venue.lending``).

    Raises
    ------
    VenueError
        When called without the pool (a caller that knows only quantity and mark).
    """
    if entry_price is None or wallet_balance is None or ts_ms is None or symbol is None:
        raise VenueError("aave_v3: interest is charged on the pool's debt; pass entry_price, "
                         "wallet_balance, ts_ms and symbol (the engine does for Venue.lending venues)")
    params = parameters()
    debt = max(0.0, signed_qty * entry_price - wallet_balance)
    _, supply = params.rates_at(ts_ms)
    supply_rate = supply.get(params.reserve_of(symbol), 0.0)
    earned = compounded_interest(supply_rate, INTEREST_INTERVAL_MS / 1000) - 1.0
    return -debt * rate + signed_qty * mark_price * earned


def interest_settlements(ts: np.ndarray, interval_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Hourly settlement times over the bars ``ts`` and each hour's borrow interest.

    Returns
    -------
    (times, rates) : int64 UTC ms on the hour within ``[ts[0], ts[-1] + interval)``, and
    ``compounded_interest(borrow APR, 1 h) - 1`` of the debt asset in force at each ([MATH]).
    """
    params = parameters()
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


def _oracle_view(bars: Any, interval_ms: int, params: AaveParameters) -> Any:
    mo, mh, ml, mc = oracle_bars(bars.ts, bars.open, bars.high, bars.low, bars.close, interval_ms,
                                 heartbeat_s=params.heartbeat_s, deviation=params.deviation)
    for column in (mo, mh, ml, mc):
        column.setflags(write=False)
    return dataclasses.replace(bars, mark_open=mo, mark_high=mh, mark_low=ml, mark_close=mc)


def prepare_market(data: Any, config: Any) -> Any:
    """The run's market as Aave sees it: oracle marks, interest instead of funding.

    Each symbol's (and detail candles') marks become :func:`oracle_bars` of its last-price
    candles; its funding rows become :func:`interest_settlements`. Built once per
    ``MarketData`` (cached on it: the runs of a sweep share it) and noted in the quality
    warnings, which the manifest and the CLI show.

    Raises
    ------
    VenueError
        For a symbol without a collateral reserve, or a cross account over several symbols
        (one loop per run: its interest is charged on one debt).
    """
    from backtest.market_data import SymbolFunding, timeframe_ms

    params = parameters()
    for symbol in data.symbols:
        params.reserve_of(symbol)
    modes = list(config.margin_mode.values()) if isinstance(config.margin_mode, Mapping) \
        else [config.margin_mode]
    if "cross" in modes and len(data.symbols) > 1:
        raise VenueError(
            f"aave_v3: a cross account over {len(data.symbols)} symbols ({', '.join(data.symbols)}) "
            "shares one debt, which the hourly interest cannot split; expected one symbol in cross "
            "mode, or margin_mode = 'isolated' (each loop its own account)")
    cache = data.__dict__.setdefault("_run_cache", {})
    key = ("venue_market", "aave_v3", params.heartbeat_s, params.deviation, id(data.bars))
    if key in cache:
        return cache[key]
    bars = {s: _oracle_view(b, data.interval_ms, params) for s, b in data.bars.items()}
    detail = None
    if data.detail is not None:
        detail_ms = timeframe_ms(data.detail_timeframe)
        detail = {s: _oracle_view(b, detail_ms, params) for s, b in data.detail.items()}
    funding = {}
    for symbol in data.symbols:
        times, rates = interest_settlements(data.ts, data.interval_ms)
        settled = SymbolFunding(ts=times, rate=rates, interval_hours=np.full(times.size, 1.0),
                                mark_price=np.full(times.size, np.nan))
        for column in (settled.ts, settled.rate, settled.interval_hours, settled.mark_price):
            column.setflags(write=False)
        funding[symbol] = settled
    borrow, supply = params.rates_at(int(data.ts[0]))
    note = (f"aave_v3: marks are the oracle's answers built from the candles (Chainlink rule: "
            f"heartbeat {params.heartbeat_s:g} s, deviation {params.deviation:.2%}); the funding "
            f"table holds Aave interest, not perpetual funding (borrow {params.debt_asset} "
            f"{borrow.get(params.debt_asset, 0.0):.2%}/yr, supply "
            + ", ".join(f"{a} {r:.2%}/yr" for a, r in sorted(supply.items())) + ", settled hourly)")
    prepared = dataclasses.replace(data, bars=bars, detail=detail, funding=funding,
                                   quality_warnings=[*data.quality_warnings, note])
    cache[key] = prepared
    return prepared


# ---- the liquidation procedure --------------------------------------------------------------

@dataclass(frozen=True)
class LoopPlan:
    """The liquidation calls one trigger makes (read by ``Venue.liquidation_procedure``).

    Attributes
    ----------
    steps : tuple of float
        Collateral seized by each ``liquidationCall``, units of the asset.
    remainder : float
        Collateral left after the calls.
    calls : tuple of backtest.lending.aave_v3.Liquidation
        The protocol's outcome of each call (debt repaid, bonus, protocol fee, deficit).
    takeover : bool
        Always False: Aave never takes a position over.
    kind : str
        ``"partial"``: the name of every step.
    """

    steps: tuple[float, ...]
    remainder: float
    calls: tuple[aave.Liquidation, ...]
    takeover: bool = False
    kind: str = "partial"


def _protocol_fee(params: AaveParameters, lt: float, bonus: float) -> float:
    """The treasury's share of the bonus of the collateral whose LT and bonus these are, with or
    without an e-mode category (0 when a run's overrides match none): it splits the bonus, the
    user pays the same."""
    for symbol in params.collateral:
        asset = params.reserve_of(symbol)
        for emode in (0, *params.market.emode_categories):
            _, reserve_lt, reserve_bonus = params.market.risk_params(asset, emode)
            if math.isclose(reserve_lt, lt, rel_tol=1e-12) and math.isclose(reserve_bonus, bonus, rel_tol=1e-12):
                return params.market.reserve(asset).liquidation_protocol_fee
    return 0.0


def emode_overrides(symbol: str, category: int) -> dict[str, Any]:
    """``RunConfig`` keys that run ``symbol``'s loop with e-mode ``category``'s parameters.

    ``{"tiers": one bracket of maintenance 1 - LT and max leverage 1/(1 - LTV),
    "liquidation_fee_rate": 1 - 1/bonus}`` from [AAVE] ``Market.risk_params`` (the category's
    LTV, LT and bonus for its collateral assets): the same derivation as the data file's bracket,
    so the maintenance, leverage cap, liquidation calls and bonus of the run all follow. E.g.
    ``RunConfig(venue="aave_v3", **emode_overrides("ETH/USDT:USDT", 1))``.

    Raises
    ------
    backtest.lending.errors.LendingParameterError
        For a category the market does not define (names the defined ones).
    VenueError
        For a symbol without a collateral reserve.
    """
    from backtest.venues.tiers import TierTable

    params = parameters()
    ltv, lt, bonus = params.market.risk_params(params.reserve_of(symbol), category)
    table = TierTable.from_rates([(0.0, 1.0 - lt)], max_leverage=[1.0 / (1.0 - ltv)],
                                 label=f"aave_v3 {symbol} e-mode {category}")
    return {"tiers": {symbol: table}, "liquidation_fee_rate": 1.0 - 1.0 / bonus}


def liquidation_plan(*, qty: float, mark_price: float, margin_balance: float, tiers: Any,
                     clearance_rate: float, other_maintenance: float = 0.0, lot_size: float = 0.0,
                     contract: Any = None, max_calls: int = 64) -> LoopPlan:
    """Liquidation calls on a breached loop at the oracle price, while ``HF < 1``.

    The account is ``qty`` of collateral at ``mark_price`` against the debt
    ``qty*mark - margin_balance`` (``margin_balance`` is the pool's equity). Its reserve has
    the run's bracket and clearance fee as parameters: ``LT = 1 - mmr``, ``bonus =
    1/(1 - clearance_rate)``, ``LTV = 1 - 1/max_leverage`` (the data file's values, pinned to
    the reserve by a test; a run's overrides apply consistently). Each call is [AAVE]
    ``liquidation_call`` with as much debt as the close factor allows; the calls repeat while
    the health factor stays below 1 and collateral is left (the toxic region, ``LTV >
    1/bonus``, ends with all collateral seized and the rest of the debt a deficit).
    """
    params = parameters()
    tier = tiers.tiers[0]
    bonus = 1.0 / (1.0 - clearance_rate)
    lt = 1.0 - tier.mmr
    reserve = aave.ReserveConfig(asset=_COLLATERAL, ltv=min(lt, 1.0 - 1.0 / tier.max_leverage),
                                 liquidation_threshold=lt, liquidation_bonus=bonus,
                                 liquidation_protocol_fee=_protocol_fee(params, lt, bonus))
    debt_reserve = params.market.reserve(params.debt_asset)
    market = aave.Market({_COLLATERAL: reserve, params.debt_asset: debt_reserve})
    prices = {_COLLATERAL: mark_price, params.debt_asset: 1.0}
    position = aave.Position({_COLLATERAL: qty},
                             {params.debt_asset: max(0.0, qty * mark_price - margin_balance)})
    debt = position.debt[params.debt_asset]
    if debt > 0.0 and 1.0 <= aave.health_factor([(qty * mark_price, lt)], debt) <= 1.0 + _AT_THE_LINE:
        # the engine walks the oracle's candle as a continuous path, so a trigger lands on the
        # liquidation price itself (HF = 1 up to rounding) where Aave needs HF < 1: the call is
        # made as at an answer just below it (the close factor is the same for any HF in
        # (0.95, 1))
        prices[_COLLATERAL] = debt / (qty * lt) * (1.0 - _AT_THE_LINE)
    steps: list[float] = []
    calls: list[aave.Liquidation] = []
    for _ in range(max_calls):
        call = aave.liquidation_call(position, prices, market, collateral_asset=_COLLATERAL,
                                     debt_asset=params.debt_asset, debt_to_cover=math.inf,
                                     version=params.version)
        if call.status != "liquidated" or call.collateral_seized <= 0.0:
            break
        steps.append(call.collateral_seized)
        calls.append(call)
        position = call.position_after
        if call.health_factor_after >= 1.0 or position.collateral[_COLLATERAL] <= 0.0:
            break
    return LoopPlan(tuple(steps), position.collateral[_COLLATERAL], tuple(calls))


# ---- the venue ------------------------------------------------------------------------------

def _venue() -> Venue:
    params = parameters()
    return Venue(
        name="aave_v3", exchange="aave_v3", contract_type="linear",
        maintenance_margin=maintenance_margin,
        liquidation_price=pool_liquidation_price,
        liquidation_price_resolved=pool_liquidation_price,
        bankruptcy_price=_bankruptcy, funding_payment=interest_payment,
        unrealized_pnl=lambda *, signed_qty, entry_price, mark_price:
            signed_qty * (mark_price - entry_price),
        tier_down_plan=liquidation_plan,
        position_modes=("one_way",),  # one loop per asset
        label="Aave",
        prepare_market=prepare_market, short_refusal=SHORT_REFUSAL, lending=True,
        rule_versions=MappingProxyType({
            "health_factor": "backtest/lending/aave_v3.py health_factor (aave-v3-core@782f5191 GenericLogic)",
            "liquidation": f"backtest/lending/aave_v3.py liquidation_call v{params.version} "
                           "(aave-v3-origin@fd1fbd91 LiquidationLogic)",
            "oracle": f"Chainlink rule heartbeat {params.heartbeat_s:g} s, deviation {params.deviation:g} "
                      "(backtest/lending/oracle.py)",
            "interest": "hourly, compounded index (backtest/lending/interest.py; rates in "
                        "backtest/venues/data/aave_v3.toml)",
            "reserves": "backtest/venues/data/aave_v3.toml [aave] (ASSUMPTION-marked values)",
            "emode": str(params.emode),
        }))


#: The registered venue ``aave_v3`` (see :func:`backtest.venues.base.get_venue`).
VENUE: Venue = _venue()

#: Coverage for ``margincall venues``: a loop per isolated position, or the whole wallet as
#: one account (cross, one symbol); the parameter versions of the data file's [aave] section.
VENUE_INFO = VenueInfo(
    name="aave_v3", title="Aave v3 looped long (collateral WETH/WBTC, USDC debt) as a venue",
    modes=(("linear", "isolated"), ("linear", "cross")),
    rule_versions=tuple(RuleVersion(what, parameters().effective_from, source, date_known=False)
                        for what, source in parameters().sources.items()))

#: The module's venues by name (the venue is not named after the module: ``aave_v3`` is the
#: protocol module's name in backtest/lending).
VENUE_INFOS = {"aave_v3": VENUE_INFO}
