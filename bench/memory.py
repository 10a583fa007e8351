"""Peak resident memory of long and wide runs (issue 10: memory bounded by a chunk).

Each case runs in its own child process, which prints its peak RSS (``VmHWM``, see
:func:`peak_rss_mib`) after the run (and, with ``--write``, after writing the run folder):

* ``1y``: one symbol, one year of 1m bars (525,600), ``sma_cross`` (300/1200) on the event path;
* ``4y``: one symbol, four years of 1m bars (2,102,400), ``sma_cross`` (300/1200);
* ``20x1y``: twenty symbols, one year of 1m bars each, ``hold`` (cross margin).

The bars are a deterministic synthetic random walk (seeded; mark = last x (1 + small noise))
written to Parquet in a scratch folder by the parent first, so that the child pays for
reading them like a run from files does (generation is not measured).

    .venv/bin/python bench/memory.py [--case 1y|4y|20x1y|all] [--project DIR] [--write] [--via-store]
        [--phases]

``--project DIR`` measures another checkout's engine (e.g. main) with the same data and
script. Prints one JSON line per case: ``case``, ``bars``, ``symbols``, ``peak_rss_mib``,
``run_s`` (wall, from reading the bars to the end), ``cpu_s`` (user + system CPU of the child
process, interpreter start-up included), ``load_1m`` (the machine's 1-minute load average when
the case ended) and ``final_equity``.

``--via-store`` writes the same bars (last and mark candles, funding, the BTC tier table and
market spec under every symbol) into a real market store (``data_loaders.store.MarketStore``)
and the child reads them through ``backtest.market_loader.load_market``, the loader of
``margincall run``: its peak RSS is the CLI path's.

Otherwise the bars are given to ``MarketData.from_frames`` as LazyFrames (``pl.scan_parquet``): runs of
at least ``backtest.spill.SPILL_BARS`` symbol-bars keep their columns in a scratch-file map read
slice by slice, so no whole history is in memory (``margincall run``'s store loader spills each
symbol as it reads it; the engine, the summary and the run-folder writing are the same code).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
START_MS = 1_672_531_200_000  # 2023-01-01 UTC
MINUTE = 60_000
CASES = {"1y": (1, 525_600, "sma_cross"), "4y": (1, 4 * 525_600, "sma_cross"),
         "20x1y": (20, 525_600, "hold")}
#: Averages of a few hundred flips a year (SMA(50/200) flips ~3,300 times a year on the walk).
SMA_PARAMS = {"fast": 300, "slow": 1200}
#: Rows per Parquet row group of the bar files.
ROW_GROUP = 1 << 16


NAMES = ["BTC/USDT:USDT", "ETH/USDT:USDT", "BNB/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT",
         "DOGE/USDT:USDT", "ADA/USDT:USDT", "AVAX/USDT:USDT", "LINK/USDT:USDT", "DOT/USDT:USDT",
         "LTC/USDT:USDT", "TRX/USDT:USDT", "BCH/USDT:USDT", "ETC/USDT:USDT", "FIL/USDT:USDT",
         "ATOM/USDT:USDT", "NEAR/USDT:USDT", "APT/USDT:USDT", "ARB/USDT:USDT", "OP/USDT:USDT"]


def write_store(folder: Path, symbols: int) -> None:
    """Write the case's bar and funding files into a market store ``folder/store`` (one symbol
    at a time), with BTCUSDT's built-in tiers and market spec under every symbol."""
    import dataclasses
    from datetime import datetime, timezone

    import polars as pl

    from backtest.venues.defaults import default_market, default_tier_schedule
    from data_loaders.store import MarketStore

    store = MarketStore(folder / "store")
    tiers = default_tier_schedule("binanceusdm", "BTC/USDT:USDT")
    spec = dataclasses.asdict(default_market("binanceusdm", "BTC/USDT:USDT", START_MS))
    for s, name in enumerate(NAMES[:symbols]):
        bars = pl.read_parquet(folder / f"bars_{s}.parquet")
        head = {"exchange": "binanceusdm", "symbol": name, "timeframe": "1m"}
        for price_type, prefix in (("last", ""), ("mark", "mark_")):
            store.write("ohlcv", bars.select(
                *[pl.lit(v).alias(k) for k, v in head.items()], pl.lit(price_type).alias("price_type"), "ts",
                *[pl.col(prefix + c).alias(c) for c in ("open", "high", "low", "close")],
                "volume"), source="bench/memory.py")
        del bars
        funding = pl.read_parquet(folder / f"funding_{s}.parquet")
        store.write("funding", funding.with_columns(pl.lit("binanceusdm").alias("exchange"),
                                                    pl.lit(name).alias("symbol")), source="bench/memory.py")
        store.write("risk_tiers", pl.DataFrame(tiers.to_rows(exchange="binanceusdm", symbol=name)),
                    source="bench/memory.py")
        row = {**spec, "exchange": "binanceusdm", "symbol": name,
               "effective_from": datetime.fromtimestamp(spec["effective_from"] / 1000, timezone.utc)}
        store.write("markets", pl.DataFrame([row]).select(
            [c for c in pl.DataFrame([row]).columns if c in _MARKET_COLUMNS]), source="bench/memory.py")
        for path in (folder / f"bars_{s}.parquet", folder / f"funding_{s}.parquet"):
            path.unlink()  # the store holds them now (the scratch folder is the bench's own)


