"""The embedded synthetic perpetual: schema, sanity, determinism and its stylised facts."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from scipy import stats

from data_loaders.schemas import get_schema
from data_loaders.synthetic import (
    EXCHANGE,
    MODEL_PRESETS,
    SyntheticModel,
    demo_dataset,
    engine_frames,
    funding_rate_from_premium,
    generate_perpetual,
    resample_ohlcv,
    timeframe_minutes,
    write_to_store,
)

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
START_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z
STAT_SEEDS = (7, 11, 42)


@pytest.fixture(scope="module")
def demo():
    return demo_dataset(7)


@pytest.fixture(scope="module")
def demos():
    return {seed: demo_dataset(seed) for seed in STAT_SEEDS}


def _ms(frame: pl.DataFrame, column: str = "ts") -> np.ndarray:
    return frame[column].dt.epoch("ms").to_numpy()


def _arr(frame: pl.DataFrame, *columns: str) -> list[np.ndarray]:
    return [frame[c].to_numpy() for c in columns]


def _calm_returns(market) -> np.ndarray:
    """One-minute last-price log returns outside the crash day."""
    close = market.last["close"].to_numpy()
    returns = np.diff(np.log(close))
    day = (np.arange(1, close.size)) // 1440
    return returns[day != market.crash_day]


def _crash_window(market, frame: pl.DataFrame, hours: float = 6.0) -> pl.DataFrame:
    start = market.crash_start_ms
    ts = pl.col("ts").dt.epoch("ms")
    return frame.filter((ts >= start) & (ts < start + int(hours * 3_600_000)))


def _pre_crash_close(market) -> float:
    return market.last.filter(pl.col("ts").dt.epoch("ms") < market.crash_start_ms)["close"][-1]


def _wick(frame: pl.DataFrame) -> np.ndarray:
    o, h, low, c = _arr(frame, "open", "high", "low", "close")
    return ((h - np.maximum(o, c)) + (np.minimum(o, c) - low)) / c


# ------------------------------------------------------------------ schema and sanity


def test_frames_have_the_canonical_schema(demo):
    ohlcv, funding = get_schema("ohlcv").polars_schema, get_schema("funding").polars_schema
    for symbol, market in demo.items():
        for price_type, frame in (("last", market.last), ("mark", market.mark), ("index", market.index)):
            assert dict(frame.schema) == ohlcv
            assert frame["exchange"].unique().to_list() == [EXCHANGE] == ["binanceusdm"]
            assert frame["symbol"].unique().to_list() == [symbol]
            assert frame["timeframe"].unique().to_list() == ["1m"]
            assert frame["price_type"].unique().to_list() == [price_type]
        assert market.last["volume"].null_count() == 0 and market.last["volume"].min() > 0
        assert market.mark["volume"].null_count() == market.mark.height
        assert market.index["volume"].null_count() == market.index.height
        assert dict(market.funding.schema) == funding


def test_candles_sit_on_a_gapless_sorted_minute_grid(demo):
    for market in demo.values():
        expected = START_MS + 60_000 * np.arange(30 * 1440)
        for frame in (market.last, market.mark, market.index):
            np.testing.assert_array_equal(_ms(frame), expected)


@pytest.mark.parametrize("timeframe", ["1m", "5m", "1h"])
def test_every_candle_passes_ohlc_sanity(timeframe):
    btc = generate_perpetual(timeframe=timeframe, seed=3)
    eth = generate_perpetual(symbol=ETH, s0=3_400.0, timeframe=timeframe, seed=3, correlated_with=btc)
    for market in (btc, eth):
        for frame in (market.last, market.mark, market.index):
            o, h, low, c = _arr(frame, "open", "high", "low", "close")
            assert np.all(h >= np.maximum(o, c))
            assert np.all(low <= np.minimum(o, c))
            assert np.all(low > 0)
            assert np.all(np.diff(_ms(frame)) == timeframe_minutes(timeframe) * 60_000)


def test_each_bar_opens_at_the_previous_close(demo):
    for market in demo.values():
        for frame in (market.last, market.mark, market.index):
            o, c = _arr(frame, "open", "close")
            np.testing.assert_array_equal(o[1:], c[:-1])


def test_last_prices_sit_on_the_tick(demo):
    for symbol, market in demo.items():
        tick = MODEL_PRESETS[symbol].tick_size
        for column in ("open", "high", "low", "close"):
            ticks = market.last[column].to_numpy() / tick
            np.testing.assert_allclose(ticks, np.round(ticks), atol=1e-6)


def test_a_coarser_timeframe_is_the_resampled_minute_data():
    minute = generate_perpetual(days=2, crash_day=1, seed=5)
    hourly = generate_perpetual(days=2, crash_day=1, seed=5, timeframe="1h")
    for price_type in ("last", "mark", "index"):
        expected = resample_ohlcv(getattr(minute, price_type), "1h")
        got = getattr(hourly, price_type)
        assert got.select("ts", "open", "high", "low", "close").equals(
            expected.select("ts", "open", "high", "low", "close"))
        if price_type == "last":
            np.testing.assert_allclose(got["volume"].to_numpy(), expected["volume"].to_numpy(), rtol=1e-12)


# ------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_frames_and_other_seeds_differ():
    first = generate_perpetual(seed=21, days=3, crash_day=1)
    other = generate_perpetual(seed=22, days=3, crash_day=1)
    again = generate_perpetual(seed=21, days=3, crash_day=1)  # after another run: no shared state
    for name in ("last", "mark", "index", "funding"):
        assert getattr(first, name).equals(getattr(again, name))
        assert not getattr(first, name).equals(getattr(other, name))


def test_demo_dataset_is_reproducible_and_symbols_have_their_own_streams(demo):
    again = demo_dataset(7)
    for symbol in (BTC, ETH):
        assert demo[symbol].last.equals(again[symbol].last)
        assert demo[symbol].funding.equals(again[symbol].funding)
    eth_alone = generate_perpetual(symbol=ETH, s0=60_000.0, seed=7)
    btc = demo[BTC]
    assert not np.allclose(eth_alone.last["close"].to_numpy(), btc.last["close"].to_numpy())


# ------------------------------------------------------------------ stylised facts


@pytest.mark.parametrize("seed", STAT_SEEDS)
def test_returns_are_fat_tailed_outside_the_crash(demos, seed):
    for market in demos[seed].values():
        assert stats.kurtosis(_calm_returns(market)) > 3.0  # excess kurtosis; normal = 0


@pytest.mark.parametrize("seed", STAT_SEEDS)
def test_volatility_clusters_outside_the_crash(demos, seed):
    for market in demos[seed].values():
        squared = _calm_returns(market) ** 2
        assert np.corrcoef(squared[1:], squared[:-1])[0, 1] > 0.05


@pytest.mark.parametrize("seed", STAT_SEEDS)
def test_eth_and_btc_returns_correlate_about_0_8(demos, seed):
    btc, eth = demos[seed][BTC], demos[seed][ETH]
    r_btc = np.diff(np.log(btc.last["close"].to_numpy()))
    r_eth = np.diff(np.log(eth.last["close"].to_numpy()))
    assert 0.7 <= np.corrcoef(r_btc, r_eth)[0, 1] <= 0.9


def test_uncorrelated_markets_without_a_crash_are_independent():
    btc = generate_perpetual(seed=7, crash_day=None)
    eth = generate_perpetual(symbol=ETH, s0=3_400.0, seed=7, crash_day=None)
    r_btc = np.diff(np.log(btc.last["close"].to_numpy()))
    r_eth = np.diff(np.log(eth.last["close"].to_numpy()))
    assert abs(np.corrcoef(r_btc, r_eth)[0, 1]) < 0.1


def test_volume_rises_with_volatility(demo):
    for market in demo.values():
        volume = market.last["volume"].to_numpy()
        high, low = _arr(market.last, "high", "low")
        assert stats.spearmanr(volume, np.log(high / low))[0] > 0.3
        day = np.arange(volume.size) // 1440
        daily = np.array([volume[day == d].sum() for d in range(30)])
        assert daily[market.crash_day] > 2.0 * np.median(daily)


def test_mark_wicks_are_smaller_than_last_wicks(demo):
    for market in demo.values():
        assert _wick(market.mark).mean() < 0.85 * _wick(market.last).mean()


def test_mark_follows_the_index_with_a_small_basis(demo):
    for market in demo.values():
        basis = market.mark["close"].to_numpy() / market.index["close"].to_numpy() - 1
        calm = (np.arange(basis.size) // 1440) != market.crash_day
        assert np.abs(basis[calm]).max() < 0.005
        assert np.abs(basis[calm]).mean() < 0.001


@pytest.mark.parametrize("seed", STAT_SEEDS)
def test_crash_day_last_wick_overshoots_the_mark(demos, seed):
    depth = {}
    for symbol, market in demos[seed].items():
        pre = _pre_crash_close(market)
        last = _crash_window(market, market.last)
        mark = _crash_window(market, market.mark)
        last_dd = last["low"].min() / pre - 1
        mark_dd = mark["low"].min() / pre - 1
        depth[symbol] = (last_dd, mark_dd)
        # the whole series' lowest last price is the crash wick, within minutes of its start
        assert last["low"].min() == market.last["low"].min()
        minutes_in = (_ms(last)[int(np.argmin(last["low"].to_numpy()))] - market.crash_start_ms) / 60_000
        assert minutes_in <= 40
        assert last["low"].min() < 0.85 * mark["low"].min()
        # partial rebound: six hours later, well off the trough yet below the pre-crash level
        rebound = last["close"][-1]
        assert mark["low"].min() * 1.05 < rebound < pre
    btc_last, btc_mark = depth[BTC]
    eth_last, eth_mark = depth[ETH]
    assert -0.45 <= btc_last <= -0.35 and -0.30 <= btc_mark <= -0.20
    assert eth_last < btc_last - 0.05 and eth_mark < btc_mark - 0.03
    assert -0.55 <= eth_last <= -0.45 and -0.38 <= eth_mark <= -0.26


def test_without_a_crash_last_and_mark_lows_stay_close():
    market = generate_perpetual(seed=7, crash_day=None)
    ratio = market.last["low"].to_numpy() / market.mark["low"].to_numpy()
    assert ratio.min() > 0.97
    assert market.crash_start_ms is None


# ------------------------------------------------------------------ funding


@pytest.mark.parametrize(
    ("mean_premium", "expected"),
    [
        (0.0, 0.0001),        # inside the clamp band: interest only
        (0.0003, 0.0001),
        (-0.0004, 0.0001),    # I - P = 0.05 %: still inside
        (0.001, 0.0005),      # P + clamp(I - P) = 0.1 % - 0.05 %
        (-0.001, -0.0005),    # -0.1 % + 0.05 %
        (0.01, 0.003),        # overall cap
        (-0.01, -0.003),
    ],
)
def test_funding_rate_formula_table(mean_premium, expected):
    model = MODEL_PRESETS[BTC]
    assert funding_rate_from_premium(mean_premium, model) == pytest.approx(expected, abs=1e-15)


def test_funding_settles_every_8h_at_00_08_16_utc(demo):
    for market in demo.values():
        funding = market.funding
        ts = _ms(funding)
        np.testing.assert_array_equal(ts, START_MS + 8 * 3_600_000 * np.arange(90))
        assert funding["interval_hours"].unique().to_list() == [8.0]
        assert set(funding["ts"].dt.hour().unique().to_list()) == {0, 8, 16}
        mark_at = market.mark.filter(pl.col("ts").is_in(funding["ts"].implode()))["open"]
        np.testing.assert_array_equal(funding["mark_price"].to_numpy(), mark_at.to_numpy())


def test_funding_is_the_clamped_mean_premium_of_the_interval(demo):
    for market in demo.values():
        premium = market.last["close"].to_numpy() / market.index["close"].to_numpy() - 1
        # settlements 1.. cover a full 8 h of candles; settlement 0 uses pre-start history
        mean_premium = premium[: 89 * 480].reshape(89, 480).mean(axis=1)
        rates = market.funding["rate"].to_numpy()[1:]
        np.testing.assert_allclose(rates, funding_rate_from_premium(mean_premium, market.model), atol=1e-15)
        assert np.corrcoef(rates, mean_premium)[0, 1] > 0.5
        assert np.abs(market.funding["rate"].to_numpy()).max() <= market.model.funding_cap
        calm = np.abs(market.model.interest_rate - mean_premium) <= market.model.premium_clamp
        assert calm.any() and (~calm).any()
        np.testing.assert_allclose(rates[calm], market.model.interest_rate, atol=1e-15)


def test_funding_turns_negative_after_the_crash(demo):
    for market in demo.values():
        after = market.funding.filter(pl.col("ts").dt.epoch("ms") > market.crash_start_ms)["rate"]
        assert after[0] < 0


def test_funding_starts_at_the_first_settlement_on_or_after_start():
    market = generate_perpetual(start="2024-03-01T05:00:00", days=1, crash_day=None)
    ts = _ms(market.funding)
    np.testing.assert_array_equal(ts, START_MS + 3_600_000 * np.array([8, 16, 24]))


# ------------------------------------------------------------------ engine frames and resampling


def test_engine_frames_join_last_and_mark(demo):
    market = demo[BTC]
    bars, funding = engine_frames(market)
    assert bars.columns == ["ts", "open", "high", "low", "close", "volume",
                            "mark_open", "mark_high", "mark_low", "mark_close"]
    assert bars.height == market.last.height
    assert bars.select("ts", "open", "high", "low", "close", "volume").equals(
        market.last.select("ts", "open", "high", "low", "close", "volume"))
    np.testing.assert_array_equal(bars["mark_low"].to_numpy(), market.mark["low"].to_numpy())
    assert funding.columns == ["ts", "rate", "interval_hours", "mark_price"]
    assert funding.height == 90


def test_resample_ohlcv_aggregates_a_small_table():
    rows = [  # ts offset (min), open, high, low, close, volume
        (0, 10.0, 11.0, 9.5, 10.5, 1.0),
        (1, 10.5, 12.0, 10.0, 11.0, 2.0),
        (2, 11.0, 11.5, 8.0, 9.0, 3.0),
        (3, 9.0, 9.5, 8.5, 9.2, 4.0),
        (4, 9.2, 9.8, 9.1, 9.7, 5.0),
        (5, 9.7, 10.0, 9.6, 9.9, 6.0),
    ]
    frame = pl.DataFrame(
        {
            "exchange": EXCHANGE, "symbol": BTC, "timeframe": "1m", "price_type": "last",
            "ts": [START_MS + r[0] * 60_000 for r in rows],
            "open": [r[1] for r in rows], "high": [r[2] for r in rows], "low": [r[3] for r in rows],
            "close": [r[4] for r in rows], "volume": [r[5] for r in rows],
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    out = resample_ohlcv(frame, "5m")
    assert out["timeframe"].to_list() == ["5m", "5m"]
    assert _ms(out).tolist() == [START_MS, START_MS + 300_000]
    assert out.select("open", "high", "low", "close", "volume").rows() == [
        (10.0, 12.0, 8.0, 9.7, 15.0),
        (9.7, 10.0, 9.6, 9.9, 6.0),
    ]
    mark_rows = frame.with_columns(price_type=pl.lit("mark"), volume=pl.lit(None, pl.Float64))
    mark = resample_ohlcv(mark_rows, "5m")
    assert mark["volume"].null_count() == 2
    with pytest.raises(ValueError, match="whole multiple"):
        resample_ohlcv(out, "12m")


# ------------------------------------------------------------------ bad input


def test_unknown_symbol_needs_a_model():
    with pytest.raises(ValueError, match="no built-in synthetic model.*model=SyntheticModel"):
        generate_perpetual(symbol="SOL/USDT:USDT")
    sol_model = replace(MODEL_PRESETS[ETH], tick_size=0.001)
    market = generate_perpetual(symbol="SOL/USDT:USDT", s0=150.0, days=1, crash_day=0, model=sol_model)
    assert market.last["symbol"][0] == "SOL/USDT:USDT" and market.last["low"].min() > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbol": "BTCUSDT"}, "ccxt unified"),
        ({"timeframe": "7m"}, "divides a day"),
        ({"timeframe": "1M"}, "divides a day"),
        ({"days": 0}, "days"),
        ({"crash_day": 30}, r"crash_day.*\[0, 29\]"),
        ({"seed": -1}, "seed"),
        ({"s0": 0.0}, "s0"),
        ({"s0": 5.0}, "at least 100 ticks"),
        ({"start": "2024-03-01T00:30", "timeframe": "1h"}, "align start"),
        ({"start": "March first"}, "start"),
        ({"start": START_MS + 1}, "whole minute"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_perpetual(**kwargs)


def test_driver_on_another_grid_is_rejected():
    btc = generate_perpetual(days=2, crash_day=None)
    with pytest.raises(ValueError, match="same start and days"):
        generate_perpetual(symbol=ETH, days=3, crash_day=None, correlated_with=btc)
    with pytest.raises(ValueError, match="itself"):
        generate_perpetual(days=2, crash_day=None, correlated_with=btc)


def test_model_parameters_are_validated():
    with pytest.raises(ValueError, match=r"garch_alpha \+ garch_beta.*< 1"):
        SyntheticModel(garch_alpha=0.2, garch_beta=0.85)
    with pytest.raises(ValueError, match="t_dof"):
        SyntheticModel(t_dof=3.0)


def test_store_source_must_mark_synthetic_data(demo, tmp_path):
    from data_loaders.store import MarketStore

    store = MarketStore(tmp_path / "store")
    with pytest.raises(ValueError, match="starting with 'synthetic'"):
        write_to_store(store, demo, source="binance")
    assert not (tmp_path / "store").exists()


# ------------------------------------------------------------------ store round trip


def test_store_round_trip(demo, tmp_path):
    from data_loaders.store import MarketStore

    store = MarketStore(tmp_path / "store")
    results = write_to_store(store, demo)
    assert [r.dataset for r in results] == ["ohlcv", "funding", "ohlcv", "funding"]
    for symbol, market in demo.items():
        for price_type in ("last", "mark", "index"):
            minute = getattr(market, price_type)
            stored = store.read("ohlcv", exchange=EXCHANGE, symbol=symbol, timeframe="1m",
                                price_type=price_type)
            assert stored.equals(minute)
            for timeframe in ("5m", "1h"):
                stored = store.read("ohlcv", exchange=EXCHANGE, symbol=symbol, timeframe=timeframe,
                                    price_type=price_type)
                assert stored.equals(resample_ohlcv(minute, timeframe))
        assert store.read("funding", exchange=EXCHANGE, symbol=symbol).equals(market.funding)
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    sources = {w["source"] for entry in manifest["files"].values() for w in entry["writes"]}
    assert sources == {"synthetic:seed=7"}
    again = write_to_store(store, demo)
    assert sum(r.rows_added for r in again) == 0


# ------------------------------------------------------------------ the engine reads it


def test_engine_frames_load_into_market_data(demo):
    from backtest.market_data import MarketData

    frames = {symbol: engine_frames(market) for symbol, market in demo.items()}
    data = MarketData.from_frames({s: f[0] for s, f in frames.items()}, {s: f[1] for s, f in frames.items()},
                                  timeframe="1m")
    assert data.symbols == (BTC, ETH)
    assert data.quality_warnings == []
    assert data.bars[BTC].ts.size == 30 * 1440 and data.funding[ETH].ts.size == 90


def test_stored_demo_loads_into_market_data_with_detail(demo, tmp_path):
    from backtest.market_data import MarketData
    from data_loaders.store import MarketStore

    store = MarketStore(tmp_path / "store")
    write_to_store(store, demo)
    data = MarketData.from_store(store, exchange=EXCHANGE, symbols=[BTC, ETH], timeframe="1h",
                                 detail_timeframe="1m")
    # the store holds no tiers or markets: the built-in tables are used, each named with its
    # effective_from (one loader for every command); nothing else is wrong with the data
    assert sorted(w.split(": ")[0] for w in data.quality_warnings) == sorted(
        f"{kind} {s}" for kind in ("tiers", "markets") for s in (BTC, ETH))
    assert all("built-in" in w and "effective_from" in w for w in data.quality_warnings)
    assert data.bars[BTC].ts.size == 30 * 24 and data.detail[ETH].ts.size == 30 * 1440
    assert data.funding[BTC].ts.size == 90
