"""The one bar step, the one gate and the event sources (issue 10).

* the gate's vectorized search finds exactly the first candle its scalar test passes;
* the schedule that hands quiet bars to ``on_bar`` alone gives the result of stepping every
  bar (``gating=False``), and the array path's the same;
* event sources: a caller's source acts at bar opens in priority order (after funding), an
  event inside a bar acts at the next open; market spec versions change the fees charged
  from their date on.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backtest import MarketData, RunConfig, run_backtest, run_signals
from backtest.engine import RunLoop
from backtest.errors import MarketDataError
from backtest.events import EventSource, schedule_events
from backtest.fastpath import SignalStrategy
from backtest.strategy import load_strategy
from data_loaders.synthetic import engine_frames, generate_perpetual

BTC = "BTC/USDT:USDT"
TABLES = ("equity", "positions", "orders", "fills", "rejections", "funding", "liquidations", "trades")


@pytest.fixture(scope="module")
def btc_data() -> MarketData:
    market = generate_perpetual(symbol=BTC, days=6, crash_day=3, seed=11)
    bars, funding = engine_frames(market)
    return MarketData.from_frames({BTC: bars}, {BTC: funding}, timeframe="1m")


def flips(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < n:
        length = int(rng.integers(30, 900))
        out.append(np.full(min(length, n - i), rng.choice([1.0, -1.0, 0.0, np.nan])))
        i += length
    return np.concatenate(out)


def test_next_hit_is_the_first_bar_the_scalar_gate_passes(btc_data: MarketData) -> None:
    run = RunLoop(btc_data, load_strategy("hold"), RunConfig(leverage=20.0))
    gate = run.gate
    low, high = btc_data.bars[BTC].mark_low, btc_data.bars[BTC].mark_high
    rng = np.random.default_rng(4)
    n = len(btc_data)
    for _ in range(60):
        run.st.margin.mark_below[0] = float(rng.choice([-np.inf, np.quantile(low, rng.uniform(0, 0.3))]))
        run.st.margin.mark_above[0] = float(rng.choice([np.inf, np.quantile(high, rng.uniform(0.7, 1))]))
        i = int(rng.integers(0, n - 1))
        end = int(rng.integers(i, n + 1))
        brute = next((j for j in range(i, end) if gate.hit(j)), end)
        assert gate.next_hit(i, end) == brute


@pytest.mark.parametrize("leverage", [3.0, 25.0])
def test_quiet_bars_and_skipped_bars_give_the_every_bar_result(btc_data: MarketData, leverage: float) -> None:
    signals = flips(len(btc_data), 2)
    every = run_backtest(btc_data, SignalStrategy(signals), config=RunConfig(leverage=leverage, gating=False))
    gated = run_backtest(btc_data, SignalStrategy(signals), config=RunConfig(leverage=leverage))
    array = run_signals(btc_data, signals, config=RunConfig(leverage=leverage))
    assert every.fills.height > 10
    for name in TABLES:
        assert gated.frame(name).equals(every.frame(name)), name
        assert array.frame(name).equals(every.frame(name)), name
    assert gated.summary == every.summary == array.summary


class Recorder:
    """A caller's event source: notes when it acts and what funding had been paid by then."""

    name = "recorder"
    intrabar = False

    def __init__(self, times: list[int], priority: int) -> None:
        self.times = times
        self.priority = priority
        self.seen: list[tuple[int, int, int]] = []
        self.run: RunLoop | None = None

    def events(self):  # noqa: ANN201
        return [(t, k) for k, t in enumerate(self.times)]

    def apply(self, payload: int) -> bool:
        st = self.run.st
        self.seen.append((payload, st.now, len(st.journal.rows["funding"])))
        return False


def test_a_source_acts_at_the_open_after_funding_and_inside_events_at_the_next_open(btc_data: MarketData) -> None:
    ts = btc_data.ts
    funding_ts = int(btc_data.funding[BTC].ts[2])
    bar = int(np.searchsorted(ts, funding_ts))
    assert int(ts[bar]) == funding_ts  # a settlement stamped at a bar open
    inside = int(ts[100]) + 1_000
    source = Recorder([funding_ts, inside], priority=7)
    assert isinstance(source, EventSource)
    run = RunLoop(btc_data, SignalStrategy(np.ones(len(btc_data))), RunConfig(leverage=2.0), sources=[source])
    source.run = run
    run.loop()
    result = run.result()
    (k0, t0, paid0), (k1, t1, _) = sorted(source.seen)
    assert (k0, t0) == (0, funding_ts)
    settled_before = int((result.funding["ts"].dt.epoch("ms") <= funding_ts).sum())
    assert paid0 == settled_before > 0  # funding (priority 0) settled first at that open
    assert (k1, t1) == (1, int(ts[101]))
    ordered, at_open, forced = schedule_events(ts, btc_data.interval_ms, [source])
    assert ordered == [source] and at_open[bar] == ((0, 0),) and at_open[101] == ((0, 1),) and not forced
    ordered, at_open, _ = schedule_events(ts, btc_data.interval_ms, run.sources)
    assert ordered.index(run.sources[0]) < ordered.index(source)  # funding (0) before the recorder (7)
    assert [ordered[k] for k, _ in at_open[bar]] == [run.sources[0], source]


