"""The array path (``backtest.fastpath.run_signals``) against the event path, table by table.

Every comparison runs the same signals through ``run_backtest(data, SignalStrategy(...))``
(the per-bar Python loop) and ``run_signals`` (the vectorized scan) and asserts that every
output table and the summary are exactly equal (no tolerance).
"""
from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

from backtest import MarketData, RunConfig, run_backtest, run_signals
from backtest.errors import StrategyError
from backtest.fastpath import PreparedSignals, SignalStrategy, prepare_signals, validate_signals
from backtest.fastpath_scan import ActionIndex, SignalScanner, block_extremes, next_true_index
from backtest.orders import Order
from backtest.results import OUTPUT_TABLES
from data_loaders.synthetic import demo_dataset, engine_frames, generate_perpetual

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def assert_identical(event, array) -> None:  # noqa: ANN001 - RunResult
    """Every table and the summary of two results are exactly equal."""
    for name in OUTPUT_TABLES:
        a, b = event.frame(name), array.frame(name)
        assert a.columns == b.columns, name
        assert a.height == b.height, f"{name}: {a.height} rows (event) vs {b.height} (array)"
        assert a.equals(b), f"{name} differs:\n{a}\n{b}"
    assert json.dumps(event.summary, sort_keys=True) == json.dumps(array.summary, sort_keys=True)


def both_paths(data: MarketData, signals: np.ndarray, config: RunConfig):  # noqa: ANN201
    """(event result, array result) of the same signals."""
    return run_backtest(data, SignalStrategy(signals), config=config), \
        run_signals(data, signals, config=config)


