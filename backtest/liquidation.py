"""Liquidation: the venue's procedure on a margin pool, with slippage and the insurance fund.

Accounting (margin_rules.md §2.1 "What happens at liquidation"), for a pool with wallet
``W`` (the isolated wallet, or the cross wallet) closed at fill prices ``F_i``:

* the pool's open orders are cancelled (the symbol's for isolated, all for cross);
* ``E = W + sum_i s_i*Q_i*(F_i - EP_i)`` is what is left of the pool at the fill;
* clearance fee ``= min(rate * sum_i Q_i*F_i, max(E, 0))`` (capped by what is left);
* remainder policy ``insurance_fund`` (Binance): the trader loses ``W``; the fund receives
  ``E`` (the fee plus the remainder, or pays ``-E`` when the fill is worse than bankruptcy);
  policy ``trader``: the trader keeps ``E - fee`` when ``E >= 0``;
* ``bad_debt = max(0, -E)``; the wallet never goes below zero.

With ``liquidation_mode="tier_down"`` the venue's procedure (``Venue.liquidation_procedure``,
a :class:`backtest.venues.base.LiquidationPlan`; for Binance its "smart liquidation",
margin_rules.md §2.1 step 2) reduces the position bracket by
bracket, in one trigger, until the remainder is above maintenance at the trigger mark. Each
step is a forced order with the takeover's accounting for the closed part: the trader's PnL at
the fill or at the bankruptcy price, whichever is better for the trader (the rest is the
fund's loss, bad debt), the clearance fee ``min(rate * q * F, what is left)``. If no bracket
brings the pool back, the takeover above closes it at once.

Every change of the wallet goes through ``Account.credit`` (the one wallet floor). Notionals,
PnL and price-move values come from each symbol's contract (``backtest.contracts``).
"""
from __future__ import annotations

import math

