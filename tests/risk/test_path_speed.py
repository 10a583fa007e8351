"""Path generation rewritten for speed gives the same numbers as the plain formulas."""
from __future__ import annotations

import math

import numpy as np

from backtest.risk.garch import GarchT
from backtest.risk.jumps import MertonJump
from backtest.risk.montecarlo import simulate_first_passage
from backtest.risk.stats import sample_bridge_extreme


def _garch_reference(model: GarchT, seed: int, n_paths: int, n_steps: int, s0: float):
    """The GARCH(1,1) recursion written step by step over path columns (the textbook form)."""
    rng = np.random.default_rng(seed)
    z = model.innovations(rng, (n_paths, n_steps))
    variance = np.full(n_paths, model.sample_variance)
    sigma2 = np.empty((n_paths, n_steps))
    increments = np.empty((n_paths, n_steps))
    for step in range(n_steps):
        sigma2[:, step] = variance
        eps = np.sqrt(variance) * z[:, step]
        increments[:, step] = model.mu + eps
        variance = model.omega + model.alpha * eps * eps + model.beta * variance
    log_close = np.concatenate([np.full((n_paths, 1), math.log(s0)),
                                math.log(s0) + np.cumsum(increments, axis=1)], axis=1)
    start, end = log_close[:, :-1], log_close[:, 1:]
    low = sample_bridge_extreme(start, end, sigma2, 1.0 - rng.random((n_paths, n_steps)), lower=True)
    high = sample_bridge_extreme(start, end, sigma2, 1.0 - rng.random((n_paths, n_steps)), lower=False)
    return log_close, low, high


def test_garch_paths_equal_the_stepwise_recursion_bit_for_bit():
    model = GarchT(mu=2e-6, omega=3e-9, alpha=0.09, beta=0.9, nu=4.6, step_ms=60_000, sample_variance=1.1e-6)
    close, low, high = _garch_reference(model, 11, 64, 300, 65_000.0)
    paths = model.simulate(np.random.default_rng(11), n_paths=64, n_steps=300, s0=65_000.0)
    assert np.array_equal(paths.log_close, close)
    assert np.array_equal(paths.log_low, low)
    assert np.array_equal(paths.log_high, high)


def test_reading_one_side_does_not_change_the_other():
    """Extremes are computed on first access; the uniforms of both sides are drawn up front."""
    model = MertonJump(mu=0.0, sigma=8e-4, lam=0.01, mu_j=-0.002, sigma_j=0.01, step_ms=60_000)
    eager = model.simulate(np.random.default_rng(5), n_paths=20, n_steps=50, s0=100.0)
    low_first, high_first = eager.log_low, eager.log_high
    lazy = model.simulate(np.random.default_rng(5), n_paths=20, n_steps=50, s0=100.0)
    assert np.array_equal(lazy.log_high, high_first)  # high read without the low ever being computed
    assert np.array_equal(lazy.log_low, low_first)
    assert np.all(low_first <= np.minimum(eager.log_close[:, :-1], eager.log_close[:, 1:]) + 1e-12)


def test_first_passage_identical_for_one_or_two_workers_and_small_jobs():
    model = MertonJump(mu=0.0, sigma=1e-3, lam=0.02, mu_j=-0.003, sigma_j=0.01, step_ms=60_000)
    kwargs = dict(barriers=[95.0, 98.0], side=1, n_steps=200, s0=100.0, seed=9)
    for n_paths in (300, 2_500):  # one chunk (no pool) and several chunks
        one = simulate_first_passage(model, n_paths=n_paths, workers=1, **kwargs)
        two = simulate_first_passage(model, n_paths=n_paths, workers=2, **kwargs)
        assert np.array_equal(one.hit_step, two.hit_step) and np.array_equal(one.extreme, two.extreme)
        assert one.liquidated(200)[0] <= one.liquidated(200)[1]  # the nearer barrier is hit at least as often
