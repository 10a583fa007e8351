"""``hold``: constant-leverage long or short from the first bar."""
from __future__ import annotations

from backtest.errors import StrategyError
from backtest.strategy import Strategy

# Part of the wallet kept free so lot rounding and entry slippage never push the opening
# order over the available margin.
_SIZING_RESERVE = 0.01


class Hold(Strategy):
    """Open ``exposure`` x wallet of notional on the first bar and hold it.

    With ``exposure = None`` (the default) the position uses the whole wallet at the run's
    leverage: notional ``N = W (1 - reserve) / (1/L + taker_fee)``, so the initial margin
    ``N/L`` plus the opening fee ``N * taker_fee`` fit in the wallet ``W``. That is "the same
    strategy at 2, 5, 10, 20, 50x": effective leverage equals the configured one. After a
    liquidation the position is re-opened at the next bar when ``reenter`` is true.
    """

    side = "long"
    exposure: float | None = None
    reenter = False

    def on_start(self, ctx) -> None:  # noqa: ANN001 - Context
        if self.side not in ("long", "short"):
            raise StrategyError(f"hold: side must be 'long' or 'short', found {self.side!r}")
        if self.exposure is not None and not self.exposure > 0:
            raise StrategyError(f"hold: exposure must be > 0 (notional / wallet), found {self.exposure!r}")
        self._entered = False

    def on_bar(self, ctx) -> None:  # noqa: ANN001 - Context
        if not self._entered or self.reenter:
            exposure = self.exposure if self.exposure is not None else self._full_exposure(ctx)
            ctx.target_exposure(exposure if self.side == "long" else -exposure)
            self._entered = True

    @staticmethod
    def _full_exposure(ctx) -> float:  # noqa: ANN001 - Context
        leverage = ctx.position().leverage
        taker = ctx.fee_rates()[1]
        return (1.0 - _SIZING_RESERVE) / (1.0 / leverage + taker)
