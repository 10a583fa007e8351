"""Auto-deleveraging (ADL) as an event: the account's profitable positions reduced by rank.

When a liquidated position's loss beyond its bankruptcy price is more than the insurance
fund can pay, the venue closes opposite positions of other traders, in its ADL order, with no
fee (margin_rules.md §2.1 step 5, cascades.md §C.1). The order, the quantile shown and the
close price are the venue's rule (``Venue.adl_ranking()``, a
:class:`backtest.venues.adl_rules.AdlRule`, each formula cited in its venue module):

* Binance ranks by ``PnL% x margin ratio`` (``binance_usdm.adl_score``), quantile = rank / n;
* BitMEX by ``PnL% x effective leverage`` of position values, its quantity-weighted 20 %
  indicator (``bitmex.ADL_RULE``); Bybit and OKX by the same two factors
  (``bybit.ADL_RULE``, ``okx.ADL_RULE``);
* all of these close at the **bankruptcy price of the liquidated order**; Hyperliquid ranks
  by ``(mark/entry) x (notional/account value)`` and closes at the **previous oracle price**
  (``hyperliquid.ADL_RULE``);
* dYdX v4 does not rank: it offsets against opposite positions from a pseudo-random start
  (drawn from the run's seed, so runs repeat) at the bankruptcy price (``dydx_v4.ADL_RULE``).

Each ``adl`` row records the rule's name and the close price basis.

A backtest has one account, so the liquidated counterparty is modelled, not simulated:

* **injected events** (``RunConfig.adl_events``, or the stress term ``adl@TIME``): at the
  first bar open at or after ``ts`` a counterparty on the other side of the account's
  profitable positions is liquidated with a loss of ``deficit`` USDT beyond its bankruptcy
  price (None: more than any fund holds). The fund pays what it can; the share it cannot
  pay, ``uncovered / deficit`` (1 when ``deficit`` is None), of the counterparty's size is
  deleveraged. The counterparty's size is ``qty`` base units (None: as large as the
  account's profitable positions: the worst case) and its bankruptcy price ``price`` (None:
  the mark at the event's bar open);
* **the run's own liquidations**: when a configured fund (``RunConfig.insurance_fund``)
  cannot pay a takeover's loss, the uncovered share of the liquidated size is deleveraged
  against the account's own opposite positions of that symbol (hedge mode, isolated legs);
  what no position of the account can absorb is socialised on other traders (the fund's
  ``insurance_fund_uncovered`` figure).

The ranking queue is the account's own positions on the deleveraged side (the only traders
the run knows): a lone position has quantile 1 (the head of the queue), which is the worst
case for the account. Losing positions (score <= 0) are never reached by a ranked rule.
"""
from __future__ import annotations

import math
import random
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from backtest.errors import ConfigError
from backtest.orders import Order
from backtest.venues.adl_rules import PREVIOUS_ORACLE, AdlCandidate, AdlRule

__all__ = ["ADL_COLUMNS", "AdlEvent", "Deleverager", "adl_events", "adl_fills", "adl_queue"]

#: adl.parquet columns.
ADL_COLUMNS = ("ts", "symbol", "side", "qty", "price", "realized_pnl", "score", "quantile", "cause",
               "rule", "price_basis")
_TS = pl.Datetime("ms", "UTC")


@dataclass(frozen=True)
class AdlEvent:
    """An injected counterparty liquidation that the fund may not cover.

    Attributes
    ----------
    ts : int
        When, UTC ms (acts at the first bar open at or after it).
    symbol : str or None
        The symbol (None: every symbol where the account holds a profitable position).
    deficit : float or None
        The counterparty's loss beyond bankruptcy, USDT (None: more than any fund).
    qty : float or None
        The counterparty's size, base units (None: the account's whole profitable size).
    price : float or None
        The counterparty's bankruptcy price, USDT (None: the mark at the event). Needs
        ``symbol``.
    """

    ts: int
    symbol: str | None = None
    deficit: float | None = None
    qty: float | None = None
    price: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the manifest's config)."""
        return {k: getattr(self, k) for k in ("ts", "symbol", "deficit", "qty", "price")}


