"""CSV dumps parsed block by block (bounded memory) equal one whole parse; errors still name the line.

Block size is shrunk to a few lines so that every boundary case (a line cut by the read, the
last line without a newline, a bad line in a later block) is exercised on tiny files.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

import data_loaders.binance_dump as dump
from data_loaders.errors import ImportFormatError
from data_loaders.schemas import conform, get_schema
from data_loaders.store import MarketStore, _file_parts
from tests.data.dumps import KLINE_HEADER, MINUTE, T0, kline_lines, write_csv

CSV_NAME = "futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2020-03.csv"


def _whole(path: Path) -> pl.DataFrame:
    """The reference: the file parsed in one block."""
    return dump.load_dump(path)[1]


@pytest.mark.parametrize("header", [KLINE_HEADER, None])
@pytest.mark.parametrize("block", [97, 300, 1000])
@pytest.mark.parametrize("newline_at_end", [True, False])
def test_blocks_equal_one_parse(tmp_path: Path, monkeypatch, header, block, newline_at_end) -> None:
    path = write_csv(tmp_path / CSV_NAME, kline_lines(40), header)
    if not newline_at_end:
        path.write_bytes(path.read_bytes().rstrip(b"\n"))
    whole = _whole(path)
    monkeypatch.setattr(dump, "PARSE_BLOCK_BYTES", block)
    spec, frame, first_line = dump.load_dump(path)
    assert frame.equals(whole) and frame.height == 40
    assert frame.columns == whole.columns and first_line == (2 if header else 1)
    # the file's constants are one broadcast value, not copied per block
    assert frame.select(pl.col("symbol").n_unique()).item() == 1


def test_bytes_source_in_blocks_equals_the_file(tmp_path: Path, monkeypatch) -> None:
    path = write_csv(tmp_path / CSV_NAME, kline_lines(25), KLINE_HEADER)
    spec = dump.infer_spec(path)
    from_file, _ = dump.parse(path, spec, path=path)
    monkeypatch.setattr(dump, "PARSE_BLOCK_BYTES", 150)
    from_bytes, line = dump.parse(path.read_bytes(), spec, path=path)
    assert from_bytes.equals(from_file) and line == 2


def test_truncated_line_in_a_later_block_names_its_file_line(tmp_path: Path, monkeypatch) -> None:
    lines = kline_lines(30)
    lines[22] = lines[22][:30]  # file line 24 (header is line 1)
    path = write_csv(tmp_path / CSV_NAME, lines, KLINE_HEADER)
    monkeypatch.setattr(dump, "PARSE_BLOCK_BYTES", 400)
    with pytest.raises(ImportFormatError, match=r"1 line\(s\) have missing fields \(lines 24\)"):
        dump.load_dump(path)


def test_bad_time_in_a_later_block_names_its_file_line(tmp_path: Path, monkeypatch) -> None:
    lines = kline_lines(30)
    lines[25] = lines[25].replace(str(T0 + 25 * MINUTE), str((T0 + 25 * MINUTE) // 1000), 1)  # seconds
    path = write_csv(tmp_path / CSV_NAME, lines)  # no header: data line i is file line i + 1
    monkeypatch.setattr(dump, "PARSE_BLOCK_BYTES", 300)
    with pytest.raises(ImportFormatError, match=r"neither.*on line 26"):
        dump.load_dump(path)


def test_header_only_file_is_refused(tmp_path: Path, monkeypatch) -> None:
    path = write_csv(tmp_path / CSV_NAME, [], KLINE_HEADER)
    monkeypatch.setattr(dump, "PARSE_BLOCK_BYTES", 50)
    with pytest.raises(ImportFormatError, match="found only the header"):
        dump.load_dump(path)


def _candles(times: list[int], symbol: str = "BTC/USDT:USDT") -> pl.DataFrame:
    n = len(times)
    return conform("ohlcv", pl.DataFrame({
        "exchange": ["binanceusdm"] * n, "symbol": [symbol] * n, "timeframe": ["1h"] * n,
        "price_type": ["last"] * n, "ts": times, "open": [1.0] * n, "high": [2.0] * n, "low": [0.5] * n,
        "close": [1.5] * n, "volume": [3.0] * n}))


def _by_partition_by(frame: pl.DataFrame) -> list[tuple[str, str, pl.DataFrame]]:
    """The reference grouping: partition_by on the market and the year, in order of appearance."""
    schema = get_schema("ohlcv")
    keyed = frame.with_columns(_period=pl.col("ts").dt.strftime("%Y"))
    return [(p["symbol"][0], p["_period"][0], p.drop("_period"))
            for p in keyed.partition_by([*schema.partitions, "_period"], maintain_order=True)]


@pytest.mark.parametrize("case", ["sorted_two_years", "unsorted", "two_markets"])
def test_file_parts_equal_partition_by(case: str) -> None:
    hour = 3_600_000
    new_year = int(datetime(2021, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    times = [new_year + k * hour for k in range(-3, 4)]
    if case == "unsorted":
        times = times[4:] + times[:4]
    frame = _candles(times)
    if case == "two_markets":
        frame = pl.concat([frame, _candles(times, "ETH/USDT:USDT")])
    parts = [(first["symbol"], period, part) for first, period, part in _file_parts(frame, get_schema("ohlcv"))]
    expected = _by_partition_by(frame)
    assert [(s, p) for s, p, _ in parts] == [(s, p) for s, p, _ in expected]
    assert all(a.equals(b) for (_, _, a), (_, _, b) in zip(parts, expected))
    assert len(parts) == (4 if case == "two_markets" else 2)


def test_import_across_a_year_writes_both_files(tmp_path: Path) -> None:
    new_year = int(datetime(2021, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    path = write_csv(tmp_path / CSV_NAME, kline_lines(10, start=new_year - 5 * MINUTE), KLINE_HEADER)
    store = MarketStore(tmp_path / "store")
    result = dump.import_dump(store, path)
    assert result.write.rows_added == 10
    assert sorted(p.name for p in result.write.files) == ["part-2020.parquet", "part-2021.parquet"]
    again = dump.import_dump(store, path)  # the same file again: nothing added, nothing changed
    assert again.write.rows_added == 0 and again.write.rows_unchanged == 10


def test_a_header_naming_other_columns_is_refused_in_blocks_as_in_one(tmp_path: Path, monkeypatch) -> None:
    """The header stays in the first block, so polars still checks it against the expected columns."""
    header = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,extra"
    lines = [f"{100 + i},8500.{i},0.01,{200 + i},{200 + i},{T0 + i * 250},true,1" for i in range(30)]
    path = write_csv(tmp_path / "futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2020-03-01.csv", lines, header)
    with pytest.raises(ImportFormatError) as whole:
        dump.load_dump(path)
    monkeypatch.setattr(dump, "PARSE_BLOCK_BYTES", 200)
    with pytest.raises(ImportFormatError) as blocks:
        dump.load_dump(path)
    assert str(blocks.value) == str(whole.value)


@pytest.mark.parametrize("cut", range(1, 9))
def test_utf8_scan_judges_a_character_cut_by_a_read(tmp_path: Path, monkeypatch, cut: int) -> None:
    """ASCII reads skip the decoder, but a multi-byte character split between reads is still
    checked as one, and an invalid byte after ASCII reads is still found."""
    monkeypatch.setattr(dump, "_CHUNK_BYTES", cut)
    good = tmp_path / "good.csv"
    good.write_bytes("a,b\n1,2\ncomment é€ 😀 ok\n3,4\n".encode())
    assert dump._plain_utf8_file(good)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n1,2\n3,\xe9\n")  # latin-1 e-acute: not UTF-8
    assert not dump._plain_utf8_file(bad)
    cut_char = tmp_path / "cut.csv"
    cut_char.write_bytes("ab€".encode()[:-1] + b"\n")  # a character missing its last byte
    assert not dump._plain_utf8_file(cut_char)
