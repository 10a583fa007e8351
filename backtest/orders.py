"""Orders and the book of open ones (past-tense statuses: filled, cancelled, rejected).

Bracket exits (``ctx.buy(qty, stop=, take_profit=, trail=)``, docs/strategy_api.md "Bracket
orders") are ordinary reduce-only ``stop_market`` / ``take_profit`` orders created when their
entry fills; the orders of one bracket share a ``group`` list (one fills: the others are
cancelled, OCO) and name the position they protect (``parent``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["EXIT_REASONS", "ORDER_TYPES", "Bracket", "Order", "OrderBook"]

#: Order types as written to orders.parquet.
ORDER_TYPES = ("market", "limit", "stop_market", "take_profit", "close_position", "liquidation")
#: Types that wait on the book for a price.
_RESTING_TYPES = ("limit", "stop_market", "take_profit")
#: ``trades.exit_reason`` codes, in the order reports list them (CONTRACTS §6).
EXIT_REASONS = ("signal", "stop", "take_profit", "trailing_stop", "liquidation", "adl", "end_of_data")
#: The exit reason an order's type writes when it closes a position (others: ``signal``).
_EXIT_BY_TYPE = {"stop_market": "stop", "take_profit": "take_profit"}


@dataclass(frozen=True)
class Bracket:
    """The exits an entry attaches once it fills (each None / nan when not asked for).

    Attributes
    ----------
    stop, take_profit, trail : float or None
        Distances from the entry's fill price, fractions of it (``0.05`` = 5 %).
    stop_price, take_profit_price : float or None
        Absolute trigger prices, quote currency (last price).
    """

    stop: float | None = None
    take_profit: float | None = None
    trail: float | None = None
    stop_price: float | None = None
    take_profit_price: float | None = None

    def levels(self, side: int, fill: float) -> tuple[float | None, float | None]:
        """(stop, take-profit) trigger prices of a position of ``side`` (+1 long) entered at ``fill``."""
        stop = self.stop_price if self.stop is None else fill * (1.0 - side * self.stop)
        take = self.take_profit_price if self.take_profit is None else fill * (1.0 + side * self.take_profit)
        return stop, take


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
    bracket : Bracket or None
        Exits to attach when this (entry) order fills.
    group : list of Order or None
        The exits of one bracket (shared list): when one fills the others are cancelled.
    parent : int
        Key of the position a bracket exit protects (-1 for other orders).
    exit_reason : str
        The ``trades.exit_reason`` this order writes when it closes a position.
    trail : float
        Trailing distance, fraction of the best price since entry (nan: not trailing).
    best : float
        Best last price since entry of a trailing stop (highest for a long), quote currency.
    fill_price : float
        Price of this order's latest fill (nan before), quote currency.
    opened_qty : float
        Quantity this order opened or added (not the part that reduced), base units.
    """

    __slots__ = ("order_id", "sym", "symbol", "side", "type", "qty", "price", "stop_price",
                 "reduce_only", "position_side", "status", "ts_created", "ts_done", "tag",
                 "target", "tolerance", "trigger", "trigger_below", "filled_qty", "bracket",
                 "group", "parent", "exit_reason", "trail", "best", "fill_price", "opened_qty")

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
        self.bracket: Bracket | None = None
        self.group: list[Order] | None = None
        self.parent = -1
        self.exit_reason = _EXIT_BY_TYPE.get(type_, "signal")
        self.trail = math.nan
        self.best = math.nan
        self.fill_price = math.nan
        self.opened_qty = 0.0
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

    @property
    def gate_level(self) -> float:
        """The level the gate compares with the last price: the trigger, or for a trailing
        stop a level every candle passes (its trigger ratchets after each walked candle, so
        every candle is walked while it rests)."""
        if self.trail == self.trail:
            return math.inf if self.trigger_below else -math.inf
        return self.trigger

    def ratchet(self, best: float) -> None:
        """Move a trailing stop after a walked candle whose best price was ``best``.

        The trigger is ``best x (1 - trail)`` for a long's sell stop (``x (1 + trail)`` for
        a short's buy stop) and only moves in the position's favour.
        """
        if self.side < 0:
            self.best = max(self.best, best)
            self.trigger = self.stop_price = max(self.trigger, self.best * (1.0 - self.trail))
        else:
            self.best = min(self.best, best)
            self.trigger = self.stop_price = min(self.trigger, self.best * (1.0 + self.trail))

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

    __slots__ = ("all_orders", "pending", "resting", "last_below", "last_above", "_next_id", "gen",
                 "protected")

    def __init__(self, n_symbols: int, gen: list[int] | None = None) -> None:
        #: Change counter shared with the run state (the bar loop reloads its gates on change).
        self.gen = gen if gen is not None else [0]
        self.all_orders: list[Order] = []
        self.pending: list[Order] = []
        self.resting: list[list[Order]] = [[] for _ in range(n_symbols)]
        self.last_below = [-math.inf] * n_symbols
        self.last_above = [math.inf] * n_symbols
        self._next_id = 1
        #: Keys of positions with bracket exits resting (a close cancels them).
        self.protected: set[int] = set()

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
                self.last_below[sym] = max(self.last_below[sym], order.gate_level)
            else:
                self.last_above[sym] = min(self.last_above[sym], order.gate_level)
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
        if order.gate_level == held:
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

    def cancel_exits(self, key: int, ts: int, keep: Order | None = None) -> None:
        """Cancel the bracket exits protecting position ``key`` (it closed), except ``keep``."""
        if key not in self.protected:
            return
        self.protected.discard(key)
        for book in self.resting:
            for order in [o for o in book if o.parent == key and o is not keep]:
                order.status, order.ts_done = "cancelled", ts
                self.remove(order)

    def cancel_group(self, order: Order, ts: int) -> None:
        """One exit of a bracket filled: cancel its siblings (OCO)."""
        for other in order.group or ():
            if other is not order and other.status == "open":
                other.status, other.ts_done = "cancelled", ts
                self.remove(other)

    def refresh(self, sym: int) -> None:
        """Recompute the last-price gating thresholds of ``sym``."""
        below, above = -math.inf, math.inf
        for order in self.resting[sym]:
            if order.trigger_below:
                below = max(below, order.gate_level)
            else:
                above = min(above, order.gate_level)
        self.last_below[sym] = below
        self.last_above[sym] = above
        self.gen[0] += 1
