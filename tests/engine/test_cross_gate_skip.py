"""The gate's NumPy skip over a cross pool's safe bands answers like asking every candle.

* ``Gate.band_exit`` (block extremes per 2^15-candle span, then candidate blocks) finds the
  first candle whose mark range leaves a band, the same candle as the candle-by-candle
  definition, NaN marks and span boundaries included (Hypothesis).
* A multi-symbol cross run over more than one span writes the same tables whether the gate
  skips with the bands or asks ``cross_breach`` on every candle.
"""
from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings, strategies as hs

from backtest import RunConfig, run_backtest
from backtest.cross_bounds import CrossBounds
from backtest.fastpath import SignalStrategy
from backtest.gate import SPAN_BARS, Gate
from backtest.strategy import Strategy
from tests.engine.test_cross_linear import _data, _signals, _tables


def _reference_exit(ranges: list[tuple[np.ndarray, ...]], limits: tuple[np.ndarray, ...], i: int,
                    end: int) -> int:
    """The definition: the first candle where one symbol's range is not strictly inside."""
    syms, floors, ceilings = limits
    for j in range(i, end):
        for r, s in enumerate(syms):
            low, high = float(ranges[s][0][j]), float(ranges[s][1][j])
            if not (low > floors[r] and high < ceilings[r]):
                return j
    return end


def _gate(ranges: list[tuple[np.ndarray, ...]]) -> Gate:
    state = SimpleNamespace(margin=SimpleNamespace(), book=SimpleNamespace())
    return Gate(state, ranges)


@settings(max_examples=60, deadline=None)
@given(seed=hs.integers(0, 2**32 - 1), n_symbols=hs.integers(1, 5),
       length=hs.sampled_from([70, 1_000, SPAN_BARS + 300]), nan_rate=hs.sampled_from([0.0, 1e-4, 0.01]),
       width=hs.floats(0.001, 0.05), data=hs.data())
def test_band_exit_is_the_first_candle_leaving_a_band(seed: int, n_symbols: int, length: int, nan_rate: float,
                                                      width: float, data: Any) -> None:
    rng = np.random.default_rng(seed)
    ranges = []
    for _ in range(n_symbols):
        mid = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0005, length)))
        low, high = mid * (1 - rng.uniform(0, 0.001, length)), mid * (1 + rng.uniform(0, 0.001, length))
        low[rng.random(length) < nan_rate] = np.nan
        ranges.append((low, high, low.copy(), high.copy()))
    held = sorted(set(data.draw(hs.lists(hs.integers(0, n_symbols - 1), min_size=1, max_size=n_symbols))))
    floors, ceilings = [], []
    for s in held:  # a long's floor, a short's ceiling, or both (hedged legs)
        kind = data.draw(hs.sampled_from(["long", "short", "both"]))
        floors.append(100.0 * (1 - width) if kind != "short" else -math.inf)
        ceilings.append(100.0 * (1 + width) if kind != "long" else math.inf)
    limits = (np.array(held, dtype=np.intp), np.array(floors), np.array(ceilings))
    i = data.draw(hs.integers(0, length - 1))
    end = data.draw(hs.integers(i, length))
    gate = _gate(ranges)
    assert gate.band_exit(limits, i, end) == _reference_exit(ranges, limits, i, end)


def test_a_nan_mark_stops_the_skip_where_it_is() -> None:
    low = np.full(SPAN_BARS + 200, 100.0)
    high = low + 1.0
    low[SPAN_BARS + 7] = np.nan  # in the second span, inside a block whose other values are clear
    limits = (np.array([0], dtype=np.intp), np.array([50.0]), np.array([math.inf]))
    gate = _gate([(low, high, low, high)])
    assert gate.band_exit(limits, 0, low.size) == SPAN_BARS + 7
    assert gate.band_exit(limits, SPAN_BARS + 8, low.size) == low.size


class _Flipper(Strategy):
    """Event path: every symbol long or short, flipped every 700 bars (on_bar on every bar)."""

    name = "flipper"

    def on_bar(self, ctx: Any) -> None:
        if ctx.bar_index % 700:
            return
        side = 1.0 if (ctx.bar_index // 700) % 2 == 0 else -1.0
        for symbol in ctx.symbols:
            ctx.target_exposure(side * 14.0 / len(ctx.symbols), symbol, tolerance=0.0)


@pytest.mark.parametrize("path", ["array", "event"])
def test_skipping_with_bands_writes_the_tables_of_asking_every_candle(path: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    n_symbols, n_bars = 3, SPAN_BARS + 4_000  # two spans (and two loop chunks)
    data = _data(n_symbols, n_bars, seed=11)
    config = RunConfig(initial_balance=10_000.0, leverage=20.0, margin_mode="cross", fees=(0.0002, 0.0004))
    strategy = (lambda: SignalStrategy(_signals(n_symbols, n_bars))) if path == "array" else (lambda: _Flipper)
    asked = []
    original = Gate.cross_breach

    def counted(self: Gate, j: int) -> bool:
        asked.append(j)
        return original(self, j)

    monkeypatch.setattr(Gate, "cross_breach", counted)
    fast = run_backtest(data, strategy(), config=config)
    skipped = len(asked)
    monkeypatch.setattr(CrossBounds, "band_limits", lambda self, account: None)  # candle by candle
    asked.clear()
    slow = run_backtest(data, strategy(), config=config)
    assert len(asked) > 10 * skipped  # the skip did spare most candles
    assert fast.summary["n_liquidations"] > 0  # the pool does reach its threshold
    assert fast.summary == slow.summary
    slow_tables = _tables(slow)
    for name, frame in _tables(fast).items():
        assert frame.equals(slow_tables[name]), name
