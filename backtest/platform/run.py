"""Run a venue's parameters against a population and a scenario set, in parallel.

Each scenario is one cascade (:func:`backtest.cascade.engine.run_cascade`) of the same
population (leverage capped at the venue's maximum) under the venue's rules; the scenarios run
on the sweep executor (:func:`backtest.risk.sweep.map_chunks`: this process, the local process
pool, or Ray). Per scenario one row of platform figures (``scenarios`` table) and one row per
symbol (``scenario_symbols``); :mod:`backtest.platform.results` aggregates them.

Figures per scenario (quote currency):

* ``bad_debt`` — loss neither margin, fund nor ADL paid;
* ``fund_drawdown`` — start balance minus the lowest end-of-step balance (0 when it never fell below the start);
* ``fund_needed`` — the largest cumulative net draw of the liquidation fills on the fund (the
  fund that would have met every deficit without ADL on the same fills);
* ``adl`` (0/1) and ``adl_notional``; ``liquidated_value`` (notional at the trigger mark);
* ``fee_revenue`` — what the fund collected from fills better than bankruptcy: the liquidated
  traders' remaining margin, Binance's clearance (margin_rules.md §2);
* ``conservation_residual`` — liquidation loss minus (margin + fund + ADL + bad debt), from
  the cascade summary; ~0 (tested to 1e-9 relative per scenario).
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from backtest.platform.params import PlatformVenue
from backtest.platform.scenarios import Scenario, ScenarioSetup

__all__ = ["ScenarioOutcome", "run_platform", "run_scenario"]

ScenarioOutcome = tuple[dict[str, Any], list[dict[str, Any]]]


def run_scenario(population, venue: PlatformVenue, setup: ScenarioSetup,  # noqa: ANN001
                 scenario: Scenario) -> ScenarioOutcome:
    """One cascade: the scenario's row and its per-symbol rows."""
    from backtest.cascade.engine import CascadeConfig, run_cascade
    from backtest.cascade.liquidity import default_liquidity

    paths = scenario.build_paths(setup)
    liquidity = {}
    for symbol in paths:
        model = default_liquidity(symbol)
        liquidity[symbol] = replace(model, depth_at_ref=model.depth_at_ref * scenario.depth_scale)
    config = CascadeConfig(venue=venue.venue, adl_rule=venue.adl_rule, insurance_fund=venue.insurance_fund,
                           liquidity=liquidity, disposal_cap=venue.disposal_cap, seed=scenario.seed or 0,
                           tiers=dict(venue.tiers))
    result = run_cascade(population, paths, config)
    s, fills, prices = result.summary, result.tables["fills"], result.tables["prices"]
    deltas = fills["insurance_fund_delta"].to_numpy() if fills.height else np.zeros(0)
    book = fills.filter(pl.col("kind") == "book")
    loss = s["liquidation_loss"]
    row = {"scenario_id": scenario.scenario_id, "kind": scenario.kind, "name": scenario.name,
           "depth_scale": scenario.depth_scale, "drop": scenario.drop, "seed": scenario.seed,
           "liquidated_positions": s["liquidated_positions"], "liquidated_value": s["liquidated_notional"],
           "liquidation_loss": loss, "margin_lost": s["margin_lost"],
           "fund_drawdown": max(0.0, s["insurance_fund_start"] - s["insurance_fund_min"]),
           "fund_paid": s["insurance_fund_paid"],
           "fund_needed": float(max(0.0, -np.cumsum(deltas).min())) if len(deltas) else 0.0,
           "adl": int(s["adl_notional"] > 0), "adl_notional": s["adl_notional"], "adl_paid": s["adl_paid"],
           "adl_overshoot": s["adl_overshoot"], "bad_debt": s["bad_debt"],
           "fee_revenue": float(book["insurance_fund_delta"].clip(lower_bound=0).sum()) if book.height else 0.0,
           "conservation_residual": s["conservation_residual"],
           "amplification": max([v for v in s["amplification"].values() if v is not None], default=None),
           "max_loop_gain": s["max_loop_gain"], "runaway": s["runaway"],
           "time_to_first_adl_s": s["time_to_first_adl_s"]}
    symbols = []
    positions = result.tables["liquidated_positions"]
    for symbol, path in sorted(paths.items()):
        mine = prices.filter(pl.col("symbol") == symbol)
        last = mine["last"].to_numpy()
        liq = positions.filter(pl.col("symbol") == symbol)
        symbols.append({"scenario_id": scenario.scenario_id, "symbol": symbol,
                        "exogenous_low": float(path.price.min() / path.price[0] - 1.0),
                        "last_low": float(last.min() / path.price[0] - 1.0) if len(last) else 0.0,
                        "sigma_1s": _busiest_rms(mine["index"].to_numpy(), path.step_s),
                        "min_depth_multiplier": float(mine["depth_multiplier"].min()) * scenario.depth_scale
                        if mine.height else scenario.depth_scale,
                        "liquidated_value": float((liq["qty"] * liq["mark_price"]).sum()) if liq.height else 0.0,
                        "open_interest": float((population.qty[population.symbol == symbol]
                                                * path.price[0]).sum())})
    return row, symbols