_MARKET_COLUMNS = ("exchange", "symbol", "effective_from", "base", "quote", "settle", "contract_type",
                   "contract_size", "tick_size", "lot_size", "min_qty", "min_notional", "maker_fee",
                   "taker_fee", "liquidation_fee_rate")


def write_case(folder: Path, symbols: int, bars: int) -> None:
    """Write ``symbols`` synthetic 1m bar files and 8-hourly funding into ``folder``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    ts = START_MS + MINUTE * np.arange(bars, dtype=np.int64)
    for s in range(symbols):
        rng = np.random.default_rng(1000 + s)
        steps = rng.standard_normal(bars) * 0.0008
        close = 20_000.0 * (1 + s / 10) * np.exp(np.cumsum(steps))
        open_ = np.concatenate([[close[0]], close[:-1]])
        spread = np.abs(rng.standard_normal(bars)) * 0.0005 * close
        high = np.maximum(open_, close) + spread
        low = np.minimum(open_, close) - spread
        mark = 1 + rng.standard_normal(bars) * 1e-5
        table = pa.table({"ts": pa.array(ts).cast(pa.timestamp("ms", "UTC")), "open": open_, "high": high,
                          "low": low, "close": close, "volume": np.full(bars, 10.0),
                          "mark_open": open_ * mark, "mark_high": high * mark, "mark_low": low * mark,
                          "mark_close": close * mark})
        # row groups of 64Ki rows: the unit a Parquet reader decodes, so what bounds a streaming
        # read's transient memory (pyarrow's default, 1Mi rows, is 80 MB of bars per group)
        pq.write_table(table, folder / f"bars_{s}.parquet", row_group_size=ROW_GROUP)
        fts = ts[::480]
        pq.write_table(pa.table({"ts": pa.array(fts).cast(pa.timestamp("ms", "UTC")),
                                 "rate": np.full(fts.size, 0.0001), "interval_hours": np.full(fts.size, 8.0),
                                 "mark_price": close[::480]}), folder / f"funding_{s}.parquet")


class Phases:
    """Where the peak is: resident memory sampled every 2 ms on a thread (``VmRSS``), the
    greatest value seen in each phase of the child (``mark(name)`` ends a phase).

    Each phase gives ``[name, rss_mib_at_its_end, peak_mib_during_it]``. The signal is a
    phase of its own (``Strategy.signal_array`` is wrapped), as is each Parquet table a run
    folder writes (``backtest.runfolder.write_parquet`` is wrapped) and the DuckDB views
    (the rest of the folder).
    """

    def __init__(self) -> None:
        import threading

        self.rows: list[list[Any]] = []
        self.peak = self.rss()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    @staticmethod
    def rss() -> float:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _sample(self) -> None:
        while not self.done.wait(0.002):
            self.peak = max(self.peak, self.rss())

    def mark(self, name: str) -> None:
        now = self.rss()
        self.rows.append([name, round(now, 1), round(max(self.peak, now), 1)])
        self.peak = now

    def wrap(self) -> None:
        """Mark the signal and each table written as phases of their own."""
        from backtest import runfolder, strategy

        signal_array, write_parquet = strategy.Strategy.signal_array, runfolder.write_parquet

        def signal(inner: Any, inputs: Any) -> Any:
            self.mark("run (before the signal)")
            values = signal_array(inner, inputs)
            self.mark(f"signal ({values.nbytes / 2**20:.1f} MiB array)")
            return values

        def write(path: Path, chunks: Any, **options: Any) -> int:
            rows = write_parquet(path, chunks, **options)
            self.mark(f"write {path.name}")
            return rows

        strategy.Strategy.signal_array, runfolder.write_parquet = signal, write

    def stop(self) -> list[list[Any]]:
        self.done.set()
        self.thread.join()
        return self.rows


def child(case: str, folder: Path, write: bool, via_store: bool = False, phases: bool = False) -> None:
    """Run ``case`` from the files in ``folder`` and print its figures (in the child process)."""
    import resource

    from backtest import RunConfig, run_backtest

    sampler = Phases() if phases else None
    if sampler is not None:
        sampler.wrap()
        sampler.mark("imports")

    symbols, bars, strategy = CASES[case]
    names = NAMES[:symbols]
    from backtest.venues.defaults import default_market, default_tier_schedule

    # the built-in tables know BTC and ETH only: every symbol trades under BTCUSDT's rules
    tiers = default_tier_schedule("binanceusdm", "BTC/USDT:USDT")
    spec = default_market("binanceusdm", "BTC/USDT:USDT", START_MS)
    started = time.perf_counter()
    if via_store:
        from backtest.market_loader import load_market
        from data_loaders.store import MarketStore

        data = load_market(MarketStore(folder / "store"), exchange="binanceusdm", symbols=names,
                           timeframe="1m").market_data()
    else:
        data = _from_files(folder, names, tiers, spec)
    if sampler is not None:
        sampler.mark("load")
    # no fees or slippage: the account keeps trading all along (one bled by fees refuses every
    # later order, and the orders table would be measured instead of the run)
    config = RunConfig(initial_balance=1_000_000.0 * symbols, leverage=2.0, fees=(0.0, 0.0), slippage="none",
                       margin_mode="cross" if symbols > 1 else "isolated")
    result = run_backtest(data, strategy, params=SMA_PARAMS if strategy == "sma_cross" else None,
                          config=config)
    equity = result.summary["final_equity"]
    if sampler is not None:
        sampler.mark("run and summary")
    if write:
        with tempfile.TemporaryDirectory() as out:
            result.write(Path(out) / "run")
        if sampler is not None:
            sampler.mark("DuckDB views and manifest")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {"case": case, "bars": bars, "symbols": symbols, "write": write, "via_store": via_store,
               "peak_rss_mib": round(peak_rss_mib(usage), 1),
               "run_s": round(time.perf_counter() - started, 2),
               "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
               "load_1m": round(os.getloadavg()[0], 1), "final_equity": equity}
    if sampler is not None:
        figures["phases"] = sampler.stop()
    print(json.dumps(figures), flush=True)


def _from_files(folder: Path, names: list[str], tiers: Any, spec: Any) -> Any:
    """The case's MarketData from its bar files (LazyFrames)."""
    import dataclasses

    import polars as pl

    from backtest import MarketData

    return MarketData.from_frames(
        # LazyFrames: read slice by slice into the run's scratch-file columns (backtest.spill);
        # an engine without them (--project of an older checkout) reads the frames whole
        bars={n: (pl.scan_parquet if hasattr(MarketData, "release") else pl.read_parquet)(
            folder / f"bars_{s}.parquet") for s, n in enumerate(names)},
        funding={n: pl.read_parquet(folder / f"funding_{s}.parquet") for s, n in enumerate(names)},
        timeframe="1m", tiers={n: tiers for n in names},
        markets={n: dataclasses.replace(spec, symbol=n) for n in names})


