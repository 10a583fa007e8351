"""WORKLOAD.md cross-check on a slice of the reference workload: event path == array path.

The data comes from ../shared/bench/gen_workload.py (``generate()``) with 45 days instead of a
year and its crash and short squeeze moved inside the slice. The event path is the built-in
``sma_cross`` strategy through ``run_backtest``; the array path is the SMA(50)/SMA(200)
signal through ``run_signals``; both with the bench's own configurations (venue rules and the
textbook cross-check rules). Fills, liquidations, funding, equity and every other table must
be exactly equal.
"""
from __future__ import annotations

import json
from types import ModuleType

import numpy as np
import polars as pl
import pytest

from backtest import MarketData, run_backtest, run_signals
from backtest.results import OUTPUT_TABLES

SYMBOL = "BTC/USDT:USDT"
DAYS = 45


def workload_slice(generator: ModuleType, seed: int) -> MarketData:
    """45 days of the reference workload with the crash on day 20 and the squeeze on day 35."""
    (_, crash_minute, crash_legs), (_, squeeze_minute, squeeze_legs) = generator.PARAMS["events"]
    params = dict(generator.PARAMS, seed=seed, n_bars=DAYS * 1440,
                  events=[(20, crash_minute, crash_legs), (35, squeeze_minute, squeeze_legs)])
    bars, funding, _ = generator.generate(params)
    return MarketData.from_frames({SYMBOL: pl.from_arrow(bars)}, {SYMBOL: pl.from_arrow(funding)},
                                  timeframe="1m")


def assert_identical(event, array) -> None:  # noqa: ANN001 - RunResult
    for name in OUTPUT_TABLES:
        assert event.frame(name).equals(array.frame(name)), f"{name} differs"
    assert json.dumps(event.summary, sort_keys=True) == json.dumps(array.summary, sort_keys=True)


@pytest.mark.parametrize("crosscheck", [False, True], ids=["venue", "crosscheck"])
@pytest.mark.parametrize(("seed", "leverage"), [(20230101, 10.0), (7, 10.0), (11, 25.0)])
def test_sma_cross_event_and_array_paths_are_identical(bench: ModuleType, generator: ModuleType,
                                                       crosscheck: bool, seed: int,
                                                       leverage: float) -> None:
    data = workload_slice(generator, seed)
    config = bench.workload_config(crosscheck).replace(leverage=leverage)
    event = run_backtest(data, "sma_cross", config=config)
    array = run_signals(data, bench.sma_signals(data), config=config)
    assert_identical(event, array)
    fills = array.fills
    assert fills.height > 100
    assert set(fills.get_column("side").to_list()) == {"buy", "sell"}
    assert array.funding.height == 3 * DAYS - 1  # every settlement but the one at the first bar
    assert array.liquidations.height >= 1  # the crash (longs) or the squeeze (shorts)


@pytest.mark.parametrize("crosscheck", [False, True], ids=["venue", "crosscheck"])
def test_reference_seed_liquidates_a_long_and_a_short(bench: ModuleType, generator: ModuleType,
                                                      crosscheck: bool) -> None:
    data = workload_slice(generator, 20230101)
    config = bench.workload_config(crosscheck)
    event = run_backtest(data, "sma_cross", config=config)
    array = run_signals(data, bench.sma_signals(data), config=config)
    assert_identical(event, array)
    liq = array.liquidations
    assert set(liq.get_column("side").to_list()) == {"long", "short"}
    days = liq.get_column("ts").dt.date().cast(pl.String).to_list()
    assert days == ["2023-01-21", "2023-02-05"]  # day 20 crash, day 35 squeeze
    if crosscheck:  # textbook rules: mark at LP, fill 0.1 % worse than the trigger's last price
        assert liq.get_column("fee").to_list() == [0.0, 0.0]
        assert np.allclose(liq.get_column("slippage_bps").to_numpy(), 10.0)
        assert np.allclose(liq.get_column("maint_margin_rate").to_numpy(), 0.005)
    # the trader loses exactly the isolated margin of the liquidated position
    assert np.allclose(liq.get_column("margin_lost").to_numpy(),
                       (liq["qty"] * liq["entry_price"] / 10.0).to_numpy(), rtol=0.05)


def test_constant_short_is_squeezed_identically(bench: ModuleType, generator: ModuleType) -> None:
    data = workload_slice(generator, 20230101)
    config = bench.workload_config(True).replace(leverage=20.0)
    signals = np.full(len(data), -1.0)
    array = run_signals(data, signals, config=config)
    from backtest.fastpath import SignalStrategy

    event = run_backtest(data, SignalStrategy(signals), config=config)
    assert_identical(event, array)
    liq = array.liquidations
    assert liq.height >= 1
    assert set(liq.get_column("side").to_list()) == {"short"}
    # re-entered short at the next open after each liquidation
    fills = array.fills.filter(pl.col("reason") == "strategy")
    assert (fills.get_column("side") == "sell").all()
    assert fills.height == liq.height + 1
