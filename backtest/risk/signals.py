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

__all__ = ["MARKET_FIELDS", "has_signal", "strategy_signals"]


def has_signal(strategy: str) -> bool:
    """Whether the strategy (name or spec) declares a vectorized signal.

    Raises
    ------
    backtest.errors.StrategyError
        Unknown strategy (with a suggestion).
    """
    from backtest.strategy import strategy_class

    return strategy_class(strategy).has_signal()


#: ``SignalInputs`` fields that come from the market (the others come from the run
#: configuration: leverage, fees, sizing basis). A signal that read only these (and the
#: instance's class) is the same for every configuration of one market and parameter set.
MARKET_FIELDS = frozenset({"close", "ts", "time", "funding_rate", "__class__"})


def strategy_signals(strategy: Any, params: Mapping[str, Any] | None, market: Any, config: Any, *,
                     reads: set[str] | None = None) -> np.ndarray:
    """Target exposures of ``strategy`` with ``params`` on ``market`` under ``config``.

    ``reads``, when given, receives the name of every attribute the signal read from its
    ``SignalInputs`` (see :data:`MARKET_FIELDS`: a sweep reuses a signal across leverages only
    when it read nothing else).

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
    inputs = SignalInputs.of_run(market, config)
    if reads is not None:
        inputs = _recording(inputs, reads)
    column = instance.signal_array(inputs)
    out = np.full((column.size, len(market.symbols)), np.nan)
    out[:, 0] = column
    return out


def _recording(inputs: Any, reads: set[str]) -> Any:
    """A copy of ``inputs`` that adds the name of every attribute read to ``reads``.

    Every access goes through ``__getattribute__`` (plain reads, ``getattr``, ``vars`` and
    ``dataclasses.asdict`` / ``replace`` alike), so a signal cannot read a configuration field
    unseen; anything outside :data:`MARKET_FIELDS` counts as depending on the configuration.
    """
    import dataclasses

    class RecordingInputs(type(inputs)):  # type: ignore[misc, valid-type]
        def __getattribute__(self, name: str) -> Any:
            reads.add(name)
            return super().__getattribute__(name)

    return RecordingInputs(**{f.name: getattr(inputs, f.name) for f in dataclasses.fields(inputs)})
