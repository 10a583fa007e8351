"""Per-bar equity and positions, expanded from the journal's snapshots; the run summary.

The bar loop records the account only when it changes; here the snapshots are forward-filled
over the bars with NumPy and valued at each bar's close (mark price), so no per-bar Python
work is spent on bookkeeping. Maintenance margin per bar is the venue's
``maintenance_margin(notional, tier)`` evaluated on arrays (the tier columns are looked up
per bar by notional, exactly as ``TierTable.for_notional`` does).
"""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl

__all__ = ["BarState", "summarize"]

_TS = pl.Datetime("ms", "UTC")


class _TierColumns:
    """Tier fields as arrays, so the venue's scalar formula runs vectorized."""

    def __init__(self, mmr: np.ndarray, cum: np.ndarray) -> None:
        self.mmr = mmr
        self.cum = cum


def iso(ms: int | None) -> str | None:
    """UTC ISO string of epoch milliseconds (None stays None)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


class BarState:
    """The account at every bar close, as arrays (one row per strategy bar).

    Every column is computed on first use and cached (``functools.cached_property``): the
    summary needs only the equity and the margin ratio, so a run whose frames are never
    read (a sweep) never builds the liquidation/bankruptcy prices, leverages, distances or
    the positions table. The values are the same whichever is asked first.

    Parameters
    ----------
    state : RunState
        The finished run.
    """

    def __init__(self, state: Any) -> None:
        data = state.data
        journal = state.journal
        n = len(data)
        self.n = n
        self._state = state
        self._data = data
        # per bar, the index of the last snapshot taken at or before it (forward fill):
        # count of snapshots with bar <= i, minus one (snapshot bars strictly increase)
        snap_bar = np.asarray(journal.snap_bar, dtype=np.int64)
        inside = snap_bar[(snap_bar >= 0) & (snap_bar < n)]
        idx = np.cumsum(np.bincount(inside, minlength=n)[:n])
        idx += int(np.count_nonzero(snap_bar < 0)) - 1
        self._idx = np.maximum(idx, 0, out=idx)
        self._snap_wallet = journal.snap_wallet
        self._snap_positions = journal.snap_positions
        self.keys = state.account.positions
        self.mark = [b.mark_close for b in state.bars]
        self.last = [b.close for b in state.bars]

    # ------------------------------------------------------------------ snapshot columns
    @functools.cached_property
    def close_ts(self) -> np.ndarray:
        """Bar close instants, UTC ms."""
        return self._data.ts + self._data.interval_ms

    @functools.cached_property
    def _per(self) -> np.ndarray:
        return np.asarray(self._snap_positions, dtype=np.float64)  # snaps x keys x 7

    def _field(self, j: int) -> np.ndarray:
        return self._per[:, :, j][self._idx].T  # keys x bars

    @functools.cached_property
    def wallet(self) -> np.ndarray:
        """Wallet balance per bar, USDT."""
        return np.asarray(self._snap_wallet, dtype=np.float64)[self._idx]

    qty = functools.cached_property(lambda self: self._field(1))
    qty.__doc__ = "Signed quantity per position key and bar (keys x bars)."
    entry = functools.cached_property(lambda self: self._field(2))
    entry.__doc__ = "Entry price per key and bar, USDT."
    margin = functools.cached_property(lambda self: self._field(3))
    margin.__doc__ = "Isolated margin per key and bar, USDT."
    leverage = functools.cached_property(lambda self: self._field(4))
    leverage.__doc__ = "Leverage per key and bar."
    lp = functools.cached_property(lambda self: self._field(5))
    lp.__doc__ = "Liquidation price per key and bar, USDT."
    bp = functools.cached_property(lambda self: self._field(6))
    bp.__doc__ = "Bankruptcy price per key and bar, USDT."

    @functools.cached_property
    def open(self) -> np.ndarray:
        """True where a key holds a position (keys x bars)."""
        return (self._per[:, :, 1] != 0.0)[self._idx].T  # per snapshot, then spread over bars

    # ------------------------------------------------------------------ valuation
    @functools.cached_property
    def upnl(self) -> np.ndarray:
        """Unrealized PnL per key and bar at the close's mark, USDT (0 when flat)."""
        venue = self._state.venue
        is_open = self.open
        upnl = np.zeros_like(self.qty)
        entry = np.nan_to_num(self._per[:, :, 2])[self._idx].T  # elementwise: per snapshot
        for k, pos in enumerate(self.keys):
            mark = self.mark[pos.sym]
            upnl[k] = np.where(is_open[k], venue.unrealized_pnl(
                signed_qty=self.qty[k], entry_price=entry[k], mark_price=mark), 0.0)
        return upnl

    @functools.cached_property
    def notional(self) -> np.ndarray:
        """Absolute notional per key and bar at the close's mark, USDT."""
        notional = np.zeros_like(self.qty)
        for k, pos in enumerate(self.keys):
            notional[k] = np.abs(self.qty[k]) * self.mark[pos.sym]
        return notional

    @functools.cached_property
    def mm(self) -> np.ndarray:
        """Maintenance margin per key and bar (venue formula, tier by notional), USDT."""
        is_open = self.open
        notional = self.notional
        mm = np.zeros_like(self.qty)
        for k, pos in enumerate(self.keys):
            mm[k] = np.where(is_open[k], self._maintenance(self._state, pos.sym, notional[k],
                                                           self._data.ts), 0.0)
        return mm

    @functools.cached_property
    def _iso_mask(self) -> np.ndarray:
        return np.array([p.margin_mode == "isolated" for p in self.keys])[:, None] & self.open

    @functools.cached_property
    def margin_ratio(self) -> np.ndarray:
        """Worst margin ratio (MM / margin balance) over the account's pools per bar."""
        n = self.n
        is_open = self.open
        iso_mask = self._iso_mask
        cross_mask = ~iso_mask & is_open
        upnl, mm = self.upnl, self.mm
        with np.errstate(divide="ignore", invalid="ignore"):
            has_cross = cross_mask.any(axis=0)
            if has_cross.any():
                cross_balance = (self.wallet - np.where(iso_mask, self.margin, 0.0).sum(axis=0)
                                 + np.where(cross_mask, upnl, 0.0).sum(axis=0))
                cross_mm = np.where(cross_mask, mm, 0.0).sum(axis=0)
                ratio = np.where(has_cross, _ratio(cross_mm, cross_balance), 0.0)
            else:  # what the expression above gives without any cross position
                ratio = np.zeros(n)
            for k in range(len(self.keys)):
                if not iso_mask[k].any():
                    continue  # np.where(False, ..., ratio) keeps ratio
                r = _ratio(mm[k], self.margin[k] + upnl[k])
                ratio = np.where(iso_mask[k], np.maximum(ratio, r), ratio)
        return ratio

    @functools.cached_property
    def distance(self) -> np.ndarray:
        """Smallest relative distance of the mark to a liquidation price per bar (nan when flat)."""
        dist = np.full(self.n, np.inf)
        is_open = self.open
        with np.errstate(divide="ignore", invalid="ignore"):
            for k, pos in enumerate(self.keys):
                if not is_open[k].any():
                    continue
                d = np.abs(self.mark[pos.sym] - self.lp[k]) / self.mark[pos.sym]
                dist = np.where(is_open[k] & np.isfinite(d), np.minimum(dist, d), dist)
        return np.where(np.isfinite(dist), dist, np.nan)

    @functools.cached_property
    def unrealized(self) -> np.ndarray:
        """Unrealized PnL of the account per bar, USDT."""
        return self.upnl.sum(axis=0)

    @functools.cached_property
    def equity(self) -> np.ndarray:
        """Wallet + unrealized PnL per bar, USDT."""
        return self.wallet + self.unrealized

    @functools.cached_property
    def maintenance(self) -> np.ndarray:
        """Maintenance margin of the account per bar, USDT."""
        return self.mm.sum(axis=0)

    @staticmethod
    def _maintenance(state: Any, sym: int, notional: np.ndarray, ts: np.ndarray) -> np.ndarray:
        schedule = state.margin.schedules[sym]
        starts = np.array([s for s, _ in schedule.versions], dtype=np.int64)
        # version in force per bar (the earliest also before its start, as the loop did)
        bounds = np.searchsorted(ts, starts[1:], side="left").tolist()
        edges = [0, *bounds, len(ts)]
        out = np.empty_like(notional)
        for v, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            if hi <= lo:
                continue
            table = schedule.versions[v][1]
            part = notional[lo:hi]
            if len(table.tiers) == 1:
                tier = table.tiers[0]
                out[lo:hi] = state.venue.maintenance_margin(part, tier)
                continue
            floors = np.array([t.floor for t in table.tiers])
            mmr = np.array([t.mmr for t in table.tiers])
            cum = np.array([t.cum for t in table.tiers])
            index = np.maximum(np.searchsorted(floors, part, side="right") - 1, 0)
            out[lo:hi] = state.venue.maintenance_margin(part, _TierColumns(mmr[index], cum[index]))
        return out

    def equity_frame(self) -> pl.DataFrame:
        """equity.parquet (CONTRACTS §6)."""
        first = [k for k, p in enumerate(self.keys) if p.sym == 0]
        qty0 = self.qty[first].sum(axis=0)
        lp0 = np.full(self.n, np.nan)
        for k in reversed(first):
            lp0 = np.where(self.open[k], self.lp[k], lp0)
        return pl.DataFrame({
            "ts": pl.Series(self.close_ts).cast(_TS),
            "wallet_balance": self.wallet, "unrealized_pnl": self.unrealized,
            "equity": self.equity, "maintenance_margin": self.maintenance,
            "margin_ratio": self.margin_ratio,
            "distance_to_liquidation": self.distance,
            "gross_notional": self.notional.sum(axis=0), "position_qty": qty0,
            "mark_price": self.mark[0], "last_price": self.last[0], "liquidation_price": lp0,
        }).with_columns(pl.col("distance_to_liquidation", "liquidation_price").fill_nan(None))

    def positions_frame(self) -> pl.DataFrame:
        """positions.parquet (CONTRACTS §6): one row per bar per open position."""
        frames = []
        for k, pos in enumerate(self.keys):
            sel = np.flatnonzero(self.open[k])
            if not sel.size:
                continue
            m = len(sel)
            frames.append(pl.DataFrame({
                "ts": pl.Series(self.close_ts[sel]).cast(_TS),
                "symbol": [pos.symbol] * m, "position_side": [pos.position_side] * m,
                "qty": self.qty[k][sel], "entry_price": self.entry[k][sel],
                "mark_price": self.mark[pos.sym][sel], "last_price": self.last[pos.sym][sel],
                "liquidation_price": self.lp[k][sel], "bankruptcy_price": self.bp[k][sel],
                "unrealized_pnl": self.upnl[k][sel], "margin_mode": [pos.margin_mode] * m,
                "leverage": self.leverage[k][sel], "isolated_margin": self.margin[k][sel],
            }))
        if not frames:
            return pl.DataFrame(schema={"ts": _TS, "symbol": pl.String, "position_side": pl.String,
                                        "qty": pl.Float64, "entry_price": pl.Float64,
                                        "mark_price": pl.Float64, "last_price": pl.Float64,
                                        "liquidation_price": pl.Float64, "bankruptcy_price": pl.Float64,
                                        "unrealized_pnl": pl.Float64, "margin_mode": pl.String,
                                        "leverage": pl.Float64, "isolated_margin": pl.Float64})
        return pl.concat(frames).sort("ts", "symbol", maintain_order=True).with_columns(
            pl.col("liquidation_price", "bankruptcy_price").fill_nan(None))


