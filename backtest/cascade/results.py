"""Tables and summary of a cascade run, and its folder (Parquet + DuckDB + manifest).

Tables (all money in quote currency, ``ts`` UTC ms as ``timestamp[ms, UTC]``):

``prices``        ts, symbol, exogenous, index, mark, last, depth_multiplier, bid_touch,
                  ask_touch (relative distances swept), loop_gain, inventory_long, inventory_short
``liquidations``  ts, symbol, side, leverage_bucket, positions, qty, notional (at mark), margin
``liquidated_positions``  position (population row), ts, symbol, side, qty, entry_price, margin,
                  leverage, liquidation_price, bankruptcy_price, mark_price, equity_at_trigger
``fills``         ts, symbol, side (of the liquidated positions), kind (book/adl/end_mark), qty,
                  price, reference_price, notional, insurance_fund_delta, loss, margin_part
``insurance_fund``  ts, balance
``adl``           ts, symbol, winner_side, rule, deficit, closed_qty, closed_notional,
                  profit_taken, paid, overshoot, shortfall, counterparties, max_haircut,
                  max_leverage_after
``adl_counterparties``  ts, symbol, position, qty_closed, haircut
``adl_comparison``  ts, symbol, round (row of ``adl``), rule, applied, deficit, closed_qty,
                  profit_taken, paid, overshoot, shortfall, counterparties, max_haircut,
                  max_leverage_after — every rule on the same deficit and winners (only with
                  ``compare_adl_rules``)
``bad_debt``      ts, symbol, amount

The folder is written whole or not at all through :func:`backtest.runfolder.write_run_folder`.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

__all__ = ["TABLES", "CascadeResult"]

TABLES = ("prices", "liquidations", "liquidated_positions", "fills", "insurance_fund", "adl",
          "adl_counterparties", "adl_comparison", "bad_debt")

_SCHEMAS: dict[str, list[tuple[str, Any]]] = {
    "prices": [("ts", pl.Int64), ("symbol", pl.Utf8), ("exogenous", pl.Float64), ("index", pl.Float64),
               ("mark", pl.Float64), ("last", pl.Float64), ("depth_multiplier", pl.Float64),
               ("bid_touch", pl.Float64), ("ask_touch", pl.Float64), ("loop_gain", pl.Float64),
               ("inventory_long", pl.Float64), ("inventory_short", pl.Float64)],
    "liquidations": [("ts", pl.Int64), ("symbol", pl.Utf8), ("side", pl.Utf8), ("leverage_bucket", pl.Utf8),
                     ("positions", pl.Int64), ("qty", pl.Float64), ("notional", pl.Float64),
                     ("margin", pl.Float64)],
    "fills": [("ts", pl.Int64), ("symbol", pl.Utf8), ("side", pl.Utf8), ("kind", pl.Utf8), ("qty", pl.Float64),
              ("price", pl.Float64), ("reference_price", pl.Float64), ("notional", pl.Float64),
              ("insurance_fund_delta", pl.Float64), ("loss", pl.Float64), ("margin_part", pl.Float64)],
    "insurance_fund": [("ts", pl.Int64), ("balance", pl.Float64)],
    "adl": [("ts", pl.Int64), ("symbol", pl.Utf8), ("winner_side", pl.Utf8), ("rule", pl.Utf8),
            ("deficit", pl.Float64), ("closed_qty", pl.Float64), ("closed_notional", pl.Float64),
            ("profit_taken", pl.Float64), ("paid", pl.Float64), ("overshoot", pl.Float64),
            ("shortfall", pl.Float64), ("counterparties", pl.Int64), ("max_haircut", pl.Float64),
            ("max_leverage_after", pl.Float64)],
    "adl_comparison": [("ts", pl.Int64), ("symbol", pl.Utf8), ("round", pl.Int64), ("rule", pl.Utf8),
                       ("applied", pl.Boolean), ("deficit", pl.Float64), ("closed_qty", pl.Float64),
                       ("profit_taken", pl.Float64), ("paid", pl.Float64), ("overshoot", pl.Float64),
                       ("shortfall", pl.Float64), ("counterparties", pl.Int64), ("max_haircut", pl.Float64),
                       ("max_leverage_after", pl.Float64)],
    "bad_debt": [("ts", pl.Int64), ("symbol", pl.Utf8), ("amount", pl.Float64)],
}


def _frame(name: str, rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    schema = _SCHEMAS[name]
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


class CascadeResult:
    """Tables (polars) and summary of one cascade run; :meth:`write` makes its folder."""

    def __init__(self, tables: dict[str, pl.DataFrame], summary: dict[str, Any], manifest: dict[str, Any]) -> None:
        self.tables = tables
        self.summary = summary
        self.manifest = manifest

    def __getattr__(self, name: str) -> pl.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        s = self.summary
        return (f"CascadeResult(liquidated={s['liquidated_positions']}, notional={s['liquidated_notional']:.0f}, "
                f"adl={s['adl_notional']:.0f}, bad_debt={s['bad_debt']:.2f})")

    # ---- building ------------------------------------------------------------------------
    @classmethod
    def build(cls, recorder, states, population, paths, config, fund_start: float,  # noqa: ANN001, PLR0913
              fund_end: float) -> CascadeResult:
        """Tables and summary from a finished run's recorder and symbol states."""
        tables = {name: _frame(name, getattr(recorder, attr)) for name, attr in (
            ("prices", "prices"), ("liquidations", "buckets"), ("fills", "fills"), ("insurance_fund", "fund"),
            ("adl", "adl"), ("adl_comparison", "comparison"), ("bad_debt", "bad"))}
        tables["liquidated_positions"] = _positions(recorder, states, population, paths)
        tables["adl_counterparties"] = _counterparties(recorder)
        tables = {name: tables[name] for name in TABLES}
        summary = _summary(tables, recorder, states, paths, fund_start, fund_end)
        settings = asdict(config)
        settings["liquidity"] = {s.symbol: asdict(s.model) for s in states}
        manifest = {"kind": "cascade", "config": settings, "population": {"positions": len(population),
                    "symbols": population.symbols()}, "step_s": states[0].step_s if states else None}
        return cls(tables, summary, manifest)

    # ---- writing -------------------------------------------------------------------------
    def write(self, out_dir: str | Path, *, overwrite: bool = False) -> Path:
        """Write every table, ``results.duckdb`` (one view per table) and ``manifest.json``.

        Atomic: a temporary sibling folder renamed into place (``backtest.runfolder``).

        Raises
        ------
        backtest.runfolder.RunFolderError
            When ``out_dir`` exists (without ``overwrite``) or cannot be written.
        """
        from backtest.results import _jsonable
        from backtest.runfolder import write_run_folder

        target = Path(os.path.abspath(Path(out_dir).expanduser()))
        manifest = dict(self.manifest)
        manifest["summary"] = self.summary
        manifest["created_at"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        return write_run_folder(target, lambda tmp: self._write_tables(tmp, target), _jsonable(manifest),
                                overwrite=overwrite)

    def _write_tables(self, tmp: Path, final: Path) -> dict[str, dict[str, Any]]:
        from backtest.runfolder import write_tables

        # views point at the final place; allow_empty lets them exist before the rename
        return write_tables(tmp, self.tables, final=final)


def _positions(recorder, states, population, paths) -> pl.DataFrame:  # noqa: ANN001
    ids = np.flatnonzero(recorder.liq_step >= 0)
    lp = np.zeros(len(population))
    bp = np.zeros(len(population))
    for state in states:
        for book in state.sides.values():
            lp[book.ids] = book.lp
            bp[book.ids] = book.bp
    if recorder.cross_bp is not None:  # a cross leg has no price of its own: the account's equity decides
        cross = ~np.isnan(recorder.cross_bp)
        lp[cross] = np.nan
        bp[cross] = recorder.cross_bp[cross]
    grid = next(iter(paths.values())).ts
    frame = pl.DataFrame({
        "position": ids.astype(np.int64),
        "ts": grid[recorder.liq_step[ids]],
        "symbol": population.symbol[ids],
        "side": np.where(population.side[ids] > 0, "long", "short"),
        "qty": recorder.liq_qty[ids], "entry_price": population.entry[ids],
        "margin": recorder.liq_margin[ids], "leverage": population.leverage[ids],
        "liquidation_price": lp[ids], "bankruptcy_price": bp[ids],
        "mark_price": recorder.liq_mark[ids], "equity_at_trigger": recorder.liq_equity[ids],
    }, schema_overrides={"symbol": pl.Utf8, "side": pl.Utf8})
    return frame.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC"))).sort(["ts", "position"])


def _counterparties(recorder) -> pl.DataFrame:  # noqa: ANN001
    parts = [pl.DataFrame({"ts": np.full(len(ids), ts, dtype=np.int64), "symbol": [symbol] * len(ids),
                           "position": ids.astype(np.int64), "qty_closed": closed, "haircut": haircut},
                          schema_overrides={"symbol": pl.Utf8})
             for ts, symbol, ids, closed, haircut in recorder.counterparties]
    frame = pl.concat(parts) if parts else pl.DataFrame(
        schema={"ts": pl.Int64, "symbol": pl.Utf8, "position": pl.Int64, "qty_closed": pl.Float64,
                "haircut": pl.Float64})
    return frame.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def _amplification(prices: pl.DataFrame, symbol: str) -> float | None:
    """Largest |last / start - 1| over largest |exogenous / start - 1| (None: no exogenous move)."""
    rows = prices.filter(pl.col("symbol") == symbol)
    exo = rows["exogenous"].to_numpy()
    last = rows["last"].to_numpy()
    exo_move = float(np.abs(exo / exo[0] - 1).max())
    if exo_move == 0:
        return None
    return float(np.abs(last / exo[0] - 1).max()) / exo_move


def _comparison(table: pl.DataFrame) -> dict[str, dict[str, float]] | None:
    """Per rule, totals over the run's ADL rounds (same deficits, same winners)."""
    if table.height == 0:
        return None
    totals = table.group_by("rule").agg(pl.col("profit_taken").sum(), pl.col("overshoot").sum(),
                                        pl.col("shortfall").sum(), pl.col("counterparties").sum(),
                                        pl.col("max_leverage_after").max()).sort("rule")
    return {row.pop("rule"): row for row in totals.iter_rows(named=True)}


def _summary(tables, recorder, states, paths, fund_start: float, fund_end: float) -> dict[str, Any]:  # noqa: ANN001
    fills, adl, prices = tables["fills"], tables["adl"], tables["prices"]
    positions = tables["liquidated_positions"]
    grid = next(iter(paths.values())).ts
    first_liq = int(grid[recorder.liq_step[recorder.liq_step >= 0].min()]) if (recorder.liq_step >= 0).any() else None
    first_adl = int(adl["ts"].dt.epoch("ms").min()) if adl.height else None
    negative = positions.filter(pl.col("equity_at_trigger") < 0)
    gains = prices["loop_gain"].to_numpy() if prices.height else np.zeros(0)
    runaway = bool((gains >= 1).any())
    fund_path = tables["insurance_fund"]["balance"].to_numpy()
    bad_debt = float(tables["bad_debt"]["amount"].sum()) if tables["bad_debt"].height else 0.0
    margin_lost = float(fills["margin_part"].sum()) if fills.height else 0.0
    loss = float(fills["loss"].sum()) if fills.height else 0.0
    adl_paid = float(adl["paid"].sum()) if adl.height else 0.0
    overshoot = float(adl["overshoot"].sum()) if adl.height else 0.0
    fund_paid = fund_start - fund_end + overshoot
    return {
        "steps": len(grid), "symbols": [s.symbol for s in states],
        "liquidated_positions": positions.height,
        "liquidated_notional": float((positions["qty"] * positions["mark_price"]).sum()) if positions.height else 0.0,
        "liquidation_loss": loss, "margin_lost": margin_lost,
        "insurance_fund_start": fund_start, "insurance_fund_end": fund_end,
        "insurance_fund_min": float(fund_path.min()) if len(fund_path) else fund_start,
        "insurance_fund_paid": fund_paid,
        "deficit": float(adl["deficit"].sum()) if adl.height else 0.0,
        "adl_paid": adl_paid, "adl_overshoot": overshoot,
        "adl_notional": float(adl["closed_notional"].sum()) if adl.height else 0.0,
        "adl_counterparties": int(tables["adl_counterparties"]["position"].n_unique()),
        "bad_debt": bad_debt,
        "adl_rule_comparison": _comparison(tables["adl_comparison"]),
        "conservation_residual": loss - (margin_lost + fund_paid + adl_paid + bad_debt),
        "negative_equity_positions": negative.height,
        "negative_equity_total": float(negative["equity_at_trigger"].sum()) if negative.height else 0.0,
        "amplification": {s.symbol: _amplification(prices, s.symbol) for s in states},
        "first_liquidation_ts": first_liq, "first_adl_ts": first_adl,
        "time_to_first_adl_s": None if first_adl is None or first_liq is None else (first_adl - first_liq) / 1000,
        "max_loop_gain": float(gains.max()) if len(gains) else 0.0,
        "runaway": runaway,
        "runaway_first_ts": int(prices.filter(pl.col("loop_gain") >= 1)["ts"].dt.epoch("ms").min()) if runaway else None,
    }
