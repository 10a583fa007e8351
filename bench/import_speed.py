"""Import speed of the data layer: two years of 1m candles (1,051,200 rows) from a
Binance-format CSV and from Parquet into fresh stores, the peak memory of each import, the
stored size, and the latency of a one-year daily-OHLC aggregate through the DuckDB catalog;
then the CSV import again for 4 and 8 years (``--years``), to show that its peak memory stays
flat as the file grows (the import streams the file block by block, one stored year at a time);
each CSV import is also run a second time into its store ("again": every row merged with an
equal stored one, no file rewritten).
Prints one JSON object.

Each import runs in its own child process (a fresh interpreter, as ``margincall data import``
does), so its peak RSS (``VmHWM`` of the child's ``/proc/self/status``, interpreter and imports
included; not ``ru_maxrss``, which Linux carries over an exec from the forking parent) is the
import's alone; the time is the import call only.

    .venv/bin/python bench/import_speed.py [--years 2 4 8] [--rows N]
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

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_loaders.store import MarketStore  # noqa: E402

YEAR_START_MS = 1_577_836_800_000  # 2020-01-01 00:00 UTC
MINUTE_MS = 60_000
YEAR_ROWS = 525_600  # 1m candles in 365 days

DAILY_OHLC = """
    select date_trunc('day', ts) as day, first(open order by ts) as open, max(high) as high,
           min(low) as low, last(close order by ts) as close, sum(volume) as volume
    from ohlcv where symbol = 'BTC/USDT:USDT' and timeframe = '1m' and price_type = 'last'
      and ts >= TIMESTAMPTZ '2020-01-01 00:00:00+00' and ts < TIMESTAMPTZ '2021-01-01 00:00:00+00'
    group by 1 order by 1
"""


def make_candles(rows: int, seed: int = 7, *, start_ms: int = YEAR_START_MS, price: float = 7000.0) -> pl.DataFrame:
    """A random walk of 1m candles from ``start_ms`` in Binance's 12 kline columns (prices 0.1 tick)."""
    rng = np.random.default_rng(seed)
    close = np.round(price * np.exp(np.cumsum(rng.normal(0, 0.0008, rows))), 1)
    open_ = np.concatenate([[price], close[:-1]])
    wick = np.round(np.abs(rng.normal(0, 3.0, (2, rows))), 1)
    open_time = start_ms + np.arange(rows, dtype=np.int64) * MINUTE_MS
    volume = np.round(rng.gamma(2.0, 20.0, rows), 3)
    return pl.DataFrame({
        "open_time": open_time, "open": open_, "high": np.maximum(open_, close) + wick[0],
        "low": np.minimum(open_, close) - wick[1], "close": close, "volume": volume,
        "close_time": open_time + MINUTE_MS - 1, "quote_volume": np.round(volume * close, 4),
        "count": rng.integers(50, 5000, rows), "taker_buy_volume": np.round(volume / 2, 3),
        "taker_buy_quote_volume": np.round(volume * close / 2, 4), "ignore": np.zeros(rows, dtype=np.int64),
    })


_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from data_loaders.binance_dump import import_dump
from data_loaders.generic import import_generic
from data_loaders.store import MarketStore
def hwm_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
kind, source, store = sys.argv[1:4]
baseline = hwm_mib()
cpu = time.process_time()
t = time.perf_counter()
if kind == "csv":
    result = import_dump(MarketStore(store), source)
else:
    result = import_generic(MarketStore(store), source, timeframe="1m")
seconds = time.perf_counter() - t
cpu = time.process_time() - cpu
print(json.dumps({{"seconds": seconds, "cpu_s": cpu, "rows": result.write.rows_added, "baseline_rss_mib": baseline,
                  "peak_rss_mib": hwm_mib()}}))
"""


def import_in_child(kind: str, source: Path, store: Path) -> dict:
    """Run one import in a fresh interpreter; returns its seconds, rows added and peak RSS (MiB)."""
    code = _CHILD.format(root=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-c", code, kind, str(source), str(store)], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_candles_csv(path: Path, rows: int) -> None:
    """Write ``rows`` 1m candles as one Binance CSV, a year at a time (the parent never holds 8 years)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    price = 7000.0
    with open(path, "wb") as handle:
        for part, start in enumerate(range(0, rows, YEAR_ROWS)):
            candles = make_candles(min(YEAR_ROWS, rows - start), seed=7 + part,
                                   start_ms=YEAR_START_MS + start * MINUTE_MS, price=price)
            candles.write_csv(handle, include_header=part == 0)
            price = float(candles["close"][-1])


