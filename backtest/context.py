"""The strategy's view of the run: closed bars only, orders, positions, account.

``Context`` reveals data up to the current closed bar: ``feature(name, ago=k)`` reads bar
``i - k`` (k >= 0), ``bars()`` returns rows ``0..i``. Orders placed here fill no earlier
than the next tick (the next bar's open for market orders).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import polars as pl

from backtest.broker import Broker
from backtest.errors import StrategyError, did_you_mean
from backtest.brackets import Bracket, bracket_of
from backtest.orders import Order
from backtest.state import RunState

__all__ = ["AccountView", "Context", "Hooks", "PositionView"]


class PositionView(NamedTuple):
    """A read-only position snapshot at the bar close (prices in quote, money in the margin asset, qty signed)."""

    symbol: str
    position_side: str
    qty: float
    entry_price: float
    mark_price: float
    unrealized_pnl: float
    liquidation_price: float
    bankruptcy_price: float
    margin: float
    leverage: float
    margin_mode: str


class AccountView(NamedTuple):
    """A read-only account snapshot at the bar close (money in the margin asset: USDT, or the coin)."""

    wallet_balance: float
    unrealized_pnl: float
    equity: float
    available_balance: float
    insurance_fund: float
    bad_debt: float


class Context:
    """What ``on_bar`` may see and do. One instance per run; the engine moves its bar index."""

    __slots__ = ("_st", "_broker", "_i", "_synced", "_symbols", "_index", "_features", "_f0",
                 "_frames", "_pending_target", "_sides", "_default")

    def __init__(self, state: RunState, broker: Broker, features: list[dict[str, list]],
                 frames: list[pl.DataFrame]) -> None:
        self._st = state
        self._broker = broker
        self._i = -1
        self._synced = -2
        self._symbols = state.data.symbols
        self._index = {s: k for k, s in enumerate(self._symbols)}
        self._features = features
        self._f0 = features[0]
        self._frames = frames
        self._pending_target: list[Order | None] = [None] * len(self._symbols)
        self._sides = state.account.sides
        self._default = self._symbols[0]

    # ------------------------------------------------------------------ data
    def _sym(self, symbol: str | None) -> int:
        if symbol is None:
            return 0
        try:
            return self._index[symbol]
        except KeyError:
            raise StrategyError(f"unknown symbol {symbol!r}{did_you_mean(symbol, self._index)}; "
                                f"this run trades {', '.join(self._symbols)}") from None

    @property
    def bar_index(self) -> int:
        """Index of the current (just closed) bar, 0-based."""
        return self._i

    @property
    def ts(self) -> int:
        """Open time of the current bar, UTC ms."""
        return int(self._st.data.ts[self._i])

    @property
    def time(self) -> int:
        """Close time of the current bar (now), UTC ms."""
        return int(self._st.data.ts[self._i]) + self._st.data.interval_ms

    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbols of the run."""
        return self._symbols

    def feature(self, name: str, symbol: str | None = None, ago: int = 0) -> Any:
        """Value of feature/bar column ``name`` at the current bar (or ``ago`` bars back).

        Raises
        ------
        StrategyError
            Unknown column (with a suggestion) or ``ago`` < 0 (the future is not visible).
        """
        if symbol is None and not ago:
            try:
                return self._f0[name][self._i]
            except KeyError:
                pass
        return self._feature(name, symbol, ago)

    def _feature(self, name: str, symbol: str | None, ago: int) -> Any:
        columns = self._f0 if symbol is None else self._features[self._sym(symbol)]
        try:
            column = columns[name]
        except KeyError:
            raise StrategyError(f"unknown feature {name!r}{did_you_mean(name, columns)}; "
                                f"columns are {', '.join(columns)}") from None
        if ago < 0:
            raise StrategyError(f"feature {name!r}: ago={ago} would read the future; "
                                "only closed bars are visible (ago >= 0)")
        if ago > self._i:
            return math.nan
        return column[self._i - ago]

    def price(self, symbol: str | None = None, kind: str = "close") -> float:
        """Last-price ``open/high/low/close`` or ``mark`` (mark close) of the current bar."""
        bars = self._st.bars[self._sym(symbol)]
        array = bars.mark_close if kind == "mark" else getattr(bars, kind)
        return float(array[self._i])

    def bars(self, symbol: str | None = None) -> pl.DataFrame:
        """Bars and features of ``symbol`` up to and including the current bar."""
        return self._frames[self._sym(symbol)].slice(0, self._i + 1)

    def last_funding_rate(self, symbol: str | None = None) -> float:
        """Rate of the latest settlement at or before now (nan when none yet)."""
        from backtest.strategy import settled_rates

        st = self._st
        fund = st.data.funding[st.data.symbols[self._sym(symbol)]]
        return float(settled_rates(fund, self.time))

    def signal_inputs(self) -> Any:
        """The run's :class:`~backtest.strategy.SignalInputs` (what a vectorized signal reads;
        the array path builds the same from the market data and the run configuration)."""
        from backtest.strategy import SignalInputs

        return SignalInputs.of_run(self._st.data, self._st.config)

    # ------------------------------------------------------------------ state views
    def _sync(self) -> None:
        if self._synced != self._i:
            self._st.set_close_marks(self._i)
            self._st.bar = self._i
            self._synced = self._i

    def position(self, symbol: str | None = None, side: str | None = None) -> PositionView:
        """The position of ``symbol`` (``side`` long/short in hedge mode, else the net one)."""
        self._sync()
        st = self._st
        s = self._sym(symbol)
        pside = side or ("both" if not st.account.hedge else "long")
        pos = st.account.position(s, pside)
        mark = st.marks[s]
        return PositionView(pos.symbol, pos.position_side, pos.qty, pos.entry_price, mark,
                            pos.upnl(mark),
                            pos.liquidation_price, pos.bankruptcy_price, pos.margin,
                            pos.leverage if pos.qty else st.account.leverage[s], pos.margin_mode)

    @property
    def account(self) -> AccountView:
        """Wallet, unrealized PnL, equity, available balance at the bar close."""
        self._sync()
        st = self._st
        upnl = st.account.unrealized(st.marks)
        # equity counts the collateral's haircut value (0 without collateral: backtest.ledger)
        return AccountView(st.account.wallet, upnl, st.account.wallet + st.account.collateral + upnl,
                           self._broker.available(), st.account.insurance_fund, st.account.bad_debt)

    def fee_rates(self, symbol: str | None = None) -> tuple[float, float]:
        """(maker, taker) trading-fee rates in force for ``symbol``, fractions of notional."""
        return self._st.fee_rates[self._sym(symbol)]

    def liquidation_price(self, symbol: str | None = None, side: str | None = None) -> float:
        """Liquidation (mark) price of the position, nan when flat."""
        return self.position(symbol, side).liquidation_price

    # ------------------------------------------------------------------ orders
    def _order(self, side: int, qty: float | None, symbol: str | None, type_: str, *,
               price: float = math.nan, stop: float = math.nan, reduce_only: bool = False,
               position_side: str | None = None, tag: str = "", target: float | None = None,
               tolerance: float | None = None, bracket: Bracket | None = None) -> Order:
        if self._synced != self._i:
            self._sync()
        st = self._st
        s = 0 if symbol is None else self._sym(symbol)
        hedge = st.account.hedge
        pside = position_side or ("both" if not hedge else ("long" if side > 0 else "short"))
        if hedge and pside == "both":
            pside = "long" if side > 0 else "short"
        order = Order(st.book.next_id(), s, self._symbols[s], side, type_, qty, price=price,
                      stop_price=stop, reduce_only=reduce_only, position_side=pside,
                      ts_created=st.now, tag=tag, target=target, tolerance=tolerance)
        order.bracket = bracket
        if qty is not None and not (qty > 0 and math.isfinite(qty)):
            self._broker.reject(order, "lot_size", f"{order.symbol}: quantity must be a finite "
                                f"number > 0, found {qty}", record=True)
            return order
        return self._broker.submit(order, price if type_ == "limit" else st.lasts[s])

    def buy(self, qty: float, symbol: str | None = None, *, price: float | None = None,
            trigger: float | None = None, stop: float | None = None,
            take_profit: float | None = None, trail: float | None = None,
            stop_price: float | None = None, take_profit_price: float | None = None,
            reduce_only: bool = False, position_side: str | None = None, tag: str = "",
            **unknown: Any) -> Order:
        """Buy ``qty`` base units (contracts for inverse symbols) at the next tick.

        Parameters
        ----------
        qty : float
            Quantity, base units (> 0).
        symbol : str, optional
            Symbol (default: the run's first).
        price : float, optional
            Limit price, quote currency: the order rests until the last price reaches it.
        trigger : float, optional
            Trigger price (last price), quote currency: a market order sent when the last
            price reaches it, a stop-market when above the current price for a buy (below for
            a sell), else a take-profit-market (Binance's STOP_MARKET / TAKE_PROFIT_MARKET).
        stop, take_profit, trail : float, optional
            Bracket exits as fractions of the entry's fill price: ``stop=0.05`` rests a
            reduce-only stop 5 % below a long's fill (above a short's), ``take_profit=0.10``
            a take-profit 10 % above it, ``trail=0.03`` a stop 3 % below the best price since
            the entry (it ratchets after each walked candle). Each in (0, 1).
        stop_price, take_profit_price : float, optional
            Bracket exits at absolute trigger prices (last price), quote currency.
        reduce_only : bool
            Only reduce a position (no brackets then).
        position_side : str, optional
            ``long`` / ``short`` leg in hedge mode.
        tag : str
            Free text recorded with the order (and its bracket exits).

        Returns
        -------
        Order
            The order (``status`` ``rejected`` with a rejections row when refused).

        Notes
        -----
        The exits are created when the entry fills, sized to what it opened, and cancel each
        other (OCO); they are cancelled when the position closes otherwise. Unknown keywords
        raise :class:`~backtest.errors.StrategyError` with a suggestion.
        """
        return self._typed(1, qty, symbol, price, trigger, reduce_only, position_side, tag,
                           bracket_of("buy", 1, reduce_only, stop, take_profit, trail, stop_price,
                                      take_profit_price, unknown))

    def sell(self, qty: float, symbol: str | None = None, *, price: float | None = None,
             trigger: float | None = None, stop: float | None = None,
             take_profit: float | None = None, trail: float | None = None,
             stop_price: float | None = None, take_profit_price: float | None = None,
             reduce_only: bool = False, position_side: str | None = None, tag: str = "",
             **unknown: Any) -> Order:
        """Sell ``qty`` base units at the next tick (the keywords of :meth:`buy`; a short's
        ``stop`` lies above its fill, its ``take_profit`` below)."""
        return self._typed(-1, qty, symbol, price, trigger, reduce_only, position_side, tag,
                           bracket_of("sell", -1, reduce_only, stop, take_profit, trail, stop_price,
                                      take_profit_price, unknown))

    def _typed(self, side: int, qty: float, symbol: str | None, price: float | None,
               trigger: float | None, reduce_only: bool, position_side: str | None, tag: str,
               bracket: Bracket | None) -> Order:
        if price is not None and trigger is not None:
            raise StrategyError("order: pass price= (a limit order) or trigger= (a stop / "
                                f"take-profit market order), not both; found price={price}, "
                                f"trigger={trigger}")
        pside = self._hedge_side(side, position_side, reduce_only)
        if price is not None:
            order = self._order(side, qty, symbol, "limit", price=float(price), reduce_only=reduce_only,
                                position_side=pside, tag=tag, bracket=bracket)
        elif trigger is not None:
            last = self._st.lasts[self._sym(symbol)]
            kind = "stop_market" if (trigger > last if side > 0 else trigger < last) else "take_profit"
            order = self._order(side, qty, symbol, kind, stop=float(trigger), reduce_only=reduce_only,
                                position_side=pside, tag=tag, bracket=bracket)
        else:
            order = self._order(side, qty, symbol, "market", reduce_only=reduce_only,
                                position_side=pside, tag=tag, bracket=bracket)
        return order

    def _hedge_side(self, side: int, position_side: str | None, reduce_only: bool) -> str | None:
        if position_side is not None or not self._st.account.hedge:
            return position_side
        # hedge mode: a reduce-only sell reduces the long leg, a plain sell opens the short leg
        if reduce_only:
            return "long" if side < 0 else "short"
        return "long" if side > 0 else "short"

    def close(self, symbol: str | None = None, position_side: str | None = None, tag: str = "") -> Order | None:
        """Close the position (both legs in hedge mode unless ``position_side``) at the next tick."""
        st = self._st
        s = self._sym(symbol)
        self._cancel_target(s)
        if all(p.qty == 0.0 for p in st.account.legs(s)):
            return None
        if st.account.hedge and position_side is None:
            legs = [p for p in st.account.legs(s) if p.qty != 0.0]
            pside = "both" if len(legs) != 1 else legs[0].position_side
        else:
            pside = position_side or "both"
        net = self._sides[s]
        side = -net if net else 1
        if pside in ("long", "short"):
            side = -1 if pside == "long" else 1
        return self._order(side, None, symbol, "close_position", position_side=pside, tag=tag)

    def target_exposure(self, fraction: float, symbol: str | None = None, *,
                        tolerance: float | None = None, tag: str = "", stop: float | None = None,
                        take_profit: float | None = None, trail: float | None = None,
                        stop_price: float | None = None, take_profit_price: float | None = None,
                        **unknown: Any) -> Order | None:
        """Hold ``fraction`` x sizing basis (wallet or equity) of notional; sign = side.

        With ``tolerance=None`` an existing position on the same side is kept as is (no
        rebalancing); otherwise it is resized when off by more than ``tolerance`` (relative).
        A flip closes the old position, then opens the new one sized on the updated wallet.
        ``stop``, ``take_profit``, ``trail``, ``stop_price``, ``take_profit_price``: bracket
        exits attached to what the order opens or adds (see :meth:`buy`).
        Returns the order, or None when nothing needs doing.
        """
        if not math.isfinite(fraction):
            raise StrategyError(
                f"target_exposure: expected a finite fraction of the sizing basis (1.0 long 1x, -1.0 "
                f"short, 0.0 flat), found {fraction!r}; skip the call to keep what is held")
        bracket = None
        if unknown or stop is not None or take_profit is not None or trail is not None \
                or stop_price is not None or take_profit_price is not None:
            bracket = bracket_of("target_exposure", (fraction > 0) - (fraction < 0), False, stop,
                                 take_profit, trail, stop_price, take_profit_price, unknown)
        s = 0 if symbol is None else self._sym(symbol)
        want = (fraction > 0) - (fraction < 0)
        pending = self._pending_target[s]
        if pending is None and tolerance is None and self._sides[s] == want:
            return None  # the common case, kept first: already on that side
        if pending is not None:
            if pending.status == "open" and pending.target == fraction:
                return None
            self._cancel_target(s)
        if tolerance is None and self._sides[s] == want:
            return None
        side = want or -self._sides[s] or 1
        # what _order + Broker.submit do for a market order sized at the fill (qty None:
        # nothing to check at submission, no quantity to validate), without the generic
        # argument handling; this is the per-flip path of signal strategies
        if self._synced != self._i:
            self._sync()
        st = self._st
        pside = "both" if not st.account.hedge else ("long" if side > 0 else "short")
        order = Order(st.book.next_id(), s, self._symbols[s], side, "market", None,
                      position_side=pside, ts_created=st.now, tag=tag, target=float(fraction),
                      tolerance=tolerance)
        order.bracket = bracket
        st.book.add(order)
        self._pending_target[s] = order
        return order

    def _cancel_target(self, s: int) -> None:
        pending = self._pending_target[s]
        if pending is not None and pending.status == "open":
            pending.status = "cancelled"
            self._st.book.pending.remove(pending)
        self._pending_target[s] = None

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders not yet filled, cancelled or rejected (all symbols when ``symbol`` is None)."""
        book = self._st.book
        orders = [o for o in book.pending if o.status == "open"]
        for resting in book.resting:
            orders.extend(resting)
        if symbol is not None:
            s = self._sym(symbol)
            orders = [o for o in orders if o.sym == s]
        return orders

    def cancel(self, order: Order) -> bool:
        """Cancel an open order; True when it was open."""
        if order.status != "open":
            return False
        self._sync()
        order.status, order.ts_done = "cancelled", self._st.now
        if order in self._st.book.pending:
            self._st.book.pending.remove(order)
        self._st.book.remove(order)
        return True

    def cancel_all(self, symbol: str | None = None) -> int:
        """Cancel all open orders (of one symbol when given); return how many."""
        self._sync()
        return self._st.book.cancel_symbol(None if symbol is None else self._sym(symbol), self._st.now)

    def set_leverage(self, leverage: float, symbol: str | None = None) -> bool:
        """Change the symbol's leverage from now on; False (and a rejection row) when the tier
        cap of the current position forbids it."""
        self._sync()
        st = self._st
        s = self._sym(symbol)
        contract = st.contracts[s]
        size = sum(abs(p.qty) for p in st.account.legs(s))
        notional = contract.notional(size, st.marks[s])
        cap = st.margin.max_leverage(s, size, st.marks[s], notional)
        if not (leverage > 0 and leverage <= cap):
            st.journal.rejection((st.now, None, self._symbols[s], "", "set_leverage", math.nan,
                                  float(leverage), "leverage_cap",
                                  f"{self._symbols[s]}: leverage {leverage:g}x is not within (0, "
                                  f"{cap:g}x], the tier cap for a notional of {notional:,.2f} "
                                  f"{contract.margin_asset}"))
            return False
        st.account.leverage[s] = float(leverage)
        for pos in st.account.legs(s):
            if pos.qty != 0.0:
                pos.leverage = float(leverage)
        st.account.changed()
        st.refresh()
        return True


class Hooks:
    """Calls the strategy's optional hooks (only those it overrides) with the typed events of
    :mod:`backtest.strategy_events`."""

    def __init__(self, strategy: Any, ctx: Context) -> None:
        from backtest.strategy import Strategy

        self.ctx = ctx
        kind = type(strategy)
        #: The strategy's ``on_fill`` (None when not overridden: the broker then skips the call).
        self.on_fill = self._hook(strategy, kind, Strategy, "on_fill")
        self._funding = self._hook(strategy, kind, Strategy, "on_funding")
        self._liq = self._hook(strategy, kind, Strategy, "on_liquidation")
        self._adl = self._hook(strategy, kind, Strategy, "on_adl")

    @staticmethod
    def _hook(strategy: Any, kind: type, base: type, name: str) -> Callable | None:
        return getattr(strategy, name) if getattr(kind, name) is not getattr(base, name) else None

    def fill(self, order: Order, pos: Any, qty: float, price: float, side: int) -> None:
        """Forward a fill as :class:`~backtest.strategy_events.OrderFilled`."""
        if self.on_fill is not None:
            from backtest.strategy_events import OrderFilled

            self.on_fill(self.ctx, OrderFilled(self.ctx._st.now, order.order_id, pos.symbol,
                                               "buy" if side > 0 else "sell", qty, price, pos.qty,
                                               order.tag, order.type, order.exit_reason))

    def funding(self, symbol: str, rate: float, mark: float, qty: float, payment: float,
                ts: int) -> None:
        """Forward a funding payment as :class:`~backtest.strategy_events.FundingPaid`."""
        if self._funding is not None:
            from backtest.strategy_events import FundingPaid

            self._funding(self.ctx, FundingPaid(int(ts), symbol, rate, mark, qty, payment))

    def liquidation(self, rows: list) -> None:
        """Forward liquidation rows as :class:`~backtest.strategy_events.PositionLiquidated`."""
        if self._liq is not None:
            from backtest.strategy_events import PositionLiquidated

            for row in rows:
                self._liq(self.ctx, PositionLiquidated(*row))

    def adl(self, row: tuple) -> None:
        """Forward an ADL row as :class:`~backtest.strategy_events.PositionDeleveraged`."""
        if self._adl is not None:
            from backtest.strategy_events import PositionDeleveraged

            self._adl(self.ctx, PositionDeleveraged(*row))