#: Window over which the disposal drift is measured, seconds (the busiest minute of a scenario).
DRIFT_WINDOW_S = 60.0


def _busiest_rms(index: np.ndarray, step_s: float) -> float:
    """Root mean square of the 1-s log returns of the index over its busiest ``DRIFT_WINDOW_S``.

    The index is the exogenous path plus the cascade's permanent impact: the price that drifts
    while the liquidation engine disposes. The mean square includes the drift of a crash (a
    10 % fall over three minutes is a drift, not noise); temporary impact (last price) is the
    slippage term of the brackets and is left out here so it is not counted twice.
    """
    if len(index) < 3:
        return 0.0
    r2 = np.diff(np.log(index)) ** 2 / step_s
    w = max(1, min(len(r2), int(round(DRIFT_WINDOW_S / step_s))))
    sums = np.convolve(r2, np.ones(w), mode="valid")
    return float(math.sqrt(sums.max() / w))


def _run_chunk(population, venue: PlatformVenue, setup: ScenarioSetup,  # noqa: ANN001
               chunk: Sequence[Scenario], warm: bool = False) -> list[tuple[ScenarioOutcome, float]]:
    """Scenarios of one task with each one's CPU seconds (``warm`` is the executor's flag)."""
    out = []
    for scenario in chunk:
        t0 = time.process_time()
        outcome = run_scenario(population, venue, setup, scenario)
        out.append((outcome, time.process_time() - t0))
    return out


def run_platform(population, venue: PlatformVenue, scenarios: Sequence[Scenario], setup: ScenarioSetup, *,  # noqa: ANN001
                 workers: int | None = None, backend: str = "local", ray_address: str | None = None,
                 chunk_size: int | None = None, progress: bool = False):  # noqa: ANN201 - PlatformResult
    """Run every scenario; return a :class:`backtest.platform.results.PlatformResult`.

    Parameters
    ----------
    population : backtest.cascade.population.Population
        Positions (leverage above ``venue.max_leverage`` is capped first).
    venue : PlatformVenue
    scenarios : sequence of Scenario
        From :func:`backtest.platform.scenarios.build_scenarios`.
    setup : ScenarioSetup
    workers, backend, ray_address : see :func:`backtest.risk.sweep.map_chunks`
        ``workers=1`` runs serially in this process.
    chunk_size : int, optional
        Scenarios per task (default: about 4 tasks per worker).
    progress : bool
        Show a progress bar.
    """
    import os

    from backtest.platform.params import PlatformError
    from backtest.platform.results import PlatformResult
    from backtest.risk.sweep import map_chunks

    if not scenarios:
        raise PlatformError("platform: no scenario to run; pass --window, --shock or --mc")
    if setup.model is None and any(sc.kind == "montecarlo" for sc in scenarios):
        raise PlatformError("platform: Monte Carlo scenarios need a return model (ScenarioSetup.model); "
                            "pass --mc-model gbm|garch|jump|bootstrap")
    missing = [s for s in population.symbols() if s not in setup.start_prices
               and any(sc.kind != "window" for sc in scenarios)]
    if missing:
        raise PlatformError(f"platform: no start price for {', '.join(missing)}; generated scenarios need one "
                            f"per population symbol (--price {missing[0]}=PRICE)")
    capped = venue.cap_leverage(population)
    n_workers = workers or (os.cpu_count() or 1)
    size = chunk_size or max(1, math.ceil(len(scenarios) / (n_workers * 4)))
    chunks = [list(scenarios[i:i + size]) for i in range(0, len(scenarios), size)]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(scenarios), desc="platform scenarios", unit="scenario", disable=not progress)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        parts = map_chunks(_run_chunk, (capped, venue, setup), chunks, workers=workers, backend=backend,
                           ray_address=ray_address, on_done=lambda chunk: bar.update(len(chunk)))
    finally:
        bar.close()
    rows, symbol_rows, cpu = [], [], 0.0
    for part in parts:
        for (row, per_symbol), seconds in part:
            rows.append(row)
            symbol_rows.extend(per_symbol)
            cpu += seconds
    timing = {"wall_s": time.perf_counter() - wall0, "scenario_cpu_s": cpu,
              "parent_cpu_s": time.process_time() - cpu0, "workers": n_workers,
              "backend": "ray" if ray_address else backend}
    return PlatformResult.build(rows, symbol_rows, capped, venue, scenarios, setup, timing)
