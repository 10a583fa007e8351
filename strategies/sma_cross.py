"""``sma_cross``: the WORKLOAD strategy (always in the market on the SMA(50)/SMA(200) side)."""
from __future__ import annotations

import numpy as np
import polars as pl

from backtest.strategy import Param, SignalInputs, Strategy


class SmaCross(Strategy):
    """Long while SMA(fast) > SMA(slow), short while below (equal: keep the side).

    Each new position is ``exposure`` x the wallet of notional (leverage sets only its
    margin); a flip closes the old side and opens the new one at the next bar's open; after a
    liquidation the strategy re-enters on its current side at the next open.
    """

    name = "sma_cross"
    fast = Param(50, ge=1, doc="fast SMA window, bars")
    slow = Param(200, ge=1, doc="slow SMA window, bars")
    exposure = Param(1.0, gt=0.0, doc="notional / wallet of each position")

    def conflict(self) -> str | None:
        """A fast average no shorter than the slow one crosses nothing meaningful."""
        if self.fast >= self.slow:
            return f"fast ({self.fast}) must be shorter than slow ({self.slow}); e.g. fast=50 slow=200"
        return None

    def signal(self, inputs: SignalInputs) -> np.ndarray:
        """+exposure while SMA(fast) > SMA(slow), -exposure below; equal keeps the side."""
        fast = pl.col("close").rolling_mean(self.fast)
        slow = pl.col("close").rolling_mean(self.slow)
        side = pl.when(fast > slow).then(1.0).when(fast < slow).then(-1.0).otherwise(None)
        frame = pl.DataFrame({"close": inputs.close}).select(side.forward_fill().fill_null(np.nan))
        return frame.to_series().to_numpy() * self.exposure
