"""The kernel's account, position and journal: fills, funding, the wallet floor, the refresh.

Each function mirrors one of the event path's, statement for statement (the same float
operations in the same order): ``Account.credit`` / ``cover``, ``Position.apply_fill`` /
``close_trade``, ``Broker._fill`` / ``_execute_target`` / ``_check_increase``,
``FundingSchedule.settle``, ``MarginModel.refresh`` with ``Journal.snapshot``. State lives in
the arrays of :mod:`backtest.kernel.layout` (``S`` floats, ``C`` ints, ``out`` tables).
"""
from __future__ import annotations

import math

from backtest.kernel.compiled import (
    _inline, average_entry, bankruptcy, funding, lp_one, move_value, notional_of, pnl, tier_index)
from backtest.kernel.layout import (
    ABOVE, BAD_DEBT, BAIL, BELOW, BP, ENTRY, FEES, FULL, FUND_OWN, FUNDING_PAID, FUNDING_RECEIVED,
    LP, MARGIN, N_FILLS, N_FUND, N_FUNDING, N_ORDERS, N_SNAPS, N_TRADES, NEXT_ID, O_FILLS, O_FILLS_F, O_FUND,
    O_FUND_F, O_FUNDING, O_FUNDING_F, O_ORDERS, O_ORDERS_F, O_SNAPS, O_SNAPS_F, O_TRADES, O_TRADES_F, P_IMPACT,
    P_LEVERAGE, P_MAX_NOTIONAL, P_SIZING_EQUITY, P_TAKER, PEND_ROW, PEND_TARGET, POS_LEV, QTY, SLIPPAGE, STATUS,
    T_ENTRY_NOTIONAL, T_EXIT_NOTIONAL, T_EXIT_QTY, T_FEES, T_FUNDING, T_OPEN_TS, T_PNL, T_QTY, T_SIDE, WALLET)

__all__ = ["book_fund", "close_trade", "credit", "execute_target", "place_target", "refresh", "settle",
           "snapshot"]


@_inline
def book_fund(C, out, value, cause, ts):
    """``InsuranceFund.set_own(value, cause, ts)``: the run's contribution becomes ``value``."""
    k = C[N_FUND]
    if k >= out[O_FUND].shape[0]:
        C[STATUS] = FULL
        return
    out[O_FUND][k, 0] = ts
    out[O_FUND][k, 1] = cause
    out[O_FUND_F][k] = value
    C[N_FUND] = k + 1


@_inline
def cover(S, C, out, shortfall, now):
    """``Account.cover(shortfall)`` without collateral: a negative wallet is reset to zero
    and the fund pays the shortfall as bad debt."""
    if S[WALLET] < 0.0:
        shortfall -= S[WALLET]
        S[WALLET] = 0.0
    if shortfall > 0.0:
        S[BAD_DEBT] += shortfall
        S[FUND_OWN] = S[FUND_OWN] - shortfall
        book_fund(C, out, S[FUND_OWN], 1, now)


@_inline
def credit(S, C, out, amount, now):
    """``Account.credit(amount, pos)`` of the isolated pool; returns the shortfall."""
    balance = S[MARGIN]
    shortfall = 0.0
    if balance + amount < 0.0:
        shortfall = -(balance + amount)
        amount = -max(balance, 0.0)
    S[WALLET] += amount
    S[MARGIN] += amount
    cover(S, C, out, shortfall, now)
    return shortfall


@_inline
def apply_fill(S, C, signed, price, now):
    """``Position.apply_fill``: fold one fill in; return the realized PnL (linear contract)."""
    qty = S[QTY]
    if qty == 0.0 or (qty > 0) == (signed > 0):
        new_qty = qty + signed
        if qty == 0.0:
            S[ENTRY] = price
            C[T_OPEN_TS] = now
            C[T_SIDE] = 1 if signed > 0 else -1
        else:
            S[ENTRY] = average_entry(qty, S[ENTRY], signed, price)
        S[QTY] = new_qty
        size = abs(signed)
        S[T_QTY] += size
        S[T_ENTRY_NOTIONAL] += size * price
        return 0.0
    closed = min(abs(signed), abs(qty))
    realized = pnl(closed if qty > 0 else -closed, S[ENTRY], price)  # contract.unrealized_pnl
    remaining = qty + signed
    if abs(remaining) <= 1e-12 * max(1.0, abs(qty)):
        remaining = 0.0
    S[QTY] = remaining
    S[T_EXIT_QTY] += closed
    S[T_EXIT_NOTIONAL] += closed * price
    S[T_PNL] += realized
    return realized


