"""``hold``: constant-leverage long or short from the first bar."""
from __future__ import annotations

from backtest.errors import StrategyError
from backtest.strategy import Strategy


class Hold(Strategy):
    """Buy (or sell) ``exposure`` x wallet of notional on the first bar and hold it.

    After a liquidation the position is re-opened at the next bar when ``reenter`` is true.
    """

    side = "long"
    exposure = 1.0
    reenter = False

    def on_start(self, ctx) -> None:  # noqa: ANN001 - Context
        if self.side not in ("long", "short"):
            raise StrategyError(f"hold: side must be 'long' or 'short', found {self.side!r}")
        self._entered = False

    def on_bar(self, ctx) -> None:  # noqa: ANN001 - Context
        if not self._entered or self.reenter:
            ctx.target_exposure(self.exposure if self.side == "long" else -self.exposure)
            self._entered = True
