"""Platform view speed: 1,000 scenarios on 2 cores (issue 12 target: <= 2 minutes). Prints the
figures; not a timed test. (Not ``bench/platform.py``: a script's folder comes first on
``sys.path``, so that name would shadow the standard library's ``platform`` for every bench.)

    .venv/bin/python bench/platform_view.py [--scenarios 1000] [--positions 5000] [--workers 2]
        [--seconds 720]

Population: synthetic (seeded, Binance-2019 leverage prior) over BTC and ETH. Scenarios: Monte
Carlo GBM paths (0.4 % per minute) and shocks (-2 % .. -25 %) half each, at depth scales 1 and
0.5, each 12 minutes at 1 s steps. Prints wall seconds, CPU seconds (this process, the workers'
CPU summed inside the scenarios, and the children's from ``resource``) and the load average.
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from backtest.cascade.population import synthetic_population
from backtest.platform.params import default_venue
from backtest.platform.run import run_platform
from backtest.platform.scenarios import ScenarioSetup, build_scenarios
from backtest.risk.paths import GBM

PRICES = {"BTC/USDT:USDT": 112_000.0, "ETH/USDT:USDT": 4_300.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=1000)
    parser.add_argument("--positions", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=720)
    args = parser.parse_args()
    population = synthetic_population(args.positions, seed=0, prices=PRICES, prior="binance_2019")
    base = max(1, args.scenarios // 2)  # every base scenario runs at depth x1 and x0.5
    shocks = np.linspace(0.02, 0.25, base // 2).tolist()
    scenarios = build_scenarios(shocks=shocks, montecarlo=base - len(shocks), depth_scales=(1.0, 0.5))
    setup = ScenarioSetup(PRICES, seconds=args.seconds, model=GBM(0.004, step_ms=60_000))
    venue = default_venue(insurance_fund=20e6)
    load = os.getloadavg()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = run_platform(population, venue, scenarios, setup, workers=args.workers)
    wall = time.perf_counter() - wall0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    s, t = result.summary, result.summary["timing"]
    print(f"{s['scenarios']:,} scenarios x {len(population):,} positions x {args.seconds} s at 1 s steps, "
          f"2 symbols, {t['workers']} {t['backend']} workers; load average before {load[0]:.2f} {load[1]:.2f}")
    print(f"wall {wall:.1f} s (target <= 120 s); CPU: scenarios {t['scenario_cpu_s']:.1f} s "
          f"({t['scenario_cpu_s'] / s['scenarios'] * 1e3:.0f} ms each), parent {time.process_time() - cpu0:.1f} s, "
          f"children (resource) {children.ru_utime + children.ru_stime:.1f} s; load average after "
          f"{os.getloadavg()[0]:.2f}")
    d = result.tables["distributions"]
    for metric in ("bad_debt", "fund_drawdown", "adl_notional", "liquidated_value"):
        row = d.filter(d["metric"] == metric).row(0, named=True)
        print(f"{metric:>17}: mean {row['mean'] / 1e6:8.2f}M  p95 {row['p95'] / 1e6:8.2f}M  "
              f"p99 {row['p99'] / 1e6:8.2f}M  es99 {row['es99'] / 1e6:8.2f}M")
    print(f"P(ADL) {s['adl_probability']:.1%}; max relative conservation residual {s['max_relative_residual']:.1e}")


if __name__ == "__main__":
    main()
