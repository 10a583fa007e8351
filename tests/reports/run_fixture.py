"""Writes plausible run directories in the exact CONTRACTS §6 format, for report tests.

The story of every fixture run (one symbol, isolated margin):

* a random walk with two crashes (-30 % each, then a partial rebound);
* trade A enters at ``leverage`` shortly before crash 1 and is liquidated in it;
* trade B enters at 3x after the rebound and exits on a signal before crash 2;
* trade C enters at ``leverage`` shortly before crash 2 and is liquidated in it;
* trade D enters at 3x after the second rebound and is closed at the end.

Liquidations happen where the mark price crosses the isolated liquidation price
``(entry - margin/qty) / (1 - mmr)``; at 2x nothing is liquidated, at 5x and above both A and C
are. Funding settles every 8 hours while a position is open. The builder is vectorized per
trade, so a year of 1m bars (525,600 rows) takes about a second.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
MMR = 0.004
TAKER_FEE = 0.0005
SLIP = 0.0002
EIGHT_HOURS = 8 * HOUR_MS


@dataclass
class RunFixture:
    """What a fixture run directory holds, for assertions."""

    path: Path
    n_bars: int
    liquidation_ts: list[int]
    n_trades: int
    n_fills: int
    n_funding: int
    summary: dict[str, Any] = field(default_factory=dict)


def _prices(n: int, interval_ms: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    per_year = 365 * 86_400_000 / interval_ms
    sigma = 0.30 / np.sqrt(per_year)
    steps = rng.normal(0.0, sigma, n)
    crash_len = max(3, n // 400)
    for frac in (0.35, 0.7):
        start = int(n * frac)
        steps[start:start + crash_len] += np.log(0.70) / crash_len
        steps[start + crash_len:start + 3 * crash_len] += np.log(1.15) / (2 * crash_len)
    close = 42_000.0 * np.exp(np.cumsum(steps))
    open_ = np.concatenate(([42_000.0], close[:-1]))
    wick = np.abs(rng.normal(0.0, sigma / 2, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    mark = close * (1 + rng.normal(0.0, 0.0001, n))
    rates = 0.0001 + rng.normal(0.0, 0.00005, n)
    return open_, high, low, close, mark, rates


def _dt(values: Any) -> pl.Series:
    return pl.Series(np.asarray(values, dtype=np.int64)).cast(pl.Datetime("ms", "UTC"))


def write_run_dir(path: Path, *, n_bars: int = 1_500, interval_ms: int = HOUR_MS,
                  leverage: float = 10.0, strategy: str = "sma_cross",
                  params: dict[str, Any] | None = None, seed: int = 7, with_bars: bool = True,
                  symbol: str = "BTC/USDT:USDT", initial_balance: float = 10_000.0,
                  quality_warnings: list[str] | None = None,
                  with_attribution: bool = True) -> RunFixture:
    """Write a §6 run directory at ``path`` and return what it holds.

    Parameters
    ----------
    path : pathlib.Path
        The directory to create.
    n_bars, interval_ms : int
        Number and length (ms) of the strategy bars.
    leverage : float
        Leverage of trades A and C (the ones exposed to the crashes).
    strategy, params, symbol, seed, initial_balance : ...
        Written to the manifest (and ``symbol`` to every table).
    with_bars : bool
        Also write the optional ``bars.parquet`` candles.
    quality_warnings : list of str, optional
        The manifest's data-quality warnings.
    with_attribution : bool
        Write ``summary.attribution`` (else the report derives it).
    """
    path.mkdir(parents=True, exist_ok=True)
    n = n_bars
    ts = START_MS + np.arange(n, dtype=np.int64) * interval_ms
    open_, high, low, close, mark, rates = _prices(n, interval_ms, seed)
    crash_len = max(3, n // 400)
    c1, c2 = int(n * 0.35), int(n * 0.7)
    lead = max(5, crash_len * 2)
    plans = [  # (entry bar, planned exit bar, leverage, exit reason if not liquidated)
        (c1 - lead, c1 + 3 * crash_len + lead, leverage, "signal"),
        (c1 + 3 * crash_len + 2 * lead, c2 - 2 * lead, 3.0, "signal"),
        (c2 - lead, c2 + 3 * crash_len + lead, leverage, "signal"),
        (c2 + 3 * crash_len + 2 * lead, n - 1, 3.0, "end_of_data"),
    ]
    wallet_delta = np.zeros(n)
    qty_bar = np.zeros(n)
    entry_bar = np.full(n, np.nan)
    margin_bar = np.zeros(n)
    lev_bar = np.zeros(n)
    fills: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    liqs: list[dict[str, Any]] = []
    trades: list[dict[str, Any]] = []
    funding: list[dict[str, Any]] = []
    wallet = initial_balance
    order_id = 0

    def add_fill(i: int, side: str, qty: float, price: float, ref: float, fee: float,
                 pnl: float, after: float, reason: str, liquidity: str, otype: str) -> None:
        nonlocal order_id
        order_id += 1
        slip_cost = abs(price - ref) * qty
        fills.append({"ts": ts[i], "order_id": f"o{order_id}", "symbol": symbol, "side": side,
                      "qty": qty, "price": price, "reference_price": ref,
                      "slippage_bps": abs(price / ref - 1) * 1e4, "slippage_cost": slip_cost,
                      "fee": fee, "liquidity": liquidity, "realized_pnl": pnl,
                      "position_qty_after": after, "reason": reason})
        orders.append({"order_id": f"o{order_id}", "ts_created": ts[i], "ts_done": ts[i],
                       "symbol": symbol, "side": side, "type": otype, "qty": qty, "price": None,
                       "stop_price": None, "reduce_only": reason != "strategy" or after == 0.0,
                       "status": "filled", "tag": "crash-hedge" if otype == "liquidation" else "sma"})

    for a, planned_exit, lev, reason in plans:
        ref = close[a]
        price = ref * (1 + SLIP)
        margin = wallet * 0.5
        qty = margin * lev / price
        fee = qty * price * TAKER_FEE
        add_fill(a, "buy", qty, price, ref, fee, 0.0, qty, "strategy", "taker", "market")
        wallet_delta[a] -= fee
        wallet -= fee
        lp = (price - margin / qty) / (1 - MMR)
        window = np.arange(a + 1, planned_exit + 1)
        hit = np.nonzero(mark[window] <= lp)[0]
        funding_paid = 0.0
        if hit.size:
            t = int(window[hit[0]])
            ref_x = close[t]
            fill_price = ref_x * (1 - 0.0005)
            pnl = qty * (fill_price - price)
            remaining = margin + pnl
            liq_fee = max(0.0, min(remaining, qty * fill_price * 0.0125))
            bad_debt = max(0.0, -remaining)
            settle = np.nonzero((ts[a + 1:t] % EIGHT_HOURS) == 0)[0] + a + 1
            for s in settle:
                pay = -qty * mark[s] * rates[s]
                funding.append({"ts": ts[s], "symbol": symbol, "rate": rates[s],
                                "mark_price": mark[s], "position_qty": qty, "payment": pay,
                                "margin_mode": "isolated"})
                wallet_delta[s] += pay
                funding_paid += pay
            equity_before = wallet + funding_paid + qty * (mark[t] - price)
            add_fill(t, "sell", qty, fill_price, ref_x, liq_fee, pnl, 0.0, "liquidation",
                     "liquidation", "liquidation")
            delta = pnl - liq_fee + bad_debt
            wallet_delta[t] += delta
            wallet += funding_paid + delta
            liqs.append({"ts": ts[t], "trigger_ts": ts[t], "symbol": symbol, "side": "long",
                         "qty": qty, "margin_mode": "isolated", "entry_price": price,
                         "mark_price": mark[t], "last_price": close[t], "liquidation_price": lp,
                         "bankruptcy_price": price - margin / qty, "fill_price": fill_price,
                         "reference_price": ref_x, "slippage_bps": 5.0,
                         "slippage_cost": qty * (ref_x - fill_price), "fee": liq_fee,
                         "margin_lost": margin, "insurance_fund_delta": remaining - liq_fee,
                         "bad_debt": bad_debt, "equity_before": equity_before,
                         "equity_after": wallet, "maint_margin_rate": MMR, "tier": 1})
            exit_bar, exit_price, exit_reason, exit_fee = t, fill_price, "liquidation", liq_fee
        else:
            t = planned_exit
            ref_x = close[t]
            exit_price = ref_x * (1 - SLIP)
            pnl = qty * (exit_price - price)
            exit_fee = qty * exit_price * TAKER_FEE
            settle = np.nonzero((ts[a + 1:t] % EIGHT_HOURS) == 0)[0] + a + 1
            for s in settle:
                pay = -qty * mark[s] * rates[s]
                funding.append({"ts": ts[s], "symbol": symbol, "rate": rates[s],
                                "mark_price": mark[s], "position_qty": qty, "payment": pay,
                                "margin_mode": "isolated"})
                wallet_delta[s] += pay
                funding_paid += pay
            add_fill(t, "sell", qty, exit_price, ref_x, exit_fee, pnl, 0.0, "strategy", "taker",
                     "market")
            wallet_delta[t] += pnl - exit_fee
            wallet += funding_paid + pnl - exit_fee
            exit_bar, exit_reason = t, reason
        qty_bar[a:exit_bar] = qty
        entry_bar[a:exit_bar] = price
        margin_bar[a:exit_bar] = margin
        lev_bar[a:exit_bar] = lev
        trades.append({"symbol": symbol, "side": "long", "entry_ts": ts[a], "exit_ts": ts[exit_bar],
                       "qty": qty, "entry_price": price, "exit_price": exit_price,
                       "pnl": qty * (exit_price - price), "fees": fee + exit_fee,
                       "funding": funding_paid, "exit_reason": exit_reason})

    open_mask = qty_bar > 0
    wallet_bar = initial_balance + np.cumsum(wallet_delta)
    upnl = np.where(open_mask, qty_bar * (mark - np.nan_to_num(entry_bar)), 0.0)
    mm = qty_bar * mark * MMR
    pos_balance = margin_bar + upnl
    ratio = np.where(open_mask, np.where(pos_balance > 0, mm / np.where(pos_balance > 0, pos_balance, 1), 1.5), 0.0)
    lp_bar = np.where(open_mask, (np.nan_to_num(entry_bar) - margin_bar / np.where(open_mask, qty_bar, 1))
                      / (1 - MMR), np.nan)
    for rec in liqs:  # the bar of a liquidation shows the margin ratio that triggered it
        t = int(np.searchsorted(ts, rec["ts"]))
        balance = rec["margin_lost"] + rec["qty"] * (rec["mark_price"] - rec["entry_price"])
        mm_t = rec["qty"] * rec["mark_price"] * MMR
        ratio[t] = mm_t / balance if balance > mm_t / 5 else 5.0
    dist = np.where(open_mask, np.abs(mark - lp_bar) / mark, np.nan)
    equity = pl.DataFrame({
        "ts": _dt(ts), "wallet_balance": wallet_bar, "unrealized_pnl": upnl,
        "equity": wallet_bar + upnl, "maintenance_margin": mm, "margin_ratio": ratio,
        "distance_to_liquidation": dist, "gross_notional": qty_bar * mark, "position_qty": qty_bar,
        "mark_price": mark, "last_price": close, "liquidation_price": lp_bar,
    }).with_columns(pl.col("distance_to_liquidation").fill_nan(None),
                    pl.col("liquidation_price").fill_nan(None))
    equity.write_parquet(path / "equity.parquet")
    idx = np.nonzero(open_mask)[0]
    pl.DataFrame({
        "ts": _dt(ts[idx]), "symbol": [symbol] * idx.size, "position_side": ["both"] * idx.size,
        "qty": qty_bar[idx], "entry_price": entry_bar[idx], "mark_price": mark[idx],
        "last_price": close[idx], "liquidation_price": lp_bar[idx],
        "bankruptcy_price": entry_bar[idx] - margin_bar[idx] / qty_bar[idx],
        "unrealized_pnl": upnl[idx], "margin_mode": ["isolated"] * idx.size,
        "leverage": lev_bar[idx], "isolated_margin": margin_bar[idx],
    }).write_parquet(path / "positions.parquet")

    def frame(rows: list[dict[str, Any]], columns: dict[str, Any]) -> pl.DataFrame:
        data = {c: [r[c] for r in rows] for c in columns}
        out = pl.DataFrame(data, schema={c: (pl.Int64 if t == "dt" else t) for c, t in columns.items()})
        return out.with_columns([pl.col(c).cast(pl.Datetime("ms", "UTC"))
                                 for c, t in columns.items() if t == "dt"])

    f64, s = pl.Float64, pl.String
    frame(fills, {"ts": "dt", "order_id": s, "symbol": s, "side": s, "qty": f64, "price": f64,
                  "reference_price": f64, "slippage_bps": f64, "slippage_cost": f64, "fee": f64,
                  "liquidity": s, "realized_pnl": f64, "position_qty_after": f64, "reason": s}
          ).write_parquet(path / "fills.parquet")
    frame(orders, {"order_id": s, "ts_created": "dt", "ts_done": "dt", "symbol": s, "side": s,
                   "type": s, "qty": f64, "price": f64, "stop_price": f64,
                   "reduce_only": pl.Boolean, "status": s, "tag": s}
          ).write_parquet(path / "orders.parquet")
    rejections = [{"ts": ts[10], "order_id": "r1", "symbol": symbol, "side": "buy",
                   "type": "market", "qty": 100.0, "price": None, "reason": "leverage_cap",
                   "message": "leverage 150x exceeds the tier cap of 125x"}]
    frame(rejections, {"ts": "dt", "order_id": s, "symbol": s, "side": s, "type": s, "qty": f64,
                       "price": f64, "reason": s, "message": s}).write_parquet(path / "rejections.parquet")
    frame(funding, {"ts": "dt", "symbol": s, "rate": f64, "mark_price": f64, "position_qty": f64,
                    "payment": f64, "margin_mode": s}).write_parquet(path / "funding.parquet")
    frame(liqs, {"ts": "dt", "trigger_ts": "dt", "symbol": s, "side": s, "qty": f64,
                 "margin_mode": s, "entry_price": f64, "mark_price": f64, "last_price": f64,
                 "liquidation_price": f64, "bankruptcy_price": f64, "fill_price": f64,
                 "reference_price": f64, "slippage_bps": f64, "slippage_cost": f64, "fee": f64,
                 "margin_lost": f64, "insurance_fund_delta": f64, "bad_debt": f64,
                 "equity_before": f64, "equity_after": f64, "maint_margin_rate": f64,
                 "tier": pl.Int32}).write_parquet(path / "liquidations.parquet")
    frame(trades, {"symbol": s, "side": s, "entry_ts": "dt", "exit_ts": "dt", "qty": f64,
                   "entry_price": f64, "exit_price": f64, "pnl": f64, "fees": f64,
                   "funding": f64, "exit_reason": s}).write_parquet(path / "trades.parquet")
    if with_bars:
        pl.DataFrame({"ts": _dt(ts), "symbol": [symbol] * n, "open": open_, "high": high,
                      "low": low, "close": close, "mark_close": mark}
                     ).write_parquet(path / "bars.parquet")

    final = float(wallet_bar[-1] + upnl[-1])
    fee_total = sum(f["fee"] for f in fills)
    liq_fee = sum(f["fee"] for f in fills if f["reason"] == "liquidation")
    slip = sum(f["slippage_cost"] for f in fills)
    net_funding = sum(f["payment"] for f in funding)
    summary: dict[str, Any] = {
        "initial_balance": initial_balance, "final_equity": final,
        "total_return": final / initial_balance - 1, "n_liquidations": len(liqs),
        "liquidation_loss": sum(r["margin_lost"] for r in liqs), "fees": fee_total,
        "funding_paid": -sum(f["payment"] for f in funding if f["payment"] < 0),
        "funding_received": sum(f["payment"] for f in funding if f["payment"] > 0),
        "slippage_cost": slip, "bad_debt": sum(r["bad_debt"] for r in liqs),
        "worst_margin_ratio": float(ratio.max()), "worst_margin_ratio_ts": int(ts[int(ratio.argmax())]),
        "first_liquidation_ts": int(liqs[0]["ts"]) if liqs else None, "n_fills": len(fills),
        "n_rejections": 1, "bars": n,
    }
    if with_attribution:
        parts = {"fees": -(fee_total - liq_fee), "funding": net_funding, "slippage": -slip,
                 # the engine's convention (backtest/liquidation.py): the account's change minus
                 # the position's PnL, so the bad debt the fund absorbed counts positive here
                 "liquidation_penalty": -liq_fee + sum(r["bad_debt"] for r in liqs)}
        parts["price_move"] = final - initial_balance - sum(parts.values())
        summary["attribution"] = parts
    data_bytes = close.tobytes()
    manifest = {
        "config": {"initial_balance": initial_balance, "leverage": leverage,
                   "margin_mode": "isolated", "position_mode": "one_way", "venue": "binance_usdm",
                   "path_policy": "worst_case", "slippage": "sqrt", "seed": seed,
                   "timeframe": f"{interval_ms // MINUTE_MS}m", "symbols": [symbol]},
        "strategy": {"name": strategy, "params": params if params is not None else {"fast": 50, "slow": 200}},
        "venue": {"name": "binance_usdm",
                  "rule_versions": {"risk_tiers": "2024-01-01", "liquidation_fee": "2023-10-01"}},
        "data": [{"path": f"store/ohlcv/binanceusdm/{symbol.replace('/', '_').replace(':', '_')}.parquet",
                  "sha256": hashlib.sha256(data_bytes).hexdigest(), "rows": n,
                  "range": [int(ts[0]), int(ts[-1])]}],
        "quality_warnings": quality_warnings if quality_warnings is not None
        else ["gap of 3 bars before 2024-02-01 00:00 UTC filled forward"],
        "seed": seed,
        "packages": {"margincall": "0.1.0", "polars": pl.__version__},
        "summary": summary,
        "created_at": "2024-06-01T00:00:00Z",
    }
    seal_run_dir(path, manifest)
    return RunFixture(path=path, n_bars=n, liquidation_ts=[int(r["ts"]) for r in liqs],
                      n_trades=len(trades), n_fills=len(fills), n_funding=len(funding),
                      summary=summary)


def seal_run_dir(path: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` with the run-folder format and the record of every table in ``path``
    (as ``RunResult.write`` does), so the folder reads as a complete run."""
    from backtest.runfolder import RUN_FORMAT, RUN_FORMAT_VERSION, file_record

    manifest = {**manifest, "format": {"name": RUN_FORMAT, "version": RUN_FORMAT_VERSION},
                "files": {p.name: file_record(p) for p in sorted(path.glob("*.parquet"))}}
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def reseal_run_dir(path: Path) -> None:
    """Record the folder's tables as they are now, keeping the rest of its manifest (a test
    that edits a table on purpose stands for a writer that wrote it so)."""
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    seal_run_dir(path, {k: v for k, v in manifest.items() if k not in ("format", "files")})
