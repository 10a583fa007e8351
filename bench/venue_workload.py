"""The reference workload under each venue's rules: whole-process time against Binance USDⓈ-M.

Runs ``bench/run_workload.py --venue NAME`` as separate processes (whole process: interpreter
start-up, import, load, run, output), interleaved round by round so the machine's load hits
every venue alike, and prints one JSON line: per venue the median wall seconds (``total_s``),
the median CPU seconds (user + system), the event-path loop seconds, the ratios against
``binance_usdm`` and the load average before and after.

    .venv/bin/python bench/venue_workload.py --data DIR [--venues a,b,c] [--rounds 5]
        [--path event|array|both]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_VENUES = ("binance_usdm", "bybit_linear", "bybit_inverse", "okx")


def one_run(data: Path, venue: str, path: str) -> dict:
    """One whole-process run of run_workload.py; its JSON figures."""
    done = subprocess.run(
        [sys.executable, str(PROJECT / "bench" / "run_workload.py"), "--data", str(data),
         "--path", path, "--venue", venue],
        capture_output=True, text=True, check=True, cwd=PROJECT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="folder with the workload files")
    parser.add_argument("--venues", default=",".join(DEFAULT_VENUES),
                        help="comma-separated venue names; the first is the baseline")
    parser.add_argument("--rounds", type=int, default=5, help="runs per venue (median taken)")
    parser.add_argument("--path", choices=("event", "array", "both"), default="event",
                        help="run_workload.py path (default event)")
    args = parser.parse_args(argv)
    venues = [v.strip() for v in args.venues.split(",") if v.strip()]
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {v: [] for v in venues}
    for _ in range(args.rounds):
        for venue in venues:
            runs[venue].append(one_run(args.data, venue, args.path))
    load_after = os.getloadavg()
    out: dict = {"bench": "venue_workload", "path": args.path, "rounds": args.rounds,
                 "loadavg_before": [round(x, 2) for x in load_before],
                 "loadavg_after": [round(x, 2) for x in load_after], "cpus": os.cpu_count(),
                 "venues": {}}
    base = venues[0]
    for venue in venues:
        rows = runs[venue]
        loop = [r["loop_s"] if "loop_s" in r else r["event"]["loop_s"] for r in rows]
        out["venues"][venue] = {
            "total_s_median": round(statistics.median(r["total_s"] for r in rows), 3),
            "cpu_s_median": round(statistics.median(r["cpu_s"] for r in rows), 3),
            "loop_s_median": round(statistics.median(loop), 4),
            "n_liquidations": (rows[0].get("n_liquidations")
                               if "n_liquidations" in rows[0] else rows[0]["event"]["n_liquidations"]),
        }
    b = out["venues"][base]
    for venue, figures in out["venues"].items():
        figures["total_ratio_vs_" + base] = round(figures["total_s_median"] / b["total_s_median"], 3)
        figures["cpu_ratio_vs_" + base] = round(figures["cpu_s_median"] / b["cpu_s_median"], 3)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
