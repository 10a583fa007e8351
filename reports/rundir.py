"""Reading a run directory (docs/CONTRACTS.md §6) into memory for the report.

``equity.parquet`` and ``manifest.json`` are required, and the manifest must record the run
folder's format and every table's size and sha256 (``backtest.runfolder``): a folder from an
interrupted write, another margincall version or with changed tables is refused with what
differs. Tables the manifest does not record are optional; each present one must carry its
§6 columns. An
optional ``bars.parquet`` (``ts, symbol, open, high, low, close, mark_close``) gives the price
chart real candles; without it the chart draws ``equity.last_price`` as a line.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from backtest.runfolder import RunFolderError, verify_run_folder

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "equity": ("ts", "wallet_balance", "unrealized_pnl", "equity", "maintenance_margin",
               "margin_ratio", "distance_to_liquidation", "gross_notional", "position_qty",
               "mark_price", "last_price", "liquidation_price"),
    "positions": ("ts", "symbol", "position_side", "qty", "entry_price", "mark_price",
                  "last_price", "liquidation_price", "bankruptcy_price", "unrealized_pnl",
                  "margin_mode", "leverage", "isolated_margin"),
    "orders": ("order_id", "ts_created", "ts_done", "symbol", "side", "type", "qty", "price",
               "stop_price", "reduce_only", "status", "tag"),
    "fills": ("ts", "order_id", "symbol", "side", "qty", "price", "reference_price",
              "slippage_bps", "slippage_cost", "fee", "liquidity", "realized_pnl",
              "position_qty_after", "reason"),
    "rejections": ("ts", "order_id", "symbol", "side", "type", "qty", "price", "reason",
                   "message"),
    "funding": ("ts", "symbol", "rate", "mark_price", "position_qty", "payment", "margin_mode"),
    "liquidations": ("ts", "trigger_ts", "symbol", "side", "qty", "margin_mode", "entry_price",
                     "mark_price", "last_price", "liquidation_price", "bankruptcy_price",
                     "fill_price", "reference_price", "slippage_bps", "slippage_cost", "fee",
                     "margin_lost", "insurance_fund_delta", "bad_debt", "equity_before",
                     "equity_after", "maint_margin_rate", "tier"),
    "trades": ("symbol", "side", "entry_ts", "exit_ts", "qty", "entry_price", "exit_price",
               "pnl", "fees", "funding", "exit_reason"),
    "bars": ("ts", "symbol", "open", "high", "low", "close", "mark_close"),
}
"""The §6 columns the report reads, per run file (``bars`` is the optional candle file)."""

_TEXT = {"symbol", "position_side", "margin_mode", "side", "type", "status", "tag", "liquidity",
         "reason", "message", "exit_reason", "order_id"}
_TIME = {"ts", "ts_created", "ts_done", "trigger_ts", "entry_ts", "exit_ts"}


class RunDirError(ValueError):
    """A run directory is missing, incomplete or not in the CONTRACTS §6 format."""


def _empty(name: str) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {}
    for column in TABLE_COLUMNS[name]:
        if column in _TIME:
            schema[column] = pl.Datetime("ms", "UTC")
        elif column in _TEXT:
            schema[column] = pl.String()
        elif column == "reduce_only":
            schema[column] = pl.Boolean()
        else:
            schema[column] = pl.Float64()
    return pl.DataFrame(schema=schema)


def _read_table(run_dir: Path, name: str, *, required: bool) -> pl.DataFrame | None:
    path = run_dir / f"{name}.parquet"
    if not path.is_file():
        if required:
            raise RunDirError(
                f"{run_dir}: expected {path.name} (CONTRACTS §6 run output), found no such file; "
                f"pass the directory a backtest wrote (`margincall run ... --out DIR`)"
            )
        return None
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several error types for corrupt files
        raise RunDirError(
            f"{path}: expected a readable Parquet file, found an unreadable one ({exc}); "
            f"re-run the backtest to rewrite it"
        ) from exc
    missing = [c for c in TABLE_COLUMNS[name] if c not in frame.columns]
    if missing:
        raise RunDirError(
            f"{path}: expected the CONTRACTS §6 columns {list(TABLE_COLUMNS[name])}, "
            f"missing {missing} (found {frame.columns}); re-run the backtest with this "
            f"margincall version so the run directory matches the report"
        )
    for column in _TIME & set(frame.columns):
        dtype = frame.schema[column]
        if dtype.is_integer():
            frame = frame.with_columns(pl.col(column).cast(pl.Datetime("ms", "UTC")))
        elif isinstance(dtype, pl.Datetime):
            frame = frame.with_columns(
                pl.col(column).dt.replace_time_zone("UTC") if dtype.time_zone is None
                else pl.col(column).dt.convert_time_zone("UTC")
            )
    return frame


@dataclass(frozen=True)
class RunData:
    """A run directory's tables and manifest, as the report reads them.

    Attributes
    ----------
    path : pathlib.Path
        The run directory.
    manifest : dict
        ``manifest.json`` parsed.
    equity, positions, orders, fills, rejections, funding, liquidations, trades : polars.DataFrame
        The §6 tables (empty with §6 columns when a file is absent), time columns as
        ``Datetime("ms", "UTC")``.
    bars : polars.DataFrame or None
        Optional ``bars.parquet`` candles.
    """

    path: Path
    manifest: dict[str, Any]
    equity: pl.DataFrame
    positions: pl.DataFrame
    orders: pl.DataFrame
    fills: pl.DataFrame
    rejections: pl.DataFrame
    funding: pl.DataFrame
    liquidations: pl.DataFrame
    trades: pl.DataFrame
    bars: pl.DataFrame | None

    @property
    def name(self) -> str:
        """The run's name: its directory name."""
        return self.path.name

    @property
    def summary(self) -> dict[str, Any]:
        """``manifest.summary`` (empty dict when absent)."""
        value = self.manifest.get("summary")
        return value if isinstance(value, dict) else {}

    @property
    def config(self) -> dict[str, Any]:
        """``manifest.config`` (empty dict when absent)."""
        value = self.manifest.get("config")
        return value if isinstance(value, dict) else {}

    @property
    def strategy_name(self) -> str:
        """The strategy's name from the manifest ("?" when absent)."""
        strategy = self.manifest.get("strategy")
        if isinstance(strategy, dict) and strategy.get("name") is not None:
            return str(strategy["name"])
        return "?"

    @property
    def initial_balance(self) -> float:
        """Starting balance: ``summary.initial_balance``, else ``config.initial_balance``,
        else the first bar's wallet balance."""
        for source in (self.summary, self.config):
            value = source.get("initial_balance")
            if isinstance(value, (int, float)) and value > 0:
                return float(value)
        return float(self.equity.get_column("wallet_balance")[0])

    @property
    def symbol(self) -> str:
        """The first symbol traded (positions, then fills, then the manifest's config)."""
        for frame in (self.positions, self.fills, self.bars):
            if frame is not None and frame.height:
                return str(frame.get_column("symbol")[0])
        symbols = self.config.get("symbols") or self.config.get("symbol")
        if isinstance(symbols, list) and symbols:
            return str(symbols[0])
        return str(symbols) if symbols else "?"

    @property
    def assets(self) -> tuple[str, str, str]:
        """``(base, quote, margin asset)`` of the first symbol (ccxt ``BASE/QUOTE:SETTLE``).

        Unknown parts fall back to ``coin`` / ``USDT`` (the linear USDⓈ-M default).
        """
        symbol = self.symbol
        pair, _, settle = symbol.partition(":")
        base, _, quote = pair.partition("/")
        base = base if base and base != "?" else "coin"
        quote = quote or "USDT"
        return base, quote, settle or quote

    @property
    def margin_asset(self) -> str:
        """The asset money is counted in (``USDT`` for linear USDⓈ-M contracts)."""
        return self.assets[2]

    @property
    def tick_size(self) -> float | None:
        """The first symbol's price tick from the manifest (``venue.markets`` or the config),
        or None when the run does not record it (prices then print with 2 decimals)."""
        venue = self.manifest.get("venue") if isinstance(self.manifest.get("venue"), dict) else {}
        markets = venue.get("markets") if isinstance(venue.get("markets"), dict) else {}
        entry = markets.get(self.symbol) if isinstance(markets.get(self.symbol), dict) else {}
        for value in (entry.get("tick_size"), self.config.get("tick_size")):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return float(value)
        return None

    def ts_ms(self, table: str, column: str = "ts") -> np.ndarray:
        """A time column of a table as int64 milliseconds since the epoch."""
        frame = getattr(self, table)
        return frame.get_column(column).dt.epoch("ms").to_numpy().astype(np.int64)


