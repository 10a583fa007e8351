"""``margincall data``: list, query, import and validate the market-data store.

``register(app)`` adds the ``data`` group; the ``fetch`` command (``backtest/cli/fetch.py``)
joins the same group through its ``add_commands(data_app)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from backtest.cli.output import console as _console
from backtest.cli.output import fail as _fail
from backtest.cli.output import open_store as _store
from backtest.cli.output import labelled

StoreOption = Annotated[Optional[Path], typer.Option(
    "--store", help="Store folder (default: $MARGINCALL_HOME/store, else ./.margincall/store).")]

_BINANCE_KINDS = ("klines", "markPriceKlines", "indexPriceKlines", "fundingRate", "aggTrades")
_KINDS = (*_BINANCE_KINDS, "generic", "tiers", "markets")


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def ls(store: StoreOption = None,
       dataset: Annotated[Optional[str], typer.Option(help="Only this dataset.")] = None) -> None:
    """List what the store holds: ranges, rows, gaps (missing intervals), files and size."""
    from rich.table import Table

    from data_loaders.errors import DataError
    from data_loaders.schemas import get_schema

    market_store = _store(store)
    try:
        if dataset is not None:
            get_schema(dataset)
        listing = market_store.listing()
    except DataError as exc:
        raise _fail(str(exc)) from None
    _note_strays(market_store)
    if dataset:
        listing = listing.filter(listing["dataset"] == dataset)
    if listing.is_empty():
        _console().print(f"store {market_store.root} holds no data"
                         f"{' for ' + dataset if dataset else ''}; import with `margincall data import PATH`")
        return
    table = Table(title=f"store {market_store.root}")
    for column in ("dataset", "exchange", "symbol", "timeframe", "price type", "start (UTC)", "end (UTC)"):
        table.add_column(column, no_wrap=True)
    for column in ("rows", "gaps", "files", "size"):
        table.add_column(column, justify="right")
    for row in listing.iter_rows(named=True):
        table.add_row(row["dataset"], row["exchange"], row["symbol"], row["timeframe"] or "-",
                      row["price_type"] or "-", row["start"].strftime("%Y-%m-%d %H:%M"),
                      row["end"].strftime("%Y-%m-%d %H:%M"), f"{row['rows']:,}",
                      "-" if row["gaps"] is None else f"{row['gaps']:,}", str(row["files"]),
                      _human_bytes(row["bytes"]))
    _console().print(table)


def _note_strays(market_store) -> None:
    """Print a note naming files in the store that the store did not write (they are ignored)."""
    strays = market_store.strays()
    if strays:
        shown = ", ".join(p.relative_to(market_store.root).as_posix() for p in strays[:5])
        more = f" and {len(strays) - 5} more" if len(strays) > 5 else ""
        _console().print(labelled("note:", "yellow", f"{len(strays)} file(s) in the store were not written by "
                                  f"margincall and are ignored: {shown}{more}; move them out of {market_store.root}"),
                         highlight=False, soft_wrap=True)


_OUT_FORMATS = (".parquet", ".csv", ".json")


def _write_result(cursor, out: Path, market_store, overwrite: bool) -> int:
    """Write a query result to ``out`` atomically (never inside the store); return its rows."""
    from data_loaders.store_io import atomic_write_text, temp_name

    target = out.expanduser().resolve()
    if target.suffix.lower() not in _OUT_FORMATS:
        raise _fail(f"--out {out}: expected a file ending in {', '.join(_OUT_FORMATS)}, found "
                    f"{target.suffix or 'no suffix'}")
    if target.is_relative_to(market_store.root.resolve()):
        raise _fail(f"--out {out}: expected a path outside the store {market_store.root}, found one inside it; "
                    "the store holds only what margincall writes: pick another folder")
    if target.exists() and not overwrite:
        raise _fail(f"--out {out}: the file exists; pass --overwrite to replace it, or pick another name")
    if not target.parent.is_dir():
        raise _fail(f"--out {out}: folder {target.parent} does not exist; create it first")
    import polars as pl

    columns = [d[0] for d in cursor.description]
    if len(set(columns)) != len(columns):
        raise _fail(f"--out {out}: expected unique column names, found {columns}; alias them (SELECT a AS x, ...)")
    frame = pl.DataFrame(cursor.fetchall(), schema=columns, orient="row", infer_schema_length=None)
    if target.suffix.lower() == ".json":
        atomic_write_text(frame.write_json(), target)
    else:
        tmp = temp_name(target)
        try:
            frame.write_parquet(tmp) if target.suffix.lower() == ".parquet" else frame.write_csv(tmp)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
    return frame.height


def query(sql: Annotated[str, typer.Argument(help="A SELECT over the views ohlcv, funding, risk_tiers, markets, trades.")],
          store: StoreOption = None,
          max_rows: Annotated[int, typer.Option("--max-rows", help="Rows to print.")] = 100,
          out: Annotated[Optional[Path], typer.Option(
              "--out", help="Write the whole result to this .parquet/.csv/.json file (outside the store).")] = None,
          overwrite: Annotated[bool, typer.Option("--overwrite", help="With --out: replace an existing file.")] = False,
          ) -> None:
    """Run a read-only SELECT against the DuckDB catalog of the store and print the result.

    The session cannot write or delete files: only SELECT/EXPLAIN statements run, and DuckDB's
    file access is limited to the store folder. Save a result with --out.
    """
    import duckdb
    from rich.table import Table

    from data_loaders.catalog import run_read_only
    from data_loaders.errors import DataError

    if max_rows < 0:
        raise _fail(f"--max-rows {max_rows}: expected 0 or more rows")
    market_store = _store(store)
    con = market_store.connect()
    try:
        cursor = run_read_only(con, sql)
        if cursor.description is None:
            _console().print("ok")
            return
        if out is not None:
            rows_written = _write_result(cursor, out, market_store, overwrite)
            _console().print(f"wrote {rows_written:,} rows to {out}", highlight=False)
            return
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchmany(max_rows + 1)
    except DataError as exc:
        raise _fail(str(exc)) from None
    except duckdb.Error as exc:
        raise _fail(f"query failed: {exc}\nviews: ohlcv, funding, risk_tiers, markets, trades "
                    "(see `margincall data ls`); `data query` only reads the store") from None
    table = Table(*columns)
    for row in rows[:max_rows]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    console = _console()
    console.print(table)
    if len(rows) > max_rows:
        console.print(f"(first {max_rows} rows shown; raise --max-rows or add LIMIT)")


def _import_one(market_store, path: Path, options: dict, strict: bool, replace: bool):
    from data_loaders.binance_dump import import_dump
    from data_loaders.generic import import_generic, parse_mapping
    from data_loaders.markets_import import import_markets, looks_like_markets
    from data_loaders.tiers_import import import_tiers

    kind = options["kind"]
    suffix = path.suffix.lower()
    if kind is None:
        if suffix == ".json":
            kind = "markets" if looks_like_markets(path) else "tiers"
        elif options["map"] or suffix == ".parquet" or options["dataset"]:
            kind = "generic"
        else:
            kind = "binance"
    exchange = options["exchange"]
    if kind == "tiers":
        return import_tiers(market_store, path, exchange=exchange or "binanceusdm",
                            effective_from=options["effective_from"], strict=strict, replace=replace)
    if kind == "markets":
        return import_markets(market_store, path, exchange=exchange or "binanceusdm",
                              effective_from=options["effective_from"],
                              symbols=[options["symbol"]] if options["symbol"] else None, strict=strict,
                              replace=replace)
    if kind == "generic":
        return import_generic(market_store, path, dataset=options["dataset"], exchange=exchange or "binanceusdm",
                              symbol=options["symbol"], timeframe=options["timeframe"],
                              price_type=options["price_type"], mapping=parse_mapping(options["map"]),
                              ts_unit=options["ts_unit"], strict=strict, replace=replace)
    return import_dump(market_store, path, kind=None if kind == "binance" else kind, symbol=options["symbol"],
                       timeframe=options["timeframe"], price_type=options["price_type"], exchange=exchange,
                       strict=strict, replace=replace)


def _refuse_empty(options: dict) -> None:
    """An empty name (``--timeframe ""``) is a mistake, never "use the default"."""
    for name, value in options.items():
        if isinstance(value, str) and not value.strip():
            flag = "--" + name.replace("_", "-")
            raise _fail(f"{flag} {value!r}: expected a value, found an empty string; give one or leave the "
                        "option out to use the default")


def import_(
    paths: Annotated[list[Path], typer.Argument(help="Files: Binance dumps (.zip/.csv), generic .csv/.parquet, tier or market .json.")],
    store: StoreOption = None,
    kind: Annotated[Optional[str], typer.Option(help=f"One of {', '.join(_KINDS)} (default: from the name).")] = None,
    symbol: Annotated[Optional[str], typer.Option(help="BTC/USDT:USDT or BTCUSDT (default: from the name).")] = None,
    timeframe: Annotated[Optional[str], typer.Option(help="Candle timeframe, e.g. 1m, 1h.")] = None,
    price_type: Annotated[Optional[str], typer.Option("--price-type", help="last, mark or index.")] = None,
    exchange: Annotated[Optional[str], typer.Option(help="ccxt exchange id (default binanceusdm).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Generic files: ohlcv, funding, trades, markets, risk_tiers.")] = None,
    map_: Annotated[Optional[str], typer.Option("--map", help="Generic files: ts=open_time,open=o,...")] = None,
    ts_unit: Annotated[str, typer.Option("--ts-unit", help="Generic files: ms, us, s, ns or auto.")] = "ms",
    effective_from: Annotated[Optional[str], typer.Option("--effective-from", help="Tier/market snapshots: YYYY-MM-DD.")] = None,
    lenient: Annotated[bool, typer.Option("--lenient", help="Drop bad rows (reported) instead of refusing the file.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Let the file change stored rows with different values (refused without it).")] = False,
) -> None:
    """Import files into the store (atomic per file; identical rows are kept, rows that would change stored ones need --replace)."""
    from rich.progress import Progress

    from data_loaders.errors import DataError

    options = {"kind": kind, "symbol": symbol, "timeframe": timeframe, "price_type": price_type,
               "exchange": exchange, "dataset": dataset, "map": map_, "ts_unit": ts_unit,
               "effective_from": effective_from}
    _refuse_empty(options)
    if kind is not None and kind not in _KINDS:
        raise _fail(f"--kind {kind!r}: expected one of {', '.join(_KINDS)}")
    from backtest.cli.output import option_choice, option_time
    from data_loaders.schemas import PRICE_TYPES

    # options are checked before any file is read: a bad flag is one error, not one per file
    option_choice("--price-type", price_type, PRICE_TYPES)
    option_time("--effective-from", effective_from)
    market_store = _store(store)
    console = _console()
    failures = 0
    with Progress(console=console, transient=True, disable=len(paths) < 2) as progress:
        task = progress.add_task("importing", total=len(paths))
        for path in paths:
            try:
                result = _import_one(market_store, path, options, strict=not lenient, replace=replace)
            except DataError as exc:
                failures += 1
                console.print(labelled("error:", "bold red", str(exc)), highlight=False, soft_wrap=True)
            else:
                w = result.write
                console.print(labelled(
                    "imported", "green", f"{path.name}: {result.dataset} {result.exchange} {result.symbol}"
                    f"{' ' + result.timeframe if result.timeframe else ''}"
                    f"{' ' + result.price_type if result.price_type else ''}: {result.rows_read:,} rows read, "
                    f"{w.rows_added:,} added, {w.rows_replaced:,} replaced, {w.rows_unchanged:,} unchanged, "
                    f"{w.rows_dropped:,} dropped"), highlight=False)
                for warning in result.warnings:
                    console.print(labelled("  warning:", "yellow", warning), highlight=False, soft_wrap=True)
            progress.advance(task)
    if failures:
        console.print(f"{failures} of {len(paths)} file(s) failed; the store keeps everything else.")
        raise typer.Exit(1)


def validate(
    store: StoreOption = None,
    exchange: Annotated[Optional[str], typer.Option(help="Only this exchange.")] = None,
    symbol: Annotated[Optional[str], typer.Option(help="Only this symbol (unified).")] = None,
    timeframe: Annotated[Optional[str], typer.Option(help="Only this candle timeframe.")] = None,
    start: Annotated[Optional[str], typer.Option(help="Coverage range start (ISO date, UTC).")] = None,
    end: Annotated[Optional[str], typer.Option(help="Coverage range end, exclusive.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too (gaps, coverage).")] = False,
) -> None:
    """Check stored data (sorting, duplicates, gaps, OHLC sanity, prices, checksums, mark/funding coverage)."""
    from data_loaders.errors import DataError
    from data_loaders.quality import validate_store

    from backtest.cli.output import option_time, option_timeframe

    option_timeframe("--timeframe", timeframe)
    option_time("--start", start)
    option_time("--end", end)
    market_store = _store(store)
    try:
        reports, problems = validate_store(market_store, exchange=exchange, symbol=symbol, timeframe=timeframe,
                                           start=start, end=end)
    except DataError as exc:
        raise _fail(str(exc)) from None
    _note_strays(market_store)
    console = _console()
    errors = sum(len(r.errors) for r in reports) + len(problems)
    warnings = sum(len(r.issues) - len(r.errors) for r in reports)
    for report in reports:
        status = ("ok", "green") if not report.issues else ("errors", "red") if report.errors else ("warnings", "yellow")
        console.print(labelled(*status, f"{report.subject}: {report.rows:,} rows"), highlight=False)
        for issue in report.issues:
            console.print(f"   {issue.severity}: {issue.describe(row_word=report.row_word)}", highlight=False,
                          soft_wrap=True)
    for problem in problems:
        console.print(labelled("checksum", "red", problem), highlight=False)
    if not reports:
        console.print(f"nothing stored matches in {market_store.root}")
    console.print(f"{len(reports)} partition(s) checked: {errors} error(s), {warnings} warning(s)")
    if errors or (strict and warnings):
        raise typer.Exit(1)


def rm(
    dataset: Annotated[str, typer.Argument(help="ohlcv, funding, risk_tiers, markets or trades.")],
    exchange: Annotated[str, typer.Option(help="ccxt exchange id, e.g. binanceusdm.")],
    symbol: Annotated[str, typer.Option(help="Unified symbol, e.g. BTC/USDT:USDT.")],
    store: StoreOption = None,
    timeframe: Annotated[Optional[str], typer.Option(help="Candles: only this timeframe (default: all).")] = None,
    price_type: Annotated[Optional[str], typer.Option("--price-type", help="Candles: only last, mark or index (default: all).")] = None,
    start: Annotated[Optional[str], typer.Option(help="Remove rows from this UTC time on (ISO date; default: the first).")] = None,
    end: Annotated[Optional[str], typer.Option(help="Remove rows before this UTC time (exclusive; default: after the last).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really remove (without it: a dry run listing what would go).")] = False,
) -> None:
    """Remove stored rows of one market (a dry run unless --yes); undoes a bad import."""
    from data_loaders.errors import DataError
    from data_loaders.schemas import get_schema

    _refuse_empty({"dataset": dataset, "exchange": exchange, "symbol": symbol, "timeframe": timeframe,
                   "price_type": price_type, "start": start, "end": end})
    from backtest.cli.output import option_choice, option_time, option_timeframe
    from data_loaders.schemas import PRICE_TYPES

    option_timeframe("--timeframe", timeframe)
    option_choice("--price-type", price_type, PRICE_TYPES)
    option_time("--start", start)
    option_time("--end", end)
    market_store = _store(store)
    try:
        get_schema(dataset)
        result = market_store.remove(dataset, exchange=exchange, symbol=symbol, timeframe=timeframe,
                                     price_type=price_type, start=start, end=end, dry_run=not yes)
    except DataError as exc:
        raise _fail(str(exc)) from None
    console = _console()
    what = " ".join(v for v in (dataset, exchange, symbol, timeframe, price_type) if v)
    span = f" from {start or 'the first row'} to {end or 'the last row'}"
    if not result.files:
        console.print(f"nothing stored matches {what}{span} in {market_store.root}; nothing to remove "
                      "(see `margincall data ls`)", highlight=False)
        raise typer.Exit(1)
    verb = "would remove" if result.dry_run else "removed"
    for path, removed, kept in result.files:
        rel = path.relative_to(market_store.root).as_posix()
        tail = "the whole file" if kept == 0 else f"{kept:,} rows kept"
        console.print(f"  {rel}: {verb} {removed:,} rows ({tail})", highlight=False)
    console.print(f"{verb} {result.rows_removed:,} rows of {what}{span} in {len(result.files)} file(s)",
                  highlight=False)
    if result.dry_run:
        console.print("dry run: nothing was changed; add --yes to remove them", highlight=False)


def data_app() -> typer.Typer:
    """A fresh ``data`` sub-application with every data command (and ``fetch`` when available)."""
    app = typer.Typer(name="data", help="Market data: list, query, import, validate, remove (and fetch).",
                      no_args_is_help=True)
    app.command("ls")(ls)
    app.command("query")(query)
    app.command("import")(import_)
    app.command("validate")(validate)
    app.command("rm")(rm)
    from backtest.cli.fetch import add_commands

    add_commands(app)
    return app


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to the ``margincall`` app."""
    app.add_typer(data_app(), name="data")
