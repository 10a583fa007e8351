"""The engine's public surface is exact: these names, each importable, nothing else exported.

A name added to or dropped from an ``__all__`` fails here first (httpx style): the surface is
a decision, not an accident.
"""
from __future__ import annotations

import importlib

import pytest

SURFACE = {
    "backtest": ["FundingPaid", "MarketData", "OrderFilled", "PositionDeleveraged",
                 "PositionLiquidated", "RunConfig", "RunResult", "Strategy", "__version__",
                 "run_backtest", "run_signals"],
    "backtest.strategy_events": ["FundingPaid", "OrderFilled", "PositionDeleveraged",
                                 "PositionLiquidated", "StrategyEvent"],
    "backtest.engine": ["RunLoop", "run_backtest"],
    "backtest.fastpath": ["PreparedSignals", "SignalStrategy", "array_path_applies", "prepare_signals", "run_signals",
                          "run_strategy",
                          "validate_signals"],
    "backtest.fastpath_scan": ["ActionIndex", "SignalScanner", "block_extremes", "next_true_index"],
    "backtest.slippage": ["FixedBps", "NoSlippage", "SlippageModel", "SqrtImpact", "make_slippage"],
    "backtest.metrics": ["BarState", "summarize"],
}


@pytest.mark.parametrize("module", sorted(SURFACE))
def test_each_module_exports_exactly_its_surface(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(SURFACE[module])
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{module}.{name}"


def test_the_run_loop_exposes_its_phases() -> None:
    from backtest.engine import RunLoop

    for phase in ("bar_open", "fill_open", "walk", "run_bars", "loop", "result", "build_gates"):
        assert callable(getattr(RunLoop, phase)), phase
        assert getattr(RunLoop, phase).__doc__, f"RunLoop.{phase} has no docstring"
