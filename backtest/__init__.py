"""margincall's engine: an event-driven backtester for leveraged crypto perpetuals."""
__version__ = "0.1.0"

# Public API, imported lazily so ``import backtest`` stays light (CONTRACTS §8).
_LAZY = {
    "run_backtest": "backtest.engine",
    "RunConfig": "backtest.config",
    "MarketData": "backtest.market_data",
    "Strategy": "backtest.strategy",
    "RunResult": "backtest.results",
    "run_signals": "backtest.fastpath",
    "OrderFilled": "backtest.strategy_events",
    "FundingPaid": "backtest.strategy_events",
    "PositionLiquidated": "backtest.strategy_events",
    "PositionDeleveraged": "backtest.strategy_events",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):  # noqa: ANN202 - PEP 562 lazy attribute
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'backtest' has no attribute {name!r}")
