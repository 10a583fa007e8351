"""Platform view for a lending protocol: parameter sets against a population and scenarios.

Each parameter set is applied to the same positions (debts fixed: the borrowers do not
change, the protocol's rules do) and run through each scenario for each population seed; the
result is the bad-debt distribution per parameter set (mean, 95th/99th percentiles, expected
shortfalls, worst; the tail figures of :mod:`backtest.platform.distribution`, shared with the
perpetuals' platform view) and the recommended set per protocol. The machinery — scenario set
(stored windows, shocks, Monte Carlo paths), populations, the executor, the summary — is
:mod:`backtest.lending.platform_run`; the Compound v3 and Maker sets are
:mod:`backtest.lending.platform_sets`. This module holds the Aave v3 set and the grids.

**Aave v3 sets** (:class:`ParameterSet`, :func:`parameter_grid`): every combination of
liquidation thresholds, bonuses, close factors, per-position borrow caps (highest starting
LTV), supply caps (total collateral value the market accepts) and debt caps (total
borrowing), skipping the combinations Aave's configurator refuses (``LT x bonus > 1``).
:func:`parse_grid` reads ``--grid`` terms for all three protocols (``comet.`` and ``maker.``
prefixes).

**Caps and capital efficiency.** Positions arrive in population order; a supply cap admits
them while the collateral value admitted stays within it (the others are not in the market),
a debt cap lends while the debt admitted stays within it (later positions borrow nothing), the
borrow cap cuts each debt to ``cap x collateral value``. ``capital_efficiency`` = debt admitted
/ debt demanded (the share of the population's borrowing the set serves), averaged over seeds.

**Recommendation.** Per protocol, among the sets with ``capital_efficiency >= min_efficiency``
(default 0.9), the smallest 95th percentile of bad debt, then the smallest 99 % expected
shortfall, then the smallest mean, then the highest efficiency; ``recommended`` is False for
every set of a protocol when none of its sets meets the constraint (``meets_efficiency`` says
which do).

A stored-path scenario scales the path's log moves: ``P0 * (P / P0) ** depth`` (depth 1 is the
historical path, 2 the same moves twice as deep).

Source: the platform-view design of cascades.md §7.2 (parameter set x population x scenarios ->
bad-debt distribution, recommended parameters) on the simulation of
:mod:`backtest.lending.simulation`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray

from backtest.lending.checks import fraction, positive
from backtest.lending.errors import LendingParameterError
from backtest.lending.simulation import (
    PositionBook,
    SimulationConfig,
    simulate,
)

__all__ = ["COMET_KEYS", "GRID_KEYS", "MAKER_KEYS", "ParameterSet", "bad_debt_distribution",
           "parameter_grid", "parse_grid", "parse_parameter_set"]


@dataclass(frozen=True, slots=True)
class ParameterSet:
    """A protocol parameter set: ``liquidation_threshold``, ``liquidation_bonus`` (multiplier),
    ``version`` (close-factor and deficit rules) and ``borrow_cap``: the highest starting LTV
    the population may hold (positions above it are capped: their debt is cut to the cap),
    ``close_factor`` (share repayable per liquidation above HF 0.95), ``supply_cap`` and
    ``debt_cap`` (base currency, market totals; module docstring)."""

    protocol: ClassVar[str] = "aave_v3"
    name: str
    liquidation_threshold: float
    liquidation_bonus: float
    version: str = "3.3"
    borrow_cap: float = 1.0
    close_factor: float = 0.5
    supply_cap: float = float("inf")
    debt_cap: float = float("inf")

    def __post_init__(self) -> None:
        lt = fraction(f"parameter set {self.name!r} liquidation_threshold",
                      self.liquidation_threshold)
        bonus = positive(f"parameter set {self.name!r} liquidation_bonus", self.liquidation_bonus)
        fraction(f"parameter set {self.name!r} borrow_cap", self.borrow_cap)
        if not 0 < fraction(f"parameter set {self.name!r} close_factor", self.close_factor):
            raise LendingParameterError(f"parameter set {self.name!r}: close_factor expected a "
                                        "share in (0, 1], found 0")
        positive(f"parameter set {self.name!r} supply_cap", self.supply_cap, allow_inf=True)
        positive(f"parameter set {self.name!r} debt_cap", self.debt_cap, allow_inf=True)
        if bonus < 1 or lt * bonus > 1:
            raise LendingParameterError(
                f"parameter set {self.name!r}: expected liquidation_bonus >= 1 and threshold x "
                f"bonus <= 1 (Aave's configurator rule), found {lt} x {bonus}; lower one")

    def columns(self) -> dict[str, Any]:
        """The parameter values, as table columns."""
        return {"liquidation_threshold": self.liquidation_threshold,
                "liquidation_bonus": self.liquidation_bonus, "borrow_cap": self.borrow_cap,
                "close_factor": self.close_factor, "supply_cap": self.supply_cap,
                "debt_cap": self.debt_cap}

    def admit(self, collateral: NDArray, debt: NDArray, price: float) -> tuple[NDArray, NDArray]:
        """Collateral and debt the set admits (module docstring: caps in arrival order)."""
        value = collateral * price
        coll = np.where(np.cumsum(value) <= self.supply_cap, collateral, 0.0)
        owed = np.where(coll > 0, np.minimum(debt, coll * price * self.borrow_cap), 0.0)
        return coll, np.where(np.cumsum(owed) <= self.debt_cap, owed, 0.0)

    def run(self, collateral: NDArray, debt: NDArray, times: NDArray, prices: NDArray,
            ctx: Any, depth_scale: float) -> dict[str, Any]:
        """The set through :func:`backtest.lending.simulation.simulate` (bad debt = v3.3
        deficit + debt left on emptied positions)."""
        book = PositionBook(collateral, debt, self.liquidation_threshold, self.liquidation_bonus)
        config = replace(ctx.config, version=self.version, close_factor=self.close_factor)
        s = simulate(book, times, prices, ctx.venue(float(prices[0]), depth_scale), config).summary
        return {"bad_debt": s["deficit"] + s["underwater_debt"], "debt_liquidated": s["debt_repaid"],
                "liquidations": s["liquidations"], "toxic_positions": s["toxic_positions"]}


def parse_parameter_set(text: str) -> ParameterSet:
    """``NAME:LT:BONUS[:CAP]`` (``--platform`` on the command line) as a :class:`ParameterSet`."""
    parts = text.split(":")
    try:
        if len(parts) not in (3, 4):
            raise ValueError
        cap = float(parts[3]) if len(parts) == 4 else 1.0
        return ParameterSet(parts[0], float(parts[1]), float(parts[2]), borrow_cap=cap)
    except ValueError as exc:
        if isinstance(exc, LendingParameterError):
            raise
        raise LendingParameterError(
            f"--platform {text!r}: expected NAME:LT:BONUS[:CAP], e.g. --platform "
            "current:0.825:1.05 or --platform strict:0.78:1.075:0.7") from None


def parameter_grid(*, thresholds: Sequence[float], bonuses: Sequence[float],
                   close_factors: Sequence[float] = (0.5,), borrow_caps: Sequence[float] = (1.0,),
                   supply_caps: Sequence[float] = (float("inf"),),
                   debt_caps: Sequence[float] = (float("inf"),), version: str = "3.3"
                   ) -> list[ParameterSet]:
    """Every combination as a :class:`ParameterSet` named by its values
    (``lt0.8-b1.05-cf0.5-cap1-sc inf-dc inf``), skipping ``LT x bonus > 1`` (Aave's
    configurator refuses it). Raises when nothing is left."""
    from itertools import product

    sets = [ParameterSet(f"lt{lt:g}-b{b:g}-cf{cf:g}-cap{cap:g}-sc{sc:g}-dc{dc:g}", lt, b,
                         version, cap, cf, sc, dc)
            for lt, b, cf, cap, sc, dc in product(thresholds, bonuses, close_factors,
                                                  borrow_caps, supply_caps, debt_caps)
            if lt * b <= 1.0]
    if not sets:
        raise LendingParameterError(
            "parameter grid: every combination has liquidation_threshold x bonus > 1 (Aave's "
            "configurator rule); lower the thresholds or the bonuses")
    return sets


def bad_debt_distribution(times: NDArray[np.float64], prices: NDArray[np.float64],
                          parameter_sets: Sequence[Any], *, depths: Sequence[float],
                          seeds: Sequence[int], positions: int = 10_000,
                          config: SimulationConfig = SimulationConfig(), depth_quote: float = 1e9,
                          health_factor_range: tuple[float, float] = (1.02, 2.5),
                          reference_threshold: float = 0.825, min_efficiency: float = 0.9
                          ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Run every parameter set through the stored path at every scenario depth and population
    seed, serially (the stored-window special case of
    :func:`backtest.lending.platform_run.run_lending_platform`, which adds shocks, Monte Carlo
    paths, Compound v3 and Maker sets and the parallel executor).

    Parameters
    ----------
    times, prices : arrays
        The stored path (seconds, price), e.g. from :func:`backtest.lending.paths.candle_path`.
    parameter_sets : sequence
        :class:`ParameterSet` (or Comet/Maker sets of :mod:`backtest.lending.platform_sets`).
    depths : sequence of float
        Scenario depths (1 = the path as stored).
    seeds : sequence of int
        Population seeds; each draws ``positions`` positions at the path's first price with
        health factors in ``health_factor_range`` under ``reference_threshold`` (Aave; the other
        protocols use :data:`backtest.lending.platform_run.REFERENCES`): this fixes the debts;
        each set then applies its own limits and rules.
    config : SimulationConfig
        Oracle and liquidator agents (``version`` and ``close_factor`` come from each set).
    depth_quote : float
        Quote reserve of the pool liquidators sell into.
    min_efficiency : float
        The capital-efficiency constraint of the recommendation (module docstring).

    Returns
    -------
    (runs, summary) : DataFrames
        One row per (set, depth, seed) (``depth`` = ``move_depth``); one row per set with ``mean``, ``p95``, ``p99``,
        ``es95``, ``es99`` (tail figures of :mod:`backtest.platform.distribution`) and
        ``worst`` bad debt, ``capital_efficiency``, ``meets_efficiency`` and ``recommended``
        (True for at most one set per protocol).
    """
    from backtest.lending.platform_run import (REFERENCES, PlatformSetup, lending_scenarios,
                                               run_lending_platform)
    from backtest.lending.platform_sets import RunContext

    symbol = "collateral"
    scenarios, moves = lending_scenarios(symbol=symbol, times=times, prices=prices,
                                         move_depths=depths)
    setup = PlatformSetup(symbol, RunContext(config, depth_quote=depth_quote),
                          positions=positions, seeds=tuple(seeds),
                          health_factor_range=health_factor_range,
                          references={**REFERENCES, "aave_v3": reference_threshold},
                          move_depths=moves)
    result = run_lending_platform(parameter_sets, scenarios, setup, workers=1,
                                  min_efficiency=min_efficiency)
    # ``depth``: this function's name for the stored path's move depth
    return result.runs.with_columns(depth=pl.col("move_depth")), result.summary


