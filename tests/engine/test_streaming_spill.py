"""Columns on disk change nothing: a run whose bars (and features) are spilled to a scratch
file (``backtest.spill``), read from LazyFrames and run in small loop chunks gives the very
tables and summary of the in-memory run; a strategy's lookback across released chunks reads
the true values; released pages leave the process's resident memory.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from backtest import MarketData, RunConfig, Strategy, run_backtest
from backtest.errors import MarketDataError
from backtest.results import OUTPUT_TABLES
from backtest.spill import Spill
from data_loaders.synthetic import engine_frames, generate_perpetual

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


@pytest.fixture(scope="module")
def frames() -> dict:
    btc = generate_perpetual(symbol=BTC, days=2, crash_day=1, seed=9, s0=60_000.0)
    eth = generate_perpetual(symbol=ETH, days=2, crash_day=1, seed=9, s0=3_400.0, correlated_with=btc)
    (b, bf), (e, ef) = engine_frames(btc), engine_frames(eth)
    return {"bars": {BTC: b, ETH: e}, "funding": {BTC: bf, ETH: ef}}


def _data(frames: dict, **kwargs) -> MarketData:
    return MarketData.from_frames(kwargs.pop("bars", frames["bars"]), frames["funding"], timeframe="1m", **kwargs)


class Lookback(Strategy):
    """Trades on the close ``lag`` bars ago against the current one (a long lookback) and
    records what it read, to be checked against the input frame."""

    lag = 150
    fast = 20

    def features(self, bars: pl.DataFrame) -> pl.DataFrame:
        return bars.with_columns(pl.col("close").rolling_mean(self.fast).alias("sma"))

    def on_start(self, ctx) -> None:  # noqa: ANN001
        self.seen = []

    def on_bar(self, ctx) -> None:  # noqa: ANN001
        i = ctx.bar_index
        if i < self.lag:
            return
        old = ctx.feature("close", ago=self.lag)
        sma = ctx.feature("sma", symbol=ETH, ago=self.lag // 2)
        if i % 37 == 0:
            self.seen.append((i, old, sma))
            ctx.target_exposure(3.0 if ctx.feature("close") > old else -3.0, symbol=BTC)
            ctx.target_exposure(1.0 if sma < ctx.feature("close", symbol=ETH) else -1.0, symbol=ETH)


def _run(data: MarketData, strategy: Strategy) -> dict:
    result = run_backtest(data, strategy, config=RunConfig(initial_balance=10_000.0, leverage=10.0,
                                                           margin_mode="cross"))
    return {"summary": json.dumps(result.summary, sort_keys=True),
            "tables": {name: result.frame(name) for name in OUTPUT_TABLES}}


@pytest.fixture(scope="module")
def reference(frames: dict) -> dict:
    data = _data(frames, spill=False)
    assert data.spill is None
    strategy = Lookback()
    out = _run(data, strategy)
    out["seen"] = strategy.seen
    return out


def _same(got: dict, expected: dict) -> None:
    assert got["summary"] == expected["summary"]
    for name in OUTPUT_TABLES:
        assert_frame_equal(got["tables"][name], expected["tables"][name])


def test_the_reference_run_trades(reference: dict) -> None:
    assert reference["tables"]["fills"].height > 10
    assert len(reference["seen"]) > 20


@pytest.mark.parametrize("chunk", [1, 7, 1000, None])
def test_spilled_chunked_runs_equal_the_in_memory_run(frames: dict, reference: dict, chunk: int | None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Spilled columns, released every ``chunk`` bars of the loop, give identical results; the
    strategy's lookback of 150 bars crosses released chunks and reads the input's values."""
    import backtest.engine

    if chunk is not None:
        monkeypatch.setattr(backtest.engine, "CHUNK_BARS", chunk)
    data = _data(frames, spill=True)
    assert data.spill is not None and len(data.spill) >= 20
    strategy = Lookback()
    got = _run(data, strategy)
    _same(got, reference)
    assert strategy.seen == reference["seen"]
    close = frames["bars"][BTC].get_column("close").to_list()
    sma = frames["bars"][ETH].get_column("close").rolling_mean(Lookback.fast).to_list()
    for i, old, avg in strategy.seen:
        assert old == close[i - Lookback.lag]
        assert avg == sma[i - Lookback.lag // 2]


def test_lazy_frames_read_in_batches_equal_eager_frames(tmp_path: Path, frames: dict, reference: dict) -> None:
    lazy = {}
    for symbol, frame in frames["bars"].items():
        path = tmp_path / f"{symbol.split('/')[0]}.parquet"
        frame.write_parquet(path, row_group_size=500)
        lazy[symbol] = pl.scan_parquet(path)
    data = _data(frames, bars=lazy)
    assert data.spill is not None
    for symbol, frame in frames["bars"].items():
        assert_frame_equal(data.frames[symbol], MarketData.from_frames(
            {symbol: frame}, timeframe="1m", spill=False).frames[symbol])
    _same(_run(data, Lookback()), reference)


def test_a_lazy_price_column_with_nulls_is_refused_as_an_eager_one(frames: dict) -> None:
    frame = frames["bars"][BTC].with_columns(
        pl.when(pl.int_range(pl.len()) == 1234).then(None).otherwise(pl.col("high")).alias("high"))
    with pytest.raises(MarketDataError) as eager:
        MarketData.from_frames({BTC: frame}, timeframe="1m", spill=False)
    with pytest.raises(MarketDataError) as lazy:
        MarketData.from_frames({BTC: frame.lazy()}, timeframe="1m")
    assert str(lazy.value) == str(eager.value)
    assert "1 nulls" in str(lazy.value)


def test_spilled_frames_keep_dtypes_values_and_unspillable_columns() -> None:
    ts = pl.datetime_range(pl.datetime(2024, 1, 1, time_zone="UTC"), pl.datetime(2024, 1, 2, time_zone="UTC"),
                           "1m", eager=True, time_unit="ms")
    n = ts.len()
    frame = pl.DataFrame({"ts": ts, "x": np.linspace(0.0, 1.0, n), "k": np.arange(n, dtype=np.int32),
                          "tag": ["a", "b"] * (n // 2) + ["c"] * (n % 2),
                          "gap": [None if i % 5 == 0 else float(i) for i in range(n)]})
    spill = Spill()
    for got in (spill.frame(frame), spill.lazy(frame.lazy(), batch_rows=100)):
        assert_frame_equal(got, frame)
        spill.release(0, n)
        assert_frame_equal(got, frame)  # released pages read back from the file
    assert spill.holds(spill.frame(frame))


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="resident memory read from Linux /proc")
def test_released_pages_leave_resident_memory() -> None:
    """The point of it all, measured on this process: reading a spilled 64 MiB column makes it
    resident, releasing it gives the memory back (while its values stay readable)."""
    def resident_mib() -> float:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096 / 2**20

    values = np.arange(8 << 20, dtype=np.float64)
    spill = Spill()
    column = spill.arrays({"v": values})["v"]
    del values
    before = resident_mib()
    total = float(column.sum())  # faults every page in
    touched = resident_mib()
    spill.release(0, column.size)
    after = resident_mib()
    assert touched - before > 48
    assert touched - after > 48
    assert float(column.sum()) == total


def test_the_store_loader_spills_symbol_by_symbol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``margincall run``'s loader (``load_market``) spills each symbol's bars (and detail
    candles) as soon as they are read when the range is long; the run is the in-memory one's."""
    import backtest.market_loader
    from backtest.market_loader import load_market
    from data_loaders.store import MarketStore
    from data_loaders.synthetic import write_to_store

    store = MarketStore(tmp_path / "store")
    write_to_store(store, [generate_perpetual(symbol=BTC, days=2, crash_day=1, seed=4)], timeframes=("1m", "5m"))
    query = dict(exchange="binanceusdm", symbols=[BTC], timeframe="5m", detail_timeframe="1m")
    memory = load_market(store, **query)
    assert memory.spill is None
    monkeypatch.setattr(backtest.market_loader, "SPILL_BARS", 100)
    spilled = load_market(store, **query)
    assert spilled.spill is not None and spilled.spill.holds(spilled.bars[BTC])
    assert spilled.spill.holds(spilled.detail[BTC])
    data = spilled.market_data()
    assert data.spill is spilled.spill
    config = RunConfig(initial_balance=1_000.0, leverage=40.0)
    a = run_backtest(memory.market_data(), "sma_cross", params={"fast": 5, "slow": 30}, config=config)
    b = run_backtest(data, "sma_cross", params={"fast": 5, "slow": 30}, config=config)
    assert json.dumps(a.summary, sort_keys=True) == json.dumps(b.summary, sort_keys=True)
    for name in OUTPUT_TABLES:
        assert_frame_equal(a.frame(name), b.frame(name))


def _resident_kib(spill: Spill) -> int:
    """Resident KiB of ``spill``'s scratch-file maps (Linux ``/proc/self/smaps``)."""
    bases = {np.frombuffer(view, np.uint8, 1).ctypes.data for view, *_ in spill._columns}
    total, current = 0, None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                current = int(head.split("-")[0], 16)
            elif head == "Rss:" and current in bases:
                total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="resident memory read from Linux /proc")
