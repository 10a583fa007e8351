"""Event sources: what happens at dated instants of a run, through one interface.

A source yields ``(ts, payload)`` pairs (UTC ms) and applies a payload when the run reaches
it; its ``priority`` orders sources acting at the same instant (lower first). The bar step
(``backtest.engine.RunLoop``) collects every source's events once, before the loop:

* an event at a strategy bar's **open** is applied in the bar-open phase of that bar, in
  ``(priority, source order, emission order)``; the account is refreshed once after them
  when any ``apply`` returned True;
* an event strictly **inside** a bar is applied at the next bar's open, unless the source is
  ``intrabar`` (funding): then the bar's intrabar walk runs and places it on the path
  (``backtest.intrabar``).

A source may also map itself onto the bars (``bar_events(rank) -> (at_open, inside_bars)``,
e.g. funding from its maps cached on the market data) instead of being mapped from
``events()``.

Built-in sources, in priority order: :class:`FundingSource` (settlements, 0),
:class:`LedgerEvents` (the ledger's collateral repricing and injected ADL events,
``backtest.adl``, 5), :class:`TierVersions` (risk-tier tables taking effect, 10),
:class:`MarketVersions` (fees, tick, lot and liquidation-fee versions, 20). Other sources
(scenario injections, ...) implement the same protocol and are passed to
``RunLoop(..., sources=[...])``; docs/CONTRACTS.md §10.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Iterable, Protocol, runtime_checkable

import numpy as np

__all__ = ["EventSource", "FundingSource", "LedgerEvents", "MarketVersions", "TierVersions",
           "schedule_events"]

#: Priorities of the built-in sources (lower acts first); a caller's sources pick theirs.
FUNDING, LEDGER, TIERS, MARKETS = 0, 5, 10, 20


@runtime_checkable
class EventSource(Protocol):
    """Something that acts at dated instants of a run.

    Attributes
    ----------
    name : str
        Short name (diagnostics).
    priority : int
        Order among sources acting at the same instant (lower first).
    intrabar : bool
        True when an event inside a bar must be placed on the intrabar path (the walk then
        runs for that bar and the source handles it there); False: it acts at the next open.
    """

    name: str
    priority: int
    intrabar: bool

    def events(self) -> Iterable[tuple[int, Any]]:
        """``(ts, payload)`` of every event of the run, ``ts`` in UTC ms, in time order."""

    def apply(self, payload: Any) -> bool:
        """Act on ``payload`` at the current instant; True when the account or its thresholds
        changed (the step then refreshes liquidation prices and gates once)."""


def schedule_events(bar_ts: np.ndarray, interval_ms: int, sources: list[EventSource]
                    ) -> tuple[list[EventSource], dict[int, tuple[tuple[int, Any], ...]], set[int]]:
    """Map the sources' events onto the strategy bars.

    Returns
    -------
    ordered : list of EventSource
        The sources by priority (ties: the given order).
    at_open : dict
        Bar index -> ``((k, payload), ...)`` applied at its open in that order, ``k`` the
        source's index in ``ordered``.
    forced : set of int
        Bars whose intrabar walk must run (an ``intrabar`` source has an event inside them).
    """
    ordered = sorted(sources, key=lambda source: source.priority)
    n = len(bar_ts)
    end = int(bar_ts[-1]) + interval_ms if n else 0
    at_open: dict[int, tuple[tuple[int, Any], ...]] = {}
    forced: set[int] = set()
    for rank, source in enumerate(ordered):
        mapped = getattr(source, "bar_events", None)
        if mapped is not None:  # the source maps itself (cached on the data)
            opens, inside = mapped(rank)
            forced |= inside
        else:
            opens = _map_events(bar_ts, end, rank, source, forced)
        if not at_open:
            at_open = opens  # read-only sharing: merged into a new dict below when needed
            continue
        if opens:
            at_open = dict(at_open)
            for bar, items in opens.items():
                at_open[bar] = at_open.get(bar, ()) + items
    return ordered, at_open, forced


def _map_events(bar_ts: np.ndarray, end: int, rank: int, source: EventSource,
                forced: set[int]) -> dict[int, tuple[tuple[int, Any], ...]]:
    """One source's events by bar: at a bar's open there, inside a bar at the next open (or
    on the bar's path, ``forced``, for an ``intrabar`` source)."""
    n = len(bar_ts)
    pairs = list(source.events())
    out: dict[int, tuple[tuple[int, Any], ...]] = {}
    if not pairs:
        return out
    times = np.fromiter((t for t, _ in pairs), dtype=np.int64, count=len(pairs))
    containing = np.searchsorted(bar_ts, times, side="right") - 1
    following = np.searchsorted(bar_ts, times, side="left")
    for (t, payload), bar, nxt in zip(pairs, containing.tolist(), following.tolist()):
        if t >= end:
            continue
        if bar >= 0 and t == int(bar_ts[bar]):
            out[bar] = out.get(bar, ()) + ((rank, payload),)
        elif source.intrabar:
            if bar >= 0:
                forced.add(bar)
        elif nxt < n:
            out[nxt] = out.get(nxt, ()) + ((rank, payload),)
    return out


class FundingSource:
    """Funding settlements (``backtest.funding.FundingSchedule``) as an event source."""

    name = "funding"
    priority = FUNDING
    intrabar = True

    def __init__(self, funding: Any, data: Any) -> None:
        self.funding = funding
        self.data = data

    def events(self) -> Iterable[tuple[int, Any]]:
        ts = self.data.ts
        for bar, items in self.funding.at_open.items():
            for sym, k in items:
                yield int(ts[bar]), (sym, k)
        for items in self.funding.inside.values():
            for t, sym, k in items:
                yield t, (sym, k)

    def bar_events(self, rank: int) -> tuple[Any, set[int]]:
        """The settlements by bar (the schedule's cached maps, ``backtest.funding``): at the
        open, and the bars with a settlement inside (walked)."""
        cache = self.data.__dict__.setdefault("_run_cache", {})
        key = ("funding_events", rank)
        hit = cache.get(key)
        if hit is None or hit[0] is not self.funding.at_open:
            opens = {bar: tuple((rank, item) for item in items) for bar, items in self.funding.at_open.items()}
            hit = cache[key] = (self.funding.at_open, MappingProxyType(opens))
        return hit[1], set(self.funding.inside)

    def apply(self, payload: tuple[int, int]) -> bool:
        return self.funding.settle(*payload)


class LedgerEvents:
    """The ledger's bar-open events (``backtest.adl``): collateral repriced at the open marks
    (every bar while collateral is held) and injected ADL events."""

    name = "ledger"
    priority = LEDGER
    intrabar = False

    def __init__(self, state: Any) -> None:
        self.st = state

    def events(self) -> Iterable[tuple[int, Any]]:
        from backtest.adl import event_bars

        ts = self.st.data.ts
        for bar in sorted(event_bars(self.st)):
            yield int(ts[bar]), bar

    def bar_events(self, rank: int) -> tuple[dict[int, tuple[tuple[int, Any], ...]], set[int]]:
        """The ledger's bars, mapped directly (they are bar indices already)."""
        from backtest.adl import event_bars

        return {bar: ((rank, bar),) for bar in sorted(event_bars(self.st))}, set()

    def apply(self, payload: int) -> bool:
        from backtest.adl import bar_open_events

        return bar_open_events(self.st, payload)


class TierVersions:
    """Risk-tier table versions taking effect inside the run (``MarginModel.set_time``)."""

    name = "tiers"
    priority = TIERS
    intrabar = False

    def __init__(self, state: Any) -> None:
        self.st = state

    def events(self) -> Iterable[tuple[int, Any]]:
        data = self.st.data
        first, last = int(data.ts[0]), int(data.ts[-1])
        t = first
        while True:
            nxt = self.st.margin.next_change(t)
            if nxt is None or nxt > last:
                return
            yield nxt, nxt
            t = nxt

    def apply(self, payload: int) -> bool:
        # the version in force at the bar's open (a version starting inside a bar applies at
        # the next open: the bar-open phase is where rule changes land)
        return self.st.margin.set_time(self.st.now)


class MarketVersions:
    """Contract spec versions (fees, tick, lot, liquidation fee) taking effect inside the run.

    ``MarketData.market_versions[symbol]`` lists the later versions (``MarketSpec`` with their
    ``effective_from``); applying one replaces the symbol's spec, its fee rates (unless the
    config fixes ``fees``) and its clearance rate (unless the config fixes
    ``liquidation_fee_rate``). Margin thresholds do not depend on them: no refresh.
    """

    name = "markets"
    priority = MARKETS
    intrabar = False

    def __init__(self, state: Any) -> None:
        self.st = state

    def events(self) -> Iterable[tuple[int, Any]]:
        versions = getattr(self.st.data, "market_versions", None) or {}
        for sym, symbol in enumerate(self.st.data.symbols):
            for spec in versions.get(symbol, ()):
                yield int(spec.effective_from), (sym, spec)

    def apply(self, payload: tuple[int, Any]) -> bool:
        from backtest.state import run_fee_rates

        sym, spec = payload
        st = self.st
        st.markets[sym] = spec
        st.fee_rates[sym] = run_fee_rates(st.config, spec)
        st.clearance[sym] = st._clearance(spec)
        st.market_log.append((sym, spec))
        return False