#: ``--grid`` keys of Aave sets (no prefix, or ``aave.``) and the :func:`parameter_grid`
#: argument each fills.
GRID_KEYS = {"lt": "thresholds", "bonus": "bonuses", "close_factor": "close_factors",
             "borrow_cap": "borrow_caps", "supply_cap": "supply_caps", "debt_cap": "debt_caps"}
#: ``--grid comet.KEY`` keys (:class:`backtest.lending.platform_sets.CometSet` fields).
COMET_KEYS = {"borrow_cf": "borrow_cf", "liquidate_cf": "liquidate_cf",
              "liquidation_factor": "liquidation_factor",
              "store_front": "store_front_price_factor", "target_reserves": "target_reserves",
              "reserves": "reserves"}
#: ``--grid maker.KEY`` keys (:class:`backtest.lending.platform_sets.MakerSet` fields; ``Hole``
#: is the Dog's global limit, ``hole`` the ilk's).
MAKER_KEYS = {"mat": "mat", "chop": "chop", "buf": "buf", "tail": "tail", "cusp": "cusp",
              "tip": "tip", "chip": "chip", "hole": "hole", "Hole": "global_hole"}
_PREFIXES = {"aave": GRID_KEYS, "comet": COMET_KEYS, "maker": MAKER_KEYS}


