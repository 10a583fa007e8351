"""Fixtures of the risk-lab tests: venue tier tables and real-data loaders (via shared_data)."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from backtest.venues.defaults import default_tier_schedule


@pytest.fixture(scope="session")
def btc_tiers():
    """The built-in BTC/USDT:USDT bracket table in force on 2023-06-01."""
    return default_tier_schedule("binance_usdm", "BTC/USDT:USDT").at(1_685_577_600_000)


def read_shared_bars(path: Path, *, mark: Path | None = None, start: str | None = None,
                     end: str | None = None) -> pl.DataFrame:
    """A shared kline file in the engine's bar format (``ts`` + OHLCV, mark columns when given)."""
    frame = pl.read_parquet(path).select(
        pl.col("open_time").alias("ts"), "open", "high", "low", "close", "volume")
    if mark is not None:
        marks = pl.read_parquet(mark).select(
            pl.col("open_time").alias("ts"),
            *[pl.col(c).alias(f"mark_{c}") for c in ("open", "high", "low", "close")])
        frame = frame.join(marks, on="ts", how="inner")
    if start is not None:
        frame = frame.filter(pl.col("ts") >= pl.lit(start).str.to_datetime(time_zone="UTC").dt.cast_time_unit("ms"))
    if end is not None:
        frame = frame.filter(pl.col("ts") < pl.lit(end).str.to_datetime(time_zone="UTC").dt.cast_time_unit("ms"))
    return frame.sort("ts")


AUG5_5M = "klines/crash_2024-08-05/binance_um_BTCUSDT_5m_2024-08-04_2024-08-06.parquet"
OCT10_5M = "klines/crash_2025-10-10/binance_um_BTCUSDT_5m_2025-10-09_2025-10-12.parquet"


def store_shared_window(shared_data: Path, root: Path, symbol: str, kline: str, *, start: str | None = None,
                        end: str | None = None) -> pl.DataFrame:
    """Store a shared Binance 5m last-price kline file (``kline``, relative to ../shared/data) as
    ``symbol`` on binanceusdm in a store at ``root``, optionally cut to ``[start, end)``; returns
    the bars."""
    from data_loaders.store import MarketStore

    bars = read_shared_bars(shared_data / kline, start=start, end=end)
    MarketStore(root).write("ohlcv", bars.with_columns(exchange=pl.lit("binanceusdm"), symbol=pl.lit(symbol),
                                                       timeframe=pl.lit("5m"), price_type=pl.lit("last")), source="test")
    return bars


def store_oct10_window(shared_data: Path, root: Path, symbol: str) -> pl.DataFrame:
    """Store Binance's real BTCUSDT 5m last-price candles of 2025-10-10 21:00-21:30 UTC (the
    cascade's worst half hour) as ``symbol`` on binanceusdm in a store at ``root``; returns them."""
    return store_shared_window(shared_data, root, symbol, OCT10_5M, start="2025-10-10T21:00:00",
                               end="2025-10-10T21:30:00")
