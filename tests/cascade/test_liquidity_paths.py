"""Depth curve, stress, refill and the exogenous paths."""
from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.cascade.errors import CascadeError
from backtest.cascade.liquidity import BookSide, LiquidityModel, default_liquidity
from backtest.cascade.paths import path_from_bars, shock_path


def test_sweep_matches_the_amberdata_calibration_of_cascades_md():
    model = LiquidityModel()
    # cascades.md §4: $5M -> 17 bp, $10M -> 47 bp, $20M -> 133 bp at the touch
    assert model.touch(5e6, 1.0) * 1e4 == pytest.approx(17, abs=1)
    assert model.touch(10e6, 1.0) * 1e4 == pytest.approx(47, abs=1)
    assert model.touch(20e6, 1.0) * 1e4 == pytest.approx(133, abs=2)
    # average fill a/(1+a) ~ 0.40 of the final level from an untouched book
    assert model.average_distance(0.0, 10e6, 1.0) / model.touch(10e6, 1.0) == pytest.approx(0.674 / 1.674)


def test_average_distance_is_the_integral_of_the_touch_over_the_sweep():
    model = LiquidityModel()
    consumed, notional, m = 2e6, 7e6, 0.6
    x = np.linspace(consumed, consumed + notional, 200_001)
    touch = np.array([model.touch(v, m) for v in x[::1000]])
    numeric = np.trapezoid(touch, x[::1000]) / notional
    assert model.average_distance(consumed, notional, m) == pytest.approx(numeric, rel=1e-3)


def test_stress_withdraws_depth_and_refill_halves_the_swept_depth():
    model = LiquidityModel()
    assert model.multiplier(model.reference_vol) == 1.0
    assert model.multiplier(3 * model.reference_vol) == pytest.approx(1 / 3)
    assert model.multiplier(1e3 * model.reference_vol) == model.min_multiplier
    book = BookSide(model)
    book.sweep(4e6, 1.0)
    book.refill(model.refill_half_life_s)
    assert book.consumed == pytest.approx(2e6)


def test_permanent_part_keeps_the_last_price_where_the_sweep_left_it():
    model = LiquidityModel(permanent_fraction=0.4)
    book = BookSide(model)
    _, before, after = book.sweep(10e6, 1.0)
    shift = book.make_permanent(after - before, 1.0)
    assert shift == pytest.approx(0.4 * after)
    assert model.touch(book.consumed, 1.0) == pytest.approx(after - shift)


def test_bad_liquidity_parameter_is_named():
    with pytest.raises(CascadeError, match="permanent_fraction"):
        LiquidityModel(permanent_fraction=1.5)
    assert default_liquidity("ETH/USDT:USDT").depth_at_ref == pytest.approx(0.4 * 3.5e6)


def test_path_from_bars_visits_each_candles_extremes_in_order():
    ts = np.array([0, 300_000], dtype=np.int64)
    path = path_from_bars(ts, np.array([100.0, 90.0]), np.array([101.0, 96.0]), np.array([89.0, 88.0]),
                          np.array([90.0, 95.0]), bar_ms=300_000)
    assert path.step_s == 1.0 and len(path.ts) == 600
    first = path.price[:300]
    assert first.max() == pytest.approx(101.0, rel=1e-3) and first.min() == pytest.approx(89.0, rel=1e-3)
    assert np.argmax(first) < np.argmin(first)  # falling bar: high first
    second = path.price[300:]
    assert np.argmin(second) < np.argmax(second)  # rising bar: low first


def test_shock_path_moves_by_the_drop_then_stays():
    path = shock_path(start_price=100.0, seconds=300, drop=0.1, shock_start_s=10, shock_seconds=50)
    assert path.price[0] == 100.0 and path.price[-1] == pytest.approx(90.0)
    assert math.isclose(path.price[60], 90.0) and path.price[9] == 100.0
    with pytest.raises(CascadeError, match="drop"):
        shock_path(start_price=100.0, seconds=300, drop=1.2)