def parse_grid(specs: Sequence[str]) -> list[Any]:
    """``[PROTOCOL.]KEY=V1,V2,...`` terms as parameter sets: keys without a prefix (or
    ``aave.``) from :data:`GRID_KEYS` (``lt`` and ``bonus`` required) make the Aave sets of
    :func:`parameter_grid`; ``comet.`` keys (:data:`COMET_KEYS`; ``borrow_cf``,
    ``liquidate_cf``, ``liquidation_factor`` required) Compound v3 sets; ``maker.`` keys
    (:data:`MAKER_KEYS`; ``mat``, ``chop`` required) Maker sets. Every combination within a
    protocol is a set."""
    from backtest.errors import did_you_mean
    from backtest.lending.platform_sets import comet_grid, maker_grid

    values: dict[str, dict[str, list[float]]] = {}
    for spec in specs:
        key, eq, text = spec.partition("=")
        prefix, dot, bare = key.partition(".")
        protocol, name = (prefix, bare) if dot else ("aave", key)
        keys = _PREFIXES.get(protocol)
        if not eq or keys is None or name not in keys:
            known = [f"{p}.{k}" if p != "aave" else k for p, ks in _PREFIXES.items() for k in ks]
            raise LendingParameterError(
                f"--grid {spec!r}: expected [PROTOCOL.]KEY=V1,V2 with KEY among "
                f"{', '.join(known)}{did_you_mean(key, known)}; e.g. --grid lt=0.75,0.8 or "
                "--grid comet.liquidate_cf=0.85,0.9 or --grid maker.mat=1.45,1.5")
        try:
            values.setdefault(protocol, {})[keys[name]] = [float(v) for v in text.split(",")
                                                           if v.strip()]
        except ValueError:
            raise LendingParameterError(f"--grid {spec!r}: expected comma-separated numbers, "
                                        "e.g. --grid bonus=1.05,1.075") from None
    sets: list[Any] = []
    if "aave" in values:
        missing = [k for k in ("lt", "bonus") if GRID_KEYS[k] not in values["aave"]]
        if missing:
            raise LendingParameterError(
                f"--grid: expected values for {', '.join(missing)}, found none; e.g. --grid "
                "lt=0.8,0.825 --grid bonus=1.05")
        sets += parameter_grid(**values["aave"])
    if "comet" in values:
        sets += comet_grid(values["comet"])
    if "maker" in values:
        sets += maker_grid(values["maker"])
    return sets
