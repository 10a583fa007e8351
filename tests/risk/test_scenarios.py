"""Stress scenarios: exact shocks, sane candles, composition, clear errors."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtest.risk.errors import ScenarioError
from backtest.risk.scenarios import (
    FundingSpike,
    LiquidityDrought,
    MarkDivergence,
    ScaledSlippage,
    ScenarioSet,
    Shock,
    StressMarket,
    VolatilityScale,
    check_ohlc,
    parse_scenario,
)
from backtest.risk.stress import run_stress

HOUR = 3_600_000
SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def market() -> StressMarket:
    rng = np.random.default_rng(0)
    n = 500
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[30_000.0, close[:-1]]
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    basis = 1 - 0.0005
    ts = pl.Series("ts", np.arange(n, dtype=np.int64) * HOUR).cast(pl.Datetime("ms", "UTC"))
    bars = pl.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                         "volume": rng.uniform(10, 100, n), "mark_open": open_ * basis, "mark_high": high * basis,
                         "mark_low": low * basis, "mark_close": close * basis})
    fts = pl.Series("ts", np.arange(0, n, 8, dtype=np.int64) * HOUR).cast(pl.Datetime("ms", "UTC"))
    funding = pl.DataFrame({"ts": fts, "rate": np.full(len(fts), 1e-4), "interval_hours": np.full(len(fts), 8.0),
                            "mark_price": np.full(len(fts), 30_000.0)})
    return StressMarket(bars={SYMBOL: bars}, funding={SYMBOL: funding})


def test_shock_is_exactly_x_percent_at_t(market):
    t = 200 * HOUR
    out = Shock(-0.3, at=t).apply(market).bars[SYMBOL]
    before = market.bars[SYMBOL]
    ts = out["ts"].dt.epoch("ms").to_numpy()
    for col in ("open", "high", "low", "close", "mark_open", "mark_low"):
        ratio = out[col].to_numpy() / before[col].to_numpy()
        np.testing.assert_array_equal(ratio[ts < t], 1.0)
        np.testing.assert_allclose(ratio[ts >= t], 0.7, rtol=1e-14)
    i = int(np.flatnonzero(ts == t)[0])
    gap = out["open"][i] / out["close"][i - 1] - 1
    original_gap = before["open"][i] / before["close"][i - 1] - 1
    assert gap == pytest.approx((1 + original_gap) * 0.7 - 1, rel=1e-12)
    assert check_ohlc(out) == []
    # volume is untouched, the funding mark after t moves with the price
    assert out["volume"].equals(before["volume"])
    fmark = Shock(-0.3, at=t).apply(market).funding[SYMBOL]
    after = fmark.filter(pl.col("ts").dt.epoch("ms") >= t)["mark_price"].to_list()
    assert len(after) == len(range(200, 500, 8)) and after == pytest.approx([21_000.0] * len(after))


def test_shock_between_bars_starts_at_next_bar(market):
    out = Shock(0.1, at=200 * HOUR + 1).apply(market).bars[SYMBOL]
    assert out["open"][200] == market.bars[SYMBOL]["open"][200]
    assert out["open"][201] == pytest.approx(market.bars[SYMBOL]["open"][201] * 1.1, rel=1e-15)


@pytest.mark.parametrize("factor", [0.3, 1.0, 2.5, 5.0])
def test_volatility_scaling_scales_returns_and_keeps_ohlc_sane(market, factor):
    out = VolatilityScale(factor, window=24).apply(market).bars[SYMBOL]
    assert check_ohlc(out) == []
    r0 = np.diff(np.log(market.bars[SYMBOL]["close"].to_numpy()))
    r1 = np.diff(np.log(out["close"].to_numpy()))
    # deviations from the causal 24-bar mean of the original returns are scaled exactly by factor
    full0 = np.r_[np.log(market.bars[SYMBOL]["close"][0] / market.bars[SYMBOL]["open"][0]), r0]
    trend = np.array([full0[max(0, i - 23): i + 1].mean() for i in range(full0.size)])[1:]
    np.testing.assert_allclose(r1 - trend, factor * (r0 - trend), atol=1e-10)
    range0 = np.log(market.bars[SYMBOL]["high"] / market.bars[SYMBOL]["low"]).to_numpy()
    range1 = np.log(out["high"] / out["low"]).to_numpy()
    np.testing.assert_allclose(range1, factor * range0, rtol=1e-8, atol=1e-12)
    if factor == 1.0:
        np.testing.assert_allclose(out["close"].to_numpy(), market.bars[SYMBOL]["close"].to_numpy(), rtol=1e-12)


def test_volatility_scaling_in_a_window_only(market):
    out = VolatilityScale(3.0, window=12, start=100 * HOUR, end=200 * HOUR).apply(market).bars[SYMBOL]
    np.testing.assert_allclose(out["close"].to_numpy()[:100], market.bars[SYMBOL]["close"].to_numpy()[:100], rtol=1e-12)
    r0 = np.diff(np.log(market.bars[SYMBOL]["close"].to_numpy()))
    r1 = np.diff(np.log(out["close"].to_numpy()))
    np.testing.assert_allclose(r1[250:], r0[250:], atol=1e-12)  # after the window: same returns, new level


def test_funding_spike_and_mark_divergence(market):
    spiked = FundingSpike(0.003, start=80 * HOUR, end=160 * HOUR).apply(market).funding[SYMBOL]
    inside = spiked.filter((pl.col("ts").dt.epoch("ms") >= 80 * HOUR) & (pl.col("ts").dt.epoch("ms") < 160 * HOUR))
    assert inside["rate"].to_list() == [0.003] * 10
    assert spiked["rate"].sum() == pytest.approx(0.003 * 10 + 1e-4 * (spiked.height - 10))
    diverged = MarkDivergence(-0.02, start=10 * HOUR, end=20 * HOUR).apply(market).bars[SYMBOL]
    ratio = diverged["mark_close"].to_numpy() / market.bars[SYMBOL]["mark_close"].to_numpy()
    np.testing.assert_allclose(ratio[10:20], 0.98)
    np.testing.assert_array_equal(ratio[:10], 1.0)
    assert check_ohlc(diverged) == []


def test_composition_and_drought_through_slippage_config(market):
    from backtest.config import RunConfig
    scenario = ScenarioSet("crash", [Shock(-0.2, at=300 * HOUR), VolatilityScale(2.0), LiquidityDrought(4.0)])
    out = scenario.apply(market)
    assert len(out.applied) == 3 and out.slippage_multiplier == 4.0
    assert check_ohlc(out.bars[SYMBOL]) == []
    config = out.config(RunConfig(slippage="fixed", slippage_params={"bps": 2.0}))
    assert isinstance(config.slippage, ScaledSlippage)
    kwargs = dict(qty=1.0, price=100.0, bar_high=101.0, bar_low=99.0, bar_volume=10.0)
    assert config.slippage.impact(forced=False, **kwargs) == pytest.approx(8e-4)
    assert "shock" in scenario.describe() and ScenarioSet("base").describe().startswith("baseline")
    # the input market is never modified
    assert market.slippage_multiplier == 1.0 and market.applied == ()


def test_bad_scenarios_raise_clearly(market):
    with pytest.raises(ScenarioError, match="no bar"):
        Shock(-0.1, at=10_000 * HOUR).apply(market)
    with pytest.raises(ScenarioError, match="> -1"):
        Shock(-1.5, at=0).apply(market)
    with pytest.raises(ScenarioError, match="no funding settlement"):
        FundingSpike(0.01, start=1 * HOUR, end=2 * HOUR).apply(market)
    with pytest.raises(ScenarioError, match="not in the market data"):
        Shock(-0.1, at=0, symbols=("ETH/USDT:USDT",)).apply(market)
    with pytest.raises(ScenarioError, match="naive datetime"):
        from datetime import datetime
        Shock(-0.1, at=datetime(2020, 1, 1)).apply(market)


def test_windowed_drought_scales_the_bars_inside_only(market):
    out = LiquidityDrought(5.0, start=10 * HOUR, end=20 * HOUR).apply(market)
    scale = out.bars[SYMBOL]["slippage_scale"].to_numpy()
    np.testing.assert_array_equal(scale[10:20], 5.0)
    np.testing.assert_array_equal(np.r_[scale[:10], scale[20:]], 1.0)
    assert out.slippage_multiplier == 1.0  # the run's model is untouched: only those bars
    both = LiquidityDrought(2.0, start=15 * HOUR, end=30 * HOUR).apply(out).bars[SYMBOL]["slippage_scale"]
    np.testing.assert_array_equal(both.to_numpy()[[9, 12, 17, 25, 30]], [1.0, 5.0, 10.0, 2.0, 1.0])
    assert "from" in LiquidityDrought(5.0, start=10 * HOUR, end=20 * HOUR).describe()
    assert "slippage_scale" not in market.bars[SYMBOL].columns  # the input is never modified
    with pytest.raises(ScenarioError, match="both start and end"):
        LiquidityDrought(5.0, start=10 * HOUR).apply(market)
    with pytest.raises(ScenarioError, match="no bar falls"):
        LiquidityDrought(5.0, start=10_000 * HOUR, end=10_001 * HOUR).apply(market)
    with pytest.raises(ScenarioError, match="end must be after start"):
        LiquidityDrought(5.0, start=20 * HOUR, end=10 * HOUR).apply(market)
    with pytest.raises(ScenarioError, match=">= 1"):
        LiquidityDrought(0.5, start=10 * HOUR, end=20 * HOUR).apply(market)


def test_parse_scenario_reads_a_drought_window():
    parsed = parse_scenario("thin=shock:-0.2@2022-11-09T14:00Z+drought:10@2022-11-09T13:00Z..2022-11-09T16:00Z")
    assert parsed.name == "thin"
    drought = parsed.scenarios[1]
    assert isinstance(drought, LiquidityDrought) and drought.multiplier == 10.0
    assert (drought.start, drought.end) == ("2022-11-09T13:00Z", "2022-11-09T16:00Z")
    whole = parse_scenario("drought:3").scenarios[0]
    assert whole.start is None and whole.end is None
    with pytest.raises(ScenarioError, match="START..END or none"):
        parse_scenario("drought:3@2022-11-09T13:00Z")


def test_a_drought_around_the_crash_makes_the_forced_fill_dearer(market):
    from backtest.config import RunConfig
    from backtest.slippage import FixedBps

    crash = Shock(-0.2, at=300 * HOUR)
    sets = [ScenarioSet("crash", [crash]),
            ScenarioSet("crash+thin", [crash, LiquidityDrought(10.0, start=299 * HOUR, end=302 * HOUR)]),
            ScenarioSet("crash+thin-later", [crash, LiquidityDrought(10.0, start=400 * HOUR, end=402 * HOUR)])]
    from backtest.venues.tiers import TierTable

    config = RunConfig(slippage=FixedBps(bps=2.0, forced_bps=10.0), rounding=False, fees=(0.0, 0.0),
                       liquidation_fee_rate=0.0,
                       tiers=TierTable.from_rates([(0.0, 0.005)], max_leverage=[125.0]))
    table = run_stress(market, sets, timeframe="1h", strategy="hold", leverages=(5.0,), config=config)
    rows = {r["scenario"]: r for r in table.iter_rows(named=True)}
    assert not rows["crash"]["survived"] and not rows["crash+thin"]["survived"]
    assert rows["crash"]["first_liquidation_ts"] == rows["crash+thin"]["first_liquidation_ts"]
    entry_cost = rows["baseline"]["slippage_cost"]  # the entry fill only: the baseline survives
    assert rows["baseline"]["survived"]
    forced = rows["crash"]["slippage_cost"] - entry_cost
    assert rows["crash+thin"]["slippage_cost"] - entry_cost == pytest.approx(10 * forced, rel=1e-9)
    # a drought after the position is gone changes nothing
    assert rows["crash+thin-later"]["slippage_cost"] == rows["crash"]["slippage_cost"]


def test_the_stress_table_counts_adl_like_liquidations(market):
    """An injected ADL (fund exhausted) on a profitable hold: the stress row shows one ADL event,
    the whole position as its quantity and quantity x the mark at the event's bar open as its
    notional; the baseline shows none."""
    from backtest import RunConfig, run_backtest
    from backtest.risk.scenarios import AdlInjection

    bars = market.bars[SYMBOL]
    mark_open = bars["mark_open"].to_numpy()
    i = int(np.flatnonzero(mark_open > 30_000 * 1.02)[0])  # the long bought at bar 0 is in profit
    from backtest.venues.tiers import TierTable

    config = RunConfig(fees=(0.0, 0.0), slippage="none", rounding=False,
                       tiers=TierTable.from_rates([(0.0, 0.005)], max_leverage=[125.0]))
    table = run_stress(market, [ScenarioSet("adl", [AdlInjection(at=i * HOUR)])], timeframe="1h", strategy="hold",
                       leverages=(2.0,), config=config)
    rows = {r["scenario"]: r for r in table.iter_rows(named=True)}
    assert (rows["baseline"]["n_adl"], rows["baseline"]["adl_qty"], rows["baseline"]["adl_notional"]) == (0, 0.0, 0.0)
    baseline = ScenarioSet("baseline").apply(market)
    held = run_backtest(baseline.market_data(timeframe="1h"), "hold",
                        config=baseline.config(config).replace(leverage=2.0)).fills["qty"][0]
    adl = rows["adl"]
    assert adl["n_adl"] == 1
    assert adl["adl_qty"] == held
    assert adl["adl_notional"] == pytest.approx(held * mark_open[i], rel=1e-12)
    assert adl["n_liquidations"] == 0
