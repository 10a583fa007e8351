"""Sweeps: grid, local process pool, Ray, Parquet + DuckDB output, agreement with single runs."""
from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from backtest.risk.errors import RiskError
from backtest.risk.signals import strategy_signals
from backtest.risk.sweep import DataSpec, EngineRunner, make_grid, run_sweep
from tests.risk.walk_bars import write_walk_bars

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> DataSpec:
    path = write_walk_bars(tmp_path_factory.mktemp("sweep") / "bars.parquet", seed=5, n=1_500, start=20_000.0,
                           sigma=0.01, high_factor=1.002, low_factor=0.998, step_ms=3_600_000, volume=1_000.0)
    return DataSpec(symbol=SYMBOL, timeframe="1h", bars_path=str(path))


def test_grid_and_filter():
    grid = make_grid([2, 10], {"fast": [10, 50], "slow": [20, 40]}, keep=lambda p: p["fast"] < p["slow"])
    assert [(c.leverage, c.param_dict) for c in grid] == [
        (2.0, {"fast": 10, "slow": 20}), (2.0, {"fast": 10, "slow": 40}),
        (10.0, {"fast": 10, "slow": 20}), (10.0, {"fast": 10, "slow": 40})]
    assert [c.run_id for c in grid] == [0, 1, 2, 3]
    with pytest.raises(RiskError, match="no leverage"):
        make_grid([], {})


def test_sma_cross_signal_follows_its_averages():
    from backtest import MarketData, RunConfig

    close = np.r_[np.linspace(100, 50, 60), np.linspace(50, 150, 60)]
    ts = pl.Series("ts", np.arange(close.size, dtype=np.int64) * 3_600_000 + 1_672_531_200_000)
    bars = pl.DataFrame({"ts": ts.cast(pl.Datetime("ms", "UTC")), "open": close, "high": close, "low": close,
                         "close": close, "volume": np.full(close.size, 1.0), "mark_open": close,
                         "mark_high": close, "mark_low": close, "mark_close": close})
    data = MarketData.from_frames({SYMBOL: bars}, None, timeframe="1h")
    s = strategy_signals("sma_cross", {"fast": 5, "slow": 20}, data, RunConfig())[:, 0]
    assert np.isnan(s[:19]).all() and s[30] == -1.0 and s[-1] == 1.0


def test_local_sweep_matches_single_runs_and_writes_parquet_duckdb(spec, tmp_path: Path):
    from backtest import RunConfig, run_backtest
    grid = make_grid([3, 20], {"fast": [10, 30], "slow": [60]})
    base = RunConfig(slippage="none")
    serial = run_sweep(spec, "sma_cross", grid, base_config=base, runner="engine", workers=1, progress=False)
    pooled = run_sweep(spec, "sma_cross", grid, base_config=base, runner="engine", workers=2, progress=False,
                       out_dir=tmp_path)
    assert serial.table.drop("seconds").equals(pooled.table.drop("seconds"))
    assert pooled.table.height == 4 and pooled.table["run_id"].to_list() == [0, 1, 2, 3]
    # each row equals a direct engine run of that configuration
    row = pooled.table.row(3, named=True)
    direct = run_backtest(spec.load(), "sma_cross", params={"fast": row["p_fast"], "slow": row["p_slow"]},
                          config=base.replace(leverage=row["leverage"]))
    assert row["final_equity"] == direct.summary["final_equity"]
    assert row["n_liquidations"] == direct.summary["n_liquidations"]
    con = duckdb.connect(str(pooled.duckdb_path), read_only=True)
    try:
        count, best = con.execute("SELECT count(*), max(final_equity) FROM sweep").fetchone()
    finally:
        con.close()
    assert count == 4 and best == pytest.approx(pooled.table["final_equity"].max())
    assert pl.read_parquet(pooled.parquet_path).height == 4


@pytest.mark.ray
def test_ray_sweep_on_a_local_instance(spec):
    pytest.importorskip("ray")
    from backtest import RunConfig
    grid = make_grid([5, 25], {"fast": [10], "slow": [60]})
    base = RunConfig(slippage="none")
    local = run_sweep(spec, "sma_cross", grid, base_config=base, runner=EngineRunner("sma_cross"), workers=1,
                      progress=False)
    on_ray = run_sweep(spec, "sma_cross", grid, base_config=base, runner=EngineRunner("sma_cross"), workers=1,
                       backend="ray", progress=False)
    assert on_ray.backend == "ray"
    assert on_ray.table.drop("seconds").equals(local.table.drop("seconds"))
