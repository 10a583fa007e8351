"""Generic CSV/Parquet import through a column mapping."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from data_loaders.errors import DataValidationError, ImportFormatError, SchemaError
from data_loaders.generic import import_generic, infer_timeframe, load_generic, parse_mapping
from data_loaders.store import MarketStore

T0 = 1_583_020_800_000
HOUR = 3_600_000


def table(n: int = 4, *, scale: int = 1) -> pl.DataFrame:
    return pl.DataFrame({"t": [(T0 + i * HOUR) // scale for i in range(n)], "o": [10.0 + i for i in range(n)],
                         "h": [12.0 + i for i in range(n)], "l": [9.0 + i for i in range(n)],
                         "c": [11.0 + i for i in range(n)], "v": [1.0] * n})


MAP = "ts=t,open=o,high=h,low=l,close=c,volume=v"


def test_parse_mapping() -> None:
    assert parse_mapping("ts=open_time, open=o") == {"ts": "open_time", "open": "o"}
    with pytest.raises(SchemaError, match="CANONICAL=SOURCE"):
        parse_mapping("ts")


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("unit,scale", [("ms", 1), ("s", 1000), ("us", None), ("auto", 1000)])
def test_csv_and_parquet_with_mapping_and_units(tmp_path: Path, suffix: str, unit: str, scale: int | None) -> None:
    frame = table(scale=scale or 1)
    if scale is None:
        frame = frame.with_columns(t=pl.col("t") * 1000)
    path = tmp_path / f"candles.{suffix}"
    getattr(frame, f"write_{suffix}")(path)
    store = MarketStore(tmp_path / "store")
    result = import_generic(store, path, symbol="BTCUSDT", mapping=parse_mapping(MAP), ts_unit=unit)
    assert (result.dataset, result.symbol, result.timeframe, result.price_type) == ("ohlcv", "BTC/USDT:USDT", "1h", "last")
    back = store.read("ohlcv", exchange="binanceusdm", symbol="BTC/USDT:USDT", timeframe="1h")
    assert back["ts"].dt.epoch("ms").to_list() == [T0 + i * HOUR for i in range(4)]
    assert back["close"].to_list() == [11.0, 12.0, 13.0, 14.0]


def test_seconds_where_milliseconds_were_expected(tmp_path: Path) -> None:
    path = tmp_path / "candles.csv"
    table(scale=1000).write_csv(path)
    with pytest.raises(DataValidationError, match=r"ts_out_of_range.*lines 2, 3, 4, 5.*--ts-unit"):
        import_generic(MarketStore(tmp_path / "store"), path, symbol="BTCUSDT", timeframe="1h",
                       mapping=parse_mapping(MAP))
    with pytest.raises(SchemaError, match="--ts-unit"):
        import_generic(MarketStore(tmp_path / "store"), path, symbol="BTCUSDT", mapping=parse_mapping(MAP))
    assert not (tmp_path / "store" / "ohlcv").exists()


def test_mapping_errors_name_columns(tmp_path: Path) -> None:
    path = tmp_path / "candles.csv"
    table().write_csv(path)
    with pytest.raises(SchemaError, match=r"\[.nope.\].*file lacks"):
        load_generic(path, dataset="ohlcv", exchange="binanceusdm", symbol="BTCUSDT", mapping={"ts": "nope"})
    with pytest.raises(SchemaError, match="not ohlcv columns"):
        load_generic(path, dataset="ohlcv", exchange="binanceusdm", symbol="BTCUSDT", mapping={"bogus": "t"})
    with pytest.raises(SchemaError, match=r"candles.csv: missing column"):
        import_generic(MarketStore(tmp_path / "s"), path, symbol="BTCUSDT", mapping={"ts": "t"})


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "candles.parquet"
    table().write_parquet(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ImportFormatError, match="not a readable Parquet"):
        import_generic(MarketStore(tmp_path / "s"), path, symbol="BTCUSDT", mapping=parse_mapping(MAP))


def test_symbol_from_file_name_and_missing_symbol(tmp_path: Path) -> None:
    frame = table().rename({"t": "open_time", "o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"})
    named = tmp_path / "binance_um_ETHUSDT_1h_x.parquet"
    frame.write_parquet(named)
    assert import_generic(MarketStore(tmp_path / "s"), named).symbol == "ETH/USDT:USDT"
    anonymous = tmp_path / "candles.parquet"
    frame.write_parquet(anonymous)
    with pytest.raises(SchemaError, match="--symbol"):
        import_generic(MarketStore(tmp_path / "s"), anonymous)


def test_infer_timeframe() -> None:
    ts = pl.Series([T0 + i * 300_000 for i in (0, 1, 2, 4)]).cast(pl.Datetime("ms", "UTC"))
    assert infer_timeframe(ts) == "5m"