from backtest.orders import Order
from backtest.positions import Position
from backtest.settlement import takeover_settlement
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
        #: Per position (id), the instant up to which a venue with per-block limits has used
        #: its blocks (dYdX v4): a later trigger in the same time step gets only the rest.
        self._blocks_until: dict[int, float] = {}

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
                bankrupt.append(st.margin.formulas[pos.sym].bankruptcy_price(
                    wallet_balance=st.account.cross_wallet, side=1 if pos.qty > 0 else -1,
                    qty=abs(pos.qty), entry_price=pos.entry_price, other_unrealized=others))
            else:
                bankrupt.append(pos.bankruptcy_price)
            index = st.margin.tier_index(pos.sym, pos.qty, marks[pos.sym])
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
        if st.venue.lending:  # a lending protocol liquidates by partial calls only, never a takeover
            self._tier_down(trig, positions, refs, highs, lows, volumes)
            return
        if st.config.liquidation_mode == "tier_down" and self._tier_down(
                trig, positions, refs, highs, lows, volumes):
            return
        positions = [p for p in positions if p.qty != 0.0]  # an ADL after the steps may close a leg
        if not positions:
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
            if st.venue.liquidation_fill_price is not None:  # the venue's own fill rule
                price = st.venue.liquidation_fill_price(
                    side=-side, mark_price=trig.marks[pos.sym],
                    mmr=trig.tiers[trig.positions.index(pos)][0],
                    margin_ratio=trig.margin_ratio, market_price=price)
            pnl = pos.upnl(price)
            pnl_total += pnl
            fee_due += pos.contract.notional(qty, price) * st.clearance[pos.sym]
            fills.append((pos, side, qty, ref, price, pnl))
        fee, trader_delta, fund_delta, bad_debt = takeover_settlement(
            pool_wallet, pnl_total, fee_due, st.config.liquidation_remainder == "trader")
        shortfall = acct.credit(trader_delta, positions[0] if not cross else None)
        if shortfall:  # already booked by the wallet floor; the rows show it too
            bad_debt += shortfall
            fund_delta -= shortfall
        acct.insurance_fund += fund_delta + shortfall
        acct.bad_debt += bad_debt - shortfall
        journal.clearance_fees += fee
        journal.liquidation_penalty += trader_delta - pnl_total
        notional_total = sum(pos.contract.notional(q, p) for pos, _, q, _, p, _ in fills) or 1.0
        rows = []
        for k, (pos, side, qty, ref, price, pnl) in enumerate(fills):
            share = pos.contract.notional(qty, price) / notional_total
            slip_cost = pos.contract.price_move_value(qty, ref, price)
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
        self._after(rows)

    def _after(self, rows: list[list]) -> None:
        """What follows every liquidation, takeover or tier-down step alike: the loss the
        fund could not pay goes to ADL (``backtest.adl.Deleverager.after_liquidation``, the
        one fund-then-ADL rule), then the strategy hears of the rows."""
        st = self.st
        st.adl.after_liquidation(rows)
        if st.hooks is not None:
            st.hooks.liquidation(rows)

    def _tier_down(self, trig: Trigger, positions: list[Position], refs: list[float],
                   highs: list[float], lows: list[float], volumes: list[float]) -> bool:
        """Reduce the pool bracket by bracket (the venue's plan); True if it is compliant.

        The plan (``venue.tier_down_plan``, pure) gives the quantities; each step is a forced
        order filled like the takeover's, its PnL bounded by the pool's bankruptcy price
        (:meth:`_reduce`). False (nothing done or still deficient) leaves the rest to the
        full takeover of :meth:`execute`.
        """
        st = self.st
        acct = st.account
        if st.venue.tier_down_plan is None:  # the venue has no partial procedure: takeover
            return False
        cross = positions[0].margin_mode == "cross"
        marks = st.marks
        plans = []
        block_s = st.venue.liquidation_block_s  # per-block limits (dYdX v4), else None
        for pos in positions:
            mark = marks[pos.sym]
            others = [p for p in positions if p is not pos]
            if cross:
                balance = acct.cross_wallet + sum(p.upnl(marks[p.sym]) for p in positions)
            else:
                balance = pos.margin + pos.upnl(mark)
            window = None
            if block_s is not None:  # the blocks from the trigger (or the last used) to the bar end
                start = max(trig.ts, self._blocks_until.get(id(pos), trig.ts))
                window = (int(st.data.ts[st.bar]) + int(st.data.interval_ms) - start) / 1000.0
            plan = st.venue.liquidation_procedure(
                mode="tier_down", qty=abs(pos.qty), mark_price=mark,
                bankruptcy_price=pos.bankruptcy_price, margin_balance=balance,
                tiers=st.margin.tables[pos.sym], clearance_rate=st.clearance[pos.sym],
                contract=pos.contract,
                other_maintenance=sum(st.margin.maintenance(p, marks[p.sym]) for p in others),
                lot_size=st.markets[pos.sym].lot_size if st.rounding else 0.0, window_s=window)
            if plan.takeover and len(positions) == 1:
                return False  # no bracket brings it back: the takeover closes it all at once
            if block_s is not None:
                self._blocks_until[id(pos)] = start + len(plan.steps) * block_s * 1000.0
            plans.append((pos, plan))
        # the venue can do no more in this time step: what is left waits for the next trigger
        deferred = any(plan.deferred for _, plan in plans)
        rows: list[list] = []
        for pos, plan in plans:
            for qty in (step.qty for step in plan.steps if step.kind in ("tier_down", "partial")):
                if pos.qty == 0.0 or qty <= 0.0:
                    break
                rows.append(self._reduce(trig, pos, positions, min(qty, abs(pos.qty)), refs, highs, lows,
                                         volumes, cross))
        if not rows:
            return deferred
        acct.changed()
        st.refresh()
        # a step filled beyond bankruptcy may cost the fund more than it holds: the same
        # fund-then-ADL rule as a takeover's loss, once the trigger's steps are done
        self._after(rows)
        live = [p for p in positions if p.qty != 0.0]
        return not live or deferred or st.margin.pool_gap(acct, live, st.marks) > 0.0

    def _reduce(self, trig: Trigger, pos: Position, positions: list[Position], qty: float,
                refs: list[float], highs: list[float], lows: list[float], volumes: list[float],
                cross: bool) -> list:
        """One tier-down step: close ``qty`` of ``pos`` by a forced order, bounded by bankruptcy.

        The accounting has the takeover's form for the closed part: the trader's PnL is taken
        at the fill price or at the pool's bankruptcy price, whichever is better for the
        trader (a fill worse than bankruptcy is the fund's loss, bad debt); the clearance fee
        is ``min(rate * q * F, what the pool has left)``; the pool's margin stays in the pool
        for the remainder. Settled through the account's wallet floor. Returns the step's
        ``liquidations`` row (also journaled).
        """
        st = self.st
        acct = st.account
        journal = st.journal
        marks = st.marks
        sign = 1 if pos.qty > 0 else -1
        side = -sign  # the closing order's side
        ref = refs[pos.sym]
        price = self._forced_price(pos.sym, side, qty, ref, highs, lows, volumes)
        if st.venue.liquidation_fill_price is not None:  # the venue's own fill (dYdX), at the
            live = [p for p in positions if p.qty != 0.0]  # pool's ratio before this step
            price = st.venue.liquidation_fill_price(
                side=sign, mark_price=trig.marks[pos.sym],
                mmr=trig.tiers[trig.positions.index(pos)][0],
                margin_ratio=self._margin_ratio(live, marks, cross), market_price=price)
        wallet = acct.cross_wallet if cross else pos.margin
        others = sum(p.upnl(marks[p.sym]) for p in positions if p is not pos and p.qty != 0.0) \
            if cross else 0.0
        contract = pos.contract
        bankrupt = st.margin.formulas[pos.sym].bankruptcy_price(
            wallet_balance=wallet, side=sign, qty=abs(pos.qty), entry_price=pos.entry_price,
            other_unrealized=others)
        bounded = price
        if bankrupt == bankrupt:
            bounded = max(price, bankrupt) if sign > 0 else min(price, bankrupt)
        # the fill worse than bankruptcy: the fund's loss
        beyond = contract.price_move_value(qty, bounded, price)
        entry = pos.entry_price
        pnl_at_fill = contract.unrealized_pnl(signed_qty=sign * qty, entry_price=entry,
                                              mark_price=price)
        fee_due = contract.notional(qty, price) * st.clearance[pos.sym]
        realized = pos.apply_fill(side * qty, bounded, st.now)
        left = max(wallet + realized, 0.0)
        if st.venue.partial_liquidation_fee is not None and bankrupt == bankrupt:
            # the venue's own cap (dYdX: what the closed piece holds above its bankruptcy)
            above = contract.unrealized_pnl(signed_qty=sign * qty, entry_price=bankrupt,
                                            mark_price=price)
            fee = min(st.venue.partial_liquidation_fee(
                fee_due=fee_due, piece_above_bankruptcy=above, pool_left=wallet + realized), left)
        else:
            fee = min(fee_due, left)
        if st.venue.lending:  # the bonus the collateral cannot pay: the protocol's deficit (Aave v3.3)
            beyond += fee_due - fee
        shortfall = acct.credit(realized - fee, pos)
        acct.insurance_fund += fee - beyond
        acct.bad_debt += beyond
        trader_delta = realized - fee + shortfall
        pos.trade_pnl -= fee
        slip_cost = contract.price_move_value(qty, ref, price)
        journal.clearance_fees += fee
        journal.liquidation_penalty += trader_delta - pnl_at_fill
        journal.slippage += slip_cost
        order = self._forced_order(pos, side, qty, trig.ts, "tier_down")
        journal.fill((st.now, order.order_id, pos.symbol, "buy" if side > 0 else "sell", qty,
                      price, ref, abs(price - ref) / ref * 1e4, slip_cost, fee, "liquidation",
                      trader_delta, pos.qty, "liquidation"))
        if pos.qty == 0.0:
            journal.trade(pos.close_trade(st.now, "liquidation"))
        i = trig.positions.index(pos)
        mmr, tier = trig.tiers[i]
        acct.changed(pos.sym)
        row = [st.now, trig.ts, pos.symbol, "long" if sign > 0 else "short", qty, pos.margin_mode, entry,
               trig.marks[pos.sym], trig.lasts[pos.sym], trig.liq_price[i], trig.bankruptcy[i], price, ref,
               abs(price - ref) / ref * 1e4, slip_cost, fee, -trader_delta, fee - beyond - shortfall,
               beyond + shortfall, trig.equity_before, acct.equity(marks), mmr, tier]
        journal.liquidation(tuple(row))
        return row
