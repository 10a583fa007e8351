"""Platform view for a lending protocol: parameter sets against a population and scenarios.

Each parameter set (liquidation threshold, bonus, rules version, and the population's borrow
cap as a share of collateral value) is applied to the same positions (debts fixed: the
borrowers do not change, the protocol's rules do) and run through each scenario for each
population seed. A scenario scales a stored crash path: ``P0 * (P / P0) ** depth`` (depth 1 is
the historical path, 2 the same moves twice as deep in log terms). The result is the bad-debt
distribution per parameter set (mean, 95th/99th percentiles, expected shortfalls, worst; the
tail figures of :mod:`backtest.platform.distribution`, shared with the perpetuals' platform
view) and the recommended set.

**Parameter search** (:func:`parameter_grid`): every combination of liquidation thresholds,
bonuses, close factors, per-position borrow caps (highest starting LTV), supply caps (total
collateral value the market accepts) and debt caps (total borrowing), skipping the
combinations Aave's configurator refuses (``LT x bonus > 1``).

**Caps and capital efficiency.** Positions arrive in population order; a supply cap admits
them while the collateral value admitted stays within it (the others are not in the market),
a debt cap lends while the debt admitted stays within it (later positions borrow nothing), the
borrow cap cuts each debt to ``cap x collateral value``. ``capital_efficiency`` = debt admitted
/ debt demanded (the share of the population's borrowing the set serves), averaged over seeds.

**Recommendation.** Among the sets with ``capital_efficiency >= min_efficiency`` (default
0.9), the smallest 95th percentile of bad debt, then the smallest 99 % expected shortfall, then
the smallest mean, then the highest efficiency; ``recommended`` is False everywhere when no
set meets the constraint (``meets_efficiency`` says which do).

Source: the platform-view design of cascades.md §7.2 (parameter set x population x scenarios ->
bad-debt distribution, recommended parameters) on the simulation of
:mod:`backtest.lending.simulation`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import polars as pl
from numpy.typing import NDArray

from backtest.lending.amm import ConstantProductPool
from backtest.lending.checks import fraction, positive
from backtest.lending.errors import LendingParameterError
from backtest.lending.simulation import (
    PositionBook,
    SimulationConfig,
    generate_positions,
    simulate,
)
from backtest.platform.distribution import LEVELS, tail_summary

__all__ = ["GRID_KEYS", "ParameterSet", "bad_debt_distribution", "parameter_grid", "parse_grid",
           "parse_parameter_set"]


@dataclass(frozen=True, slots=True)
class ParameterSet:
    """A protocol parameter set: ``liquidation_threshold``, ``liquidation_bonus`` (multiplier),
    ``version`` (close-factor and deficit rules) and ``borrow_cap``: the highest starting LTV
    the population may hold (positions above it are capped: their debt is cut to the cap),
    ``close_factor`` (share repayable per liquidation above HF 0.95), ``supply_cap`` and
    ``debt_cap`` (base currency, market totals; module docstring)."""

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


def _admitted(base: PositionBook, p0: float, params: ParameterSet) -> tuple[NDArray, NDArray]:
    """Collateral and debt the set admits (module docstring: caps in arrival order)."""
    value = base.collateral * p0
    coll = np.where(np.cumsum(value) <= params.supply_cap, base.collateral, 0.0)
    debt = np.where(coll > 0, np.minimum(base.debt, coll * p0 * params.borrow_cap), 0.0)
    debt = np.where(np.cumsum(debt) <= params.debt_cap, debt, 0.0)
    return coll, debt


def bad_debt_distribution(times: NDArray[np.float64], prices: NDArray[np.float64],
                          parameter_sets: Sequence[ParameterSet], *, depths: Sequence[float],
                          seeds: Sequence[int], positions: int = 10_000,
                          config: SimulationConfig = SimulationConfig(), depth_quote: float = 1e9,
                          health_factor_range: tuple[float, float] = (1.02, 2.5),
                          reference_threshold: float = 0.825, min_efficiency: float = 0.9
                          ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Run every parameter set through every scenario depth and population seed.

    Parameters
    ----------
    times, prices : arrays
        The stored path (seconds, price), e.g. from :func:`backtest.lending.paths.candle_path`.
    parameter_sets : sequence of ParameterSet
    depths : sequence of float
        Scenario depths (1 = the path as stored).
    seeds : sequence of int
        Population seeds; each draws ``positions`` positions at the path's first price with
        health factors in ``health_factor_range`` under ``reference_threshold`` (this fixes the
        debts; each set then applies its own threshold and bonus).
    config : SimulationConfig
        Oracle and liquidator agents (``version`` is taken from each parameter set).
    depth_quote : float
        Quote reserve of the pool liquidators sell into.
    min_efficiency : float
        The capital-efficiency constraint of the recommendation (module docstring).

    Returns
    -------
    (runs, summary) : DataFrames
        One row per (set, depth, seed); one row per set with ``mean``, ``p95``, ``p99``,
        ``es95``, ``es99`` (tail figures of :mod:`backtest.platform.distribution`) and
        ``worst`` bad debt, ``capital_efficiency``, ``meets_efficiency`` and ``recommended``
        (True for at most one set).
    """
    if not parameter_sets:
        raise LendingParameterError("platform: expected at least one parameter set, found none; "
                                    "pass --platform NAME:LT:BONUS (repeat)")
    names = [p.name for p in parameter_sets]
    if len(set(names)) != len(names):
        raise LendingParameterError(f"platform: expected distinct parameter-set names, found {names}")
    for d in depths:
        positive("scenario depth", d)
    p0 = float(prices[0])
    rows = []
    for seed in seeds:
        base = generate_positions(positions, seed=seed, price=p0,
                                  liquidation_threshold=reference_threshold,
                                  health_factor_range=health_factor_range)
        demand = float(base.debt.sum())
        for params in parameter_sets:
            coll, debt = _admitted(base, p0, params)
            book = PositionBook(coll, debt, params.liquidation_threshold,
                                params.liquidation_bonus)
            run_config = replace(config, version=params.version,
                                 close_factor=params.close_factor)
            for depth in depths:
                path = p0 * (np.asarray(prices) / p0) ** depth
                result = simulate(book, times, path, ConstantProductPool.at_price(
                    p0, depth_quote=depth_quote), run_config)
                s = result.summary
                rows.append({"parameter_set": params.name, "liquidation_threshold":
                             params.liquidation_threshold, "liquidation_bonus":
                             params.liquidation_bonus, "borrow_cap": params.borrow_cap,
                             "close_factor": params.close_factor,
                             "supply_cap": params.supply_cap, "debt_cap": params.debt_cap,
                             "depth": float(depth), "seed": int(seed),
                             "capital_efficiency": float(debt.sum()) / demand if demand else 1.0,
                             "debt": float(book.debt.sum()), "debt_liquidated": s["debt_repaid"],
                             "liquidations": s["liquidations"],
                             "bad_debt": s["deficit"] + s["underwater_debt"],
                             "toxic_positions": s["toxic_positions"],
                             "path_low": float(path.min())})
    runs = pl.DataFrame(rows)
    summary = runs.group_by("parameter_set", maintain_order=True).agg(
        pl.col("liquidation_threshold", "liquidation_bonus", "borrow_cap", "close_factor",
               "supply_cap", "debt_cap").first(),
        pl.col("capital_efficiency").mean(),
        pl.col("bad_debt").mean().alias("mean"),
        pl.col("bad_debt").max().alias("worst"),
        pl.col("debt_liquidated").mean().alias("mean_debt_liquidated"),
        pl.col("toxic_positions").mean().alias("mean_toxic_positions"))
    # the tail figures come from the one home shared with the perpetual platform view
    tails = [tail_summary(runs.filter(pl.col("parameter_set") == name)["bad_debt"].to_numpy(),
                          LEVELS) for name in summary["parameter_set"].to_list()]
    summary = summary.with_columns(*[pl.Series(key, [t[key] for t in tails])
                                     for key in ("p95", "p99", "es95", "es99")]).with_columns(
        meets_efficiency=pl.col("capital_efficiency") >= fraction("min_efficiency",
                                                                  min_efficiency) - 1e-12)
    eligible = summary.filter("meets_efficiency").sort(
        ["p95", "es99", "mean", "capital_efficiency"], descending=[False, False, False, True])
    best = eligible["parameter_set"][0] if eligible.height else None
    return runs, summary.with_columns(
        recommended=(pl.col("parameter_set") == pl.lit(best)).fill_null(False))