def _ratio(mm: np.ndarray, balance: np.ndarray) -> np.ndarray:
    """Margin ratio MM / margin balance; inf when the balance is gone (venue margin_ratio)."""
    positive = balance > 0
    return np.where(positive, mm / np.where(positive, balance, 1.0), np.where(mm > 0, np.inf, 0.0))


def summarize(state: Any, bars: BarState, initial: float) -> dict[str, Any]:
    """The summary of CONTRACTS §6 with the PnL attribution."""
    journal = state.journal
    equity = bars.equity
    ts = bars.close_ts
    final = float(equity[-1]) if bars.n else initial
    peak_curve = np.maximum.accumulate(np.concatenate([[initial], equity]))[1:] if bars.n else equity
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak_curve > 0, (peak_curve - equity) / peak_curve, 0.0) if bars.n else equity
    max_dd = float(dd.max()) if bars.n else 0.0
    dd_end = int(dd.argmax()) if bars.n else None
    dd_start = None
    if dd_end is not None and max_dd > 0:
        before = equity[: dd_end + 1]
        peak_value = peak_curve[dd_end]
        hits = np.flatnonzero(before >= peak_value)
        dd_start = iso(int(ts[hits[-1]])) if hits.size else iso(int(state.data.ts[0]))
    liqs = journal.rows["liquidations"]
    ratio = bars.margin_ratio
    worst = int(np.argmax(ratio)) if bars.n else None
    # Bar closes only see pools that survived the bar; a liquidation trigger is the true peak.
    worst_ratio = float(ratio[worst]) if worst is not None else 0.0
    worst_ts = iso(int(ts[worst])) if worst is not None and ratio[worst] > 0 else None
    if journal.trigger_margin_ratio > worst_ratio:
        worst_ratio = float(journal.trigger_margin_ratio)
        worst_ts = iso(int(journal.trigger_margin_ratio_ts))
    funding = journal.funding_received - journal.funding_paid
    attribution = {
        "fees": -journal.fees,
        "funding": funding,
        "slippage": -journal.slippage,
        "liquidation_penalty": journal.liquidation_penalty,
    }
    attribution["price_move"] = final - initial - sum(attribution.values())
    return {
        "initial_balance": initial,
        "final_equity": final,
        "total_return": final / initial - 1.0,
        "max_drawdown": max_dd,
        "max_drawdown_start": dd_start,
        "max_drawdown_end": iso(int(ts[dd_end])) if dd_end is not None and max_dd > 0 else None,
        "n_liquidations": len(liqs),
        "liquidation_loss": float(sum(row[16] for row in liqs)),
        "fees": journal.fees,
        "liquidation_fees": journal.clearance_fees,
        "funding_paid": journal.funding_paid,
        "funding_received": journal.funding_received,
        "slippage_cost": journal.slippage,
        "bad_debt": state.account.bad_debt,
        "insurance_fund_delta": state.account.insurance_fund,
        "worst_margin_ratio": worst_ratio,
        "worst_margin_ratio_ts": worst_ts,
        "first_liquidation_ts": iso(int(liqs[0][0])) if liqs else None,
        "n_fills": len(journal.rows["fills"]),
        "n_rejections": len(journal.rows["rejections"]),
        "bars": bars.n,
        "attribution": {k: float(v) for k, v in attribution.items()},
    }

