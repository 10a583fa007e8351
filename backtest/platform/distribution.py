"""Tail figures of a per-scenario outcome: mean, percentiles and expected shortfall.

The one home of these figures for the platform views (perpetuals: :mod:`backtest.platform`;
lending: :mod:`backtest.lending.platform`), so a 95th percentile means the same thing in both.

* Percentile ``q``: linear interpolation between order statistics (numpy's default, polars'
  ``interpolation="linear"``; Hyndman & Fan type 7).
* Expected shortfall at level ``q`` (``es95`` for ``q = 0.95``): the mean of the worst
  ``k = ceil(n (1 - q))`` outcomes (at least one), losses counted as large positive values —
  the discrete "average of the tail" estimator (Acerbi & Tasche 2002, eq. 2.6 with the
  fractional term dropped), so ``es >= percentile`` whenever the tail holds >= 1 value.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["LEVELS", "expected_shortfall", "percentile", "tail_summary"]

#: Confidence levels reported by the platform views.
LEVELS = (0.95, 0.99)


def percentile(values: ArrayLike, q: float) -> float:
    """The ``q`` quantile (0 < q < 1) of ``values``, linear interpolation; nan when empty."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return float("nan")
    return float(np.quantile(data, q, method="linear"))


def expected_shortfall(values: ArrayLike, q: float) -> float:
    """Mean of the worst ``ceil(n (1 - q))`` values (largest = worst); nan when empty."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return float("nan")
    k = max(1, math.ceil(data.size * (1.0 - q) - 1e-12))  # 1e-12: 100 x 0.05 is 5, not 5.000...1
    return float(np.sort(data)[-k:].mean())


def tail_summary(values: ArrayLike, levels: Sequence[float] = LEVELS) -> dict[str, float]:
    """``{mean, p95, p99, es95, es99, max}`` (one pNN/esNN per level) of ``values``."""
    data = np.asarray(values, dtype=np.float64)
    out = {"mean": float(data.mean()) if data.size else float("nan")}
    for q in levels:
        tag = f"{round(q * 100):d}"
        out[f"p{tag}"] = percentile(data, q)
        out[f"es{tag}"] = expected_shortfall(data, q)
    out["max"] = float(data.max()) if data.size else float("nan")
    return out
