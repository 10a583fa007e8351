"""Compound v3 (Comet) as a venue (``--venue compound_v3``): a looped long behind the venue protocol.

A long of ``q`` units is a loop on the cUSDCv3 market: ``q`` WETH (or WBTC) supplied as
collateral, USDC (the base asset) borrowed, ``D = q*E - W`` (:mod:`backtest.venues.lending_loop`:
the price, oracle and interest every lending venue shares). The protocol's rules come from its
own pure functions (:mod:`backtest.lending.compound_v3`; one definition):

* **maintenance**: liquidatable when ``value*liquidateCF < debt`` ([COMET] ``isLiquidatable``),
  i.e. when the equity falls below ``value*(1 - liquidateCF)`` (:func:`maintenance_margin`; the
  data file's bracket has rate ``1 - liquidateCF``, pinned to the asset by a test);
* **initial margin** from the borrow collateral factor: ``isBorrowCollateralized`` is the leverage
  cap ``1/(1 - borrowCF)``;
* **liquidation** is ``absorb`` (:func:`liquidation_plan`): the protocol seizes *all* the
  collateral and credits ``value*liquidationFactor``; the account keeps any surplus, the
  reserves absorb a shortfall. One step closes the whole loop, its cost the clearance fee
  ``1 - liquidationFactor`` of the value, a shortfall bad debt (``Venue.lending``);
* **no supply interest**: Comet pays interest on the base asset only; the debt pays the borrow
  rate hourly.

Sources:

* [COMET] backtest/lending/compound_v3.py: ``is_liquidatable``, ``is_borrow_collateralized``,
  ``absorb`` (its source compound-finance/comet @ d5a30b0a ``Comet.sol``);
  ../shared/specs/margin_rules.md §9.
* [LOOP] backtest/venues/lending_loop.py: liquidation price, oracle candles, interest.
* [PARAMS] backtest/venues/data/compound_v3.toml: dated factors, oracle rule and rates (each with
  its source; ASSUMPTION-marked where ../shared has no primary data).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from backtest.lending import compound_v3 as comet
from backtest.venues import lending_loop
from backtest.venues.base import Venue

__all__ = ["SHORT_REFUSAL", "VENUE", "VENUE_INFO", "VENUE_INFOS", "AbsorbPlan", "CometParameters",
           "interest_payment", "interest_settlements", "liquidation_plan", "maintenance_margin",
           "parameters", "pool_liquidation_price", "prepare_market"]

SHORT_REFUSAL = lending_loop.short_refusal("Compound v3", "compound_v3", "USDC")

_COLLATERAL = "collateral"  # the plan's asset name for the symbol's collateral
#: Relative distance from the line within which a breach seen by the engine is the line itself.
_AT_THE_LINE = 1e-9


@dataclass(frozen=True)
class CometParameters(lending_loop.LoopParameters):
    """The ``[comet]`` section of ``backtest/venues/data/compound_v3.toml`` (see its comments).

    The loop's assets, oracle rule and rates are :class:`~backtest.venues.lending_loop.LoopParameters`'
    fields (``debt_asset`` the market's base asset ``"USDC"``, ``collateral`` price symbol ->
    collateral asset); Comet adds:

    Attributes
    ----------
    assets : mapping
        Collateral asset -> :class:`backtest.lending.compound_v3.AssetConfig`.
    """

    assets: MappingProxyType[str, comet.AssetConfig]

    name = "compound_v3"
    label = "Compound"
    data_file = "compound_v3.toml"
    section = "comet"

    def asset(self, symbol: str) -> comet.AssetConfig:
        """The collateral factors of ``symbol``'s asset."""
        return self.assets[self.reserve_of(symbol)]


@functools.cache
def parameters() -> CometParameters:
    """The venue's parameters, read once from its data file ([PARAMS])."""
    raw = lending_loop.read_section(CometParameters.data_file, CometParameters.section)
    assets = {a["asset"]: comet.AssetConfig(
        asset=a["asset"], borrow_collateral_factor=float(a["borrow_collateral_factor"]),
        liquidate_collateral_factor=float(a["liquidate_collateral_factor"]),
        liquidation_factor=float(a["liquidation_factor"])) for a in raw["assets"]}
    sources = {f"asset {a['asset']}": a["source"] for a in raw["assets"]}
    return CometParameters(assets=MappingProxyType(assets),
                           **lending_loop.loop_fields(raw, debt_key="base_asset", sources=sources))


