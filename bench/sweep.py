"""Benchmark: a 1,000-configuration sweep of the reference year (prints figures; not a timed test).

Workload: ../shared/bench/WORKLOAD.md (525,600 one-minute bars of a synthetic BTC-like
perpetual). Generate it first::

    .venv/bin/python ../shared/bench/gen_workload.py --out /tmp/mc-workload

The grid is SMA(fast) x SMA(slow) x leverage = 10 x 10 x 10 = 1,000 configurations of
``sma_cross`` run through the engine's array path (``backtest.fastpath.run_signals``) by the
sweep's process pool (each worker loads the data once, in its initializer; the signal is
computed once per (fast, slow) pair and reused for the ten leverages). ``--runner engine``
measures the event loop instead (use ``--limit``). The last line is the figures as JSON.

``--vectorbt`` runs the paired comparison instead: the 100-configuration SMA grid (FAST x
SLOW at 10x) through margincall's sweep, then the same grid through vectorbt's broadcast call
(``vbt.MA.run`` over all windows, ``Portfolio.from_signals`` over the 100 columns: crossings
decided at a bar's close, filled at the next open, 0.04 % fee, long/short reversals, no
margin model), twice (the first includes numba's compilation), and prints wall and CPU
seconds with the ratios. vectorbt is a bench-only optional dependency, not one of
margincall's: install it anywhere and pass ``--vectorbt-lib DIR`` when it is not in the
virtualenv (e.g. ``pip install --target /tmp/vbt-lib vectorbt``).

``--kernel off`` runs every configuration through the Python array path instead of the compiled
kernel (``backtest.kernel``; the same table); ``--cold-compile`` also times numba's compilation
from an empty cache (the kernel's code is cached on disk per machine, so only the first sweep
after an install pays it). The figures: wall seconds, CPU seconds of this process and its
workers, CPU per configuration (less each worker's data and kernel load), the load average.

Run: ``.venv/bin/python bench/sweep.py --data /tmp/mc-workload [--workers 2] [--kernel on|off] [--cold-compile] [--ray] [--vectorbt [--vectorbt-lib DIR]]``
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backtest.risk.sweep import DataSpec, make_grid, run_sweep  # noqa: E402

FAST = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
SLOW = [120, 150, 200, 250, 300, 350, 400, 450, 500, 600]
LEVERAGE = [2, 3, 4, 5, 7, 10, 15, 20, 25, 50]  # 1x with 1x-wallet exposure cannot pay the fee: every bar is a rejection


def workload_base():  # noqa: ANN201 - RunConfig
    """The sweep's shared configuration: WORKLOAD.md's cross-check model (one 0.5 % tier, no
    liquidation fee, 0.1 % liquidation slippage, taker 0.04 %, isolated, no rounding)."""
    from backtest.config import RunConfig
    from backtest.venues.tiers import TierTable

    return RunConfig(initial_balance=10_000.0, margin_mode="isolated", fees=(0.0002, 0.0004),
                     tiers=TierTable.from_rates([(0.0, 0.005)], max_leverage=[125.0], label="workload single tier"),
                     liquidation_fee_rate=0.0, slippage="fixed", slippage_params={"bps": 0.0, "forced_bps": 10.0},
                     rounding=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/mc-workload"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runner", default="auto", choices=("auto", "engine", "fastpath"))
    parser.add_argument("--limit", type=int, default=None, help="run only the first N configurations")
    parser.add_argument("--kernel", default="on", choices=("on", "off"),
                        help="run in-scope configurations through the compiled kernel (off: the Python array path)")
    parser.add_argument("--cold-compile", action="store_true",
                        help="also time numba's compilation from an empty cache (in a child process)")
    parser.add_argument("--ray", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("/tmp/mc-sweep-bench"))
    parser.add_argument("--vectorbt", action="store_true", help="paired 100-configuration run against vectorbt")
    parser.add_argument("--vectorbt-lib", type=Path, default=None,
                        help="folder holding vectorbt when it is not installed in this environment")
    args = parser.parse_args()
    bars = args.data / "btcusdt_perp_1m.parquet"
    if not bars.is_file():
        sys.exit(f"{bars} not found; generate it with: .venv/bin/python ../shared/bench/gen_workload.py --out {args.data}")
    base = workload_base()
    spec = DataSpec(symbol="BTC/USDT:USDT", timeframe="1m", bars_path=str(bars),
                    funding_path=str(args.data / "btcusdt_funding_8h.parquet"))
    if args.vectorbt:
        _paired_vectorbt(args, spec, base)
        return
    kernel = args.kernel == "on"
    configs = make_grid(LEVERAGE, {"fast": FAST, "slow": SLOW})[: args.limit]
    cold = _cold_compile() if kernel and args.cold_compile else None
    t0 = time.perf_counter()
    spec.load()
    load = time.perf_counter() - t0
    warm = None
    if kernel:  # this process's first call (compiled code loaded from numba's disk cache)
        from backtest.kernel import warm as warm_kernel

        warm = warm_kernel()
    load_before = os.getloadavg()[0]
    cpu0 = _cpu_seconds()
    # one task per (fast, slow) pair (its ten leverages share one signal): small tasks keep
    # both workers busy to the end (runs with a fast SMA take several times longer)
    result = run_sweep(spec, "sma_cross", configs, base_config=base, runner=args.runner, workers=args.workers,
                       backend="ray" if args.ray else "local", out_dir=args.out,
                       chunk_size=len(LEVERAGE), kernel=kernel)
    cpu = _cpu_seconds() - cpu0
    per_run = result.table["seconds"]
    runs = result.table.height
    # every worker loads the data and (kernel) the compiled code once before its first run:
    # not a per-configuration cost; each run's own seconds are in the table
    per_config_cpu = max(cpu - args.workers * (load + (warm or 0.0)), 0.0) / runs
    print(f"configurations: {runs} ({result.runner} runner, kernel {args.kernel}, {result.backend}, "
          f"{args.workers} workers)")
    print(f"data load (one process): {load:.2f} s; kernel first call (cache load): "
          f"{'-' if warm is None else f'{warm:.2f} s'}; cold compile: {'-' if cold is None else f'{cold:.1f} s'}")
    print(f"sweep wall time: {result.seconds:.2f} s, CPU {cpu:.1f} s (workers included) "
          f"(per run: median {per_run.median():.4f} s, max {per_run.max():.4f} s, sum {per_run.sum():.1f} s)")
    print(f"per configuration: {per_config_cpu:.4f} CPU-s (sweep CPU less each worker's data load and kernel load)")
    print(f"load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} cores)")
    print(f"liquidated runs: {(result.table['n_liquidations'] > 0).sum()}; best total_return "
          f"{result.table['total_return'].max():.4f}")
    print(f"results: {result.parquet_path} + {result.duckdb_path}")
    print(json.dumps({"configurations": runs, "runner": result.runner, "kernel": args.kernel,
                      "backend": result.backend, "workers": args.workers, "load_s": round(load, 3),
                      "kernel_first_call_s": None if warm is None else round(warm, 3),
                      "kernel_cold_compile_s": None if cold is None else round(cold, 2),
                      "sweep_s": round(result.seconds, 2), "cpu_s": round(cpu, 2),
                      "per_config_cpu_s": round(per_config_cpu, 5),
                      "per_run_median_s": round(float(per_run.median()), 5),
                      "per_run_max_s": round(float(per_run.max()), 5),
                      "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                      "liquidated_runs": int((result.table["n_liquidations"] > 0).sum()),
                      "best_total_return": float(result.table["total_return"].max())}))


def _cold_compile() -> float:
    """Seconds of numba's compilation of the kernel from an empty cache (a child process)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = "from backtest.kernel import warm; print(warm())"
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[1])
        return float(done.stdout.strip().splitlines()[-1])


