"""`margincall data ls / query / import / validate` through typer's runner."""
from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from backtest.cli.data import register
from tests.data.dumps import FUNDING_HEADER, HOUR, KLINE_HEADER, T0, kline_lines, write_csv, write_zip


@pytest.fixture()
def cli():
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """test root"""

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, ["data", *args], env={"COLUMNS": "220"})

    return run


def test_import_ls_query_validate(tmp_path: Path, cli) -> None:
    store = str(tmp_path / "store")
    um = tmp_path / "futures/um/monthly"
    files = [
        write_zip(um / "klines/BTCUSDT/1h/BTCUSDT-1h-2020-03.zip", kline_lines(24, step=HOUR), KLINE_HEADER),
        write_zip(um / "markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-2020-03.zip", kline_lines(20, step=HOUR)),
        write_zip(um / "fundingRate/BTCUSDT/BTCUSDT-fundingRate-2020-03.zip",
                  [f"{T0 + 8 * HOUR * i},8,0.0001" for i in range(3)], FUNDING_HEADER),
    ]
    result = cli("import", "--store", store, *map(str, files))
    assert result.exit_code == 0, result.output
    assert "24 added" in result.output and "20 added" in result.output and "3 added" in result.output

    listing = cli("ls", "--store", store)
    assert listing.exit_code == 0
    assert "BTC/USDT:USDT" in listing.output and "mark" in listing.output and "2020-03-01 23:00" in listing.output

    query = cli("query", "--store", store, "select price_type, count(*) as n from ohlcv group by 1 order by 1")
    assert query.exit_code == 0
    assert "last" in query.output and "24" in query.output and "20" in query.output

    ok = cli("validate", "--store", store, "--start", "2020-03-01", "--end", "2020-03-02")
    assert ok.exit_code == 0, ok.output
    assert "20 of 24 expected points" in ok.output  # mark coverage warning
    assert cli("validate", "--store", store, "--start", "2020-03-01", "--end", "2020-03-02", "--strict").exit_code == 1


def test_import_failure_keeps_other_files_and_exits_1(tmp_path: Path, cli) -> None:
    store = str(tmp_path / "store")
    good = write_csv(tmp_path / "BTCUSDT-1m-2020-03.csv", kline_lines(3))
    bad = write_csv(tmp_path / "BTCUSDT-1m-2020-04.csv", [line + ",1" for line in kline_lines(3)])
    result = cli("import", "--store", store, str(bad), str(good))
    assert result.exit_code == 1
    assert "found 13" in result.output and "1 of 2 file(s) failed" in result.output
    assert "3 added" in result.output


def test_query_error_and_empty_store(tmp_path: Path, cli) -> None:
    store = str(tmp_path / "store")
    assert "holds no data" in cli("ls", "--store", store).output
    result = cli("query", "--store", store, "select * from nowhere")
    assert result.exit_code == 2 and "views: ohlcv" in result.output
    empty = cli("query", "--store", store, "select count(*) as n from trades")
    assert empty.exit_code == 0 and "0" in empty.output


def test_generic_import_with_map_and_ts_unit(tmp_path: Path, cli) -> None:
    path = tmp_path / "candles.csv"
    path.write_text("t,o,h,l,c\n" + "\n".join(f"{(T0 + i * HOUR) // 1000},1,2,0.5,1.5" for i in range(3)) + "\n")
    result = cli("import", "--store", str(tmp_path / "s"), "--map", "ts=t,open=o,high=h,low=l,close=c",
                 "--ts-unit", "s", "--symbol", "ETH/USDT:USDT", "--price-type", "index", str(path))
    assert result.exit_code == 0, result.output
    assert "ohlcv binanceusdm ETH/USDT:USDT 1h index" in result.output


def test_bad_kind_flag(tmp_path: Path, cli) -> None:
    result = cli("import", "--store", str(tmp_path), "--kind", "candles", str(tmp_path / "x.csv"))
    assert result.exit_code == 2 and "expected one of klines" in result.output
