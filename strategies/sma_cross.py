"""``sma_cross``: the WORKLOAD strategy (always in the market on the SMA(50)/SMA(200) side)."""
from __future__ import annotations

import polars as pl

from backtest.strategy import Strategy


class SmaCross(Strategy):
    """Long while SMA(fast) > SMA(slow), short while below (equal: keep the side).

    Each new position is ``exposure`` x the wallet of notional; a flip closes the old side
    and opens the new one at the next bar's open; after a liquidation the strategy re-enters
    on its current side at the next open.
    """

    fast = 50
    slow = 200
    exposure = 1.0

    def features(self, bars: pl.DataFrame) -> pl.DataFrame:
        fast = pl.col("close").rolling_mean(self.fast)
        slow = pl.col("close").rolling_mean(self.slow)
        # +1 / -1 while fast is above / below slow; equal keeps the previous side
        side = pl.when(fast > slow).then(1.0).when(fast < slow).then(-1.0).otherwise(None)
        return bars.with_columns(sma_fast=fast, sma_slow=slow, side=side.forward_fill())

    def on_bar(self, ctx) -> None:  # noqa: ANN001 - Context
        side = ctx.feature("side")
        if side is not None:
            ctx.target_exposure(side * self.exposure)
