"""Funding: settlements at their timestamps on the positions held then, at the mark price.

A settlement at ``ts`` applies to the positions held at that instant, before any order that
fills at the same instant (CONTRACTS §2). The payment is the venue's
``funding_payment(signed_qty, mark_price, rate)`` (+ = received); the mark is the recorded
settlement mark when the data has it, else the current mark of the path. Isolated positions
settle against their isolated wallet. The interval (8 h, 4 h, 1 h) is whatever the data's
timestamps say.
"""
from __future__ import annotations

import numpy as np

from backtest.state import RunState

__all__ = ["FundingSchedule"]


class FundingSchedule:
    """Settlements of all symbols mapped onto the strategy bars.

    Attributes
    ----------
    at_open : dict[int, list[tuple[int, int]]]
        Bar index -> ``(symbol, settlement index)`` settled at that bar's open.
    inside : dict[int, list[tuple[int, int, int]]]
        Bar index -> ``(ts, symbol, settlement index)`` falling strictly inside the bar.
    """

    def __init__(self, state: RunState) -> None:
        self.st = state
        data = state.data
        bar_ts = data.ts
        end = int(bar_ts[-1]) + data.interval_ms if len(bar_ts) else 0
        self.at_open: dict[int, list[tuple[int, int]]] = {}
        self.inside: dict[int, list[tuple[int, int, int]]] = {}
        for sym, symbol in enumerate(data.symbols):
            fund = data.funding[symbol]
            if not fund.ts.size:
                continue
            bars = np.searchsorted(bar_ts, fund.ts, side="right") - 1
            for k, (ts, bar) in enumerate(zip(fund.ts.tolist(), bars.tolist())):
                if bar < 0 or ts >= end:
                    continue
                if ts == int(bar_ts[bar]):
                    self.at_open.setdefault(bar, []).append((sym, k))
                else:
                    self.inside.setdefault(bar, []).append((ts, sym, k))
        for events in self.inside.values():
            events.sort()

    def event_bars(self) -> list[int]:
        """Sorted bar indices with any settlement."""
        return sorted(set(self.at_open) | set(self.inside))

    def settle(self, sym: int, k: int) -> bool:
        """Apply settlement ``k`` of symbol ``sym`` to its open positions; True if any paid."""
        st = self.st
        symbol = st.data.symbols[sym]
        fund = st.data.funding[symbol]
        rate = float(fund.rate[k])
        mark = float(fund.mark_price[k])
        if mark != mark:
            mark = st.marks[sym]
        paid = False
        for pos in st.account.positions:
            if pos.sym != sym or pos.qty == 0.0:
                continue
            payment = st.venue.funding_payment(signed_qty=pos.qty, mark_price=mark, rate=rate)
            st.account.wallet += payment
            if pos.margin_mode == "isolated":
                pos.margin += payment
            pos.trade_funding += payment
            st.journal.funding((int(fund.ts[k]), symbol, rate, mark, pos.qty, payment, pos.margin_mode))
            paid = True
            if st.hooks is not None:
                st.hooks.funding(symbol, rate, mark, pos.qty, payment)
        if paid:
            st.account.changed()
        return paid
