"""State of one symbol during a cascade: positions sorted by liquidation price, the
liquidation engine's inventory, the two book sides and the prices.

Positions are isolated and their margin does not change inside a window (no funding), so each
liquidation price is computed once; with longs sorted by falling and shorts by rising
liquidation price, the positions the mark has crossed are a prefix and flagging is a
``searchsorted``. An ADL close scales a winner's quantity and margin by the same factor,
which keeps its liquidation price (its bracket is kept: a documented approximation).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from backtest.cascade import adl
from backtest.cascade.liquidity import BookSide, LiquidityModel
from backtest.cascade.population import Population
from backtest.cascade.venue import (VenueRules, bankruptcy_prices, isolated_liquidation_prices,
                                    maintenance_margins)

__all__ = ["Fill", "SideBook", "SymbolState"]

#: Binance's mark: basis moving average over 30 one-second samples since 2025-09-18
#: (margin_rules.md §2 "Mark price"); Hyperliquid: 150 s EMA of mid - oracle (§6).
BINANCE_BASIS_WINDOW_S = 30.0
HYPERLIQUID_BASIS_EMA_S = 150.0
#: Relative band around the mark in which liquidation density is measured for the loop gain.
GAIN_BAND = 0.005


@dataclass(frozen=True, slots=True)
class Fill:
    """Inventory of one side sent to the book in one iteration."""

    qty: float
    insurance_delta: float


class SideBook:
    """Positions of one side of one symbol, sorted so that liquidated ones are a prefix."""

    __slots__ = ("ids", "side", "qty", "entry", "margin", "lp", "bp", "leverage", "key", "ptr",
                 "inventory", "_cum_notional")

    def __init__(self, side: int, ids: NDArray[np.intp], population: Population, tiers) -> None:  # noqa: ANN001
        self.side = side
        qty, entry, margin = population.qty[ids], population.entry[ids], population.margin[ids]
        sides = np.full(len(ids), float(side))
        lp = isolated_liquidation_prices(sides, qty, entry, margin, tiers)
        key = -lp if side > 0 else lp  # ascending key: the mark crosses a prefix
        order = np.argsort(key, kind="stable")
        self.ids = ids[order]
        self.qty, self.entry, self.margin = qty[order].copy(), entry[order], margin[order].copy()
        self.lp, self.key = lp[order], key[order]
        self.bp = bankruptcy_prices(sides[order], self.qty, self.entry, self.margin)
        self.leverage = self.qty * self.entry / self.margin
        self.ptr = 0
        self.inventory = np.zeros(3)  # qty, sum q*BP, sum q*entry of taken-over positions
        self._cum_notional: NDArray[np.float64] | None = None

    def crossed(self, mark: float) -> int:
        """Number of positions (a prefix) whose liquidation price the mark has reached."""
        return int(np.searchsorted(self.key, -mark if self.side > 0 else mark, side="right"))

    def density(self, mark: float) -> float:
        """Notional (at LP) of not-yet-liquidated positions within the gain band, per price unit."""
        if self._cum_notional is None:
            self._cum_notional = np.concatenate([[0.0], np.cumsum(self.qty * np.abs(self.lp))])
        edge = mark * (1 - GAIN_BAND) if self.side > 0 else mark * (1 + GAIN_BAND)
        hi = self.crossed(edge)
        return float(self._cum_notional[hi] - self._cum_notional[self.ptr]) / (GAIN_BAND * mark)

    def scaled(self) -> None:
        """Quantities changed (ADL): the cached cumulative notional is stale."""
        self._cum_notional = None


class SymbolState:
    """Prices, books and positions of one symbol (mutated step by step by the engine)."""

    def __init__(self, symbol: str, population: Population, rows: NDArray[np.intp],
                 exogenous: NDArray[np.float64], rules: VenueRules, model: LiquidityModel,
                 start_ms: int, step_s: float, tiers=None) -> None:  # noqa: ANN001 - TierSchedule/Table
        self.symbol, self.rules, self.model, self.step_s = symbol, rules, model, step_s
        self.tiers = rules.tiers(symbol, start_ms, tiers)
        self.exogenous = exogenous
        side = population.side[rows]
        self.sides = {1: SideBook(1, rows[side > 0], population, self.tiers),
                      -1: SideBook(-1, rows[side < 0], population, self.tiers)}
        # a long's inventory is sold into the bids, a short's bought from the asks
        self.books = {1: BookSide(model), -1: BookSide(model)}
        self.delayed: dict[int, np.ndarray] = {}
        self.perm_log = 0.0
        self.index = self.last = self.mark = self.previous_mark = float(exogenous[0])
        self.basis = np.zeros(len(exogenous))
        self.basis_ema = 0.0
        self.variance = model.reference_vol ** 2
        self.multiplier = 1.0
        self.gain = 0.0
        self.t = 0
        self._last_before = self.last

    # ---- step boundaries ---------------------------------------------------------------
    def begin_step(self, t: int) -> None:
        """Advance the index, refill the books, update stress, release delayed slices."""
        self.t = t
        self.previous_mark = self.mark
        if t > 0:
            for book in self.books.values():
                book.refill(self.step_s)
        self.index = float(self.exogenous[t]) * math.exp(self.perm_log)
        self.multiplier = self.model.multiplier(math.sqrt(self.variance))
        for side, slice_ in (self.delayed.pop(t, None) or {}).items():
            self.sides[side].inventory += slice_

    def end_step(self, t: int) -> None:
        """Record the basis sample, the volatility and the loop gain of the step."""
        self.basis[t] = self.last - self.index
        lam = 0.5 ** (self.step_s / HYPERLIQUID_BASIS_EMA_S)
        self.basis_ema = lam * self.basis_ema + (1 - lam) * self.basis[t]
        ret = math.log(self.last / self._last_before) if t > 0 else 0.0
        self._last_before = self.last
        lam_v = 0.5 ** (self.step_s / self.model.vol_half_life_s)
        self.variance = lam_v * self.variance + (1 - lam_v) * ret * ret
        gains = []
        for side in (1, -1):
            slope = self.model.impact_slope(self.books[side].consumed, self.multiplier)
            gains.append(self.sides[side].density(self.mark) * self.index * slope)
        self.gain = max(gains)

    # ---- prices ------------------------------------------------------------------------
    def update_mark(self) -> None:
        """Last from the swept books; mark = median(index, index + smoothed basis, last)."""
        m = self.multiplier
        bid = self.model.touch(self.books[1].consumed, m)
        ask = self.model.touch(self.books[-1].consumed, m)
        self.last = self.index * (1.0 + ask - bid)
        if self.rules.name == "hyperliquid":
            smoothed = self.basis_ema
        else:
            window = max(1, int(round(BINANCE_BASIS_WINDOW_S / self.step_s)))
            start = max(0, self.t - window)
            smoothed = float(self.basis[start:self.t].mean()) if self.t > start else 0.0
        self.mark = float(np.median([self.index, self.index + smoothed, self.last]))

    # ---- liquidation -------------------------------------------------------------------
    def flag(self, t: int, ts: int, recorder) -> bool:  # noqa: ANN001 - Recorder
        """Take over every position the mark crossed; return whether any was."""
        any_new = False
        for side, book in self.sides.items():
            new_ptr = book.crossed(self.mark)
            if new_ptr <= book.ptr:
                continue
            any_new = True
            part = slice(book.ptr, new_ptr)
            q, bp, entry = book.qty[part], book.bp[part], book.entry[part]
            recorder.liquidated(ts, t, self, book, part)
            totals = np.array([q.sum(), (q * bp).sum(), (q * entry).sum()])
            if self.rules.sliced_disposal:
                totals = self._slice(t, side, q, bp, entry, totals)
            book.inventory += totals
            book.ptr = new_ptr
        return any_new

    def _slice(self, t: int, side: int, q, bp, entry, totals):  # noqa: ANN001, ANN202
        """The venue's slicing (Hyperliquid: above 100k USDC, 20 % now, the rest after 30 s).

        The rule is the venue's :class:`backtest.venues.base.SlicedLiquidation`, asked through
        the rulebook registry (the cascade imports no venue module by name).
        """
        from backtest.venues.base import get_rulebook

        rule = get_rulebook(self.rules.name).sliced_liquidation
        if rule is None:
            return totals
        large = q * self.mark > rule.large_notional
        if not large.any():
            return totals
        later = (1 - rule.first_fraction) * np.array(
            [q[large].sum(), (q * bp)[large].sum(), (q * entry)[large].sum()])
        when = t + max(1, int(round(rule.cooldown_s / self.step_s)))
        self.delayed.setdefault(when, {}).setdefault(side, np.zeros(3))
        self.delayed[when][side] += later
        return totals - later

    def _take(self, side: int, qty: float) -> tuple[float, float]:
        """Remove ``qty`` pro rata from a side's inventory; return its (sum q*BP, sum q*entry)."""
        inv = self.sides[side].inventory
        share = min(1.0, qty / inv[0]) if inv[0] > 0 else 0.0
        part = inv * share
        inv -= part
        if inv[0] <= 1e-12 * max(1.0, part[0]):
            inv[:] = 0.0
        return float(part[1]), float(part[2])

    def dispose(self, side: int, budget: dict[int, float], ts: int, recorder) -> Fill | None:  # noqa: ANN001
        """Send ``side``'s inventory to the book within the step's budget; settle the fill."""
        q_inv = self.sides[side].inventory[0]
        if q_inv <= 0 or budget[side] <= 0:
            return None
        qty = min(q_inv, budget[side] / self.index)
        notional = qty * self.index
        budget[side] -= notional
        book = self.books[side]
        dbar, before, after = book.sweep(notional, self.multiplier)
        price = self.index * (1.0 - side * dbar)
        reference = self.index
        shift = book.make_permanent(after - before, self.multiplier)
        self.perm_log += math.log1p(-side * shift)
        self.index = float(self.exogenous[self.t]) * math.exp(self.perm_log)
        qbp, qe = self._take(side, qty)
        delta = side * (qty * price - qbp)
        recorder.fill(ts, self.symbol, side, "book", qty, price, reference, delta, side * (qe - qty * price),
                      side * (qe - qbp))
        return Fill(qty, delta)

    # ---- ADL -----------------------------------------------------------------------------
    def adl_round(self, side: int, deficit: float, filled_qty: float, rule: str,  # noqa: ANN201
                  compare: bool = False):
        """Run ``rule`` for ``deficit`` against the winners opposite ``side``; apply the closes.

        Returns the outcome, the winners touched ``(ids, closed qty, haircut)`` and, with
        ``compare``, every rule's outcome on the same deficit and winners (else None).
        """
        book = self.sides[-side]
        live = slice(book.ptr, len(book.qty))
        q, entry, margin = book.qty[live], book.entry[live], book.margin[live]
        upnl = book.side * q * (self.mark - entry)
        eligible = np.flatnonzero((upnl > 0) & (q > 0))
        q_e, entry_e, margin_e, upnl_e = q[eligible], entry[eligible], margin[eligible], upnl[eligible]
        notional = q_e * self.mark
        score = None
        if rule == "queue" or compare:
            score = self.rules.scores(side=np.full(len(q_e), float(book.side)), qty=q_e, entry=entry_e,
                                      margin=margin_e, mark=self.mark,
                                      maintenance=maintenance_margins(notional, self.tiers))
        matched = filled_qty + self.sides[side].inventory[0]
        inputs = dict(deficit=deficit, qty=q_e, notional=notional, equity=margin_e + upnl_e, profit=upnl_e,
                      score=score, matched_qty=matched)
        compared = adl.compare_rules(**inputs) if compare else None
        outcome = compared[rule] if compared else adl.allocate(rule, **inputs)
        touched = np.flatnonzero(outcome.fractions > 0)
        rows = book.ptr + eligible[touched]
        f = outcome.fractions[touched]
        closed = book.qty[rows] * f
        book.qty[rows] *= 1.0 - f
        book.margin[rows] *= 1.0 - f
        book.scaled()
        return outcome, (book.ids[rows], closed, outcome.haircut[touched]), compared

    def close_inventory_by_adl(self, side: int, qty: float, ts: int, recorder) -> float:  # noqa: ANN001
        """Close up to ``qty`` of the bankrupt inventory against ADL'd winners; return dIF."""
        qty = min(qty, self.sides[side].inventory[0])
        if qty <= 0:
            return 0.0
        qbp, qe = self._take(side, qty)
        price = qbp / qty if self.rules.adl_price == "bankruptcy" else self.previous_mark
        delta = side * (qty * price - qbp)
        recorder.fill(ts, self.symbol, side, "adl", qty, price, self.mark, delta, side * (qe - qty * price),
                      side * (qe - qbp))
        return delta

    def mark_inventory_to_end(self, ts: int, fund: float, recorder) -> float:  # noqa: ANN001
        """Value what the liquidation engine still holds at the last mark (fund takes it)."""
        for when in sorted(self.delayed):
            for side, slice_ in self.delayed[when].items():
                self.sides[side].inventory += slice_
        self.delayed.clear()
        for side in (1, -1):
            qty = self.sides[side].inventory[0]
            if qty <= 0:
                continue
            qbp, qe = self._take(side, qty)
            delta = side * (qty * self.mark - qbp)
            recorder.fill(ts, self.symbol, side, "end_mark", qty, self.mark, self.mark, delta,
                          side * (qe - qty * self.mark), side * (qe - qbp))
            fund += delta
        if fund < 0:
            recorder.bad_debt(ts, self.symbol, -fund)
            fund = 0.0
        return fund
