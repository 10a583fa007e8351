"""``margincall run`` takes the array path for pure signal strategies, with the event path's outputs.

``backtest.fastpath.run_strategy`` (what the CLI's ``run`` calls) is compared with
``run_backtest`` (the event path, bar by bar) on every built-in that declares a signal, over
parameter sets, leverages and both margin modes: every table, the summary and the manifest
must be exactly equal, and the scan must really have run.
"""
from __future__ import annotations

import json

import pytest

import backtest.fastpath_scan as scan
from backtest import MarketData, RunConfig, Strategy, run_backtest
from backtest.fastpath import array_path_applies, run_strategy
from backtest.strategy import load_strategy
from data_loaders.synthetic import engine_frames, generate_perpetual
from tests.engine.test_fastpath import assert_identical
from tests.engine.test_strategy_signals import funding_bands

BTC = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def data() -> MarketData:
    market = generate_perpetual(symbol=BTC, days=6, crash_day=3, seed=11)
    bars, funding = engine_frames(market)
    return MarketData.from_frames({BTC: bars}, {BTC: funding}, timeframe="1m")


@pytest.fixture()
def scans(monkeypatch) -> list[int]:
    """Counts runs of the array scan (the real scan runs; only its calls are counted)."""
    calls: list[int] = []
    loop = scan.SignalScanner.loop

    def counted(self):  # noqa: ANN001, ANN202
        calls.append(1)
        return loop(self)

    monkeypatch.setattr(scan.SignalScanner, "loop", counted)
    return calls


CASES = [("hold", {}, 2.0, "isolated"), ("hold", {"side": "short", "reenter": True}, 50.0, "cross"),
         ("hold", {"exposure": 1.5, "reenter": True}, 10.0, "isolated"),
         ("sma_cross", {}, 10.0, "isolated"), ("sma_cross", {"fast": 12, "slow": 90}, 50.0, "cross"),
         ("sma_cross", {"fast": 30, "slow": 60, "exposure": 2.5}, 2.0, "isolated"),
         ("funding_carry", 0, 10.0, "isolated"), ("funding_carry", 1, 50.0, "cross")]


@pytest.mark.parametrize(("name", "params", "leverage", "mode"), CASES)
def test_run_takes_the_array_path_with_identical_outputs(data, scans, name, params, leverage, mode):
    if name == "funding_carry":
        params = funding_bands(data)[params]
    config = RunConfig(leverage=leverage, margin_mode=mode)
    event = run_backtest(data, name, params=params, config=config)
    assert not scans  # run_backtest is the event path
    array = run_strategy(data, name, params=params, config=config)
    assert scans == [1]
    assert_identical(event, array)
    assert json.dumps(event.manifest, sort_keys=True, default=str) == \
        json.dumps(array.manifest, sort_keys=True, default=str)
    assert event.fills.height + event.rejections.height >= 1


class HoldAndLog(Strategy):
    """A signal strategy with a hook: it may act on fills, so it stays on the event path."""

    def signal(self, inputs):  # noqa: ANN001, ANN201
        import numpy as np

        return np.ones(inputs.close.size)

    def on_fill(self, ctx, fill) -> None:  # noqa: ANN001
        pass


def test_strategies_that_are_not_pure_signals_run_on_the_event_path(data, scans):
    config = RunConfig(leverage=3.0)
    for strategy in ("dca", HoldAndLog):
        assert not array_path_applies(data, load_strategy(strategy))
        assert_identical(run_backtest(data, strategy, config=config), run_strategy(data, strategy, config=config))
    assert not scans
