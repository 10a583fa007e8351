"""Vectorized target-exposure signals of built-in strategies, for the array path.

A signal function maps ``(close, params)`` to the target exposure decided at each bar's close
(+1 = long 1x the wallet, -1 = short, 0 = flat, nan = no decision yet), mirroring the event
strategy of the same name bar for bar; the sweep feeds it to ``backtest.fastpath.run_signals``.
"""
from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from backtest.risk.errors import RiskError

__all__ = ["SIGNALS", "hold_signals", "resolve_signal", "rolling_mean", "sma_cross_signals"]

SignalFn = Callable[[np.ndarray, Mapping[str, Any]], np.ndarray]


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean of ``window`` values (nan for the first ``window - 1``), O(n) via cumsum."""
    if window < 1:
        raise RiskError(f"rolling mean window must be >= 1, found {window}")
    out = np.full(x.size, np.nan)
    if x.size >= window:
        csum = np.concatenate([[0.0], np.cumsum(x, dtype=float)])
        out[window - 1:] = (csum[window:] - csum[:-window]) / window
    return out


def _forward_fill(x: np.ndarray) -> np.ndarray:
    idx = np.where(np.isnan(x), 0, np.arange(x.size))
    np.maximum.accumulate(idx, out=idx)
    out = x[idx]
    return out


def sma_cross_signals(close: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """``sma_cross``: +exposure while SMA(fast) > SMA(slow), -exposure below, equal keeps the side."""
    fast, slow = int(params.get("fast", 50)), int(params.get("slow", 200))
    exposure = float(params.get("exposure", 1.0))
    f, s = rolling_mean(close, fast), rolling_mean(close, slow)
    side = np.where(f > s, 1.0, np.where(f < s, -1.0, np.nan))
    return _forward_fill(side) * exposure


def hold_signals(close: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """``hold``: constant exposure from the first bar (long, or short with ``side="short"``)."""
    sign = -1.0 if params.get("side", "long") == "short" else 1.0
    return np.full(close.size, sign * float(params.get("exposure", 1.0)))


#: Built-in strategies with a vectorized signal.
SIGNALS: Mapping[str, SignalFn] = {"sma_cross": sma_cross_signals, "hold": hold_signals}


def resolve_signal(spec: str) -> SignalFn | None:
    """The signal function of a strategy name or ``"module:function"``; None when it has none."""
    if spec in SIGNALS:
        return SIGNALS[spec]
    if ":" in spec:
        module, _, name = spec.partition(":")
        try:
            fn = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise RiskError(f"signal function {spec!r} cannot be imported ({exc})") from None
        if callable(fn):
            return fn
    close = difflib.get_close_matches(spec, SIGNALS, n=1)
    if close and close[0] != spec:
        raise RiskError(f"strategy {spec!r} has no vectorized signal — did you mean {close[0]!r}?")
    return None
