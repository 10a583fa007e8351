"""Stationary block bootstrap of real bars (Politis & Romano 1994).

Paths are built from blocks of consecutive real bars — each bar contributes its close-to-close
log return *and* its intra-bar low/high excursions, so wicks come from the data, not from a
model. Block lengths are geometric with mean ``block_length``; the mean is chosen by the
Politis–White (2004) rule (with the Patton–Politis–White 2009 correction) applied to the
*absolute* returns, because what a liquidation study must keep is volatility clustering,
which lives in ``|r|`` (raw returns are nearly uncorrelated and would get blocks of ~1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from backtest.risk.errors import FitError
from backtest.risk.paths import PricePaths, ReturnSample

__all__ = ["StationaryBootstrap", "optimal_block_length"]


def _autocovariances(x: np.ndarray, max_lag: int) -> np.ndarray:
    centred = x - x.mean()
    n = centred.size
    return np.array([centred[: n - k] @ centred[k:] / n for k in range(max_lag + 1)])


def optimal_block_length(x: np.ndarray) -> float:
    """Politis–White optimal mean block length of the stationary bootstrap.

    Politis, D. N. & White, H. (2004), "Automatic Block-Length Selection for the Dependent
    Bootstrap", Econometric Reviews 23(1); corrected in Patton, Politis & White (2009),
    Econometric Reviews 28(4). Flat-top lag window, ``c = 2``, ``K_N = max(5, sqrt(log10 n))``.

    Parameters
    ----------
    x : ndarray
        The series (e.g. absolute log returns), at least 50 values.

    Returns
    -------
    float
        Mean block length in steps, clipped to ``[1, ceil(min(3 sqrt(n), n / 3))]``.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    if n < 50 or not np.all(np.isfinite(x)):
        raise FitError(f"optimal_block_length: need >= 50 finite values, found {n}")
    k_n = max(5, int(math.ceil(math.sqrt(math.log10(n)))))
    m_max = int(math.ceil(math.sqrt(n))) + k_n
    b_max = int(math.ceil(min(3.0 * math.sqrt(n), n / 3.0)))
    acov = _autocovariances(x, m_max)
    if acov[0] <= 0:
        return 1.0
    rho = np.abs(acov[1:] / acov[0])
    threshold = 2.0 * math.sqrt(math.log10(n) / n)
    m_hat = m_max
    for lag in range(m_max - k_n + 1):
        if np.all(rho[lag : lag + k_n] < threshold):
            m_hat = lag  # lags 1..m_hat are significant; m_hat + 1 .. m_hat + K_N are not
            break
    big_m = min(2 * max(m_hat, 1), m_max)
    lags = np.arange(-big_m, big_m + 1)
    t = np.abs(lags) / big_m
    window = np.where(t <= 0.5, 1.0, np.where(t <= 1.0, 2.0 * (1.0 - t), 0.0))
    r = acov[np.abs(lags)]
    g_hat = float(np.sum(window * np.abs(lags) * r))
    long_run = float(np.sum(window * r))
    d_sb = 2.0 * long_run**2
    if d_sb <= 0 or g_hat == 0:
        return 1.0
    b = (2.0 * g_hat**2 / d_sb) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return float(min(max(b, 1.0), b_max))


@dataclass(frozen=True)
class StationaryBootstrap:
    """Block bootstrap of real bars with geometric block lengths (circular wrap-around).

    Parameters
    ----------
    sample : ReturnSample
        The bars to resample.
    block_length : float
        Mean block length in steps (>= 1).
    """

    sample: ReturnSample
    block_length: float
    name: str = field(default="block_bootstrap", init=False)

    @property
    def step_ms(self) -> int:
        """Step duration in milliseconds (the sample's bar interval)."""
        return self.sample.step_ms

    @classmethod
    def fit(cls, sample: ReturnSample, *, block_length: float | None = None) -> StationaryBootstrap:
        """Pick the mean block length by Politis–White on ``|returns|`` unless given."""
        if block_length is None:
            block_length = optimal_block_length(np.abs(sample.returns))
        if block_length < 1:
            raise FitError(f"block bootstrap: block_length must be >= 1 step, found {block_length}")
        return cls(sample=sample, block_length=float(block_length))

    def indices(self, rng: np.random.Generator, n_paths: int, n_steps: int) -> np.ndarray:
        """Indices into the sample, shape (n_paths, n_steps): runs of consecutive bars."""
        n = self.sample.returns.size
        new_block = rng.random((n_paths, n_steps)) < 1.0 / self.block_length
        new_block[:, 0] = True
        starts = rng.integers(0, n, size=(n_paths, n_steps))
        steps = np.arange(n_steps)
        # the step at which the current block began, carried forward along each path
        block_start = np.maximum.accumulate(np.where(new_block, steps, 0), axis=1)
        origin = np.take_along_axis(starts, block_start, axis=1)
        return (origin + (steps - block_start)) % n

    def simulate(self, rng: np.random.Generator, *, n_paths: int, n_steps: int, s0: float) -> PricePaths:
        """Resample blocks of bars into ``n_paths`` paths starting at ``s0``."""
        idx = self.indices(rng, n_paths, n_steps)
        log_close = np.empty((n_paths, n_steps + 1))
        log_close[:, 0] = math.log(s0)
        np.cumsum(self.sample.returns[idx], axis=1, out=log_close[:, 1:])
        log_close[:, 1:] += log_close[:, :1]
        prev = log_close[:, :-1]
        # extremes gathered on first access only: a liquidation check reads one side
        return PricePaths(log_close=log_close, log_low=lambda: prev + self.sample.low_excursions[idx],
                          log_high=lambda: prev + self.sample.high_excursions[idx], step_ms=self.step_ms)

    def describe(self) -> dict[str, float | int | str]:
        """Block length and the sample it resamples."""
        return {"model": self.name, "block_length_steps": self.block_length,
                "n_returns": int(self.sample.returns.size), "price": self.sample.price,
                "step_ms": self.step_ms, "start_ms": self.sample.start_ms, "end_ms": self.sample.end_ms}