def random_signals(n: int, seed: int, *, magnitudes: bool = False, columns: int = 1) -> np.ndarray:
    """Runs of +1 / -1 / 0 / NaN with random lengths (optionally random magnitudes)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, columns))
    for c in range(columns):
        values, i = [], 0
        while i < n:
            length = int(rng.integers(20, 3_000))
            value = rng.choice([1.0, -1.0, 1.0, -1.0, 0.0, np.nan])
            values.append(np.full(min(length, n - i), value))
            i += length
        column = np.concatenate(values)
        if magnitudes:
            column = column * rng.uniform(0.3, 1.6, n)
        out[:, c] = column
    return out[:, 0] if columns == 1 else out


@pytest.fixture(scope="module")
def btc_data() -> MarketData:
    market = generate_perpetual(symbol=BTC, days=20, crash_day=12, seed=3)
    bars, funding = engine_frames(market)
    return MarketData.from_frames({BTC: bars}, {BTC: funding}, timeframe="1m")


@pytest.fixture(scope="module")
def pair_data() -> MarketData:
    markets = demo_dataset(seed=5)
    frames = {s: engine_frames(m) for s, m in markets.items()}
    return MarketData.from_frames({s: f[0] for s, f in frames.items()},
                                  {s: f[1] for s, f in frames.items()}, timeframe="1m")


# ---------------------------------------------------------------------- building blocks
def test_next_true_index_matches_a_brute_force_scan() -> None:
    rng = np.random.default_rng(0)
    for size in (0, 1, 7, 500):
        mask = rng.random(size) < 0.1
        got = next_true_index(mask)
        assert got.shape == (size + 1,)
        for i in range(size + 1):
            hits = np.flatnonzero(mask[i:])
            assert got[i] == (i + hits[0] if hits.size else size)


def test_block_extremes_are_the_nan_ignoring_extremes_of_each_64_bar_block() -> None:
    rng = np.random.default_rng(4)
    for size in (0, 1, 63, 64, 65, 1_000):
        values = rng.normal(100.0, 5.0, size)
        values[rng.random(size) < 0.05] = np.nan
        if size >= 130:
            values[64:128] = np.nan  # a block without any number
        lows, highs = block_extremes(values, lowest=True), block_extremes(values, lowest=False)
        assert len(lows) == len(highs) == -(-size // 64)
        for b, (lo, hi) in enumerate(zip(lows, highs)):
            block = values[64 * b: 64 * (b + 1)]
            if np.isnan(block).all():
                assert np.isnan(lo) and np.isnan(hi)
            else:
                assert lo == np.nanmin(block) and hi == np.nanmax(block)
        # what the scan relies on: blocks clear of a level -> no value in the window reaches it
        for _ in range(200 if size else 0):
            i = int(rng.integers(0, size))
            end = int(rng.integers(i + 1, size + 1))
            level = float(rng.normal(100.0, 8.0))
            covering = lows[i // 64: (end - 1) // 64 + 1]
            if min(covering) > level:
                assert not (values[i:end] <= level).any()


def test_action_index_matches_a_brute_force_scan() -> None:
    rng = np.random.default_rng(1)
    for size in (1, 2, 300):
        signal = rng.choice([1.0, -1.0, 0.0, np.nan, 0.5, -2.0], size)
        signal[size // 3: size // 2] = np.nan  # a long run without opinion
        index = ActionIndex(signal)
        for side in (-1, 0, 1):
            for i in range(size):
                later = [j for j in range(i, size)
                         if not np.isnan(signal[j]) and np.sign(signal[j]) != side]
                assert index.next(i, side) == (later[0] if later else size), (size, side, i)


def test_scan_finds_the_first_bar_reaching_a_resting_trigger(btc_data: MarketData) -> None:
    signals = np.full(len(btc_data), np.nan)
    scanner = SignalScanner(btc_data, SignalStrategy(signals), RunConfig())
    low = btc_data.bars[BTC].low
    trigger = float(np.quantile(low, 0.2))
    book = scanner.run.st.book
    book.add(Order(book.next_id(), 0, BTC, -1, "stop_market", 0.1, stop_price=trigger))
    first = int(np.flatnonzero(low <= trigger)[0])
    gate = scanner.run.gate
    assert gate.next_hit(0, len(btc_data)) == first
    assert scanner._next_bar(0, len(btc_data)) == first
    assert gate.hit(first) and not any(gate.hit(j) for j in range(first))
    assert gate.next_hit(first + 1, first + 1) == first + 1  # empty window


def test_the_scan_skips_quiet_bars(btc_data: MarketData, pair_data: MarketData) -> None:
    for data in (btc_data, pair_data):
        signals = random_signals(len(data), 3, columns=len(data.symbols))
        scanner = SignalScanner(data, SignalStrategy(signals), RunConfig(leverage=5.0))
        scanner.loop()
        fills = scanner.result().fills.height
        assert 0 < scanner.visited < len(data) // 20
        assert scanner.visited >= fills // 2  # every fill bar and its order bar were visited


def test_validate_signals_shapes_and_errors() -> None:
    assert validate_signals([1.0, np.nan, -1.0], 3, (BTC,)).shape == (3, 1)
    assert validate_signals(np.zeros((3, 2)), 3, (BTC, ETH)).shape == (3, 2)
    with pytest.raises(StrategyError, match=r"expected shape 4 .* found \(3,\)"):
        validate_signals([1.0, 1.0, 1.0], 4, (BTC,))
    with pytest.raises(StrategyError, match="expected shape"):
        validate_signals(np.zeros((3, 1)), 3, (BTC, ETH))
    with pytest.raises(StrategyError, match="does not convert to float"):
        validate_signals(["long", "short", "flat"], 3, (BTC,))
    with pytest.raises(StrategyError, match="row 1 holds an infinite"):
        validate_signals([1.0, math.inf, 1.0], 3, (BTC,))


def test_run_signals_rejects_a_signal_of_the_wrong_length(btc_data: MarketData) -> None:
    with pytest.raises(StrategyError, match=f"expected shape {len(btc_data)}"):
        run_signals(btc_data, np.ones(10))


def test_signal_strategy_rejects_a_signal_of_the_wrong_length(btc_data: MarketData) -> None:
    with pytest.raises(StrategyError, match=f"one signal row per bar \\({len(btc_data)}\\)"):
        run_backtest(btc_data, SignalStrategy(np.ones(10)))


def test_prepared_signals_run_like_raw_signals_and_are_reused(btc_data: MarketData,
                                                               pair_data: MarketData) -> None:
    signals = random_signals(len(btc_data), 7)
    prepared = prepare_signals(btc_data, signals)
    assert isinstance(prepared, PreparedSignals) and not prepared.signals.flags.writeable
    signals[:] = 1.0  # the caller's array may change afterwards: the prepared copy does not
    raw = random_signals(len(btc_data), 7)
    for leverage in (3.0, 40.0):  # one preparation, several configurations
        config = RunConfig(leverage=leverage, fees=(0.0002, 0.0004))
        assert_identical(run_signals(btc_data, raw, config=config),
                         run_signals(btc_data, prepared, config=config))
    with pytest.raises(StrategyError, match="prepare them with prepare_signals"):
        run_signals(pair_data, prepared)


def test_no_signal_means_no_trade(btc_data: MarketData) -> None:
    config = RunConfig(rounding=False)
    event, array = both_paths(btc_data, np.full(len(btc_data), np.nan), config)
    assert_identical(event, array)
    assert array.fills.height == 0
    assert array.summary["final_equity"] == config.initial_balance
    assert array.equity.height == len(btc_data)


# ---------------------------------------------------------------------- equivalence
@pytest.mark.parametrize(("margin_mode", "leverage", "seed"), [
    ("isolated", 10.0, 1), ("isolated", 40.0, 2), ("cross", 10.0, 3), ("cross", 50.0, 4),
])
def test_random_signals_identical(btc_data: MarketData, margin_mode: str, leverage: float,
                                  seed: int) -> None:
    config = RunConfig(leverage=leverage, margin_mode=margin_mode, fees=(0.0002, 0.0004))
    signals = random_signals(len(btc_data), seed, magnitudes=seed % 2 == 0)
    event, array = both_paths(btc_data, signals, config)
    assert_identical(event, array)
    assert array.fills.height > 10
    assert array.funding.height > 0


@pytest.mark.parametrize("options", [
    {"position_mode": "hedge"}, {"sizing_basis": "equity"},
    {"path_policy": "adaptive", "slippage": "fixed", "slippage_params": {"bps": 3}},
], ids=["hedge", "equity-sizing", "adaptive-fixed-slippage"])
def test_other_modes_identical(btc_data: MarketData, options: dict) -> None:
    config = RunConfig(leverage=30.0, **options)
    event, array = both_paths(btc_data, random_signals(len(btc_data), 21, magnitudes=True), config)
    assert_identical(event, array)
    assert array.liquidations.height >= 1


def test_high_leverage_liquidates_identically(btc_data: MarketData) -> None:
    config = RunConfig(leverage=60.0, fees=(0.0002, 0.0004), rounding=False)
    short_then_long = np.where(np.arange(len(btc_data)) < len(btc_data) // 2, -1.0, 1.0)
    event, array = both_paths(btc_data, short_then_long, config)
    assert_identical(event, array)
    liq = array.liquidations
    assert liq.height >= 2
    assert set(liq.get_column("side").to_list()) == {"long", "short"}


def test_oversized_targets_are_rejected_identically(btc_data: MarketData) -> None:
    config = RunConfig(leverage=2.0, fees=(0.0002, 0.0004))
    signals = random_signals(len(btc_data), 9)
    signals[:3_000] = 5.0  # 5x the wallet at 2x leverage: rejected at every bar, then fine
    event, array = both_paths(btc_data, signals, config)
    assert_identical(event, array)
    assert array.rejections.height > 0
    assert set(array.rejections.get_column("reason").to_list()) == {"insufficient_margin"}
    assert array.rejections.height >= 2_999  # one per bar while oversized
    assert array.fills.height >= 3


def test_ungated_engine_gives_the_same_result(btc_data: MarketData) -> None:
    signals = random_signals(len(btc_data), 5)
    gated = run_signals(btc_data, signals, config=RunConfig(leverage=30.0))
    ungated_event, ungated_array = both_paths(btc_data, signals,
                                              RunConfig(leverage=30.0, gating=False))
    assert_identical(ungated_event, ungated_array)
    assert_identical(gated, ungated_array)


def test_a_slippage_scale_column_gives_the_same_result() -> None:
    bars, funding = engine_frames(generate_perpetual(symbol=BTC, days=20, crash_day=12, seed=3))
    scale = np.where((np.arange(bars.height) // 37) % 2 == 1, 6.0, 1.0)  # thin-book stretches
    data = MarketData.from_frames({BTC: bars.with_columns(pl.Series("slippage_scale", scale))},
                                  {BTC: funding}, timeframe="1m")
    signals = random_signals(len(data), 9)
    config = RunConfig(leverage=40.0, slippage="fixed", slippage_params={"bps": 2.0, "forced_bps": 8.0},
                       rounding=False)
    event, array = both_paths(data, signals, config)
    assert_identical(event, array)
    bps = array.fills.get_column("slippage_bps").to_numpy()
    assert np.isclose(bps, 12.0).any() and np.isclose(bps, 2.0).any()
    forced = array.liquidations.get_column("slippage_bps").to_numpy()
    assert np.isclose(forced, 48.0).any()  # forced 8 bps x6 in the thin stretches


def test_progress_chunks_give_the_same_result(btc_data: MarketData, pair_data: MarketData) -> None:
    for data, seed in ((btc_data, 7), (pair_data, 8)):
        signals = random_signals(len(data), seed, columns=len(data.symbols))
        config = RunConfig(leverage=30.0)
        chunked = run_signals(data, signals, config=config.replace(progress=True,
                                                                    progress_every=3_001))
        assert_identical(run_backtest(data, SignalStrategy(signals), config=config), chunked)


@pytest.mark.parametrize("margin_mode", ["isolated", "cross"])
def test_two_symbols_identical(pair_data: MarketData, margin_mode: str) -> None:
    config = RunConfig(leverage=25.0, margin_mode=margin_mode, fees=(0.0002, 0.0004))
    signals = random_signals(len(pair_data), 11, columns=2) * 0.5
    event, array = both_paths(pair_data, signals, config)
    assert_identical(event, array)
    assert set(array.fills.get_column("symbol").unique().to_list()) == {BTC, ETH}


def test_detail_candles_identical() -> None:
    market = generate_perpetual(symbol=BTC, days=10, crash_day=6, seed=8)
    detail, funding = engine_frames(market)
    hourly = detail.group_by_dynamic("ts", every="1h").agg(
        pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
        pl.col("close").last(), pl.col("volume").sum(), pl.col("mark_open").first(),
        pl.col("mark_high").max(), pl.col("mark_low").min(), pl.col("mark_close").last())
    data = MarketData.from_frames({BTC: hourly}, {BTC: funding}, timeframe="1h",
                                  detail_bars={BTC: detail}, detail_timeframe="1m")
    signals = np.sign(np.arange(len(data)) % 37 - 18.5)
    signals[100:120] = np.nan
    event, array = both_paths(data, signals, RunConfig(leverage=40.0, rounding=False))
    assert_identical(event, array)
    assert array.fills.height > 10


def test_trade_ticks_identical() -> None:
    market = generate_perpetual(symbol=BTC, days=6, crash_day=3, seed=12)
    bars, funding = engine_frames(market)
    crash = bars.slice(3 * 1440 + 600, 1440)  # trade ticks for one day around the crash
    offsets = [0, 15_000, 30_000, 59_000]
    trades = pl.concat([
        crash.select((pl.col("ts").dt.epoch("ms") + off).alias("ts"), pl.col(col).alias("price"))
        for off, col in zip(offsets, ["open", "high", "low", "close"])
    ]).sort("ts").with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")), qty=pl.lit(0.5),
                               side=pl.lit("buy"))
    data = MarketData.from_frames({BTC: bars}, {BTC: funding}, timeframe="1m", trades={BTC: trades})
    signals = np.sign(np.sin(np.arange(len(data)) / 700.0))
    event, array = both_paths(data, signals, RunConfig(leverage=50.0, rounding=False))
    assert_identical(event, array)
    assert array.liquidations.height >= 1


def test_sma_cross_builtin_equals_its_signal_array(btc_data: MarketData) -> None:
    close = btc_data.frames[BTC].get_column("close")
    fast, slow = close.rolling_mean(50).to_numpy(), close.rolling_mean(200).to_numpy()
    with np.errstate(invalid="ignore"):
        signals = np.where(fast > slow, 1.0, np.where(fast < slow, -1.0, np.nan))
    config = RunConfig(leverage=10.0, fees=(0.0002, 0.0004), rounding=False)
    event = run_backtest(btc_data, "sma_cross", config=config)
    array = run_signals(btc_data, signals, config=config)
    assert_identical(event, array)
    assert array.fills.height > 50


def test_two_runs_in_one_process_do_not_interfere(btc_data: MarketData) -> None:
    signals = random_signals(len(btc_data), 6)
    config = RunConfig(leverage=35.0)
    first = run_signals(btc_data, signals, config=config)
    run_signals(btc_data, -signals, config=config)
    assert_identical(first, run_signals(btc_data, signals, config=config))
