"""Candle and gas paths, the depth curve and the borrow index, each against hand arithmetic."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from backtest.lending.depth import DepthCurve
from backtest.lending.errors import LendingParameterError
from backtest.lending.interest import SECONDS_PER_YEAR, compounded_interest
from backtest.lending.paths import candle_path, gas_path


def _bars(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["ts", "open", "high", "low", "close"], orient="row").with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def test_a_falling_bar_visits_the_high_then_the_low() -> None:
    t0 = datetime(2020, 3, 12, tzinfo=timezone.utc)
    bars = _bars([(t0, 100.0, 110.0, 50.0, 60.0), (t0.replace(hour=1), 60.0, 90.0, 55.0, 80.0)])
    times, prices = candle_path(bars, step=600.0)   # 6 samples per hour
    assert times.size == 12 and times[0] == t0.timestamp()
    assert prices[0] == pytest.approx(100.0)
    assert prices[2] == pytest.approx(110.0)          # 1/3 of the hour: the high first
    assert prices[4] == pytest.approx(50.0)           # 2/3: then the low
    assert prices[6] == pytest.approx(60.0)           # next open
    assert prices[8] == pytest.approx(55.0) and prices[10] == pytest.approx(90.0)  # rising bar
    assert prices[3] == pytest.approx(math.sqrt(110.0 * 50.0))   # log-linear in between
    assert prices.min() == pytest.approx(50.0)        # the wick is on the path


def test_candle_path_refuses_bad_candles() -> None:
    t0 = datetime(2020, 3, 12, tzinfo=timezone.utc)
    with pytest.raises(LendingParameterError, match="at least one candle"):
        candle_path(_bars([]), step=60.0)
    with pytest.raises(LendingParameterError, match="finite and > 0"):
        candle_path(_bars([(t0, 100.0, 110.0, 0.0, 60.0)]), step=60.0)


def test_gas_path_spikes() -> None:
    times = np.arange(0.0, 10.0)
    gas = gas_path(times, base_gwei=10.0, spikes=[(2.0, 5.0, 200.0), (4.0, 6.0, 80.0)])
    assert gas.tolist() == [10, 10, 200, 200, 80, 80, 10, 10, 10, 10]
    with pytest.raises(LendingParameterError, match="end after the start"):
        gas_path(times, base_gwei=10.0, spikes=[(5.0, 5.0, 1.0)])


def test_compounded_interest_is_aave_three_term_expansion() -> None:
    rate, dt = 0.05, 86_400.0
    r = rate / SECONDS_PER_YEAR
    hand = 1 + r * dt + dt * (dt - 1) * r ** 2 / 2 + dt * (dt - 1) * (dt - 2) * r ** 3 / 6
    assert compounded_interest(rate, dt) == hand
    assert compounded_interest(rate, dt) == pytest.approx(math.exp(rate * dt / SECONDS_PER_YEAR), rel=1e-9)
    assert compounded_interest(rate, 1.0) == 1 + r and compounded_interest(0.0, dt) == 1.0
    with pytest.raises(LendingParameterError, match="borrow rate"):
        compounded_interest(-0.01, dt)


def test_depth_curve_follows_the_power_law() -> None:
    curve = DepthCurve(2000.0, depth=3.5e6, ref_move=0.001, alpha=0.674)
    qty = 10e6 / 2000.0                                   # $10M sweep
    move = 0.001 * (10e6 / 3.5e6) ** (1 / 0.674)          # cascades.md §4: ~47 bp
    assert move == pytest.approx(0.0047, abs=2e-4)
    out = float(curve.amount_out(qty))
    assert out == pytest.approx(10e6 * (1 - move * 0.674 / 1.674))
    proceeds, after = curve.sell(qty)
    assert proceeds == pytest.approx(out) and after.price == pytest.approx(2000.0 * (1 - move))
    back = after.arbitraged(2000.0, 0.5)
    assert back.price == pytest.approx(math.sqrt(after.price * 2000.0))
    assert float(curve.amount_out(1e12)) > 0                 # capped move: never a negative price
    with pytest.raises(LendingParameterError, match="depth curve depth"):
        DepthCurve(2000.0, depth=0.0)
