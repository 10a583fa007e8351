"""Liquidation: the Binance takeover of a margin pool, with slippage and the insurance fund.

Accounting (margin_rules.md §2.1 "What happens at liquidation"), for a pool with wallet
``W`` (the isolated wallet, or the cross wallet) closed at fill prices ``F_i``:

* the pool's open orders are cancelled (the symbol's for isolated, all for cross);
* ``E = W + sum_i s_i*Q_i*(F_i - EP_i)`` is what is left of the pool at the fill;
* clearance fee ``= min(rate * sum_i Q_i*F_i, max(E, 0))`` (capped by what is left);
* remainder policy ``insurance_fund`` (Binance): the trader loses ``W``; the fund receives
  ``E`` (the fee plus the remainder, or pays ``-E`` when the fill is worse than bankruptcy);
  policy ``trader``: the trader keeps ``E - fee`` when ``E >= 0``;
* ``bad_debt = max(0, -E)``; the wallet never goes below zero.

With ``liquidation_mode="tier_down"`` a position above the first bracket is first reduced to
the floor of its bracket by a forced order (clearance fee on the reduced amount only, its PnL
and fee settled against the pool); only if the pool is still below maintenance at that fill
does the takeover above follow (Binance "smart liquidation", margin_rules.md §2.1 step 2).
"""
from __future__ import annotations

import math

from backtest.orders import Order
from backtest.positions import Position
from backtest.state import RunState

__all__ = ["Liquidator", "Trigger"]


class Trigger:
    """Where and when a pool crossed its liquidation threshold."""

    __slots__ = ("positions", "ts", "marks", "lasts", "equity_before", "bankruptcy", "liq_price",
                 "tiers", "margin_ratio")

    def __init__(self, positions: list[Position], ts: int, marks: list[float], lasts: list[float],
                 equity_before: float, liq_price: list[float], bankruptcy: list[float],
                 tiers: list[tuple[float, int]]) -> None:
        self.positions = positions
        self.ts = ts
        self.marks = marks
        self.lasts = lasts
        self.equity_before = equity_before
        self.liq_price = liq_price
        self.bankruptcy = bankruptcy
        self.tiers = tiers
        self.margin_ratio = math.nan


