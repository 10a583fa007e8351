"""``dca``: averaging down into a loser, the classic liquidation trap."""
from __future__ import annotations

from backtest.strategy import Strategy


class Dca(Strategy):
    """Open a long (or short) of ``base_exposure`` x wallet, then add ``add_exposure`` x
    wallet each time the price has moved ``step`` (fraction) further against the last entry,
    at most ``max_adds`` times. Take profit: close when the price is ``take_profit`` beyond
    the average entry, then start again."""

    side = "long"
    base_exposure = 1.0
    add_exposure = 1.0
    step = 0.03
    max_adds = 5
    take_profit = 0.02

    def on_start(self, ctx) -> None:  # noqa: ANN001 - Context
        self._last_entry = None
        self._adds = 0

    def on_bar(self, ctx) -> None:  # noqa: ANN001 - Context
        sign = 1.0 if self.side == "long" else -1.0
        price = ctx.price()
        if ctx.open_orders():
            return
        pos = ctx.position()
        if pos.qty == 0.0:
            qty = self.base_exposure * ctx.account.wallet_balance / price
            (ctx.buy if sign > 0 else ctx.sell)(qty, tag="dca-base")
            self._last_entry, self._adds = price, 0
            return
        if sign * (price - pos.entry_price) / pos.entry_price >= self.take_profit:
            ctx.close(tag="dca-take-profit")
            self._last_entry = None
            return
        if self._adds < self.max_adds and sign * (self._last_entry - price) / self._last_entry >= self.step:
            qty = self.add_exposure * ctx.account.wallet_balance / price
            (ctx.buy if sign > 0 else ctx.sell)(qty, tag=f"dca-add-{self._adds + 1}")
            self._last_entry = price
            self._adds += 1
