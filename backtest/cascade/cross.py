"""Cross-margin accounts in the cascade: positions sharing one wallet are flagged together.

An account holds a wallet ``W`` (the sum of its rows' ``margin``) and positions in one or more
symbols. At the current marks its equity is ``E = W + sum_i s_i q_i (mark_i - entry_i)`` and
its maintenance ``MM = sum_i MM_i(q_i mark_i)`` with each symbol's bracket table (the cross
rule of margin_rules.md §2: "cross: the account's margin balance against the sum of the
maintenance of its positions"; :func:`backtest.venues.binance_usdm.maintenance_margin` per
leg). When ``E <= MM`` every position of the account is taken over at once.

Settlement reuses the isolated machinery: the wallet is allocated to the legs pro rata to their
notional at the take-over marks, ``m_i = W * N_i / sum N``, and each leg enters its symbol's
liquidation inventory at the bankruptcy price of that allocation,
``BP_i = entry_i - s_i m_i / q_i`` (:func:`backtest.cascade.venue.bankruptcy_prices`). So
``sum_i s_i q_i (entry_i - BP_i) = W``: the trader loses the whole wallet, the fund settles
each leg's fill against its ``BP_i``, and the money identity of the engine holds per leg. The
allocation decides only how the account's loss is split between symbols, not its total.

Declared simplifications: cross positions are not ADL counterparties (the queue ranks the
isolated winners), and a leg's notional at take-over uses the mark of its symbol as last
updated (symbols are stepped in sorted order inside one step).
"""
from __future__ import annotations

import numpy as np

from backtest.cascade.population import Population
from backtest.cascade.venue import bankruptcy_prices, maintenance_margins

__all__ = ["CrossAccounts"]


class CrossAccounts:
    """The cross rows of a population and the accounts they form (arrays, no per-row objects)."""

    def __init__(self, population: Population, symbols: list[str]) -> None:
        rows = np.flatnonzero(population.cross)
        self.rows = rows
        self.symbol_index = np.searchsorted(np.array(symbols), population.symbol[rows]) if len(rows) else rows
        self.side = population.side[rows].astype(np.float64)
        self.qty = population.qty[rows]
        self.entry = population.entry[rows]
        self.margin = population.margin[rows]
        _, self.account = np.unique(population.account[rows], return_inverse=True) if len(rows) else (rows, rows)
        self.n_accounts = int(self.account.max()) + 1 if len(rows) else 0
        self.wallet = np.bincount(self.account, weights=self.margin, minlength=self.n_accounts)
        self.alive = np.ones(self.n_accounts, dtype=bool)
        self.by_symbol = [np.flatnonzero(self.symbol_index == k) for k in range(len(symbols))]

    def __bool__(self) -> bool:
        return bool(self.n_accounts)

    def flag(self, states, t: int, ts: int, recorder) -> bool:  # noqa: ANN001 - SymbolStates, Recorder
        """Take over every live account whose equity is at or below its maintenance."""
        if not self.alive.any():
            return False
        marks = np.array([s.mark for s in states])[self.symbol_index]
        notional = self.qty * marks
        maintenance = np.zeros(len(self.rows))
        for k, state in enumerate(states):
            legs = self.by_symbol[k]
            if len(legs):
                maintenance[legs] = maintenance_margins(notional[legs], state.tiers)
        upnl = self.side * self.qty * (marks - self.entry)
        equity = self.wallet + np.bincount(self.account, weights=upnl, minlength=self.n_accounts)
        needed = np.bincount(self.account, weights=maintenance, minlength=self.n_accounts)
        hit = self.alive & (equity <= needed)
        if not hit.any():
            return False
        self.alive &= ~hit
        legs = np.flatnonzero(hit[self.account])
        share = notional[legs] / np.bincount(self.account[legs], weights=notional[legs],
                                             minlength=self.n_accounts)[self.account[legs]]
        allocated = self.wallet[self.account[legs]] * share
        bp = bankruptcy_prices(self.side[legs], self.qty[legs], self.entry[legs], allocated)
        for k, state in enumerate(states):
            mine = legs[self.symbol_index[legs] == k]
            if not len(mine):
                continue
            pick = self.symbol_index[legs] == k
            for side in (1, -1):
                take = self.side[mine] == side
                if not take.any():
                    continue
                q, e, b = self.qty[mine][take], self.entry[mine][take], bp[pick][take]
                recorder.taken_over(ts, t, state.symbol, side, state.mark, self.rows[mine][take], q, e,
                                    allocated[pick][take], b)
                state.sides[side].inventory += np.array([q.sum(), (q * b).sum(), (q * e).sum()])
        return True
