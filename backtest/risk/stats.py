"""Small statistical helpers of the risk lab: confidence intervals and first-passage laws.

All functions are pure and vectorized over numpy arrays where it makes sense.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = [
    "BGK_BETA",
    "bgk_shifted_barrier",
    "gbm_first_passage_probability",
    "sample_bridge_extreme",
    "wilson_interval",
]

#: Broadie–Glasserman–Kou constant ``beta = -zeta(1/2) / sqrt(2*pi) ~= 0.5826``.
BGK_BETA: float = 0.5825971579390106  # -zeta(1/2) / sqrt(2 pi), zeta(1/2) = -1.4603545088095868


def wilson_interval(
    successes: np.ndarray | int, trials: np.ndarray | int, *, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion.

    Parameters
    ----------
    successes : int or array of int
        Number of events (e.g. liquidated paths).
    trials : int or array of int
        Number of trials (paths); must be > 0.
    confidence : float, default 0.95
        Two-sided confidence level in (0, 1).

    Returns
    -------
    (low, high) : tuple of arrays
        Interval bounds as probabilities in [0, 1].

    Notes
    -----
    Wilson (1927), "Probable inference, the law of succession, and statistical inference",
    JASA 22(158). Unlike the normal (Wald) interval it stays inside [0, 1] and does not
    collapse to a point when no path is liquidated.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"wilson_interval: confidence must be in (0, 1), found {confidence}")
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if np.any(n <= 0):
        raise ValueError("wilson_interval: trials must be > 0 (no paths were simulated)")
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    low = np.where(k <= 0, 0.0, np.clip(centre - half, 0.0, 1.0))  # exact ends, no rounding residue
    high = np.where(k >= n, 1.0, np.clip(centre + half, 0.0, 1.0))
    return low, high


def gbm_first_passage_probability(
    *, s0: float, barrier: float, sigma: float, horizon: float, drift: float = 0.0
) -> float:
    """Probability that a geometric Brownian motion touches a barrier before ``horizon``.

    The log price is ``X_t = ln(s0) + drift * t + sigma * W_t`` (``drift`` is the drift of the
    *log* price, ``mu - sigma**2 / 2`` for a price drift ``mu``). For a barrier below ``s0``
    (a long's liquidation price) the probability of ``min_{t<=T} S_t <= barrier`` is, with
    ``b = ln(barrier / s0) < 0``,

    ``Phi((b - drift*T) / (sigma*sqrt(T))) + exp(2*drift*b / sigma**2) * Phi((b + drift*T) / (sigma*sqrt(T)))``;

    a barrier above ``s0`` (a short's) is the mirror image. Source: the reflection principle
    for Brownian motion with drift, e.g. Borodin & Salminen, *Handbook of Brownian Motion*,
    2nd ed., formula 1.1.4 (part II, ch. 2), or Shreve, *Stochastic Calculus for Finance II*,
    Cor. 7.2.2.

    Parameters
    ----------
    s0 : float
        Starting price (> 0).
    barrier : float
        Barrier price. ``barrier == s0`` returns 1; ``barrier <= 0`` returns 0.
    sigma : float
        Volatility of the log price per unit of time (> 0).
    horizon : float
        Horizon in the same time unit as ``sigma`` and ``drift`` (>= 0).
    drift : float, default 0
        Drift of the log price per unit of time.

    Returns
    -------
    float
        The continuous-monitoring first-passage probability in [0, 1].
    """
    if s0 <= 0 or sigma <= 0 or horizon < 0 or math.isnan(barrier):
        raise ValueError(
            "gbm_first_passage_probability: need s0 > 0, a barrier, sigma > 0, horizon >= 0; "
            f"found s0={s0}, barrier={barrier}, sigma={sigma}, horizon={horizon}"
        )
    if barrier <= 0:
        return 0.0  # a positive price never reaches a non-positive barrier (a long that cannot be liquidated)
    if horizon == 0:
        return 1.0 if barrier == s0 else 0.0
    b = math.log(barrier / s0)
    if b == 0:
        return 1.0
    nu = drift
    if b > 0:  # an upper barrier is a lower barrier of -X
        b, nu = -b, -nu
    scale = sigma * math.sqrt(horizon)
    first = stats.norm.cdf((b - nu * horizon) / scale)
    second = math.exp(2.0 * nu * b / sigma**2) * stats.norm.cdf((b + nu * horizon) / scale)
    return float(min(1.0, first + second))


def bgk_shifted_barrier(*, s0: float, barrier: float, sigma_step: float) -> float:
    """Shift a continuous barrier so that its law matches discrete monitoring.

    Broadie, Glasserman & Kou (1997), "A continuity correction for discrete barrier options",
    Mathematical Finance 7(4): a barrier monitored only at step ends behaves like a continuous
    barrier moved *away* from the start by ``exp(beta * sigma * sqrt(dt))``,
    ``beta = -zeta(1/2)/sqrt(2 pi) ~= 0.5826``.

    Parameters
    ----------
    s0 : float
        Starting price; decides whether the barrier is below (long) or above (short).
    barrier : float
        Continuous barrier price.
    sigma_step : float
        Log-price volatility over one monitoring step (``sigma * sqrt(dt)``).

    Returns
    -------
    float
        The shifted barrier (lower for a down barrier, higher for an up barrier).
    """
    factor = math.exp(BGK_BETA * sigma_step)
    return barrier / factor if barrier < s0 else barrier * factor


def sample_bridge_extreme(
    start: np.ndarray,
    end: np.ndarray,
    variance: np.ndarray | float,
    uniforms: np.ndarray,
    *,
    lower: bool,
) -> np.ndarray:
    """Draw the minimum (or maximum) of a Brownian bridge between two log prices.

    Given ``X_0 = a`` and ``X_dt = b`` for a Brownian motion whose increment over the step has
    variance ``v = sigma**2 * dt``, ``P(min <= m) = exp(-2 (a - m)(b - m) / v)`` for
    ``m <= min(a, b)``; inverting with a uniform ``U`` gives the exact draw
    ``m = (a + b - sqrt((b - a)**2 - 2 v ln U)) / 2`` (and the mirror image for the maximum).
    Source: Glasserman, *Monte Carlo Methods in Financial Engineering*, 2004, sec. 6.4.

    Parameters
    ----------
    start, end : arrays of float
        Log prices at the step's start and end.
    variance : float or array
        Variance of the log-price increment over the step.
    uniforms : array of float
        Uniform draws in (0, 1], same shape as ``start``.
    lower : bool
        True for the minimum, False for the maximum.

    Returns
    -------
    array of float
        The extreme of the continuous path inside each step (log price).
    """
    spread = np.sqrt((end - start) ** 2 - 2.0 * variance * np.log(uniforms))
    if lower:
        return 0.5 * (start + end - spread)
    return 0.5 * (start + end + spread)
