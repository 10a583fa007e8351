"""Fixtures of the lending tests: real ETH candles from ../shared (through ``shared_data``) and a
small store holding them, as ``margincall lending`` reads it."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.risk.conftest import read_shared_bars

ETH_1H = "klines/long/binance_um_ETHUSDT_1h_2019-11-27_2026-05-17.parquet"
ETH_5M_OCT = "klines/crash_2025-10-10/binance_um_ETHUSDT_5m_2025-10-09_2025-10-12.parquet"
SYMBOL = "ETH/USDT:USDT"


@pytest.fixture(scope="session")
def black_thursday_bars(shared_data: Path) -> pl.DataFrame:
    """ETH perpetual 1h candles, 2020-03-12 00:00 to 2020-03-14 00:00 UTC."""
    return read_shared_bars(shared_data / ETH_1H, start="2020-03-12", end="2020-03-14")


@pytest.fixture(scope="session")
def october_bars(shared_data: Path) -> pl.DataFrame:
    """ETH perpetual 5m candles, 2025-10-09 to 2025-10-13 UTC."""
    return read_shared_bars(shared_data / ETH_5M_OCT)


@pytest.fixture(scope="session")
def lending_store(shared_data: Path, tmp_path_factory) -> Path:
    """A store with the ETH 1h candles around Black Thursday and the 5m candles of 2025-10-10."""
    from data_loaders.store import MarketStore

    root = tmp_path_factory.mktemp("lending") / "store"
    store = MarketStore(root)
    for path, timeframe, start, end in ((ETH_1H, "1h", "2020-03-11", "2020-03-15"),
                                        (ETH_5M_OCT, "5m", None, None)):
        bars = read_shared_bars(shared_data / path, start=start, end=end)
        store.write("ohlcv", bars.with_columns(
            exchange=pl.lit("binanceusdm"), symbol=pl.lit(SYMBOL), timeframe=pl.lit(timeframe),
            price_type=pl.lit("last")), source="test")
    return root
