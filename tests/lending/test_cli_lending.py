"""``margincall lending`` end to end on a store of real ETH candles: the folder (Parquet tables,
DuckDB views, report), written whole; clear errors for bad input."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.lending.study import TABLES


def _invoke(*args: str):
    return CliRunner().invoke(build_app(), ["lending", *args], catch_exceptions=False,
                              env={"COLUMNS": "250"})


def test_black_thursday_preset_writes_tables_views_and_report(lending_store: Path, tmp_path: Path):
    out = tmp_path / "bt"
    result = _invoke("--preset", "black-thursday", "--generate", "150", "--store", str(lending_store),
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "zero-bid" in result.output and "bad debt by protocol and asset" in result.output
    assert "tiers" not in result.output   # the perpetual's tables do not concern a lending run
    con = duckdb.connect(str(out / "lending.duckdb"), read_only=True)
    try:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        zero = con.execute("SELECT count(*) FROM auctions WHERE zero_bid").fetchone()[0]
        deficit = con.execute("SELECT sum(shortfall) FROM auctions").fetchone()[0]
    finally:
        con.close()
    assert counts["positions"] == 150 and counts["auctions"] > 0 and counts["liquidations"] == 0
    assert counts["steps"] == 48 * 60                     # two days of one-minute Maker steps
    bad = pl.read_parquet(out / "bad_debt.parquet").row(0, named=True)
    assert zero > 0 and bad["deficit"] == pytest.approx(deficit)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "lending" and manifest["preset"] == "black-thursday"
    assert set(manifest["files"]) == {f"{t}.parquet" for t in TABLES} | {"report.html"}
    page = (out / "report.html").read_text()
    assert 'id="auctions"' in page and 'id="lending-bad-debt"' in page and "plotly-figure" in page
    # a second run into the same folder is refused without --overwrite, the first one kept
    again = _invoke("--preset", "black-thursday", "--generate", "10", "--store", str(lending_store),
                    "--out", str(out))
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert pl.read_parquet(out / "positions.parquet").height == 150


def test_aave_positions_from_a_file_on_the_5m_crash(lending_store: Path, tmp_path: Path):
    positions = tmp_path / "book.csv"
    pl.DataFrame({"position_id": ["whale", "safe"], "protocol": ["aave_v3", "aave_v3"],
                  "asset": ["ETH", "ETH"], "collateral": [1_000.0, 10.0],
                  "debt": [3_400_000.0, 10_000.0], "liquidation_threshold": [0.825, 0.825],
                  "liquidation_bonus": [1.05, 1.05]}).write_csv(positions)
    out = tmp_path / "oct"
    result = _invoke("--positions", str(positions), "--timeframe", "5m", "--start", "2025-10-10T18:00",
                     "--end", "2025-10-11T00:00", "--gas-cost", "5", "--latency", "1",
                     "--borrow-rate", "0.05", "--venue", "curve", "--depth", "3.5e7",
                     "--store", str(lending_store), "--out", str(out))
    assert result.exit_code == 0, result.output
    liq = pl.read_parquet(out / "liquidations.parquet")
    assert set(liq["position_id"]) == {"whale"}          # HF 1.0 at 4,120 USD: liquidated
    assert (liq["gas_cost"] == 5.0).all() and (liq["slippage"] > 0).all()
    final = pl.read_parquet(out / "positions.parquet").filter(pl.col("position_id") == "safe")
    assert final["debt_end"][0] > 10_000.0               # interest accrued over six hours


@pytest.mark.parametrize(("args", "words"), [
    (["--protocol", "compound", "--generate", "5"], ["compound", "did you mean 'compound_v3'"]),
    (["--borrow-rate", "nan", "--generate", "5"], ["--borrow-rate", "NaN"]),
    (["--venue", "book", "--generate", "5"], ["venue", "pool, curve"]),
    (["--auction", "dutch", "--protocol", "maker", "--generate", "5"], ["flipper, clipper"]),
    (["--preset", "black-thurs"], ["did you mean 'black-thursday'"]),
    (["--keeper", "fast:value:50", "--protocol", "maker", "--generate", "5"], ["NAME:KIND:MAX_GWEI:MARGIN"]),
    (["--hf-range", "1.05", "--generate", "5"], ["LOW..HIGH"]),
])
def test_bad_options_fail_with_a_clear_message(lending_store: Path, tmp_path: Path, args, words):
    result = _invoke("--timeframe", "1h", "--start", "2020-03-12", "--end", "2020-03-13",
                     "--store", str(lending_store), "--out", str(tmp_path / "x"), *args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    for word in words:
        assert word in result.output
    assert not (tmp_path / "x").exists()


def test_a_bad_file_or_missing_candles_fail_clearly(lending_store: Path, tmp_path: Path):
    bad = tmp_path / "bad.csv"
    pl.DataFrame({"protocol": ["aave_v3"], "asset": ["ETH"], "collateral": [1.0]}).write_csv(bad)
    result = _invoke("--positions", str(bad), "--start", "2020-03-12", "--end", "2020-03-13",
                     "--store", str(lending_store), "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "missing debt, liquidation_threshold" in result.output
    result = _invoke("--generate", "5", "--symbol", "BTC/USDT:USDT", "--start", "2020-03-12",
                     "--end", "2020-03-13", "--store", str(lending_store), "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "margincall data fetch" in result.output


def test_position_runs_the_loop_through_the_risk_lab(lending_store: Path, tmp_path: Path):
    out = tmp_path / "loop"
    result = _invoke("--position", "0.6", "--crash", "2020-03-12", "--scenario",
                     "crash=shock:-0.3@2020-03-12T06:00Z", "--paths", "2000", "--horizon", "12",
                     "--target", "0.05", "--model", "gbm", "--timeframe", "5m",
                     "--start", "2025-10-09", "--end", "2025-10-12", "--store", str(lending_store), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "position_survival" in result.output
    replay = pl.read_parquet(out / "position_replay.parquet").row(0, named=True)
    assert replay["crash"] == "2020-03-12" and replay["ltv"] == pytest.approx(0.6)
    assert not replay["survived"]                    # ETH halved: a 60 % LTV loop is liquidated
    stress = pl.read_parquet(out / "position_stress.parquet")
    assert stress["scenario"].to_list() == ["baseline", "crash"]
    mc = pl.read_parquet(out / "position_mc.parquet")
    assert set(mc["venue"]) == {"aave_v3 loop", "perpetual (isolated)"}
    survival = pl.read_parquet(out / "position_survival.parquet")
    by_crash, by_probability = survival.row(0, named=True), survival.row(1, named=True)
    assert by_crash["max_ltv"] < 0.6 and by_crash["criterion"] == "survives 2020-03-12"
    assert 0 < by_probability["max_ltv"] <= 0.8 and by_probability["probability"] <= 0.05
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["position"]["leverage"] == pytest.approx(2.5)
    bad = _invoke("--position", "1.5", "--crash", "2020-03-12", "--paths", "0",
                  "--store", str(lending_store), "--out", str(tmp_path / "bad"))
    assert bad.exit_code == 2 and "ltv expected a fraction" in bad.output
    assert not (tmp_path / "bad").exists()


def test_position_monte_carlo_with_the_osm_lag(lending_store: Path, tmp_path: Path):
    out = tmp_path / "lag"
    result = _invoke("--position", "0.7", "--crash", "2020-03-12", "--paths", "3000",
                     "--horizon", "24", "--target", "0.05", "--model", "gbm", "--timeframe", "5m",
                     "--oracle", "osm", "--start", "2025-10-09", "--end", "2025-10-12",
                     "--store", str(lending_store), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "position_mc_oracle" in result.output and "osm oracle" in result.output
    lag = pl.read_parquet(out / "position_mc_oracle.parquet")
    market, osm = lag.row(0, named=True), lag.row(1, named=True)
    assert market["protocol_sees"] == "market (no lag)" and osm["protocol_sees"] == "osm oracle"
    assert market["liquidation_price"] == osm["liquidation_price"]
    # the same paths through the OSM: never more liquidations, and the solver allows more LTV
    assert osm["probability"] <= market["probability"]
    assert osm["max_ltv_at_p0.05"] >= market["max_ltv_at_p0.05"]
    assert json.loads((out / "manifest.json").read_text())["oracle"]["kind"] == "osm"
    bad = _invoke("--position", "0.5", "--oracle", "oms", "--paths", "10", "--crash", "2020-03-12",
                  "--store", str(lending_store), "--out", str(tmp_path / "bad"))
    assert bad.exit_code == 2 and "did you mean 'osm'" in bad.output
