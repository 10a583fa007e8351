"""``margincall platform`` end to end: a synthetic run with its folder and printed tables,
stored windows, the comparison with Binance's stored brackets, help on every option and one
clear line for each kind of bad input."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
BRACKETS = "margin/binance_um_leverage_brackets_BTCUSDT_ETHUSDT_2021-2024.json"


def _invoke(*args: str):
    return CliRunner().invoke(build_app(), list(args), catch_exceptions=False, env={"COLUMNS": "220"})


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


BASE = ("platform", "--synthetic", "1500", "--seed", "2", "--price", f"{BTC}=112000", "--price", f"{ETH}=4300",
        "--shock", "0.05,0.15", "--mc", "2", "--seconds", "240", "--workers", "1")


def test_synthetic_run_writes_the_folder_and_prints_distributions_and_brackets(tmp_path: Path):
    out = tmp_path / "p1"
    result = _invoke(*BASE, "--depth-scale", "1,0.5", "--cross-share", "0.3", "--cross-legs", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = _manifest(out)
    assert manifest["cross"] == {"share": 0.3, "legs": 3, "accounts": 150}  # 450 of 1,500 rows, 3 per account
    assert manifest["summary"]["scenarios"] == 8 and manifest["seed"] == 2
    assert manifest["packages"] and manifest["venue"]["venue"] == "binance_usdm"
    con = duckdb.connect(str(out / "results.duckdb"), read_only=True)
    try:
        p99 = con.execute("SELECT p99 FROM distributions WHERE metric = 'bad_debt'").fetchone()[0]
        rows = con.execute("SELECT count(*) FROM scenarios").fetchone()[0]
    finally:
        con.close()
    assert rows == 8
    assert f"{p99:,.0f}" in result.output
    assert "recommended maintenance brackets" in result.output and "insurance_fund_recommended" in result.output
    again = _invoke(*BASE, "--depth-scale", "1,0.5", "--cross-share", "0.3", "--out", str(out))
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert _manifest(out)["summary"]["scenarios"] == 8  # the refused run left the folder alone


def test_toml_parameters_and_open_interest_population(tmp_path: Path):
    params = tmp_path / "venue.toml"
    params.write_text('insurance_fund = 0\nmax_leverage = 10\n[tiers."BTC/USDT:USDT"]\nfloors = [0, 1e6]\n'
                      'mmr = [0.02, 0.05]\n')
    out = tmp_path / "p2"
    result = _invoke("platform", "--open-interest", f"{BTC}=5e7", "--price", f"{BTC}=100000", "--shock", "0.2",
                     "--seconds", "200", "--params", str(params), "--workers", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    brackets = pl.read_parquet(out / "brackets.parquet")
    assert brackets["current_maint_margin_rate"].to_list()[:2] == [0.02, 0.05]  # the TOML's table
    assert _manifest(out)["venue"]["max_leverage"] == 10.0
    runs = pl.read_parquet(out / "scenarios.parquet")
    assert runs["fund_drawdown"][0] == 0.0  # an empty fund cannot draw down: ADL or bad debt pays


def test_comparison_with_binance_stored_brackets(shared_data: Path, tmp_path: Path):
    out = tmp_path / "p3"
    result = _invoke(*BASE, "--compare-tiers", str(shared_data / BRACKETS), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "recommended vs reference brackets" in result.output
    comparison = pl.read_parquet(out / "bracket_comparison.parquet")
    btc = comparison.filter(pl.col("symbol") == BTC)
    # Binance's latest BTC table in the file (2024-05-30): 12 brackets from 0.4 %
    assert btc.height >= 10 and btc["reference_mmr"][0] == 0.004 and btc["notional_floor"][0] == 0.0
    assert (btc["reference_mmr"].diff().drop_nulls() >= 0).all()
    # wherever the reference's margin falls short of the stressed loss, our rate is higher
    short = btc.filter(~pl.col("reference_covers") & pl.col("recommended_mmr").is_not_null())
    assert (short["recommended_mmr"] > short["reference_mmr"]).all()


def test_stored_window_scenarios(shared_data: Path, tmp_path: Path):
    from tests.risk.conftest import store_oct10_window

    root = tmp_path / "store"
    bars = store_oct10_window(shared_data, root, BTC)
    out = tmp_path / "p4"
    result = _invoke("platform", "--synthetic", "1000", "--symbol", BTC, "--store", str(root),
                     "--window", "2025-10-10T21:00:00Z/2025-10-10T21:15:00Z", "--shock", "0.1", "--seconds", "120",
                     "--workers", "1", "--timeframe", "5m", "--out", str(out))
    assert result.exit_code == 0, result.output
    runs = pl.read_parquet(out / "scenarios.parquet")
    assert runs["kind"].to_list() == ["window", "shock"]
    manifest = _manifest(out)
    assert manifest["data"] and all("sha256" in json.dumps(s) or "checksum" in json.dumps(s) for s in manifest["data"])
    # the shock starts from the window's first price
    assert manifest["setup"]["start_prices"][BTC] == pytest.approx(float(bars["open"][0]))


@pytest.mark.parametrize(("args", "message"), [
    (["--shock", "0.1"], "expected exactly one population source"),
    (["--synthetic", "10", "--shock", "0.1"], "--price BTC/USDT:USDT=PRICE"),
    (["--synthetic", "10", "--price", f"{BTC}=1e5"], "no scenario"),
    (["--synthetic", "10", "--price", f"{BTC}=1e5", "--shock", "0.1,x"], "comma-separated numbers"),
    (["--synthetic", "10", "--price", f"{BTC}=1e5", "--shock", "0.1", "--venue", "binance"], "did you mean"),
    (["--synthetic", "10", "--price", f"{BTC}=1e5", "--shock", "0.1", "--depth-scale", "0"], "depth scale"),
    (["--synthetic", "10", "--price", f"{BTC}=-3", "--shock", "0.1"], "SYMBOL=NUMBER"),
    (["--synthetic", "10", "--price", f"{BTC}=1e5", "--shock", "0.1", "--confidence", "2"], "confidence"),
    (["--synthetic", "10", "--price", f"{BTC}=1e5", "--shock", "0.1", "--workers", "0"], "sweep workers"),
    (["--synthetic", "10", "--price", f"{BTC}=1e5", "--shock", "0.1", "--params", "/nonexistent.toml"], "no such file"),
    (["--synthetic", "10", "--price", f"{BTC}=1e5", "--window", "2025-10-10"], "START/END"),
    (["--synthetic", "10", "--price", f"{BTC}=1e5", "--shock", "0.1", "--cross-share", "2"], "cross accounts"),
])
def test_bad_input_is_one_clear_line(tmp_path: Path, args, message):
    result = _invoke("platform", *args, "--out", str(tmp_path / "never"))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "never").exists()


def test_every_option_has_help():
    import typer.main

    command = typer.main.get_command(build_app()).commands["platform"]
    options = [p for p in command.params if getattr(p, "param_type_name", "") == "option"]
    assert len(options) >= 30
    missing = [p.name for p in options if not (p.help or "").strip()]
    assert missing == []
    text = _invoke("platform", "--help").output
    for flag in ("--ray-address", "--compare-tiers", "--open-interest", "--mc", "--html", "--params"):
        assert flag in text
