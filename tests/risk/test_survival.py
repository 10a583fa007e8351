"""Survival solvers: monotone, correct against a closed form, deterministic with seeds."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from backtest.risk.barriers import position_barrier
from backtest.risk.montecarlo import LiquidationStudy, simulate_first_passage
from backtest.risk.paths import GBM
from backtest.risk.stats import gbm_first_passage_probability
from backtest.risk.survival import (
    bisect_largest,
    crash_survival_leverage,
    max_leverage_for_probability,
    max_leverage_mc,
    min_margin_for_probability,
)
from backtest.venues.tiers import TierTable

ENTRY = 50_000.0
SIGMA = 0.0015  # per 5m step
STEPS = 288
MARGIN = 1_000.0


@pytest.fixture(scope="module")
def flat_tiers():
    """One bracket, 0.5 % MMR, no maintenance amount: LP = EP (1 - 1/L) / (1 - MMR) for a long."""
    return TierTable.from_rates([(0.0, 0.005, 125.0)], label="single 0.5 % bracket")


def _closed_form_leverage(p: float, mmr: float = 0.005) -> float:
    # 2 Phi(b / (sigma sqrt T)) = p  ->  b*, LP* = EP e^{b*}, and LP(L) = EP (1 - 1/L)/(1 - MMR)
    b = SIGMA * math.sqrt(STEPS) * norm.ppf(p / 2)
    ratio = math.exp(b)
    return 1.0 / (1.0 - ratio * (1.0 - mmr))


def test_single_bracket_lp_formula(flat_tiers):
    barrier = position_barrier(leverage=10, side=1, entry_price=ENTRY, margin=MARGIN, tiers=flat_tiers)
    assert barrier.liquidation_price == pytest.approx(ENTRY * 0.9 / 0.995, rel=1e-12)


def test_solver_finds_closed_form_leverage(flat_tiers):
    def probability(lev: float) -> float:
        lp = position_barrier(leverage=lev, side=1, entry_price=ENTRY, margin=MARGIN, tiers=flat_tiers).liquidation_price
        return gbm_first_passage_probability(s0=ENTRY, barrier=lp, sigma=SIGMA, horizon=STEPS)

    result = max_leverage_for_probability(probability, target=0.01, lo=1, hi=125, rel_tol=1e-6)
    assert result.value == pytest.approx(_closed_form_leverage(0.01), rel=1e-5)
    assert result.detail["probability"] <= 0.01


def test_monte_carlo_solver_agrees_with_closed_form_and_is_monotone(flat_tiers):
    passage = simulate_first_passage(GBM(sigma_step=SIGMA, step_ms=300_000), barriers=[], side=1, n_paths=40_000,
                                     n_steps=STEPS, s0=ENTRY, seed=1)
    levs = np.geomspace(1.5, 100, 25)
    probs = [passage.probability_for_barrier(position_barrier(
        leverage=lev, side=1, entry_price=ENTRY, margin=MARGIN, tiers=flat_tiers).liquidation_price) for lev in levs]
    assert all(a <= b for a, b in zip(probs, probs[1:]))  # common random numbers -> monotone
    result = max_leverage_mc(passage, target=0.05, margin=MARGIN, tiers=flat_tiers, entry_price=ENTRY)
    assert result.value == pytest.approx(_closed_form_leverage(0.05), rel=0.03)
    upper = max_leverage_mc(passage, target=0.05, margin=MARGIN, tiers=flat_tiers, entry_price=ENTRY,
                            criterion="upper")
    assert upper.value < result.value  # the conservative answer is lower
    assert result.detail["ci_low"] <= 0.05 + 1e-9


def test_real_tiers_cap_and_monotone(btc_tiers):
    passage = simulate_first_passage(GBM(sigma_step=SIGMA, step_ms=300_000), barriers=[], side=1, n_paths=5_000,
                                     n_steps=STEPS, s0=ENTRY, seed=2)
    result = max_leverage_mc(passage, target=0.5, margin=10_000.0, tiers=btc_tiers, entry_price=ENTRY)
    assert result.value is not None and result.value <= 125
    xs = [x for x, _ in result.evaluations]
    oks = [ok for _, ok in sorted(result.evaluations)]
    assert oks == sorted(oks, reverse=True), xs  # feasible below, infeasible above


def test_min_margin_is_the_dual_of_max_leverage(flat_tiers):
    notional = 20_000.0

    def probability_at_margin(margin: float) -> float:
        lev = notional / margin
        lp = position_barrier(leverage=lev, side=1, entry_price=ENTRY, margin=margin, tiers=flat_tiers).liquidation_price
        return gbm_first_passage_probability(s0=ENTRY, barrier=lp, sigma=SIGMA, horizon=STEPS)

    result = min_margin_for_probability(probability_at_margin, target=0.01, notional=notional, max_leverage=125,
                                        rel_tol=1e-7)
    assert result.value == pytest.approx(notional / _closed_form_leverage(0.01), rel=1e-5)


def test_bisection_edges():
    assert bisect_largest(lambda x: True, 1, 10).feasible_at_bound
    assert bisect_largest(lambda x: False, 1, 10).value is None
    r = crash_survival_leverage(lambda lev: lev <= 7.3, lo=1, hi=125, rel_tol=1e-4)
    assert r.value == pytest.approx(7.3, rel=1e-4) and r.value <= 7.3


def test_study_deterministic_and_thread_independent(btc_tiers):
    from backtest.risk.barriers import liquidation_barriers
    barriers = liquidation_barriers([5, 20, 50], side=1, entry_price=ENTRY, margin=MARGIN, tiers=btc_tiers)
    model = GBM(sigma_step=SIGMA, step_ms=300_000)
    a = LiquidationStudy.run(model, barriers, horizon_ms=STEPS * 300_000, n_paths=2_500, seed=9)
    b = LiquidationStudy.run(model, barriers, horizon_ms=STEPS * 300_000, n_paths=2_500, seed=9, workers=2)
    c = LiquidationStudy.run(model, barriers, horizon_ms=STEPS * 300_000, n_paths=2_500, seed=10)
    np.testing.assert_array_equal(a.passage.hit_step, b.passage.hit_step)
    assert not np.array_equal(a.passage.hit_step, c.passage.hit_step)
    table = a.table([3_600_000, 24 * 3_600_000])
    assert table.height == 6
    day = table.filter(table["horizon_hours"] == 24)["probability"].to_list()
    hour = table.filter(table["horizon_hours"] == 1)["probability"].to_list()
    assert day == sorted(day) and all(h <= d for h, d in zip(hour, day))
    assert (table["ci_low"] <= table["probability"]).all() and (table["probability"] <= table["ci_high"]).all()


def test_time_to_liquidation_distribution_agrees_with_the_table(btc_tiers):
    from backtest.risk.barriers import liquidation_barriers
    barriers = liquidation_barriers([5, 20, 50], side=1, entry_price=ENTRY, margin=MARGIN, tiers=btc_tiers)
    study = LiquidationStudy.run(GBM(sigma_step=SIGMA, step_ms=300_000), barriers,
                                 horizon_ms=STEPS * 300_000, n_paths=2_500, seed=9)
    ttl = study.time_to_liquidation()
    table = study.table()
    for row in table.iter_rows(named=True):
        hours = ttl.filter(ttl["leverage"] == row["leverage"])["hours"]
        assert hours.len() == row["n_liquidated"]  # one row per liquidated path
        if hours.len():
            assert hours.median() == pytest.approx(row["median_ttl_hours"])
            assert hours.max() <= STEPS * 300_000 / 3_600_000 and hours.min() > 0
    assert ttl["path"].n_unique() <= 2_500