def test_a_streamed_table_leaves_the_spilled_bars_released(tmp_path: Path, frames: dict) -> None:
    """The ``bars`` table of a long run, written chunk by chunk, leaves at most one symbol's
    spilled candles resident (two symbols here). polars' sink encodes a chunk after it was
    handed over, so the writer copies streamed chunks as taken (``views=True``, what
    ``RunResult.write`` asks); without the copy the released pages of both symbols are
    faulted back in (measured: 352 of 480 KiB here, the whole history)."""
    from backtest.runfolder import write_parquet

    data = _data(frames, spill=True)
    result = run_backtest(data, Lookback(), config=RunConfig(initial_balance=10_000.0, leverage=10.0,
                                                             margin_mode="cross"))
    maps = {id(v): v for v, *_ in data.spill._columns}
    assert len(maps) == 2  # one scratch-file map per symbol
    total = sum(len(view) for view in maps.values()) // 1024
    data.release(0, len(data))
    before = _resident_kib(data.spill)
    path = tmp_path / "bars.parquet"
    rows = write_parquet(path, (chunk[0] for chunk in result._streams[("bars",)](64)), views=True)
    after = _resident_kib(data.spill)
    assert total > 300 and before == 0  # the maps hold the candles, none resident
    assert after <= total / 2, (after, total)
    assert rows == 2 * len(data)
    assert_frame_equal(pl.read_parquet(path), result.frame("bars"))