def adl_events(value: Any, *, where: str = "RunConfig.adl_events") -> tuple[AdlEvent, ...]:
    """Validate ``value`` (events or mappings ``{ts, symbol?, deficit?, qty?, price?}``).

    Raises
    ------
    ConfigError
        Naming the event, the field, what was expected and what was found.
    """
    from data_loaders.errors import DataError
    from data_loaders.schemas import to_ms

    if value is None:
        return ()
    if isinstance(value, (AdlEvent, Mapping)) or not isinstance(value, Iterable) or isinstance(value, str):
        value = [value]
    keys = ("ts", "symbol", "deficit", "qty", "price")
    out = []
    for k, item in enumerate(value):
        if isinstance(item, AdlEvent):
            item = item.to_dict()
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: expected event {k} as a table {{ts = ..., symbol = ...}}, "
                              f"found {item!r}; fix: e.g. [{{ts = \"2022-11-09T13:00Z\"}}]")
        unknown = [key for key in item if key not in keys]
        if unknown:
            from backtest.errors import did_you_mean

            raise ConfigError(f"{where}: expected event {k}'s keys among {', '.join(keys)}, found "
                              f"{unknown[0]!r}{did_you_mean(str(unknown[0]), keys)}")
        if item.get("ts") is None:
            raise ConfigError(f"{where}: expected event {k} to have a ts, found none; fix: e.g. "
                              "ts = \"2022-11-09T13:00Z\"")
        try:
            ts = to_ms(item["ts"], naive="reject")
        except (DataError, TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"{where}: expected event {k}'s ts as a UTC time (e.g. "
                              f"\"2022-11-09T13:00Z\"), found {item['ts']!r} ({exc})") from None
        numbers = {}
        for key in ("deficit", "qty", "price"):
            v = item.get(key)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)
                                  or not math.isfinite(v) or v <= 0):
                raise ConfigError(f"{where}: expected event {k}'s {key} as a number > 0 or none, "
                                  f"found {v!r}")
            numbers[key] = None if v is None else float(v)
        symbol = item.get("symbol")
        if symbol is not None and not isinstance(symbol, str):
            raise ConfigError(f"{where}: expected event {k}'s symbol as a symbol name, found {symbol!r}")
        if numbers["price"] is not None and symbol is None:
            raise ConfigError(f"{where}: expected a symbol with event {k}'s bankruptcy price, found "
                              "none; add symbol = \"BTC/USDT:USDT\"")
        out.append(AdlEvent(ts, symbol, numbers["deficit"], numbers["qty"], numbers["price"]))
    return tuple(sorted(out, key=lambda e: e.ts))


def adl_queue(scores: list[float], *, ranked: bool, start: int = 0) -> list[int]:
    """The order in which a venue's ADL reaches the queued positions (indexes into ``scores``).

    ``ranked``: highest score first, ties in queue order, positions scoring <= 0 (losing)
    never reached (margin_rules.md §2.1 step 5, §3.4, §4, §5, §6). Not ranked (dYdX v4,
    §7): every position in turn, starting at ``start`` and wrapping around.
    """
    n = len(scores)
    if not ranked:
        return [(start + k) % n for k in range(n)]
    order = sorted(range(n), key=lambda k: -scores[k])  # stable: ties keep the queue order
    return [k for k in order if scores[k] > 0.0]


def adl_fills(scores: list[float], qtys: list[float], qty: float, *, ranked: bool,
              start: int = 0) -> list[tuple[int, float]]:
    """``(index, size closed)`` down the :func:`adl_queue` until ``qty`` is matched.

    Each position closes what is left of ``qty`` or its whole size, whichever is smaller
    (BitMEX's example: six longs, a short of 20 liquidated -> the two best-ranked close 10
    each; margin_rules.md §5).
    """
    fills = []
    left = qty
    for k in adl_queue(scores, ranked=ranked, start=start):
        if left <= 0.0:
            break
        size = min(abs(qtys[k]), left)
        left -= size
        fills.append((k, size))
    return fills


