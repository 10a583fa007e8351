"""Margin: the account's requirements and liquidation thresholds through the venue's math.

Nothing here is a venue formula: maintenance margin, liquidation and bankruptcy prices come
from the :class:`backtest.venues.base.Venue` (for Binance USDⓈ-M the FAQ formulas in
``backtest/venues/binance_usdm.py``). This module decides *which* positions form a margin
pool (each isolated position alone; all cross positions together), feeds the venue the pool's
wallet and legs, and caches the resulting thresholds the engine gates on.

Worked example (isolated long, one tier 0.5 %, no maintenance amount): 10,000 USDT notional
at 30,000 with 10x leverage posts 1,000 USDT; the venue's LP solves
``1000 + 0.3333*(P - 30000) = 0.3333*P*0.005`` -> ``P = 27,135.68``.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any

import numpy as np

from backtest.account import Account
from backtest.contracts import Contract, LinearContract
from backtest.cross_bounds import CrossBounds, other_terms
from backtest.positions import Position
from backtest.venues.base import Leg

__all__ = ["MarginModel"]

_SIDE_ARG = {"both": "both", "long": "long", "short": "short"}


class MarginModel:
    """Venue math applied to an :class:`Account`, with per-symbol tier tables in force.

    Parameters
    ----------
    venue : Venue
        Formulas (``maintenance_margin``, ``liquidation_price_resolved``, ``bankruptcy_price``).
    schedules : list of TierSchedule
        Tier schedule per symbol.
    allow_before_first : bool
        Use a schedule's earliest table before its first date.
    warnings : list of str
        Receives a warning when an earliest table is used early.
    contracts : list of Contract, optional
        Contract arithmetic per symbol (default: linear USDT contracts).
    """

    #: Per symbol, True where the venue charges maintenance on the entry value (empty: none).
    _at_entry: tuple[bool, ...] = ()
    #: Funding settlements read by the venue's funding term (None: no term; use_funding).
    _outlook: list[tuple[Any, Any]] | None = None

    def __init__(self, venue: Any, schedules: list[Any], *, allow_before_first: bool,
                 warnings: list[str], contracts: list[Contract] | None = None) -> None:
        self.venue = venue
        self.contracts = list(contracts) if contracts is not None else \
            [LinearContract("USDT", 1.0)] * len(schedules)
        #: Per symbol, the venue's pool formulas for its contract (venue.formulas).
        self.formulas = [venue.formulas(c) for c in self.contracts]
        if any(f.maintenance_at_entry for f in self.formulas):
            self._at_entry = tuple(f.maintenance_at_entry for f in self.formulas)
        self.schedules = schedules
        self.allow_before_first = allow_before_first
        self.warnings = warnings
        self.tables = [None] * len(schedules)
        self.version_ts = [None] * len(schedules)
        self.cross_multi = False
        self.mark_below = [-math.inf] * len(schedules)
        self.mark_above = [math.inf] * len(schedules)
        #: The cross pool's per-bar lower bound, linear in symbols.
        self.cross = CrossBounds(self)
        #: Per symbol, ``[lo, hi)`` (UTC ms) over which the selected version stays in force.
        self._span = [(math.inf, -math.inf)] * len(schedules)
        self._clock: Any = None
        _check_bases(venue, schedules)

    def use_funding(self, settlements: list[tuple[Any, Any]], clock: Any) -> None:
        """Charge the venue's funding term of maintenance (``Venue.funding_maintenance_rate``).

        ``settlements[sym]`` is ``(ts array UTC ms, rate array)``; ``clock()`` the run's time,
        UTC ms. Without a venue funding term this does nothing (and nothing changes).
        """
        if self.venue.funding_maintenance_rate is not None:
            self._outlook = list(settlements)
            self._clock = clock

    def next_funding_rate(self, sym: int, ts: int | None = None) -> float:
        """Rate of ``sym``'s next settlement strictly after ``ts`` (the run's time when None):
        announced one interval ahead (BitMEX, margin_rules.md §5); 0 when the data has none."""
        if self._outlook is None:
            return 0.0
        times, rates = self._outlook[sym]
        k = int(np.searchsorted(times, self._clock() if ts is None else ts, side="right"))
        return float(rates[k]) if k < len(rates) else 0.0

    def funding_reserve(self, pos: Position) -> float:
        """The venue's funding term of ``pos``'s maintenance: entry value x
        ``funding_maintenance_rate(side, next rate)``, margin asset (0 without one)."""
        if self._outlook is None or pos.qty == 0.0:
            return 0.0
        rate = self.venue.funding_maintenance_rate(1 if pos.qty > 0 else -1,
                                                   self.next_funding_rate(pos.sym))
        return self.contracts[pos.sym].notional(pos.qty, pos.entry_price) * rate

    # ------------------------------------------------------------------ tier tables
    def set_time(self, ts: int) -> bool:
        """Select the tables in force at ``ts`` (UTC ms); True when any table changed."""
        changed = False
        for sym, schedule in enumerate(self.schedules):
            lo, hi = self._span[sym]
            if lo <= ts < hi:  # still inside the version in force: nothing to select
                continue
            start = schedule.effective_from_at(ts)
            if start != self.version_ts[sym]:
                if ts < schedule.first_effective_ms and self.tables[sym] is None:
                    if not self.allow_before_first:
                        schedule.at(ts)  # raises the schedule's own clear TierError
                    self.warnings.append(
                        f"tiers {schedule.label}: no table known before the first version; the "
                        "earliest one is used for earlier dates (allow_tiers_before_first)")
                self.tables[sym] = schedule.at(ts, allow_before_first=True)
                self.version_ts[sym] = start
                changed = True
            self._span[sym] = _span(schedule, ts)
        return changed

    def next_change(self, ts: int) -> int | None:
        """Earliest tier-version start after ``ts`` over all symbols, or None."""
        best = None
        for schedule in self.schedules:
            for start, _ in schedule.versions:
                if start > ts and (best is None or start < best):
                    best = start
                    break
        return best

    def tier(self, sym: int, qty: float, price: float) -> Any:
        """The tier of a ``sym`` position of ``qty`` at ``price`` in the table in force (the
        table's basis decides the key: ``TierTable.for_position``)."""
        return self.tables[sym].for_position(qty, price, self.contracts[sym])

    def tier_index(self, sym: int, qty: float, price: float) -> int:
        """0-based tier index of a ``sym`` position of ``qty`` at ``price``."""
        return self.tables[sym].index_for_position(qty, price, self.contracts[sym])

    def maintenance(self, pos: Position, mark: float) -> float:
        """Maintenance margin of a position at ``mark`` (venue formula, tier by the table's basis).

        A venue that charges maintenance on the entry value (``maintenance_at_entry``: Bybit,
        BitMEX) gets the entry notional, whatever the mark; a venue funding term
        (:meth:`funding_reserve`) is added.
        """
        sym = pos.sym
        contract = self.contracts[sym]
        price = pos.entry_price if self._at_entry and self._at_entry[sym] else mark
        notional = contract.notional(pos.qty, price)
        mm = self.venue.maintenance_margin(
            notional, self.tables[sym].for_position(pos.qty, price, contract, notional))
        if self._outlook is not None:
            mm += self.funding_reserve(pos)
        return mm

    def max_leverage(self, sym: int, qty: float, price: float, notional: float | None = None) -> float:
        """Largest leverage allowed for a position of ``qty`` at ``price`` (0 when above the
        last cap); ``notional``: its notional if the caller has it (margin asset)."""
        table = self.tables[sym]
        contract = self.contracts[sym]
        key = table.position_key(qty, price, contract, notional)
        if abs(key) >= table.max_notional:
            return 0.0
        return table.tiers[table.index_for_key(key)].max_leverage

    def check_leverage(self, sym: int, symbol: str, leverage: float, notional: float,
                       ts: int, *, price: float) -> None:
        """Refuse, before a run, a leverage above the bracket cap of the configured notional.

        Binance caps the leverage of a position by the bracket its notional falls in ("the
        allowed leverage is capped by the bracket the notional falls in", margin_rules.md
        §2.1 "Initial margin"; the leverage-bracket endpoint): an order above the cap is
        refused, so a run configured so would only collect rejections.

        ``notional`` is the configured position notional (margin asset) and ``price`` the
        mark it is taken at (the position's size for a contract-count table).

        Raises
        ------
        ConfigError
            Naming the symbol, the leverage asked, the cap, the bracket and the fix.
        """
        from backtest.errors import ConfigError, utc_text

        contract = self.contracts[sym]
        asset = contract.margin_asset
        label = self.venue.label
        table = self.tables[sym]
        qty = contract.qty_for_notional(abs(notional), price) if price > 0 else 0.0
        cap = self.max_leverage(sym, qty, price, notional)
        if leverage <= cap + 1e-12:
            return
        unit = table.unit(contract)
        # the table's key per unit of notional at this price (1 for a notional table)
        per_notional = table.position_key(qty, price, contract, notional) / notional if notional else 1.0
        index = table.index_for_position(qty, price, contract, notional)
        tier = table.tiers[index]
        first = table.tiers[0].max_leverage
        if cap > 0:
            where = f"bracket {index + 1} ({tier.floor:,.0f} to {tier.cap:,.0f} {unit}, max {tier.max_leverage:g}x)"
            expected = f"expected a leverage <= {cap:g}x"
            fix = f"Lower the leverage to {cap:g}x or less or the position size (up to {first:g}x in the first bracket)"
        else:
            # the notional grows with the leverage: the largest leverage whose notional stays in a bracket
            base = notional / leverage * per_notional if leverage > 0 else math.nan  # key per 1x
            allowed = (max(min(t.max_leverage, t.cap / base) for t in table.tiers)
                       if math.isfinite(base) and base > 0 else math.nan)
            most = f"{allowed:g}x" if math.isfinite(allowed) else "one that keeps the notional in a bracket"
            where = f"above the largest bracket cap {table.max_notional:,.0f} {unit} (no leverage allows it)"
            expected = (f"expected a leverage of at most {most} for this balance and exposure, so that the position "
                        f"stays under {table.max_notional:,.0f} {unit}")
            fix = f"Lower the leverage to {most} or less, or the balance / exposure"
        raise ConfigError(
            f"{symbol}: leverage {leverage:g}x is above the venue's cap {cap:g}x for the configured position "
            f"notional {notional:,.2f} {asset}: {where}, in the tier table in force at {utc_text(ts)} ({label} caps "
            f"leverage by the notional's bracket); {expected}. {fix}")

    # ------------------------------------------------------------------ pools
    def _leg_of(self, pos: Position, tier: Any) -> Any:
        side = 1 if pos.qty > 0 else -1
        return Leg(side, abs(pos.qty), pos.entry_price, tier.mmr, tier.cum)

    def _solve(self, wallet: float, legs: list[Position], sym: int, other_mm: float = 0.0,
               other_upnl: float = 0.0) -> float:
        """The pool's liquidation price with brackets re-solved at the LP notional.

        The venue's resolver starts every leg at the first bracket, solves, and stops when
        the bracket of the notional at that price is still the first one; otherwise it
        iterates. Most refreshes end there, so the first step is taken here with the venue's
        plain ``liquidation_price`` (the same formula on the same legs: the same float) and
        the resolver runs only when a leg lands in another bracket. Avoids two leg copies
        and a validation per refresh, with identical results.
        """
        table = self.tables[sym]
        first = table.tiers[0]
        formulas = self.formulas[sym]
        if formulas.brackets_at_entry:  # the bracket does not depend on the LP: ask the venue
            try:
                return formulas.liquidation_price_resolved(
                    wallet_balance=wallet, tiers=table, other_maintenance=other_mm,
                    other_unrealized=other_upnl,
                    **{_SIDE_ARG[p.position_side]: self._leg_of(p, first) for p in legs})
            except Exception:  # as below: no self-consistent threshold -> none
                return math.nan
        if formulas.one_leg is not None and len(legs) == 1:
            price = self._solve_one(wallet, legs[0], table, first, other_mm, other_upnl,
                                    formulas.one_leg, self.contracts[sym])
            if price is not None:
                return price
        kwargs = {}
        for pos in legs:
            kwargs[_SIDE_ARG[pos.position_side]] = self._leg_of(pos, first)
        try:
            price = formulas.liquidation_price(
                wallet_balance=wallet, other_maintenance=other_mm, other_unrealized=other_upnl,
                **kwargs)
            if len(table.tiers) == 1:  # one bracket: the resolver's first step is final
                return price
            at = 0.0 if price != price else max(price, 0.0)  # the resolver's notional price
            contract = self.contracts[sym]
            for leg in kwargs.values():
                if table.index_for_position(leg.qty, at, contract) != 0:
                    break
            else:
                return price
            return formulas.liquidation_price_resolved(
                wallet_balance=wallet, tiers=table, other_maintenance=other_mm,
                other_unrealized=other_upnl, **kwargs)
        except Exception:  # a table with no self-consistent tier: fall back to no threshold
            return math.nan

    def _solve_one(self, wallet: float, pos: Position, table: Any, first: Any, other_mm: float,
                   other_upnl: float, one_leg: Any, contract: Contract) -> float | None:
        """:meth:`_solve` of one leg through the venue's one-leg helper (the same float).

        Returns None when the general path must decide: a leg that ``Leg``/``check_legs``
        would reject (the general path turns that into its own outcome), or a first-step
        price whose notional lies outside the first bracket (the resolver runs).
        """
        qty = pos.qty
        side = 1 if qty > 0 else -1
        size = abs(qty)
        entry = pos.entry_price
        kind = pos.position_side
        if not (size >= 0 and entry > 0 and (kind == "both" or kind == ("long" if side == 1
                                                                          else "short"))):
            return None
        try:
            price = one_leg(wallet, side, size, entry, first.mmr, first.cum, other_mm, other_upnl)
            if len(table.tiers) == 1:
                return price
            at = 0.0 if price != price else max(price, 0.0)
            return price if table.index_for_position(size, at, contract) == 0 else None
        except Exception:  # as in _solve: a table with no self-consistent tier -> no threshold
            return math.nan

    def refresh(self, account: Account, marks: list[float]) -> None:
        """Recompute every open position's liquidation/bankruptcy price and the gates.

        Called after any state change (fill, funding, liquidation, leverage, tier version).
        ``marks`` are the current mark prices (only multi-symbol cross pools use them).

        A cross pool over several symbols solves each symbol with the maintenance and PnL of
        the *other* symbols (TMM1, UPNL1 of the venue's formula). Those are built from one
        pass of per-symbol terms, as prefix + suffix sums, so a refresh costs O(symbols),
        not O(symbols^2); the prefix/suffix order gives the very floats of a sequential sum
        of the others for up to three symbols.
        """
        n = len(self.schedules)
        below = [-math.inf] * n
        above = [math.inf] * n
        cross: dict[int, list[Position]] = {}
        formulas = self.formulas
        self.cross.invalidate()  # the pool changed: its safe bands are rebuilt when next needed
        for pos in account.positions:
            qty = pos.qty
            if qty == 0.0:
                continue
            if pos.margin_mode == "isolated":
                margin = pos.margin
                sym = pos.sym
                pool = formulas[sym]
                lp = None
                # the venue's funding term: a requirement that does not move with the mark
                reserve = 0.0 if self._outlook is None else self.funding_reserve(pos)
                if pool.one_leg is not None and not pool.brackets_at_entry:  # _solve's own first
                    table = self.tables[sym]  # step for one leg, without its wrapping (per flip)
                    lp = self._solve_one(margin, pos, table, table.tiers[0], reserve, 0.0,
                                         pool.one_leg, self.contracts[sym])
                if lp is None:
                    lp = self._solve(margin, [pos], sym, reserve)
                pos.liquidation_price = lp
                pos.bankruptcy_price = formulas[sym].bankruptcy_price(
                    wallet_balance=margin, side=1 if qty > 0 else -1, qty=abs(qty),
                    entry_price=pos.entry_price)
                _gate(lp, qty, sym, below, above)
            else:
                cross.setdefault(pos.sym, []).append(pos)
        self.cross_multi = len(cross) > 1
        if cross:
            cross_wallet = account.cross_wallet
            others = other_terms(self, cross, marks) if self.cross_multi else None
            for k, (sym, legs) in enumerate(cross.items()):
                other_mm, other_upnl = others[k] if others is not None else (0.0, 0.0)
                if self._outlook is not None:  # this symbol's funding term (others' is in theirs)
                    other_mm += sum(self.funding_reserve(p) for p in legs)
                lp = self._solve(cross_wallet, legs, sym, other_mm, other_upnl)
                net = sum(p.qty for p in legs)
                bankruptcy_price = formulas[sym].bankruptcy_price
                for pos in legs:
                    pos.liquidation_price = lp
                    pos.bankruptcy_price = bankruptcy_price(
                        wallet_balance=cross_wallet, side=1 if pos.qty > 0 else -1,
                        qty=abs(pos.qty), entry_price=pos.entry_price,
                        other_unrealized=other_upnl + sum(
                            p.upnl(marks[sym]) for p in legs if p is not pos))
                if not self.cross_multi:
                    _gate(lp, net if net != 0.0 else -1.0, sym, below, above)
        self.mark_below = below
        self.mark_above = above

    def pool_gap(self, account: Account, positions: list[Position], marks: list[float]) -> float:
        """Equity minus maintenance margin of a pool at ``marks`` (<= 0 liquidates)."""
        if positions[0].margin_mode == "isolated":
            pos = positions[0]
            wallet = pos.margin
        else:
            wallet = account.cross_wallet
        gap = wallet
        for pos in positions:
            mark = marks[pos.sym]
            gap += pos.upnl(mark) - self.maintenance(pos, mark)
        return gap

    def cross_bound_gap(self, account: Account, lows: list[float], highs: list[float]) -> float:
        """Lower bound of the cross pool's equity minus MM over a bar's mark ranges.

        ``upnl - MM`` of one position is monotone in its mark (mmr < 1), so its minimum over
        ``[low, high]`` is at an end; the sum of the minima bounds the pool from below (see
        :class:`backtest.cross_bounds.CrossBounds` for how it is kept linear in symbols).
        """
        return self.cross.bound(account, lows, highs)


def _gate(lp: float, direction: float, sym: int, below: list[float], above: list[float]) -> None:
    """Add a pool's threshold: a net long breaches as the mark falls to LP, a short as it rises."""
    if lp != lp:  # nan: equity - MM does not depend on the price
        return
    if direction > 0:
        if lp > 0:
            below[sym] = max(below[sym], lp)
    else:
        above[sym] = min(above[sym], lp if lp > 0 else 0.0)


def _check_bases(venue: Any, schedules: list[Any]) -> None:
    """Refuse, before a run, a tier table whose basis the venue's formulas cannot read.

    A venue's resolvers look legs up in its own basis (``Venue.tier_bases``); a table counted
    otherwise (OKX contract counts handed to Binance's rules) would pick wrong brackets.
    """
    bases = getattr(venue, "tier_bases", ("notional",))
    for schedule in schedules:
        for _, table in schedule.versions:
            if table.basis not in bases:
                from backtest.errors import ConfigError
                raise ConfigError(
                    f"tiers {table.label}: venue {venue.name} reads tier tables by "
                    f"{' or '.join(bases)}, this table counts {table.basis}; use the tiers of "
                    f"the venue's own exchange ({venue.exchange}) or a table by {bases[0]}")


def _span(schedule: Any, ts: int) -> tuple[float, float]:
    """``[lo, hi)`` around ``ts`` over which ``schedule.effective_from_at`` stays the same.

    Before the first version the earliest one applies, so the first span starts at -inf.
    """
    starts = [start for start, _ in schedule.versions]
    index = bisect_right(starts, ts)
    lo = starts[index - 1] if index > 1 else -math.inf
    hi = starts[index] if index < len(starts) else math.inf
    return lo, hi
