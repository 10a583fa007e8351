"""Market-level liquidation cascades on arrays of positions (issue 12).

``adl`` holds the pure ADL / insurance-fund rules with the venues' worked examples;
``population`` the positions (file or seeded synthetic); ``liquidity`` the depth curve, stress
and refill; ``paths`` the exogenous price path; ``venue`` the vectorized venue rules (mirrors
of ``backtest.venues``); ``engine`` the per-second loop; ``results`` the tables and the run
folder. See docs/cascade.md.
"""
from __future__ import annotations

__all__ = ["CascadeConfig", "CascadeResult", "run_cascade"]


def __getattr__(name: str):  # lazy: ``import backtest.cascade`` stays light
    if name in ("CascadeConfig", "run_cascade"):
        from backtest.cascade import engine

        return getattr(engine, name)
    if name == "CascadeResult":
        from backtest.cascade.results import CascadeResult

        return CascadeResult
    raise AttributeError(name)
