"""``hold``: constant-leverage long or short from the first bar."""
from __future__ import annotations

import numpy as np

from backtest.strategy import Param, SignalInputs, Strategy

# Part of the wallet kept free so lot rounding and entry slippage never push the opening
# order over the available margin.
_SIZING_RESERVE = 0.01


class Hold(Strategy):
    """Open a position on the first bar and hold it.

    Exposure is notional / wallet (the run's sizing basis), as everywhere: ``exposure=1`` at
    any leverage ``L`` is a notional of 1x the wallet, with margin ``wallet / L``. With
    ``exposure = None`` (the default) the position uses the whole wallet at the run's
    leverage: notional ``N = W (1 - reserve) / (1/L + taker_fee)``, so the initial margin
    ``N/L`` plus the opening fee ``N * taker_fee`` fit in the wallet ``W``. That is "the same
    strategy at 2, 5, 10, 20, 50x": effective leverage equals the configured one, in the
    event engine and in a sweep's array path alike (both trade :meth:`signal`). After a
    liquidation the position is re-opened at the next bar when ``reenter`` is true.
    """

    name = "hold"
    side = Param("long", choices=("long", "short"), doc="side of the position")
    exposure = Param(None, kind=float, gt=0.0, optional=True,
                     doc="notional / wallet; none = the whole wallet at the run's leverage")
    reenter = Param(False, doc="re-open after a liquidation")

    def signal(self, inputs: SignalInputs) -> np.ndarray:
        """The exposure on the first bar (every bar with ``reenter``), NaN elsewhere."""
        exposure = self.exposure
        if exposure is None:
            exposure = (1.0 - _SIZING_RESERVE) / (1.0 / inputs.leverage + inputs.taker_fee)
        out = np.full(inputs.close.size, np.nan)
        out[:None if self.reenter else 1] = exposure if self.side == "long" else -exposure
        return out
