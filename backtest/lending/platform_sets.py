"""Compound v3 and Maker parameter sets of the lending platform view (Aave's is
:class:`backtest.lending.platform.ParameterSet`).

Every set type offers the same four things to the platform runner
(:mod:`backtest.lending.platform_run`): its ``protocol``, its parameter ``columns()`` for the
tables, ``admit`` (the debt the protocol lets the population borrow: the borrowing demand is
fixed, the set's borrowing limit cuts it) and ``run`` (the set's rules through the protocol's
own simulation — one definition of each rule):

* **Compound v3** (:class:`CometSet`): borrow collateral factor (the borrowing limit: debt at
  most ``value x borrowCF``), liquidate collateral factor, liquidation factor, store-front
  price factor, target reserves and starting reserves, through
  :func:`backtest.lending.comet_simulation.simulate_comet` (absorb, buyCollateral at the
  store-front discount, reserves bearing the shortfall; bad debt = the simulation's
  ``deficit``). The configurator rule ``borrowCF <= liquidateCF`` is
  :class:`backtest.lending.compound_v3.AssetConfig`'s.
* **Maker** (:class:`MakerSet`): liquidation ratio ``mat`` (the borrowing limit too: ``frob``
  keeps ``art x rate <= ink x spot``, :func:`backtest.lending.maker.spot`), ``chop``, the
  Clipper's ``buf``, ``tail``, ``cusp``, ``tip``, ``chip`` and the Dog's ``hole``/``Hole``,
  through :func:`backtest.lending.auctions.run_auctions` in Clipper mode (OSM, ``bark``,
  keepers ``take``; bad debt = auction shortfalls + keeper incentives + debt left on emptied
  vaults, as the study's bad-debt table counts it). The path is sampled every
  ``maker_step`` seconds (the OSM reads it hourly anyway).

Sources: [COMET] compound-finance/comet ``Comet.sol`` / ``CometConfiguration.sol`` as cited in
:mod:`backtest.lending.compound_v3`; [DSS] makerdao/dss ``vat.sol``, ``dog.sol``, ``clip.sol``
as cited in :mod:`backtest.lending.maker`; margin_rules.md §9-§10.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray

from backtest.lending.checks import at_least, non_negative
from backtest.lending.errors import LendingParameterError

__all__ = ["CometSet", "MakerSet", "RunContext", "comet_grid", "maker_grid"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class RunContext:
    """What every set's run shares: the Aave/Comet agents and oracle (``config``, a
    :class:`backtest.lending.simulation.SimulationConfig`), the venue's quote depth, the Maker
    keepers, network gas price (gwei) and step (seconds)."""

    config: Any
    depth_quote: float = 1e9
    keepers: tuple[Any, ...] = ()
    gas_gwei: float = 20.0
    maker_step: float = 60.0
    stability_fee: float = 0.0

    def venue(self, price: float, depth_scale: float = 1.0) -> Any:
        """A constant-product pool at ``price`` holding ``depth_quote x depth_scale`` quote."""
        from backtest.lending.amm import ConstantProductPool

        return ConstantProductPool.at_price(price, depth_quote=self.depth_quote * depth_scale)


def _outcome(bad_debt: float, debt_liquidated: float, liquidations: int,
             toxic: int) -> dict[str, Any]:
    return {"bad_debt": float(bad_debt), "debt_liquidated": float(debt_liquidated),
            "liquidations": int(liquidations), "toxic_positions": int(toxic)}


@dataclass(frozen=True, slots=True)
class CometSet:
    """A Compound v3 collateral asset's parameters (fractions; reserves in base tokens)."""

    protocol: ClassVar[str] = "compound_v3"
    name: str
    borrow_cf: float
    liquidate_cf: float
    liquidation_factor: float
    store_front_price_factor: float = 0.6
    target_reserves: float = math.inf
    reserves: float = 0.0

    def __post_init__(self) -> None:
        from backtest.lending.comet_simulation import CometConfig
        from backtest.lending.compound_v3 import AssetConfig

        AssetConfig(f"(parameter set {self.name!r})", self.borrow_cf, self.liquidate_cf,
                    self.liquidation_factor)
        if not self.liquidation_factor > 0:
            raise LendingParameterError(f"parameter set {self.name!r}: liquidation_factor "
                                        "expected > 0 (Comet credits value x factor), found 0")
        # the simulation's position book holds 2 - liquidationFactor as the bonus column and
        # refuses threshold x bonus > 1 (a liquidation at the threshold would seize more than
        # the collateral): keep the grid inside what the simulation accepts
        if self.liquidate_cf * (2.0 - self.liquidation_factor) > 1.0 + 1e-12:
            raise LendingParameterError(
                f"parameter set {self.name!r}: expected liquidate_cf x (2 - liquidation_factor) "
                f"<= 1, found {self.liquidate_cf} x {2.0 - self.liquidation_factor:g}; lower one")
        CometConfig(store_front_price_factor=self.store_front_price_factor,
                    reserves=self.reserves, target_reserves=self.target_reserves)

    def columns(self) -> dict[str, float]:
        """The parameter values, as table columns."""
        return {"borrow_cf": self.borrow_cf, "liquidate_cf": self.liquidate_cf,
                "liquidation_factor": self.liquidation_factor,
                "store_front_price_factor": self.store_front_price_factor,
                "target_reserves": self.target_reserves, "reserves": self.reserves}

    def admit(self, collateral: Array, debt: Array, price: float) -> tuple[Array, Array]:
        """Debt capped at ``collateral x price x borrowCF`` (Comet's ``isBorrowCollateralized``)."""
        return collateral, np.minimum(debt, collateral * price * self.borrow_cf)

    def run(self, collateral: Array, debt: Array, times: Array, prices: Array,
            ctx: RunContext, depth_scale: float) -> dict[str, Any]:
        """The set through :func:`backtest.lending.comet_simulation.simulate_comet`."""
        from backtest.lending.comet_simulation import CometConfig, simulate_comet
        from backtest.lending.simulation import PositionBook

        a = ctx.config
        config = CometConfig(store_front_price_factor=self.store_front_price_factor,
                             reserves=self.reserves, target_reserves=self.target_reserves,
                             heartbeat=a.heartbeat, deviation=a.deviation, gas_cost=a.gas_cost,
                             min_profit=a.min_profit, latency_steps=a.latency_steps,
                             arbitrage_share=a.arbitrage_share, feedback=a.feedback,
                             borrow_rate=a.borrow_rate)
        book = PositionBook(collateral, debt, self.liquidate_cf, 2.0 - self.liquidation_factor)
        s = simulate_comet(book, times, prices, ctx.venue(float(prices[0]), depth_scale),
                           config).summary
        return _outcome(s["deficit"], s["debt_repaid"], s["liquidations"], s["toxic_positions"])


