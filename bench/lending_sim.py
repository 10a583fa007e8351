"""Lending simulation speed: N positions through one day of 12-second blocks (issue 13 target:
100,000 positions x 7,200 steps in <= 10 s on 2 cores). Prints the figures; not a timed test.

    .venv/bin/python bench/lending_sim.py [--positions 100000] [--steps 7200] [--feedback]
        [--core] [--protocol aave_v3|compound_v3|multi]

By default every agent feature of the simulation is on: interest accrual (5 % borrow rate),
liquidator latency (one block), liquidator capital (50M per block) and a depth curve as the
venue; ``--core`` runs the bare core (pool, no latency, capital or interest) for comparison.
``--protocol compound_v3`` runs Comet accounts (absorb + buyCollateral, same agents, no capital
limit); ``--protocol multi`` Aave positions holding ETH and BTC against USDC and USDT (the BTC
path is the ETH path's noise reversed, market-price sales).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from backtest.lending.amm import ConstantProductPool
from backtest.lending.depth import DepthCurve
from backtest.lending.simulation import SimulationConfig, generate_positions, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=7_200)
    parser.add_argument("--feedback", action="store_true", help="oracle reads the pool price")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--core", action="store_true", help="the bare core: no agent features")
    parser.add_argument("--protocol", choices=("aave_v3", "compound_v3", "multi"),
                        default="aave_v3", help="which simulation to time")
    args = parser.parse_args()
    if args.protocol != "aave_v3":
        _other(args)
        return
    rng = np.random.default_rng(args.seed)
    times = np.arange(args.steps) * 12.0
    # a -30 % day with 12-second noise: many oracle updates and liquidations
    drift = np.log(0.7) / args.steps
    prices = 2000.0 * np.exp(np.cumsum(rng.normal(drift, 0.0015, args.steps)))
    book = generate_positions(args.positions, seed=args.seed, price=2000.0,
                              health_factor_range=(1.01, 2.0))
    if args.core:
        venue = ConstantProductPool.at_price(2000.0, depth_quote=2e8)
        config = SimulationConfig(gas_cost=20.0, arbitrage_share=0.3, feedback=args.feedback)
    else:
        venue = DepthCurve(2000.0, depth=3.5e7)
        config = SimulationConfig(gas_cost=20.0, arbitrage_share=0.3, feedback=args.feedback,
                                  borrow_rate=0.05, latency_steps=1, capital=5e7)
    start, cpu = time.perf_counter(), time.process_time()
    result = simulate(book, times, prices, venue, config)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    s = result.summary
    updates = int((result.steps["oracle_price"].diff().fill_null(1.0) != 0).sum())
    print(f"positions {args.positions:,}  steps {args.steps:,}  feedback {args.feedback}  "
          f"{'core' if args.core else 'agents: interest, latency, capital, depth curve'}")
    print(f"elapsed {elapsed:.2f} s  ({elapsed / args.steps * 1e6:.0f} us/step)  cpu {cpu:.2f} s "
          "(less sensitive to other load on a shared machine)")
    print(f"oracle updates {updates:,}  liquidations {s['liquidations']:,}  "
          f"positions liquidated {s['positions_liquidated']:,}")
    print(f"debt repaid {s['debt_repaid']:,.0f}  deficit {s['deficit']:,.0f}  "
          f"toxic positions {s['toxic_positions']:,}")


def _other(args: argparse.Namespace) -> None:
    """Compound v3 accounts or multi-asset Aave positions on the same kind of day."""
    from backtest.lending.comet_simulation import CometConfig, simulate_comet
    from backtest.lending.multi import book_from_rows, simulate_multi
    from backtest.lending.population import generate_multi_population

    rng = np.random.default_rng(args.seed)
    times = np.arange(args.steps) * 12.0
    noise = rng.normal(np.log(0.7) / args.steps, 0.0015, args.steps)
    eth = 2000.0 * np.exp(np.cumsum(noise))
    start, cpu = time.perf_counter(), time.process_time()
    if args.protocol == "compound_v3":
        book = generate_positions(args.positions, seed=args.seed, price=2000.0,
                                  liquidation_threshold=0.9, health_factor_range=(1.01, 2.0))
        start, cpu = time.perf_counter(), time.process_time()
        s = simulate_comet(book, times, eth, DepthCurve(2000.0, depth=3.5e7), CometConfig(
            gas_cost=20.0, arbitrage_share=0.3, borrow_rate=0.05, latency_steps=1)).summary
    else:
        btc = 40_000.0 * np.exp(np.cumsum(noise[::-1]))
        rows = generate_multi_population(args.positions, seed=args.seed,
                                         prices={"ETH": 2000.0, "BTC": 40_000.0},
                                         health_factor_range=(1.01, 2.0))
        book, _ = book_from_rows(rows, {"USDC": 1.0, "USDT": 1.0})
        start, cpu = time.perf_counter(), time.process_time()
        s = simulate_multi(book, times, {"ETH": eth, "BTC": btc, "USDC": 1.0, "USDT": 1.0},
                           SimulationConfig(gas_cost=20.0, borrow_rate=0.05)).summary
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"{args.protocol}: positions {args.positions:,}  steps {args.steps:,}")
    print(f"elapsed {elapsed:.2f} s  ({elapsed / args.steps * 1e6:.0f} us/step)  cpu {cpu:.2f} s")
    print(f"liquidations {s['liquidations']:,}  debt repaid {s['debt_repaid']:,.0f}  "
          f"deficit {s['deficit']:,.0f}  toxic positions {s['toxic_positions']:,}")


if __name__ == "__main__":
    main()