class Deleverager:
    """Runs ADL events against a :class:`~backtest.state.RunState` and logs the ``adl`` table."""

    def __init__(self, state: Any) -> None:
        # a weak reference: the state holds this object (no cycle; a finished run is freed
        # by reference counting)
        self._state = weakref.ref(state)
        self.rows: list[tuple] = []
        #: The venue's ADL rule (ranking, quantiles, close price basis; None: no ADL).
        self.rule: AdlRule | None = state.venue.adl_ranking()
        symbols = state.data.symbols
        for ev in state.config.adl_events:
            if ev.symbol is not None and ev.symbol not in symbols:
                from backtest.errors import did_you_mean

                raise ConfigError(f"adl event at {ev.ts}: symbol {ev.symbol!r} is not in the run"
                                  f"{did_you_mean(ev.symbol, symbols)}; run symbols: {', '.join(symbols)}")
        ts = np.asarray(state.data.ts)
        self.at_bar: dict[int, list[AdlEvent]] = {}
        for ev in state.config.adl_events:
            i = int(np.searchsorted(ts, ev.ts, side="left"))
            if i < len(ts):
                self.at_bar.setdefault(i, []).append(ev)

    @property
    def st(self) -> Any:
        """The run state."""
        return self._state()

    # ------------------------------------------------------------------ triggers
    def inject(self, i: int) -> bool:
        """Run the injected events of bar ``i`` (at its open); True if a position changed."""
        st = self.st
        changed = False
        for ev in self.at_bar.get(i, ()):
            fund = st.account.fund
            if ev.deficit is None:
                fund.book(-max(fund.balance, 0.0), "counterparty_liquidation", st.now)
                share = 1.0
            else:
                uncovered = fund.book(-ev.deficit, "counterparty_liquidation", st.now)
                fund.take_pending()  # this event's own ADL follows here
                share = uncovered / ev.deficit
            if share <= 0.0:
                continue
            syms = range(st.n_symbols) if ev.symbol is None else [st.data.symbols.index(ev.symbol)]
            for sym in syms:
                price = ev.price if ev.price is not None else st.marks[sym]
                for side in (1, -1):  # the account's longs face a short counterparty, and back
                    qty = math.inf if ev.qty is None else ev.qty * share
                    if ev.qty is None and share < 1.0:
                        qty = share * sum(abs(p.qty) for p in st.account.sym_legs[sym]
                                          if p.qty * side > 0)
                    changed |= self.deleverage(sym, side, qty, price, "injected")
        return changed

    def after_liquidation(self, rows: list[list]) -> None:
        """A takeover the fund could not pay: deleverage the account's opposite positions.

        ``rows`` are the takeover's liquidations rows (symbol, side, qty, bankruptcy price,
        fund delta at indexes 2, 3, 4, 10, 17).
        """
        fund = self.st.account.fund
        pending = fund.take_pending()
        if pending <= 0.0:
            return
        paid = [max(0.0, -row[17]) for row in rows]
        total = sum(paid) or 1.0
        changed = False
        symbols = self.st.data.symbols
        share = min(1.0, pending / total)  # each row's part of the unpaid loss, as a size share
        for row, part in zip(rows, paid):
            if part <= 0.0:
                continue
            side = -1 if row[3] == "long" else 1  # the liquidated long's counterparts are shorts
            changed |= self.deleverage(symbols.index(row[2]), side, row[4] * share, row[10],
                                       "fund_exhausted")
        if changed:
            self.st.refresh()

    # ------------------------------------------------------------------ the reduction
    def deleverage(self, sym: int, side: int, qty: float, price: float, cause: str) -> bool:
        """Close up to ``qty`` of the account's ``side`` positions of ``sym``, in the venue's
        queue order (:func:`adl_queue`), no fee. True if anything was closed.

        ``price`` is the liquidated order's bankruptcy price; a venue whose rule closes at the
        previous oracle price (Hyperliquid) closes at :meth:`previous_oracle` instead.
        """
        st = self.st
        rule = self.rule
        acct = st.account
        queue = [p for p in acct.sym_legs[sym] if p.qty * side > 0]
        if rule is None or not queue or not qty > 0.0 or not price > 0.0:
            return False
        if rule.price_basis == PREVIOUS_ORACLE:
            price = self.previous_oracle(sym, cause)
        candidates = [self._candidate(pos) for pos in queue]
        if rule.score is None:
            scores = quantiles = [math.nan] * len(queue)
            start = self._seeded_start(sym, side, len(queue))
        else:
            scores = [rule.score(c) for c in candidates]
            quantiles = (rule.quantiles(scores, [c.qty for c in candidates])
                         if rule.quantiles is not None else [math.nan] * len(queue))
            start = 0
        fills = adl_fills(scores, [c.qty for c in candidates], qty,
                          ranked=rule.score is not None, start=start)
        for k, size in fills:
            self._close(queue[k], size, price, scores[k], quantiles[k], cause)
        if fills:
            acct.changed(sym)
        return bool(fills)

    def _candidate(self, pos: Any) -> AdlCandidate:
        """``pos`` as the venue's ranking sees it (values signed BitMEX-style, pool figures)."""
        st = self.st
        acct = st.account
        marks = st.marks
        mark = marks[pos.sym]
        upnl = pos.upnl(mark)
        if pos.margin_mode == "isolated":
            wallet, maintenance = pos.margin, st.margin.maintenance(pos, mark)
            equity = wallet + upnl
        else:
            pool = [p for p in acct.positions if p.qty != 0.0 and p.margin_mode == "cross"]
            wallet = acct.cross_wallet
            maintenance = sum(st.margin.maintenance(p, marks[p.sym]) for p in pool)
            equity = wallet + sum(p.upnl(marks[p.sym]) for p in pool)
        s = 1 if pos.qty > 0 else -1
        # a linear position's value is s*Q*P, an inverse one's -s*Q/P: either way the change
        # of value is the PnL (AdlCandidate)
        sign = -s if pos.contract.inverse else s
        entry_value = sign * pos.contract.notional(abs(pos.qty), pos.entry_price)
        return AdlCandidate(s, abs(pos.qty), pos.entry_price, mark, entry_value,
                            entry_value + upnl, upnl, wallet, maintenance, equity)

    def previous_oracle(self, sym: int, cause: str) -> float:
        """The oracle price before the event, quote per base unit: the run's mark series
        stands in for the oracle; an injected event (at a bar open) sees the previous bar's
        close mark, a liquidation inside a bar the bar's open mark (bar 0: its open)."""
        st = self.st
        i = st.bar
        if cause == "injected" and i > 0:
            return float(st.close_views[sym][0][i - 1])
        return float(st.open_views[sym][0][i])

    def _seeded_start(self, sym: int, side: int, n: int) -> int:
        """A pseudo-random first position of an unranked queue, from the run's seed, the
        time, the symbol, the side and the number of ADL rows so far (deterministic)."""
        st = self.st
        key = f"{st.config.seed}:{st.now}:{sym}:{side}:{len(self.rows)}"
        return random.Random(key).randrange(n)

    def _close(self, pos: Any, qty: float, price: float, score: float, quantile: float,
               cause: str) -> None:
        st = self.st
        acct = st.account
        before = pos.qty
        side = -1 if before > 0 else 1  # the closing order's side
        realized = pos.apply_fill(side * qty, price, st.now)
        if pos.margin_mode == "isolated":
            pos.margin = 0.0 if pos.qty == 0.0 else pos.margin * abs(pos.qty) / abs(before)
        acct.wallet += realized
        order = Order(st.book.next_id(), pos.sym, pos.symbol, side, "adl", qty,
                      position_side=pos.position_side, ts_created=st.now, tag=cause)
        order.status, order.ts_done, order.filled_qty = "filled", st.now, qty
        st.book.record(order)
        st.journal.fill((st.now, order.order_id, pos.symbol, "buy" if side > 0 else "sell", qty,
                         price, price, 0.0, 0.0, 0.0, "adl", realized, pos.qty, "adl"))
        if pos.qty == 0.0:
            st.journal.trade(pos.close_trade(st.now, "adl"))
            st.book.cancel_exits(pos.key, st.now)  # its bracket exits go with it
        if acct.wallet < 0.0:
            acct.cover()
        self.rows.append((st.now, pos.symbol, "long" if before > 0 else "short", qty, price,
                          realized, score, quantile, cause, self.rule.name,
                          self.rule.price_basis))
        if st.hooks is not None:
            st.hooks.adl(self.rows[-1])

    # ------------------------------------------------------------------ outputs
    def frame(self) -> pl.DataFrame:
        """adl.parquet: one row per position reduced (see :data:`ADL_COLUMNS`)."""
        cols = list(zip(*self.rows)) if self.rows else [[] for _ in ADL_COLUMNS]
        types = (pl.Int64, pl.String, pl.String, pl.Float64, pl.Float64, pl.Float64, pl.Float64,
                 pl.Float64, pl.String, pl.String, pl.String)
        frame = pl.DataFrame([pl.Series(n, list(v), dtype=t) for n, v, t in zip(ADL_COLUMNS, cols, types)])
        return frame.with_columns(pl.col("ts").cast(_TS))

    def summary(self) -> dict[str, Any]:
        """ADL figures of the run summary."""
        from backtest.metrics import iso

        return {
            "n_adl": len(self.rows),
            "adl_qty": float(sum(r[3] for r in self.rows)),
            "adl_notional": float(sum(r[3] * r[4] for r in self.rows)),
            "adl_realized_pnl": float(sum(r[5] for r in self.rows)),
            "first_adl_ts": None if not self.rows else iso(self.rows[0][0]),
        }


def bar_open_events(state: Any, i: int) -> bool:
    """The ledger's events at the open of bar ``i``: collateral repriced at the bar's open
    marks (a negative wallet auto-exchanged if the venue would), then injected ADL events.
    True when the margin thresholds must be refreshed."""
    acct = state.account
    changed = False
    if acct.ledger is not None:
        changed = acct.ledger.reprice(state.now, state.marks)
        if acct.wallet < 0.0:
            acct.cover()
            changed = True
    if i in state.adl.at_bar:
        changed |= state.adl.inject(i)
    return changed


def event_bars(state: Any) -> set[int]:
    """Bars whose open has a ledger event (every bar while collateral is held: repricing)."""
    if state.account.ledger is not None:
        return set(range(len(state.data)))
    return set(state.adl.at_bar)
