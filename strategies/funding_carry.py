"""``funding_carry``: collect funding: short when it is rich, long when negative, flat otherwise."""
from __future__ import annotations

import numpy as np

from backtest.strategy import Param, SignalInputs, Strategy


class FundingCarry(Strategy):
    """Short ``exposure`` x wallet while the last settled funding rate is above ``rich_rate``
    (longs pay shorts), long while it is below ``cheap_rate`` (shorts pay longs), flat in
    between. Rates are per settlement interval (0.0001 = 0.01 %); no position before the
    first settlement."""

    name = "funding_carry"
    rich_rate = Param(0.0003, doc="short above this funding rate, fraction per interval")
    cheap_rate = Param(-0.0001, doc="long below this funding rate, fraction per interval")
    exposure = Param(1.0, gt=0.0, doc="notional / wallet of each position")

    def conflict(self) -> str | None:
        """Overlapping bands would short and long the same rates."""
        if self.cheap_rate > self.rich_rate:
            return (f"cheap_rate ({self.cheap_rate:g}) must not exceed rich_rate ({self.rich_rate:g}); "
                    "e.g. cheap_rate=-0.0001 rich_rate=0.0003")
        return None

    def signal(self, inputs: SignalInputs) -> np.ndarray:
        """-exposure above ``rich_rate``, +exposure below ``cheap_rate``, 0 between, NaN before
        the first settlement."""
        rate = inputs.funding_rate
        with np.errstate(invalid="ignore"):
            out = np.where(rate > self.rich_rate, -self.exposure,
                           np.where(rate < self.cheap_rate, self.exposure, 0.0))
        out[np.isnan(rate)] = np.nan
        return out
