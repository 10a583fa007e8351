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

The pure float helpers and money rules of the engine are not copied: the kernel compiles the
very functions the event path calls (:mod:`backtest.kernel.compiled`), among them the
takeover settlement (``backtest.settlement.takeover_settlement``), the venue's maintenance
margin, bankruptcy price and funding payment (positional cores in
``backtest.venues.binance_usdm``, which its keyword-only public functions wrap: numba compiles
no keyword-only function) and the linear PnL (``backtest.contracts.linear_pnl``). The parts:
:mod:`backtest.kernel.book` (account, position, fills, funding, refresh),
:mod:`backtest.kernel.walk` (the intrabar walk and the takeover); the state and tables:
:mod:`backtest.kernel.layout`. ``tests/engine/test_kernel*.py`` and the parity tests
compare every table and the summary of kernel runs with the event path's, exactly, so any
drift of either fails loudly.

Anything outside this scope found during the run (a rejected order, a bracket resolver that
cycles) stops the kernel with
:data:`BAIL`: the caller runs the Python path instead (the same result, slower).
"""
from __future__ import annotations

import math

import numpy as np

from backtest.kernel.book import execute_target, place_target, refresh, settle
from backtest.kernel.compiled import HAVE_NUMBA, _jit
from backtest.kernel.layout import (
    ABOVE, BAIL, BELOW, BP, DONE, ENTRY, FULL, LP, N_SNAPS, NEXT_ID, O_SNAPS, O_SNAPS_F,
    P_INITIAL, P_INTERVAL, P_LEVERAGE, PEND_ROW, POS_LEV, QTY, STATUS, TRIG_TS, WALLET)
from backtest.kernel.walk import walk

__all__ = ["BAIL", "DONE", "FULL", "HAVE_NUMBA", "loop"]


@_jit
def loop(ts, bars, signal, funding, params, policy, tiers, out, S, C):
    """Run every bar; return the status (:data:`DONE`, :data:`FULL` or :data:`BAIL`).

    ``bars``: open, high, low, close, mark open, high, low, close (per bar); ``funding``: the
    at-open settlements' bar, ts, rate and mark; ``tiers``: floors, caps, mmr, cum and max
    leverage of the brackets; ``out`` the tables, ``S`` / ``C`` the state
    (:mod:`backtest.kernel.layout`), filled in place.
    """
    fund_bar, fund_ts = funding[0], funding[1]
    fund_rate, fund_mark = funding[2], funding[3]
    opens, mark_opens, mark_lows, mark_highs = bars[0], bars[4], bars[6], bars[5]
    interval = np.int64(params[P_INTERVAL])
    S[:] = 0.0
    C[:] = 0
    S[WALLET] = params[P_INITIAL]
    S[ENTRY] = math.nan
    S[POS_LEV] = params[P_LEVERAGE]
    S[LP] = math.nan
    S[BP] = math.nan
    S[BELOW] = -math.inf
    S[ABOVE] = math.inf
    C[NEXT_ID] = 1
    C[TRIG_TS] = -1
    C[PEND_ROW] = -1
    out[O_SNAPS][0] = -1  # the snapshot before the loop (bar -1)
    for j in range(BP + 1):
        out[O_SNAPS_F][0, j] = S[j]
    C[N_SNAPS] = 1
    f = 0  # the next funding settlement
    n = ts.size
    i = 0
    while i < n:
        # the quiet bars, skipped in a tight loop: no settlement at the open, no pending
        # order, no level inside the bar's mark range, a signal content with the held side
        # (every phase of them is a no-op; backtest.fastpath's module docstring)
        if C[PEND_ROW] < 0:
            next_fund = fund_bar[f] if f < fund_bar.size else n
            below, above = S[BELOW], S[ABOVE]
            held = int(S[QTY] > 0) - int(S[QTY] < 0)
            while i < n and i != next_fund and mark_lows[i] > below and mark_highs[i] < above:
                value = signal[i]
                if value == value and (int(value > 0) - int(value < 0)) != held:
                    break
                i += 1
            if i >= n:
                break
        # phase 1: bar-open funding settlements, one refresh after them
        changed = False
        while f < fund_bar.size and fund_bar[f] == i:
            mark = fund_mark[f]
            if mark != mark:
                mark = mark_opens[i]
            changed |= settle(S, C, out, fund_ts[f], fund_rate[f], mark)
            f += 1
        # phase 2: the pending target order fills at the open, then the refresh
        if C[PEND_ROW] >= 0:
            execute_target(S, C, out, opens[i], mark_opens[i], ts[i], params, tiers)
            changed = True
        if changed and C[STATUS] == DONE:
            refresh(S, C, out, i, tiers)
        # phase 3: the gate, and the intrabar walk where a level lies in the bar's ranges
        if C[STATUS] == DONE and (mark_lows[i] <= S[BELOW] or mark_highs[i] >= S[ABOVE]):
            walk(S, C, out, i, ts, bars, params, policy, tiers)
        if C[STATUS] != DONE:
            break
        # phase 5: the strategy's target where the signal wants another side
        value = signal[i]
        if value == value:
            want = int(value > 0) - int(value < 0)
            if want != int(S[QTY] > 0) - int(S[QTY] < 0):
                place_target(S, C, out, value, ts[i] + interval)
                if C[STATUS] != DONE:
                    break
        i += 1
    return C[STATUS]
