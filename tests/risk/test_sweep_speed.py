"""Sweep plumbing that keeps it fast: picklable configs, one signal per parameter set."""
from __future__ import annotations

import pickle

import pytest

from backtest import MarketData, RunConfig, run_signals
from backtest.risk.signals import strategy_signals
from backtest.risk.sweep import DataSpec, SignalRunner, make_grid, run_sweep
from backtest.venues.tiers import TierTable
from tests.risk.walk_bars import write_walk_bars

SYMBOL = "BTC/USDT:USDT"


def test_run_config_pickles_to_an_equal_config():
    config = RunConfig(leverage={"default": 3.0}, slippage="fixed", slippage_params={"bps": 1.0},
                       tiers=TierTable.from_rates([(0.0, 0.005)], max_leverage=[125.0], label="one"),
                       fees=(0.0002, 0.0004), rounding=False)
    copy = pickle.loads(pickle.dumps(config))
    assert copy == config and copy is not config
    assert copy.for_symbol("leverage", SYMBOL) == 3.0


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> DataSpec:
    path = write_walk_bars(tmp_path_factory.mktemp("sweep_speed") / "bars.parquet", seed=9, n=3_000, start=20_000.0,
                           sigma=0.004, high_factor=1.001, low_factor=0.999, step_ms=60_000, volume=50.0)
    return DataSpec(symbol=SYMBOL, timeframe="1m", bars_path=str(path))


class CountingRunner(SignalRunner):
    """A SignalRunner that records how often a signal is checked and prepared (in this process)."""

    computed: list = []

    def prepare(self, market, raw):  # noqa: ANN001, ANN201
        CountingRunner.computed.append(raw.copy())
        return super().prepare(market, raw)


def test_a_sweep_prepares_one_signal_per_parameter_set_and_matches_direct_runs(spec):
    CountingRunner.computed.clear()
    grid = make_grid([2, 5, 20], {"fast": [5, 12], "slow": [40]})
    base = RunConfig(slippage="none", rounding=False)
    result = run_sweep(spec, "sma_cross", grid, base_config=base, runner=CountingRunner("sma_cross"),
                       workers=1, chunk_size=len(grid), progress=False)
    # sma_cross's signal ignores the leverage: one prepared signal per parameter set
    assert len(CountingRunner.computed) == 2
    assert result.table["run_id"].to_list() == list(range(len(grid)))
    market: MarketData = spec.load()
    for row in result.table.iter_rows(named=True):
        config = base.replace(leverage=row["leverage"])
        direct = run_signals(market, strategy_signals("sma_cross", {"fast": row["p_fast"], "slow": row["p_slow"]},
                                                      market, config), config=config)
        assert row["final_equity"] == direct.summary["final_equity"]
        assert row["max_drawdown"] == direct.summary["max_drawdown"]
        assert row["n_fills"] == direct.summary["n_fills"]


def test_a_leverage_dependent_signal_is_prepared_per_leverage(spec):
    CountingRunner.computed.clear()
    grid = make_grid([2, 5, 20], {"side": ["long"]})
    run_sweep(spec, "hold", grid, base_config=RunConfig(slippage="none"), runner=CountingRunner("hold"),
              workers=1, chunk_size=len(grid), progress=False)
    # hold's default size is the whole wallet at the run's leverage: one signal per leverage
    firsts = [float(raw[0, 0]) for raw in CountingRunner.computed]
    assert len(firsts) == 3 and firsts[0] < firsts[1] < firsts[2]
