"""Runs as data: find the run folders under a folder and query all their tables at once.

``margincall runs [FOLDER]`` lists the runs (:func:`runs_listing`); ``margincall runs query
"SQL" [FOLDER]`` runs a read-only SELECT over one DuckDB view per run table, every row tagged
with its run's ``run_id`` (:func:`connect_runs`). A run's id is its folder's path relative
to FOLDER (``sweep-2024/hold-5x``; the folder's name when FOLDER is the run itself), so the
id a listing prints is the id a query filters on.

Only complete runs take part: each folder's tables are checked against its manifest
(:func:`backtest.runfolder.verify_run_folder`); an interrupted or edited folder is listed with
what differs and left out of queries, never half read.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from backtest.errors import EngineError

RUN_TABLES = ("equity", "positions", "orders", "fills", "rejections", "funding",
              "liquidations", "trades", "bars", "insurance_fund", "adl")
"""Run tables (CONTRACTS §6) a query sees as views, each with ``run_id`` first."""

SUMMARY_COLUMNS = ("total_return", "max_drawdown", "final_equity", "n_liquidations",
                   "bad_debt", "fees", "funding_paid", "funding_received", "slippage_cost",
                   "worst_margin_ratio", "n_fills", "n_rejections", "bars")
"""Summary keys the ``runs`` view carries (manifest ``summary``; drawdown a positive depth)."""

READ_ONLY_HINT = ("`runs query` is read-only: it never changes a run folder; write a SELECT "
                  "(e.g. SELECT run_id, count(*) FROM liquidations GROUP BY run_id)")


class RunCatalogError(EngineError, ValueError):
    """A runs folder or a runs query is unusable (the message says what and how to fix it)."""


@dataclass(frozen=True)
class FoundRun:
    """A run folder found under a root: its id, path, manifest and completeness."""

    run_id: str
    path: Path
    manifest: dict[str, Any]
    problem: str | None

    @property
    def ok(self) -> bool:
        """True when every table the manifest records is there, unchanged."""
        return self.problem is None


def _load_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _is_run(folder: Path, manifest: dict[str, Any] | None) -> bool:
    if manifest is None:
        return False
    fmt = manifest.get("format")
    if isinstance(fmt, dict):
        return fmt.get("name") == "margincall-run"
    return {"config", "summary"} <= set(manifest) and (folder / "equity.parquet").is_file()


def _walk(root: Path) -> Iterator[Path]:
    """Visible folders under ``root`` (root first), not descending into run folders."""
    stack = [root]
    while stack:
        folder = stack.pop()
        yield folder
        if (folder / "manifest.json").is_file():
            continue  # a run (or another tool's output): runs do not nest
        try:
            children = sorted((p for p in folder.iterdir()
                               if p.is_dir() and not p.name.startswith(".")), reverse=True)
        except OSError:
            continue
        stack.extend(children)


def find_runs(root: str | Path) -> list[FoundRun]:
    """Every run folder under ``root`` (recursively, hidden folders skipped), sorted by id.

    Raises
    ------
    RunCatalogError
        When ``root`` is not a folder.
    """
    from backtest.runfolder import RunFolderError, verify_run_folder

    base = Path(root).expanduser()
    if not base.is_dir():
        raise RunCatalogError(
            f"{base}: expected a folder holding run folders (what `margincall run --out` "
            f"writes), found {'a file' if base.exists() else 'nothing'}; pass the runs folder, "
            f"e.g. `margincall runs runs/`")
    found = []
    for folder in _walk(base):
        manifest = _load_manifest(folder)
        if not _is_run(folder, manifest):
            continue
        assert manifest is not None
        run_id = folder.name if folder == base else folder.relative_to(base).as_posix()
        try:
            verify_run_folder(folder, manifest)
            problem = None
        except RunFolderError as exc:
            problem = str(exc)
        found.append(FoundRun(run_id, folder, manifest, problem))
    return sorted(found, key=lambda r: r.run_id)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def runs_listing(runs: list[FoundRun]) -> pl.DataFrame:
    """One row per run: id, strategy, symbols, leverage, margin mode, creation time, the main
    summary figures and whether the folder is complete (``status``)."""
    rows: dict[str, list[Any]] = {k: [] for k in (
        "run_id", "strategy", "symbols", "leverage", "margin_mode", "created_at",
        *SUMMARY_COLUMNS, "status")}
    for run in runs:
        man = run.manifest
        config = man.get("config") if isinstance(man.get("config"), dict) else {}
        strategy = man.get("strategy") if isinstance(man.get("strategy"), dict) else {}
        summary = man.get("summary") if isinstance(man.get("summary"), dict) else {}
        symbols = config.get("symbols") or config.get("symbol") or []
        rows["run_id"].append(run.run_id)
        rows["strategy"].append(None if strategy.get("name") is None else str(strategy["name"]))
        rows["symbols"].append(", ".join(map(str, symbols)) if isinstance(symbols, list)
                               else str(symbols))
        rows["leverage"].append(_number(config.get("leverage")))
        rows["margin_mode"].append(None if config.get("margin_mode") is None
                                   else str(config["margin_mode"]))
        rows["created_at"].append(None if man.get("created_at") is None else str(man["created_at"]))
        for key in SUMMARY_COLUMNS:
            rows[key].append(_number(summary.get(key)))
        rows["status"].append("ok" if run.ok else "incomplete")
    schema: dict[str, Any] = {k: pl.Float64 for k in rows}
    for key in ("run_id", "strategy", "symbols", "margin_mode", "created_at", "status"):
        schema[key] = pl.String
    return pl.DataFrame(rows, schema=schema)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect_runs(runs: list[FoundRun], root: str | Path) -> Any:
    """A read-only in-memory DuckDB session over the complete runs' tables.

    Views: ``runs`` (the listing of :func:`runs_listing`, complete runs only) and one per run
    table of :data:`RUN_TABLES` present in at least one run, each the union (by column name)
    of every run's file with ``run_id`` as the first column. File access is limited to
    ``root`` and the configuration locked, as for ``data query``.

    Raises
    ------
    RunCatalogError
        When no complete run is given.
    """
    import duckdb

    complete = [r for r in runs if r.ok]
    if not complete:
        raise RunCatalogError(
            f"{root}: expected at least one complete run folder, found "
            f"{len(runs)} run(s) and none complete; write one with `margincall run --out "
            f"{root}/NAME`")
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.register("_listing", runs_listing(complete).to_arrow())
    con.execute("CREATE TABLE runs AS SELECT * FROM _listing")
    con.unregister("_listing")
    for table in RUN_TABLES:
        files = [(r.run_id, (r.path / f"{table}.parquet").resolve().as_posix())
                 for r in complete if (r.path / f"{table}.parquet").is_file()]
        if not files:
            continue
        ids = pl.DataFrame({"run_id": [f[0] for f in files], "file": [f[1] for f in files]})
        con.register("_ids", ids.to_arrow())
        con.execute(f"CREATE TABLE _files_{table} AS SELECT * FROM _ids")
        con.unregister("_ids")
        paths = ", ".join(_sql_string(f[1]) for f in files)
        con.execute(
            f"CREATE VIEW {table} AS SELECT f.run_id, p.* EXCLUDE (filename) "
            f"FROM read_parquet([{paths}], filename = true, union_by_name = true) p "
            f"JOIN _files_{table} f ON p.filename = f.file")
    folder = Path(root).resolve().as_posix().rstrip("/") + "/"
    con.execute(f"SET allowed_directories = [{_sql_string(folder)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_query(con: Any, sql: str) -> Any:
    """Execute ``sql`` when every statement only reads; the cursor of the last one.

    Raises
    ------
    RunCatalogError
        For unparsable SQL or a statement that could write (names the statement type).
    """
    import duckdb

    from data_loaders.catalog import READ_STATEMENTS

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise RunCatalogError(f"runs query: cannot parse the SQL ({str(exc).splitlines()[0]}); "
                              f"views: runs, {', '.join(RUN_TABLES)}") from None
    if not statements:
        raise RunCatalogError("runs query: expected a SELECT statement, found empty SQL")
    for statement in statements:
        kind = statement.type.name
        if kind not in READ_STATEMENTS:
            raise RunCatalogError(f"runs query: expected SELECT (or EXPLAIN), found a {kind} "
                                  f"statement; {READ_ONLY_HINT}")
    cursor = None
    for statement in statements:
        cursor = con.execute(statement.query)
    return cursor


def default_runs_folder() -> Path:
    """``$MARGINCALL_RUNS`` when set, else ``./runs`` (where ``margincall run`` writes)."""
    return Path(os.environ.get("MARGINCALL_RUNS", "runs"))
