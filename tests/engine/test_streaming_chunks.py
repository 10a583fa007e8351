"""Chunk boundaries change nothing: the per-bar tables and the summary built chunk by chunk
(``backtest.metrics.bar_chunks``) and a run folder written in row groups hold exactly the
rows and figures of the whole run built at once; a streamed write that fails leaves no folder.
"""
from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from backtest import MarketData, RunConfig, Strategy
from backtest.engine import RunLoop
from backtest.metrics import BarState, bar_chunks, summarize
from backtest.results import OUTPUT_TABLES
from backtest.runfolder import ROW_GROUP_ROWS
from backtest.strategy import load_strategy
from data_loaders.synthetic import engine_frames, generate_perpetual

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
STREAMED = ("equity", "positions", "bars")
SIZES = (1, 7, 1000, None)  # None: the whole run in one chunk


class Flipper(Strategy):
    """Flips long/short on both symbols every ``every`` bars at high leverage: fills, funding,
    liquidations and flat stretches in the same run."""

    every = 97
    exposure = 6.0

    def on_bar(self, ctx) -> None:  # noqa: ANN001
        i = ctx.bar_index
        if i % self.every == 0:
            side = 1.0 if (i // self.every) % 2 == 0 else -1.0
            ctx.target_exposure(side * self.exposure, symbol=BTC)
            ctx.target_exposure(-side * self.exposure / 2, symbol=ETH)
        elif i % self.every == self.every // 2:
            ctx.target_exposure(0.0, symbol=ETH)


@pytest.fixture(scope="module")
def finished() -> RunLoop:
    btc = generate_perpetual(symbol=BTC, days=2, crash_day=1, seed=5, s0=60_000.0)
    eth = generate_perpetual(symbol=ETH, days=2, crash_day=1, seed=5, s0=3_400.0, correlated_with=btc)
    (b_bars, b_funding), (e_bars, e_funding) = engine_frames(btc), engine_frames(eth)
    data = MarketData.from_frames({BTC: b_bars, ETH: e_bars}, {BTC: b_funding, ETH: e_funding},
                                  timeframe="1m")
    run = RunLoop(data, load_strategy(Flipper), RunConfig(initial_balance=10_000.0, leverage=20.0,
                                                          margin_mode="cross"))
    run.loop()
    return run


@pytest.fixture(scope="module")
def whole(finished: RunLoop) -> dict:
    result = finished.result()
    return {"result": result, "tables": {name: result.frame(name) for name in OUTPUT_TABLES}}


def test_the_run_is_eventful(whole: dict) -> None:
    """The comparison below means something: trades, open and flat bars, funding."""
    tables = whole["tables"]
    assert tables["fills"].height > 20
    assert tables["funding"].height > 0
    assert 0 < tables["positions"].height < 2 * tables["equity"].height
    assert whole["result"].summary["max_drawdown"] > 0


@pytest.mark.parametrize("size", SIZES)
def test_chunked_tables_are_the_whole_tables(finished: RunLoop, whole: dict, size: int | None) -> None:
    streams = whole["result"]._streams
    n = len(finished.data)
    assert sorted(name for names in streams for name in names) == sorted(STREAMED)
    for names, stream in streams.items():
        chunks = list(stream(size or n))
        assert len(chunks) == (1 if size is None else -(-n // size)) * (2 if names == ("bars",) else 1)
        for k, name in enumerate(names):
            assert_frame_equal(pl.concat([chunk[k] for chunk in chunks]), whole["tables"][name])


@pytest.mark.parametrize("size", SIZES)
def test_chunked_summary_is_the_whole_summary(finished: RunLoop, whole: dict, size: int | None) -> None:
    st = finished.st
    expected = summarize(st, BarState(st), finished.config.initial_balance)
    got = summarize(st, bar_chunks(st, size or len(finished.data)), finished.config.initial_balance)
    assert got == expected
    for key in ("final_equity", "max_drawdown", "max_drawdown_start", "max_drawdown_end",
                "worst_margin_ratio", "worst_margin_ratio_ts", "bars"):
        assert got[key] == whole["result"].summary[key], key


@pytest.mark.parametrize("size", [7, 1000])
@pytest.mark.parametrize("group_rows", [500, ROW_GROUP_ROWS])
def test_a_streamed_folder_has_the_bytes_of_a_whole_one(tmp_path: Path, finished: RunLoop, size: int,
                                                        group_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same run written streamed (chunks of ``size`` bars) and whole: every table has the
    same sha256, in row groups of ``ROW_GROUP_ROWS`` rows that the chunks do not align with."""
    import json

    import pyarrow.parquet as pq

    from backtest import runfolder

    monkeypatch.setattr(runfolder, "ROW_GROUP_ROWS", group_rows)
    streamed = finished.result()
    streamed.chunk_bars = size
    chunks = []
    for names, stream in list(streamed._streams.items()):
        streamed._streams[names] = lambda n, stream=stream: (chunks.append(n) or chunk for chunk in stream(n))
    whole = finished.result()
    whole.chunk_bars = len(finished.data)  # not longer than a chunk: every table built whole
    streamed_folder = streamed.write(tmp_path / "streamed")
    whole_folder = whole.write(tmp_path / "whole")
    assert len(chunks) > len(finished.data) // size  # the per-bar tables did go chunk by chunk
    streamed_files = json.loads((streamed_folder / "manifest.json").read_text())["files"]
    whole_files = json.loads((whole_folder / "manifest.json").read_text())["files"]
    assert streamed_files == whole_files  # rows, bytes and sha256 of every table
    reference = finished.result()  # a fresh result: its tables built whole, in memory
    for name in OUTPUT_TABLES:
        assert_frame_equal(pl.read_parquet(streamed_folder / f"{name}.parquet"), reference.frame(name))
    groups = pq.ParquetFile(streamed_folder / "equity.parquet").metadata
    assert groups.num_row_groups == -(-len(finished.data) // group_rows)
    assert groups.row_group(0).num_rows == min(group_rows, len(finished.data))
    from backtest.runfolder import open_results

    con = open_results(streamed_folder)
    try:
        assert con.execute("SELECT count(*) FROM equity").fetchone()[0] == len(finished.data)
    finally:
        con.close()


def test_empty_tables_keep_their_columns(tmp_path: Path) -> None:
    """A table with no rows is written with its schema and no row group; it reads back equal."""
    from backtest.runfolder import write_parquet

    frame = pl.DataFrame({"ts": pl.Series([], dtype=pl.Datetime("ms", "UTC")), "symbol": pl.Series([], dtype=pl.Utf8),
                          "qty": pl.Series([], dtype=pl.Float64)})
    path = tmp_path / "empty.parquet"
    assert write_parquet(path, [frame]) == 0
    assert_frame_equal(pl.read_parquet(path), frame)
    with pytest.raises(ValueError, match="no chunk"):
        write_parquet(tmp_path / "none.parquet", [])
    assert not (tmp_path / "none.parquet").exists()


def test_drawdown_across_a_chunk_boundary() -> None:
    """The running peak and the drawdown's start carry over chunks (hand-made curve)."""
    import numpy as np

    from backtest.metrics import _Drawdown

    equity = np.array([100.0, 110.0, 105.0, 120.0, 90.0, 95.0, 130.0, 125.0])
    for size in range(1, equity.size + 1):
        dd = _Drawdown(100.0)
        for start in range(0, equity.size, size):
            dd.add(equity[start:start + size], start)
        assert (dd.value, dd.end, dd.start) == (pytest.approx(0.25), 4, 3), size


def test_a_failing_streamed_write_leaves_no_folder(tmp_path: Path, finished: RunLoop) -> None:
    """A write that dies half-way through a streamed table (a kill, a full disk) leaves neither
    the run folder nor a partial one next to it."""
    result = finished.result()
    result.chunk_bars = 100
    key = ("positions",)
    real = result._streams[key]

    def dying(size: int):  # noqa: ANN202 - a generator of chunks
        for k, chunk in enumerate(real(size)):
            if k == 3:
                raise OSError("No space left on device")
            yield chunk

    result._streams[key] = dying
    with pytest.raises(OSError, match="No space"):
        result.write(tmp_path / "run")
    assert list(tmp_path.iterdir()) == []
    assert not math.isnan(result.summary["final_equity"])
