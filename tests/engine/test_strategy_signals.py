"""One definition of each strategy: the event path and the array path trade the same signal.

Every built-in with a vectorized signal (``Strategy.signal``) is run through
``run_backtest`` (its ``on_bar``, bar by bar) and through ``run_signals`` (the array path a
sweep uses) over several leverages and parameter sets; every output table and the summary
must be exactly equal (``tests/engine/test_fastpath.assert_identical``).
"""
from __future__ import annotations

import numpy as np
import pytest

from backtest import MarketData, RunConfig, Strategy, run_backtest, run_signals
from backtest.errors import StrategyError
from backtest.risk.signals import strategy_signals
from backtest.strategy import BUILTIN_STRATEGIES, SignalInputs, strategy_class
from data_loaders.synthetic import engine_frames, generate_perpetual
from tests.engine.test_fastpath import assert_identical

BTC = "BTC/USDT:USDT"
LEVERAGES = (2.0, 10.0, 50.0)


@pytest.fixture(scope="module")
def data() -> MarketData:
    """Six days of 1m candles with a crash (liquidations at high leverage) and 8h funding."""
    market = generate_perpetual(symbol=BTC, days=6, crash_day=3, seed=11)
    bars, funding = engine_frames(market)
    return MarketData.from_frames({BTC: bars}, {BTC: funding}, timeframe="1m")


def funding_bands(data: MarketData) -> list[dict]:
    """funding_carry parameter sets that trade on this data (thresholds at rate quantiles)."""
    rates = data.funding[BTC].rate
    lo, mid, hi = (float(np.quantile(rates, q)) for q in (0.25, 0.5, 0.75))
    return [{"rich_rate": mid, "cheap_rate": mid}, {"rich_rate": hi, "cheap_rate": lo, "exposure": 2.0}]


PARAMS = {
    "hold": [{}, {"side": "short"}, {"exposure": 1.5, "reenter": True}, {"side": "short", "reenter": True}],
    "sma_cross": [{}, {"fast": 12, "slow": 90}, {"fast": 30, "slow": 60, "exposure": 2.5}],
    "funding_carry": "bands",
}


def cases() -> list[tuple[str, int, float]]:
    out = []
    for name, sets in PARAMS.items():
        count = 2 if sets == "bands" else len(sets)
        out += [(name, k, lev) for k in range(count) for lev in LEVERAGES]
    return out


def test_every_builtin_is_classified():
    with_signal = {name for name in BUILTIN_STRATEGIES if strategy_class(name).has_signal()}
    assert with_signal == set(PARAMS)  # dca decides from its own fills: event path only
    assert not strategy_class("dca").has_signal()


@pytest.mark.parametrize(("name", "k", "leverage"), cases())
def test_event_and_array_paths_are_identical(data: MarketData, name: str, k: int, leverage: float) -> None:
    params = funding_bands(data)[k] if PARAMS[name] == "bands" else PARAMS[name][k]
    config = RunConfig(leverage=leverage, margin_mode="cross" if k % 2 else "isolated")
    event = run_backtest(data, name, params=params, config=config)
    array = run_signals(data, strategy_signals(name, params, data, config), config=config)
    assert_identical(event, array)
    # the comparison is about orders (filled, or refused: 2.5x the wallet at 2x leverage)
    assert event.fills.height + event.rejections.height >= 1


