"""``dca``: averaging down into a loser, the classic liquidation trap."""
from __future__ import annotations

from backtest.strategy import Param, Strategy


class Dca(Strategy):
    """Open a long (or short) of ``base_exposure`` x wallet, then add ``add_exposure`` x
    wallet each time the price has moved ``step`` (fraction) further against the last entry,
    at most ``max_adds`` times. Take profit: close when the price is ``take_profit`` beyond
    the average entry, then start again.

    No vectorized signal: its orders depend on its own fills (average entry, adds so far), so
    a sweep runs it on the event engine.
    """

    name = "dca"
    side = Param("long", choices=("long", "short"), doc="side of the position")
    base_exposure = Param(1.0, gt=0.0, doc="notional / wallet of the first order")
    add_exposure = Param(1.0, gt=0.0, doc="notional / wallet of each add")
    step = Param(0.03, gt=0.0, lt=1.0, doc="adverse move between adds, fraction of the last entry")
    max_adds = Param(5, ge=0, doc="adds at most")
    take_profit = Param(0.02, gt=0.0, doc="favourable move from the average entry that closes, fraction")

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
