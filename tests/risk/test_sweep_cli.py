"""``margincall sweep`` on the command line: the strategy's signal, grid and worker checks."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.risk.sweep import MAX_SWEEP_RUNS, DataSpec, make_grid, run_sweep
from tests.risk.walk_bars import write_walk_bars

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def bars_path(tmp_path_factory) -> Path:
    path = write_walk_bars(tmp_path_factory.mktemp("sweep-cli") / "bars.parquet", seed=17, n=500, start=30_000.0,
                           sigma=0.012, high_factor=1.003, low_factor=0.997, step_ms=3_600_000, volume=1_000.0)
    return path


def sweep(bars_path: Path, out: Path, *args: str):
    return CliRunner().invoke(build_app(), ["sweep", "--data", str(bars_path), "--timeframe", "1h", "--workers", "1",
                                            "--out", str(out), *args], env={"COLUMNS": "250"})


def test_a_leverage_sweep_of_hold_agrees_with_the_engine(bars_path: Path, tmp_path: Path):
    # 500 hourly bars at 2x..10x: the array path used to hold 1x the wallet, the engine the
    # whole wallet at the leverage (10x: 10,184.51 vs 100.06 in the issue)
    result = sweep(bars_path, tmp_path / "fast", "--strategy", "hold", "--leverage", "2,5,10")
    assert result.exit_code == 0, result.output
    array = pl.read_parquet(tmp_path / "fast" / "sweep.parquet")
    assert set(array["runner"]) == {"fastpath"}
    spec = DataSpec(symbol=SYMBOL, timeframe="1h", bars_path=str(bars_path))
    engine = run_sweep(spec, "hold", make_grid([2, 5, 10]), runner="engine", workers=1, progress=False).table
    keep = [c for c in engine.columns if c not in ("runner", "seconds")]
    assert array.select(keep).equals(engine.select(keep))
    # the leverage matters: a falling market costs about L x its fall, 10x is liquidated
    returns = array["total_return"].to_list()
    liquidations = array["n_liquidations"].to_list()
    assert returns[0] > returns[2] and liquidations[0] == 0 and liquidations[2] >= 1


def test_strategies_without_a_signal_run_on_the_engine_with_a_note(bars_path: Path, tmp_path: Path):
    result = sweep(bars_path, tmp_path / "dca", "--strategy", "dca", "--leverage", "5", "--grid", "step=0.02,0.05")
    assert result.exit_code == 0, result.output
    assert "dca has no vectorized signal" in result.output and "event engine" in result.output
    assert set(pl.read_parquet(tmp_path / "dca" / "sweep.parquet")["runner"]) == {"engine"}


def test_conflicting_grid_points_are_skipped_and_counted(bars_path: Path, tmp_path: Path):
    result = sweep(bars_path, tmp_path / "sma", "--strategy", "sma_cross", "--leverage", "3",
                   "--grid", "fast=10,50", "--grid", "slow=20,40")
    assert result.exit_code == 0, result.output
    assert "skipped 2 of 4 runs" in result.output and "must be shorter than slow" in result.output
    table = pl.read_parquet(tmp_path / "sma" / "sweep.parquet")
    assert table.select("p_fast", "p_slow").rows() == [(10, 20), (10, 40)]


@pytest.mark.parametrize(("args", "expected"), [
    (["--grid", "fsat=10"], "unknown parameter 'fsat' (did you mean 'fast'?)"),
    (["--grid", "fast=abc"], "parameter 'fast' (fast SMA window, bars) expects a whole number >= 1, found 'abc'"),
    (["--grid", "fast=-5"], "expects a whole number >= 1, found -5"),
    (["--grid", "fast="], "parameter 'fast' has no values"),
    (["--grid", "fast=,"], "parameter 'fast' has no values"),
    (["--grid", "=5"], "expected NAME=V1,V2"),
    (["--grid", "fast=10", "--grid", "fast=20"], "'fast' is given twice"),
    (["--grid", "fast=200", "--grid", "slow=50"], "every parameter combination conflicts"),
    (["--grid", "exposure=inf"], "expects a finite number > 0, found inf"),
    (["--workers", "-1"], "sweep workers: expected a whole number from 1 to"),
    (["--workers", "0"], "sweep workers: expected a whole number from 1 to"),
    (["--workers", "1000000"], "sweep workers: expected a whole number from 1 to"),
    (["--leverage", "inf"], "--leverage 'inf': expected finite numbers > 0"),
    (["--leverage", "0.5"], "expected leverages >= 1"),
    (["--strategy", "sma_crss"], "did you mean 'sma_cross'"),
    (["--runner", "fastpth"], "did you mean 'fastpath'"),
    (["--strategy", "dca", "--runner", "fastpath"], "has no vectorized signal"),
    (["--grid", "fast=" + ",".join(str(k) for k in range(1, 400)), "--grid",
      "slow=" + ",".join(str(k) for k in range(400, 800))], f"more than the {MAX_SWEEP_RUNS:,}"),
])
def test_bad_sweep_input_gets_a_clear_error(bars_path: Path, tmp_path: Path, args: list[str], expected: str):
    out = tmp_path / "out"
    result = CliRunner().invoke(build_app(), ["sweep", "--data", str(bars_path), "--timeframe", "1h",
                                              "--strategy", "sma_cross", "--leverage", "2", "--out", str(out),
                                              *args], env={"COLUMNS": "400"})
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert expected in " ".join(result.output.split())
    assert not out.exists()
