"""Funding: settlements at their timestamps on the positions held then, at the mark price.

A settlement at ``ts`` applies to the positions held at that instant, before any order that
fills at the same instant (CONTRACTS §2). The payment is the venue's
``funding_payment(signed_qty, mark_price, rate)`` (+ = received); the mark is the recorded
settlement mark when the data has it, else the current mark of the path. Isolated positions
settle against their isolated wallet. A payment larger than its pool's balance goes through the
account's wallet floor (``Account.credit``: the pool ends at zero, the fund pays the rest as bad
debt) and the pool's liquidation check runs at the settlement instant. The interval (8 h, 4 h, 1 h) is whatever the data's
timestamps say.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from backtest.state import RunState

__all__ = ["FundingSchedule"]


class FundingSchedule:
    """Settlements of all symbols mapped onto the strategy bars.

    Attributes
    ----------
    at_open : Mapping[int, tuple[tuple[int, int], ...]]
        Bar index -> ``(symbol, settlement index)`` settled at that bar's open (read-only,
        shared by the runs on the same ``MarketData``).
    inside : Mapping[int, tuple[tuple[int, int, int], ...]]
        Bar index -> ``(ts, symbol, settlement index)`` falling strictly inside the bar, in
        time order (read-only, shared).
    """

    def __init__(self, state: RunState) -> None:
        self.st = state
        data = state.data
        tables = _tables(data)
        self.at_open: Mapping[int, tuple[tuple[int, int], ...]] = tables[0]
        self.inside: Mapping[int, tuple[tuple[int, int, int], ...]] = tables[1]
        #: Per symbol, the settlements as tuples of Python numbers: (ts, rate, mark_price).
        self._values = tables[2]

    def settle(self, sym: int, k: int) -> bool:
        """Apply settlement ``k`` of symbol ``sym`` to its open positions; True if any paid."""
        st = self.st
        symbol = st.data.symbols[sym]
        ts_k, rate, mark = self._values[sym][k]
        if mark != mark:
            mark = st.marks[sym]
        paid = False
        lending = st.venue.lending
        for pos in st.account.positions:
            if pos.sym != sym or pos.qty == 0.0:
                continue
            if lending:  # interest on the pool's debt: the venue needs the pool (Venue.lending)
                wallet = pos.margin if pos.margin_mode == "isolated" else st.account.cross_wallet
                payment = st.margin.formulas[sym].funding_payment(
                    signed_qty=pos.qty, mark_price=mark, rate=rate, entry_price=pos.entry_price,
                    wallet_balance=wallet, ts_ms=ts_k, symbol=symbol)
            else:
                payment = st.margin.formulas[sym].funding_payment(signed_qty=pos.qty,
                                                                  mark_price=mark, rate=rate)
            # a payment beyond the pool's balance empties the pool (the fund pays the rest);
            # the liquidation check runs at this instant (IntrabarWalker / RunLoop.bar_open)
            st.account.credit(payment, pos)
            pos.trade_funding += payment
            st.journal.funding((ts_k, symbol, rate, mark, pos.qty, payment, pos.margin_mode))
            paid = True
            if st.hooks is not None:
                st.hooks.funding(symbol, rate, mark, pos.qty, payment, ts_k)
        if paid:
            st.account.changed()
        return paid


def _tables(data: Any) -> tuple[Mapping[int, tuple], Mapping[int, tuple], tuple]:
    """The settlement maps of ``data`` (bar -> events) and per-symbol settlement values.

    They depend only on the market data, so they are computed once per ``MarketData`` and
    cached on it (read-only mappings of tuples: runs sharing the data cannot alter them). The
    cache entry remembers the arrays it was built from and is rebuilt if any was replaced.
    """
    cache = data.__dict__.setdefault("_run_cache", {})
    arrays = (data.ts, *(data.funding[symbol] for symbol in data.symbols))
    scalars = (data.interval_ms, data.symbols)
    hit = cache.get("funding")
    if hit is not None and hit[1] == scalars and len(hit[0]) == len(arrays) \
            and all(a is b for a, b in zip(hit[0], arrays)):
        return hit[2]
    bar_ts = data.ts
    end = int(bar_ts[-1]) + data.interval_ms if len(bar_ts) else 0
    at_open: dict[int, list[tuple[int, int]]] = {}
    inside: dict[int, list[tuple[int, int, int]]] = {}
    values = []
    for sym, symbol in enumerate(data.symbols):
        fund = data.funding[symbol]
        values.append(tuple(zip(fund.ts.tolist(), np.asarray(fund.rate, dtype=np.float64).tolist(),
                                np.asarray(fund.mark_price, dtype=np.float64).tolist())))
        if not fund.ts.size:
            continue
        bars = np.searchsorted(bar_ts, fund.ts, side="right") - 1
        for k, (ts, bar) in enumerate(zip(fund.ts.tolist(), bars.tolist())):
            if bar < 0 or ts >= end:
                continue
            if ts == int(bar_ts[bar]):
                at_open.setdefault(bar, []).append((sym, k))
            else:
                inside.setdefault(bar, []).append((ts, sym, k))
    for events in inside.values():
        events.sort()
    tables = (MappingProxyType({b: tuple(v) for b, v in at_open.items()}),
              MappingProxyType({b: tuple(v) for b, v in inside.items()}), tuple(values))
    cache["funding"] = (arrays, scalars, tables)
    return tables
