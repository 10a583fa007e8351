"""Binance public-data dumps: every supported kind, with and without header, zip and CSV, bad input."""
from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl
import pytest

from data_loaders.binance_dump import import_dump, infer_spec, load_dump
from data_loaders.errors import DataValidationError, ImportFormatError, UnsafeNameError
from data_loaders.store import MarketStore
from tests.data.dumps import (AGG_HEADER, FUNDING_HEADER, HOUR, KLINE_HEADER, MINUTE, T0, kline_lines,
                              write_csv, write_zip)

UM = Path("futures/um/monthly")
SYM = "BTC/USDT:USDT"


def read(store: MarketStore, tf: str = "1m", price_type: str = "last") -> pl.DataFrame:
    return store.read("ohlcv", exchange="binanceusdm", symbol=SYM, timeframe=tf, price_type=price_type)


@pytest.mark.parametrize("header", [KLINE_HEADER, None])
@pytest.mark.parametrize("container", ["zip", "csv"])
def test_klines_with_and_without_header(tmp_path: Path, header: str | None, container: str) -> None:
    lines = kline_lines(5)
    name = tmp_path / UM / "klines/BTCUSDT/1m" / f"BTCUSDT-1m-2020-03.{container}"
    (write_zip if container == "zip" else write_csv)(name, lines, header)
    store = MarketStore(tmp_path / "store")
    result = import_dump(store, name)
    assert (result.dataset, result.exchange, result.symbol, result.timeframe, result.price_type) == (
        "ohlcv", "binanceusdm", SYM, "1m", "last")
    frame = read(store)
    assert frame.height == 5
    assert frame["ts"].dt.epoch("ms").to_list() == [T0 + i * MINUTE for i in range(5)]
    assert frame.row(0, named=True) | {"ts": None} == {
        "exchange": "binanceusdm", "symbol": SYM, "timeframe": "1m", "price_type": "last", "ts": None,
        "open": 8500.0, "high": 8502.5, "low": 8498.0, "close": 8500.5, "volume": 10.0}


def test_microsecond_timestamps_detected_by_magnitude(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2025-01.zip",
                     kline_lines(3, start=1_735_689_600_000, unit="us"))
    spec, frame, _ = load_dump(path)
    assert spec.exchange == "binance" and spec.symbol == "BTC/USDT"
    assert frame["ts"].to_list() == [1_735_689_600_000 + i * MINUTE for i in range(3)]


