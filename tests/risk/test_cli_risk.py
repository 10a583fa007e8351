"""The risk commands end to end on a small store built from real 5m candles."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from tests.risk.conftest import AUG5_5M, store_shared_window

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def store_dir(shared_data: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("risk-cli") / "store"
    store_shared_window(shared_data, root, SYMBOL, AUG5_5M)
    return root


def _invoke(*args: str):
    result = CliRunner().invoke(build_app(), list(args), catch_exceptions=False, env={"COLUMNS": "250"})
    return result


def test_replay_command(store_dir: Path, tmp_path: Path):
    out = tmp_path / "replay.parquet"
    result = _invoke("replay", "--crash", "2024-08-05", "--leverage", "2,20", "--param", "side=long",
                     "--store", str(store_dir), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "missing data" in result.output and "ETH/USDT:USDT" in result.output
    assert "margincall data fetch" in result.output and "mark = last price" in result.output
    table = pl.read_parquet(out)
    assert table["survived"].to_list() == [True, False]


def test_replay_without_any_data_fails_clearly(tmp_path: Path):
    result = _invoke("replay", "--crash", "2020-03-12", "--store", str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert "crash window '2020-03-12'" in result.output and "margincall data fetch" in result.output


def test_stress_mc_survive_commands(store_dir: Path, tmp_path: Path):
    result = _invoke("stress", "--symbol", SYMBOL, "--timeframe", "5m", "--start", "2024-08-04", "--end", "2024-08-07",
                     "--scenario", "crash=shock:-0.2@2024-08-04T12:00Z+drought:3",
                     "--scenario", "thin=shock:-0.2@2024-08-04T12:00Z+drought:3@2024-08-04T11:00Z..2024-08-04T14:00Z",
                     "--leverage", "3", "--store", str(store_dir))
    assert result.exit_code == 0, result.output
    assert "baseline" in result.output and "crash" in result.output and "thin" in result.output
    html = tmp_path / "mc.html"
    result = _invoke("mc", "--timeframe", "5m", "--price", "last", "--model", "gbm", "--leverage", "5,50",
                     "--horizon", "1,6", "--paths", "500", "--store", str(store_dir), "--html", str(html))
    assert result.exit_code == 0, result.output
    assert "P(liquidation)" in result.output and "<section" in html.read_text()
    result = _invoke("survive", "--timeframe", "5m", "--price", "last", "--model", "gbm", "--horizon", "6",
                     "--paths", "500", "--target", "0.05", "--store", str(store_dir))
    assert result.exit_code == 0, result.output
    assert "largest leverage" in result.output


def test_bad_options_are_clear(store_dir: Path):
    result = _invoke("stress", "--symbol", SYMBOL, "--timeframe", "5m", "--start", "2024-08-04", "--end", "2024-08-07",
                     "--scenario", "shok:-0.2@2024-08-04T12:00Z", "--store", str(store_dir))
    assert result.exit_code == 2 and "did you mean 'shock'" in result.output
    result = _invoke("replay", "--crash", "2024-08-06", "--store", str(store_dir))
    assert result.exit_code == 2 and "did you mean" in result.output
