"""``margincall compare``, ``--venues`` of replay/stress and the price-source rule of ``run``,
end to end on a small store written from an inline candle table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app, run_cli
from backtest.venues.base import available_venues

SYMBOL = "BTC/USDT:USDT"
INVERSE = "BTC/USD:BTC"
HOUR = 3_600_000
T0 = 1_700_000_000_000 // HOUR * HOUR  # 2023-11-14 22:00 UTC
CLOSES = [30_000.0, 30_000.0, 29_000.0, 27_000.0, 26_000.0, 26_500.0]


def _write(store: Path, exchange: str, symbol: str) -> None:
    from data_loaders.store import MarketStore

    ts = T0 + HOUR * np.arange(len(CLOSES))
    frame = pl.DataFrame({"ts": ts, "open": CLOSES, "high": CLOSES, "low": CLOSES, "close": CLOSES,
                          "volume": [1_000.0] * len(CLOSES)}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")), exchange=pl.lit(exchange), symbol=pl.lit(symbol),
        timeframe=pl.lit("1h"), price_type=pl.lit("last"))
    MarketStore(store).write("ohlcv", frame, source="test")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("compare") / "store"
    _write(root, "binanceusdm", SYMBOL)
    _write(root, "binancecoinm", INVERSE)
    return root


def _invoke(*args: str):
    return CliRunner().invoke(build_app(), list(args), catch_exceptions=False, env={"COLUMNS": "250"})


def _params(command: str) -> list:
    import typer.main

    group = typer.main.get_command(build_app())
    return group.commands[command].params


def test_every_option_has_help_text() -> None:
    for command in ("compare", "run"):
        missing = [p.name for p in _params(command) if not (getattr(p, "help", None) or "").strip()]
        assert missing == [], (command, missing)
    for command in ("replay", "stress"):
        venues = next(p for p in _params(command) if p.name == "venues")
        assert "'all'" in venues.help and "venue" in venues.help
    result = _invoke("compare", "--help")
    assert result.exit_code == 0 and "--venues" in result.output and "--prices-from" in result.output


def test_compare_writes_the_folder_table_and_page(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = _invoke("compare", "--venues", "all", "--leverages", "2,10", "--param", "side=long",
                     "--slippage", "none", "--store", str(store), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "prices: binanceusdm, rules: binance_usdm" in result.output
    assert "survival by leverage and venue" in result.output
    assert {p.name for p in out.iterdir()} == {"venue_comparison.parquet", "venue_survival.parquet",
                                               "results.duckdb", "manifest.json", "comparison.html"}
    table = pl.read_parquet(out / "venue_comparison.parquet")
    assert table.height == 2 * len(available_venues())
    usdm = table.filter(pl.col("venue") == "binance_usdm").sort("leverage")
    assert usdm["liquidated"].to_list() == [False, True]
    assert usdm["first_liquidation"].to_list()[1] == "2023-11-15 01:00:00 UTC"
    coinm = table.filter(pl.col("venue") == "binance_coinm")
    assert not coinm["tradable"].any() and all(INVERSE in r for r in coinm["reason"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "venue_comparison" and manifest["strategy"] == {"name": "hold",
                                                                               "params": {"side": "long"}}
    assert "comparison.html" in manifest["files"]
    page = (out / "comparison.html").read_text()
    assert "prices: binanceusdm, rules: binance_usdm" in page and 'id="venue-survival"' in page
    # the folder is not replaced without --overwrite, and stays as it was
    before = (out / "venue_comparison.parquet").read_bytes()
    again = _invoke("compare", "--venues", "binance_usdm", "--leverages", "2", "--store", str(store),
                    "--out", str(out))
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert (out / "venue_comparison.parquet").read_bytes() == before


def test_compare_bad_venue_names_the_closest(store: Path, tmp_path: Path, capsys) -> None:
    code = run_cli(["compare", "--venues", "binance_usdm,bianance_coinm", "--store", str(store),
                    "--out", str(tmp_path / "x")])
    err = capsys.readouterr()
    assert code == 2
    text = err.out + err.err
    assert "'bianance_coinm' is not registered" in text and "did you mean 'binance_coinm'" in text
    assert not (tmp_path / "x").exists()


def test_compare_bad_leverages_and_missing_data(store: Path, tmp_path: Path) -> None:
    result = _invoke("compare", "--leverages", "0.5,2", "--store", str(store), "--out", str(tmp_path / "a"))
    assert result.exit_code == 2 and "--leverages '0.5,2': expected leverages >= 1" in result.output
    result = _invoke("compare", "--prices-from", "binanceusdm", "--symbol", "ETH/USDT:USDT", "--store", str(store),
                     "--out", str(tmp_path / "b"))
    assert result.exit_code == 2 and "ETH/USDT:USDT" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "b").exists()


def test_replay_and_stress_with_venues(store: Path) -> None:
    result = _invoke("stress", "--symbol", SYMBOL, "--start", "2023-11-14T22:00Z", "--end", "2023-11-15T04:00Z",
                     "--scenario", "dip=shock:-0.01@2023-11-15T00:00Z", "--leverage", "10",
                     "--slippage", "none", "--venues", "binance_usdm,binance_coinm", "--store", str(store))
    assert result.exit_code == 0, result.output
    assert "venue" in result.output and "binance_coinm" in result.output and "not tradable" in result.output
    bad = _invoke("stress", "--symbol", SYMBOL, "--start", "2023-11-14T22:00Z", "--end", "2023-11-15T04:00Z",
                  "--scenario", "dip=shock:-0.01@2023-11-15T00:00Z", "--venues", "okz", "--store", str(store))
    assert bad.exit_code == 2 and "'okz' is not registered" in bad.output


# ----------------------------------------------------------------------------- run: price source
def test_run_unasked_price_mismatch_is_an_error_saying_what_to_pass(store: Path, tmp_path: Path) -> None:
    result = _invoke("run", "--venue", "binance_coinm", "--exchange", "binanceusdm", "--symbol", SYMBOL,
                     "--store", str(store), "--out", str(tmp_path / "r"), "--no-report", "--no-progress")
    assert result.exit_code != 0
    assert "--prices-from binanceusdm" in result.output and "--exchange binancecoinm" in result.output
    assert not (tmp_path / "r").exists()


def test_run_file_mismatch_is_an_error_too(store: Path, tmp_path: Path) -> None:
    run_file = tmp_path / "run.toml"
    run_file.write_text(f'[data]\nexchange = "binanceusdm"\nsymbols = ["{SYMBOL}"]\nstore = "{store}"\n'
                        '[run]\nleverage = 2\nprogress = false\n')
    result = _invoke("run", "--config", str(run_file), "--venue", "binance_coinm", "--out", str(tmp_path / "r"),
                     "--no-report")
    assert result.exit_code != 0 and f"run file {run_file}" in result.output
    assert '[data] prices_from = "binanceusdm"' in result.output


def test_run_states_prices_and_rules_in_manifest_and_report(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "native"
    result = _invoke("run", "--symbol", SYMBOL, "--store", str(store), "--out", str(out), "--no-progress",
                     "--leverage", "2")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["price_source"] == {"prices": "binanceusdm", "rules": "binance_usdm", "native": True,
                                        "text": "prices: binanceusdm, rules: binance_usdm"}
    assert "prices: binanceusdm, rules: binance_usdm" in (out / "report.html").read_text()


def test_run_stated_cross_venue_prices(store: Path, tmp_path: Path) -> None:
    # binance_coinm's rules on prices stored under binanceusdm: allowed when stated, recorded as such
    _write(store, "binanceusdm", INVERSE)
    out = tmp_path / "cross"
    result = _invoke("run", "--venue", "binance_coinm", "--prices-from", "binanceusdm", "--symbol", INVERSE,
                     "--balance", "1", "--leverage", "2", "--store", str(store), "--out", str(out),
                     "--no-progress", "--no-report")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["price_source"]["text"] == "prices: binanceusdm, rules: binance_coinm"
    assert manifest["price_source"]["native"] is False
    assert manifest["venue"]["name"] == "binance_coinm"
    # a linear symbol under inverse rules says which symbol to use
    bad = _invoke("run", "--venue", "binance_coinm", "--prices-from", "binanceusdm", "--symbol", SYMBOL,
                  "--store", str(store), "--out", str(tmp_path / "bad"), "--no-progress", "--no-report")
    assert bad.exit_code != 0 and f"--symbol {INVERSE}" in bad.output