class Liquidator:
    """Triggers and executes liquidations against a :class:`RunState`."""

    def __init__(self, state: RunState) -> None:
        self.st = state

    def trigger(self, positions: list[Position], ts: int, marks: list[float],
                lasts: list[float]) -> Trigger:
        """Freeze a breached pool at its trigger instant: cancel its orders, note its prices."""
        st = self.st
        cross = positions[0].margin_mode == "cross"
        st.book.cancel_symbol(None if cross else positions[0].sym, ts)
        equity = st.account.equity(marks)
        bankrupt = []
        tiers = []
        for pos in positions:
            if cross and st.margin.cross_multi:
                others = sum(p.upnl(marks[p.sym]) for p in positions if p is not pos)
                bankrupt.append(st.venue.bankruptcy_price(
                    wallet_balance=st.account.cross_wallet, side=1 if pos.qty > 0 else -1,
                    qty=abs(pos.qty), entry_price=pos.entry_price, other_unrealized=others))
            else:
                bankrupt.append(pos.bankruptcy_price)
            index = st.margin.tier_index(pos.sym, abs(pos.qty) * marks[pos.sym])
            tiers.append((st.margin.tables[pos.sym].tiers[index].mmr, index + 1))
        trig = Trigger(positions, ts, list(marks), list(lasts), equity,
                       [p.liquidation_price for p in positions], bankrupt, tiers)
        trig.margin_ratio = self._margin_ratio(positions, marks, cross)
        st.journal.note_margin_ratio(ts, trig.margin_ratio)
        return trig

    def _margin_ratio(self, positions: list[Position], marks: list[float], cross: bool) -> float:
        """Maintenance margin / margin balance of the breached pool at the trigger (>= 1)."""
        st = self.st
        maintenance = 0.0
        for pos in positions:
            maintenance += st.margin.maintenance(pos, marks[pos.sym])
        if cross:
            balance = st.account.cross_wallet + sum(
                p.upnl(marks[p.sym]) for p in st.account.positions
                if p.qty != 0.0 and p.margin_mode == "cross")
        else:
            balance = sum(p.margin + p.upnl(marks[p.sym]) for p in positions)
        return maintenance / balance if balance > 0 else math.inf

    def _forced_price(self, sym: int, side: int, qty: float, ref: float, highs: list[float],
                      lows: list[float], volumes: list[float]) -> float:
        """The forced order's fill price: ``ref`` moved by the model's forced impact."""
        st = self.st
        impact = st.slippage.impact(qty=qty, price=ref, bar_high=highs[sym], bar_low=lows[sym],
                                    bar_volume=volumes[sym], forced=True)
        return st.slipped_price(sym, side, ref, impact)

    def _forced_order(self, pos: Position, side: int, qty: float, trig_ts: int, tag: str) -> Order:
        """A filled liquidation order of ``qty`` closing ``pos``, recorded in the book."""
        st = self.st
        order = Order(st.book.next_id(), pos.sym, pos.symbol, side, "liquidation", qty,
                      position_side=pos.position_side, ts_created=trig_ts, tag=tag)
        order.status, order.ts_done, order.filled_qty = "filled", st.now, qty
        st.book.record(order)
        return order

    def execute(self, trig: Trigger, refs: list[float], highs: list[float], lows: list[float],
                volumes: list[float]) -> None:
        """Close the pool at ``refs`` (per symbol, before slippage) and settle the accounting."""
        st = self.st
        acct = st.account
        journal = st.journal
        positions = [p for p in trig.positions if p.qty != 0.0]
        if not positions:
            return
        if st.config.liquidation_mode == "tier_down" and self._tier_down(
                trig, positions, refs, highs, lows, volumes):
            return
        cross = positions[0].margin_mode == "cross"
        pool_wallet = acct.cross_wallet if cross else positions[0].margin
        fills = []
        pnl_total = 0.0
        fee_due = 0.0
        for pos in positions:
            side = -1 if pos.qty > 0 else 1  # the closing order's side
            qty = abs(pos.qty)
            ref = refs[pos.sym]
            price = self._forced_price(pos.sym, side, qty, ref, highs, lows, volumes)
            pnl = pos.upnl(price)
            pnl_total += pnl
            fee_due += qty * price * st.clearance[pos.sym]
            fills.append((pos, side, qty, ref, price, pnl))
        remaining = pool_wallet + pnl_total
        fee = min(fee_due, max(remaining, 0.0))
        if st.config.liquidation_remainder == "trader" and remaining >= 0.0:
            trader_delta = remaining - fee - pool_wallet
            fund_delta = fee
        else:
            trader_delta = -max(pool_wallet, 0.0)
            fund_delta = remaining
        bad_debt = max(0.0, -remaining)
        acct.wallet += trader_delta
        if acct.wallet < 0.0:
            bad_debt += -acct.wallet
            fund_delta += acct.wallet
            acct.wallet = 0.0
        acct.insurance_fund += fund_delta
        acct.bad_debt += bad_debt
        journal.clearance_fees += fee
        journal.liquidation_penalty += trader_delta - pnl_total
        notional_total = sum(q * p for _, _, q, _, p, _ in fills) or 1.0
        rows = []
        for k, (pos, side, qty, ref, price, pnl) in enumerate(fills):
            share = qty * price / notional_total
            slip_cost = qty * abs(price - ref)
            journal.slippage += slip_cost
            order = self._forced_order(pos, side, qty, trig.ts, "liquidation")
            entry = pos.entry_price
            margin_mode = pos.margin_mode
            realized = pos.apply_fill(side * qty, price, st.now)
            pos.trade_pnl += trader_delta * share - realized
            journal.fill((st.now, order.order_id, pos.symbol, "buy" if side > 0 else "sell", qty,
                          price, ref, abs(price - ref) / ref * 1e4, slip_cost, fee * share,
                          "liquidation", trader_delta * share, 0.0, "liquidation"))
            journal.trade(pos.close_trade(st.now, "liquidation"))
            i = trig.positions.index(pos)
            mmr, tier = trig.tiers[i]
            rows.append([st.now, trig.ts, pos.symbol, "long" if side < 0 else "short", qty,
                         margin_mode, entry, trig.marks[pos.sym], trig.lasts[pos.sym],
                         trig.liq_price[i], trig.bankruptcy[i], price, ref,
                         abs(price - ref) / ref * 1e4, slip_cost, fee * share,
                         -trader_delta * share, fund_delta * share, bad_debt * share,
                         trig.equity_before, math.nan, mmr, tier])
        acct.changed()
        equity_after = acct.equity(st.marks)
        for row in rows:
            row[20] = equity_after
            journal.liquidation(tuple(row))
        if st.hooks is not None:
            st.hooks.liquidation(rows)

    def _tier_down(self, trig: Trigger, positions: list[Position], refs: list[float],
                   highs: list[float], lows: list[float], volumes: list[float]) -> bool:
        """Reduce positions above the first bracket to their bracket floor; True if compliant."""
        st = self.st
        acct = st.account
        journal = st.journal
        reduced = False
        for pos in positions:
            mark = trig.marks[pos.sym]
            table = st.margin.tables[pos.sym]
            index = table.index_for(abs(pos.qty) * mark)
            if index == 0:
                continue
            floor = table.tiers[index].floor
            keep = st.round_qty(pos.sym, floor / mark * (1.0 - 1e-9))
            qty = abs(pos.qty) - keep
            if qty <= 0.0 or keep <= 0.0:
                continue
            side = -1 if pos.qty > 0 else 1
            ref = refs[pos.sym]
            price = self._forced_price(pos.sym, side, qty, ref, highs, lows, volumes)
            fee = qty * price * st.clearance[pos.sym]
            slip_cost = qty * abs(price - ref)
            entry = pos.entry_price
            realized = pos.apply_fill(side * qty, price, st.now)
            acct.wallet += realized - fee
            if pos.margin_mode == "isolated":
                pos.margin += realized - fee
            acct.insurance_fund += fee
            pos.trade_pnl -= fee
            journal.clearance_fees += fee
            journal.liquidation_penalty -= fee
            journal.slippage += slip_cost
            order = self._forced_order(pos, side, qty, trig.ts, "tier_down")
            journal.fill((st.now, order.order_id, pos.symbol, "buy" if side > 0 else "sell", qty,
                          price, ref, abs(price - ref) / ref * 1e4, slip_cost, fee, "liquidation",
                          realized, pos.qty, "liquidation"))
            i = trig.positions.index(pos)
            mmr, tier = trig.tiers[i]
            equity_after = acct.equity(st.marks)
            journal.liquidation((st.now, trig.ts, pos.symbol, "long" if side < 0 else "short", qty,
                                 pos.margin_mode, entry, trig.marks[pos.sym], trig.lasts[pos.sym],
                                 trig.liq_price[i], trig.bankruptcy[i], price, ref,
                                 abs(price - ref) / ref * 1e4, slip_cost, fee, fee - realized, fee,
                                 0.0, trig.equity_before, equity_after, mmr, tier))
            reduced = True
        if not reduced:
            return False
        acct.changed()
        st.refresh()
        live = [p for p in positions if p.qty != 0.0]
        return not live or st.margin.pool_gap(acct, live, st.marks) > 0.0
