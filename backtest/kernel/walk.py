"""The kernel's intrabar walk of one candle: the breach, the trigger and the takeover.

Mirrors ``backtest.intrabar.IntrabarWalker`` for one isolated position without resting
orders, detail candles, trade ticks or funding inside the bar: four ticks in the policy's
order (``ticks.high_first`` / ``tick_times``), a breach at the open or the first segment the
mark crosses the liquidation price in (``intrabar._crossing``), the trigger at that point
(``Liquidator.trigger``: equity, bracket, margin ratio), the takeover at the trigger time
plus the latency on the last-price path (``IntrabarWalker._take_over``, ``_lasts_at``) with
``Liquidator.execute``'s accounting (clearance fee, remainder, bad debt, the fund).
"""
from __future__ import annotations

import math

import numpy as np

from backtest.kernel.book import apply_fill, book_fund, close_trade, credit, refresh, slipped_price
from backtest.kernel.compiled import (
    _inline, crossing, high_first, maintenance, move_value, notional_of, pnl, settlement, tick_times, tier_index)
from backtest.kernel.layout import (
    BAD_DEBT, BAIL, BP, CLEARANCE_FEES, ENTRY, FULL, FUND_OWN, LIQ_PENALTY, LP, MARGIN, N_FILLS, N_LIQS, N_ORDERS,
    NEXT_ID, O_FILLS, O_FILLS_F, O_LIQS, O_LIQS_F, O_ORDERS, O_ORDERS_F, P_CLEARANCE, P_FORCED, P_INTERVAL,
    P_LATENCY, P_REMAINDER_TRADER, QTY, SLIPPAGE, STATUS, T_PNL, TRIG_RATIO, TRIG_TS, WALLET)

__all__ = ["walk"]


@_inline
def walk(S, C, out, i, ts, bars, params, policy, tiers):
    """Walk candle ``i`` (``bars``: open, high, low, close, then the mark's) for a breach."""
    interval = np.int64(params[P_INTERVAL])
    t0, t1, t2, t3 = tick_times(ts[i], interval)
    o, h, lo, c = bars[0][i], bars[1][i], bars[2][i], bars[3][i]
    mo, mh, ml, mc = bars[4][i], bars[5][i], bars[6][i], bars[7][i]
    qty = S[QTY]
    lp = S[LP]
    if high_first(policy, o, h, lo, int(qty > 0) - int(qty < 0)):
        l1, l2, m1, m2 = h, lo, mh, ml
    else:
        l1, l2, m1, m2 = lo, h, ml, mh
    long = qty > 0
    if qty == 0.0 or lp != lp or (long and lp <= 0):
        return
    # the breach: at the open, else the first segment whose mark path reaches the LP
    if (mo <= lp) if long else (mo >= lp):
        mark_t, last_t, trig_ts = mo, o, t0
    else:
        k = 0
        f = 0.0
        for seg in range(1, 4):
            ma = mo if seg == 1 else (m1 if seg == 2 else m2)
            mb = m1 if seg == 1 else (m2 if seg == 2 else mc)
            x = crossing(ma, mb, lp, long, 0.0)
            if x is not None:
                k = seg
                f = x
                break
        if k == 0:
            return
        # IntrabarWalker._set_point(k, f)
        ta = t0 if k == 1 else (t1 if k == 2 else t2)
        tb = t1 if k == 1 else (t2 if k == 2 else t3)
        la = o if k == 1 else (l1 if k == 2 else l2)
        lb = l1 if k == 1 else (l2 if k == 2 else c)
        ma = mo if k == 1 else (m1 if k == 2 else m2)
        mb = m1 if k == 1 else (m2 if k == 2 else mc)
        if f >= 1.0:
            last_t, mark_t = lb, mb
        elif f <= 0.0:
            last_t, mark_t = la, ma
        else:
            last_t = la + (lb - la) * f
            mark_t = ma + (mb - ma) * f
        trig_ts = np.int64(ta + (tb - ta) * f)
    # IntrabarWalker._take_over: the fill time and the last price there (linear path)
    fill_ts = min(trig_ts + np.int64(params[P_LATENCY]), t3)
    if fill_ts >= t3:
        ref = c
    else:
        ta = t0 if fill_ts < t1 else (t1 if fill_ts < t2 else t2)
        tb = t1 if fill_ts < t1 else (t2 if fill_ts < t2 else t3)
        la = o if fill_ts < t1 else (l1 if fill_ts < t2 else l2)
        lb = l1 if fill_ts < t1 else (l2 if fill_ts < t2 else c)
        f = (fill_ts - ta) / (tb - ta)
        ref = la + (lb - la) * f
    take_over(S, C, out, i, mark_t, last_t, trig_ts, fill_ts, ref, params, tiers)