#: ``--grid`` keys and the :func:`parameter_grid` argument each fills.
GRID_KEYS = {"lt": "thresholds", "bonus": "bonuses", "close_factor": "close_factors",
             "borrow_cap": "borrow_caps", "supply_cap": "supply_caps", "debt_cap": "debt_caps"}


def parse_grid(specs: Sequence[str]) -> list[ParameterSet]:
    """``KEY=V1,V2,...`` terms (keys of :data:`GRID_KEYS`; ``lt`` and ``bonus`` required) as
    the sets of :func:`parameter_grid`."""
    from backtest.errors import did_you_mean

    values: dict[str, list[float]] = {}
    for spec in specs:
        key, eq, text = spec.partition("=")
        if not eq or key not in GRID_KEYS:
            raise LendingParameterError(
                f"--grid {spec!r}: expected KEY=V1,V2 with KEY among {', '.join(GRID_KEYS)}"
                f"{did_you_mean(key, GRID_KEYS)}; e.g. --grid lt=0.75,0.8,0.825")
        try:
            values[GRID_KEYS[key]] = [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise LendingParameterError(f"--grid {spec!r}: expected comma-separated numbers, "
                                        "e.g. --grid bonus=1.05,1.075") from None
    missing = [k for k in ("lt", "bonus") if GRID_KEYS[k] not in values]
    if missing:
        raise LendingParameterError(f"--grid: expected values for {', '.join(missing)}, found "
                                    "none; e.g. --grid lt=0.8,0.825 --grid bonus=1.05")
    return parameter_grid(**values)
