"""Rows a cascade run records as it goes (plain lists and per-position arrays).

Per-step rows are few (steps x symbols); per-position facts (when and at which mark a position
was taken over) live in arrays the size of the population, never in Python objects.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LEVERAGE_BUCKETS", "Recorder"]

#: Upper edges of the leverage buckets (entry notional / margin) and their labels.
LEVERAGE_EDGES = np.array([3.0, 7.0, 20.0, 50.0])
LEVERAGE_BUCKETS = ("<=3x", "3-7x", "7-20x", "20-50x", ">50x")


class Recorder:
    """Collects a run's rows; :class:`backtest.cascade.results.CascadeResult` turns them into tables."""

    def __init__(self, n_positions: int, n_steps: int) -> None:
        self.liq_step = np.full(n_positions, -1, dtype=np.int32)
        self.liq_qty = np.zeros(n_positions)
        self.liq_margin = np.zeros(n_positions)
        self.liq_mark = np.zeros(n_positions)
        self.liq_equity = np.zeros(n_positions)
        self.buckets: list[tuple[Any, ...]] = []
        self.fills: list[tuple[Any, ...]] = []
        self.adl: list[tuple[Any, ...]] = []
        self.comparison: list[tuple[Any, ...]] = []
        self.counterparties: list[tuple[int, str, np.ndarray, np.ndarray, np.ndarray]] = []
        self.bad: list[tuple[int, str, float]] = []
        self.prices: list[tuple[Any, ...]] = []
        self.fund: list[tuple[int, float]] = []
        self.n_steps = n_steps
        #: bankruptcy price of each taken-over cross leg (nan elsewhere); None without cross rows
        self.cross_bp: np.ndarray | None = None

    def liquidated(self, ts: int, t: int, state, book, part: slice) -> None:  # noqa: ANN001
        """Positions ``book[part]`` taken over at step ``t`` at ``state.mark``."""
        # a winner closed in full by ADL keeps a zero-size row: it is no longer a position
        held = book.qty[part] > 0
        self._record(ts, t, state.symbol, book.side, state.mark, book.ids[part][held], book.qty[part][held],
                     book.entry[part][held], book.margin[part][held], book.leverage[part][held])

    def taken_over(self, ts: int, t: int, symbol: str, side: int, mark: float, ids: np.ndarray, qty: np.ndarray,
                   entry: np.ndarray, margin: np.ndarray, bankruptcy: np.ndarray) -> None:
        """Legs of cross accounts taken over (``margin``: each leg's allocated share of the wallet)."""
        if self.cross_bp is None:
            self.cross_bp = np.full(len(self.liq_step), np.nan)
        self.cross_bp[ids] = bankruptcy
        self._record(ts, t, symbol, side, mark, ids, qty, entry, margin, qty * entry / margin)

    def _record(self, ts: int, t: int, symbol: str, side: int, mark: float, ids: np.ndarray, q: np.ndarray,
                entry: np.ndarray, margin: np.ndarray, leverage: np.ndarray) -> None:
        self.liq_step[ids] = t
        self.liq_qty[ids] = q
        self.liq_margin[ids] = margin
        self.liq_mark[ids] = mark
        self.liq_equity[ids] = margin + side * q * (mark - entry)
        bucket = np.searchsorted(LEVERAGE_EDGES, leverage, side="left")
        count = np.bincount(bucket, minlength=len(LEVERAGE_BUCKETS))
        qty = np.bincount(bucket, weights=q, minlength=len(LEVERAGE_BUCKETS))
        lost = np.bincount(bucket, weights=margin, minlength=len(LEVERAGE_BUCKETS))
        for k in np.flatnonzero(count):
            self.buckets.append((ts, symbol, "long" if side > 0 else "short", LEVERAGE_BUCKETS[k],
                                 int(count[k]), float(qty[k]), float(qty[k] * mark), float(lost[k])))

    def fill(self, ts: int, symbol: str, side: int, kind: str, qty: float, price: float, reference: float,
             insurance_delta: float, loss: float, margin_part: float) -> None:
        """Inventory of ``side`` closed (``book``, ``adl`` or ``end_mark``)."""
        self.fills.append((ts, symbol, "long" if side > 0 else "short", kind, qty, price, reference,
                           qty * price, insurance_delta, loss, margin_part))

    def adl_row(self, ts: int, state, side: int, rule: str, outcome, winners,  # noqa: ANN001
                compared=None) -> None:  # noqa: ANN001
        """One ADL round: the outcome, the winners touched and, optionally, every rule's outcome."""
        ids, closed, haircut = winners
        for other, result in (compared or {}).items():
            self.comparison.append((ts, state.symbol, len(self.adl), other, other == rule, result.deficit,
                                    result.closed_qty, result.profit_taken, result.paid, result.overshoot,
                                    result.shortfall, result.counterparties, result.max_haircut,
                                    result.max_leverage_after))
        self.adl.append((ts, state.symbol, "short" if side > 0 else "long", rule, outcome.deficit,
                         outcome.closed_qty, outcome.closed_qty * state.mark, outcome.profit_taken,
                         outcome.paid, outcome.overshoot, outcome.shortfall, outcome.counterparties,
                         outcome.max_haircut, outcome.max_leverage_after))
        if len(ids):
            self.counterparties.append((ts, state.symbol, ids.copy(), closed.copy(), haircut.copy()))

    def bad_debt(self, ts: int, symbol: str, amount: float) -> None:
        """Loss nobody pays (fund empty, ADL short)."""
        if amount > 0:
            self.bad.append((ts, symbol, float(amount)))

    def price_row(self, ts: int, state) -> None:  # noqa: ANN001
        """Prices and book state of ``state`` at the end of a step."""
        m = state.multiplier
        self.prices.append((ts, state.symbol, float(state.exogenous[state.t]), state.index, state.mark,
                            state.last, m, state.model.touch(state.books[1].consumed, m),
                            state.model.touch(state.books[-1].consumed, m), state.gain,
                            float(state.sides[1].inventory[0]), float(state.sides[-1].inventory[0])))

    def fund_row(self, ts: int, balance: float) -> None:
        """Insurance-fund balance at the end of a step."""
        self.fund.append((ts, float(balance)))

    def fund_final(self, ts: int, balance: float) -> None:
        """Balance after the end-of-window valuation (replaces the last step's row)."""
        if self.fund and self.fund[-1][0] == ts:
            self.fund[-1] = (ts, float(balance))
        else:
            self.fund.append((ts, float(balance)))
