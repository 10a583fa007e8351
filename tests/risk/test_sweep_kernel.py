"""A sweep through the compiled kernel gives the Python array path's table, column for column.

The whole grid of ``bench/sweep.py`` (10 fast x 10 slow SMA windows x 10 leverages of
``sma_cross``, with the bench's configuration) runs on a ten-day synthetic market with a
crash, once with the kernel and once without: every column but the timings is equal. Random
configurations (fees, slippage, brackets, policy, windows) compare every table of the run
with the event path.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from backtest import MarketData, RunConfig, run_backtest
from backtest.fastpath import run_strategy
from backtest.kernel import have_numba, kernel_scope, run_kernel
from backtest.results import OUTPUT_TABLES
from backtest.risk.signals import strategy_signals
from backtest.risk.sweep import DataSpec, make_grid, run_sweep
from backtest.venues.tiers import TierTable
from data_loaders.synthetic import engine_frames, generate_perpetual

SYMBOL = "BTC/USDT:USDT"
BENCH = Path(__file__).resolve().parents[2] / "bench" / "sweep.py"

pytestmark = pytest.mark.skipif(not have_numba(), reason="numba is not installed (the kernel is off)")


def _bench():  # noqa: ANN202 - bench/sweep.py as a module (its grid)
    spec = importlib.util.spec_from_file_location("sweep_bench_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> DataSpec:
    folder = tmp_path_factory.mktemp("sweep_kernel")
    bars, funding = engine_frames(generate_perpetual(symbol=SYMBOL, days=10, crash_day=6, seed=11))
    bars.write_parquet(folder / "bars.parquet")
    funding.write_parquet(folder / "funding.parquet")
    return DataSpec(symbol=SYMBOL, timeframe="1m", bars_path=str(folder / "bars.parquet"),
                    funding_path=str(folder / "funding.parquet"))


def test_the_bench_grid_gives_the_same_table_with_and_without_the_kernel(spec: DataSpec) -> None:
    bench = _bench()
    base = bench.workload_base()
    grid = make_grid(bench.LEVERAGE, {"fast": bench.FAST, "slow": bench.SLOW})
    assert len(grid) == 1_000
    assert kernel_scope(spec.load(), base.replace(leverage=50.0)) is None
    on = run_sweep(spec, "sma_cross", grid, base_config=base, workers=1, progress=False, kernel=True)
    off = run_sweep(spec, "sma_cross", grid, base_config=base, workers=1, progress=False, kernel=False)
    assert on.runner == off.runner == "fastpath"
    assert on.table.columns == off.table.columns
    assert on.table.drop("seconds").equals(off.table.drop("seconds"))
    assert (on.table["n_liquidations"] > 0).sum() > 0  # the crash liquidates the high leverages
    assert on.table["n_fills"].min() > 0


@pytest.mark.parametrize("seed", range(6))
def test_random_configurations_every_table(spec: DataSpec, seed: int) -> None:
    rng = np.random.default_rng(seed)
    market: MarketData = spec.load()
    fast = int(rng.integers(5, 60))
    params = {"fast": fast, "slow": fast + int(rng.integers(10, 400))}
    tiers = TierTable.from_rates([(0.0, 0.004, 125.0), (8_000.0, 0.005, 100.0), (40_000.0, 0.01, 60.0)],
                                 label="three brackets") if rng.random() < 0.5 else None
    config = RunConfig(initial_balance=float(rng.choice([5_000.0, 10_000.0, 30_000.0])), margin_mode="isolated",
                       leverage=float(rng.choice([2.0, 5.0, 10.0, 25.0, 50.0])),
                       fees=(0.0002, float(rng.choice([0.0, 0.0004, 0.001]))),
                       slippage="fixed", slippage_params={"bps": float(rng.choice([0.0, 1.0, 5.0])),
                                                          "forced_bps": float(rng.choice([0.0, 10.0, 50.0]))},
                       liquidation_fee_rate=float(rng.choice([0.0, 0.0125])), rounding=False,
                       path_policy=str(rng.choice(["worst_case", "adaptive", "ohlc", "olhc"])),
                       **({"tiers": tiers} if tiers is not None else {}))
    assert kernel_scope(market, config) is None
    signal = strategy_signals("sma_cross", params, market, config)[:, 0]
    assert run_kernel(market, signal, config) is not None  # the kernel runs (not a fallback)
    event = run_backtest(market, "sma_cross", params=params, config=config)
    kernel = run_strategy(market, "sma_cross", params=params, config=config, kernel=True)
    for name in OUTPUT_TABLES:
        assert event.frame(name).equals(kernel.frame(name)), name
    assert json.dumps(event.summary, sort_keys=True) == json.dumps(kernel.summary, sort_keys=True)