def _check_equity_readable(run_dir: Path) -> None:
    """Refuse an unreadable ``equity.parquet`` first, naming it (footer read only); a missing
    one is named by the completeness check, with the rest of what differs."""
    path = run_dir / "equity.parquet"
    if not path.is_file():
        return
    try:
        pl.read_parquet_schema(path)
    except Exception as exc:  # polars raises several error types for corrupt files
        raise RunDirError(
            f"{path}: expected a readable Parquet file, found an unreadable one "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); the run was "
            f"interrupted or the file damaged: re-run the backtest (`--overwrite` replaces the "
            f"folder)") from None


def is_run_dir(path: Path) -> bool:
    """True when ``path`` looks like a run directory: a visible folder with ``manifest.json``.

    Whether it is a complete run is :func:`load_run`'s question (it names what is missing);
    hidden folders are a writer's temporary folders (``.NAME.partial-*``), never runs.
    """
    path = Path(path)
    return not path.name.startswith(".") and (path / "manifest.json").is_file()


def load_run(run_dir: Path) -> RunData:
    """Read a run directory.

    Parameters
    ----------
    run_dir : pathlib.Path
        Directory with the CONTRACTS §6 files.

    Raises
    ------
    RunDirError
        When the directory, ``manifest.json`` or ``equity.parquet`` is missing, the manifest
        has no run-format record or another format version, a recorded table is missing or
        differs from its record, a file is unreadable, a table lacks §6 columns, or the
        equity table has fewer than 2 rows or unsorted timestamps.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(
            f"{run_dir}: expected a run directory, found {'a file' if run_dir.exists() else 'nothing'}; "
            f"pass the folder a backtest wrote (it holds manifest.json and equity.parquet)"
        )
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise RunDirError(
            f"{run_dir}: expected manifest.json (CONTRACTS §6), found no such file; "
            f"pass the directory a backtest wrote (`margincall run ... --out DIR`)"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise RunDirError(
            f"{manifest_path}: expected JSON, found invalid content ({exc}); re-run the backtest"
        ) from None
    if not isinstance(manifest, dict):
        raise RunDirError(f"{manifest_path}: expected a JSON object, found {type(manifest).__name__}")
    _check_equity_readable(run_dir)  # the one table every run has: name it when it is broken
    try:  # every table the manifest records is there, unchanged: the run was written whole
        verify_run_folder(run_dir, manifest)
    except RunFolderError as exc:
        raise RunDirError(str(exc)) from None
    tables: dict[str, pl.DataFrame] = {}
    for name in ("equity", "positions", "orders", "fills", "rejections", "funding",
                 "liquidations", "trades"):
        frame = _read_table(run_dir, name, required=name == "equity")
        tables[name] = frame if frame is not None else _empty(name)
    equity = tables["equity"]
    if equity.height < 2:
        raise RunDirError(
            f"{run_dir / 'equity.parquet'}: expected at least 2 bars, found {equity.height}; "
            f"a report needs a run over two bars or more"
        )
    ts = equity.get_column("ts")
    if ts.null_count() or not ts.is_sorted():
        raise RunDirError(
            f"{run_dir / 'equity.parquet'}: expected non-null ts sorted ascending, found "
            f"{'nulls' if ts.null_count() else 'unsorted timestamps'}; re-run the backtest"
        )
    tables["liquidations"] = tables["liquidations"].sort("ts")
    tables["fills"] = tables["fills"].sort("ts")
    tables["funding"] = tables["funding"].sort("ts")
    bars = _read_table(run_dir, "bars", required=False)
    return RunData(path=run_dir, manifest=manifest, bars=bars.sort("ts") if bars is not None else None,
                   **tables)
