"""The compiled loop: one symbol, isolated margin, a linear contract, target-exposure signals.

Every statement mirrors the event path's own (``backtest.engine.RunLoop.step`` and the parts
it calls) so that each float is produced by the same operations in the same order (no
``fastmath``; IEEE double everywhere, as CPython does):

* bar-open funding settlements (``backtest.funding.FundingSchedule.settle``, the wallet floor
  ``backtest.account.Account.credit`` / ``cover``), then one margin refresh;
* the pending target order at the open (``backtest.broker.Broker._execute_target`` and
  ``_fill``; ``backtest.positions.Position.apply_fill`` / ``close_trade``), the pre-trade check
  (``Broker._check_increase``), then one refresh (``backtest.margin.MarginModel.refresh``:
  the liquidation price by the venue's one-leg formula, the bankruptcy price, the gate levels)
  and the bar's snapshot (``backtest.journal.Journal.snapshot``);
* the gate (``backtest.gate.Gate.hit``) and the intrabar walk of the bar's candle
  (``backtest.intrabar.IntrabarWalker``: four ticks, the breach at the open or inside a
  segment, the trigger ``backtest.liquidation.Liquidator.trigger`` and the takeover
  ``Liquidator.execute`` at the trigger time plus the latency);
* the strategy phase: a target order where the signal wants another side.

The pure float helpers of the engine are not copied: the kernel compiles the very functions
the event path calls (``backtest.intrabar._crossing``, ``backtest.ticks.high_first`` /
``tick_times``, the venue's ``one_leg_liquidation_price``: ``numba.njit`` of each, below).
The venue's keyword-only formulas (maintenance margin,
bankruptcy price, funding payment, unrealized PnL: ``backtest.venues.binance_usdm``; the
linear contract's arithmetic: ``backtest.contracts.LinearContract``) are written here in the
same expression (numba compiles no keyword-only function); ``tests/engine/test_kernel*.py``
compare every table and the summary of kernel runs with the event path's, exactly, so any
drift of either fails loudly.

Anything outside this scope found during the run (a rejected order, a bracket resolver that
cycles) stops the kernel with
:data:`BAIL`: the caller runs the Python path instead (the same result, slower).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["BAIL", "DONE", "FULL", "HAVE_NUMBA", "loop"]

#: Kernel status: the run is complete.
DONE = 0
#: Kernel status: an output table is full (the caller retries with larger tables).
FULL = 1
#: Kernel status: the run left the kernel's scope (the caller runs the Python path).
BAIL = 2

# column indexes of the float outputs ------------------------------------------------------
# fills: ts, order_id, side, liquidity (0 taker, 1 liquidation), reason (0 strategy, 1 liquidation)
# fills_f: qty, price, reference_price, slippage_bps, slippage_cost, fee, realized_pnl, qty_after
# orders: order_id, ts_created, ts_done (-1: None), side, type (0 market, 1 liquidation),
#         status (0 filled, 1 cancelled, 2 open); orders_f: qty
# trades: side, entry_ts, exit_ts, reason (0 signal, 1 liquidation)
# trades_f: qty, entry_price, exit_price, pnl, fees, funding
# funding: ts; funding_f: rate, mark_price, position_qty, payment
# liqs: ts, trigger_ts, side (+1 long, -1 short), tier
# liqs_f: qty, entry, mark, last, liquidation_price, bankruptcy_price, fill_price, reference,
#         slippage_bps, slippage_cost, fee, margin_lost, fund_delta, bad_debt, equity_before,
#         equity_after, maint_margin_rate
# snaps: bar; snaps_f: wallet, qty, entry, margin, leverage, liquidation_price, bankruptcy_price
# fund: ts, cause (0 liquidation, 1 bad_debt); fund_f: value (the run's own contribution)
# totals (floats): see TOTALS in backtest.kernel
N_TOTALS = 24


try:  # numba is a core dependency; without it the Python array path runs instead
    import numba
except ImportError:  # pragma: no cover - exercised by the fallback tests through HAVE_NUMBA
    numba = None

from backtest.intrabar import _crossing
from backtest.ticks import high_first as _high_first, tick_times as _tick_times
from backtest.venues.binance_usdm import _liquidation_price_one_leg

#: True when numba compiled the loop (False: the functions below are plain Python).
HAVE_NUMBA = numba is not None


def _jit(function):  # noqa: ANN001, ANN202
    """``numba.njit(cache=True)`` (compiled code cached on disk per machine), no fastmath."""
    if numba is None:
        return function
    return numba.njit(cache=True, fastmath=False, error_model="python")(function)


# The engine's own pure float helpers, compiled as they are (one definition each).
crossing = _jit(_crossing)
high_first = _jit(_high_first)
tick_times = _jit(_tick_times)
one_leg = _jit(_liquidation_price_one_leg)


@_jit
def lp_one(margin, qty, entry, floors, mmr, cum):
    """The isolated position's liquidation price (``MarginModel.refresh``: ``_solve_one``,
    then the venue's bracket resolver ``binance_usdm.resolve_liquidation`` for one leg);
    ``(price, True)``, or ``(nan, False)`` where the Python path must decide (an invalid leg,
    a resolver that cycles: its exhaustive search)."""
    side = 1 if qty > 0 else -1
    size = abs(qty)
    if not (size >= 0 and entry > 0):
        return math.nan, False
    price = one_leg(margin, side, size, entry, mmr[0], cum[0], 0.0, 0.0)
    if floors.size == 1:
        return price, True
    at = 0.0 if price != price else max(price, 0.0)
    at_notional = abs(size) * at if at > 0.0 else 0.0
    if tier_index(floors, at_notional) == 0:
        return price, True
    # resolve_liquidation: re-solve with the bracket of the notional at the price until the
    # bracket (its mmr and cum: Leg equality) no longer changes; a repeated bracket -> bail
    k_mmr, k_cum = mmr[0], cum[0]
    seen = np.zeros(floors.size, dtype=np.bool_)
    for _ in range(floors.size + 2):
        price = one_leg(margin, side, size, entry, k_mmr, k_cum, 0.0, 0.0)
        k = tier_index(floors, size * max(price, 0.0) if not math.isnan(price) else 0.0)
        if mmr[k] == k_mmr and cum[k] == k_cum:
            return price, True
        if seen[k]:
            break
        seen[k] = True
        k_mmr, k_cum = mmr[k], cum[k]
    return math.nan, False


@_jit
def tier_index(floors, notional):
    # TierTable.index_for: bisect_right(floors, |N|) - 1, at least 0
    value = abs(notional)
    k = np.searchsorted(floors, value, side="right") - 1
    return k if k > 0 else 0

@_jit
def loop(ts, opens, highs, lows, closes, mark_opens, mark_highs, mark_lows, mark_closes,
         signal, fund_bar, fund_ts, fund_rate, fund_mark, floors, caps, mmr, cum, max_lev,
         params, policy,
         fills, fills_f, orders, orders_f, trades, trades_f, funding, funding_f, liqs, liqs_f,
         snaps, snaps_f, fund, fund_f, totals, counts):
    # params: initial, leverage, taker, clearance, impact, forced_impact, interval_ms,
    #         latency_ms, sizing_equity, remainder_trader, max_notional
    n = ts.size
    wallet = params[0]
    leverage = params[1]
    taker = params[2]
    clearance = params[3]
    impact = params[4]
    forced_impact = params[5]
    interval = np.int64(params[6])
    latency = np.int64(params[7])
    sizing_equity = params[8] != 0.0
    remainder_trader = params[9] != 0.0
    max_notional = params[10]
    # the position (Position's slots)
    qty = 0.0
    entry = math.nan
    margin = 0.0
    pos_lev = leverage
    lp = math.nan
    bp = math.nan
    t_open_ts = np.int64(0)
    t_qty = 0.0
    t_entry_notional = 0.0
    t_exit_qty = 0.0
    t_exit_notional = 0.0
    t_pnl = 0.0
    t_fees = 0.0
    t_funding = 0.0
    t_side = 0
    # account / journal running totals
    bad_debt = 0.0
    fees_total = 0.0
    slippage_total = 0.0
    funding_paid = 0.0
    funding_received = 0.0
    liq_penalty = 0.0
    clearance_fees = 0.0
    trig_ratio = 0.0
    trig_ratio_ts = np.int64(-1)
    fund_own = 0.0
    below = -math.inf
    above = math.inf
    next_id = np.int64(1)
    # the pending target order (its row in the orders table), -1 when none
    pend_row = -1
    pend_target = 0.0
    pend_filled = 0.0
    n_fills = 0
    n_orders = 0
    n_trades = 0
    n_funding = 0
    n_liqs = 0
    n_snaps = 0
    n_fund = 0
    cap_fills = fills.shape[0]
    cap_orders = orders.shape[0]
    cap_trades = trades.shape[0]
    cap_liqs = liqs.shape[0]
    cap_snaps = snaps.shape[0]
    cap_fund = fund.shape[0]
    status = 0
    f_k = 0  # next funding settlement
    n_fund_events = fund_bar.size
    # the snapshot before the loop (bar -1)
    snaps[0] = -1
    snaps_f[0, 0] = wallet
    snaps_f[0, 1] = qty
    snaps_f[0, 2] = entry
    snaps_f[0, 3] = margin
    snaps_f[0, 4] = pos_lev
    snaps_f[0, 5] = lp
    snaps_f[0, 6] = bp
    n_snaps = 1
    for i in range(n):
        refresh = False
        now = ts[i]
        # ---- phase 1: bar-open funding settlements (FundingSchedule.settle) ----------
        changed = False
        while f_k < n_fund_events and fund_bar[f_k] == i:
            if qty != 0.0:
                rate = fund_rate[f_k]
                mark = fund_mark[f_k]
                if mark != mark:
                    mark = mark_opens[i]
                payment = -qty * mark * rate  # binance_usdm.funding_payment
                # Account.credit(payment, pos), isolated pool
                amount = payment
                shortfall = 0.0
                if margin + amount < 0.0:
                    shortfall = -(margin + amount)
                    amount = -max(margin, 0.0)
                wallet += amount
                margin += amount
                # Account.cover(shortfall)
                if wallet < 0.0:
                    shortfall -= wallet
                    wallet = 0.0
                if shortfall > 0.0:
                    bad_debt += shortfall
                    if n_fund >= cap_fund:
                        status = 1
                        break
                    fund_own = fund_own - shortfall
                    fund[n_fund, 0] = fund_ts[f_k]
                    fund[n_fund, 1] = 1
                    fund_f[n_fund] = fund_own
                    n_fund += 1
                t_funding += payment
                if n_funding >= funding.shape[0]:
                    status = 1
                    break
                funding[n_funding] = fund_ts[f_k]
                funding_f[n_funding, 0] = rate
                funding_f[n_funding, 1] = mark
                funding_f[n_funding, 2] = qty
                funding_f[n_funding, 3] = payment
                n_funding += 1
                if payment >= 0:
                    funding_received += payment
                else:
                    funding_paid -= payment
                changed = True
            f_k += 1
        if status != 0:
            break
        if changed:
            refresh = True
        # ---- phase 2: the pending target order fills at the open ----------------------
        if pend_row >= 0 or refresh:
            if pend_row >= 0:
                ref = opens[i]
                mark_now = mark_opens[i]
                target = pend_target
                want = int(target > 0) - int(target < 0)
                slipped = math.nan
                oid = orders[pend_row, 0]
                pend_filled = 0.0
                n_parts = 0
                # up to two fills: the close of the other side, then the open
                for part in range(2):
                    signed = 0.0
                    price = math.nan
                    if part == 0:
                        held = qty
                        if held != 0.0 and (int(held > 0) - int(held < 0)) != want:
                            side_c = 1 if held < 0 else -1
                            if impact == 0.0:
                                slipped = ref
                            else:
                                slipped = ref * (1.0 + side_c * impact)
                            signed = -held
                            price = slipped
                        else:
                            continue
                    else:
                        if want == 0:
                            break
                        if sizing_equity:
                            unreal = 0.0
                            if qty != 0.0:
                                unreal = qty * (mark_now - entry)
                            basis = wallet + unreal
                        else:
                            basis = wallet
                        desired = abs(target) * basis / ref
                        held = qty
                        delta = desired - abs(held)
                        if held != 0.0:
                            delta = 0.0  # tolerance None: a position on the side is kept
                        q_o = abs(delta)
                        if not q_o > 0:
                            break
                        side_o = want if delta > 0 else -want
                        if delta > 0:
                            if slipped == slipped:
                                price = slipped
                            elif impact == 0.0:
                                price = ref
                            else:
                                price = ref * (1.0 + side_o * impact)
                            # Broker._check_increase (a rejection leaves the kernel)
                            notional = abs(q_o) * price
                            total = abs(abs(held) + q_o) * price \
                                if (held > 0) == (q_o > 0) or held == 0 else notional
                            if abs(total) >= max_notional:
                                cap = 0.0
                            else:
                                cap = max_lev[tier_index(floors, total)]
                            if leverage > cap + 1e-12:
                                status = 2
                                break
                            needed = notional / leverage + notional * taker
                            available = wallet - (margin if qty != 0.0 else 0.0)
                            if needed > available + 1e-9:
                                status = 2
                                break
                        else:
                            status = 2  # a reduction of a held position: not signal-made
                            break
                        signed = side_o * q_o
                    # ---- Broker._fill ---------------------------------------------
                    side = 1 if signed > 0 else -1
                    q = abs(signed)
                    if price != price:
                        price = ref if impact == 0.0 else ref * (1.0 + side * impact)
                    notional = abs(q) * price
                    fee = notional * taker
                    slip = abs(price - ref)
                    slip_cost = q * abs(price - ref)
                    before = qty
                    increasing = before == 0.0 or (before > 0) == (signed > 0)
                    if increasing:
                        pos_lev = leverage
                    # Position.apply_fill
                    realized = 0.0
                    if qty == 0.0 or (qty > 0) == (signed > 0):
                        new_qty = qty + signed
                        if qty == 0.0:
                            entry = price
                            t_open_ts = now
                            t_side = 1 if signed > 0 else -1
                        else:
                            entry = (qty * entry + signed * price) / (qty + signed)
                        qty = new_qty
                        size = abs(signed)
                        t_qty += size
                        t_entry_notional += size * price
                    else:
                        closed = min(abs(signed), abs(qty))
                        realized = (closed if qty > 0 else -closed) * (price - entry)
                        remaining = qty + signed
                        if abs(remaining) <= 1e-12 * max(1.0, abs(qty)):
                            remaining = 0.0
                        qty = remaining
                        t_exit_qty += closed
                        t_exit_notional += closed * price
                        t_pnl += realized
                    after = qty
                    if increasing:
                        margin += notional / pos_lev
                    elif after == 0.0:
                        margin = 0.0
                    else:
                        margin *= abs(after) / abs(before)
                    wallet += realized - fee
                    t_fees += fee
                    fees_total += fee
                    slippage_total += slip_cost
                    pend_filled += q
                    if n_fills >= cap_fills:
                        status = 1
                        break
                    fills[n_fills, 0] = now
                    fills[n_fills, 1] = oid
                    fills[n_fills, 2] = side
                    fills[n_fills, 3] = 0
                    fills[n_fills, 4] = 0
                    fills_f[n_fills, 0] = q
                    fills_f[n_fills, 1] = price
                    fills_f[n_fills, 2] = ref
                    fills_f[n_fills, 3] = (slip / ref) * 1e4 if ref else 0.0
                    fills_f[n_fills, 4] = slip_cost
                    fills_f[n_fills, 5] = fee
                    fills_f[n_fills, 6] = realized
                    fills_f[n_fills, 7] = after
                    n_fills += 1
                    n_parts += 1
                    if after == 0.0:
                        # Position.close_trade(now, "signal")
                        if n_trades >= cap_trades:
                            status = 1
                            break
                        exit_price = t_exit_notional / t_exit_qty if t_exit_qty else math.nan
                        trades[n_trades, 0] = t_side
                        trades[n_trades, 1] = t_open_ts
                        trades[n_trades, 2] = now
                        trades[n_trades, 3] = 0
                        trades_f[n_trades, 0] = t_qty
                        trades_f[n_trades, 1] = t_entry_notional / t_qty if t_qty else math.nan
                        trades_f[n_trades, 2] = exit_price
                        trades_f[n_trades, 3] = t_pnl
                        trades_f[n_trades, 4] = t_fees
                        trades_f[n_trades, 5] = t_funding
                        n_trades += 1
                        t_open_ts = 0
                        t_qty = 0.0
                        t_entry_notional = 0.0
                        t_exit_qty = 0.0
                        t_exit_notional = 0.0
                        t_pnl = 0.0
                        t_fees = 0.0
                        t_funding = 0.0
                        t_side = 0
                        entry = math.nan
                        margin = 0.0
                        lp = math.nan
                        bp = math.nan
                    if wallet < 0.0:  # Account.cover()
                        shortfall = -wallet
                        wallet = 0.0
                        if shortfall > 0.0:
                            bad_debt += shortfall
                            if n_fund >= cap_fund:
                                status = 1
                                break
                            fund_own = fund_own - shortfall
                            fund[n_fund, 0] = now
                            fund[n_fund, 1] = 1
                            fund_f[n_fund] = fund_own
                            n_fund += 1
                if status != 0:
                    break
                orders[pend_row, 2] = now
                orders[pend_row, 5] = 0 if pend_filled else 1
                orders_f[pend_row] = pend_filled
                pend_row = -1
            refresh = True
        if refresh:
            # ---- MarginModel.refresh + Journal.snapshot ---------------------------------
            below = -math.inf
            above = math.inf
            if qty != 0.0:
                lp, ok = lp_one(margin, qty, entry, floors, mmr, cum)
                if not ok:
                    status = 2
                    break
                side = 1 if qty > 0 else -1
                bp = entry - side * (margin + 0.0) / abs(qty)  # binance_usdm.bankruptcy_price
                if lp == lp:
                    if qty > 0:
                        if lp > 0:
                            below = lp
                    else:
                        above = lp if lp > 0 else 0.0
            if snaps[n_snaps - 1] != i:
                if n_snaps >= cap_snaps:
                    status = 1
                    break
                n_snaps += 1
            k = n_snaps - 1
            snaps[k] = i
            snaps_f[k, 0] = wallet
            snaps_f[k, 1] = qty
            snaps_f[k, 2] = entry
            snaps_f[k, 3] = margin
            snaps_f[k, 4] = pos_lev
            snaps_f[k, 5] = lp
            snaps_f[k, 6] = bp
        # ---- phase 3: the gate and the intrabar walk -----------------------------------
        if mark_lows[i] <= below or mark_highs[i] >= above:
            t0, t1, t2, t3 = tick_times(ts[i], interval)
            o, h, lo, c = opens[i], highs[i], lows[i], closes[i]
            mo, mh, ml, mc = mark_opens[i], mark_highs[i], mark_lows[i], mark_closes[i]
            net = int(qty > 0) - int(qty < 0)
            if high_first(policy, o, h, lo, net):
                l1, l2 = h, lo
                m1, m2 = mh, ml
            else:
                l1, l2 = lo, h
                m1, m2 = ml, mh
            long = qty > 0
            # the breach: at the open, else the first segment the mark crosses the LP in
            hit_k = -1
            hit_f = 0.0
            if qty != 0.0 and lp == lp and not (long and lp <= 0):
                if (mo <= lp) if long else (mo >= lp):
                    hit_k = 0
                else:
                    for k in range(1, 4):
                        if k == 1:
                            ma, mb = mo, m1
                        elif k == 2:
                            ma, mb = m1, m2
                        else:
                            ma, mb = m2, mc
                        x = crossing(ma, mb, lp, long, 0.0)
                        if x is not None:
                            hit_k = k
                            hit_f = x
                            break
            if hit_k >= 0:
                # the trigger point (IntrabarWalker._set_point)
                if hit_k == 0:
                    mark_t = mo
                    last_t = o
                    trig_ts = t0
                else:
                    if hit_k == 1:
                        ta, tb, la, lb, ma, mb = t0, t1, o, l1, mo, m1
                    elif hit_k == 2:
                        ta, tb, la, lb, ma, mb = t1, t2, l1, l2, m1, m2
                    else:
                        ta, tb, la, lb, ma, mb = t2, t3, l2, c, m2, mc
                    f = hit_f
                    if f >= 1.0:
                        last_t, mark_t = lb, mb
                    elif f <= 0.0:
                        last_t, mark_t = la, ma
                    else:
                        last_t = la + (lb - la) * f
                        mark_t = ma + (mb - ma) * f
                    trig_ts = np.int64(ta + (tb - ta) * f)
                # ---- Liquidator.trigger -------------------------------------------------
                upnl_t = qty * (mark_t - entry)
                equity_before = wallet + (0.0 + upnl_t)  # Account.equity: wallet + sum(upnl)
                notional_t = abs(qty) * mark_t
                tix = tier_index(floors, notional_t)
                trig_mmr = mmr[tix]
                maintenance = 0.0 + (abs(notional_t) * mmr[tix] - cum[tix])
                balance = 0.0 + (margin + upnl_t)
                ratio = maintenance / balance if balance > 0 else math.inf
                if ratio > trig_ratio:
                    trig_ratio = ratio
                    trig_ratio_ts = trig_ts
                trig_lp = lp
                trig_bp = bp
                # ---- IntrabarWalker._take_over: the fill time and the path's last price ----
                fill_ts = min(trig_ts + latency, t3)
                if fill_ts >= t3:
                    ref = c
                else:
                    if fill_ts < t1:
                        ta, tb, la, lb = t0, t1, o, l1
                    elif fill_ts < t2:
                        ta, tb, la, lb = t1, t2, l1, l2
                    else:
                        ta, tb, la, lb = t2, t3, l2, c
                    if fill_ts < t0:
                        ref = o
                    else:
                        f = (fill_ts - ta) / (tb - ta)
                        ref = la + (lb - la) * f
                fnow = np.int64(fill_ts)
                # ---- Liquidator.execute (full takeover of the isolated pool) ----------------
                side = -1 if qty > 0 else 1
                q = abs(qty)
                price = ref if forced_impact == 0.0 else ref * (1.0 + side * forced_impact)
                pnl = qty * (price - entry)
                pnl_total = 0.0 + pnl
                fee_due = 0.0 + abs(q) * price * clearance
                pool_wallet = margin
                remaining_e = pool_wallet + pnl_total
                fee = min(fee_due, max(remaining_e, 0.0))
                if remainder_trader and remaining_e >= 0.0:
                    trader_delta = remaining_e - fee - pool_wallet
                    fund_delta = fee
                else:
                    trader_delta = -max(pool_wallet, 0.0)
                    fund_delta = remaining_e
                bad = max(0.0, -remaining_e)
                # Account.credit(trader_delta, pos)
                amount = trader_delta
                shortfall = 0.0
                if margin + amount < 0.0:
                    shortfall = -(margin + amount)
                    amount = -max(margin, 0.0)
                wallet += amount
                margin += amount
                cover = shortfall
                if wallet < 0.0:
                    cover -= wallet
                    wallet = 0.0
                if cover > 0.0:
                    bad_debt += cover
                    if n_fund >= cap_fund:
                        status = 1
                        break
                    fund_own = fund_own - cover
                    fund[n_fund, 0] = fnow
                    fund[n_fund, 1] = 1
                    fund_f[n_fund] = fund_own
                    n_fund += 1
                if shortfall:
                    bad += shortfall
                    fund_delta -= shortfall
                if n_fund >= cap_fund:
                    status = 1
                    break
                fund_own = fund_own + (fund_delta + shortfall)
                fund[n_fund, 0] = fnow
                fund[n_fund, 1] = 0
                fund_f[n_fund] = fund_own
                n_fund += 1
                bad_debt += bad - shortfall
                clearance_fees += fee
                liq_penalty += trader_delta - pnl_total
                notional_total = 0.0 + abs(q) * price
                if notional_total == 0.0:
                    notional_total = 1.0
                share = abs(q) * price / notional_total
                slip_cost = q * abs(price - ref)
                slippage_total += slip_cost
                # the forced order (Liquidator._forced_order)
                if n_orders >= cap_orders or n_fills >= cap_fills or n_trades >= cap_trades \
                        or n_liqs >= cap_liqs:
                    status = 1
                    break
                orders[n_orders, 0] = next_id
                orders[n_orders, 1] = trig_ts
                orders[n_orders, 2] = fnow
                orders[n_orders, 3] = side
                orders[n_orders, 4] = 1
                orders[n_orders, 5] = 0
                orders_f[n_orders] = q
                oid = next_id
                next_id += 1
                n_orders += 1
                entry_l = entry
                # Position.apply_fill(side * q, price, now): a reduction
                signed = side * q
                closed = min(abs(signed), abs(qty))
                realized = (closed if qty > 0 else -closed) * (price - entry)
                remaining = qty + signed
                if abs(remaining) <= 1e-12 * max(1.0, abs(qty)):
                    remaining = 0.0
                qty = remaining
                t_exit_qty += closed
                t_exit_notional += closed * price
                t_pnl += realized
                t_pnl += trader_delta * share - realized
                bps = abs(price - ref) / ref * 1e4
                fills[n_fills, 0] = fnow
                fills[n_fills, 1] = oid
                fills[n_fills, 2] = side
                fills[n_fills, 3] = 1
                fills[n_fills, 4] = 1
                fills_f[n_fills, 0] = q
                fills_f[n_fills, 1] = price
                fills_f[n_fills, 2] = ref
                fills_f[n_fills, 3] = bps
                fills_f[n_fills, 4] = slip_cost
                fills_f[n_fills, 5] = fee * share
                fills_f[n_fills, 6] = trader_delta * share
                fills_f[n_fills, 7] = 0.0
                n_fills += 1
                if qty != 0.0:
                    status = 2  # a takeover that leaves a remainder: not this kernel's
                    break
                # Position.close_trade(now, "liquidation")
                trades[n_trades, 0] = t_side
                trades[n_trades, 1] = t_open_ts
                trades[n_trades, 2] = fnow
                trades[n_trades, 3] = 1
                trades_f[n_trades, 0] = t_qty
                trades_f[n_trades, 1] = t_entry_notional / t_qty if t_qty else math.nan
                trades_f[n_trades, 2] = t_exit_notional / t_exit_qty if t_exit_qty else math.nan
                trades_f[n_trades, 3] = t_pnl
                trades_f[n_trades, 4] = t_fees
                trades_f[n_trades, 5] = t_funding
                n_trades += 1
                t_open_ts = 0
                t_qty = 0.0
                t_entry_notional = 0.0
                t_exit_qty = 0.0
                t_exit_notional = 0.0
                t_pnl = 0.0
                t_fees = 0.0
                t_funding = 0.0
                t_side = 0
                entry = math.nan
                margin = 0.0
                lp = math.nan
                bp = math.nan
                liqs[n_liqs, 0] = fnow
                liqs[n_liqs, 1] = trig_ts
                liqs[n_liqs, 2] = -side
                liqs[n_liqs, 3] = tix + 1
                liqs_f[n_liqs, 0] = q
                liqs_f[n_liqs, 1] = entry_l
                liqs_f[n_liqs, 2] = mark_t
                liqs_f[n_liqs, 3] = last_t
                liqs_f[n_liqs, 4] = trig_lp
                liqs_f[n_liqs, 5] = trig_bp
                liqs_f[n_liqs, 6] = price
                liqs_f[n_liqs, 7] = ref
                liqs_f[n_liqs, 8] = bps
                liqs_f[n_liqs, 9] = slip_cost
                liqs_f[n_liqs, 10] = fee * share
                liqs_f[n_liqs, 11] = -trader_delta * share
                liqs_f[n_liqs, 12] = fund_delta * share
                liqs_f[n_liqs, 13] = bad * share
                liqs_f[n_liqs, 14] = equity_before
                liqs_f[n_liqs, 15] = wallet + 0  # Account.equity: nothing open is left
                liqs_f[n_liqs, 16] = trig_mmr
                n_liqs += 1
                # the refresh after the takeover (flat: no level) and the bar's snapshot
                below = -math.inf
                above = math.inf
                if snaps[n_snaps - 1] != i:
                    if n_snaps >= cap_snaps:
                        status = 1
                        break
                    n_snaps += 1
                k = n_snaps - 1
                snaps[k] = i
                snaps_f[k, 0] = wallet
                snaps_f[k, 1] = qty
                snaps_f[k, 2] = entry
                snaps_f[k, 3] = margin
                snaps_f[k, 4] = pos_lev
                snaps_f[k, 5] = lp
                snaps_f[k, 6] = bp
        # ---- phase 5: the strategy's target where the signal wants another side ----------
        value = signal[i]
        if value == value:
            want = int(value > 0) - int(value < 0)
            held_side = int(qty > 0) - int(qty < 0)
            if want != held_side:
                if n_orders >= cap_orders:
                    status = 1
                    break
                side_n = want
                if side_n == 0:
                    side_n = -held_side
                    if side_n == 0:
                        side_n = 1
                orders[n_orders, 0] = next_id
                orders[n_orders, 1] = ts[i] + interval
                orders[n_orders, 2] = -1
                orders[n_orders, 3] = side_n
                orders[n_orders, 4] = 0
                orders[n_orders, 5] = 2
                orders_f[n_orders] = 0.0
                next_id += 1
                pend_row = n_orders
                pend_target = value
                n_orders += 1
    totals[0] = wallet
    totals[1] = bad_debt
    totals[2] = fees_total
    totals[3] = slippage_total
    totals[4] = funding_paid
    totals[5] = funding_received
    totals[6] = liq_penalty
    totals[7] = clearance_fees
    totals[8] = trig_ratio
    totals[9] = fund_own
    totals[10] = qty
    totals[11] = entry
    totals[12] = margin
    totals[13] = pos_lev
    totals[14] = lp
    totals[15] = bp
    totals[16] = t_qty
    totals[17] = t_entry_notional
    totals[18] = t_exit_qty
    totals[19] = t_exit_notional
    totals[20] = t_pnl
    totals[21] = t_fees
    totals[22] = t_funding
    totals[23] = t_side
    counts[0] = status
    counts[1] = n_fills
    counts[2] = n_orders
    counts[3] = n_trades
    counts[4] = n_funding
    counts[5] = n_liqs
    counts[6] = n_snaps
    counts[7] = n_fund
    counts[8] = next_id
    counts[9] = trig_ratio_ts
    counts[10] = t_open_ts
    counts[11] = pend_row
    return status
