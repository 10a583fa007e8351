"""The cross pool's per-bar lower bound of equity minus maintenance, linear in symbols.

A multi-symbol cross pool cannot be gated by one liquidation price per symbol (its breach
depends on every mark at once), so the engine asks, on every bar, for a lower bound of the
pool's equity minus maintenance over the bar's mark ranges (``MarginModel.cross_bound_gap``).
Its definition sums, per position, the smaller of ``upnl - MM`` at the range's two ends.
:class:`CrossBounds` gives the same answer to the gate (``<= 0`` or not) while touching
each position only when its mark leaves a precomputed safe band, and remembers each
position's bracket; :func:`other_terms` gives every symbol the maintenance and PnL of the
*other* cross symbols in one pass (prefix + suffix sums) instead of one pass per symbol.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["CrossBounds", "other_terms"]

from backtest.account import Account
from backtest.positions import Position


class CrossBounds:
    """Lower bounds of one run's cross pool (a helper of :class:`backtest.margin.MarginModel`).

    Parameters
    ----------
    model : MarginModel
        Its venue, tier tables in force and contracts.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        #: Per symbol, the last bracket :meth:`bound` used (see :meth:`bracket`).
        self._cache: list[Any] = [None] * len(model.schedules)
        #: Safe mark bands of the cross pool (see :meth:`make_bands`); None = compute exactly.
        self._bands: tuple[float, float, list[tuple[Any, float, float, float]], Any] | None = None

    def invalidate(self) -> None:
        """The pool changed (fill, funding, liquidation, leverage, tiers): drop the bands."""
        self._bands = None

    def band_limits(self, account: Account) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The pool's safe bands as arrays, while they still describe the pool, else None.

        Returns ``(symbols, floors, ceilings)``: per symbol holding a cross position, the
        greatest floor and the least ceiling of its positions' bands. While every one of
        those symbols' mark ranges lies strictly inside ``(floor, ceiling)`` (a NaN end does
        not), :meth:`bound` answers the cached slack (> 0) without summing: the gate skips
        such bars with NumPy (``backtest.gate.Gate.next_hit``). The validity test is
        :meth:`bound`'s own (the wallet and each position's size as when the bands were made).
        """
        bands = self._bands
        if bands is None or bands[0] != account.wallet:
            return None
        for pos, qty, _, _ in bands[2]:
            if pos.qty != qty:
                return None
        return bands[3]

    def bound(self, account: Account, lows: list[float], highs: list[float]) -> float:
        """Lower bound of the cross pool's equity minus MM over a bar's mark ranges.

        ``upnl - MM`` of one position is monotone in its mark (mmr < 1), so its minimum over
        ``[low, high]`` is at an end; the sum of the minima bounds the pool from below.

        Called on every bar of a multi-symbol cross pool, so each position's bracket is
        remembered with the notional range it covers and looked up again only when a
        notional leaves it (the same bracket as ``TierTable.for_notional``, hence the same
        floats as ``MarginModel.maintenance``).
        """
        bands = self._bands
        if bands is not None and bands[0] == account.wallet:
            # (refresh() drops the bands on every state change; the wallet and each
            # position's size are checked too, so a stale band can never answer)
            slack, checks = bands[1], bands[2]
            for pos, qty, floor, ceiling in checks:
                sym = pos.sym
                if not (lows[sym] > floor and highs[sym] < ceiling and pos.qty == qty):
                    break
            else:
                return slack
        gap = self.exact(account, lows, highs)
        if gap > 0.0:
            self._bands = self.make_bands(account, lows, highs)
        return gap

    def exact(self, account: Account, lows: list[float], highs: list[float]) -> float:
        """:meth:`bound` computed position by position (the definition)."""
        gap = account.cross_wallet
        maintenance_margin = self.model.venue.maintenance_margin
        tables = self.model.tables
        contracts = self.model.contracts
        cache = self._cache
        for pos in account.positions:
            qty = pos.qty
            if qty == 0.0 or pos.margin_mode != "cross":
                continue
            sym = pos.sym
            lo, hi = lows[sym], highs[sym]
            contract = contracts[sym]
            n_lo = contract.notional(qty, lo)
            n_hi = contract.notional(qty, hi)
            table = tables[sym]
            # the bracket key of each end in the table's basis (the notional itself, or a
            # contract count that does not move with the mark): TierTable.position_key
            k_lo = table.position_key(qty, lo, contract, n_lo)
            k_hi = table.position_key(qty, hi, contract, n_hi)
            entry = cache[sym]
            if entry is None or entry[3] is not table:
                entry = None
            if entry is not None and entry[0] <= k_lo < entry[1]:
                t_lo = entry[2]
            else:
                entry = self.bracket(sym, k_lo)
                t_lo = entry[2]
            if entry[0] <= k_hi < entry[1]:
                t_hi = entry[2]
            else:
                t_hi = self.bracket(sym, k_hi)[2]
            pnl = pos.pnl
            entry_price = pos.entry_price
            if self.model.formulas[sym].maintenance_at_entry:  # the same MM at every mark
                mm = self.model.maintenance(pos, lo)
                gap += min(pnl(signed_qty=qty, entry_price=entry_price, mark_price=lo),
                           pnl(signed_qty=qty, entry_price=entry_price, mark_price=hi)) - mm
                continue
            gap += min(pnl(signed_qty=qty, entry_price=entry_price, mark_price=lo)
                       - maintenance_margin(n_lo, t_lo),
                       pnl(signed_qty=qty, entry_price=entry_price, mark_price=hi)
                       - maintenance_margin(n_hi, t_hi))
        return gap

    def make_bands(self, account: Account, lows: list[float], highs: list[float]
                   ) -> tuple[float, float, list[tuple[Any, float, float, float]], Any] | None:
        """Mark bands inside which the cross pool provably stays above maintenance.

        At centre marks ``m0`` (the middle of the ranges) the pool's slack is ``S = wallet +
        sum_i g_i(m0)`` with ``g = upnl - MM``. Each of the ``n`` positions gets a budget
        ``b = S / (2n)``: a linear long loses at most ``q * (m0 - m)`` of ``g`` when its mark
        falls to ``m`` (MM only falls with it) and gains as it rises, a short at most
        ``|q| * (1 + 1) * (m - m0)`` as its mark rises (MM grows with slope ``mmr < 1``). While
        every mark stays inside its band the pool keeps at least ``S / 2 > 0``: that value is
        a valid lower bound, and the exact sum is needed only when a mark leaves its band.
        Inverse contracts (MM rises as the mark falls) and thin slack get no bands.

        Returns ``(wallet, slack bound, per-position checks, band_limits arrays)``.
        """
        centre = [0.5 * (lo + hi) for lo, hi in zip(lows, highs)]
        open_cross = [p for p in account.positions if p.qty != 0.0 and p.margin_mode == "cross"]
        if not open_cross or any(self.model.contracts[p.sym].inverse for p in open_cross):
            return None
        slack = self.exact(account, centre, centre)
        scale = abs(account.cross_wallet) + sum(self.model.contracts[p.sym].notional(p.qty, centre[p.sym])
                                                for p in open_cross)
        if not slack > 1e-9 * scale:  # too close to call (float noise): always exact
            return None
        budget = slack / (2 * len(open_cross))
        checks = []
        for pos in open_cross:
            size = abs(pos.qty)
            m0 = centre[pos.sym]
            if pos.qty > 0:
                checks.append((pos, pos.qty, m0 - budget / size, math.inf))
            else:
                checks.append((pos, pos.qty, -math.inf, m0 + budget / (2.0 * size)))
        limits: dict[int, list[float]] = {}
        for pos, _, floor, ceiling in checks:  # hedge legs of one symbol: the tighter ends
            both = limits.setdefault(pos.sym, [-math.inf, math.inf])
            both[0], both[1] = max(both[0], floor), min(both[1], ceiling)
        syms = sorted(limits)
        arrays = (np.array(syms, dtype=np.intp), np.array([limits[s][0] for s in syms]),
                  np.array([limits[s][1] for s in syms]))
        return account.wallet, 0.5 * slack * (1.0 - 1e-9), checks, arrays

    def bracket(self, sym: int, key: float) -> tuple[float, float, Any, Any]:
        """``(floor, next floor, tier, table)`` of ``key`` (``TierTable.position_key``: a
        notional, or a contract count) in ``sym``'s table in force.

        The range is the one over which ``TierTable.index_for_key`` gives the same bracket (a
        floor belongs to the upper bracket; the first reaches down, the last up, without
        bound). Remembered for :meth:`bound`.
        """
        table = self.model.tables[sym]
        index = table.index_for_key(key)  # raises the table's own error on NaN
        tiers = table.tiers
        floor = -math.inf if index == 0 else tiers[index].floor
        upper = tiers[index + 1].floor if index + 1 < len(tiers) else math.inf
        entry = (floor, upper, tiers[index], table)
        self._cache[sym] = entry
        return entry


def other_terms(model: Any, cross: dict[int, list[Position]],
            marks: list[float]) -> list[tuple[float, float]]:
    """Per cross symbol (in ``cross`` order), the (maintenance, UPNL) of the other symbols.

    Each position's terms are computed once; ``others[k] = prefix[k] + suffix[k+1]`` with
    the prefix summed left to right and the suffix right to left, one term at a time.
    """
    terms: list[list[tuple[float, float]]] = []
    for sym, legs in cross.items():
        mark = marks[sym]
        terms.append([(model.maintenance(pos, mark), pos.upnl(mark)) for pos in legs])
    count = len(terms)
    suffix_mm = [0.0] * (count + 1)
    suffix_up = [0.0] * (count + 1)
    for k in range(count - 1, -1, -1):
        mm, up = suffix_mm[k + 1], suffix_up[k + 1]
        for leg_mm, leg_up in terms[k]:
            mm, up = leg_mm + mm, leg_up + up
        suffix_mm[k], suffix_up[k] = mm, up
    others = []
    pre_mm = pre_up = 0.0
    for k in range(count):
        if k == 0:
            others.append((suffix_mm[1], suffix_up[1]))
        elif k == count - 1:
            others.append((pre_mm, pre_up))
        else:
            others.append((pre_mm + suffix_mm[k + 1], pre_up + suffix_up[k + 1]))
        for leg_mm, leg_up in terms[k]:
            pre_mm += leg_mm
            pre_up += leg_up
    return others
