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

import functools
import math
from dataclasses import dataclass
from typing import Any

from backtest.lending import aave_v3 as aave
from backtest.venues import lending_loop
from backtest.venues.base import Venue
from backtest.venues.lending_loop import INTEREST_INTERVAL_MS, oracle_bars

__all__ = ["INTEREST_INTERVAL_MS", "SHORT_REFUSAL", "VENUE", "VENUE_INFO", "VENUE_INFOS", "AaveParameters",
           "LoopPlan", "emode_overrides", "interest_payment", "interest_settlements", "liquidation_plan",
           "maintenance_margin", "oracle_bars", "parameters", "pool_liquidation_price",
           "prepare_market"]

SHORT_REFUSAL = lending_loop.short_refusal("Aave v3", "aave_v3", "USDC")

_COLLATERAL = "collateral"  # the plan's reserve name for the symbol's collateral asset
#: Relative distance from HF 1 within which a breach seen by the engine is the line itself.
_AT_THE_LINE = 1e-9


@dataclass(frozen=True)
class AaveParameters(lending_loop.LoopParameters):
    """The ``[aave]`` section of ``backtest/venues/data/aave_v3.toml`` (see its comments).

    The loop's assets, oracle rule and rates are :class:`~backtest.venues.lending_loop.LoopParameters`'
    fields (``debt_asset`` the borrowed reserve ``"USDC"``, ``collateral`` price symbol ->
    collateral reserve); Aave adds:

    Attributes
    ----------
    market : backtest.lending.aave_v3.Market
        Reserves and e-mode categories.
    version : str
        Liquidation rules (``"3.3"``).
    emode : int
        The account's e-mode category (0: none).
    """

    market: aave.Market
    version: str
    emode: int

    name = "aave_v3"
    label = "Aave"
    data_file = "aave_v3.toml"
    section = "aave"
    collateral_word = "reserve"

    def risk(self, symbol: str) -> tuple[float, float, float]:
        """``(ltv, liquidation_threshold, liquidation_bonus)`` of ``symbol``'s collateral for
        the account's e-mode ([AAVE] ``Market.risk_params``)."""
        return self.market.risk_params(self.reserve_of(symbol), self.emode)


@functools.cache
def parameters() -> AaveParameters:
    """The venue's parameters, read once from its data file ([PARAMS])."""
    raw = lending_loop.read_section(AaveParameters.data_file, AaveParameters.section)
    reserves = {r["asset"]: aave.ReserveConfig(
        asset=r["asset"], ltv=float(r["ltv"]), liquidation_threshold=float(r["liquidation_threshold"]),
        liquidation_bonus=float(r["liquidation_bonus"]),
        liquidation_protocol_fee=float(r["liquidation_protocol_fee"])) for r in raw["reserves"]}
    categories = {int(c["category_id"]): aave.EModeCategory(
        category_id=int(c["category_id"]), ltv=float(c["ltv"]),
        liquidation_threshold=float(c["liquidation_threshold"]),
        liquidation_bonus=float(c["liquidation_bonus"]),
        collateral_assets=frozenset(c["collateral_assets"])) for c in raw.get("emode_categories", [])}
    sources = {f"reserve {r['asset']}": r["source"] for r in raw["reserves"]}
    sources.update({f"e-mode {c['category_id']}": c["source"] for c in raw.get("emode_categories", [])})
    market = aave.Market(reserves, categories)
    market.category(int(raw["emode"]))  # an undefined category fails here, not mid-run
    return AaveParameters(market=market, version=str(raw["version"]), emode=int(raw["emode"]),
                          **lending_loop.loop_fields(raw, debt_key="debt_asset", sources=sources))


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
    The liquidation price is the root of equity minus this: the gap is affine in the price, so
    the first false-position step is the answer ``D/(q*LT)``.
    """
    value = abs(notional)
    return value - _debt_at_health_one(value, 1.0 - tier.mmr)


#: The loop's shared functions (:func:`backtest.venues.lending_loop.loop_functions`) with these
#: parameters, maintenance and short refusal.
_LOOP = lending_loop.loop_functions(parameters, maintenance_margin, SHORT_REFUSAL)
pool_liquidation_price, interest_payment, interest_settlements, prepare_market = _LOOP


# ---- the liquidation procedure --------------------------------------------------------------

@dataclass(frozen=True)
class LoopPlan(lending_loop.LoopLiquidation):
    """The liquidation calls one trigger makes (read by ``Venue.liquidation_procedure``):
    :class:`~backtest.venues.lending_loop.LoopLiquidation`'s steps (the collateral each call
    seizes) and remainder, and

    Attributes
    ----------
    calls : tuple of backtest.lending.aave_v3.Liquidation
        The protocol's outcome of each call (debt repaid, bonus, protocol fee, deficit).
    """

    calls: tuple[aave.Liquidation, ...]


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
    return lending_loop.loop_venue(
        params, _LOOP, maintenance_margin=maintenance_margin, tier_down_plan=liquidation_plan,
        short_refusal=SHORT_REFUSAL, rule_versions={
            "health_factor": "backtest/lending/aave_v3.py health_factor (aave-v3-core@782f5191 GenericLogic)",
            "liquidation": f"backtest/lending/aave_v3.py liquidation_call v{params.version} "
                           "(aave-v3-origin@fd1fbd91 LiquidationLogic)",
            "oracle": lending_loop.oracle_rule(params),
            "interest": "hourly, compounded index (backtest/lending/interest.py; rates in "
                        "backtest/venues/data/aave_v3.toml)",
            "reserves": "backtest/venues/data/aave_v3.toml [aave] (ASSUMPTION-marked values)",
            "emode": str(params.emode),
        })


#: The registered venue ``aave_v3`` (see :func:`backtest.venues.base.get_venue`).
VENUE: Venue = _venue()

#: Coverage for ``margincall venues`` (:func:`backtest.venues.lending_loop.loop_venue_info`).
VENUE_INFO = lending_loop.loop_venue_info(
    parameters(), "Aave v3 looped long (collateral WETH/WBTC, USDC debt) as a venue")

#: The module's venues by name (the venue is not named after the module: ``aave_v3`` is the
#: protocol module's name in backtest/lending).
VENUE_INFOS = {"aave_v3": VENUE_INFO}
