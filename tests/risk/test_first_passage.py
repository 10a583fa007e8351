"""GBM first-passage: Monte Carlo against the closed form, with the venue's liquidation price.

Discretization bias: a path observed only at step ends misses dips between them, so the raw
discrete estimate undershoots the continuous closed form. Two independent fixes are checked:
(1) the simulator draws each step's low from the Brownian bridge (exact continuous
monitoring), so the estimate must agree with the closed form itself; (2) with step-end
monitoring only, the estimate must agree with the closed form evaluated at the
Broadie–Glasserman–Kou shifted barrier.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.risk.barriers import position_barrier
from backtest.risk.montecarlo import simulate_first_passage
from backtest.risk.paths import GBM
from backtest.risk.stats import bgk_shifted_barrier, gbm_first_passage_probability, wilson_interval

SIGMA_STEP = 0.0018      # 5m log-return volatility (~ 60 % a year)
N_STEPS = 288            # one day of 5m steps
N_PATHS = 20_000
ENTRY = 30_000.0


@pytest.fixture(scope="module")
def barrier(btc_tiers):
    return position_barrier(leverage=20, side=1, entry_price=ENTRY, margin=1_000.0, tiers=btc_tiers)


def test_barrier_is_the_venue_liquidation_price(barrier, btc_tiers):
    # isolated one-way long, first bracket: LP = (WB + cum - Q*EP) / (Q*MMR - Q)
    tier = btc_tiers.for_notional(barrier.qty * barrier.liquidation_price)
    qty = 20_000.0 / ENTRY
    by_hand = (1_000.0 + tier.cum - qty * ENTRY) / (qty * tier.mmr - qty)
    assert barrier.liquidation_price == pytest.approx(by_hand, rel=1e-12)
    assert ENTRY * 0.94 < barrier.liquidation_price < ENTRY * 0.96


def _estimate(model, barrier_price, side=1):
    fp = simulate_first_passage(model, barriers=[barrier_price], side=side, n_paths=N_PATHS, n_steps=N_STEPS,
                                s0=ENTRY, seed=7)
    k = int(fp.liquidated(N_STEPS)[0])
    low, high = wilson_interval(k, N_PATHS, confidence=0.99)
    return k / N_PATHS, float(low), float(high)


def test_bridge_monitoring_matches_closed_form(barrier):
    closed = gbm_first_passage_probability(s0=ENTRY, barrier=barrier.liquidation_price, sigma=SIGMA_STEP,
                                           horizon=N_STEPS)
    assert 0.05 < closed < 0.5  # a probability the test can resolve
    p, low, high = _estimate(GBM(sigma_step=SIGMA_STEP), barrier.liquidation_price)
    assert low <= closed <= high, (p, closed)


def test_discrete_monitoring_matches_bgk_correction(barrier):
    closed = gbm_first_passage_probability(s0=ENTRY, barrier=barrier.liquidation_price, sigma=SIGMA_STEP,
                                           horizon=N_STEPS)
    shifted = bgk_shifted_barrier(s0=ENTRY, barrier=barrier.liquidation_price, sigma_step=SIGMA_STEP)
    corrected = gbm_first_passage_probability(s0=ENTRY, barrier=shifted, sigma=SIGMA_STEP, horizon=N_STEPS)
    p, low, high = _estimate(GBM(sigma_step=SIGMA_STEP, continuous=False), barrier.liquidation_price)
    assert low <= corrected <= high, (p, corrected)
    # and the uncorrected closed form is measurably off: the bias is real, not noise
    assert not low <= closed <= high


def test_short_barrier_above(btc_tiers):
    short = position_barrier(leverage=20, side=-1, entry_price=ENTRY, margin=1_000.0, tiers=btc_tiers)
    assert short.liquidation_price > ENTRY
    closed = gbm_first_passage_probability(s0=ENTRY, barrier=short.liquidation_price, sigma=SIGMA_STEP,
                                           horizon=N_STEPS)
    p, low, high = _estimate(GBM(sigma_step=SIGMA_STEP), short.liquidation_price, side=-1)
    assert low <= closed <= high, (p, closed)


def test_closed_form_with_drift_against_reflection_identity():
    # with drift the formula must still give 1 at the start and grow with the horizon
    kwargs = dict(s0=100.0, barrier=95.0, sigma=0.02, drift=-0.001)
    values = [gbm_first_passage_probability(horizon=h, **kwargs) for h in (1, 10, 100, 1000)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert gbm_first_passage_probability(s0=100.0, barrier=100.0, sigma=0.02, horizon=1) == 1.0
    # zero drift reduces to 2 * Phi(b / (sigma sqrt T))
    from scipy.stats import norm
    b = math.log(95.0 / 100.0)
    assert gbm_first_passage_probability(s0=100.0, barrier=95.0, sigma=0.02, horizon=9) == pytest.approx(
        2 * norm.cdf(b / (0.02 * 3)), rel=1e-12)


def test_wilson_interval_contains_estimate_and_stays_in_unit_interval():
    low, high = wilson_interval(np.array([0, 5, 100]), 100)
    assert low[0] == 0.0 and 0 < high[0] < 0.05
    assert low[1] < 0.05 < high[1]
    assert high[2] == pytest.approx(1.0) and low[2] > 0.95