@dataclass(frozen=True, slots=True)
class MakerSet:
    """A Maker ilk's parameters: ``mat`` (1.5 = 150 %), ``chop`` (1.13 = 13 %), the Clipper's
    ``buf``, ``tail`` (s), ``cusp``, ``tip`` (DAI), ``chip``, and the Dog's ``hole`` and
    ``global_hole`` (``Hole``; DAI, ``inf`` = no limit).

    Defaults are :class:`backtest.lending.auctions.AuctionParams`' (ETH-A's Clipper; ``buf``
    1.2, no limits). For reference, makerdao/dss-deploy-scripts ``config/main.json`` @
    ef353efcb352044e6a9fff22121b1c5a05e857ef (the Liquidations 2.0 deployment configuration)
    lists ETH-A ``mat`` 150, ``chop`` 13, ``buf`` 130, ``tail`` 8400, ``cusp`` 40, ``chip``
    0.1, ``tip`` 300, ``hole`` 22,000,000, StairstepExponentialDecrease ``step`` 90 / ``cut``
    99, and ``dog_hole`` (``Hole``) 100,000,000 (percentages and DAI)."""

    protocol: ClassVar[str] = "maker"
    name: str
    mat: float
    chop: float
    buf: float = 1.2
    tail: float = 140 * 60.0
    cusp: float = 0.4
    tip: float = 300.0
    chip: float = 0.001
    hole: float = math.inf
    global_hole: float = math.inf

    def __post_init__(self) -> None:
        at_least(f"parameter set {self.name!r} mat", self.mat, 1.0, "the liquidation ratio, "
                 "1.5 = 150 %")
        at_least(f"parameter set {self.name!r} chop", self.chop, 1.0, "the penalty multiplier, "
                 "1.13 = 13 %")
        self.auction_params()   # the Clipper and Dog values, validated where they are used

    def auction_params(self, stability_fee: float = 0.0) -> Any:
        """The set as :class:`backtest.lending.auctions.AuctionParams` (Clipper mode)."""
        from backtest.lending.auctions import AuctionParams

        return AuctionParams(mode="clipper", buf=self.buf, tail=self.tail, cusp=self.cusp,
                             tip=self.tip, chip=self.chip, hole=self.hole,
                             global_hole=self.global_hole, stability_fee=stability_fee)

    def columns(self) -> dict[str, float]:
        """The parameter values, as table columns."""
        return {"mat": self.mat, "chop": self.chop, "buf": self.buf, "tail": self.tail,
                "cusp": self.cusp, "tip": self.tip, "chip": self.chip, "hole": self.hole,
                "global_hole": self.global_hole}

    def admit(self, collateral: Array, debt: Array, price: float) -> tuple[Array, Array]:
        """Debt capped at ``ink x spot`` (``vat.frob``'s safety: a vault is drawn only while
        safe), ``spot = price / mat`` (:func:`backtest.lending.maker.spot`)."""
        from backtest.lending.maker import spot

        return collateral, np.minimum(debt, collateral * spot(price, self.mat))

    def run(self, collateral: Array, debt: Array, times: Array, prices: Array,
            ctx: RunContext, depth_scale: float) -> dict[str, Any]:
        """The set through :func:`backtest.lending.auctions.run_auctions` (Clipper), the path
        sampled every ``ctx.maker_step`` seconds; ``depth_scale`` does not apply (keepers
        value the collateral at the market price)."""
        from backtest.lending.auctions import run_auctions

        if not ctx.keepers:
            raise LendingParameterError("maker parameter sets: expected at least one keeper, "
                                        "found none; pass --keeper NAME:KIND:MAX_GWEI:MARGIN")
        step = float(times[1] - times[0]) if times.size > 1 else ctx.maker_step
        stride = max(1, int(round(ctx.maker_step / step)))
        t, p = times[::stride], prices[::stride]
        vaults = pl.DataFrame({"collateral": collateral, "debt": debt,
                               "liquidation_threshold": np.full(collateral.size, 1.0 / self.mat),
                               "liquidation_bonus": np.full(collateral.size, self.chop)})
        result = run_auctions(vaults, t, p, np.full(t.size, ctx.gas_gwei), list(ctx.keepers),
                              self.auction_params(ctx.stability_fee))
        s = result.summary
        underwater = float(result.debt[(result.ink == 0) & (result.debt > 0)].sum())
        return _outcome(s["deficit"] + underwater, s["debt_liquidated"], s["auctions"],
                        s["toxic_positions"])


