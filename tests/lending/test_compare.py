"""One account, one language: a looped Aave long next to a perpetual long at equal leverage on
the stored Black Thursday candles."""
from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.lending.compare import looped_long
from backtest.lending.paths import candle_path


def test_a_loop_that_survives_loses_its_leveraged_price_move(black_thursday_bars):
    row = looped_long(black_thursday_bars, leverage=1.5, equity=10_000.0)
    _, prices = candle_path(black_thursday_bars, step=12.0)
    assert row["survived"] and row["liquidations"] == 0
    # collateral 1.5 x 10,000 at the first price, debt 5,000 (no interest): by hand
    expected = 15_000.0 / prices[0] * prices[-1] - 5_000.0
    assert row["final_equity"] == pytest.approx(expected)
    assert row["loss"] == pytest.approx(10_000.0 - expected)


def test_a_liquidated_loop_pays_the_bonus_and_keeps_the_rest(black_thursday_bars):
    row = looped_long(black_thursday_bars, leverage=3.0, equity=10_000.0)
    assert not row["survived"] and row["liquidations"] > 1         # partial liquidations
    assert 0 < row["final_equity"] < 10_000.0
    # the bonus: 5 % of the debt repaid (deep pool, oracle = market at the liquidation)
    assert row["liquidation_cost"] == pytest.approx(0.05 * 20_000.0, rel=1e-6)
    refused = looped_long(black_thursday_bars, leverage=6.0)
    assert refused["rejection"].startswith("ltv_exceeded") and "5.00x" in refused["rejection"]


def test_compare_cex_on_the_command_line(lending_store: Path, tmp_path: Path):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(build_app(), [
        "lending", "--compare-cex", "2020-03-12", "--leverage", "2,3", "--store", str(lending_store),
        "--out", str(out)], catch_exceptions=False, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(out / "lending.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT venue, leverage, survived, final_equity FROM comparison "
                           "ORDER BY leverage, venue").fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == ["aave_v3 loop", "binanceusdm perpetual"] * 2
    # at 2x both are liquidated on Black Thursday, but the loop's partial liquidations leave
    # more equity than the isolated perpetual's full one
    loop, perp = rows[0], rows[1]
    assert not loop[2] and not perp[2] and loop[3] > perp[3]
