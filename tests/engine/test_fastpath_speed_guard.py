"""Structural speed guards of the array path (no timings: what is *not* done is asserted).

* the summary is computed without building any output frame or the per-bar columns only
  the frames need (liquidation/bankruptcy prices, leverage, distance to liquidation);
* the scan calls the strategy only on bars where the signal asks for another side;
* a margin refresh solves the liquidation price without the venue's iterative resolver when
  the first bracket is self-consistent, with exactly the resolver's result.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import weakref

import numpy as np
import polars as pl
import pytest

from backtest import MarketData, RunConfig, run_backtest, run_signals
from backtest.fastpath import SignalStrategy
from backtest.fastpath_scan import SignalScanner
from backtest.positions import Position
from backtest.slippage import FixedBps
from backtest.state import _constant_taker_impact
from backtest.venues.binance_usdm import Leg
from backtest.venues.tiers import TierTable
from data_loaders.synthetic import engine_frames, generate_perpetual

BTC = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def data() -> MarketData:
    market = generate_perpetual(symbol=BTC, days=10, crash_day=6, seed=11)
    bars, funding = engine_frames(market)
    return MarketData.from_frames({BTC: bars}, {BTC: funding}, timeframe="1m")


def flips(n: int, every: int) -> np.ndarray:
    """+1 / -1 alternating every ``every`` bars, NaN for the first 50."""
    signals = np.where((np.arange(n) // every) % 2 == 0, 1.0, -1.0)
    signals[:50] = np.nan
    return signals


def test_the_summary_builds_no_frame_and_no_frame_only_column(data: MarketData) -> None:
    result = run_signals(data, flips(len(data), 700), config=RunConfig(leverage=20.0))
    summary = result.summary
    assert summary["n_fills"] > 0 and summary["n_liquidations"] >= 0
    assert result._frames == {}  # noqa: SLF001 - no frame was built for the summary
    bars = result._builders["equity"].__self__  # noqa: SLF001 - the run's BarState
    built = set(vars(bars))
    assert {"equity", "margin_ratio"} <= built
    assert not {"lp", "bp", "leverage", "distance", "maintenance"} & built
    # the frames are still there on demand, and consistent with the summary
    equity = result.equity
    assert set(result._frames) == {"equity"}  # noqa: SLF001
    assert equity.get_column("equity")[-1] == summary["final_equity"]
    assert equity.get_column("margin_ratio").max() == summary["worst_margin_ratio"]


def test_frames_do_not_depend_on_what_was_asked_first(data: MarketData) -> None:
    signals = flips(len(data), 500)
    config = RunConfig(leverage=25.0)
    first = run_signals(data, signals, config=config)
    positions_first = first.positions  # per-bar columns before the summary's
    second = run_signals(data, signals, config=config)
    summary_first = json.dumps(second.summary, sort_keys=True)
    assert json.dumps(first.summary, sort_keys=True) == summary_first
    assert positions_first.equals(second.positions)
    assert first.equity.equals(second.equity)


def test_the_scan_calls_the_strategy_only_where_the_signal_changes_side(data: MarketData) -> None:
    signals = flips(len(data), 300)
    scanner = SignalScanner(data, SignalStrategy(signals), RunConfig(leverage=5.0))
    scanner.loop()
    result = scanner.result()
    changes = int(np.count_nonzero(np.diff(np.sign(signals[50:])))) + 1
    # each side change is acted on once (plus re-entries after a liquidation), never per bar
    assert scanner.strategy_calls <= changes + 2 * result.summary["n_liquidations"]
    assert scanner.strategy_calls < scanner.visited  # fill and funding bars need no call
    event = run_backtest(data, SignalStrategy(signals), config=RunConfig(leverage=5.0))
    assert event.fills.equals(result.fills) and event.equity.equals(result.equity)


def test_the_refresh_matches_the_venue_resolver_without_calling_it(data: MarketData) -> None:
    table = TierTable.from_rates([(0.0, 0.004), (50_000.0, 0.005), (250_000.0, 0.01),
                                  (1_000_000.0, 0.025)], max_leverage=[125.0, 100.0, 50.0, 20.0])
    scanner = SignalScanner(data, SignalStrategy(np.full(len(data), np.nan)),
                            RunConfig(tiers=table, leverage=10.0))
    margin = scanner.run.st.margin
    venue = margin.venue
    calls = []

    def resolved(**kwargs):  # noqa: ANN003, ANN202
        calls.append(kwargs)
        return venue.liquidation_price_resolved(**kwargs)

    # the margin model asks the venue's per-contract formulas (Venue.formulas)
    margin.formulas = [dataclasses.replace(f, liquidation_price_resolved=resolved)
                       for f in margin.formulas]
    rng = np.random.default_rng(2)
    for k in range(300):
        qty = float(rng.choice([0.05, 0.5, 3.0, 20.0, 60.0])) * float(rng.uniform(0.5, 1.5))
        entry = float(rng.uniform(20_000, 40_000))
        side = 1.0 if k % 2 else -1.0
        pos = Position(0, 0, BTC, "both", "isolated", 10.0, venue.unrealized_pnl)
        pos.qty, pos.entry_price = side * qty, entry
        wallet = qty * entry / float(rng.choice([2.0, 10.0, 50.0]))
        before = len(calls)
        got = margin._solve(wallet, [pos], 0)  # noqa: SLF001
        leg = Leg(1 if side > 0 else -1, qty, entry)  # no bracket: the resolver starts at the first
        expected = venue.liquidation_price_resolved(wallet_balance=wallet, tiers=table, both=leg)
        assert got == expected or (np.isnan(got) and np.isnan(expected))
        if table.index_for(qty * max(expected, 0.0)) == 0:
            assert len(calls) == before  # the first bracket held: no resolver call
    assert calls, "some positions should need a higher bracket (and the resolver)"


def test_a_finished_run_is_freed_without_the_cyclic_collector(data: MarketData) -> None:
    """A sweep runs thousands of runs: each must go with its last reference (no cycle left
    for the collector to traverse, row by row)."""
    signals = flips(len(data), 400)
    gc.disable()
    try:
        for run in (lambda: run_signals(data, signals, config=RunConfig(leverage=20.0)),
                    lambda: run_backtest(data, SignalStrategy(signals), config=RunConfig(leverage=20.0))):
            result = run()
            assert result.summary["n_fills"] > 0
            state = weakref.ref(result._builders["equity"].__self__._state)  # noqa: SLF001
            assert state() is not None
            del result
            assert state() is None, "the run's state outlived its result: a reference cycle"
    finally:
        gc.enable()


def test_a_fill_dependent_slippage_subclass_is_asked_at_every_fill(data: MarketData) -> None:
    """The broker caches the taker impact of FixedBps/NoSlippage only: a subclass whose
    answer depends on the fill is still asked each time."""

    class SizeBps(FixedBps):
        def impact(self, *, qty: float, price: float, bar_high: float, bar_low: float,
                   bar_volume: float, forced: bool) -> float:
            return qty * price * 1e-9

    signals = flips(len(data), 900)
    scanner = SignalScanner(data, SignalStrategy(signals), RunConfig(leverage=3.0, slippage="fixed"))
    scanner.run.st.slippage = SizeBps(0.0)
    scanner.run.st.taker_impact = _constant_taker_impact(scanner.run.st.slippage)
    assert scanner.run.st.taker_impact is None
    scanner.loop()
    fills = scanner.result().fills
    slipped = fills.filter(pl.col("slippage_bps") > 0)
    assert slipped.height == fills.height > 0
    assert slipped.get_column("slippage_bps").n_unique() > 1  # sized by each fill


def test_a_rejection_never_scans_the_order_list(data: MarketData, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording a rejected order is constant time: a run rejected at every bar (a wallet
    below the minimum notional, say) must not compare it with every earlier order (that
    was quadratic: 37 s for a year of 1m bars instead of 1 s)."""
    from backtest.orders import Order

    compared = []

    def counting_eq(self, other):  # noqa: ANN001, ANN202
        compared.append(1)
        return self is other

    monkeypatch.setattr(Order, "__eq__", counting_eq)
    signals = np.full(len(data), 5.0)  # 5x the wallet at 2x leverage: refused at every bar
    for result in (run_signals(data, signals, config=RunConfig(leverage=2.0)),
                   run_backtest(data, SignalStrategy(signals), config=RunConfig(leverage=2.0))):
        rejections = result.rejections
        assert rejections.height >= len(data) - 1
        assert compared == []
        orders = result.orders.filter(pl.col("status") == "rejected")
        assert orders.height == rejections.height  # each rejected order recorded exactly once
        assert orders.get_column("order_id").n_unique() == orders.height
