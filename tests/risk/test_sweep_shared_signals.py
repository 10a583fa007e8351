"""A leverage sweep computes a signal once per parameter set when the signal ignores the configuration."""
from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from backtest import MarketData, RunConfig, run_signals
from backtest.risk.signals import strategy_signals
from backtest.risk.sweep import SignalMemo, SignalRunner
from backtest.strategy import Strategy

SYMBOL = "BTC/USDT:USDT"
CALLS: list[str] = []


class CloseOnly(Strategy):
    """Reads only the closes: the same signal for every leverage."""

    lookback = 30

    def signal(self, inputs):  # noqa: ANN001, ANN201
        CALLS.append("close_only")
        return self.crossing(inputs.close)

    def crossing(self, close):  # noqa: ANN001, ANN201
        out = np.full(close.size, np.nan)
        out[self.lookback:] = np.sign(close[self.lookback:] - close[:-self.lookback])
        return out


class LeverageSized(CloseOnly):
    """Sizes by the run's leverage: a different signal per leverage."""

    def signal(self, inputs):  # noqa: ANN001, ANN201
        CALLS.append("leverage")
        return self.crossing(inputs.close) * min(1.0, 2.0 / inputs.leverage)


class ReadsEverything(CloseOnly):
    """Reads its inputs as a dict (the configuration fields included, though it ignores them)."""

    def signal(self, inputs):  # noqa: ANN001, ANN201
        CALLS.append("everything")
        fields = dataclasses.asdict(inputs)
        return np.sign(np.diff(fields["close"], prepend=fields["close"][0]))


@pytest.fixture(scope="module")
def market() -> MarketData:
    rng = np.random.default_rng(4)
    n = 2_000
    close = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    open_ = np.r_[20_000.0, close[:-1]]
    ts = pl.Series("ts", np.arange(n, dtype=np.int64) * 60_000 + 1_672_531_200_000).cast(pl.Datetime("ms", "UTC"))
    bars = pl.DataFrame({"ts": ts, "open": open_, "high": np.maximum(open_, close) * 1.001,
                         "low": np.minimum(open_, close) * 0.999, "close": close, "volume": np.full(n, 5.0)})
    return MarketData.from_frames({SYMBOL: bars}, timeframe="1m")


def _sweep(runner: SignalRunner, market: MarketData, params: list[dict], leverages=(2.0, 5.0, 20.0)):
    memo, out = None, []
    for p in params:
        for leverage in leverages:
            config = RunConfig(leverage=leverage, slippage="none", rounding=False)
            memo = runner.shared_signals(market, p, config, previous=memo)
            out.append((p, config, memo))
    return out


def test_close_only_signal_is_computed_once_per_parameter_set(market):
    CALLS.clear()
    runs = _sweep(SignalRunner(CloseOnly), market, [{"lookback": 30}, {"lookback": 60}])
    assert CALLS == ["close_only", "close_only"]
    assert all(isinstance(m, SignalMemo) and m.config_free for _, _, m in runs)
    for params, config, memo in runs:  # the shared signal is the one each run would compute
        direct = strategy_signals(CloseOnly, params, market, config)
        assert np.array_equal(memo.prepared.signals, direct, equal_nan=True)
    first, last = runs[0][2], runs[2][2]
    assert first.prepared is last.prepared
    assert run_signals(market, last.prepared, config=runs[2][1]).fills.height > 5


@pytest.mark.parametrize("strategy, label", [(LeverageSized, "leverage"), (ReadsEverything, "everything")])
def test_a_signal_reading_the_configuration_is_computed_per_run(market, strategy, label):
    CALLS.clear()
    runs = _sweep(SignalRunner(strategy), market, [{"lookback": 30}])
    assert CALLS == [label] * 3
    assert not any(m.config_free for _, _, m in runs)
    for params, config, memo in runs:
        assert np.array_equal(memo.prepared.signals, strategy_signals(strategy, params, market, config), equal_nan=True)
    if strategy is LeverageSized:  # 2x, 5x, 20x: three different sizes
        assert len({float(np.nanmax(m.prepared.signals)) for _, _, m in runs}) == 3
    else:  # computed each time, but equal values keep the previous check and action tables
        assert runs[0][2].prepared is runs[2][2].prepared
