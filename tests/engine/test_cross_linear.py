"""Cross margin linear in symbols: the fast paths give the outputs of the definitions.

* ``MarginModel.cross_bound_gap`` answers most bars from safe mark bands; a run with the
  bands switched off (every bar summed position by position) writes the same tables.
* ``cross_bounds.other_terms`` (prefix + suffix sums) equals the sequential sum of the other
  symbols' maintenance and PnL: the same floats for up to three symbols, within rounding
  beyond.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from backtest import RunConfig, run_backtest
from backtest.fastpath import SignalStrategy
from backtest.cross_bounds import CrossBounds, other_terms
from backtest.margin import MarginModel
from backtest.market_data import MarketData
from backtest.results import OUTPUT_TABLES
from backtest.venues.defaults import default_market
from backtest.venues.tiers import TierTable

TABLE = TierTable.from_rates([(0.0, 0.004), (50_000.0, 0.005), (250_000.0, 0.01),
                              (1_000_000.0, 0.025)], max_leverage=[125.0, 100.0, 50.0, 20.0])


def _data(n_symbols: int, n_bars: int, seed: int) -> MarketData:
    import dataclasses

    rng = np.random.default_rng(seed)
    ts = 1_672_531_200_000 + np.arange(n_bars, dtype=np.int64) * 60_000
    base = default_market("binance_usdm", "BTC/USDT:USDT")
    common = np.cumsum(rng.normal(0, 0.002, n_bars))  # correlated moves: cascades happen
    frames = {}
    for k in range(n_symbols):
        close = 100.0 * (k + 1) * np.exp(common + np.cumsum(rng.normal(0, 0.001, n_bars)))
        open_ = np.concatenate(([close[0]], close[:-1]))
        wick = np.abs(rng.normal(0, 0.001, n_bars)) * close
        frame = pl.DataFrame({"ts": ts, "open": open_, "high": np.maximum(open_, close) + wick,
                              "low": np.minimum(open_, close) - wick, "close": close,
                              "volume": np.full(n_bars, 1e4)})
        frames[f"S{k}/USDT:USDT"] = frame.with_columns(
            pl.col("ts").cast(pl.Datetime("ms", "UTC")), mark_open=pl.col("open"),
            mark_high=pl.col("high"), mark_low=pl.col("low"), mark_close=pl.col("close"))
    return MarketData.from_frames(frames, timeframe="1m", tiers={s: TABLE for s in frames},
                                  markets={s: dataclasses.replace(base, symbol=s) for s in frames})


def _signals(n_symbols: int, n_bars: int) -> np.ndarray:
    rows = np.arange(n_bars)[:, None]
    side = np.where((rows // 700) % 2 == 0, 1.0, -1.0)
    return side * np.full((1, n_symbols), 14.0 / n_symbols)


def _tables(result: Any) -> dict[str, pl.DataFrame]:
    return {name: result.frame(name) for name in OUTPUT_TABLES}


@pytest.mark.parametrize("n_symbols", [3, 6])
def test_bands_change_nothing(n_symbols: int, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _data(n_symbols, 6_000, seed=n_symbols)
    config = RunConfig(initial_balance=10_000.0, leverage=20.0, margin_mode="cross",
                       fees=(0.0002, 0.0004))
    signals = _signals(n_symbols, 6_000)
    exact_calls = []
    original = CrossBounds.exact

    def counted(self: CrossBounds, *args: Any) -> float:
        exact_calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(CrossBounds, "exact", counted)
    fast = run_backtest(data, SignalStrategy(signals), config=config)
    with_bands = len(exact_calls)
    monkeypatch.setattr(CrossBounds, "make_bands", lambda self, *a: None)
    exact_calls.clear()
    slow = run_backtest(data, SignalStrategy(signals), config=config)
    assert len(exact_calls) > 2 * with_bands  # the bands did spare most exact sums
    assert fast.summary["n_liquidations"] > 0  # the runs do reach the pool's threshold
    for name, frame in _tables(fast).items():
        assert frame.equals(_tables(slow)[name]), name
    assert fast.summary == slow.summary


def test_others_as_prefix_and_suffix_sums() -> None:
    from backtest.positions import Position
    from backtest.contracts import LinearContract

    rng = np.random.default_rng(9)
    for n in range(2, 9):
        schedules = [None] * n
        model = MarginModel.__new__(MarginModel)
        model.venue = __import__("backtest.venues.base", fromlist=["get_venue"]).get_venue(
            "binance_usdm")
        model.contracts = [LinearContract("USDT", 1.0)] * n
        model.tables = [TABLE] * n
        model.schedules = schedules
        contract = LinearContract("USDT", 1.0)
        cross, marks = {}, []
        for sym in range(n):
            pos = Position(sym, sym, f"S{sym}", "both", "cross", 10.0, contract.unrealized_pnl)
            pos.qty = float(rng.uniform(-5, 5))
            pos.entry_price = float(rng.uniform(100, 50_000))
            cross[sym] = [pos]
            marks.append(pos.entry_price * float(rng.uniform(0.8, 1.2)))
        others = other_terms(model, cross, marks)
        for k, sym in enumerate(cross):
            mm = up = 0.0
            for osym, legs in cross.items():
                if osym != sym:
                    for pos in legs:
                        mm += model.maintenance(pos, marks[osym])
                        up += pos.upnl(marks[osym])
            if n <= 3:
                assert others[k] == (mm, up)
            else:
                assert others[k][0] == pytest.approx(mm, rel=1e-12, abs=1e-9)
                assert others[k][1] == pytest.approx(up, rel=1e-12, abs=1e-9)