def test_market_versions_change_the_fee_from_their_date(btc_data: MarketData) -> None:
    spec = btc_data.markets[BTC]
    change = int(btc_data.ts[len(btc_data) // 2])
    later = dataclasses.replace(spec, effective_from=change, taker_fee=spec.taker_fee * 3)
    data = MarketData.from_frames({BTC: btc_data.frames[BTC]}, None, timeframe="1m",
                                  markets={BTC: spec}, market_versions={BTC: [later]})
    signals = flips(len(data), 7)
    result = run_backtest(data, SignalStrategy(signals), config=RunConfig(leverage=3.0))
    fills = result.fills.filter(result.fills["liquidity"] == "taker")
    rate = (fills["fee"] / (fills["qty"] * fills["price"])).to_numpy()
    before = (fills["ts"].dt.epoch("ms") < change).to_numpy()
    assert before.any() and (~before).any()
    assert np.allclose(rate[before], spec.taker_fee) and np.allclose(rate[~before], 3 * spec.taker_fee)
    assert result.manifest["venue"]["market_versions"][0]["taker_fee"] == later.taker_fee
    # the array path applies the same versions
    assert run_signals(data, signals, config=RunConfig(leverage=3.0)).fills.equals(result.fills)


def test_market_versions_at_or_before_the_first_bar_are_refused(btc_data: MarketData) -> None:
    spec = btc_data.markets[BTC]
    with pytest.raises(MarketDataError, match="after the first bar"):
        MarketData.from_frames({BTC: btc_data.frames[BTC]}, None, timeframe="1m", markets={BTC: spec},
                               market_versions={BTC: [dataclasses.replace(spec, effective_from=int(btc_data.ts[0]))]})


def test_a_stored_markets_row_inside_the_run_applies_from_its_date(btc_data: MarketData, tmp_path) -> None:
    import polars as pl

    from data_loaders.store import MarketStore

    store = MarketStore(tmp_path / "store")
    frame = btc_data.frames[BTC]
    common = {"exchange": "binanceusdm", "symbol": BTC, "timeframe": "1m"}
    store.write("ohlcv", frame.select("ts", "open", "high", "low", "close", "volume").with_columns(
        price_type=pl.lit("last"), **{k: pl.lit(v) for k, v in common.items()}), source="test")
    store.write("ohlcv", frame.select("ts", *[pl.col(f"mark_{c}").alias(c) for c in ("open", "high", "low", "close")],
                                      volume=pl.lit(None, dtype=pl.Float64)).with_columns(
        price_type=pl.lit("mark"), **{k: pl.lit(v) for k, v in common.items()}), source="test")
    spec = btc_data.markets[BTC]
    change = int(btc_data.ts[len(btc_data) // 3]) + 30_000  # inside a bar: applies at the next open
    row = {"exchange": "binanceusdm", "symbol": BTC, "base": "BTC", "quote": "USDT", "settle": "USDT",
           "contract_type": "linear", "contract_size": 1.0, "tick_size": spec.tick_size, "lot_size": spec.lot_size,
           "min_qty": spec.min_qty, "min_notional": spec.min_notional, "maker_fee": spec.maker_fee,
           "taker_fee": spec.taker_fee, "liquidation_fee_rate": spec.liquidation_fee_rate}
    store.write("markets", pl.DataFrame([{**row, "effective_from": int(btc_data.ts[0]) - 86_400_000},
                                         {**row, "effective_from": change, "taker_fee": 0.002}]).with_columns(
        pl.col("effective_from").cast(pl.Datetime("ms", "UTC"))), source="test")
    data = MarketData.from_store(store, exchange="binanceusdm", symbols=[BTC], timeframe="1m")
    assert data.markets[BTC].taker_fee == spec.taker_fee
    assert [(v.effective_from, v.taker_fee) for v in data.market_versions[BTC]] == [(change, 0.002)]
    assert any("applies each from the first bar open" in w for w in data.quality_warnings)
    result = run_backtest(data, SignalStrategy(flips(len(data), 9)), config=RunConfig(leverage=3.0))
    fills = result.fills.filter(result.fills["liquidity"] == "taker")
    rate = (fills["fee"] / (fills["qty"] * fills["price"])).to_numpy()
    after = (fills["ts"].dt.epoch("ms") > change).to_numpy()
    assert after.any() and (~after).any()
    assert np.allclose(rate[~after], spec.taker_fee) and np.allclose(rate[after], 0.002)
