"""The broker: pre-trade checks (recorded rejections, never exceptions) and order fills.

Checks, in order: the venue's open-order limits (resting orders per symbol, and stop /
take-profit orders among them), lot size, reduce-only direction, min notional, the tier
leverage cap of the resulting notional, and initial margin against the available balance
(``cross wallet + cross unrealized PnL - cross initial margin``). Checks run when an order
is submitted (at the bar close price) and again when it fills (at the fill price).
"""
from __future__ import annotations

import math

from backtest.brackets import attach_exits
from backtest.orders import Order
from backtest.positions import Position
from backtest.slippage import FixedBps, NoSlippage, SqrtImpact
from backtest.state import RunState

#: Slippage models whose ``impact`` is a pure function of its arguments: a slipped price
#: computed for a pre-trade check can be reused by the fill with the same arguments.
_PURE_SLIPPAGE = (NoSlippage, FixedBps, SqrtImpact)

__all__ = ["Broker"]


class Broker:
    """Accepts, rejects and fills strategy orders against a :class:`RunState`."""

    def __init__(self, state: RunState) -> None:
        self.st = state

    # ------------------------------------------------------------------ submission
    def submit(self, order: Order, ref_price: float) -> Order:
        """Check an order at submission and book it, or record its rejection."""
        st = self.st
        if order.qty is None:  # sized when it fills: nothing to check yet (see _check)
            st.book.add(order)
            return order
        order.qty = st.round_qty(order.sym, order.qty)
        problem = self._order_limit(order) if order.resting else None
        problem = problem or self._check(order, order.qty, ref_price, order.position_side)
        if problem:
            self.reject(order, *problem, record=True)
        else:
            st.book.add(order)
        return order

    def reject(self, order: Order, reason: str, message: str, *, record: bool = False) -> None:
        """Mark an order rejected and record the reason.

        ``record``: the order was refused before it reached the book (at submission), so the
        book records it now; an order rejected at its fill is already in the book.
        """
        order.status, order.ts_done = "rejected", self.st.now
        if record:
            self.st.book.record(order)
        price = order.price if order.type == "limit" else order.stop_price
        self.st.journal.rejection((self.st.now, order.order_id, order.symbol,
                                   "buy" if order.side > 0 else "sell", order.type,
                                   order.qty if order.qty is not None else math.nan, price,
                                   reason, message))

    def _order_limit(self, order: Order) -> tuple[str, str] | None:
        """The venue's cap on resting orders per symbol (and on stop / take-profit ones)."""
        venue = self.st.venue
        resting = self.st.book.resting[order.sym]
        cap = venue.max_open_orders
        if cap is not None and len(resting) >= cap:
            return ("max_open_orders", f"{order.symbol}: {len(resting)} orders already rest on the "
                    f"book and the venue allows {cap} per symbol; cancel some before placing another")
        cap = venue.max_stop_orders
        if cap is not None and order.type != "limit":
            stops = sum(1 for o in resting if o.type != "limit")
            if stops >= cap:
                return ("max_stop_orders", f"{order.symbol}: {stops} stop / take-profit orders "
                        f"already rest and the venue allows {cap} per symbol; cancel one first")
        return None

    def _slot(self, order: Order) -> Position:
        return self.st.account.position(order.sym, order.position_side)

    def _check(self, order: Order, qty: float | None, price: float, pside: str) -> tuple[str, str] | None:
        if qty is None:  # sized when it fills
            return None
        st = self.st
        market = st.markets[order.sym]
        pos = st.account.position(order.sym, pside)
        if qty <= 0 or (st.rounding and qty < market.min_qty - 1e-12):
            return ("lot_size", f"{order.symbol}: quantity {qty} is below the minimum "
                    f"{market.min_qty} (lot {market.lot_size}); increase the size")
        reducing = pos.qty != 0.0 and (pos.qty > 0) != (order.side > 0)
        if pside == "long" and order.side < 0 or pside == "short" and order.side > 0:
            reducing = True
        if order.reduce_only or order.type == "close_position":
            if not reducing or pos.qty == 0.0:
                return ("reduce_only_increase", f"{order.symbol}: reduce-only "
                        f"{'buy' if order.side > 0 else 'sell'} of {qty} would open or increase the "
                        f"{pside} position (current qty {pos.qty}); send a normal order instead")
            return None
        increase = qty - (abs(pos.qty) if reducing else 0.0)
        if increase <= 1e-12:
            return None
        if reducing and pside != "both":
            return ("reduce_only_increase", f"{order.symbol}: a {pside} leg cannot be reversed "
                    "by one order in hedge mode; close it and open the other leg")
        return self._check_increase(order.sym, order.symbol, increase, price, pos, order.reduce_only,
                                    side=order.side)

    def _check_increase(self, sym: int, symbol: str, increase: float, price: float,
                        pos: Position, reduce_only: bool, *, side: int) -> tuple[str, str] | None:
        st = self.st
        refusal = st.venue.short_refusal
        if refusal is not None and side < 0:  # the increase opens or grows a short
            return ("short_unsupported", f"{symbol}: a sell of {increase:g} would open or increase a "
                    f"short (current qty {pos.qty:g}); {refusal}")
        contract = st.contracts[sym]
        notional = contract.notional(increase, price)
        asset = contract.margin_asset
        if st.rounding and notional < st.markets[sym].min_notional:
            return ("min_notional", f"{symbol}: order notional {notional:,.2f} is below the "
                    f"minimum {st.markets[sym].min_notional:,.2f} {asset}; increase the size")
        leverage = st.account.leverage[sym]
        held = pos.qty
        size = abs(held) + increase if (held > 0) == (increase > 0) or held == 0 else increase
        total = contract.notional(size, price) if size != increase else notional
        cap = st.margin.max_leverage(sym, size, price, total)
        if leverage > cap + 1e-12:
            return ("leverage_cap", f"{symbol}: leverage {leverage:g}x exceeds the tier cap "
                    f"{cap:g}x for a position notional of {total:,.2f} {asset}; lower the "
                    "leverage or the size")
        needed = notional / leverage + notional * st.fee_rates[sym][1]
        available = self.available()
        if needed > available + 1e-9:
            return ("insufficient_margin", f"{symbol}: needs {needed:,.2f} {asset} initial margin "
                    f"and fee, available {available:,.2f} {asset}; reduce the size or the leverage")
        return None

    def available(self) -> float:
        """Available balance: cross wallet + cross UPNL - cross initial margin, margin asset."""
        st = self.st
        acct = st.account
        positions = acct.positions
        isolated = 0  # Account.cross_wallet, inlined: the same sequential sum
        for pos in positions:
            if pos.qty != 0.0 and pos.margin_mode == "isolated":
                isolated += pos.margin
        value = acct.wallet - isolated
        if acct.ledger is not None:  # Multi-Assets Mode: the collateral's haircut value
            value += acct.ledger.value
        for pos in positions:
            if pos.qty != 0.0 and pos.margin_mode == "cross":
                mark = st.marks[pos.sym]
                value += pos.upnl(mark) - pos.contract.notional(pos.qty, mark) / pos.leverage
        return value

    # ------------------------------------------------------------------ fills
    def fill_pending(self, bar_high: list[float], bar_low: list[float], bar_vol: list[float]) -> bool:
        """Fill every pending (market-type) order at the current last price; True if any."""
        st = self.st
        pending = st.book.pending  # the scan holds this list: emptied in place
        orders = pending[:]
        pending.clear()
        lasts = st.lasts
        for order in orders:
            s = order.sym
            if order.target is not None:  # execute()'s first branch, without the detour
                self._execute_target(order, lasts[s], bar_high[s], bar_low[s], bar_vol[s])
            else:
                self.execute(order, lasts[s], "taker", bar_high[s], bar_low[s], bar_vol[s])
        return bool(orders)

    def execute(self, order: Order, ref: float, liquidity: str, high: float, low: float,
                volume: float) -> None:
        """Fill an order at reference price ``ref`` (slippage applies to taker fills)."""
        st = self.st
        acct = st.account
        sym = order.sym
        if order.target is not None:
            self._execute_target(order, ref, high, low, volume)
            return
        if order.type == "close_position":
            legs = [order.position_side] if order.position_side != "both" or not acct.hedge \
                else ["long", "short"]
            done = False
            for pside in legs:
                pos = acct.position(sym, pside)
                if pos.qty != 0.0:
                    self._fill(order, pos, -pos.qty, ref, liquidity, high, low, volume, "reduce")
                    done = True
            self._finish(order, "filled" if done else "cancelled")
            return
        pos = acct.position(sym, order.position_side)
        qty = order.qty or 0.0
        signed = qty * order.side
        reason = "reduce" if order.reduce_only else "strategy"
        if order.reduce_only:
            if pos.qty == 0.0 or (pos.qty > 0) == (signed > 0):
                self.reject(order, "reduce_only_increase", f"{order.symbol}: reduce-only order "
                            f"found no opposite position to reduce at fill (qty {pos.qty})")
                return
            signed = math.copysign(min(abs(signed), abs(pos.qty)), signed)
            self._fill(order, pos, signed, ref, liquidity, high, low, volume, reason)
            self._finish(order, "filled")
            return
        if pos.qty != 0.0 and (pos.qty > 0) != (signed > 0):
            close = math.copysign(min(abs(signed), abs(pos.qty)), signed)
            rest = signed - close
            if abs(rest) > 1e-12:
                problem = self._check_increase(sym, order.symbol, abs(rest),
                                               self._slipped(order.side, sym, ref, abs(rest), liquidity,
                                                             high, low, volume), pos, False, side=order.side)
                if problem:
                    self.reject(order, *problem)
                    return
            self._fill(order, pos, close, ref, liquidity, high, low, volume, reason)
            if abs(rest) > 1e-12:
                self._fill(order, pos, rest, ref, liquidity, high, low, volume, reason)
        else:
            price = self._slipped(order.side, sym, ref, abs(signed), liquidity, high, low, volume)
            problem = self._check_increase(sym, order.symbol, abs(signed), price, pos, False,
                                           side=order.side)
            if problem:
                self.reject(order, *problem)
                return
            self._fill(order, pos, signed, ref, liquidity, high, low, volume, reason)
        self._finish(order, "filled")

    def _execute_target(self, order: Order, ref: float, high: float, low: float, volume: float) -> None:
        """Bring the symbol's exposure to ``order.target`` x sizing basis (close first on a flip)."""
        st = self.st
        acct = st.account
        sym = order.sym
        target = order.target
        want = (target > 0) - (target < 0)
        legs = acct.sym_legs[sym]  # one-way: (both,); hedge: (long, short)
        # a flip's close and open are one fill sequence: both sell (or both buy) at the same
        # reference, so with a constant impact (FixedBps / NoSlippage) both fills take the one
        # slipped price computed here (the same call _fill and the check would make)
        impact = st.taker_impact
        slipped = None
        for pos in legs:  # close what points the other way (or everything for a flat target)
            held = pos.qty
            if held != 0.0 and ((held > 0) - (held < 0)) != want:
                side = 1 if held < 0 else -1
                if impact is not None:
                    slipped = st.slipped_price(sym, side, ref, impact)
                self._fill(order, pos, -held, ref, "taker", high, low, volume, "strategy", slipped)
        if want == 0:
            self._finish(order, "filled" if order.filled_qty else "cancelled")
            return
        pos = legs[0] if want > 0 or not acct.hedge else legs[1]
        basis = acct.wallet if st.config.sizing_basis == "wallet" else acct.equity(st.marks)
        desired = st.contracts[sym].qty_for_notional(abs(target) * basis, ref)
        held = pos.qty
        delta = desired - abs(held)
        if held != 0.0 and order.tolerance is None:
            delta = 0.0
        elif held != 0.0 and abs(delta) <= (order.tolerance or 0.0) * desired:
            delta = 0.0
        qty = st.round_qty(sym, abs(delta)) if st.rounding else abs(delta)
        if qty > 0:
            side = want if delta > 0 else -want
            if delta > 0:
                # (side == want here, the side of the legs just closed)
                price = slipped if slipped is not None else \
                    self._slipped(side, sym, ref, qty, "taker", high, low, volume)
                problem = self._check_increase(sym, order.symbol, qty, price, pos, False, side=side)
                if problem is None and st.rounding:
                    problem = self._check_lot(sym, order.symbol, qty)
                if problem:
                    self.reject(order, *problem)
                    return
                if type(st.slippage) not in _PURE_SLIPPAGE:
                    price = None  # a custom model is asked again at the fill, as always
            else:
                price = None
            self._fill(order, pos, side * qty, ref, "taker", high, low, volume, "strategy", price)
        filled = order.filled_qty
        if order.qty is None:
            order.qty = filled
        # _finish, inline (the order's side and quantity are set by now unless nothing filled)
        order.status, order.ts_done = "filled" if filled else "cancelled", st.now
        if order.side == 0:
            order.side = 1
        if order.bracket is not None and order.opened_qty:
            attach_exits(self, order)

    def _check_lot(self, sym: int, symbol: str, qty: float) -> tuple[str, str] | None:
        market = self.st.markets[sym]
        if self.st.rounding and qty < market.min_qty - 1e-12:
            return ("lot_size", f"{symbol}: target size {qty} is below the minimum {market.min_qty}")
        return None

    def _finish(self, order: Order, status: str) -> None:
        order.status, order.ts_done = status, self.st.now
        if order.side == 0:
            order.side = 1
        if order.qty is None:
            order.qty = order.filled_qty
        if status == "filled":
            if order.group is not None:  # one exit of a bracket filled: the others go (OCO)
                self.st.book.cancel_group(order, self.st.now)
            if order.bracket is not None and order.opened_qty:
                attach_exits(self, order)

    def _slipped(self, side: int, sym: int, ref: float, qty: float, liquidity: str,
                 high: float, low: float, volume: float) -> float:
        if liquidity != "taker":
            return ref
        st = self.st
        impact = st.taker_impact
        if impact is None:
            impact = st.slippage.impact(qty=qty, price=ref, bar_high=high, bar_low=low,
                                        bar_volume=volume, forced=False)
        return st.slipped_price(sym, side, ref, impact)

    def _fill(self, order: Order, pos: Position, signed: float, ref: float, liquidity: str,
              high: float, low: float, volume: float, reason: str,
              slipped: float | None = None) -> None:
        """Apply one fill to ``pos`` and the wallet; record it.

        ``slipped``: the taker fill price when already computed with the same arguments (by
        the pre-trade check, pure slippage models only; or once for a flip's two fills, a
        constant impact only).
        """
        st = self.st
        acct = st.account
        sym = pos.sym
        side = 1 if signed > 0 else -1
        qty = abs(signed)
        if liquidity == "taker":
            price = slipped if slipped is not None else \
                self._slipped(side, sym, ref, qty, liquidity, high, low, volume)
            rate = st.fee_rates[sym][1]
        else:
            price = ref
            rate = st.fee_rates[sym][0 if liquidity == "maker" else 1]
        contract = pos.contract
        notional = contract.notional(qty, price)  # the fee's and the isolated margin's base
        fee = notional * rate
        slip = abs(price - ref)
        slip_cost = contract.price_move_value(qty, ref, price)
        before = pos.qty
        increasing = before == 0.0 or (before > 0) == (signed > 0)
        if increasing:
            pos.leverage = acct.leverage[sym]
            pos.margin_mode = acct.margin_mode[sym]
        now = st.now
        realized = pos.apply_fill(signed, price, now)
        after = pos.qty
        if pos.margin_mode == "isolated":
            if increasing:
                pos.margin += notional / pos.leverage
            elif after == 0.0:
                pos.margin = 0.0
            else:
                pos.margin *= abs(after) / abs(before)
        acct.wallet += realized - fee
        pos.trade_fees += fee
        journal = st.journal
        journal.fees += fee
        journal.slippage += slip_cost
        order.filled_qty += qty
        order.fill_price = price
        if increasing:
            order.opened_qty += qty
        if order.side == 0:
            order.side = side
        journal.fill_rows.append((now, order.order_id, pos.symbol, "buy" if side > 0 else "sell", qty,
                                  price, ref, (slip / ref) * 1e4 if ref else 0.0, slip_cost,
                                  fee, liquidity, realized, after, reason))
        if after == 0.0:
            journal.trade_rows.append(pos.close_trade(now, order.exit_reason))
            if st.book.protected:  # the position's other bracket exits go with it
                st.book.cancel_exits(pos.key, now, order)
        if acct.wallet < 0.0:  # a loss beyond the wallet: the venue resets it, the fund pays
            acct.cover()
        acct.changed(sym)
        hooks = st.hooks
        if hooks is not None and hooks.on_fill is not None:
            hooks.fill(order, pos, qty, price, side)
