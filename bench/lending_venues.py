"""A year of 1m candles as a loop on the lending venues, against the same long on Binance USDⓈ-M.

The reference workload's candles (../shared/bench/WORKLOAD.md, 525,600 one-minute bars) run
``hold`` (a long at ``--leverage``, isolated) under each venue; a lending venue first builds its
oracle candles and interest settlements (``Venue.prepare_market``, cold: a fresh ``MarketData``
per run). Prints one JSON line: per venue the median wall and CPU seconds of the run (CPU =
``time.process_time``), the CPU of the oracle and interest build alone, the ratios against the
first venue, and the load average before and after.

    .venv/bin/python bench/lending_venues.py --data DIR [--generate]
        [--venues binance_usdm,aave_v3,compound_v3] [--rounds 3] [--leverage 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run_workload  # noqa: E402 - the workload's loader lives beside this file


def one_run(data_dir: Path, venue: str, leverage: float) -> dict[str, float]:
    """One cold run: load, (prepare), run; wall and CPU seconds of the run and of the prepare."""
    from backtest import RunConfig, run_backtest
    from backtest.venues.base import get_venue

    data = run_workload.load_data(data_dir, venue)
    config = RunConfig(venue=venue, leverage=leverage, margin_mode="isolated", initial_balance=10_000.0)
    prepare = get_venue(venue).prepare_market
    cpu0 = time.process_time()
    if prepare is not None:
        prepare(data, config)  # cached on data: the run below reuses it
    prepare_cpu = time.process_time() - cpu0
    wall0, cpu1 = time.perf_counter(), time.process_time()
    result = run_backtest(data, "hold", params={"exposure": 1.0}, config=config)
    return {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu1,
            "prepare_cpu_s": prepare_cpu, "liquidations": float(result.summary["n_liquidations"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="folder with the workload files")
    parser.add_argument("--generate", action="store_true", help="generate DIR when it is missing")
    parser.add_argument("--venues", default="binance_usdm,aave_v3,compound_v3",
                        help="comma-separated venue names; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=3, help="runs per venue (median taken)")
    parser.add_argument("--leverage", type=float, default=3.0, help="leverage of the long (<= every venue's cap)")
    args = parser.parse_args(argv)
    run_workload.ensure_workload(args.data, args.generate)
    venues = [v.strip() for v in args.venues.split(",") if v.strip()]
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in venues}
    for _ in range(args.rounds):  # interleaved: the machine's load hits every venue alike
        for venue in venues:
            runs[venue].append(one_run(args.data, venue, args.leverage))
    out = {"bars": 525_600, "rounds": args.rounds, "leverage": args.leverage, "venues": {}}
    base = venues[0]
    for venue in venues:
        wall = statistics.median(r["wall_s"] for r in runs[venue])
        cpu = statistics.median(r["cpu_s"] for r in runs[venue])
        out["venues"][venue] = {
            "run_wall_s": round(wall, 3), "run_cpu_s": round(cpu, 3),
            "prepare_cpu_s": round(statistics.median(r["prepare_cpu_s"] for r in runs[venue]), 3),
            "liquidations": runs[venue][0]["liquidations"]}
    for venue in venues:
        entry = out["venues"][venue]
        entry["cpu_ratio"] = round((entry["run_cpu_s"] + entry["prepare_cpu_s"])
                                   / (out["venues"][base]["run_cpu_s"] + out["venues"][base]["prepare_cpu_s"]), 3)
    out["load_before"], out["load_after"] = [round(x, 2) for x in load_before], \
        [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