def csv_run_figures(rows: int, csv_path: Path, run: dict, again: dict) -> dict:
    """Rows/s, CPU seconds and peak RSS (MiB and x the CSV) of one CSV import into a fresh store,
    and of the same import again (every row merged with, and equal to, a stored one)."""
    csv_mib = csv_path.stat().st_size / 2**20
    return {"rows": rows, "csv_mib": round(csv_mib, 1), "rows_per_s": round(rows / run["seconds"]),
            "wall_s": round(run["seconds"], 2), "cpu_s": round(run["cpu_s"], 2),
            "peak_rss_mib": round(run["peak_rss_mib"], 1), "peak_rss_over_csv": round(run["peak_rss_mib"] / csv_mib, 2),
            "again_wall_s": round(again["seconds"], 2), "again_cpu_s": round(again["cpu_s"], 2),
            "again_peak_rss_mib": round(again["peak_rss_mib"], 1)}


def tree_mib(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*.parquet")) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, nargs="+", default=[2, 4, 8],
                        help="years of 1m candles per CSV import (default 2 4 8; the first also runs the "
                             "Parquet import and the query)")
    parser.add_argument("--rows", type=int, default=None, help="1m candles of one run instead of --years")
    args = parser.parse_args()
    sizes = [args.rows] if args.rows else [years * YEAR_ROWS for years in args.years]
    started, cpu_started = time.perf_counter(), time.process_time()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="margincall-bench-") as tmp:
        work = Path(tmp)
        rows = sizes[0]
        csv_path = work / "futures/um/yearly/klines/BTCUSDT/1m/BTCUSDT-1m-2020-01.csv"
        write_candles_csv(csv_path, rows)
        parquet_path = work / "binance_um_BTCUSDT_1m_2020.parquet"
        pl.read_csv(csv_path).select(pl.col("open_time").cast(pl.Datetime("ms", "UTC")), "open", "high", "low",
                                     "close", "volume").write_parquet(parquet_path)

        csv_run = import_in_child("csv", csv_path, work / "store_csv")
        parquet_run = import_in_child("parquet", parquet_path, work / "store_parquet")
        assert csv_run["rows"] == parquet_run["rows"] == rows
        parquet_store = MarketStore(work / "store_parquet")
        con = parquet_store.connect()
        con.execute(DAILY_OHLC).fetchall()  # warm the file metadata cache once
        latencies = []
        for _ in range(5):
            t = time.perf_counter()
            days = con.execute(DAILY_OHLC).fetchall()
            latencies.append((time.perf_counter() - t) * 1000)
        con.close()
        again = import_in_child("csv", csv_path, work / "store_csv")
        assert again["rows"] == 0
        by_size = [{"years": round(rows / YEAR_ROWS, 2), **csv_run_figures(rows, csv_path, csv_run, again)}]
        parquet_path.unlink()
        for more in sizes[1:]:  # the CSV import alone, on a longer file: its peak memory should stay flat
            for old in (csv_path, *work.glob("store_csv*/**/*.parquet")):
                old.unlink()
            write_candles_csv(csv_path, more)
            run = import_in_child("csv", csv_path, work / f"store_csv_{more}")
            again = import_in_child("csv", csv_path, work / f"store_csv_{more}")
            assert run["rows"] == more and again["rows"] == 0
            by_size.append({"years": round(more / YEAR_ROWS, 2), **csv_run_figures(more, csv_path, run, again)})
        figures = {
            "rows": rows,
            "csv_mib": by_size[0]["csv_mib"],
            "import_csv_rows_per_s": round(rows / csv_run["seconds"]),
            "import_csv_cpu_s": round(csv_run["cpu_s"], 2),
            "import_csv_peak_rss_mib": round(csv_run["peak_rss_mib"], 1),
            "interpreter_rss_mib": round(csv_run["baseline_rss_mib"], 1),
            "import_csv_peak_rss_over_csv": by_size[0]["peak_rss_over_csv"],
            "import_parquet_rows_per_s": round(rows / parquet_run["seconds"]),
            "import_parquet_cpu_s": round(parquet_run["cpu_s"], 2),
            "import_parquet_peak_rss_mib": round(parquet_run["peak_rss_mib"], 1),
            "store_year_mib": round(tree_mib(parquet_store.root), 2),
            "query_daily_ohlc_days": len(days),
            "query_daily_ohlc_ms_median": round(sorted(latencies)[len(latencies) // 2], 1),
            "csv_import_by_size": by_size,
            "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "parent_cpu_s": round(time.process_time() - cpu_started, 2),
            "total_s": round(time.perf_counter() - started, 2),
        }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
