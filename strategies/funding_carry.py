"""``funding_carry``: collect funding: short when it is rich, long when negative, flat otherwise."""
from __future__ import annotations

from backtest.strategy import Strategy


class FundingCarry(Strategy):
    """Short ``exposure`` x wallet while the last settled funding rate is above ``rich_rate``
    (longs pay shorts), long while it is below ``cheap_rate`` (shorts pay longs), flat in
    between. Rates are per settlement interval (0.0001 = 0.01 %)."""

    rich_rate = 0.0003
    cheap_rate = -0.0001
    exposure = 1.0

    def on_bar(self, ctx) -> None:  # noqa: ANN001 - Context
        rate = ctx.last_funding_rate()
        if rate != rate:
            return
        if rate > self.rich_rate:
            ctx.target_exposure(-self.exposure)
        elif rate < self.cheap_rate:
            ctx.target_exposure(self.exposure)
        else:
            ctx.target_exposure(0.0)
