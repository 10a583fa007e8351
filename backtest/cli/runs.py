"""``margincall runs``: list the runs under a folder, or query all their tables at once.

``margincall runs [FOLDER]`` prints one row per run folder (id, strategy, leverage, main
figures, whether the folder is complete). ``margincall runs query "SQL" [FOLDER]`` runs a
read-only SELECT over the views ``runs``, ``equity``, ``fills``, ``liquidations``, ``trades``
... of every complete run, each row tagged with its ``run_id`` (``backtest.runcatalog``).
FOLDER defaults to ``$MARGINCALL_RUNS`` or ``./runs``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


LISTED = ("run_id", "strategy", "symbols", "leverage", "margin_mode", "total_return",
          "max_drawdown", "n_liquidations", "bad_debt", "final_equity", "status")
"""Columns the listing prints (every summary column is in the ``runs`` view of a query)."""


def register(app: typer.Typer) -> None:
    """Attach the ``runs`` command to the root application."""
    app.command("runs", context_settings={"allow_interspersed_args": True})(runs)


def _print_frame(columns: list[str], rows: list[tuple[Any, ...]], *, title: str | None = None) -> None:
    from rich.table import Table

    from backtest.cli.output import console

    # the project's console prints text literally (markup off): no escaping needed
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, no_wrap=i == 0, overflow="fold")
    for row in rows:
        table.add_row(*("NULL" if v is None else _cell(c, v) for c, v in zip(columns, row)))
    console().print(table)


def _cell(column: str, value: Any) -> str:
    from backtest.formatting import fmt_drawdown, fmt_leverage, fmt_money, fmt_num, fmt_pct

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if column == "leverage":
        return fmt_leverage(value)
    if column == "max_drawdown":
        return fmt_drawdown(value)
    if column == "total_return":
        return fmt_pct(value, signed=True)
    if column in ("final_equity", "bad_debt", "fees", "funding_paid", "funding_received",
                  "slippage_cost"):
        return fmt_money(value)
    return fmt_num(value)


def runs(
    args: Annotated[list[str], typer.Argument(
        help="[FOLDER] to list the runs under FOLDER, or: query \"SQL\" [FOLDER] to run a "
             "read-only SELECT over every run's tables (views: runs, equity, positions, orders, "
             "fills, rejections, funding, liquidations, trades, bars, insurance_fund, adl; each "
             "with run_id). "
             "FOLDER defaults to $MARGINCALL_RUNS or ./runs.", show_default=False)] = None,  # type: ignore[assignment]
    max_rows: Annotated[int, typer.Option("--max-rows", help="Rows of a query result to print.")] = 100,
) -> None:
    """List the backtest runs under a folder, or query all their tables at once (DuckDB)."""
    import duckdb

    from backtest.cli.output import fail
    from backtest.runcatalog import (
        RUN_TABLES,
        RunCatalogError,
        connect_runs,
        default_runs_folder,
        find_runs,
        run_query,
        runs_listing,
    )

    words = list(args or [])
    sql = None
    if words and words[0] == "query":
        if len(words) < 2:
            raise fail('runs query: expected SQL, e.g. margincall runs query '
                       '"SELECT run_id, count(*) FROM liquidations GROUP BY run_id" runs/')
        sql, words = words[1], words[2:]
    if len(words) > 1:
        raise fail(f"runs: expected at most one FOLDER, found {len(words)}: {words}; "
                   f"quote the SQL of `runs query`")
    if max_rows < 0:
        raise fail(f"--max-rows {max_rows}: expected 0 or more rows")
    folder = Path(words[0]) if words else default_runs_folder()
    try:
        found = find_runs(folder)
        if sql is None:
            listing = runs_listing(found)
            if listing.height == 0:
                typer.echo(f"no run folders under {folder} (write one with `margincall run --out "
                           f"{folder}/NAME`)")
                return
            shown = listing.select(LISTED)
            _print_frame(shown.columns, shown.rows(), title=f"{listing.height} run(s) under {folder}")
            for run in found:
                if not run.ok:
                    typer.echo(f"incomplete {run.run_id}: {run.problem}")
            return
        con = connect_runs(found, folder)
        try:
            cursor = run_query(con, sql)
            if cursor is None or cursor.description is None:
                typer.echo("ok")
                return
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchmany(max_rows + 1)
        finally:
            con.close()
    except RunCatalogError as exc:
        raise fail(str(exc)) from None
    except duckdb.Error as exc:
        raise fail(f"runs query failed: {str(exc).splitlines()[0]}; views: runs, "
                   f"{', '.join(RUN_TABLES)} (each with run_id)") from None
    _print_frame(columns, rows[:max_rows])
    skipped = [r.run_id for r in found if not r.ok]
    if skipped:
        typer.echo(f"left out {len(skipped)} incomplete run(s): {', '.join(skipped)} "
                   f"(see `margincall runs {folder}`)")
    if len(rows) > max_rows:
        typer.echo(f"(first {max_rows} rows shown; raise --max-rows or add LIMIT)")
