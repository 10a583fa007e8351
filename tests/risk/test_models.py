"""Return models: GARCH-t and Merton recover known parameters; the bootstrap keeps the data's law."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from backtest.risk.bootstrap import StationaryBootstrap, optimal_block_length
from backtest.risk.garch import GarchT
from backtest.risk.jumps import MertonJump
from backtest.risk.paths import GBM, ReturnSample

HOUR = 3_600_000


def _series(model, n, seed):
    paths = model.simulate(np.random.default_rng(seed), n_paths=1, n_steps=n, s0=100.0)
    return np.diff(paths.log_close[0])


def test_garch_t_recovers_known_parameters():
    truth = GarchT(mu=0.0002, omega=2e-6, alpha=0.08, beta=0.90, nu=5.0, step_ms=HOUR)
    fit = GarchT.fit(_series(truth, 30_000, seed=3), step_ms=HOUR)
    assert fit.alpha == pytest.approx(truth.alpha, abs=0.02)
    assert fit.beta == pytest.approx(truth.beta, abs=0.03)
    assert fit.nu == pytest.approx(truth.nu, abs=1.0)
    assert fit.unconditional_variance == pytest.approx(truth.unconditional_variance, rel=0.25)
    assert np.isfinite(fit.loglik) and fit.n_obs == 30_000


def test_garch_loglik_is_maximal_at_the_fit():
    truth = GarchT(mu=0.0, omega=1e-6, alpha=0.1, beta=0.85, nu=6.0, step_ms=HOUR)
    r = _series(truth, 5_000, seed=4)
    fit = GarchT.fit(r, step_ms=HOUR)
    from backtest.risk.garch import garch_t_loglik
    at_fit = garch_t_loglik(np.array([fit.mu, fit.omega, fit.alpha, fit.beta, fit.nu]), r)
    assert at_fit == pytest.approx(fit.loglik, rel=1e-6)
    nudged = garch_t_loglik(np.array([fit.mu, fit.omega, fit.alpha * 1.2, fit.beta * 0.98, fit.nu]), r)
    assert nudged < at_fit


def test_merton_recovers_known_parameters():
    truth = MertonJump(mu=0.0, sigma=0.004, lam=0.03, mu_j=-0.01, sigma_j=0.03, step_ms=HOUR)
    fit = MertonJump.fit(_series(truth, 40_000, seed=5), step_ms=HOUR)
    assert fit.sigma == pytest.approx(truth.sigma, rel=0.05)
    assert fit.lam == pytest.approx(truth.lam, rel=0.3)
    assert fit.sigma_j == pytest.approx(truth.sigma_j, rel=0.2)
    assert fit.variance_per_step() == pytest.approx(truth.variance_per_step(), rel=0.1)


def _garch_sample(n=20_000, seed=11):
    model = GarchT(mu=0.0, omega=2e-6, alpha=0.1, beta=0.88, nu=5.0, step_ms=HOUR)
    paths = model.simulate(np.random.default_rng(seed), n_paths=1, n_steps=n, s0=100.0)
    close = np.exp(paths.log_close[0])
    import polars as pl
    bars = pl.DataFrame({"ts": np.arange(n + 1, dtype=np.int64) * HOUR, "open": np.r_[close[0], close[:-1]],
                         "high": np.r_[close[0], np.exp(paths.log_high[0])], "low": np.r_[close[0], np.exp(paths.log_low[0])],
                         "close": close})
    return ReturnSample.from_bars(bars)


def test_bootstrap_preserves_the_return_distribution_and_clustering():
    sample = _garch_sample()
    boot = StationaryBootstrap.fit(sample)
    assert 2 <= boot.block_length <= 3 * np.sqrt(sample.returns.size)
    paths = boot.simulate(np.random.default_rng(0), n_paths=20, n_steps=2_000, s0=100.0)
    r = np.diff(paths.log_close, axis=1)
    pooled = r.ravel()
    # same marginal law: two-sample KS does not reject, and the quantiles line up
    assert stats.ks_2samp(pooled, sample.returns).pvalue > 0.01
    for q in (0.01, 0.1, 0.5, 0.9, 0.99):
        assert np.quantile(pooled, q) == pytest.approx(np.quantile(sample.returns, q), rel=0.1, abs=1e-4)
    # blocks keep volatility clustering: lag-1 autocorrelation of |r| stays near the original
    def acf1(x):
        a = np.abs(x) - np.abs(x).mean()
        return float(a[:-1] @ a[1:] / (a @ a))
    original = acf1(sample.returns)
    boot_acf = np.mean([acf1(row) for row in r])
    iid = np.random.default_rng(1).permutation(sample.returns)
    assert original > 0.1
    assert boot_acf == pytest.approx(original, abs=0.06)
    assert abs(acf1(iid)) < 0.05  # what resampling without blocks would give


def test_bootstrap_lows_come_from_the_data():
    sample = _garch_sample(n=3_000)
    boot = StationaryBootstrap.fit(sample, block_length=5)
    paths = boot.simulate(np.random.default_rng(2), n_paths=4, n_steps=500, s0=100.0)
    excursions = paths.log_low - paths.log_close[:, :-1]
    assert np.all(np.isin(np.round(excursions, 12), np.round(sample.low_excursions, 12)))
    assert np.all(paths.log_low <= np.minimum(paths.log_close[:, :-1], paths.log_close[:, 1:]) + 1e-12)


def test_block_length_short_for_independent_data():
    x = np.abs(np.random.default_rng(3).standard_normal(10_000))
    assert optimal_block_length(x) < 3


@pytest.mark.parametrize("model", [
    GBM(sigma_step=0.01),
    GarchT(mu=0.0, omega=1e-6, alpha=0.1, beta=0.85, nu=5.0, step_ms=HOUR),
    MertonJump(mu=0.0, sigma=0.004, lam=0.03, mu_j=-0.01, sigma_j=0.03, step_ms=HOUR),
])
def test_simulation_is_deterministic_and_candles_are_sane(model):
    a = model.simulate(np.random.default_rng(42), n_paths=50, n_steps=100, s0=100.0)
    b = model.simulate(np.random.default_rng(42), n_paths=50, n_steps=100, s0=100.0)
    c = model.simulate(np.random.default_rng(43), n_paths=50, n_steps=100, s0=100.0)
    np.testing.assert_array_equal(a.log_close, b.log_close)
    np.testing.assert_array_equal(a.log_low, b.log_low)
    assert not np.array_equal(a.log_close, c.log_close)
    ends_low = np.minimum(a.log_close[:, :-1], a.log_close[:, 1:])
    ends_high = np.maximum(a.log_close[:, :-1], a.log_close[:, 1:])
    assert np.all(a.log_low <= ends_low + 1e-12) and np.all(a.log_high >= ends_high - 1e-12)


@pytest.mark.parametrize("name", ["binance_um_BTCUSDT_1h_2019-09-08_2026-05-17.parquet",
                                  "binance_um_BTCUSDT_1m_2025-05-04_2025-06-24.parquet"])
def test_garch_fit_agrees_with_arch_on_stored_btcusdt(shared_data, name):
    """GarchT.fit against an independent arch fit of the same returns, and against the hand-written likelihood.

    The reference fit is arch's own recommended set-up: percent returns (``100 * r``), which
    conditions the optimizer differently from GarchT's unit-variance scaling, so agreement
    checks the unit conversions and that the optimum is not an artefact of one scaling.
    Tolerance 1e-3 relative (1e-4 absolute on alpha/beta): both fits stop on SLSQP's ftol of
    1e-6 on the scaled likelihood and agree to ~1e-6 on the hourly data; a different local
    optimum differs by percents (the hand-written fit this replaces found alpha 0.0858 against
    0.1025). 1m returns are too small for the percent scale (std 0.05 %: arch stops at a
    likelihood ~7e5 below the optimum), so there only the likelihood identity is checked.
    """
    from arch import arch_model

    from backtest.risk.garch import garch_t_loglik
    from tests.risk.conftest import read_shared_bars

    sample = ReturnSample.from_bars(read_shared_bars(shared_data / "klines/long" / name))
    r = sample.returns
    fit = GarchT.fit(r, step_ms=sample.step_ms)
    # the independent statement of the likelihood (arch's backcast start) at the fitted parameters
    own = garch_t_loglik(np.array([fit.mu, fit.omega, fit.alpha, fit.beta, fit.nu]), r)
    assert own == pytest.approx(fit.loglik, rel=1e-9)
    if sample.step_ms == HOUR:
        ref = arch_model(100 * r, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(
            disp="off", show_warning=False)
        assert ref.convergence_flag == 0
        p = ref.params
        assert fit.alpha == pytest.approx(p["alpha[1]"], abs=1e-4)
        assert fit.beta == pytest.approx(p["beta[1]"], abs=1e-4)
        assert fit.nu == pytest.approx(p["nu"], rel=1e-3)
        assert fit.omega == pytest.approx(p["omega"] / 100**2, rel=1e-3)
        assert fit.mu == pytest.approx(p["mu"] / 100, rel=1e-3)
        assert fit.loglik == pytest.approx(ref.loglikelihood + r.size * np.log(100), rel=1e-9)  # density of r = 100 x density of 100 r


def test_merton_gradient_is_the_likelihood_derivative():
    """The analytic gradient the fit uses equals central differences of the (independent) likelihood."""
    from backtest.risk.jumps import _loglik_and_gradient, merton_loglik

    x = np.random.default_rng(0).standard_t(4, 3_000)
    theta = np.array([0.01, np.log(0.8), np.log(0.1), -0.2, np.log(2.0)])

    def loglik(t):
        return merton_loglik(np.array([t[0], np.exp(t[1]), np.exp(t[2]), t[3], np.exp(t[4])]), x)

    value, gradient = _loglik_and_gradient(theta, x, 10)
    assert value == pytest.approx(loglik(theta), rel=1e-12)
    h = 1e-5
    central = [(loglik(theta + h * e) - loglik(theta - h * e)) / (2 * h) for e in np.eye(5)]
    assert gradient == pytest.approx(central, rel=1e-6, abs=1e-6)


def test_merton_fit_is_a_maximum():
    truth = MertonJump(mu=0.0, sigma=0.004, lam=0.03, mu_j=-0.01, sigma_j=0.03, step_ms=HOUR)
    r = _series(truth, 8_000, seed=6)
    fit = MertonJump.fit(r, step_ms=HOUR)
    from backtest.risk.jumps import merton_loglik
    at_fit = merton_loglik(np.array([fit.mu, fit.sigma, fit.lam, fit.mu_j, fit.sigma_j]), r)
    assert at_fit == pytest.approx(fit.loglik, rel=1e-9)
    for factor in (0.9, 1.1):
        for nudged in ([fit.mu, fit.sigma * factor, fit.lam, fit.mu_j, fit.sigma_j],
                       [fit.mu, fit.sigma, fit.lam * factor, fit.mu_j, fit.sigma_j],
                       [fit.mu, fit.sigma, fit.lam, fit.mu_j, fit.sigma_j * factor]):
            assert merton_loglik(np.array(nudged), r) < at_fit
