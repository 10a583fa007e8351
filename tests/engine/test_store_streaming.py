"""``margincall run``'s store path streamed: a long range is read from the Parquet store batch
by batch (``MarketStore.read_batches``) into the run's scratch file, the mark candles joined
chunk by chunk; the bars, warnings and provenance are the whole-frame read's, to the bit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import backtest.market_loader
from backtest.market_loader import load_market
from data_loaders.errors import DataError
from data_loaders.store import MarketStore

BTC = "BTC/USDT:USDT"
MINUTE = 60_000
#: 2023-12-31 22:00 UTC: the candles cross a year, so two stored files.
START = 1_704_060_000_000
BARS = 300


def _candles(ts: np.ndarray, price_type: str, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 42_000.0 * np.exp(np.cumsum(rng.normal(0, 1e-3, ts.size)))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 5.0, ts.size))
    return pl.DataFrame({"exchange": "binanceusdm", "symbol": BTC, "timeframe": "1m", "price_type": price_type,
                         "ts": pl.Series(ts).cast(pl.Datetime("ms", "UTC")), "open": open_,
                         "high": np.maximum(open_, close) + spread, "low": np.minimum(open_, close) - spread,
                         "close": close, "volume": rng.uniform(1, 9, ts.size)})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> MarketStore:
    store = MarketStore(tmp_path_factory.mktemp("stream") / "store")
    ts = START + MINUTE * np.arange(BARS, dtype=np.int64)
    store.write("ohlcv", _candles(ts, "last", 1), source="test")
    # mark candles: 17 bars missing on either side of the new year, and 5 before the window
    gaps = np.r_[100:110, 125:132]
    mark_ts = np.r_[START - MINUTE * np.arange(5, 0, -1), np.delete(ts, gaps)]
    store.write("ohlcv", _candles(mark_ts, "mark", 2), source="test")
    return store


def test_read_batches_are_the_read_in_order(store: MarketStore) -> None:
    """The same rows as ``read`` over a window crossing the year's files, in batches of at most
    ``batch_rows`` rows."""
    query = dict(exchange="binanceusdm", symbol=BTC, timeframe="1m", price_type="last",
                 start=START + 7 * MINUTE, end=START + 290 * MINUTE)
    whole = store.read("ohlcv", **query)
    batches = store.read_batches("ohlcv", **query, batch_rows=50)
    parts = list(batches)
    assert len(batches.files) == 2 and max(p.height for p in parts) <= 50
    assert batches.count() == whole.height == 283
    assert_frame_equal(pl.concat(parts), whole)
    columns = store.read_batches("ohlcv", **query, columns=["ts", "close"])
    assert_frame_equal(pl.concat(list(columns)), whole.select("ts", "close"))
    assert columns.schema() == {"ts": pl.Datetime("ms", "UTC"), "close": pl.Float64}
    with pytest.raises(DataError, match="expected columns among.*found mark"):
        store.read_batches("ohlcv", **query, columns=["ts", "mark"])


def test_an_unsorted_file_is_refused_not_read(tmp_path: Path, store: MarketStore) -> None:
    from data_loaders.store_scan import StoredBatches

    path = tmp_path / "part-2024.parquet"
    store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1m").reverse().write_parquet(path)
    with pytest.raises(DataError, match="expected rows sorted by ts"):
        list(StoredBatches((path,), "ts", ("ts", "close"), batch_rows=64))


@pytest.mark.parametrize("window", [(None, None), (START + 3 * MINUTE, START + 250 * MINUTE),
                                    (START, START + 400 * MINUTE)])
def test_the_streamed_load_is_the_whole_one(store: MarketStore, monkeypatch: pytest.MonkeyPatch,
                                            window: tuple) -> None:
    """Bars (mark filled from last where missing), warnings and sources are identical whether
    the loader reads whole frames or streams to the scratch file; the streamed columns are in
    the map."""
    query = dict(exchange="binanceusdm", symbols=[BTC], timeframe="1m", start=window[0], end=window[1])
    memory = load_market(store, **query)
    assert memory.spill is None
    monkeypatch.setattr(backtest.market_loader, "SPILL_BARS", 64)
    monkeypatch.setattr(backtest.market_loader, "_JOIN_ROWS", 37)  # chunks that do not divide the bars
    streamed = load_market(store, **query)
    assert streamed.spill is not None and streamed.spill.holds(streamed.bars[BTC])
    assert_frame_equal(streamed.bars[BTC], memory.bars[BTC])
    assert streamed.warnings == memory.warnings
    assert streamed.sources == memory.sources
    bars = memory.bars[BTC]
    # the 17 missing mark candles fall back to the last price, the others are the mark's
    ts = bars["ts"].dt.epoch("ms").to_numpy()
    gap = np.isin((ts - START) // MINUTE, np.r_[100:110, 125:132])
    assert gap.sum() == 17 and any("17 of" in w for w in memory.warnings)
    np.testing.assert_array_equal(bars["mark_close"].to_numpy()[gap], bars["close"].to_numpy()[gap])
    assert not np.any(bars["mark_close"].to_numpy()[~gap] == bars["close"].to_numpy()[~gap])


def test_a_streamed_load_without_mark_candles_warns_and_uses_last(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store = MarketStore(tmp_path / "store")
    store.write("ohlcv", _candles(START + MINUTE * np.arange(120, dtype=np.int64), "last", 3), source="test")
    monkeypatch.setattr(backtest.market_loader, "SPILL_BARS", 10)
    loaded = load_market(store, exchange="binanceusdm", symbols=[BTC], timeframe="1m")
    bars = loaded.bars[BTC]
    assert loaded.spill.holds(bars)
    np.testing.assert_array_equal(bars["mark_low"].to_numpy(), bars["low"].to_numpy())
    assert any("no 1m mark-price candles" in w for w in loaded.warnings)