@_inline
def take_over(S, C, out, i, mark, last, trig_ts, now, ref, params, tiers):
    """``Liquidator.trigger`` at ``mark`` then ``Liquidator.execute`` at ``ref`` (``now``)."""
    qty = S[QTY]
    entry = S[ENTRY]
    # ---- trigger ----
    upnl = pnl(qty, entry, mark)
    equity_before = S[WALLET] + (0.0 + upnl)  # Account.equity: wallet + sum(upnl)
    notional = notional_of(qty, mark)
    tier = tier_index(tiers[0], notional)
    required = 0.0 + maintenance(notional, tiers[2][tier], tiers[3][tier])  # binance_usdm.maintenance_margin
    balance = 0.0 + (S[MARGIN] + upnl)
    ratio = required / balance if balance > 0 else math.inf
    if ratio > S[TRIG_RATIO]:  # Journal.note_margin_ratio
        S[TRIG_RATIO] = ratio
        C[TRIG_TS] = trig_ts
    trig_lp, trig_bp = S[LP], S[BP]
    # ---- execute: the full takeover of the isolated pool ----
    side = -1 if qty > 0 else 1
    q = abs(qty)
    price = slipped_price(ref, side, params[P_FORCED])
    pnl_total = 0.0 + pnl(qty, entry, price)
    fee_due = 0.0 + notional_of(q, price) * params[P_CLEARANCE]
    pool_wallet = S[MARGIN]
    fee, trader_delta, fund_delta, bad_debt = settlement(
        pool_wallet, pnl_total, fee_due, params[P_REMAINDER_TRADER] != 0.0)
    shortfall = credit(S, C, out, trader_delta, now)
    if shortfall:
        bad_debt += shortfall
        fund_delta -= shortfall
    S[FUND_OWN] = S[FUND_OWN] + (fund_delta + shortfall)
    book_fund(C, out, S[FUND_OWN], 0, now)
    S[BAD_DEBT] += bad_debt - shortfall
    S[CLEARANCE_FEES] += fee
    S[LIQ_PENALTY] += trader_delta - pnl_total
    total = 0.0 + notional_of(q, price)
    if total == 0.0:
        total = 1.0
    share = notional_of(q, price) / total
    slip_cost = move_value(q, ref, price)
    S[SLIPPAGE] += slip_cost
    k, j, r = C[N_ORDERS], C[N_FILLS], C[N_LIQS]
    if k >= out[O_ORDERS].shape[0] or j >= out[O_FILLS].shape[0] or r >= out[O_LIQS].shape[0]:
        C[STATUS] = FULL
        return
    oid = C[NEXT_ID]  # Liquidator._forced_order
    out[O_ORDERS][k, 0] = oid
    out[O_ORDERS][k, 1] = trig_ts
    out[O_ORDERS][k, 2] = now
    out[O_ORDERS][k, 3] = side
    out[O_ORDERS][k, 4] = 1
    out[O_ORDERS][k, 5] = 0
    out[O_ORDERS_F][k] = q
    C[NEXT_ID] = oid + 1
    C[N_ORDERS] = k + 1
    realized = apply_fill(S, C, side * q, price, now)
    S[T_PNL] += trader_delta * share - realized
    bps = abs(price - ref) / ref * 1e4
    fills, fills_f = out[O_FILLS], out[O_FILLS_F]
    fills[j, 0] = now
    fills[j, 1] = oid
    fills[j, 2] = side
    fills[j, 3] = 1
    fills[j, 4] = 1
    for col, value in enumerate((q, price, ref, bps, slip_cost, fee * share, trader_delta * share, 0.0)):
        fills_f[j, col] = value
    C[N_FILLS] = j + 1
    if S[QTY] != 0.0:
        C[STATUS] = BAIL  # a takeover that leaves a remainder: not this kernel's
        return
    close_trade(S, C, out, now, 1)
    liqs, liqs_f = out[O_LIQS], out[O_LIQS_F]
    liqs[r, 0] = now
    liqs[r, 1] = trig_ts
    liqs[r, 2] = -side
    liqs[r, 3] = tier + 1
    for col, value in enumerate((q, entry, mark, last, trig_lp, trig_bp, price, ref, bps, slip_cost, fee * share,
                                 -trader_delta * share, fund_delta * share, bad_debt * share, equity_before,
                                 S[WALLET] + 0, tiers[2][tier])):
        liqs_f[r, col] = value
    C[N_LIQS] = r + 1
    refresh(S, C, out, i, tiers)  # flat: no level; the bar's snapshot
