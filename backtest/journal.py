"""The journal: everything a run records, as column lists (turned into frames once, at the end).

Per-bar values (equity, positions) are not written per bar: the journal logs a snapshot of
the account only when it changes, and :mod:`backtest.metrics` expands the snapshots over the
bars with vectorized NumPy. That keeps the bar loop free of per-bar writes.
"""
from __future__ import annotations

import math

import polars as pl

__all__ = ["FILL_COLUMNS", "FUNDING_COLUMNS", "Journal", "LIQUIDATION_COLUMNS",
           "ORDER_COLUMNS", "REJECTION_COLUMNS", "TRADE_COLUMNS"]

ORDER_COLUMNS = ("order_id", "ts_created", "ts_done", "symbol", "side", "type", "qty", "price",
                 "stop_price", "reduce_only", "status", "tag")
FILL_COLUMNS = ("ts", "order_id", "symbol", "side", "qty", "price", "reference_price",
                "slippage_bps", "slippage_cost", "fee", "liquidity", "realized_pnl",
                "position_qty_after", "reason")
REJECTION_COLUMNS = ("ts", "order_id", "symbol", "side", "type", "qty", "price", "reason", "message")
FUNDING_COLUMNS = ("ts", "symbol", "rate", "mark_price", "position_qty", "payment", "margin_mode")
LIQUIDATION_COLUMNS = ("ts", "trigger_ts", "symbol", "side", "qty", "margin_mode", "entry_price",
                       "mark_price", "last_price", "liquidation_price", "bankruptcy_price",
                       "fill_price", "reference_price", "slippage_bps", "slippage_cost", "fee",
                       "margin_lost", "insurance_fund_delta", "bad_debt", "equity_before",
                       "equity_after", "maint_margin_rate", "tier")
TRADE_COLUMNS = ("symbol", "side", "entry_ts", "exit_ts", "qty", "entry_price", "exit_price",
                 "pnl", "fees", "funding", "exit_reason")

_TS = pl.Datetime("ms", "UTC")
_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "orders": dict(zip(ORDER_COLUMNS, (pl.Int64, _TS, _TS, pl.String, pl.String, pl.String,
                                        pl.Float64, pl.Float64, pl.Float64, pl.Boolean,
                                        pl.String, pl.String))),
    "fills": dict(zip(FILL_COLUMNS, (_TS, pl.Int64, pl.String, pl.String, pl.Float64, pl.Float64,
                                      pl.Float64, pl.Float64, pl.Float64, pl.Float64, pl.String,
                                      pl.Float64, pl.Float64, pl.String))),
    "rejections": dict(zip(REJECTION_COLUMNS, (_TS, pl.Int64, pl.String, pl.String, pl.String,
                                                pl.Float64, pl.Float64, pl.String, pl.String))),
    "funding": dict(zip(FUNDING_COLUMNS, (_TS, pl.String, pl.Float64, pl.Float64, pl.Float64,
                                           pl.Float64, pl.String))),
    "liquidations": dict(zip(LIQUIDATION_COLUMNS, (_TS, _TS, pl.String, pl.String, pl.Float64,
                                                    pl.String, *([pl.Float64] * 16), pl.Int32))),
    "trades": dict(zip(TRADE_COLUMNS, (pl.String, pl.String, _TS, _TS, pl.Float64, pl.Float64,
                                        pl.Float64, pl.Float64, pl.Float64, pl.Float64, pl.String))),
}


class Journal:
    """Row recorders of one run plus the account snapshots.

    Attributes
    ----------
    snap_bar, snap_wallet : list
        Bar index and wallet of each snapshot (the last snapshot of a bar is its close state).
    snap_positions : list of list of tuple
        Per snapshot, ``(key, qty, entry_price, margin, leverage, liquidation_price,
        bankruptcy_price)`` of every position slot.
    """

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple]] = {name: [] for name in _SCHEMAS if name != "orders"}
        #: ``rows["fills"]`` and ``rows["trades"]`` (the same lists), appended to on every fill.
        self.fill_rows = self.rows["fills"]
        self.trade_rows = self.rows["trades"]
        self.snap_bar: list[int] = []
        self.snap_wallet: list[float] = []
        self.snap_positions: list[list[tuple]] = []
        # running totals for the summary and the PnL attribution
        self.fees = 0.0
        self.slippage = 0.0
        self.funding_paid = 0.0
        self.funding_received = 0.0
        self.liquidation_penalty = 0.0
        self.clearance_fees = 0.0
        # the highest margin ratio seen at a liquidation trigger (bar closes never see it: the
        # pool is gone by then) and when
        self.trigger_margin_ratio = 0.0
        self.trigger_margin_ratio_ts: int | None = None

    def note_margin_ratio(self, ts: int, ratio: float) -> None:
        """Remember the margin ratio a pool reached at a liquidation trigger at ``ts`` (UTC ms)."""
        if ratio > self.trigger_margin_ratio:
            self.trigger_margin_ratio = ratio
            self.trigger_margin_ratio_ts = ts

    def snapshot(self, bar: int, account) -> None:  # noqa: ANN001 - Account
        """Record the account's state as of bar ``bar`` (overrides earlier ones of that bar)."""
        positions = [(p.key, p.qty, p.entry_price, p.margin, p.leverage, p.liquidation_price,
                      p.bankruptcy_price) for p in account.positions]
        if self.snap_bar and self.snap_bar[-1] == bar:
            self.snap_wallet[-1] = account.wallet
            self.snap_positions[-1] = positions
        else:
            self.snap_bar.append(bar)
            self.snap_wallet.append(account.wallet)
            self.snap_positions.append(positions)

    def fill(self, row: tuple) -> None:
        """Record a fills.parquet row (see :data:`FILL_COLUMNS`)."""
        self.fill_rows.append(row)

    def rejection(self, row: tuple) -> None:
        """Record a rejections.parquet row."""
        self.rows["rejections"].append(row)

    def funding(self, row: tuple) -> None:
        """Record a funding.parquet row and the running totals."""
        self.rows["funding"].append(row)
        payment = row[5]
        if payment >= 0:
            self.funding_received += payment
        else:
            self.funding_paid -= payment

    def liquidation(self, row: tuple) -> None:
        """Record a liquidations.parquet row."""
        self.rows["liquidations"].append(row)

    def trade(self, row: tuple) -> None:
        """Record a trades.parquet row."""
        self.trade_rows.append(row)

    def frame(self, name: str, rows: list[tuple] | None = None) -> pl.DataFrame:
        """The recorded rows of ``name`` as a frame with the CONTRACTS §6 columns and types."""
        schema = _SCHEMAS[name]
        data = self.rows[name] if rows is None else rows
        columns = list(zip(*data)) if data else [[] for _ in schema]
        series = []
        for (col, dtype), values in zip(schema.items(), columns):
            if dtype == _TS:
                series.append(pl.Series(col, list(values), dtype=pl.Int64).cast(_TS))
            else:
                clean = [None if isinstance(v, float) and math.isnan(v) and dtype != pl.Float64
                         else v for v in values]
                series.append(pl.Series(col, clean, dtype=dtype, strict=False))
        return pl.DataFrame(series)
