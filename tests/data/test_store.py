"""MarketStore: atomic de-duplicating writes, reads, listing, coverage, manifest, catalog."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from data_loaders.errors import DataNotFoundError, DataValidationError, SchemaError, UnsafeNameError
from data_loaders.store import MarketStore, sha256_file

PROJECT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000
T0 = 1_583_020_800_000  # 2020-03-01 00:00 UTC
SYM = "BTC/USDT:USDT"


def candles(hours: list[int], *, close: float = 101.0, price_type: str = "last", tf: str = "1h",
            step: int = HOUR, symbol: str = SYM) -> pl.DataFrame:
    n = len(hours)
    return pl.DataFrame({
        "exchange": ["binanceusdm"] * n, "symbol": [symbol] * n, "timeframe": [tf] * n,
        "price_type": [price_type] * n, "ts": [T0 + h * step for h in hours],
        "open": [100.0] * n, "high": [102.0] * n, "low": [99.0] * n, "close": [close] * n,
        "volume": [None if price_type != "last" else 5.0] * n,
    })


def read_btc(store: MarketStore, **kw) -> pl.DataFrame:
    return store.read("ohlcv", exchange="binanceusdm", symbol=SYM, timeframe="1h", **kw)


def test_write_then_read_roundtrip(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    result = store.write("ohlcv", candles([2, 0, 1]).sort("ts"), source="unit")
    assert (result.rows_input, result.rows_added, result.rows_replaced) == (3, 3, 0)
    back = read_btc(store)
    assert back["ts"].dt.epoch("ms").to_list() == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert back.schema["ts"] == pl.Datetime("ms", "UTC")
    assert back.columns[:5] == ["exchange", "symbol", "timeframe", "price_type", "ts"]


def test_read_window_is_half_open(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write("ohlcv", candles(list(range(6))), source="unit")
    window = read_btc(store, start=T0 + HOUR, end=T0 + 3 * HOUR)
    assert window["ts"].dt.epoch("ms").to_list() == [T0 + HOUR, T0 + 2 * HOUR]
    assert read_btc(store, start="2020-03-01T05:00:00Z").height == 1


def test_overlapping_writes_dedup_and_newer_wins(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write("ohlcv", candles(list(range(0, 10)), close=101.0), source="first")
    result = store.write("ohlcv", candles(list(range(5, 15)), close=100.5), source="second", replace=True)
    assert (result.rows_added, result.rows_replaced) == (5, 5)
    back = read_btc(store)
    assert back.height == 15
    assert back.filter(pl.col("ts").dt.epoch("ms") < T0 + 5 * HOUR)["close"].unique().to_list() == [101.0]
    assert back.filter(pl.col("ts").dt.epoch("ms") >= T0 + 5 * HOUR)["close"].unique().to_list() == [100.5]


def test_year_partitions_and_layout(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    dec31 = 1_609_455_600_000  # 2020-12-31 23:00 UTC
    frame = candles([0, 1]).with_columns(ts=pl.Series([dec31, dec31 + HOUR]).cast(pl.Datetime("ms", "UTC")))
    result = store.write("ohlcv", frame, source="unit")
    rel = sorted(p.relative_to(tmp_path).as_posix() for p in result.files)
    base = "ohlcv/exchange=binanceusdm/symbol_key=BTC_USDT~3AUSDT/timeframe=1h/price_type=last"
    assert rel == [f"{base}/year=2020/part-2020.parquet", f"{base}/year=2021/part-2021.parquet"]


def test_a_write_of_several_days_of_trades_keeps_every_day(tmp_path: Path) -> None:
    """Trades files are daily and share their year folder: each day's staged file survives
    until the commit (the per-file sweep of stale temp files once deleted the earlier days')."""
    day = 86_400_000
    t0 = 1_583_020_800_000  # 2020-03-01
    times = [t0, t0 + 1000, t0 + day, t0 + 2 * day + 5]
    trades = pl.DataFrame({"exchange": ["binanceusdm"] * 4, "symbol": ["BTC/USDT:USDT"] * 4, "ts": times,
                           "price": [1.0, 2.0, 3.0, 4.0], "qty": [1.0] * 4, "side": ["buy"] * 4,
                           "trade_id": [1, 2, 3, 4]})
    store = MarketStore(tmp_path)
    result = store.write("trades", trades, source="test")
    names = [p.name for p in store.files("trades")]
    assert names == ["part-2020-03-01.parquet", "part-2020-03-02.parquet", "part-2020-03-03.parquet"]
    assert sorted(p.name for p in result.files) == names and store.verify() == []
    assert store.read("trades", exchange="binanceusdm", symbol="BTC/USDT:USDT")["trade_id"].to_list() == [1, 2, 3, 4]


def test_manifest_records_provenance_and_checksum(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write("ohlcv", candles([0, 1, 2]), source="dump:a.zip")
    store.write("ohlcv", candles([2, 3]), source="dump:b.zip")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (rel, entry), = manifest["files"].items()
    assert entry["rows"] == 4
    assert entry["range"] == [T0, T0 + 3 * HOUR]
    assert entry["sha256"] == sha256_file(tmp_path / rel)
    assert [w["source"] for w in entry["writes"]] == ["dump:a.zip", "dump:b.zip"]
    assert [(w["rows"], w["added"], w["replaced"]) for w in entry["writes"]] == [(3, 3, 0), (2, 1, 0)]  # ts 2 re-sent identical: unchanged, not replaced
    assert all("fetched_at" in w and "written_at" in w for w in entry["writes"])
    assert store.verify() == []
    (tmp_path / rel).write_bytes((tmp_path / rel).read_bytes())  # same bytes: still fine
    candles([9]).write_parquet(tmp_path / rel)  # changed behind the store's back
    assert "sha256 differs" in store.verify()[0]


@pytest.mark.parametrize("mutate,code", [
    (lambda f: f.with_columns(close=pl.Series([101.0, float("nan"), 101.0])), "bad_price"),
    (lambda f: f.with_columns(open=pl.Series([100.0, 0.0, 100.0])), "bad_price"),
    (lambda f: f.with_columns(high=pl.Series([102.0, 98.0, 102.0])), "ohlc_sanity"),
    (lambda f: f.reverse(), "unsorted"),
    (lambda f: pl.concat([f, f.tail(1)]), "duplicate_ts"),
    (lambda f: f.with_columns(ts=(pl.col("ts").dt.epoch("ms") // 1000).cast(pl.Datetime("ms", "UTC"))),
     "ts_out_of_range"),
])
def test_strict_write_refuses_bad_input_and_loses_nothing(tmp_path: Path, mutate, code: str) -> None:
    store = MarketStore(tmp_path)
    store.write("ohlcv", candles([0, 1, 2], close=101.0), source="good")
    before = read_btc(store)
    with pytest.raises(DataValidationError, match=code) as info:
        store.write("ohlcv", mutate(candles([0, 1, 2], close=100.5)), source="bad.csv")
    assert "bad.csv" in str(info.value) and "fix:" in str(info.value)
    assert read_btc(store).equals(before)


def test_lenient_write_drops_bad_rows_and_reports(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    frame = pl.concat([candles([2, 1, 0]), candles([3]).with_columns(close=pl.lit(float("nan"))), candles([1])])
    result = store.write("ohlcv", frame, source="messy", strict=False)
    assert read_btc(store)["ts"].dt.epoch("ms").to_list() == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert result.rows_dropped == 2 and result.rows_added == 3
    codes = " ".join(result.warnings)
    assert "bad_price" in codes and "unsorted" in codes and "duplicate_ts" in codes


def test_gap_is_a_warning_not_an_error(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    result = store.write("ohlcv", candles([0, 1, 5]), source="gappy")
    assert any("3 missing candle intervals" in w for w in result.warnings)
    assert store.listing()["gaps"].to_list() == [3]


def test_coverage_intervals(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    assert store.coverage("ohlcv", exchange="binanceusdm", symbol=SYM, timeframe="1h", price_type="last") == []
    store.write("ohlcv", candles([0, 1, 2, 6, 7]), source="unit")
    assert store.coverage("ohlcv", exchange="binanceusdm", symbol=SYM, timeframe="1h", price_type="last") == [
        (T0, T0 + 3 * HOUR), (T0 + 6 * HOUR, T0 + 8 * HOUR)]
    funding = pl.DataFrame({"exchange": "binanceusdm", "symbol": SYM, "ts": [T0 + 8 * HOUR * i + 5 for i in (0, 1, 3)],
                            "rate": 0.0001, "interval_hours": 8.0, "mark_price": None})
    store.write("funding", funding, source="unit")
    assert store.coverage("funding", exchange="binanceusdm", symbol=SYM) == [
        (T0, T0 + 16 * HOUR), (T0 + 24 * HOUR, T0 + 32 * HOUR)]


def test_funding_ts_rounded_to_the_second_dedups_across_sources(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    base = {"exchange": "binanceusdm", "symbol": SYM, "interval_hours": 8.0, "mark_price": None}
    store.write("funding", pl.DataFrame({**base, "ts": [T0 + 7], "rate": [0.0001]}), source="dump")
    result = store.write("funding", pl.DataFrame({**base, "ts": [T0], "rate": [0.0002]}), source="api", replace=True)
    assert (result.rows_added, result.rows_replaced) == (0, 1)
    assert store.read("funding", exchange="binanceusdm", symbol=SYM)["rate"].to_list() == [0.0002]


def test_unknown_symbol_exchange_timeframe_raise_not_found(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write("ohlcv", candles([0]), source="unit")
    for kwargs in ({"symbol": "ETH/USDT:USDT"}, {"exchange": "bybit"}, {"timeframe": "5m"}):
        args = {"exchange": "binanceusdm", "symbol": SYM, "timeframe": "1h", **kwargs}
        with pytest.raises(DataNotFoundError) as info:
            store.read("ohlcv", **args)
        message = str(info.value)
        assert "binanceusdm BTC/USDT:USDT 1h last" in message and "margincall data" in message


def test_hostile_symbols_never_escape_the_root(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store")
    for bad in ("../evil", "../../x/USDT", "a\x00b", ".."):
        with pytest.raises(UnsafeNameError):
            store.write("ohlcv", candles([0], symbol=bad), source="unit")
        with pytest.raises(UnsafeNameError):
            store.read("ohlcv", exchange="binanceusdm", symbol=bad, timeframe="1h")
    with pytest.raises(UnsafeNameError):
        store.write("ohlcv", candles([0]).with_columns(exchange=pl.lit("../x")), source="unit")
    assert list(tmp_path.iterdir()) == []  # validation happens before anything touches the disk


def test_unicode_symbol_is_stored_under_an_ascii_key(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write("ohlcv", candles([0], symbol="币安人生/USDT:USDT"), source="unit")
    (path,) = tmp_path.rglob("*.parquet")
    assert path.as_posix().isascii()
    assert store.listing()["symbol"].to_list() == ["币安人生/USDT:USDT"]


def test_missing_column_is_a_schema_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="missing column"):
        MarketStore(tmp_path).write("ohlcv", candles([0]).drop("close"), source="unit")


def test_crash_after_temp_file_keeps_old_file_and_next_write_completes(tmp_path: Path, monkeypatch) -> None:
    store = MarketStore(tmp_path)
    store.write("ohlcv", candles([0, 1]), source="first")
    before = read_btc(store)

    def crash(src, dst):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write("ohlcv", candles([2, 3]), source="crashing")
    monkeypatch.undo()
    assert read_btc(store).equals(before)
    assert not list(tmp_path.rglob("*.tmp"))
    result = store.write("ohlcv", candles([2, 3]), source="retry")
    assert result.rows_added == 2 and read_btc(store).height == 4


def test_hard_kill_mid_write_leaves_a_valid_store(tmp_path: Path) -> None:
    """A process killed (os._exit) right after writing its temp file: no cleanup runs."""
    store = MarketStore(tmp_path)
    store.write("ohlcv", candles([0, 1]), source="first")
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(PROJECT)!r})
        from tests.data.test_store import candles
        from data_loaders.store import MarketStore
        os.replace = lambda src, dst: os._exit(9)
        MarketStore({str(tmp_path)!r}).write("ohlcv", candles(list(range(2, 50))), source="killed")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    assert len(list(tmp_path.rglob(".*.tmp"))) == 2  # the orphan Parquet temp file and journal temp file
    assert read_btc(store).height == 2  # readers ignore it
    assert store.connect().execute("select count(*) from ohlcv").fetchone() == (2,)
    result = store.write("ohlcv", candles(list(range(2, 50))), source="rerun")
    assert result.rows_added == 48 and read_btc(store).height == 50
    assert not list(tmp_path.rglob(".*.tmp"))
    assert store.verify() == []


def test_catalog_views(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    con = store.connect()
    assert con.execute("select count(*) from trades").fetchone() == (0,)
    store.write("ohlcv", candles([0, 1, 2]), source="unit")
    store.write("ohlcv", candles([0, 1], price_type="mark"), source="unit")
    con = store.connect()
    rows = con.execute("select price_type, count(*), max(high) from ohlcv group by 1 order by 1").fetchall()
    assert rows == [("last", 3, 102.0), ("mark", 2, 102.0)]
    assert "symbol_key" not in [d[0] for d in con.execute("select * from ohlcv").description]
    assert con.execute("select distinct symbol from ohlcv").fetchall() == [(SYM,)]


def test_listing_reports_ranges_rows_gaps(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write("ohlcv", candles([0, 1, 2, 4]), source="unit")
    store.write("ohlcv", candles([0, 1], price_type="mark"), source="unit")
    listing = store.listing().sort("price_type")
    assert listing.select("price_type", "rows", "gaps", "files").rows() == [("last", 4, 1, 1), ("mark", 2, 0, 1)]
    assert listing["start"][0].isoformat() == "2020-03-01T00:00:00+00:00"
