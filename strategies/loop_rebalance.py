"""``loop_rebalance``: keep a leveraged long's loan-to-value inside a band."""
from __future__ import annotations

from backtest.errors import StrategyError
from backtest.strategy import Param, Strategy


class LoopRebalance(Strategy):
    """Open a long at ``entry_ltv`` and keep its loan-to-value between ``lower`` and ``upper``.

    The loan-to-value of a position is ``1 - equity / notional`` at the mark: on Aave
    (``--venue aave_v3``) the loop's debt over its collateral, on a perpetual the share of the
    notional not covered by the account's equity (``1 - 1/effective leverage``). At each bar's
    close, above ``upper`` it deleverages (sells collateral, which repays debt) and below
    ``lower`` it re-levers (borrows and buys), both back to ``target``; the orders fill at the
    next bar's open. The liquidation line sits at ``LTV = LT`` on Aave (82.5 % for WETH), so an
    ``upper`` below it leaves the bar-to-bar move the deleveraging must beat.

    Run it with ``margin_mode = "cross"``: the wallet is the account, so a sale repays debt.
    In isolated mode a sale withdraws its share of the isolated margin with the proceeds and
    leaves the loan-to-value where it was, so the strategy stops with an error there.

    No vectorized signal: the target depends on the account's own equity path, so it runs on
    the event engine.
    """

    name = "loop_rebalance"
    entry_ltv = Param(0.6, gt=0.0, lt=1.0, doc="loan-to-value the long opens at (debt / collateral)")
    lower = Param(0.3, ge=0.0, lt=1.0, doc="re-lever to target below this loan-to-value")
    upper = Param(0.65, gt=0.0, lt=1.0, doc="deleverage to target above this loan-to-value")
    target = Param(0.45, gt=0.0, lt=1.0, doc="loan-to-value a rebalance returns to")
    min_trade = Param(0.01, ge=0.0, doc="smallest rebalance, fraction of the notional (skips dust)")

    def conflict(self) -> str | None:
        """The band must be ordered: ``lower <= target <= upper`` and ``lower < upper``."""
        if not (self.lower <= self.target <= self.upper and self.lower < self.upper):
            return (f"expected lower <= target <= upper with lower < upper, found lower {self.lower}, "
                    f"target {self.target}, upper {self.upper}")
        return None

    def on_start(self, ctx) -> None:  # noqa: ANN001 - Context
        self._opened = False

    def on_bar(self, ctx) -> None:  # noqa: ANN001 - Context
        if ctx.open_orders():
            return
        pos = ctx.position()
        price = ctx.price(kind="mark")
        if pos.margin_mode != "cross":
            raise StrategyError(
                f"loop_rebalance: margin_mode is {pos.margin_mode!r}; expected 'cross' (the wallet is "
                "the account, so a sale repays debt). In isolated mode a sale leaves the loan-to-value "
                "unchanged; run with margin_mode = \"cross\"")
        equity = ctx.account.equity
        if pos.qty == 0.0:
            if not self._opened and equity > 0.0:  # once: after a liquidation it stays flat
                ctx.buy(equity / (1.0 - self.entry_ltv) / price, tag="loop-open")
                self._opened = True
            return
        notional = pos.qty * price
        ltv = 1.0 - equity / notional
        if self.lower <= ltv <= self.upper:
            return
        wanted = max(equity, 0.0) / (1.0 - self.target)
        change = wanted - notional
        if abs(change) < self.min_trade * notional:
            return
        if change < 0.0:
            ctx.sell(min(-change / price, pos.qty), tag="loop-deleverage")
        else:
            ctx.buy(change / price, tag="loop-relever")
