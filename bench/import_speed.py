"""Import speed of the data layer: one year of 1m candles (525,600 rows) from a Binance-format
CSV and from Parquet into fresh stores, the stored size, and the latency of a one-year
daily-OHLC aggregate through the DuckDB catalog. Prints one JSON object.

    .venv/bin/python bench/import_speed.py [--rows 525600]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_loaders.binance_dump import import_dump  # noqa: E402
from data_loaders.generic import import_generic  # noqa: E402
from data_loaders.store import MarketStore  # noqa: E402

YEAR_START_MS = 1_577_836_800_000  # 2020-01-01 00:00 UTC
MINUTE_MS = 60_000

DAILY_OHLC = """
    select date_trunc('day', ts) as day, first(open order by ts) as open, max(high) as high,
           min(low) as low, last(close order by ts) as close, sum(volume) as volume
    from ohlcv where symbol = 'BTC/USDT:USDT' and timeframe = '1m' and price_type = 'last'
      and ts >= TIMESTAMPTZ '2020-01-01 00:00:00+00' and ts < TIMESTAMPTZ '2021-01-01 00:00:00+00'
    group by 1 order by 1
"""


def make_candles(rows: int, seed: int = 7) -> pl.DataFrame:
    """A random-walk year of 1m candles in Binance's 12 kline columns (prices 0.1 tick)."""
    rng = np.random.default_rng(seed)
    close = np.round(7000.0 * np.exp(np.cumsum(rng.normal(0, 0.0008, rows))), 1)
    open_ = np.concatenate([[7000.0], close[:-1]])
    wick = np.round(np.abs(rng.normal(0, 3.0, (2, rows))), 1)
    open_time = YEAR_START_MS + np.arange(rows, dtype=np.int64) * MINUTE_MS
    volume = np.round(rng.gamma(2.0, 20.0, rows), 3)
    return pl.DataFrame({
        "open_time": open_time, "open": open_, "high": np.maximum(open_, close) + wick[0],
        "low": np.minimum(open_, close) - wick[1], "close": close, "volume": volume,
        "close_time": open_time + MINUTE_MS - 1, "quote_volume": np.round(volume * close, 4),
        "count": rng.integers(50, 5000, rows), "taker_buy_volume": np.round(volume / 2, 3),
        "taker_buy_quote_volume": np.round(volume * close / 2, 4), "ignore": np.zeros(rows, dtype=np.int64),
    })


def tree_mib(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*.parquet")) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=525_600, help="1m candles to generate (default one year)")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="margincall-bench-") as tmp:
        work = Path(tmp)
        candles = make_candles(args.rows)
        csv_path = work / "futures/um/yearly/klines/BTCUSDT/1m/BTCUSDT-1m-2020-01.csv"
        csv_path.parent.mkdir(parents=True)
        candles.write_csv(csv_path, include_header=True)
        parquet_path = work / "binance_um_BTCUSDT_1m_2020.parquet"
        candles.select(pl.col("open_time").cast(pl.Datetime("ms", "UTC")), "open", "high", "low", "close",
                       "volume").write_parquet(parquet_path)

        csv_store = MarketStore(work / "store_csv")
        t = time.perf_counter()
        csv_result = import_dump(csv_store, csv_path)
        csv_seconds = time.perf_counter() - t

        parquet_store = MarketStore(work / "store_parquet")
        t = time.perf_counter()
        parquet_result = import_generic(parquet_store, parquet_path, timeframe="1m")
        parquet_seconds = time.perf_counter() - t
        assert csv_result.write.rows_added == parquet_result.write.rows_added == args.rows

        con = parquet_store.connect()
        con.execute(DAILY_OHLC).fetchall()  # warm the file metadata cache once
        latencies = []
        for _ in range(5):
            t = time.perf_counter()
            days = con.execute(DAILY_OHLC).fetchall()
            latencies.append((time.perf_counter() - t) * 1000)
        figures = {
            "rows": args.rows,
            "csv_mib": round(csv_path.stat().st_size / 2**20, 1),
            "import_csv_rows_per_s": round(args.rows / csv_seconds),
            "import_parquet_rows_per_s": round(args.rows / parquet_seconds),
            "store_year_mib": round(tree_mib(parquet_store.root), 2),
            "query_daily_ohlc_days": len(days),
            "query_daily_ohlc_ms_median": round(sorted(latencies)[len(latencies) // 2], 1),
            "total_s": round(time.perf_counter() - started, 2),
        }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
