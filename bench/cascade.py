"""Cascade engine speed: 1,000,000 positions through a 12-minute window at 1 s steps (issue 12
target: <= 10 s on 2 cores). Prints the figures; not a timed test.

    .venv/bin/python bench/cascade.py [--positions 1000000] [--seconds 720] [--drop 0.12]
        [--rule queue|pro_rata|leverage_levelling] [--venue binance_usdm] [--write DIR]

The population is synthetic (seeded, Binance-2019 leverage prior), split over BTC and ETH; the
exogenous path is a 12 % fall over three minutes. ``elapsed`` covers liquidation prices,
sorting, the per-second loop and the tables (not the population draw nor the folder write).
"""
from __future__ import annotations

import argparse
import time

from backtest.cascade.engine import CascadeConfig, run_cascade
from backtest.cascade.paths import shock_path
from backtest.cascade.population import synthetic_population

PRICES = {"BTC/USDT:USDT": 112_000.0, "ETH/USDT:USDT": 4_300.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=720)
    parser.add_argument("--drop", type=float, default=0.12)
    parser.add_argument("--rule", default="queue")
    parser.add_argument("--venue", default="binance_usdm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", default=None, help="also write the result folder here (timed apart)")
    args = parser.parse_args()
    population = synthetic_population(args.positions, seed=args.seed, prices=PRICES, prior="binance_2019")
    paths = {s: shock_path(start_price=p, seconds=args.seconds, drop=args.drop, shock_start_s=60,
                           shock_seconds=180, start_ms=1_760_130_000_000) for s, p in PRICES.items()}
    config = CascadeConfig(venue=args.venue, adl_rule=args.rule, insurance_fund=50e6, seed=args.seed)
    start = time.perf_counter()
    result = run_cascade(population, paths, config)
    elapsed = time.perf_counter() - start
    s = result.summary
    print(f"positions {len(population):,}  steps {s['steps']:,} x {len(PRICES)} symbols  "
          f"venue {args.venue}  rule {args.rule}")
    print(f"elapsed {elapsed:.2f} s  ({elapsed / s['steps'] * 1e3:.2f} ms/step)  target <= 10 s")
    print(f"liquidated {s['liquidated_positions']:,} positions, {s['liquidated_notional'] / 1e6:,.1f}M notional; "
          f"ADL {s['adl_notional'] / 1e6:,.1f}M over {s['adl_counterparties']:,} counterparties; "
          f"bad debt {s['bad_debt'] / 1e6:,.2f}M; amplification "
          + ", ".join(f"{k.split('/')[0]} {v:.2f}" for k, v in s["amplification"].items() if v))
    if args.write:
        start = time.perf_counter()
        result.write(args.write, overwrite=True)
        print(f"folder written in {time.perf_counter() - start:.2f} s: {args.write}")


if __name__ == "__main__":
    main()
