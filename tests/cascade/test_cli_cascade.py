"""``margincall cascade`` end to end: population files, synthetic runs, stored windows, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from tests.risk.conftest import store_oct10_window

BTC = "BTC/USDT:USDT"


def _invoke(*args: str):
    return CliRunner().invoke(build_app(), list(args), catch_exceptions=False, env={"COLUMNS": "200"})


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_synthetic_shock_run_writes_a_folder_and_prints_the_summary(tmp_path: Path):
    out = tmp_path / "c1"
    result = _invoke("cascade", "--synthetic", "3000", "--seed", "3", "--shock", "0.08", "--price", f"{BTC}=100000",
                     "--seconds", "200", "--insurance-fund", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = _manifest(out)["summary"]
    assert summary["liquidated_positions"] > 0
    assert f"{summary['liquidated_positions']:,}" in result.output and "amplification" in result.output
    con = duckdb.connect(str(out / "results.duckdb"), read_only=True)
    try:
        steps = con.execute("SELECT count(*) FROM prices").fetchone()[0]
    finally:
        con.close()
    assert steps == 200
    again = _invoke("cascade", "--synthetic", "3000", "--seed", "3", "--shock", "0.08", "--price", f"{BTC}=100000",
                    "--seconds", "200", "--out", str(out))
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert _manifest(out)["summary"] == summary  # the refused run left the folder alone


def test_population_csv_with_leverage_column(tmp_path: Path):
    csv = tmp_path / "pop.csv"
    pl.DataFrame({"symbol": [BTC] * 3, "side": ["long", "long", "short"], "qty": [1.0, 2.0, 1.0],
                  "entry_price": [100_000.0, 99_000.0, 101_000.0], "leverage": [50.0, 5.0, 20.0]}).write_csv(csv)
    out = tmp_path / "c2"
    result = _invoke("cascade", "--population", str(csv), "--shock", "0.05", "--price", f"{BTC}=100000",
                     "--seconds", "120", "--out", str(out))
    assert result.exit_code == 0, result.output
    liq = pl.read_parquet(out / "liquidated_positions.parquet")
    assert liq["position"].to_list() == [0]  # only the 50x long is below maintenance after -5 %


@pytest.mark.parametrize(("args", "message"), [
    (["--synthetic", "10"], "expected exactly one price path"),
    (["--shock", "0.1"], "expected exactly one population source"),
    (["--synthetic", "10", "--shock", "0.1"], "--price BTC/USDT:USDT=PRICE"),
    (["--synthetic", "10", "--shock", "0.1", "--price", f"{BTC}=100", "--venue", "binance"], "did you mean"),
    (["--synthetic", "10", "--shock", "0.1", "--price", f"{BTC}=100", "--adl-rule", "prorata"], "pro_rata"),
    (["--population", "/nonexistent/pop.parquet", "--shock", "0.1"], "found nothing there"),
])
def test_bad_input_is_one_clear_line(tmp_path: Path, args, message):
    result = _invoke("cascade", *args, "--out", str(tmp_path / "never"))
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "never").exists()


def test_population_file_with_a_cross_row_is_refused(tmp_path: Path):
    pq = tmp_path / "pop.parquet"
    pl.DataFrame({"symbol": [BTC], "side": ["long"], "qty": [1.0], "entry_price": [100.0], "margin": [10.0],
                  "margin_mode": ["cross"]}).write_parquet(pq)
    result = _invoke("cascade", "--population", str(pq), "--shock", "0.1", "--price", f"{BTC}=100",
                     "--out", str(tmp_path / "x"))
    assert result.exit_code == 2 and "cross" in result.output and "isolated" in result.output


def test_stored_window_run(shared_data: Path, tmp_path: Path):
    from data_loaders.store import MarketStore

    root = tmp_path / "store"
    bars = store_oct10_window(shared_data, root, BTC)
    out = tmp_path / "c3"
    result = _invoke("cascade", "--synthetic", "2000", "--start", "2025-10-10T21:00:00Z", "--end", "2025-10-10T21:15:00Z",
                     "--timeframe", "5m", "--store", str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "mark = last" in result.output or "data quality" in result.output
    prices = pl.read_parquet(out / "prices.parquet")
    assert prices.height == 900
    assert prices["exogenous"].min() == pytest.approx(bars["low"][:3].min(), rel=1e-6)
    assert _manifest(out)["summary"]["liquidated_positions"] > 0
    # a stored single-bracket table (mmr 5 %) now covers the date: the window run uses it
    from tests.risk.test_market_loader import _custom_tiers

    MarketStore(root).write("risk_tiers", _custom_tiers("2025-01-01"), source="test")
    out2 = tmp_path / "c4"
    result = _invoke("cascade", "--synthetic", "2000", "--start", "2025-10-10T21:00:00Z", "--end", "2025-10-10T21:15:00Z",
                     "--timeframe", "5m", "--store", str(root), "--out", str(out2))
    assert result.exit_code == 0, result.output
    liq = pl.read_parquet(out2 / "liquidated_positions.parquet")
    side = liq["side"].replace_strict({"long": 1.0, "short": -1.0}, return_dtype=pl.Float64)
    # isolated LP with one bracket: (margin - s q entry) / (q mmr - s q)
    expected = (liq["margin"] - side * liq["qty"] * liq["entry_price"]) / (liq["qty"] * 0.05 - side * liq["qty"])
    assert liq["liquidation_price"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-12)
    assert liq.height > _manifest(out)["summary"]["liquidated_positions"]  # 5 % maintenance liquidates earlier


def test_html_page_has_every_section(tmp_path: Path):
    page = tmp_path / "cascade.html"
    result = _invoke("cascade", "--synthetic", "3000", "--seed", "3", "--shock", "0.08", "--price", f"{BTC}=100000",
                     "--seconds", "200", "--insurance-fund", "0", "--depth-scale", "0.05", "--compare-adl", "--out", str(tmp_path / "c"),
                     "--html", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text()
    for heading in ("Who paid the liquidation loss", "Exogenous, mark and last price",
                    "Liquidation ladder against price", "Insurance fund", "ADL rounds", "ADL rules on the same deficits"):
        assert heading in text, heading
    assert text.count("cascade-") >= 4  # one chart slot per figure
    assert "leverage_levelling" in text and "plotly" in text