def _paired_vectorbt(args: argparse.Namespace, spec: DataSpec, base) -> None:  # noqa: ANN001
    """The same 100-configuration SMA grid through margincall's sweep and vectorbt's broadcast call."""
    import numpy as np
    import polars as pl

    configs = make_grid([10], {"fast": FAST, "slow": SLOW})
    spec.load()
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    result = run_sweep(spec, "sma_cross", configs, base_config=base, workers=args.workers, out_dir=None,
                       chunk_size=1, progress=False)
    ours = {"wall_s": time.perf_counter() - t0, "cpu_s": _cpu_seconds() - cpu0, "configurations": result.table.height}
    if args.vectorbt_lib:
        sys.path.append(str(args.vectorbt_lib))  # after the environment's own numpy / pandas
    import pandas as pd
    import vectorbt as vbt

    bars = pl.read_parquet(args.data / "btcusdt_perp_1m.parquet")
    close, open_ = pd.Series(bars["close"].to_numpy()), pd.Series(bars["open"].to_numpy())
    fast, slow = np.repeat(FAST, len(SLOW)), np.tile(SLOW, len(FAST))
    theirs = []
    for _ in range(2):  # the first call compiles numba's kernels
        cpu0, t0 = time.process_time(), time.perf_counter()
        f, s = vbt.MA.run(close, fast).ma.values, vbt.MA.run(close, slow).ma.values
        valid = ~np.isnan(s)
        long_, short_ = (f > s) & valid, (f <= s) & valid
        pad = np.zeros((1, f.shape[1]), dtype=bool)
        # a crossing decided at bar i's close fills at bar i+1's open
        entries = np.vstack([pad, (long_ & ~np.vstack([pad, long_[:-1]]))[:-1]])
        exits = np.vstack([pad, (short_ & ~np.vstack([pad, short_[:-1]]))[:-1]])
        portfolio = vbt.Portfolio.from_signals(close, entries=entries, exits=exits, direction="both", price=open_,
                                               fees=0.0004, init_cash=10_000.0, freq="1min")
        portfolio.total_return()
        theirs.append({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0})
    figures = {"configurations": ours["configurations"], "margincall": ours, "vectorbt_first": theirs[0],
               "vectorbt_warm": theirs[1], "vectorbt_version": vbt.__version__, "load_average": os.getloadavg()[0],
               "ratio_wall_first": theirs[0]["wall_s"] / ours["wall_s"],
               "ratio_wall_warm": theirs[1]["wall_s"] / ours["wall_s"],
               "ratio_cpu_warm": theirs[1]["cpu_s"] / ours["cpu_s"]}
    print(f"margincall sweep ({args.workers} workers): {ours['wall_s']:.2f} s wall, {ours['cpu_s']:.2f} CPU-s")
    print(f"vectorbt {vbt.__version__} broadcast: first {theirs[0]['wall_s']:.2f} s wall / {theirs[0]['cpu_s']:.2f} "
          f"CPU-s (numba compile included), warm {theirs[1]['wall_s']:.2f} s / {theirs[1]['cpu_s']:.2f} CPU-s")
    print(f"vectorbt / margincall: wall {figures['ratio_wall_first']:.2f}x (first), "
          f"{figures['ratio_wall_warm']:.2f}x (warm); CPU {figures['ratio_cpu_warm']:.2f}x (warm)")
    print(json.dumps(figures))


def _cpu_seconds() -> float:
    """User + system CPU of this process and its (finished) worker processes, s."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


if __name__ == "__main__":
    main()
