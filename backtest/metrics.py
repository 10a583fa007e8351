"""Per-bar equity and positions, expanded from the journal's snapshots; the run summary.

The bar loop records the account only when it changes; here the snapshots are forward-filled
over the bars with NumPy and valued at each bar's close (mark price), so no per-bar Python
work is spent on bookkeeping. Maintenance margin per bar is the venue's
``maintenance_margin(notional, tier)`` evaluated on arrays (the tier columns are looked up
per bar by notional, exactly as ``TierTable.for_notional`` does).
"""
from __future__ import annotations

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

    Parameters
    ----------
    state : RunState
        The finished run.
    """

    def __init__(self, state: Any) -> None:
        data = state.data
        journal = state.journal
        acct = state.account
        n = len(data)
        self.n = n
        self.close_ts = data.ts + data.interval_ms
        snap_bar = np.asarray(journal.snap_bar, dtype=np.int64)
        idx = np.searchsorted(snap_bar, np.arange(n), side="right") - 1
        idx = np.maximum(idx, 0)
        self.wallet = np.asarray(journal.snap_wallet, dtype=np.float64)[idx]
        per = np.asarray(journal.snap_positions, dtype=np.float64)  # snaps x keys x 7
        self.keys = acct.positions
        self.qty = per[:, :, 1][idx].T          # keys x bars
        self.entry = per[:, :, 2][idx].T
        self.margin = per[:, :, 3][idx].T
        self.leverage = per[:, :, 4][idx].T
        self.lp = per[:, :, 5][idx].T
        self.bp = per[:, :, 6][idx].T
        self.mark = [b.mark_close for b in state.bars]
        self.last = [b.close for b in state.bars]
        is_open = self.qty != 0.0
        self.open = is_open
        upnl = np.zeros_like(self.qty)
        mm = np.zeros_like(self.qty)
        notional = np.zeros_like(self.qty)
        for k, pos in enumerate(self.keys):
            mark = self.mark[pos.sym]
            q = self.qty[k]
            upnl[k] = np.where(is_open[k], state.venue.unrealized_pnl(
                signed_qty=q, entry_price=np.nan_to_num(self.entry[k]), mark_price=mark), 0.0)
            notional[k] = np.abs(q) * mark
            mm[k] = np.where(is_open[k], self._maintenance(state, pos.sym, notional[k], data.ts), 0.0)
        self.upnl, self.mm, self.notional = upnl, mm, notional
        iso_mask = np.array([p.margin_mode == "isolated" for p in self.keys])[:, None] & is_open
        cross_mask = ~iso_mask & is_open
        cross_balance = (self.wallet - np.where(iso_mask, self.margin, 0.0).sum(axis=0)
                         + np.where(cross_mask, upnl, 0.0).sum(axis=0))
        cross_mm = np.where(cross_mask, mm, 0.0).sum(axis=0)
        ratio = np.zeros(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            has_cross = cross_mask.any(axis=0)
            ratio = np.where(has_cross, _ratio(cross_mm, cross_balance), 0.0)
            for k in range(len(self.keys)):
                r = _ratio(mm[k], self.margin[k] + upnl[k])
                ratio = np.where(iso_mask[k], np.maximum(ratio, r), ratio)
            dist = np.full(n, np.inf)
            for k, pos in enumerate(self.keys):
                d = np.abs(self.mark[pos.sym] - self.lp[k]) / self.mark[pos.sym]
                dist = np.where(is_open[k] & np.isfinite(d), np.minimum(dist, d), dist)
        self.margin_ratio = ratio
        self.distance = np.where(np.isfinite(dist), dist, np.nan)
        self.unrealized = upnl.sum(axis=0)
        self.equity = self.wallet + self.unrealized
        self.maintenance = mm.sum(axis=0)

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
    return np.where(balance > 0, mm / np.where(balance > 0, balance, 1.0),
                    np.where(mm > 0, np.inf, 0.0))


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
        "worst_margin_ratio": float(ratio[worst]) if worst is not None else 0.0,
        "worst_margin_ratio_ts": iso(int(ts[worst])) if worst is not None and ratio[worst] > 0 else None,
        "first_liquidation_ts": iso(int(liqs[0][0])) if liqs else None,
        "n_fills": len(journal.rows["fills"]),
        "n_rejections": len(journal.rows["rejections"]),
        "bars": bars.n,
        "attribution": {k: float(v) for k, v in attribution.items()},
    }

