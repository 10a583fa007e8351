"""A strategy's vectorized signal for the array path, resolved from the strategy itself.

There is no signal defined here: a strategy declares its own (``Strategy.signal``), its event
path trades it bar by bar and the array path (``backtest.fastpath.run_signals``, used by the
sweep) runs the same array, so the two cannot disagree. This module only turns a strategy
name (built-in, ``module:Class`` or ``file.py:Class``) and parameters into that array.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["has_signal", "strategy_signals"]


def has_signal(strategy: str) -> bool:
    """Whether the strategy (name or spec) declares a vectorized signal.

    Raises
    ------
    backtest.errors.StrategyError
        Unknown strategy (with a suggestion).
    """
    from backtest.strategy import strategy_class

    return strategy_class(strategy).has_signal()


def strategy_signals(strategy: Any, params: Mapping[str, Any] | None, market: Any, config: Any) -> np.ndarray:
    """Target exposures of ``strategy`` with ``params`` on ``market`` under ``config``.

    Returns
    -------
    ndarray of float, shape (n_bars, n_symbols)
        The strategy's signal on the first symbol, NaN (no decision) for the others; the
        input of ``backtest.fastpath.run_signals``.

    Raises
    ------
    backtest.errors.StrategyError
        Unknown strategy or parameters, or a strategy without a signal.
    """
    from backtest.errors import StrategyError
    from backtest.strategy import SignalInputs, load_strategy

    instance = load_strategy(strategy, dict(params or {}))
    if not instance.has_signal():
        raise StrategyError(f"{instance.label()} has no vectorized signal (it decides in on_bar); "
                            "run it on the event engine (sweep --runner engine or auto)")
    column = instance.signal_array(SignalInputs.of_run(market, config))
    out = np.full((column.size, len(market.symbols)), np.nan)
    out[:, 0] = column
    return out
