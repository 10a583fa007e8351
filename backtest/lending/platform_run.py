"""Run lending parameter sets (Aave v3, Compound v3, Maker) against populations and a scenario
set on the sweep executor, and summarise the bad-debt distributions.

**Scenarios** are the perpetuals' platform scenarios (:mod:`backtest.platform.scenarios`):
stored windows, shocks and Monte Carlo paths of the risk lab's return models
(:func:`backtest.cascade.paths.montecarlo_paths`), each at every liquidity scale
(``depth_scale`` multiplies the quote depth of the pool liquidators sell into). A stored window
may also be replayed with its log moves scaled (``move_depth``: ``P0 (P / P0) ** d``, 2 = the
same moves twice as deep). A scenario is small and picklable and rebuilds its path where it
runs, so a result depends on the scenario alone, never on the worker or the order.

**Populations**: for each seed, ``positions`` positions drawn at the path's first price
(:func:`backtest.lending.simulation.generate_positions`: value log-normal, health factor
uniform in ``health_factor_range`` over the protocol's reference threshold,
:data:`REFERENCES`), so the borrowing *demand* is fixed; each set admits what its borrowing
limits allow (``admit``) and runs its rules (``run``: :mod:`backtest.lending.platform_sets`).
``capital_efficiency`` = debt admitted / debt demanded.

**Executor**: :func:`backtest.risk.executor.map_chunks` (this process, the local process pool
or Ray), scenarios in chunks; rows come back in scenario order whatever the backend.

**Summary** per (protocol, set): mean, 95th/99th percentiles, 95 %/99 % expected shortfalls
and worst bad debt over every (scenario, seed) — the tail functions of
:mod:`backtest.platform.distribution`, shared with the perpetuals' view — and the same figures
per scenario kind (``by_kind``). **Recommendation, per protocol**: among the sets with
``capital_efficiency >= min_efficiency``, the smallest p95, then the smallest ES99, the
smallest mean, the highest efficiency; none when no set of the protocol qualifies.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from backtest.lending.checks import fraction, positive
from backtest.lending.errors import LendingParameterError
from backtest.platform.distribution import LEVELS, tail_summary

__all__ = ["REFERENCES", "LendingPlatformResult", "PlatformSetup", "lending_scenarios",
           "run_lending_platform", "summarize"]

#: Reference threshold per protocol the populations' health factors are drawn against: Aave v3
#: WETH LT 82.5 %, Comet WETH liquidateCF 90 %, Maker ETH-A ``1 / mat`` (150 %).
REFERENCES = {"aave_v3": 0.825, "compound_v3": 0.90, "maker": 1 / 1.5}


@dataclass(frozen=True)
class PlatformSetup:
    """Everything but the parameter sets and the scenarios.

    Attributes
    ----------
    symbol : str
        The collateral's symbol (the key of each scenario's paths).
    context : RunContext
        Agents, oracle, venue depth and Maker keepers
        (:class:`backtest.lending.platform_sets.RunContext`).
    positions, seeds : int, tuple of int
        Population size and seeds.
    health_factor_range : (float, float)
        Starting health factors of the drawn positions.
    references : dict
        Reference threshold per protocol (:data:`REFERENCES`).
    scenario : ScenarioSetup or None
        Start price, length, step and model of generated scenarios (shocks, Monte Carlo).
    move_depths : dict
        ``scenario_id -> move depth`` of stored windows replayed deeper (1 elsewhere).
    """

    symbol: str
    context: Any
    positions: int = 10_000
    seeds: tuple[int, ...] = (0,)
    health_factor_range: tuple[float, float] = (1.02, 2.5)
    references: dict[str, float] = field(default_factory=lambda: dict(REFERENCES))
    scenario: Any = None
    move_depths: dict[int, float] = field(default_factory=dict)


def lending_scenarios(*, symbol: str, times: Any = None, prices: Any = None,
                      move_depths: Sequence[float] = (1.0,), shocks: Sequence[float] = (),
                      montecarlo: int = 0, mc_seed: int = 0,
                      depth_scales: Sequence[float] = (1.0,)) -> tuple[list[Any], dict[int, float]]:
    """The scenario set: the stored path ``(times s, prices)`` at each move depth, then the
    shocks and Monte Carlo paths of :func:`backtest.platform.scenarios.build_scenarios`, each
    at every depth scale, numbered from 0. Returns ``(scenarios, move depth per id)``."""
    from backtest.cascade.paths import ExogenousPath
    from backtest.platform.params import PlatformError
    from backtest.platform.scenarios import build_scenarios

    windows: dict[str, Any] = {}
    depth_of: dict[str, float] = {}
    if times is not None:
        t, p = np.asarray(times, dtype=np.float64), np.asarray(prices, dtype=np.float64)
        ts = np.round(t * 1000).astype(np.int64)
        for d in move_depths:
            positive("scenario move depth", d)
            name = f"window x{d:g}"
            windows[name] = {symbol: ExogenousPath(ts, p[0] * (p / p[0]) ** d)}
            depth_of[name] = float(d)
    try:
        built = build_scenarios(windows=windows, shocks=shocks, montecarlo=montecarlo,
                                mc_seed=mc_seed, depth_scales=depth_scales)
    except PlatformError as exc:
        raise LendingParameterError(f"lending platform: {exc}") from None
    moves = {}
    for sc in built:
        base = sc.name.split(" depth x")[0]
        moves[sc.scenario_id] = depth_of.get(base, 1.0) if sc.kind == "window" else 1.0
    return built, moves


def _run_chunk(sets: Sequence[Any], setup: PlatformSetup, chunk: Sequence[Any],
               warm: bool = False) -> list[dict[str, Any]]:
    """Every set on every seed of each scenario of ``chunk``: one row each (``warm`` is the
    executor's flag)."""
    from backtest.lending.simulation import generate_positions

    rows = []
    for scenario in chunk:
        path = scenario.build_paths(setup.scenario)[setup.symbol]
        times, prices = path.ts / 1000.0, np.asarray(path.price, dtype=np.float64)
        p0 = float(prices[0])
        for seed in setup.seeds:
            drawn: dict[float, Any] = {}
            for params in sets:
                ref = setup.references[params.protocol]
                if ref not in drawn:
                    drawn[ref] = generate_positions(setup.positions, seed=seed, price=p0,
                                                    liquidation_threshold=ref,
                                                    health_factor_range=setup.health_factor_range)
                base = drawn[ref]
                demand = float(base.debt.sum())
                coll, debt = params.admit(base.collateral, base.debt, p0)
                cpu = time.process_time()
                outcome = params.run(coll, debt, times, prices, setup.context,
                                     scenario.depth_scale)
                rows.append({"protocol": params.protocol, "parameter_set": params.name,
                             **params.columns(), "scenario_id": scenario.scenario_id,
                             "kind": scenario.kind, "scenario": scenario.name,
                             "move_depth": setup.move_depths.get(scenario.scenario_id, 1.0),
                             "depth_scale": scenario.depth_scale, "seed": int(seed),
                             "capital_efficiency": float(debt.sum()) / demand if demand else 1.0,
                             "debt": float(debt.sum()), **outcome,
                             "path_low": float(prices.min()),
                             "cpu_s": time.process_time() - cpu})
    return rows


@dataclass(frozen=True)
class LendingPlatformResult:
    """``runs`` (one row per set, scenario and seed), ``summary`` (per protocol and set),
    ``by_kind`` (per protocol, set and scenario kind), ``scenarios`` and ``timing``."""

    runs: pl.DataFrame
    summary: pl.DataFrame
    by_kind: pl.DataFrame
    scenarios: pl.DataFrame
    timing: dict[str, Any]

    def tables(self) -> dict[str, pl.DataFrame]:
        """The tables as written: ``platform_runs``, ``platform_summary``,
        ``platform_by_kind``, ``platform_scenarios``."""
        return {"platform_runs": self.runs, "platform_summary": self.summary,
                "platform_by_kind": self.by_kind, "platform_scenarios": self.scenarios}


def _tails(runs: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """mean, p95, p99, es95, es99 and worst bad debt per ``keys`` group (shared tail rules)."""
    rows = []
    for key, group in runs.group_by(keys, maintain_order=True):
        t = tail_summary(group["bad_debt"].to_numpy(), LEVELS)
        rows.append({**dict(zip(keys, key)), "outcomes": group.height, "mean": t["mean"],
                     "p95": t["p95"], "p99": t["p99"], "es95": t["es95"], "es99": t["es99"],
                     "worst": t["max"]})
    return pl.DataFrame(rows)


def summarize(runs: pl.DataFrame, parameter_columns: Sequence[str], *,
              min_efficiency: float = 0.9) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(summary, by_kind)`` of ``runs`` (module docstring: tails and the recommendation)."""
    floor = fraction("min_efficiency", min_efficiency) - 1e-12
    keys = ["protocol", "parameter_set"]
    present = [c for c in parameter_columns if c in runs.columns]
    means = runs.group_by(keys, maintain_order=True).agg(
        pl.col(*present).first(), pl.col("capital_efficiency").mean(),
        pl.col("debt_liquidated").mean().alias("mean_debt_liquidated"),
        pl.col("toxic_positions").mean().alias("mean_toxic_positions"))
    summary = means.join(_tails(runs, keys), on=keys, how="left", maintain_order="left") \
        .with_columns(meets_efficiency=pl.col("capital_efficiency") >= floor)
    best = (summary.filter("meets_efficiency")
            .sort(["p95", "es99", "mean", "capital_efficiency"],
                  descending=[False, False, False, True], maintain_order=True)   # ties: 1st set
            .group_by("protocol", maintain_order=True).first()
            .select("protocol", pl.col("parameter_set").alias("_best")))
    summary = summary.join(best, on="protocol", how="left", maintain_order="left").with_columns(
        recommended=(pl.col("parameter_set") == pl.col("_best")).fill_null(False)).drop("_best")
    return summary, _tails(runs, [*keys, "kind"])


def run_lending_platform(sets: Sequence[Any], scenarios: Sequence[Any], setup: PlatformSetup, *,
                         workers: int | None = 1, backend: str = "local",
                         ray_address: str | None = None, chunk_size: int | None = None,
                         min_efficiency: float = 0.9) -> LendingPlatformResult:
    """Run every set on every scenario and seed (module docstring).

    Parameters
    ----------
    sets : sequence
        :class:`backtest.lending.platform.ParameterSet`, :class:`~backtest.lending.
        platform_sets.CometSet` or :class:`~backtest.lending.platform_sets.MakerSet`, distinct
        names.
    scenarios : sequence of backtest.platform.scenarios.Scenario
        From :func:`lending_scenarios`.
    workers, backend, ray_address : see :func:`backtest.risk.executor.map_chunks`
        ``workers=1`` runs serially here; ``None`` uses every core.
    chunk_size : int, optional
        Scenarios per task (default: about 4 tasks per worker).
    """
    import os

    from backtest.risk.executor import map_chunks

    if not sets:
        raise LendingParameterError("platform: expected at least one parameter set, found none; "
                                    "pass --platform NAME:LT:BONUS or --grid KEY=V1,V2")
    names = [p.name for p in sets]
    if len(set(names)) != len(names):
        raise LendingParameterError(f"platform: expected distinct parameter-set names, found "
                                    f"{names}; rename the duplicates")
    if not scenarios:
        raise LendingParameterError("platform: no scenario to run; pass a window, --shock or --mc")
    generated = [sc for sc in scenarios if sc.kind != "window"]
    if generated and setup.scenario is None:
        raise LendingParameterError("platform: shocks and Monte Carlo scenarios need a "
                                    "ScenarioSetup (start price, length, step)")
    if any(sc.kind == "montecarlo" for sc in generated) and setup.scenario.model is None:
        raise LendingParameterError("platform: Monte Carlo scenarios need a return model "
                                    "(ScenarioSetup.model), e.g. --mc-sigma 0.004")
    if setup.positions < 1 or not setup.seeds:
        raise LendingParameterError(f"platform: expected >= 1 position and >= 1 seed, found "
                                    f"{setup.positions} and {list(setup.seeds)}")
    missing = sorted({p.protocol for p in sets} - set(setup.references))
    if missing:
        raise LendingParameterError(f"platform: no reference threshold for {', '.join(missing)}")
    n_workers = workers or (os.cpu_count() or 1)
    size = chunk_size or max(1, math.ceil(len(scenarios) / (n_workers * 4)))
    chunks = [list(scenarios[i:i + size]) for i in range(0, len(scenarios), size)]
    wall, cpu = time.perf_counter(), time.process_time()
    parts = map_chunks(_run_chunk, (list(sets), setup), chunks, workers=workers,
                       backend=backend, ray_address=ray_address)
    rows = [row for part in parts for row in part]
    timing = {"wall_s": time.perf_counter() - wall, "parent_cpu_s": time.process_time() - cpu,
              "run_cpu_s": float(sum(r["cpu_s"] for r in rows)), "workers": n_workers,
              "backend": "ray" if ray_address else backend, "runs": len(rows)}
    runs = pl.DataFrame(rows, infer_schema_length=None)
    columns = list(dict.fromkeys(c for p in sets for c in p.columns()))
    summary, by_kind = summarize(runs, columns, min_efficiency=min_efficiency)
    table = pl.DataFrame([{"scenario_id": sc.scenario_id, "kind": sc.kind, "scenario": sc.name,
                           "depth_scale": sc.depth_scale, "drop": sc.drop, "seed": sc.seed,
                           "move_depth": setup.move_depths.get(sc.scenario_id, 1.0)}
                          for sc in scenarios], infer_schema_length=None)
    return LendingPlatformResult(runs, summary, by_kind, table, timing)

