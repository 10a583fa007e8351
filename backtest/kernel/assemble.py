"""A kernel run's summary and full result, built by the engine's own code from its journal.

:func:`kernel_result` fills a fresh run (``backtest.fastpath_scan._ArrayRun``: the setup of
:func:`backtest.fastpath.run_signals`) with the kernel's journal, account and orders, then
calls the engine's ``RunLoop.result``: the tables, the summary and the manifest come from the
one builder both paths use. :func:`kernel_summary` gives the summary alone for a sweep: the
engine's ``backtest.metrics.summarize`` over the kernel's per-bar equity and margin ratio
(:func:`backtest.kernel.bars.bar_series`), the insurance fund replayed into the engine's
``InsuranceFund``; no table, no run object.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from backtest.kernel import layout as L

__all__ = ["kernel_result", "kernel_summary"]

_SIDE = {1: "buy", -1: "sell"}
_TRADE_SIDE = {1: "long", -1: "short"}
_FUND_CAUSE = ("liquidation", "bad_debt")


def _fills(run: Any, symbol: str) -> list[tuple]:
    n = run.n["fills"]
    ints = run.out["fills"][:n].tolist()
    floats = run.out["fills_f"][:n].tolist()
    return [(ts, oid, symbol, _SIDE[side], f[0], f[1], f[2], f[3], f[4], f[5],
             "liquidation" if liquidity else "taker", f[6], f[7], "liquidation" if reason else "strategy")
            for (ts, oid, side, liquidity, reason), f in zip(ints, floats)]


def _trades(run: Any, symbol: str) -> list[tuple]:
    n = run.n["trades"]
    return [(symbol, "long" if side > 0 else "short", entry_ts, exit_ts, *f, "liquidation" if reason else "signal")
            for (side, entry_ts, exit_ts, reason), f in zip(run.out["trades"][:n].tolist(),
                                                            run.out["trades_f"][:n].tolist())]


def _funding(run: Any, symbol: str) -> list[tuple]:
    n = run.n["funding"]
    return [(ts, symbol, rate, mark, qty, payment, "isolated")
            for ts, (rate, mark, qty, payment) in zip(run.out["funding"][:n].tolist(),
                                                      run.out["funding_f"][:n].tolist())]


def _liquidations(run: Any, symbol: str) -> list[tuple]:
    n = run.n["liqs"]
    rows = []
    for (ts, trig_ts, side, tier), f in zip(run.out["liqs"][:n].tolist(), run.out["liqs_f"][:n].tolist()):
        rows.append((ts, trig_ts, symbol, _TRADE_SIDE[side], f[0], "isolated", *f[1:16], f[16], tier))
    return rows


def _replay_fund(run: Any, fund: Any) -> None:
    """The fund's bookings in the kernel's order, through ``InsuranceFund.set_own``."""
    n = run.n["fund"]
    for (ts, cause), value in zip(run.out["fund"][:n].tolist(), run.out["fund_f"][:n].tolist()):
        fund.set_own(value, _FUND_CAUSE[cause], ts)


class _Bars:
    """What ``summarize`` reads of a ``BarState``: the bars, their equity and margin ratio."""

    def __init__(self, run: Any) -> None:
        from backtest.kernel import _frozen
        from backtest.kernel.bars import bar_series

        data, setup = run.data, run.setup
        n = len(data)
        k = run.n["snaps"]
        self.start = 0
        self.n = n
        self.equity = np.empty(n)
        self.margin_ratio = np.empty(n)
        mark_close = run.market.columns[7]
        bar_series(_frozen(run.out["snaps"][:k], np.int64), _frozen(run.out["snaps_f"][:k]), mark_close,
                   setup.floors, setup.mmr, setup.cum, self.equity, self.margin_ratio)


def kernel_summary(run: Any) -> dict[str, Any]:
    """The summary of ``RunResult`` for a kernel run (same keys, same floats)."""
    from backtest.adl import Deleverager
    from backtest.insurance_fund import InsuranceFund
    from backtest.journal import Journal
    from backtest.metrics import summarize

    data, config = run.data, run.config
    symbol = data.symbols[0]
    journal = Journal()
    _journal_totals(run, journal)
    journal.rows["liquidations"].extend(_liquidations(run, symbol))
    journal.rows["fills"].extend([None] * run.n["fills"])  # summarize counts them only
    fund = InsuranceFund(config.insurance_fund, int(data.ts[0]))
    _replay_fund(run, fund)
    state = SimpleNamespace(journal=journal, data=data,
                            account=SimpleNamespace(bad_debt=float(run.S[L.BAD_DEBT]), insurance_fund=fund.own))
    summary = summarize(state, [_Bars(run)], config.initial_balance)
    summary.update(fund.summary())
    summary.update(Deleverager.summary(SimpleNamespace(rows=[])))  # no ADL in the kernel's scope
    return summary


def _journal_totals(run: Any, journal: Any) -> None:
    S, C = run.S.tolist(), run.C.tolist()  # noqa: N806 - the layout's names
    journal.fees, journal.slippage = S[L.FEES], S[L.SLIPPAGE]
    journal.funding_paid, journal.funding_received = S[L.FUNDING_PAID], S[L.FUNDING_RECEIVED]
    journal.liquidation_penalty, journal.clearance_fees = S[L.LIQ_PENALTY], S[L.CLEARANCE_FEES]
    journal.trigger_margin_ratio = S[L.TRIG_RATIO]
    journal.trigger_margin_ratio_ts = C[L.TRIG_TS] if C[L.TRIG_TS] >= 0 else None


def kernel_result(run: Any, strategy: Any = None) -> Any:
    """The :class:`~backtest.results.RunResult` of a kernel run (the engine's builder)."""
    from backtest.fastpath import SignalStrategy
    from backtest.fastpath_scan import _ArrayRun
    from backtest.orders import Order

    data, config = run.data, run.config
    symbol = data.symbols[0]
    if strategy is None:
        strategy = SignalStrategy(run.signal[:, None])
    loop = _ArrayRun(data, strategy, config)
    st = loop.st
    S, C = run.S.tolist(), run.C.tolist()  # noqa: N806 - the layout's names
    acct = st.account
    acct.wallet, acct.bad_debt = S[L.WALLET], S[L.BAD_DEBT]
    pos = acct.positions[0]
    pos.qty, pos.entry_price, pos.margin, pos.leverage = S[L.QTY], S[L.ENTRY], S[L.MARGIN], S[L.POS_LEV]
    pos.liquidation_price, pos.bankruptcy_price = S[L.LP], S[L.BP]
    pos.trade_qty, pos.trade_entry_notional = S[L.T_QTY], S[L.T_ENTRY_NOTIONAL]
    pos.trade_exit_qty, pos.trade_exit_notional = S[L.T_EXIT_QTY], S[L.T_EXIT_NOTIONAL]
    pos.trade_pnl, pos.trade_fees, pos.trade_funding = S[L.T_PNL], S[L.T_FEES], S[L.T_FUNDING]
    pos.trade_side, pos.trade_open_ts = C[L.T_SIDE], C[L.T_OPEN_TS]
    acct.changed()
    journal = st.journal
    _journal_totals(run, journal)
    journal.fill_rows.extend(_fills(run, symbol))
    journal.trade_rows.extend(_trades(run, symbol))
    journal.rows["funding"].extend(_funding(run, symbol))
    journal.rows["liquidations"].extend(_liquidations(run, symbol))
    k = run.n["snaps"]
    journal.snap_bar = run.out["snaps"][:k].tolist()
    snaps = run.out["snaps_f"][:k].tolist()
    journal.snap_wallet = [s[0] for s in snaps]
    journal.snap_positions = [[(pos.key, *s[1:])] for s in snaps]
    orders = []
    n = run.n["orders"]
    for (oid, created, done, side, kind, status), qty in zip(run.out["orders"][:n].tolist(),
                                                             run.out["orders_f"][:n].tolist()):
        liquidation = kind == 1
        order = Order(oid, 0, symbol, side, "liquidation" if liquidation else "market",
                      qty if liquidation or status != 2 else None, position_side=pos.position_side,
                      ts_created=created, tag="liquidation" if liquidation else "")
        order.status = ("filled", "cancelled", "open")[status]
        order.ts_done = None if done < 0 else done
        order.filled_qty = qty
        orders.append(order)
    st.book.all_orders.extend(orders)
    st.book._next_id = C[L.NEXT_ID]
    _replay_fund(run, acct.fund)
    return loop.result()