def test_seconds_timestamps_are_refused_with_the_fix(tmp_path: Path) -> None:
    lines = [line.replace(str(T0 + i * MINUTE), str((T0 + i * MINUTE) // 1000), 1)
             for i, line in enumerate(kline_lines(3))]
    path = write_csv(tmp_path / "BTCUSDT-1m-2020-03.csv", lines)
    with pytest.raises(ImportFormatError, match=r"expected open_time in epoch milliseconds.*neither.*line 1.*--ts-unit s"):
        load_dump(path)


def test_mark_and_index_kinds_come_from_the_folder(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store")
    for kind, price_type in (("markPriceKlines", "mark"), ("indexPriceKlines", "index")):
        path = write_zip(tmp_path / UM / kind / "BTCUSDT/1h/BTCUSDT-1h-2020-03.zip",
                         kline_lines(4, step=HOUR), KLINE_HEADER)
        result = import_dump(store, path)
        assert result.price_type == price_type
        frame = read(store, "1h", price_type)
        assert frame.height == 4 and frame["volume"].null_count() == 4


def test_flags_override_the_name(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "whatever.csv", kline_lines(2, step=HOUR))
    with pytest.raises(ImportFormatError, match="--kind"):
        infer_spec(path)
    spec = infer_spec(path, kind="klines", symbol="ETHUSDT", timeframe="1h", price_type="mark")
    assert (spec.symbol, spec.timeframe, spec.price_type) == ("ETH/USDT:USDT", "1h", "mark")


def test_funding_rate_dump(tmp_path: Path) -> None:
    lines = [f"{T0 + 8 * HOUR * i + 3},8,{0.0001 * (i - 1):.6f}" for i in range(4)]
    path = write_zip(tmp_path / UM / "fundingRate/BTCUSDT/BTCUSDT-fundingRate-2020-03.zip", lines, FUNDING_HEADER)
    store = MarketStore(tmp_path / "store")
    result = import_dump(store, path)
    assert result.dataset == "funding"
    frame = store.read("funding", exchange="binanceusdm", symbol=SYM)
    assert frame["ts"].dt.epoch("ms").to_list() == [T0 + 8 * HOUR * i for i in range(4)]  # rounded to the second
    assert frame["rate"].to_list() == pytest.approx([-0.0001, 0.0, 0.0001, 0.0002])
    assert frame["interval_hours"].to_list() == [8.0] * 4


@pytest.mark.parametrize("header,extra", [(AGG_HEADER, ""), (None, ",True")])
def test_agg_trades_futures_and_spot_formats(tmp_path: Path, header: str | None, extra: str) -> None:
    lines = [f"{100 + i},8500.{i},0.01{i},{200 + i},{200 + i},{T0 + i * 250},{'true' if i % 2 else 'false'}{extra}"
             for i in range(4)]
    path = write_zip(tmp_path / UM.parent / "daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2020-03-01.zip", lines, header)
    store = MarketStore(tmp_path / "store")
    import_dump(store, path)
    frame = store.read("trades", exchange="binanceusdm", symbol=SYM)
    assert frame["side"].to_list() == ["buy", "sell", "buy", "sell"]  # buyer is maker -> taker sold
    assert frame["trade_id"].to_list() == [100, 101, 102, 103]


def test_truncated_csv_names_the_line(tmp_path: Path) -> None:
    lines = kline_lines(3)
    path = write_csv(tmp_path / "BTCUSDT-1m-2020-03.csv", lines + [lines[-1][:20]], KLINE_HEADER)
    with pytest.raises(ImportFormatError, match=r"lines 5.*truncated"):
        load_dump(path)


def test_truncated_zip(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "BTCUSDT-1m-2020-03.zip", kline_lines(200), KLINE_HEADER)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImportFormatError, match="truncated or corrupt"):
        load_dump(path)


def test_checksum_mismatch(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "BTCUSDT-1m-2020-03.zip", kline_lines(3), checksum=True)
    assert load_dump(path)[1].height == 3
    path.with_name(path.name + ".CHECKSUM").write_text("0" * 64 + "  BTCUSDT-1m-2020-03.zip\n")
    with pytest.raises(ImportFormatError, match="CHECKSUM"):
        load_dump(path)


def test_zip_holding_the_wrong_file(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "BTCUSDT-1m-2020-03.zip", kline_lines(3), member="ETHUSDT-1m-2020-03.csv")
    with pytest.raises(ImportFormatError, match="expected one member 'BTCUSDT-1m-2020-03.csv'"):
        load_dump(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("BTCUSDT-1m-2020-03.csv", "\n".join(kline_lines(3)))
        archive.writestr("readme.txt", "hi")
    with pytest.raises(ImportFormatError, match="readme.txt"):
        load_dump(path)


def test_header_less_file_with_an_extra_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "BTCUSDT-1m-2020-03.csv", [line + ",7" for line in kline_lines(3)])
    with pytest.raises(ImportFormatError, match="expected 12 columns for a klines dump, found 13"):
        load_dump(path)
    later = write_csv(tmp_path / "BTCUSDT-1m-2020-04.csv", kline_lines(2) + [kline_lines(3)[2] + ",7"])
    with pytest.raises(ImportFormatError, match="line 3 has 13 fields, expected 12"):
        load_dump(later)


def test_wrong_kind_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / UM / "klines/BTCUSDT/1m/BTCUSDT-1m-2020-03.csv", ["1583020800000,8,0.0001"],
                     FUNDING_HEADER)
    with pytest.raises(ImportFormatError, match="looks like a fundingRate file"):
        load_dump(path)


def test_unsorted_and_duplicate_rows_refused_then_lenient(tmp_path: Path) -> None:
    lines = kline_lines(4)
    path = write_csv(tmp_path / "BTCUSDT-1m-2020-03.csv", [lines[1], lines[0], lines[2], lines[2], lines[3]],
                     KLINE_HEADER)
    store = MarketStore(tmp_path / "store")
    with pytest.raises(DataValidationError) as info:
        import_dump(store, path)
    message = str(info.value)
    assert "unsorted" in message and "lines 3" in message and "duplicate_ts" in message and "lines 5" in message
    assert not (tmp_path / "store" / "ohlcv").exists()
    result = import_dump(store, path, strict=False)
    assert read(store).height == 4 and result.write.rows_dropped == 1


@pytest.mark.parametrize("bad", ["nan", "0", "-1"])
def test_nan_or_zero_price(tmp_path: Path, bad: str) -> None:
    lines = kline_lines(3)
    fields = lines[1].split(",")
    fields[4] = bad  # close
    lines[1] = ",".join(fields)
    path = write_csv(tmp_path / "BTCUSDT-1m-2020-03.csv", lines)
    store = MarketStore(tmp_path / "store")
    with pytest.raises(DataValidationError, match=r"bad_price.*lines 2"):
        import_dump(store, path)
    assert import_dump(store, path, strict=False).write.rows_added == 2


def test_unknown_exchange_and_symbol(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "BTCUSDT-1m-2020-03.csv", kline_lines(2))
    with pytest.raises(ImportFormatError, match="not a Binance venue"):
        load_dump(path, exchange="kraken")
    with pytest.raises(UnsafeNameError):
        load_dump(path, exchange="Nope!")
    odd = write_csv(tmp_path / "FOOBAR-1m-2020-03.csv", kline_lines(2))
    with pytest.raises(UnsafeNameError, match="cannot split"):
        load_dump(odd)
    with pytest.raises(UnsafeNameError, match=r"'\.\./etc/USDT'"):
        load_dump(path, symbol="../etc/USDT")


def test_overlapping_imports_dedup_exact_count(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store")
    first = write_zip(tmp_path / "a" / "BTCUSDT-1m-2020-03.zip", kline_lines(60), KLINE_HEADER)
    second = write_zip(tmp_path / "b" / "BTCUSDT-1m-2020-03.zip", kline_lines(90, start=T0 + 30 * MINUTE))
    import_dump(store, first)
    result = import_dump(store, second, replace=True)
    assert (result.write.rows_added, result.write.rows_replaced) == (60, 30)
    assert read(store).height == 120
    assert store.connect().execute("select count(*), count(distinct ts) from ohlcv").fetchone() == (120, 120)
