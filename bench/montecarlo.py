"""Benchmark and closing figures of the risk lab's Monte Carlo (prints; not a timed test).

1. Fits the block bootstrap, GARCH(1,1)-t and Merton jump diffusion to real BTCUSDT
   perpetual data in ../shared/data (1h 2019-2026, 5m 2023-2026, 1m 2025) and prints the
   parameters and log-likelihoods. Fits go through the model cache (``--cache``, keyed by the
   files' SHA-256 like the store's partitions): the second run on the same data reads them back.
2. Times 10,000 paths x 1,440 one-minute steps x 10 leverages for each model fitted on 1m data.
3. Solves the largest leverage with P(liquidation within 1 day) <= 1 % (BTCUSDT long, isolated,
   10,000 USDT margin, current built-in tiers), for each model.

Run: ``.venv/bin/python bench/montecarlo.py [--shared ../shared/data] [--workers 2] [--cache DIR | --no-cache]``
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backtest.risk.barriers import barrier_frame, liquidation_barriers  # noqa: E402
from backtest.risk.model_cache import ModelCache  # noqa: E402
from backtest.risk.models import fit_model_cached  # noqa: E402
from backtest.risk.montecarlo import LiquidationStudy, simulate_first_passage  # noqa: E402
from backtest.risk.paths import ReturnSample  # noqa: E402
from backtest.risk.survival import max_leverage_mc  # noqa: E402
from backtest.venues.defaults import default_tier_schedule  # noqa: E402
from data_loaders.store import sha256_file  # noqa: E402

LEVERAGES = [2, 3, 5, 10, 15, 20, 25, 50, 75, 100]
DAY_MS = 86_400_000
MARGIN = 10_000.0


def _bars(path: Path, mark: Path | None = None, start: str | None = None) -> pl.DataFrame:
    frame = pl.read_parquet(path).select(pl.col("open_time").alias("ts"), "open", "high", "low", "close", "volume")
    if mark is not None:
        marks = pl.read_parquet(mark).select(pl.col("open_time").alias("ts"),
                                             *[pl.col(c).alias(f"mark_{c}") for c in ("open", "high", "low", "close")])
        frame = frame.join(marks, on="ts", how="inner")
    if start:
        frame = frame.filter(pl.col("ts") >= pl.lit(start).str.to_datetime(time_zone="UTC").dt.cast_time_unit("ms"))
    return frame.sort("ts")


def _fmt(d: dict) -> str:
    return ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("MARGINCALL_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "margincall-bench-models",
                        help="model cache folder (default: %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="fit every model (ignore and leave the cache)")
    args = parser.parse_args()
    started = time.perf_counter()
    cpu_started = time.process_time()
    shared: Path = args.shared
    cache = None if args.no_cache else ModelCache(args.cache)
    figures: dict = {"fits": {}, "timings": {}, "survival": {}}
    checksums: dict[Path, str] = {}

    def files_sha(*paths: Path) -> list[str]:
        for path in paths:
            if path not in checksums:
                checksums[path] = f"{path.name}:{sha256_file(path)}"
        return [checksums[p] for p in paths]

    klines_1h = shared / "klines/long/binance_um_BTCUSDT_1h_2019-09-08_2026-05-17.parquet"
    mark_1h = shared / "mark/binance_um_BTCUSDT_markprice_1h_2019-12-23_2026-05-17.parquet"
    klines_5m = shared / "klines/long/binance_um_BTCUSDT_5m_2023-01-01_2026-02-19.parquet"
    klines_1m = shared / "klines/long/binance_um_BTCUSDT_1m_2025-05-04_2025-06-24.parquet"

    datasets = {
        "1h_mark_2020_2026": (ReturnSample.from_bars(_bars(klines_1h, mark_1h), price="mark"), (klines_1h, mark_1h)),
        "1h_last_2019_2026": (ReturnSample.from_bars(_bars(klines_1h, start="2019-09-10")), (klines_1h,)),
        "5m_last_2023_2026": (ReturnSample.from_bars(_bars(klines_5m)), (klines_5m,)),
        "1m_last_2025": (ReturnSample.from_bars(_bars(klines_1m)), (klines_1m,)),
    }
    fitted = {}
    fit_total = 0.0
    for label, (sample, files) in datasets.items():
        print(f"\n== {label}: {sample.returns.size:,} returns ({sample.price} price), {sample.n_gaps} gaps skipped")
        for name in ("bootstrap", "garch", "jump"):
            outcome = fit_model_cached(name, sample, cache=cache, partitions=files_sha(*files))
            fitted[(label, name)] = model = outcome.model
            fit_total += outcome.seconds
            info = model.describe()
            figures["fits"].setdefault(label, {})[name] = info | {"fit_seconds": outcome.seconds,
                                                                 "cached": outcome.cached}
            how = "cached" if outcome.cached else "fitted"
            print(f"  {name:9s} ({how} {outcome.seconds:5.2f} s): "
                  f"{_fmt({k: v for k, v in info.items() if k not in ('model',)})}")
    figures["fit_seconds_total"] = fit_total

    tiers = default_tier_schedule("binance_usdm", "BTC/USDT:USDT").at(2**62)
    bars_1m = _bars(klines_1m)
    entry = float(bars_1m["close"][-1])
    barriers = liquidation_barriers(LEVERAGES, side=1, entry_price=entry, margin=MARGIN, tiers=tiers)
    print(f"\n== barriers: long BTCUSDT, entry {entry:,.1f}, margin {MARGIN:,.0f} USDT, tiers {tiers.label}")
    print(barrier_frame(barriers).select("leverage", "notional", "liquidation_price", "tier", "mmr", "allowed"))

    print(f"\n== timing: {args.paths:,} paths x 1,440 1m steps x {len(LEVERAGES)} leverages, {args.workers} worker(s)")
    for name in ("bootstrap", "garch", "jump"):
        model = fitted[("1m_last_2025", name)]
        t0 = time.perf_counter()
        study = LiquidationStudy.run(model, barriers, horizon_ms=DAY_MS, n_paths=args.paths, seed=1, workers=args.workers)
        elapsed = time.perf_counter() - t0
        figures["timings"][name] = elapsed
        probs = study.table()["probability"].to_list()
        print(f"  {name:9s}: {elapsed:5.2f} s   P(liq in 1 day) by leverage: "
              + " ".join(f"{lev}x={p:.2%}" for lev, p in zip(LEVERAGES, probs)))

    print("\n== survival: largest leverage with P(liquidation within 1 day) <= 1 % (long, margin 10,000 USDT)")
    cases = [("1m_last_2025", name, 1440) for name in ("bootstrap", "garch", "jump")]
    cases += [("1h_mark_2020_2026", name, 24) for name in ("bootstrap", "garch", "jump")]
    for label, name, steps in cases:
        model = fitted[(label, name)]
        passage = simulate_first_passage(model, barriers=[], side=1, n_paths=args.paths, n_steps=steps, s0=entry,
                                         seed=2, workers=args.workers)
        for criterion in ("estimate", "upper"):
            result = max_leverage_mc(passage, target=0.01, margin=MARGIN, tiers=tiers, entry_price=entry,
                                     criterion=criterion)
            figures["survival"][f"{label}/{name}/{criterion}"] = result.value
            d = result.detail
            print(f"  {label:18s} {name:9s} {criterion:8s}: max leverage {result.value:7.2f}x  "
                  f"(P={d.get('estimate', float('nan')):.3%}, CI [{d.get('ci_low', 0):.3%}, {d.get('ci_high', 0):.3%}])")
    figures["total_s"] = time.perf_counter() - started
    figures["cpu_s"] = time.process_time() - cpu_started  # every thread of the process
    figures["load_average"] = os.getloadavg()[0]
    print(f"\n== total {figures['total_s']:.2f} s, {figures['cpu_s']:.2f} CPU-s, load {figures['load_average']:.1f} "
          f"(fits and cache reads {fit_total:.2f} s, "
          f"{'no cache' if cache is None else f'cache {cache.root}'})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
