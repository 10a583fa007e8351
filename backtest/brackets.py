"""Bracket orders: the exits an entry attaches (docs/strategy_api.md "Bracket orders").

One home of the rules: :func:`bracket_of` checks what ``ctx.buy`` / ``sell`` /
``target_exposure`` were given (fractions of the fill price in (0, 1), or absolute prices)
and :func:`attach_exits` rests the reduce-only exits when the entry fills. The exits are
ordinary ``stop_market`` / ``take_profit`` orders sharing a ``group`` (OCO, cancelled by
:meth:`OrderBook.cancel_group`) and naming the position they protect (``parent``:
:meth:`OrderBook.cancel_exits` when it closes otherwise); a trailing stop ratchets in the
intrabar walk (:mod:`backtest.intrabar`).
"""
from __future__ import annotations

import math
from typing import Any

from backtest.errors import StrategyError, did_you_mean
from backtest.orders import Bracket, Order

__all__ = ["Bracket", "attach_exits", "bracket_of"]


#: Keywords of ``buy`` / ``sell`` / ``target_exposure`` (for did-you-mean messages).
_ORDER_KEYWORDS = ("symbol", "price", "trigger", "stop", "take_profit", "trail", "stop_price",
                   "take_profit_price", "reduce_only", "position_side", "tag", "tolerance")


def bracket_of(method: str, side: int, reduce_only: bool, stop: float | None,
               take_profit: float | None, trail: float | None, stop_price: float | None,
               take_profit_price: float | None, unknown: dict[str, Any]) -> Bracket | None:
    """The bracket an order asks for (None when none), its arguments checked.

    Raises
    ------
    StrategyError
        An unknown keyword (with a suggestion), a fraction outside (0, 1) (with the absolute
        keyword to use instead), both forms of one exit, brackets on a reduce-only or flat order.
    """
    if unknown:
        key = next(iter(unknown))
        raise StrategyError(f"{method}: unknown keyword {key!r}{did_you_mean(key, _ORDER_KEYWORDS)}; "
                            f"keywords are {', '.join(_ORDER_KEYWORDS)}")
    given = {k: v for k, v in (("stop", stop), ("take_profit", take_profit), ("trail", trail),
                                ("stop_price", stop_price), ("take_profit_price", take_profit_price))
             if v is not None}
    if not given:
        return None
    if reduce_only:
        raise StrategyError(f"{method}: {', '.join(given)} attach exits to an entry, and a "
                            "reduce-only order opens nothing; for a stop on the held position pass "
                            "trigger=PRICE with reduce_only=True")
    if side == 0:
        raise StrategyError(f"{method}: a flat target opens nothing to protect; drop "
                            f"{', '.join(given)}")
    for key, absolute in (("stop", "stop_price"), ("take_profit", "take_profit_price"), ("trail", None)):
        value = given.get(key)
        if value is None:
            continue
        if not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
            hint = f"; for an absolute price pass {absolute}={value!r}" if absolute else ""
            raise StrategyError(f"{method}: {key}= is a fraction of the entry's fill price in (0, 1) "
                                f"(0.05 = 5 %), found {value!r}{hint}")
        if absolute in given:
            raise StrategyError(f"{method}: pass {key}= (a fraction of the fill price) or "
                                f"{absolute}= (a price), not both")
    for key in ("stop_price", "take_profit_price"):
        value = given.get(key)
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise StrategyError(f"{method}: {key}= is a trigger price > 0 (quote currency), found {value!r}")
    return Bracket(**{k: float(v) for k, v in given.items()})


def attach_exits(broker: Any, entry: Order) -> None:
    """Rest the bracket exits of a filled ``entry`` (docs/strategy_api.md "Bracket orders").

    Reduce-only, sized to what the entry opened, on the position's leg; triggers from
    :meth:`Bracket.levels` at the entry's fill price (a trailing stop starts at
    ``fill x (1 -/+ trail)``). Each goes through ``Broker.submit`` (the venue's open-order
    limits; a refusal is a recorded rejection). An exit already through the last price is
    rejected (``would_trigger``), as the venue does. When the stop lies beyond the
    position's liquidation price the run records a warning: the liquidation comes first.
    """
    st = broker.st
    sym = entry.sym
    pos = st.account.position(sym, entry.position_side)
    if pos.qty == 0.0:
        return
    side = pos.side
    fill = entry.fill_price
    qty = min(entry.opened_qty, abs(pos.qty))
    bracket = entry.bracket
    stop, take = bracket.levels(side, fill)
    wanted = []
    if stop is not None:
        wanted.append(("stop_market", stop, "stop", math.nan))
    if take is not None:
        wanted.append(("take_profit", take, "take_profit", math.nan))
    if bracket.trail is not None:
        wanted.append(("stop_market", fill * (1.0 - side * bracket.trail), "trailing_stop", bracket.trail))
    group: list[Order] = []
    last = st.lasts[sym]
    for type_, level, reason, trail in wanted:
        if st.rounding:  # a trigger at the tick, rounded against the position (conservative)
            level = st.round_price(sym, level, -side)
        order = Order(st.book.next_id(), sym, entry.symbol, -side, type_, qty, stop_price=level,
                      reduce_only=True, position_side=pos.position_side, ts_created=st.now,
                      tag=entry.tag)
        order.parent, order.group, order.exit_reason = pos.key, group, reason
        order.trail, order.best = trail, fill
        if (last <= level) if order.trigger_below else (last >= level):
            broker.reject(order, "would_trigger", f"{entry.symbol}: the {reason.replace('_', '-')} "
                        f"exit at {level:g} is already through the last price {last:g}; "
                        f"place it beyond the fill price {fill:g}", record=True)
            continue
        broker.submit(order, last)
        if order.status == "open":
            group.append(order)
    if group:
        st.book.protected.add(pos.key)
    _warn_beyond_liquidation(st, pos, [o for o in group if o.type == "stop_market"])

def _warn_beyond_liquidation(st: Any, pos: Any, stops: list[Order]) -> None:
    """A run warning when a stop lies at or beyond the position's liquidation price."""
    if not stops:
        return
    st.margin.refresh(st.account, st.marks)  # the liquidation price of the new position
    lp = pos.liquidation_price
    if lp != lp:
        return
    long = pos.qty > 0
    for order in stops:
        if (order.trigger <= lp) if long else (order.trigger >= lp):
            st.warnings.append(
                f"{pos.symbol}: the {'long' if long else 'short'}'s stop at {order.trigger:,.6g} lies "
                f"{'below' if long else 'above'} its liquidation price {lp:,.6g} (mark): the position "
                "is liquidated before the stop can trigger; lower the leverage or tighten the stop")
