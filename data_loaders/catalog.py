"""DuckDB catalog over the store: one view per dataset, and the ``data ls`` inventory.

Each view reads the dataset's data files (listed by :mod:`data_loaders.store_layout`, so a
stray ``.parquet`` dropped into the tree is never read as data) with ``hive_partitioning`` and
``union_by_name`` (files written by older versions with fewer columns still union). The
``symbol_key`` folder column is hidden (files carry the real ``symbol``); ``year`` stays so
queries can prune folders. A dataset with no files is an empty view with the canonical
columns, so queries never fail just because nothing was imported yet.

Connections are read-only by default (:func:`connect`, :func:`run_read_only`): ``data query``
once deleted every stored funding file with ``COPY ... TO ... (OVERWRITE)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from data_loaders.errors import DataError
from data_loaders.quality import missing_intervals
from data_loaders.schemas import DATASETS, TS, get_schema
from data_loaders.store_layout import data_files, walk

if TYPE_CHECKING:
    import duckdb

    from data_loaders.store import MarketStore

_DUCK_TYPES = {pl.String(): "VARCHAR", pl.Float64(): "DOUBLE", pl.Int32(): "INTEGER",
               pl.Int64(): "BIGINT", TS: "TIMESTAMPTZ"}


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(root: Path, dataset: str) -> str:
    """The ``CREATE VIEW`` statement for one dataset (the store's own files only, see store_layout)."""
    schema = get_schema(dataset)
    files = walk(Path(root), dataset).files
    if not files:
        cols = ", ".join(f"CAST(NULL AS {_DUCK_TYPES[dtype]}) AS {name}" for name, dtype in schema.columns)
        return f"CREATE OR REPLACE VIEW {dataset} AS SELECT {cols} WHERE false"
    listed = "[" + ", ".join(_sql_string(f.as_posix()) for f in files) + "]"
    return (f"CREATE OR REPLACE VIEW {dataset} AS SELECT * EXCLUDE (symbol_key) FROM read_parquet("
            f"{listed}, hive_partitioning = true, union_by_name = true)")


#: Statement types ``data query`` runs; anything else (COPY, CREATE, INSERT, ATTACH, SET, ...)
#: could write or delete files or change the session, so it is refused.
READ_STATEMENTS = ("SELECT", "EXPLAIN")


def connect(root: str | Path, *, database: str = ":memory:", read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB connection with a view per canonical dataset.

    Parameters
    ----------
    root : str or Path
        Store root.
    database : str, default ":memory:"
        DuckDB database path (the views reference the Parquet files; nothing is copied).
    read_only : bool, default True
        Lock the session down: file access is limited to the store folder
        (``allowed_directories``) with every other external access off
        (``enable_external_access = false``), and the configuration is locked
        (``lock_configuration``) so SQL cannot undo it. Statements that could write inside
        the store (``COPY ... TO``) are refused by :func:`run_read_only`.

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
    if read_only:
        folder = Path(root).resolve().as_posix().rstrip("/") + "/"
        con.execute(f"SET allowed_directories = [{_sql_string(folder)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    return con


def run_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyConnection:
    """Execute ``sql`` when every statement in it only reads (see :data:`READ_STATEMENTS`).

    Raises
    ------
    DataError
        Naming the refused statement type, with how to save a result instead.
    """
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise DataError(f"query: expected a SELECT statement (DuckDB SQL), found SQL that does not parse "
                        f"({str(exc).splitlines()[0]}); fix the statement, e.g. "
                        "'SELECT * FROM ohlcv LIMIT 5' (views: ohlcv, funding, risk_tiers, markets, trades)") from None
    if not statements:
        raise DataError("query: expected a SELECT statement, found empty SQL")
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_STATEMENTS:
            raise DataError(
                f"query: `data query` is read-only; expected SELECT (or EXPLAIN), found a {kind} statement, "
                "which could write, delete or change files. To save a result, pass "
                "`--out result.parquet` (or .csv / .json) with a SELECT"
            )
    cursor = None
    for statement in statements:
        cursor = con.execute(statement.query)
    return cursor  # type: ignore[return-value]


def listing_frame(store: MarketStore) -> pl.DataFrame:
    """Inventory of a store: one row per partition (see :meth:`MarketStore.listing`)."""
    rows = []
    for dataset in DATASETS:
        schema = get_schema(dataset)
        for part in store.partitions(dataset):
            files = data_files(part["path"])
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
