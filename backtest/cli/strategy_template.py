"""The file ``margincall new-strategy NAME`` writes: a commented strategy that runs as it is.

:data:`TEMPLATE` is a :class:`string.Template` (``$class_name``, ``$name``, ``$file``); the
written file is checked by tests/reports/test_new_strategy.py, which runs it through
``margincall run --strategy FILE.py:CLASS`` on synthetic store data.
"""
from __future__ import annotations

from string import Template

TEMPLATE = Template('''\
"""$name: a breakout strategy with a stop-loss and a take-profit (written by `margincall new-strategy`).

Run it as it is, then change it:

    margincall run --strategy $file:$class_name --symbol BTC/USDT:USDT --timeframe 1h \\
        --leverage 5 --param lookback=48

The strategy API is documented in docs/strategy_api.md (Strategy, Context, Param, orders,
events) and the run file keys in its "Run file (TOML) reference".
"""
from __future__ import annotations

import math

import polars as pl

from backtest.strategy import Param, Strategy


class $class_name(Strategy):
    """Go long when the close breaks above the highest high of the last ``lookback`` bars;
    exit when it falls below the lowest low, or when the bracket's stop below the entry or
    its take-profit above it triggers.

    Exposure is notional / wallet (the run's sizing basis): ``exposure = 1`` at any leverage
    is a position worth the whole wallet; the leverage only sets the margin it posts, so the
    liquidation price moves closer as the leverage rises.
    """

    # The name `margincall run --strategy` accepts when the class is registered; a file
    # strategy is run by path instead: --strategy $file:$class_name
    name = "$name"

    # Parameters: class attributes. Param checks the range; `--param lookback=48` overrides
    # one (an unknown name gets a did-you-mean error).
    lookback = Param(24, ge=2, doc="bars of the breakout channel")
    exposure = Param(1.0, gt=0.0, doc="notional / wallet of the position")
    stop_pct = Param(0.05, gt=0.0, lt=1.0, doc="stop distance below the entry, fraction of price")
    take_pct = Param(0.10, gt=0.0, lt=1.0, doc="take-profit distance above the entry, fraction of price")

    def conflict(self) -> str | None:
        """Return a message when parameters make no sense together (None when fine)."""
        if self.stop_pct * self.exposure >= 1.0:
            return "stop_pct x exposure must be < 1: the stop would lose more than the wallet"
        return None

    def features(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Computed once, vectorized, before the loop; on_bar reads them with ctx.feature.

        Shifted by one bar so that a bar is compared with the channel of the bars BEFORE it
        (on_bar only ever sees closed bars; features must not look ahead either).
        """
        return bars.with_columns(
            channel_high=pl.col("high").rolling_max(self.lookback).shift(1),
            channel_low=pl.col("low").rolling_min(self.lookback).shift(1),
        ).fill_null(math.nan)                      # the first bars have no channel yet

    def on_bar(self, ctx) -> None:
        """Called at each bar close. Orders placed here fill at the next bar's open."""
        close = ctx.price()                      # last-price close of the bar just closed
        high = ctx.feature("channel_high")
        low = ctx.feature("channel_low")
        if math.isnan(high) or math.isnan(low):
            return                               # not enough history yet
        held = ctx.position().qty                # signed base units, 0.0 when flat
        if held == 0.0 and close > high:
            # A bracket: once the entry fills, a reduce-only stop rests stop_pct below the
            # fill price and a take-profit take_pct above it; one filling cancels the other
            # (OCO). Absolute prices: stop_price= / take_profit_price=; a trailing stop:
            # trail=0.03. The exits go when the position is closed otherwise.
            ctx.target_exposure(self.exposure, stop=self.stop_pct, take_profit=self.take_pct,
                                tag="breakout")
        elif held > 0.0 and close < low:
            ctx.close(tag="channel exit")        # cancels the bracket's exits too

    def on_fill(self, ctx, event) -> None:
        """Called after each fill with an OrderFilled event (backtest.strategy_events):
        event.side, .qty, .price, .position_qty, .order_type, .exit_reason (signal, stop,
        take_profit, trailing_stop), .tag."""

    def on_liquidation(self, ctx, event) -> None:
        """The position was liquidated (a PositionLiquidated event: the liquidations row);
        the engine already cancelled its orders."""
''')


def render(*, class_name: str, name: str, file: str) -> str:
    """The template filled in for one strategy."""
    return TEMPLATE.substitute(class_name=class_name, name=name, file=file)
