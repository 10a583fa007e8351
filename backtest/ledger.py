"""The account ledger per asset: collateral balances besides the margin asset.

Binance Multi-Assets Mode (margin_rules.md §11) and Bybit's unified account let other assets
back USDT-margined positions: each counts at its market value times a collateral value ratio
(``backtest.venues.collateral``), in the cross margin balance; the margin asset's balance
(the account's ``wallet``) may go negative while collateral covers it, and is auto-exchanged
from the collateral as the venue does (below -10,000 USD, on liquidation, or when nothing is
left of the pool).

Valuation: each asset is priced by the mark candles of a run symbol whose base is that asset
(``BTC`` by ``BTC/USDT:USDT``): at the open of every bar for the margin checks (collateral is
repriced once per bar: a move inside the bar reaches the margin at the next bar's open), at
the close for the equity table. Auto-exchanges sell at the last repriced price.
"""
from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from backtest.venues.collateral import HaircutSchedule

__all__ = ["Ledger", "StateClock"]


class StateClock:
    """``now`` and ``bar`` of a run state, without keeping the state alive (a weak reference)."""

    __slots__ = ("_ref",)

    def __init__(self, state: Any) -> None:
        self._ref = weakref.ref(state)

    @property
    def now(self) -> int:
        """Current simulated time, UTC ms."""
        return self._ref().now

    @property
    def bar(self) -> int:
        """Index of the bar being processed."""
        return self._ref().bar


class Ledger:
    """Collateral balances of one run and their value.

    Parameters
    ----------
    balances : mapping of str to float
        Asset -> quantity held at the start (assets other than the margin asset).
    schedule : HaircutSchedule
        The dated haircut tables.
    price_symbol : mapping of str to int
        Asset -> index of the run symbol whose mark prices it.
    """

    def __init__(self, balances: Mapping[str, float], schedule: HaircutSchedule,
                 price_symbol: Mapping[str, int],
                 auto_exchange_amount: Any = None) -> None:
        self.assets = tuple(balances)
        #: The venue's ``auto_exchange_amount(deficit, rate)`` (``Venue.auto_exchange_amount``).
        self._auto_exchange_amount = auto_exchange_amount
        self.qty = [float(balances[a]) for a in self.assets]
        self.schedule = schedule
        self.syms = [price_symbol[a] for a in self.assets]
        #: Collateral value (after haircuts) at the last repricing, margin asset.
        self.value = 0.0
        #: The value at the first repricing (the run's start), margin asset.
        self.start_value: float | None = None
        self.prices = [float("nan")] * len(self.assets)
        self.threshold = 0.0
        #: Quantities after each change: (bar, quantities); bar -1 is the start.
        self.snaps: list[tuple[int, tuple[float, ...]]] = [(-1, tuple(self.qty))]
        #: Auto-exchanges: (ts, asset, qty sold, price, margin asset credited).
        self.exchanges: list[tuple[int, str, float, float, float]] = []

    def reprice(self, ts: int, marks: Sequence[float]) -> bool:
        """Value the collateral at ``marks`` (per run symbol) under the table in force at ``ts``.

        Returns True when the value changed (the margin thresholds must be refreshed).
        """
        table = self.schedule.at(ts)
        self.threshold = table.auto_exchange_below
        value = 0.0
        for k, asset in enumerate(self.assets):
            price = marks[self.syms[k]]
            self.prices[k] = price
            value += table.value(asset, self.qty[k], price)
        changed = value != self.value
        self.value = value
        if self.start_value is None:
            self.start_value = value
        return changed

    def auto_exchange(self, deficit: float, ts: int, bar: int) -> float:
        """Sell collateral to cover ``deficit`` of the margin asset; return what it raised.

        Assets are sold in the order of the configuration; each sale converts
        the venue's ``auto_exchange_amount(deficit, rate)`` of market value (e.g. -20,000
        BUSD -> 20,000 / 97.5 % of BTC) at the asset's exchange rate, or what is held.
        """
        table = self.schedule.at(ts)
        raised = 0.0
        for k, asset in enumerate(self.assets):
            need = deficit - raised
            if need <= 0.0:
                break
            qty, price = self.qty[k], self.prices[k]
            if qty <= 0.0 or not price > 0.0:
                continue
            rate = table.rule(asset).exchange_rate
            sold = min(qty, self._auto_exchange_amount(need, rate) / price)
            credit = need if sold < qty else sold * price * rate
            self.qty[k] = qty - sold if sold < qty else 0.0
            raised += credit
            self.exchanges.append((ts, asset, sold, price, credit))
        self.value = sum(table.value(a, q, p) for a, q, p in zip(self.assets, self.qty, self.prices))
        snap = (bar, tuple(self.qty))
        if self.snaps[-1][0] == bar:
            self.snaps[-1] = snap
        else:
            self.snaps.append(snap)
        return raised

    @property
    def held(self) -> bool:
        """True while any collateral is left."""
        return any(q > 0.0 for q in self.qty)

    def summary(self, closes: np.ndarray | None) -> dict[str, Any]:
        """Collateral figures of the run summary (``closes``: value per bar close)."""
        return {
            "collateral_assets": {a: q for a, q in zip(self.assets, self.snaps[0][1])},
            "collateral_value_start": self.start_value,
            "collateral_value_end": float(closes[-1]) if closes is not None and closes.size else None,
            "n_auto_exchanges": len(self.exchanges),
            "auto_exchanged_value": float(sum(e[4] for e in self.exchanges)),
        }

    def value_series(self, close_ts: np.ndarray, marks: Sequence[np.ndarray], *,
                     first_bar: int = 0) -> np.ndarray:
        """Collateral value at every bar close (margin asset), vectorized.

        ``close_ts`` and ``marks`` cover the bars from ``first_bar`` on (a chunk of the run).

        For a fixed quantity the value is linear in the price (each band's slice times its
        ratio), so it is ``mark * table.value(asset, qty, 1.0)`` with the quantity of the
        snapshot in force and the table of the bar's date.
        """
        n = close_ts.size
        total = np.zeros(n)
        snap_bars = np.array([b for b, _ in self.snaps], dtype=np.int64)
        snap_of_bar = np.searchsorted(snap_bars, np.arange(first_bar, first_bar + n), side="right") - 1
        starts = np.array(self.schedule.starts, dtype=np.int64)
        version = np.maximum(np.searchsorted(starts, close_ts, side="right") - 1, 0)
        for k, asset in enumerate(self.assets):
            factor = np.empty(n)
            for s, v in set(zip(snap_of_bar.tolist(), version.tolist())):
                table = self.schedule.versions[v][1]
                factor[(snap_of_bar == s) & (version == v)] = table.value(asset, self.snaps[s][1][k], 1.0)
            total += factor * marks[self.syms[k]]
        return total