def test_a_leverage_sweep_of_hold_uses_the_whole_wallet_at_each_leverage(data: MarketData) -> None:
    # the bug: the array path held 1x the wallet, the engine the whole wallet at the leverage
    notionals = []
    for leverage in (2.0, 10.0):
        config = RunConfig(leverage=leverage, fees=(0.0002, 0.0004), slippage="none")
        array = run_signals(data, strategy_signals("hold", {}, data, config), config=config)
        event = run_backtest(data, "hold", config=config)
        assert array.summary["final_equity"] == event.summary["final_equity"]
        fill = array.fills.row(0, named=True)
        notionals.append(fill["qty"] * fill["price"])
    # effective leverage ~ the configured one: notional / wallet = 0.99 / (1/L + taker)
    assert notionals[0] / 10_000 == pytest.approx(0.99 / (1 / 2 + 0.0004), rel=5e-3)  # lot rounding (0.001 BTC)
    assert notionals[1] / 10_000 == pytest.approx(0.99 / (1 / 10 + 0.0004), rel=5e-3)  # lot rounding (0.001 BTC)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_signals_are_causal(data: MarketData, name: str) -> None:
    """Value i of a signal uses bars 0..i only: a cut-off history gives the same prefix."""
    params = funding_bands(data)[1] if PARAMS[name] == "bands" else PARAMS[name][-1]
    strategy = strategy_class(name)(**params)
    full = SignalInputs.of_run(data, RunConfig())
    whole = strategy.signal_array(full)
    for cut in (1, 500, len(data) // 2):
        part = SignalInputs(full.close[:cut], full.ts[:cut], full.time[:cut], full.funding_rate[:cut],
                            full.leverage, full.maker_fee, full.taker_fee, full.sizing_basis)
        np.testing.assert_array_equal(strategy.signal_array(part), whole[:cut])


def test_a_strategy_cannot_declare_both_a_signal_and_on_bar() -> None:
    class Both(Strategy):
        def signal(self, inputs):  # noqa: ANN001, ANN201
            return np.zeros(inputs.close.size)

        def on_bar(self, ctx) -> None:  # noqa: ANN001
            ctx.target_exposure(1.0)

    with pytest.raises(StrategyError, match="declares both signal\\(\\) and on_bar\\(\\)"):
        Both()


def test_a_bad_signal_is_named(data: MarketData) -> None:
    class Short(Strategy):
        def signal(self, inputs):  # noqa: ANN001, ANN201
            return np.ones(3)

    class Infinite(Strategy):
        def signal(self, inputs):  # noqa: ANN001, ANN201
            return np.full(inputs.close.size, np.inf)

    with pytest.raises(StrategyError, match=r"Short.signal: expected shape \(\d+,\).*found \(3,\)"):
        run_backtest(data, Short, config=RunConfig())
    with pytest.raises(StrategyError, match="Infinite.signal: bar 0 has an infinite target exposure"):
        strategy_signals(Infinite, {}, data, RunConfig())


def test_a_user_signal_strategy_runs_identically_on_both_paths(data: MarketData) -> None:
    class Momentum(Strategy):
        lookback = 240

        def signal(self, inputs):  # noqa: ANN001, ANN201
            close = inputs.close
            out = np.full(close.size, np.nan)
            out[self.lookback:] = np.sign(close[self.lookback:] - close[:-self.lookback]) * 0.8
            return out

    config = RunConfig(leverage=20.0)
    event = run_backtest(data, Momentum, params={"lookback": 120}, config=config)
    assert_identical(event, run_signals(data, strategy_signals(Momentum, {"lookback": 120}, data, config),
                                        config=config))
    assert event.fills.height > 5


def test_a_signal_strategy_run_is_freed_without_the_cyclic_collector(data: MarketData) -> None:
    """The base on_bar keeps its run's signal next to the context: no cycle may outlive the run."""
    import gc
    import weakref

    gc.disable()
    try:
        result = run_backtest(data, "sma_cross", params={"fast": 12, "slow": 90}, config=RunConfig(leverage=5.0))
        assert result.summary["n_fills"] > 0
        state = weakref.ref(result._builders["equity"].__self__._state)  # noqa: SLF001
        del result
        assert state() is None, "the run's state outlived its result: a reference cycle"
    finally:
        gc.enable()


def test_one_instance_run_twice_recomputes_its_signal_per_run(data: MarketData) -> None:
    strategy = strategy_class("hold")()
    low = run_backtest(data, strategy, config=RunConfig(leverage=2.0, slippage="none"))
    high = run_backtest(data, strategy, config=RunConfig(leverage=10.0, slippage="none"))
    assert high.fills["qty"][0] > 4 * low.fills["qty"][0]
    assert_identical(high, run_backtest(data, "hold", config=RunConfig(leverage=10.0, slippage="none")))