def maintenance_margin(notional: Any, tier: Any) -> Any:
    """Equity at the liquidation line, USDC: ``|N| - |N|*liquidateCF``.

    [COMET] ``isLiquidatable`` is ``value*liquidateCF < debt``: with equity ``N - D`` that is
    ``equity < N - N*liquidateCF``; the tier's rate is ``1 - liquidateCF`` (the data file's
    bracket, pinned to the asset by a test). ``notional`` may be a float or an array.
    The liquidation price, the root of equity minus this, is ``D/(q*liquidateCF)``.
    """
    value = abs(notional)
    return value - value * (1.0 - tier.mmr)


#: The loop's shared functions (:func:`backtest.venues.lending_loop.loop_functions`) with these
#: parameters, maintenance and short refusal.
_LOOP = lending_loop.loop_functions(parameters, maintenance_margin, SHORT_REFUSAL)
pool_liquidation_price, interest_payment, interest_settlements, prepare_market = _LOOP


@dataclass(frozen=True)
class AbsorbPlan(lending_loop.LoopLiquidation):
    """The ``absorb`` one trigger makes (read by ``Venue.liquidation_procedure``):
    :class:`~backtest.venues.lending_loop.LoopLiquidation`'s steps (the whole collateral, seized
    at once; empty when the account is not liquidatable) and remainder (0 after an absorb), and

    Attributes
    ----------
    absorption : backtest.lending.compound_v3.Absorption
        The protocol's outcome (value credited, new base balance, reserves' change).
    """

    absorption: comet.Absorption


def liquidation_plan(*, qty: float, mark_price: float, margin_balance: float, tiers: Any,
                     clearance_rate: float, other_maintenance: float = 0.0, lot_size: float = 0.0,
                     contract: Any = None) -> AbsorbPlan:
    """``absorb`` of a breached loop at the oracle price: all ``qty`` seized in one step.

    The account holds ``qty`` at ``mark_price`` against ``qty*mark - margin_balance`` of
    base; its factors are the run's bracket and clearance fee (``liquidateCF = 1 - mmr``,
    ``liquidationFactor = 1 - clearance_rate``, ``borrowCF = 1 - 1/max_leverage``: the data
    file's values, pinned by a test). A trigger on the line itself (the engine walks the
    oracle's candle as a path) is absorbed as at an answer just below it.
    """
    tier = tiers.tiers[0]
    liquidate_cf = 1.0 - tier.mmr
    config = comet.AssetConfig(asset=_COLLATERAL,
                               borrow_collateral_factor=min(liquidate_cf, 1.0 - 1.0 / tier.max_leverage),
                               liquidate_collateral_factor=liquidate_cf,
                               liquidation_factor=1.0 - clearance_rate)
    debt = max(0.0, qty * mark_price - margin_balance)
    price = mark_price
    if debt > 0.0 and 1.0 <= qty * mark_price * liquidate_cf / debt <= 1.0 + _AT_THE_LINE:
        price = debt / (qty * liquidate_cf) * (1.0 - _AT_THE_LINE)
    absorption = comet.absorb(base_balance=-debt, base_price=1.0,
                              holdings=[comet.Holding(config, qty, price)], reserves=0.0)
    if not absorption.absorbed:
        return AbsorbPlan((), qty, absorption)
    return AbsorbPlan((qty,), 0.0, absorption)


def _venue() -> Venue:
    params = parameters()
    return lending_loop.loop_venue(
        params, _LOOP, maintenance_margin=maintenance_margin, tier_down_plan=liquidation_plan,
        short_refusal=SHORT_REFUSAL, rule_versions={
            "liquidatable": "backtest/lending/compound_v3.py is_liquidatable (comet@d5a30b0a Comet.sol)",
            "liquidation": "backtest/lending/compound_v3.py absorb (comet@d5a30b0a absorbInternal)",
            "oracle": lending_loop.oracle_rule(params),
            "interest": "hourly borrow interest, none on collateral (backtest/lending/interest.py; "
                        "rates in backtest/venues/data/compound_v3.toml)",
            "assets": "backtest/venues/data/compound_v3.toml [comet] (ASSUMPTION-marked values)",
        })


#: The registered venue ``compound_v3`` (see :func:`backtest.venues.base.get_venue`).
VENUE: Venue = _venue()

#: Coverage for ``margincall venues`` (:func:`backtest.venues.lending_loop.loop_venue_info`).
VENUE_INFO = lending_loop.loop_venue_info(
    parameters(), "Compound v3 (cUSDCv3) looped long (collateral WETH/WBTC, USDC debt) as a venue")

#: The module's venues by name (the venue is not named after the module).
VENUE_INFOS = {"compound_v3": VENUE_INFO}
