"""The lending platform view's parameter search: the grid, the caps and capital efficiency,
the close factor as a parameter, the p95/p99/expected-shortfall tails and the constrained
recommendation; on the stored Black Thursday candles and from the command line."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.lending import aave_kernels as kernels
from backtest.lending.amm import ConstantProductPool
from backtest.lending.errors import LendingParameterError
from backtest.lending.paths import candle_path
from backtest.lending.platform import (
    ParameterSet,
    bad_debt_distribution,
    parameter_grid,
    parse_grid,
)
from backtest.lending.simulation import PositionBook, SimulationConfig, simulate


def test_the_grid_skips_what_the_configurator_refuses() -> None:
    sets = parameter_grid(thresholds=[0.8, 0.95], bonuses=[1.05, 1.1], close_factors=[0.5, 1.0])
    # 0.95 x 1.1 > 1 is refused; 0.95 x 1.05 = 0.9975 is allowed
    assert len(sets) == 3 * 2
    assert {(s.liquidation_threshold, s.liquidation_bonus) for s in sets} == {
        (0.8, 1.05), (0.8, 1.1), (0.95, 1.05)}
    assert len({s.name for s in sets}) == len(sets)
    assert len(parse_grid(["lt=0.8,0.825", "bonus=1.05", "borrow_cap=0.7,1"])) == 4
    with pytest.raises(LendingParameterError, match="did you mean 'bonus'"):
        parse_grid(["lt=0.8", "bonuses=1.05"])
    with pytest.raises(LendingParameterError, match="expected values for bonus"):
        parse_grid(["lt=0.8"])
    with pytest.raises(LendingParameterError, match="configurator"):
        parameter_grid(thresholds=[0.99], bonuses=[1.1])


def test_the_close_factor_is_a_parameter_of_the_rules() -> None:
    assert kernels.max_liquidatable_debt_v33(5000.0, 4000.0, 4000.0, 0.97, close_factor=1.0) == 4000.0
    assert kernels.max_liquidatable_debt_v33(5000.0, 4000.0, 4000.0, 0.97) == 2000.0
    book = PositionBook(np.array([10.0]), np.array([16000.0]), 0.825, 1.05)
    deep = ConstantProductPool.at_price(2000.0, depth_quote=1e10, fee=0.0)
    runs = {cf: simulate(book, [0.0, 12.0], [2000.0, 1900.0], deep,
                         SimulationConfig(version="3.0", close_factor=cf)).liquidations
            for cf in (0.5, 1.0)}
    assert runs[0.5]["debt_repaid"][0] == pytest.approx(8000.0)      # HF 0.98: half the debt
    assert runs[1.0]["debt_repaid"][0] == pytest.approx(16000.0)
    with pytest.raises(LendingParameterError, match="close_factor"):
        SimulationConfig(close_factor=0.0)


def test_caps_efficiency_tails_and_the_constrained_recommendation(black_thursday_bars) -> None:
    times, prices = candle_path(black_thursday_bars, step=300.0)
    sets = [ParameterSet("current", 0.825, 1.05),
            ParameterSet("capped", 0.825, 1.05, borrow_cap=0.4),
            ParameterSet("small-market", 0.825, 1.05, supply_cap=5e6)]
    runs, summary = bad_debt_distribution(times, prices, sets, depths=[1.0, 1.5], seeds=[0, 1],
                                          positions=1_000, config=SimulationConfig(gas_cost=20.0),
                                          min_efficiency=0.95)
    by = {r["parameter_set"]: r for r in summary.iter_rows(named=True)}
    assert by["current"]["capital_efficiency"] == 1.0
    assert by["capped"]["capital_efficiency"] < 0.95 and not by["capped"]["meets_efficiency"]
    small = runs.filter(pl.col("parameter_set") == "small-market")
    assert (small["debt"] < runs.filter(pl.col("parameter_set") == "current")["debt"]).all()
    for row in summary.iter_rows(named=True):
        assert row["p95"] <= row["p99"] + 1e-9 <= row["worst"] + 2e-9
        assert row["es99"] >= row["p99"] - 1e-9 and row["es95"] >= row["p95"] - 1e-9
        assert math.isfinite(row["mean"])
    # the capped set has the least bad debt but fails the efficiency constraint
    assert by["capped"]["p95"] <= by["current"]["p95"]
    eligible = summary.filter("meets_efficiency").sort(["p95", "es99", "mean"])
    assert summary.filter("recommended")["parameter_set"].to_list() == [
        eligible["parameter_set"][0]]
    _, none = bad_debt_distribution(times, prices, sets[1:2], depths=[1.0], seeds=[0],
                                    positions=200, min_efficiency=0.99)
    assert not none["recommended"].any()


def test_grid_search_on_the_command_line(lending_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid"
    result = CliRunner().invoke(build_app(), [
        "lending", "--grid", "lt=0.78,0.825", "--grid", "bonus=1.05,1.075", "--grid",
        "borrow_cap=0.7,1", "--min-efficiency", "0.8", "--generate", "300", "--seeds", "0",
        "--scenario-depth", "1,1.5", "--timeframe", "1h", "--start", "2020-03-12",
        "--end", "2020-03-14", "--step", "300", "--store", str(lending_store),
        "--out", str(out)], catch_exceptions=False, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    summary = pl.read_parquet(out / "platform_summary.parquet")
    assert summary.height == 8 and summary["recommended"].sum() == 1
    assert {"p95", "p99", "es95", "es99", "capital_efficiency"} <= set(summary.columns)
    bad = CliRunner().invoke(build_app(), [
        "lending", "--grid", "lt=0.8", "--generate", "10", "--store", str(lending_store),
        "--out", str(tmp_path / "bad")], env={"COLUMNS": "250"})
    assert bad.exit_code == 2 and "expected values for bonus" in bad.output
