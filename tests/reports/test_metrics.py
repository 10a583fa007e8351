"""Headline metrics against hand computations on tiny series."""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from reports import metrics as m

DAY = m.MS_PER_DAY
HOUR = 3_600_000


def test_interval_is_the_median_spacing_despite_a_gap():
    ts = np.array([0, 60_000, 120_000, 300_000, 360_000], dtype=np.int64)
    assert m.infer_interval_ms(ts) == 60_000
    assert m.periods_per_year(60_000) == 525_600
    assert m.periods_per_year(HOUR) == 8_760


def test_interval_needs_two_timestamps():
    with pytest.raises(ValueError, match="at least two distinct timestamps"):
        m.infer_interval_ms(np.array([5], dtype=np.int64))


def test_returns_sharpe_sortino_on_three_daily_bars():
    # returns +10 %, -5 %, +10 %: mean 0.05, sample std sqrt(0.0075), downside dev sqrt(0.0025/3)
    equity = np.array([110.0, 104.5, 114.95])
    returns = m.bar_returns(equity, 100.0)
    np.testing.assert_allclose(returns, [0.10, -0.05, 0.10])
    per_year = m.periods_per_year(DAY)
    assert m.sharpe_ratio(returns, per_year) == pytest.approx(math.sqrt(365 / 3))
    assert m.sortino_ratio(returns, per_year) == pytest.approx(math.sqrt(3 * 365))
    assert m.annualized_volatility(returns, per_year) == pytest.approx(math.sqrt(0.0075 * 365))
    assert m.total_return(114.95, 100.0) == pytest.approx(0.1495)


def test_ratios_are_undefined_without_dispersion_or_losses():
    flat = np.zeros(5)
    assert m.sharpe_ratio(flat, 365) is None
    assert m.sortino_ratio(np.array([0.01, 0.02]), 365) is None
    assert m.annualized_volatility(np.array([0.1]), 365) == 0.0


def test_cagr_two_years_and_wipe_out():
    assert m.cagr(121.0, 100.0, 2 * 365 * DAY) == pytest.approx(0.10)
    assert m.cagr(50.0, 100.0, 365 * DAY) == pytest.approx(-0.5)
    assert m.cagr(0.0, 100.0, 365 * DAY) == -1.0
    assert m.cagr(1e6, 100.0, HOUR) == math.inf


def test_max_drawdown_dates_and_recovery():
    ts = np.array([1, 2, 3, 4, 5], dtype=np.int64) * DAY
    equity = np.array([110.0, 88.0, 99.0, 121.0, 115.0])
    dd = m.max_drawdown(equity, ts, 100.0, 0)
    assert dd.depth == pytest.approx(0.2)  # 110 -> 88
    assert (dd.peak_ts, dd.trough_ts, dd.recovery_ts) == (1 * DAY, 2 * DAY, 4 * DAY)
    np.testing.assert_allclose(m.drawdown_series(equity, 100.0),
                               [0.0, -0.2, -0.1, 0.0, 115 / 121 - 1])
    assert m.calmar_ratio(0.3, dd.depth) == pytest.approx(1.5)


def test_drawdown_from_the_initial_balance_without_recovery():
    ts = np.array([1, 2], dtype=np.int64) * DAY
    dd = m.max_drawdown(np.array([90.0, 75.0]), ts, 100.0, start_ts=0)
    assert dd.depth == pytest.approx(0.25)
    assert (dd.peak_ts, dd.trough_ts, dd.recovery_ts) == (0, 2 * DAY, None)
    none = m.max_drawdown(np.array([101.0, 102.0]), ts, 100.0, start_ts=0)
    assert none.depth == 0.0 and m.calmar_ratio(0.5, none.depth) is None


def test_wiped_out_account_has_zero_returns_after_death():
    returns = m.bar_returns(np.array([50.0, 0.0, 0.0]), 100.0)
    np.testing.assert_allclose(returns, [-0.5, -1.0, 0.0])
    assert m.max_drawdown(np.array([50.0, 0.0, 0.0]), np.array([1, 2, 3]) * DAY, 100.0, 0).depth == 1.0


def test_exposure_and_worst_margin_ratio():
    assert m.exposure(np.array([0.0, 5.0, 5.0, 0.0])) == 0.5
    ratio, when = m.worst_margin_ratio(np.array([np.nan, 0.2, 0.9, 0.9]), np.array([10, 20, 30, 40]))
    assert (ratio, when) == (0.9, 30)
    assert m.worst_margin_ratio(np.array([np.nan]), np.array([1])) == (None, None)


def _dt(values):
    return pl.Series(values, dtype=pl.Int64).cast(pl.Datetime("ms", "UTC"))


def test_headline_metrics_from_tables():
    ts = [HOUR * i for i in range(1, 5)]
    equity = pl.DataFrame({
        "ts": _dt(ts), "equity": [100.0, 90.0, 95.0, 80.0],
        "gross_notional": [0.0, 500.0, 500.0, 0.0], "margin_ratio": [0.0, 0.4, 0.7, 0.0],
    })
    fills = pl.DataFrame({"fee": [1.0, 2.5], "slippage_cost": [0.5, 0.25]})
    funding = pl.DataFrame({"payment": [-1.5, 0.5, -0.25]})
    liquidations = pl.DataFrame({"ts": _dt([3 * HOUR]), "margin_lost": [12.0], "bad_debt": [0.0]})
    h = m.headline_metrics(equity, initial_balance=100.0, fills=fills, funding=funding,
                           liquidations=liquidations)
    assert h.total_return == pytest.approx(-0.2)
    assert h.max_drawdown.depth == pytest.approx(0.2)
    assert h.max_drawdown.peak_ts == 0  # the initial balance, dated at the run's start
    assert (h.fees, h.slippage_cost) == (3.5, 0.75)
    assert (h.funding_paid, h.funding_received) == (1.75, 0.5)
    assert (h.n_liquidations, h.liquidation_loss, h.first_liquidation_ts) == (1, 12.0, 3 * HOUR)
    assert (h.worst_margin_ratio, h.worst_margin_ratio_ts) == (0.7, 3 * HOUR)
    assert h.exposure == 0.5 and h.interval_ms == HOUR and h.bars == 4
