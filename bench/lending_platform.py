"""Lending platform view and oracle lag: figures printed, not a timed test.

    .venv/bin/python bench/lending_platform.py [--positions 2000] [--mc 100] [--seeds 2]
        [--workers 2] [--oracle-paths 20000]

1. **Platform view** (issue 13): Aave v3, Compound v3 and Maker parameter grids (4 + 4 + 4
   sets) against populations of ``--positions`` drawn with ``--seeds`` seeds, on the stored ETH
   1h path of 2020-03-12/13 (``$MARGINCALL_SHARED`` or ../shared) at move depths 1, 1.5 and
   2, two shocks (-20 %, -40 % over an hour) and ``--mc`` Monte Carlo paths (GBM, 0.4 % per
   minute, 24 h), 5-minute steps, on ``--workers`` local processes. Prints wall and CPU
   seconds (the parent's and the sum inside the runs), the load average, and the recommended
   set per protocol.
2. **Oracle lag in the loop's Monte Carlo**: a 75 % LTV Aave loop (barrier -9.5 %) on
   ``--oracle-paths`` GBM paths (2 % per hour, 24 one-hour steps) as the market shows them,
   through a Chainlink feed (1 h heartbeat, 0.5 % deviation) and through Maker's OSM (1 h):
   the liquidation probability and the largest LTV with at most 1 % on each.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import polars as pl


def _shared() -> Path:
    return Path(os.environ.get("MARGINCALL_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))


def _platform(args: argparse.Namespace) -> None:
    from backtest.lending.auctions import Keeper
    from backtest.lending.paths import candle_path
    from backtest.lending.platform import parse_grid
    from backtest.lending.platform_run import PlatformSetup, lending_scenarios, run_lending_platform
    from backtest.lending.platform_sets import RunContext
    from backtest.lending.simulation import SimulationConfig
    from backtest.platform.scenarios import ScenarioSetup
    from backtest.risk.paths import GBM

    path = _shared() / "data/klines/long/binance_um_ETHUSDT_1h_2019-11-27_2026-05-17.parquet"
    start, end = (pl.lit(d).str.to_datetime(time_zone="UTC").dt.cast_time_unit("ms")
                  for d in ("2020-03-12", "2020-03-14"))
    bars = pl.read_parquet(path).select(pl.col("open_time").alias("ts"), "open", "high", "low",
                                        "close").filter((pl.col("ts") >= start)
                                                        & (pl.col("ts") < end)).sort("ts")
    times, prices = candle_path(bars, step=300.0)
    sets = parse_grid(["lt=0.8,0.825", "bonus=1.05,1.075",
                       "comet.borrow_cf=0.8,0.85", "comet.liquidate_cf=0.9",
                       "comet.liquidation_factor=0.93,0.95",
                       "maker.mat=1.3,1.5", "maker.chop=1.13", "maker.tip=0,300"])
    scenarios, moves = lending_scenarios(symbol="ETH", times=times, prices=prices,
                                         move_depths=[1.0, 1.5, 2.0], shocks=[0.2, 0.4],
                                         montecarlo=args.mc, mc_seed=0)
    generated = ScenarioSetup({"ETH": float(prices[0])}, seconds=86_400,
                              start_ms=int(times[0] * 1000), step_s=300.0, shock_start_s=3600,
                              shock_seconds=3600, model=GBM(0.004, step_ms=60_000))
    ctx = RunContext(SimulationConfig(gas_cost=20.0), depth_quote=5e7,
                     keepers=(Keeper("keeper", float("inf"), 0.05),))
    setup = PlatformSetup("ETH", ctx, positions=args.positions, seeds=tuple(range(args.seeds)),
                          scenario=generated, move_depths=moves)
    load0 = os.getloadavg()[0]
    result = run_lending_platform(sets, scenarios, setup, workers=args.workers)
    t = result.timing
    print(f"platform: {len(scenarios)} scenarios x {args.seeds} seeds x {len(sets)} sets "
          f"= {t['runs']:,} runs of {args.positions:,} positions (5-minute steps, windows 48 h, "
          f"shocks/MC 24 h)")
    print(f"  wall {t['wall_s']:.1f} s  CPU in runs {t['run_cpu_s']:.1f} s  parent CPU "
          f"{t['parent_cpu_s']:.1f} s  on {t['workers']} {t['backend']} worker(s); load average "
          f"{load0:.1f} before, {os.getloadavg()[0]:.1f} after")
    cpu = result.runs.group_by("protocol", maintain_order=True).agg(pl.col("cpu_s").sum())
    print("  CPU per protocol: " + ", ".join(f"{p} {c:.1f} s" for p, c in cpu.iter_rows()))
    for row in result.summary.filter("recommended").iter_rows(named=True):
        print(f"  recommended {row['protocol']}: {row['parameter_set']}  p95 {row['p95']:,.0f}  "
              f"ES99 {row['es99']:,.0f}  worst {row['worst']:,.0f}  efficiency "
              f"{row['capital_efficiency']:.1%}")


def _oracle_lag(args: argparse.Namespace) -> None:
    from backtest.lending.position import (LoopedLong, OracleRule, mc_liquidation, oracle_passages,
                                           probability_survival_ltv)
    from backtest.risk.paths import GBM

    model, loop = GBM(0.02, step_ms=3_600_000), LoopedLong(0.75)
    print(f"oracle lag: {args.oracle_paths:,} GBM paths (2 %/h, 24 h), a {loop.ltv:.0%} LTV loop "
          f"(liquidation price {loop.liquidation_price(2000.0):,.0f} from 2,000)")
    for kind in ("chainlink", "osm"):
        cpu, wall = time.process_time(), time.perf_counter()
        market, served = oracle_passages(model, oracle=OracleRule(kind), n_paths=args.oracle_paths,
                                         n_steps=24, s0=2000.0, seed=5)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        for label, passage in (("market", market), (kind, served)):
            m = mc_liquidation(loop, passage, entry_price=2000.0, horizon_seconds=86_400)
            solved = probability_survival_ltv(loop, passage, entry_price=2000.0,
                                              horizon_seconds=86_400, target=0.01)
            print(f"  {label:>9}: P(liquidated in 24 h) {m['probability']:.4f} "
                  f"[{m['ci_low']:.4f}, {m['ci_high']:.4f}]  largest LTV at <= 1 %: "
                  f"{solved['ltv']:.1%}")
        print(f"  ({kind} paths: {wall:.2f} s wall, {cpu:.2f} s CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=2_000)
    parser.add_argument("--mc", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--oracle-paths", type=int, default=20_000)
    args = parser.parse_args()
    _oracle_lag(args)
    _platform(args)


if __name__ == "__main__":
    main()
