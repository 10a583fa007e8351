"""Platform view for a lending protocol: parameter sets against a population and scenarios.

Each parameter set (liquidation threshold, bonus, rules version, and the population's borrow
cap as a share of collateral value) is applied to the same positions (debts fixed: the
borrowers do not change, the protocol's rules do) and run through each scenario for each
population seed. A scenario scales a stored crash path: ``P0 * (P / P0) ** depth`` (depth 1 is
the historical path, 2 the same moves twice as deep in log terms). The result is the bad-debt
distribution per parameter set (mean, 95th percentile, worst) and the set recommended by the
smallest 95th percentile (then the smallest mean, then the most liquidations avoided).

Source: the platform-view design of cascades.md §7.2 (parameter set x population x scenarios ->
bad-debt distribution, recommended parameters) on the simulation of
:mod:`backtest.lending.simulation`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
from backtest.platform.distribution import tail_summary

__all__ = ["ParameterSet", "bad_debt_distribution", "parse_parameter_set"]


@dataclass(frozen=True, slots=True)
class ParameterSet:
    """A protocol parameter set: ``liquidation_threshold``, ``liquidation_bonus`` (multiplier),
    ``version`` (close-factor and deficit rules) and ``borrow_cap``: the highest starting LTV
    the population may hold (positions above it are capped: their debt is cut to the cap)."""

    name: str
    liquidation_threshold: float
    liquidation_bonus: float
    version: str = "3.3"
    borrow_cap: float = 1.0

    def __post_init__(self) -> None:
        lt = fraction(f"parameter set {self.name!r} liquidation_threshold",
                      self.liquidation_threshold)
        bonus = positive(f"parameter set {self.name!r} liquidation_bonus", self.liquidation_bonus)
        fraction(f"parameter set {self.name!r} borrow_cap", self.borrow_cap)
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


def bad_debt_distribution(times: NDArray[np.float64], prices: NDArray[np.float64],
                          parameter_sets: Sequence[ParameterSet], *, depths: Sequence[float],
                          seeds: Sequence[int], positions: int = 10_000,
                          config: SimulationConfig = SimulationConfig(), depth_quote: float = 1e9,
                          health_factor_range: tuple[float, float] = (1.02, 2.5),
                          reference_threshold: float = 0.825) -> tuple[pl.DataFrame, pl.DataFrame]:
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

    Returns
    -------
    (runs, summary) : DataFrames
        One row per (set, depth, seed); one row per set with ``mean``, ``p95``, ``es95`` (tail figures of
        :mod:`backtest.platform.distribution`) and ``worst``
        bad debt and ``recommended`` (True for one set).
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
        for params in parameter_sets:
            cap = base.collateral * p0 * params.borrow_cap
            book = PositionBook(base.collateral, np.minimum(base.debt, cap),
                                params.liquidation_threshold, params.liquidation_bonus)
            run_config = _with_version(config, params.version)
            for depth in depths:
                path = p0 * (np.asarray(prices) / p0) ** depth
                result = simulate(book, times, path, ConstantProductPool.at_price(
                    p0, depth_quote=depth_quote), run_config)
                s = result.summary
                rows.append({"parameter_set": params.name, "liquidation_threshold":
                             params.liquidation_threshold, "liquidation_bonus":
                             params.liquidation_bonus, "borrow_cap": params.borrow_cap,
                             "depth": float(depth), "seed": int(seed),
                             "debt": float(book.debt.sum()), "debt_liquidated": s["debt_repaid"],
                             "liquidations": s["liquidations"],
                             "bad_debt": s["deficit"] + s["underwater_debt"],
                             "toxic_positions": s["toxic_positions"],
                             "path_low": float(path.min())})
    runs = pl.DataFrame(rows)
    summary = runs.group_by("parameter_set", maintain_order=True).agg(
        pl.col("liquidation_threshold", "liquidation_bonus", "borrow_cap").first(),
        pl.col("bad_debt").mean().alias("mean"),
        pl.col("bad_debt").max().alias("worst"),
        pl.col("debt_liquidated").mean().alias("mean_debt_liquidated"),
        pl.col("toxic_positions").mean().alias("mean_toxic_positions"))
    # the tail figures come from the one home shared with the perpetual platform view
    tails = [tail_summary(runs.filter(pl.col("parameter_set") == name)["bad_debt"].to_numpy(), (0.95,))
             for name in summary["parameter_set"].to_list()]
    summary = summary.with_columns(pl.Series("p95", [t["p95"] for t in tails]),
                                   pl.Series("es95", [t["es95"] for t in tails]))
    best = summary.sort(["p95", "mean", "mean_debt_liquidated"])["parameter_set"][0]
    return runs, summary.with_columns(recommended=pl.col("parameter_set") == best)


def _with_version(config: SimulationConfig, version: str) -> SimulationConfig:
    from dataclasses import replace

    return replace(config, version=version)
