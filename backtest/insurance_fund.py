"""The insurance fund as a balance series: a starting balance, gains and payouts, a drawdown.

The venue's fund receives what a liquidation leaves above the bankruptcy price (clearance fee
and remainder) and pays what a fill worse than bankruptcy costs (cascades.md §3:
``dIF = s*q*(f - BP)`` plus the clearance fee; margin_rules.md §2.1 steps 3-5). When the fund
cannot pay, the part it cannot pay goes to auto-deleveraging (``backtest.adl``).

Two figures are kept apart:

* ``own``: the run's own contribution (the liquidation engine's ``insurance_fund_delta``,
  byte-for-byte the float it always was: it is assigned, never re-derived);
* ``balance``: the fund as the venue sees it: ``start + own + counterparty payouts``
  (injected counterparty liquidations, ``backtest.adl``), floored at zero when a starting
  balance is configured. With no starting balance (``RunConfig.insurance_fund = None``, the
  default) the fund is unbounded: it starts at 0, may go negative and never triggers ADL.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

__all__ = ["FUND_COLUMNS", "InsuranceFund"]

#: insurance_fund.parquet columns.
FUND_COLUMNS = ("ts", "balance", "change", "cause")
_TS = pl.Datetime("ms", "UTC")


class InsuranceFund:
    """Balance series of the venue's insurance fund over one run.

    Parameters
    ----------
    start : float or None
        Assumed starting balance, margin asset (USDT); None: unbounded (see module doc).
    ts : int
        Run start, UTC ms (the series' first row).
    """

    __slots__ = ("start", "own", "balance", "rows", "pending", "uncovered")

    def __init__(self, start: float | None, ts: int) -> None:
        self.start = start
        self.own = 0.0
        self.balance = 0.0 if start is None else float(start)
        self.rows: list[tuple[int, float, float, str]] = [(ts, self.balance, 0.0, "start")]
        #: Payouts the fund could not make since the last ADL took them over, USDT.
        self.pending = 0.0
        #: Every payout the fund could not make over the run (socialised by ADL), USDT.
        self.uncovered = 0.0

    def set_own(self, value: float, cause: str, ts: int) -> None:
        """The run's own contribution becomes ``value`` (the difference is booked at ``ts``)."""
        delta = value - self.own
        self.own = value
        self._apply(delta, cause, ts)

    def book(self, amount: float, cause: str, ts: int) -> float:
        """Book a gain (> 0) or payout (< 0) not made by the run's own positions.

        Returns
        -------
        float
            The part of a payout the fund could not make (>= 0), USDT.
        """
        return self._apply(amount, cause, ts)

    def _apply(self, delta: float, cause: str, ts: int) -> float:
        if delta == 0.0:
            return 0.0
        short = 0.0
        if self.start is not None and self.balance + delta < 0.0:
            short = -(self.balance + delta)
            delta = -max(self.balance, 0.0)
            self.pending += short
            self.uncovered += short
        self.balance += delta
        self.rows.append((ts, self.balance, delta, cause))
        return short

    def take_pending(self) -> float:
        """The unpaid payouts waiting for ADL (reset to 0)."""
        pending, self.pending = self.pending, 0.0
        return pending

    def frame(self) -> pl.DataFrame:
        """insurance_fund.parquet: ``ts, balance, change, cause``, one row per booking."""
        ts, balance, change, cause = (list(c) for c in zip(*self.rows))
        return pl.DataFrame({
            "ts": pl.Series(ts, dtype=pl.Int64).cast(_TS),
            "balance": pl.Series(balance, dtype=pl.Float64),
            "change": pl.Series(change, dtype=pl.Float64),
            "cause": pl.Series(cause, dtype=pl.String),
        })

    def summary(self) -> dict[str, Any]:
        """Start, end, low and the largest peak-to-trough fall of the balance."""
        balance = np.array([r[1] for r in self.rows], dtype=np.float64)
        peak = np.maximum.accumulate(balance)
        falls = peak - balance
        k = int(np.argmax(falls))
        drawdown = float(falls[k])
        return {
            "insurance_fund_start": self.start,
            "insurance_fund_end": float(balance[-1]),
            "insurance_fund_min": float(balance.min()),
            "insurance_fund_max_drawdown": drawdown,
            "insurance_fund_max_drawdown_pct": drawdown / float(peak[k]) if peak[k] > 0 else (
                0.0 if drawdown == 0.0 else math.nan),
            "insurance_fund_uncovered": self.uncovered,
        }