def _grid(kind: type, required: Sequence[str], values: dict[str, Sequence[float]],
          label: str) -> list[Any]:
    """Every combination of ``values`` (field -> values) as ``kind`` sets named by their
    values, skipping the combinations the protocol's rules refuse; raises when none is left."""
    missing = [k for k in required if k not in values]
    if missing:
        raise LendingParameterError(f"{label} grid: expected values for {', '.join(missing)}, "
                                    f"found none; e.g. --grid {label}.{missing[0]}=V1,V2")
    keys = list(values)
    sets, refused = [], []
    for combo in product(*(values[k] for k in keys)):
        name = f"{label}-" + "-".join(f"{k}{v:g}" for k, v in zip(keys, combo))
        try:
            sets.append(kind(name, **dict(zip(keys, combo))))
        except LendingParameterError as exc:
            refused.append(str(exc))
    if not sets:
        raise LendingParameterError(f"{label} grid: the protocol's rules refuse every "
                                    f"combination, e.g. {refused[0]}")
    return sets


def comet_grid(values: dict[str, Sequence[float]]) -> list[CometSet]:
    """Every combination of Comet fields (``borrow_cf``, ``liquidate_cf``,
    ``liquidation_factor`` required) as :class:`CometSet` (``borrowCF > liquidateCF`` skipped)."""
    return _grid(CometSet, ("borrow_cf", "liquidate_cf", "liquidation_factor"), values, "comet")


def maker_grid(values: dict[str, Sequence[float]]) -> list[MakerSet]:
    """Every combination of Maker fields (``mat``, ``chop`` required) as :class:`MakerSet`."""
    for key in ("hole", "global_hole"):
        for v in values.get(key, ()):
            non_negative(f"maker {key}", v, allow_inf=True)
    return _grid(MakerSet, ("mat", "chop"), values, "maker")

