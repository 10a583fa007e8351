"""One account, one language: a looped Aave long next to a perpetual long at equal leverage on
the stored Black Thursday candles; the platform view (parameter sets -> bad-debt distribution)."""
from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.lending.compare import looped_long
from backtest.lending.errors import LendingParameterError
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


def test_platform_view_ranks_parameter_sets_by_bad_debt(black_thursday_bars):
    from backtest.lending.platform import bad_debt_distribution, parse_parameter_set
    from backtest.lending.simulation import SimulationConfig

    times, prices = candle_path(black_thursday_bars, step=300.0)
    sets = [parse_parameter_set(s) for s in ("current:0.825:1.05", "strict:0.70:1.08")]
    runs, summary = bad_debt_distribution(times, prices, sets, depths=[1.0, 1.5], seeds=[0, 1],
                                          positions=2_000, config=SimulationConfig(gas_cost=20.0))
    assert runs.height == 2 * 2 * 2 and set(runs["depth"]) == {1.0, 1.5}
    # the same debts (set by the reference threshold) under a stricter threshold: liquidated
    # earlier and more, with no more bad debt; the deeper scenario reaches a lower price
    by = {r["parameter_set"]: r for r in summary.iter_rows(named=True)}
    assert by["strict"]["mean_debt_liquidated"] > by["current"]["mean_debt_liquidated"]
    assert by["strict"]["p95"] <= by["current"]["p95"]
    assert summary["recommended"].sum() == 1
    deep = runs.filter(pl.col("depth") == 1.5)["path_low"][0]
    assert deep == pytest.approx(prices[0] * (prices.min() / prices[0]) ** 1.5)
    with pytest.raises(LendingParameterError, match="NAME:LT:BONUS"):
        parse_parameter_set("current:0.8")
    with pytest.raises(LendingParameterError, match="threshold x bonus"):
        parse_parameter_set("bad:0.97:1.05")


def test_platform_on_the_command_line(lending_store: Path, tmp_path: Path):
    result = CliRunner().invoke(build_app(), [
        "lending", "--platform", "current:0.825:1.05", "--platform", "strict:0.7:1.08",
        "--generate", "500", "--seeds", "0", "--scenario-depth", "1,2", "--step", "300",
        "--start", "2020-03-12", "--end", "2020-03-14", "--store", str(lending_store),
        "--out", str(tmp_path / "pf")], catch_exceptions=False, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "bad debt by parameter set" in result.output
    con = duckdb.connect(str(tmp_path / "pf" / "lending.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM platform_runs").fetchone()[0] == 4
        assert con.execute("SELECT count(*) FROM platform_summary WHERE recommended").fetchone()[0] == 1
    finally:
        con.close()
