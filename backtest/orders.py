"""Orders and the book of open ones (past-tense statuses: filled, cancelled, rejected)."""
from __future__ import annotations

import math

__all__ = ["ORDER_TYPES", "Order", "OrderBook"]

#: Order types as written to orders.parquet.
ORDER_TYPES = ("market", "limit", "stop_market", "take_profit", "close_position", "liquidation")
#: Types that wait on the book for a price.
_RESTING_TYPES = ("limit", "stop_market", "take_profit")


class Order:
    """One order. ``qty`` is None for a target-exposure order, sized when it fills.

    Attributes
    ----------
    side : int
        +1 buy, -1 sell.
    type : str
        One of :data:`ORDER_TYPES`.
    price : float
        Limit price (nan for others), quote currency.
    stop_price : float
        Trigger price of stop_market / take_profit (nan for others), last price.
    target : float or None
        Target exposure (fraction of the sizing basis, signed) for sized-at-fill orders.
    trigger_below : bool
        For resting orders: True when the order triggers as the last price falls to
        ``trigger`` (buy limit, sell stop, buy take-profit).
    """

    __slots__ = ("order_id", "sym", "symbol", "side", "type", "qty", "price", "stop_price",
                 "reduce_only", "position_side", "status", "ts_created", "ts_done", "tag",
                 "target", "tolerance", "trigger", "trigger_below", "filled_qty")

    def __init__(self, order_id: int, sym: int, symbol: str, side: int, type_: str,
                 qty: float | None, *, price: float = math.nan, stop_price: float = math.nan,
                 reduce_only: bool = False, position_side: str = "both", ts_created: int = 0,
                 tag: str = "", target: float | None = None, tolerance: float | None = None) -> None:
        self.order_id = order_id
        self.sym = sym
        self.symbol = symbol
        self.side = side
        self.type = type_
        self.qty = qty
        self.price = price
        self.stop_price = stop_price
        self.reduce_only = reduce_only
        self.position_side = position_side
        self.status = "open"
        self.ts_created = ts_created
        self.ts_done = None
        self.tag = tag
        self.target = target
        self.tolerance = tolerance
        self.filled_qty = 0.0
        if type_ == "limit":
            self.trigger, self.trigger_below = price, side > 0
        elif type_ == "stop_market":
            self.trigger, self.trigger_below = stop_price, side < 0
        elif type_ == "take_profit":
            self.trigger, self.trigger_below = stop_price, side > 0
        else:
            self.trigger, self.trigger_below = math.nan, False

    @property
    def resting(self) -> bool:
        """True for orders that wait for a price (limit, stop_market, take_profit)."""
        return self.type in _RESTING_TYPES

    def row(self) -> tuple:
        """The orders.parquet row."""
        return (self.order_id, self.ts_created, self.ts_done, self.symbol,
                "buy" if self.side > 0 else "sell", self.type,
                self.qty if self.qty is not None else self.filled_qty, self.price, self.stop_price,
                self.reduce_only, self.status, self.tag)


class OrderBook:
    """Orders waiting to fill: market orders (next tick) and resting orders (by price).

    ``last_below[s]`` / ``last_above[s]`` are the gating thresholds of symbol ``s``: the
    highest "trigger when the last price falls to" price and the lowest "rises to" price.
    """

    __slots__ = ("all_orders", "pending", "resting", "last_below", "last_above", "_next_id", "gen")

    def __init__(self, n_symbols: int, gen: list[int] | None = None) -> None:
        #: Change counter shared with the run state (the bar loop reloads its gates on change).
        self.gen = gen if gen is not None else [0]
        self.all_orders: list[Order] = []
        self.pending: list[Order] = []
        self.resting: list[list[Order]] = [[] for _ in range(n_symbols)]
        self.last_below = [-math.inf] * n_symbols
        self.last_above = [math.inf] * n_symbols
        self._next_id = 1

    def next_id(self) -> int:
        """A new order id (1, 2, ...)."""
        order_id = self._next_id
        self._next_id += 1
        return order_id

    def add(self, order: Order) -> None:
        """Register an accepted order (market -> pending, others -> resting)."""
        self.all_orders.append(order)
        if order.type in _RESTING_TYPES:
            sym = order.sym
            self.resting[sym].append(order)
            # refresh(sym)'s fold with the new order as its last step (constant time: a
            # strategy may keep hundreds of orders resting)
            if order.trigger_below:
                self.last_below[sym] = max(self.last_below[sym], order.trigger)
            else:
                self.last_above[sym] = min(self.last_above[sym], order.trigger)
            self.gen[0] += 1
        else:
            self.pending.append(order)

    def record(self, order: Order) -> None:
        """Register an order that is already done (rejected, liquidation)."""
        self.all_orders.append(order)

    def remove(self, order: Order) -> None:
        """Take a resting order off the book (filled or cancelled)."""
        sym = order.sym
        try:
            self.resting[sym].remove(order)
        except ValueError:  # not resting (a market order, or already gone)
            return
        # only the order holding a threshold moves it (NaN triggers never hold one)
        held = self.last_below[sym] if order.trigger_below else self.last_above[sym]
        if order.trigger == held:
            self.refresh(sym)
        else:
            self.gen[0] += 1

    def cancel_symbol(self, sym: int | None, ts: int) -> int:
        """Cancel the open orders of one symbol (or all when ``sym`` is None); return count."""
        count = 0
        for s, book in enumerate(self.resting):
            if sym is not None and s != sym:
                continue
            for order in book:
                order.status, order.ts_done = "cancelled", ts
                count += 1
            book.clear()
            self.refresh(s)
        keep = []
        for order in self.pending:
            if sym is None or order.sym == sym:
                order.status, order.ts_done = "cancelled", ts
                count += 1
            else:
                keep.append(order)
        self.pending[:] = keep
        return count

    def refresh(self, sym: int) -> None:
        """Recompute the last-price gating thresholds of ``sym``."""
        below, above = -math.inf, math.inf
        for order in self.resting[sym]:
            if order.trigger_below:
                below = max(below, order.trigger)
            else:
                above = min(above, order.trigger)
        self.last_below[sym] = below
        self.last_above[sym] = above
        self.gen[0] += 1
