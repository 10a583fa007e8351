"""DuckDB catalog over the store: one view per dataset, and the ``data ls`` inventory.

Each view reads ``<root>/<dataset>/**/*.parquet`` with ``hive_partitioning`` and
``union_by_name`` (files written by older versions with fewer columns still union). The
``symbol_key`` folder column is hidden (files carry the real ``symbol``); ``year`` stays so
queries can prune folders. A dataset with no files is an empty view with the canonical
columns, so queries never fail just because nothing was imported yet.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from data_loaders.quality import missing_intervals
from data_loaders.schemas import DATASETS, TS, get_schema

if TYPE_CHECKING:
    import duckdb

    from data_loaders.store import MarketStore

_DUCK_TYPES = {pl.String(): "VARCHAR", pl.Float64(): "DOUBLE", pl.Int32(): "INTEGER",
               pl.Int64(): "BIGINT", TS: "TIMESTAMPTZ"}


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(root: Path, dataset: str) -> str:
    """The ``CREATE VIEW`` statement for one dataset."""
    schema = get_schema(dataset)
    base = root / dataset
    has_files = base.exists() and any(p for p in base.glob("**/*.parquet") if not p.name.startswith("."))
    if not has_files:
        cols = ", ".join(f"CAST(NULL AS {_DUCK_TYPES[dtype]}) AS {name}" for name, dtype in schema.columns)
        return f"CREATE OR REPLACE VIEW {dataset} AS SELECT {cols} WHERE false"
    pattern = _sql_string((base / "**" / "[!.]*.parquet").as_posix())
    return (f"CREATE OR REPLACE VIEW {dataset} AS SELECT * EXCLUDE (symbol_key) FROM read_parquet("
            f"{pattern}, hive_partitioning = true, union_by_name = true)")


def connect(root: str | Path, *, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """Open a DuckDB connection with a view per canonical dataset.

    Parameters
    ----------
    root : str or Path
        Store root.
    database : str, default ":memory:"
        DuckDB database path (the views reference the Parquet files; nothing is copied).

    Returns
    -------
    duckdb.DuckDBPyConnection
        Views ``ohlcv``, ``funding``, ``risk_tiers``, ``markets``, ``trades``; timestamps are
        ``TIMESTAMP WITH TIME ZONE``, and the session time zone is UTC.
    """
    import duckdb

    con = duckdb.connect(database)
    con.execute("SET TimeZone = 'UTC'")
    for dataset in DATASETS:
        con.execute(view_sql(Path(root), dataset))
    return con


def listing_frame(store: MarketStore) -> pl.DataFrame:
    """Inventory of a store: one row per partition (see :meth:`MarketStore.listing`)."""
    rows = []
    for dataset in DATASETS:
        schema = get_schema(dataset)
        for part in store.partitions(dataset):
            files = sorted(p for p in part["path"].glob("year=*/*.parquet") if not p.name.startswith("."))
            if not files:
                continue
            wanted = [c for c in ("exchange", "symbol", "timeframe", "price_type", "interval_hours")
                      if c in schema.column_names] + [schema.time_column]
            frame = pl.scan_parquet(files, hive_partitioning=False).select(wanted).collect()
            if schema.time_column != "ts":
                frame = frame.rename({schema.time_column: "ts"})
            gaps = missing_intervals(dataset, frame)
            times = frame["ts"]
            rows.append({
                "dataset": dataset, "exchange": part["exchange"], "symbol": part["symbol"],
                "timeframe": part["timeframe"], "price_type": part["price_type"],
                "start": times.min(), "end": times.max(), "rows": frame.height,
                "gaps": int(gaps["missing"].sum()) if gaps is not None else None,
                "files": len(files), "bytes": sum(f.stat().st_size for f in files),
            })
    schema = {"dataset": pl.String, "exchange": pl.String, "symbol": pl.String, "timeframe": pl.String,
              "price_type": pl.String, "start": TS, "end": TS, "rows": pl.Int64, "gaps": pl.Int64,
              "files": pl.Int64, "bytes": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