@_inline
def close_trade(S, C, out, exit_ts, reason):
    """``Position.close_trade``: the round trip as a trades row; resets the bookkeeping."""
    k = C[N_TRADES]
    if k >= out[O_TRADES].shape[0]:
        C[STATUS] = FULL
        return
    trades, trades_f = out[O_TRADES], out[O_TRADES_F]
    exit_price = S[T_EXIT_NOTIONAL] / S[T_EXIT_QTY] if S[T_EXIT_QTY] else math.nan
    trades[k, 0] = C[T_SIDE]
    trades[k, 1] = C[T_OPEN_TS]
    trades[k, 2] = exit_ts
    trades[k, 3] = reason
    trades_f[k, 0] = S[T_QTY]
    trades_f[k, 1] = S[T_ENTRY_NOTIONAL] / S[T_QTY] if S[T_QTY] else math.nan
    trades_f[k, 2] = exit_price
    trades_f[k, 3] = S[T_PNL]
    trades_f[k, 4] = S[T_FEES]
    trades_f[k, 5] = S[T_FUNDING]
    C[N_TRADES] = k + 1
    C[T_OPEN_TS] = 0
    C[T_SIDE] = 0
    for slot in (T_QTY, T_ENTRY_NOTIONAL, T_EXIT_QTY, T_EXIT_NOTIONAL, T_PNL, T_FEES, T_FUNDING, MARGIN):
        S[slot] = 0.0
    S[ENTRY] = math.nan
    S[LP] = math.nan
    S[BP] = math.nan


@_inline
def taker_fill(S, C, out, oid, signed, price, ref, now, params):
    """``Broker._fill`` of a strategy order (taker, at ``price`` already slipped)."""
    side = 1 if signed > 0 else -1
    q = abs(signed)
    notional = notional_of(q, price)
    fee = notional * params[P_TAKER]
    slip = abs(price - ref)
    slip_cost = move_value(q, ref, price)
    before = S[QTY]
    increasing = before == 0.0 or (before > 0) == (signed > 0)
    if increasing:
        S[POS_LEV] = params[P_LEVERAGE]
    realized = apply_fill(S, C, signed, price, now)
    after = S[QTY]
    if increasing:
        S[MARGIN] += notional / S[POS_LEV]
    elif after == 0.0:
        S[MARGIN] = 0.0
    else:
        S[MARGIN] *= abs(after) / abs(before)
    S[WALLET] += realized - fee
    S[T_FEES] += fee
    S[FEES] += fee
    S[SLIPPAGE] += slip_cost
    k = C[N_FILLS]
    if k >= out[O_FILLS].shape[0]:
        C[STATUS] = FULL
        return 0.0
    fills, fills_f = out[O_FILLS], out[O_FILLS_F]
    fills[k, 0] = now
    fills[k, 1] = oid
    fills[k, 2] = side
    fills[k, 3] = 0
    fills[k, 4] = 0
    fills_f[k, 0] = q
    fills_f[k, 1] = price
    fills_f[k, 2] = ref
    fills_f[k, 3] = (slip / ref) * 1e4 if ref else 0.0
    fills_f[k, 4] = slip_cost
    fills_f[k, 5] = fee
    fills_f[k, 6] = realized
    fills_f[k, 7] = after
    C[N_FILLS] = k + 1
    if after == 0.0:
        close_trade(S, C, out, now, 0)
    if S[WALLET] < 0.0:  # a loss beyond the wallet: the venue resets it, the fund pays
        cover(S, C, out, 0.0, now)
    return q


@_inline
def slipped_price(ref, side, impact):
    """``RunState.slipped_price`` without rounding or a per-bar scale."""
    if impact == 0.0:
        return ref
    return ref * (1.0 + side * impact)


@_inline
def execute_target(S, C, out, ref, mark, now, params, tiers):
    """``Broker._execute_target`` of the pending order at the open (close first on a flip)."""
    row = C[PEND_ROW]
    oid = out[O_ORDERS][row, 0]
    target = S[PEND_TARGET]
    impact = params[P_IMPACT]
    want = int(target > 0) - int(target < 0)
    filled = 0.0
    slipped = math.nan
    held = S[QTY]
    if held != 0.0 and (int(held > 0) - int(held < 0)) != want:
        side = 1 if held < 0 else -1
        slipped = slipped_price(ref, side, impact)
        filled += taker_fill(S, C, out, oid, -held, slipped, ref, now, params)
    if want != 0 and C[STATUS] == 0:
        if params[P_SIZING_EQUITY] != 0.0:
            unrealized = 0.0
            if S[QTY] != 0.0:
                unrealized = pnl(S[QTY], S[ENTRY], mark)
            basis = S[WALLET] + unrealized
        else:
            basis = S[WALLET]
        desired = abs(target) * basis / ref
        held = S[QTY]
        delta = desired - abs(held)
        if held != 0.0:
            delta = 0.0  # tolerance None: a position on the wanted side is kept
        qty = abs(delta)
        if qty > 0:
            if not delta > 0:
                C[STATUS] = BAIL  # a reduction: never made by a target of a flat position
                return
            side = want
            price = slipped if slipped == slipped else slipped_price(ref, side, impact)
            if rejected(S, qty, price, held, params, tiers):
                C[STATUS] = BAIL  # a rejection row: the Python path records it
                return
            filled += taker_fill(S, C, out, oid, side * qty, price, ref, now, params)
    if C[STATUS] != 0:
        return
    out[O_ORDERS][row, 2] = now
    out[O_ORDERS][row, 5] = 0 if filled else 1
    out[O_ORDERS_F][row] = filled
    C[PEND_ROW] = -1