def peak_rss_mib(usage: Any) -> float:
    """This process's peak resident memory, MiB: ``VmHWM`` (Linux), else ``ru_maxrss``.

    ``ru_maxrss`` survives ``execve`` on Linux: a child forked from a parent holding the
    generated bars would report the parent's resident memory at the fork. ``VmHWM`` is the
    high-water mark of the process's own address space.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=(*CASES, "all"), default="all")
    parser.add_argument("--project", type=Path, default=PROJECT, help="checkout whose engine runs")
    parser.add_argument("--write", action="store_true", help="also write the run folder")
    parser.add_argument("--via-store", action="store_true",
                        help="read the bars from a market store through margincall run's loader")
    parser.add_argument("--phases", action="store_true",
                        help="also print where the peak is: resident memory per phase (sampled every 2 ms)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        write_case(args.folder, *CASES[args.generate][:2])
        if args.via_store:
            sys.path.insert(0, str(PROJECT))  # the store is written by this checkout
            write_store(args.folder, CASES[args.generate][0])
        return
    if args.child:
        sys.path.insert(0, str(args.project.resolve()))
        child(args.child, args.folder, args.write, args.via_store, args.phases)
        return
    for case in CASES if args.case == "all" else (args.case,):
        symbols, bars, _ = CASES[case]
        with tempfile.TemporaryDirectory(prefix="margincall-memory-") as scratch:
            # the bars are written by a process of their own, so that the measured child is
            # not forked from a parent holding them
            store = ["--via-store"] if args.via_store else []
            subprocess.run([sys.executable, __file__, "--generate", case, "--folder", scratch, *store],
                           check=True)
            command = [sys.executable, __file__, "--child", case, "--folder", scratch,
                       "--project", str(args.project), *store] + (["--write"] if args.write else []) \
                + (["--phases"] if args.phases else [])
            subprocess.run(command, check=True, env=dict(os.environ, PYTHONPATH=str(args.project.resolve())))


if __name__ == "__main__":
    main()