@_inline
def rejected(S, qty, price, held, params, tiers):
    """Whether ``Broker._check_increase`` refuses the increase (tier cap, initial margin)."""
    leverage = params[P_LEVERAGE]
    notional = notional_of(qty, price)
    total = notional_of(abs(held) + qty, price) if (held > 0) == (qty > 0) or held == 0 else notional
    if abs(total) >= params[P_MAX_NOTIONAL]:
        cap = 0.0
    else:
        cap = tiers[4][tier_index(tiers[0], total)]
    if leverage > cap + 1e-12:
        return True
    needed = notional / leverage + notional * params[P_TAKER]
    available = S[WALLET] - (S[MARGIN] if S[QTY] != 0.0 else 0.0)
    return needed > available + 1e-9


@_inline
def place_target(S, C, out, value, created):
    """``Context.target_exposure`` where the signal wants another side: a pending order."""
    k = C[N_ORDERS]
    if k >= out[O_ORDERS].shape[0]:
        C[STATUS] = FULL
        return
    held = int(S[QTY] > 0) - int(S[QTY] < 0)
    side = int(value > 0) - int(value < 0)
    if side == 0:
        side = -held if held != 0 else 1
    orders = out[O_ORDERS]
    orders[k, 0] = C[NEXT_ID]
    orders[k, 1] = created
    orders[k, 2] = -1
    orders[k, 3] = side
    orders[k, 4] = 0
    orders[k, 5] = 2
    out[O_ORDERS_F][k] = 0.0
    C[NEXT_ID] += 1
    C[PEND_ROW] = k
    S[PEND_TARGET] = value
    C[N_ORDERS] = k + 1


@_inline
def settle(S, C, out, ts, rate, mark):
    """``FundingSchedule.settle`` of the open position; True when it paid."""
    qty = S[QTY]
    if qty == 0.0:
        return False
    payment = funding(qty, mark, rate)  # binance_usdm.funding_payment
    credit(S, C, out, payment, ts)
    S[T_FUNDING] += payment
    k = C[N_FUNDING]
    if k >= out[O_FUNDING].shape[0]:
        C[STATUS] = FULL
        return False
    out[O_FUNDING][k] = ts
    out[O_FUNDING_F][k, 0] = rate
    out[O_FUNDING_F][k, 1] = mark
    out[O_FUNDING_F][k, 2] = S[QTY]
    out[O_FUNDING_F][k, 3] = payment
    C[N_FUNDING] = k + 1
    if payment >= 0:
        S[FUNDING_RECEIVED] += payment
    else:
        S[FUNDING_PAID] -= payment
    return True


@_inline
def refresh(S, C, out, bar, tiers):
    """``MarginModel.refresh`` of the isolated position, then ``Journal.snapshot(bar)``."""
    below = -math.inf
    above = math.inf
    qty = S[QTY]
    if qty != 0.0:
        lp, ok = lp_one(S[MARGIN], qty, S[ENTRY], tiers[0], tiers[2], tiers[3])
        if not ok:
            C[STATUS] = BAIL
            return
        side = 1 if qty > 0 else -1
        S[LP] = lp
        S[BP] = bankruptcy(S[MARGIN], side, abs(qty), S[ENTRY], 0.0)  # binance_usdm.bankruptcy_price
        if lp == lp:
            if qty > 0:
                if lp > 0:
                    below = lp
            else:
                above = lp if lp > 0 else 0.0
    S[BELOW] = below
    S[ABOVE] = above
    snapshot(S, C, out, bar)


@_inline
def snapshot(S, C, out, bar):
    """``Journal.snapshot``: the account as of ``bar`` (overrides that bar's earlier one)."""
    snaps, snaps_f = out[O_SNAPS], out[O_SNAPS_F]
    k = C[N_SNAPS]
    if k == 0 or snaps[k - 1] != bar:
        if k >= snaps.shape[0]:
            C[STATUS] = FULL
            return
        k += 1
        C[N_SNAPS] = k
    k -= 1
    snaps[k] = bar
    for j in range(BP + 1):  # the slots WALLET..BP are the snapshot's columns, in order
        snaps_f[k, j] = S[j]
