"""The market-data store: a hive-partitioned Parquet tree with atomic, de-duplicating writes.

Layout (one folder level per partition column, then one file per year, or per day for
trades)::

    <root>/ohlcv/exchange=binanceusdm/symbol_key=BTC_USDT~3AUSDT/timeframe=1h/price_type=mark/
           year=2020/part-2020.parquet
    <root>/funding/exchange=binanceusdm/symbol_key=BTC_USDT~3AUSDT/year=2020/part-2020.parquet
    <root>/trades/exchange=.../symbol_key=.../year=2020/part-2020-03-01.parquet
    <root>/manifest.json      provenance per file and write
    <root>/.lock              held while writing (one writer at a time)

Every file holds all canonical columns (the real ``symbol`` too; ``symbol_key`` is only the
folder). A write merges the new rows with the stored file, de-duplicates on the dataset's key
(CONTRACTS §3) with **the newer write winning**, sorts by time, writes a temporary file in
the same folder, fsyncs it and ``os.replace``-s it over the old file, so a crash leaves either
the old or the new file, never a half one. Leftover temporary files (``*.tmp``) are ignored by
readers and removed by the next write to that folder.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import replace as _with_fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from data_loaders.errors import DataError, DataNotFoundError
from data_loaders.quality import QualityReport, check, distinct, repair
from data_loaders.schemas import DATASETS, PRICE_TYPES, conform, get_schema, timeframe_ms, to_ms
from data_loaders.store_io import (JOURNAL, MANIFEST, Manifest, atomic_write_parquet, atomic_write_text,
                                   recover, sha256_file)
from data_loaders.store_layout import PARTITION_DIR, all_strays, data_files, matching_files, walk
from data_loaders.store_merge import (FilePlan, commit_plans, plan_file, refuse_bad_tier_tables, refuse_changes,
                                      refuse_non_finite, removal_plan)
from data_loaders.store_scan import BATCH_ROWS, StoredBatches
from data_loaders.symbols import symbol_from_key, symbol_key, validate_exchange, validate_symbol

if TYPE_CHECKING:
    import duckdb

__all__ = ["MANIFEST", "ImportResult", "Manifest", "MarketStore", "RemovalResult", "StoredBatches", "WriteResult",
           "atomic_write_parquet", "atomic_write_text", "default_root", "sha256_file", "store_checked"]


def default_root() -> Path:
    """``$MARGINCALL_HOME/store``, else ``./.margincall/store`` (CONTRACTS §4)."""
    home = os.environ.get("MARGINCALL_HOME")
    return Path(home) / "store" if home else Path.cwd() / ".margincall" / "store"


@dataclass(frozen=True)
class WriteResult:
    """What one :meth:`MarketStore.write` did.

    Attributes
    ----------
    dataset : str
        Dataset written.
    rows_input : int
        Rows handed in.
    rows_added : int
        Rows whose key was not stored before.
    rows_replaced : int
        Stored rows whose values changed (only with ``replace=True``; otherwise such a write
        is refused).
    rows_dropped : int
        Input rows dropped in lenient mode (bad rows, in-input duplicates).
    files : tuple of Path
        Files (re)written.
    warnings : tuple of str
        Data-quality findings (gaps always; errors too in lenient mode).
    rows_unchanged : int
        Rows identical to a stored row (re-imports of the same data; not a replacement).
    """

    dataset: str
    rows_input: int
    rows_added: int
    rows_replaced: int
    rows_dropped: int
    files: tuple[Path, ...]
    warnings: tuple[str, ...]
    rows_unchanged: int = 0


@dataclass(frozen=True)
class RemovalResult:
    """What :meth:`MarketStore.remove` removed (or would remove, on a dry run).

    Attributes
    ----------
    files : tuple of (Path, int, int)
        Per affected file: path, rows removed, rows kept (0 kept: the file is deleted).
    dry_run : bool
        True when nothing was changed.
    """

    files: tuple[tuple[Path, int, int], ...]
    dry_run: bool

    @property
    def rows_removed(self) -> int:
        """Total rows removed."""
        return sum(removed for _, removed, _ in self.files)


class MarketStore:
    """Hive-partitioned Parquet store of the canonical datasets (CONTRACTS §3, §4).

    Parameters
    ----------
    root : str or Path
        Store folder; created on first write. See :func:`default_root`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.manifest = Manifest(self.root)

    def __repr__(self) -> str:
        return f"MarketStore({str(self.root)!r})"

    # ---------------------------------------------------------------- layout
    def partition_dir(self, dataset: str, *, exchange: str, symbol: str,
                      timeframe: str | None = None, price_type: str | None = None) -> Path:
        """Folder of one partition (validated names; never outside the store root)."""
        schema = get_schema(dataset)
        values = {"exchange": validate_exchange(exchange), "symbol": validate_symbol(symbol),
                  "timeframe": timeframe, "price_type": price_type}
        if dataset == "ohlcv":
            timeframe_ms(timeframe)  # type: ignore[arg-type]
            if price_type not in PRICE_TYPES:
                raise DataError(f"price_type {price_type!r}: expected one of {', '.join(PRICE_TYPES)}")
        path = self.root / dataset
        for column in schema.partitions:
            value = symbol_key(values[column]) if column == "symbol" else values[column]
            path = path / f"{PARTITION_DIR[column]}={value}"
        return path

    def files(self, dataset: str) -> list[Path]:
        """Every stored Parquet file of ``dataset`` (sorted; stray files are skipped)."""
        self._recover_if_needed()
        return walk(self.root, get_schema(dataset).name).files

    def strays(self) -> list[Path]:
        """Files and folders in the store that the store did not write (ignored by every command)."""
        foreign = []
        for dataset in DATASETS:
            for values, folder in walk(self.root, dataset).partitions:
                try:
                    symbol_from_key(values.get("symbol", ""))
                except DataError:
                    foreign.append(folder)  # a symbol_key= folder that no symbol encodes to
        return all_strays(self.root) + foreign

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                recover(self.root)  # a write killed after its commit point is finished first
                for stale in self.root.glob(".*.tmp"):
                    stale.unlink(missing_ok=True)  # temp manifest/journal of a write killed before it
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _recover_if_needed(self) -> None:
        """Roll forward an interrupted write before reading (one stat when there is none)."""
        if (self.root / JOURNAL).exists():
            with self._lock():
                pass

    # ---------------------------------------------------------------- write
    def write(self, dataset: str, frame: pl.DataFrame, *, source: str, strict: bool = True,
              fetched_at: datetime | None = None, replace: bool = False) -> WriteResult:
        """Validate, merge and atomically write canonical rows.

        Parameters
        ----------
        dataset : str
            ``ohlcv``, ``funding``, ``risk_tiers``, ``markets`` or ``trades``.
        frame : polars.DataFrame
            Rows with the dataset's columns (any order; integer times are epoch ms).
        source : str
            Provenance recorded in the manifest (e.g. ``"binance-dump:BTCUSDT-1m-2020-03.zip"``).
        strict : bool, default True
            True: any error rule raises :class:`~data_loaders.errors.DataValidationError` and
            nothing is written. False: bad rows are dropped, the input is sorted and
            de-duplicated (later row wins) and the findings are returned as warnings.
        fetched_at : datetime, optional
            When the source was fetched (default: now), recorded in the manifest.
        replace : bool, default False
            Allow rows to overwrite stored rows with the same key but different values.
            Without it such a write is refused as a whole
            (:class:`~data_loaders.errors.ReplaceRefusedError`, naming how many rows would
            change); rows identical to stored ones are never a replacement.

        Returns
        -------
        WriteResult

        Notes
        -----
        All files of one write are committed together through a journal
        (:mod:`data_loaders.store_io`): a kill leaves the old store or the new one.
        Non-finite numbers are refused in every numeric column (except an unbounded tier cap
        and unknown fees, see :func:`data_loaders.store_merge.refuse_non_finite`).
        """
        rows_input = frame.height
        frame, report = _checked(dataset, frame, subject=source)
        if strict:
            report.raise_if_errors()
        else:
            frame = repair(dataset, frame)
        return self._write_checked(dataset, frame, source=source, fetched_at=fetched_at, replace=replace,
                                   rows_input=rows_input, warnings=tuple(report.warnings))

    def _write_checked(self, dataset: str, frame: pl.DataFrame, *, source: str, fetched_at: datetime | None,
                       replace: bool, rows_input: int, warnings: tuple[str, ...]) -> WriteResult:
        """Write a frame that :func:`_checked` passed (strict) or :func:`repair` cleaned (one quality pass)."""
        schema = get_schema(dataset)
        if frame.is_empty():
            return WriteResult(dataset, rows_input, 0, 0, rows_input, (), warnings)
        stamp = (fetched_at or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat()
        with self._lock():
            manifest = self.manifest.load()
            plans: list[FilePlan] = []
            for first, period, part in _file_parts(frame, schema):
                plans.append(plan_file(part, file_target(self, dataset, first, period), schema))
            if not replace:
                refuse_changes(plans, schema, source=source, root=self.root)
            if dataset == "risk_tiers":
                refuse_bad_tier_tables(plans, subject=source)
            self._commit(plans, manifest, schema, {"source": source, "fetched_at": stamp})
        return WriteResult(dataset, rows_input, sum(p.added for p in plans), sum(p.changed for p in plans),
                           rows_input - frame.height, tuple(p.target for p in plans if p.writes), warnings,
                           rows_unchanged=sum(p.unchanged for p in plans))

    def _commit(self, plans: list[FilePlan], manifest: dict, schema, write: dict) -> None:
        commit_plans(self.root, plans, manifest, schema.time_column, write)

    def remove(self, dataset: str, *, exchange: str, symbol: str, timeframe: str | None = None,
               price_type: str | None = None, start: int | datetime | str | None = None,
               end: int | datetime | str | None = None, dry_run: bool = False) -> RemovalResult:
        """Remove the stored rows of one market in ``[start, end)`` (all of them without a range).

        Parameters
        ----------
        dataset, exchange, symbol : str
            What to remove (``symbol`` in ccxt unified form).
        timeframe, price_type : str, optional
            Candles only: restrict to one timeframe / price type (default: every one stored).
        start, end : epoch ms, datetime or ISO string, optional
            Half-open UTC window.
        dry_run : bool, default False
            Only report what would be removed.

        Returns
        -------
        RemovalResult
            Files touched, rows removed and kept. Files left empty are deleted; every change
            is committed as one journalled write.
        """
        schema = get_schema(dataset)
        exchange, symbol = validate_exchange(exchange), validate_symbol(symbol)
        start_ms = to_ms(start) if start is not None else None
        end_ms = to_ms(end) if end is not None else None
        if start_ms is not None and end_ms is not None and start_ms >= end_ms:
            raise DataError(f"removal window: expected start before end, found start={start} end={end}; "
                            "swap them (end is exclusive)")
        if timeframe is not None:
            timeframe_ms(timeframe)
        if price_type is not None and price_type not in PRICE_TYPES:
            raise DataError(f"price type {price_type!r}: expected one of {', '.join(PRICE_TYPES)}")
        with self._lock():
            wanted = {"exchange": exchange, "symbol": symbol_key(symbol), "timeframe": timeframe,
                      "price_type": price_type}
            plans = [plan for path in matching_files(self.root, dataset, wanted)
                     if (plan := removal_plan(path, schema, start_ms, end_ms)).writes]
            result = RemovalResult(tuple((p.target, p.removed, 0 if p.merged is None else p.merged.height)
                                         for p in plans), dry_run)
            if not dry_run and plans:
                manifest = self.manifest.load()
                self._commit(plans, manifest, schema, {"source": "data rm", "fetched_at": None})
        return result

    # ---------------------------------------------------------------- read
    def read(self, dataset: str, *, exchange: str, symbol: str, timeframe: str | None = None,
             price_type: str | None = None, start: int | datetime | str | None = None,
             end: int | datetime | str | None = None) -> pl.DataFrame:
        """Stored rows of one partition, sorted by time, restricted to ``[start, end)``.

        Parameters
        ----------
        dataset, exchange, symbol : str
            What to read (``symbol`` in ccxt unified form).
        timeframe, price_type : str, optional
            Required for ``ohlcv`` (``price_type`` defaults to ``"last"``).
        start, end : int (epoch ms), datetime or ISO string, optional
            Half-open time window (UTC).

        Raises
        ------
        DataNotFoundError
            Nothing stored for that exchange / symbol / timeframe (the message lists what is).
        """
        schema, files, start_ms, end_ms = self._window(dataset, exchange, symbol, timeframe, price_type, start, end)
        if not files:
            return pl.DataFrame(schema=schema.polars_schema)
        lazy = pl.scan_parquet(files, hive_partitioning=False)
        time = pl.col(schema.time_column).dt.epoch("ms")
        if start_ms is not None:
            lazy = lazy.filter(time >= start_ms)
        if end_ms is not None:
            lazy = lazy.filter(time < end_ms)
        return lazy.select(schema.column_names).sort(schema.time_column).collect()

    def read_batches(self, dataset: str, *, exchange: str, symbol: str, timeframe: str | None = None,
                     price_type: str | None = None, start: int | datetime | str | None = None,
                     end: int | datetime | str | None = None, columns: list[str] | None = None,
                     batch_rows: int = BATCH_ROWS) -> StoredBatches:
        """The lazy form of :meth:`read`: the same rows in the same order, batch by batch.

        Nothing is read until the result is iterated (or counted): each file is decoded one
        Parquet row group at a time, so a long window costs a row group of memory, not the
        window (:class:`data_loaders.store_scan.StoredBatches`).

        Parameters
        ----------
        dataset, exchange, symbol, timeframe, price_type, start, end
            As :meth:`read`.
        columns : list of str, optional
            The columns of each batch (default: the dataset's canonical columns).
        batch_rows : int
            Most rows per batch.

        Raises
        ------
        DataNotFoundError
            Nothing stored for that exchange / symbol / timeframe (as :meth:`read`).
        """
        schema, files, start_ms, end_ms = self._window(dataset, exchange, symbol, timeframe, price_type, start, end)
        unknown = [c for c in columns or () if c not in schema.column_names]
        if unknown:
            raise DataError(f"read_batches of {dataset}: expected columns among {', '.join(schema.column_names)}, "
                            f"found {', '.join(unknown)}; name canonical columns")
        return StoredBatches(tuple(files), schema.time_column, tuple(columns or schema.column_names),
                             start_ms, end_ms, batch_rows)

    def _window(self, dataset: str, exchange: str, symbol: str, timeframe: str | None, price_type: str | None,
                start: int | datetime | str | None, end: int | datetime | str | None) -> tuple:
        """The schema, the data files that may hold ``[start, end)`` and the window in ms."""
        schema = get_schema(dataset)
        if dataset == "ohlcv":
            price_type = price_type or "last"
            if timeframe is None:
                raise DataNotFoundError(self._not_found(dataset, exchange, symbol, timeframe, price_type,
                                                        "a timeframe is required for ohlcv"))
        folder = self.partition_dir(dataset, exchange=exchange, symbol=symbol,
                                    timeframe=timeframe, price_type=price_type)
        self._recover_if_needed()
        files = data_files(folder)
        if not files:
            raise DataNotFoundError(self._not_found(dataset, exchange, symbol, timeframe, price_type,
                                                    "nothing stored"))
        start_ms = to_ms(start) if start is not None else None
        end_ms = to_ms(end) if end is not None else None
        if start_ms is not None or end_ms is not None:
            lo = datetime.fromtimestamp((start_ms or 0) / 1000, timezone.utc).year
            hi = datetime.fromtimestamp(((end_ms or 4_102_444_800_000) - 1) / 1000, timezone.utc).year
            files = [f for f in files if lo <= int(f.parent.name.split("=", 1)[1]) <= hi]
        return schema, files, start_ms, end_ms

    def _not_found(self, dataset: str, exchange: str, symbol: str, timeframe: str | None,
                   price_type: str | None, why: str) -> str:
        asked = " ".join(str(v) for v in (dataset, exchange, symbol, timeframe, price_type) if v)
        # Folder names only (no Parquet reads): callers that expect a miss (coverage, optional
        # funding/tiers/mark inputs) must not pay a scan of the whole store. Partitions without
        # a data file are skipped, as in :meth:`listing`.
        stored = [p for p in self.partitions(dataset)
                  if data_files(p["path"])]
        have = sorted({" ".join(str(v) for v in (r["exchange"], r["symbol"], r["timeframe"], r["price_type"]) if v)
                       for r in stored})
        shown = "; ".join(have[:20]) + (" ..." if len(have) > 20 else "") if have else "nothing"
        return (f"{asked}: {why} in store {self.root}; stored {dataset}: {shown}. Fetch it with "
                f"`margincall data fetch` or import a file with `margincall data import PATH --store {self.root}`")

    # ---------------------------------------------------------------- inventory
    def partitions(self, dataset: str) -> list[dict]:
        """Every stored partition of ``dataset`` as ``{exchange, symbol, timeframe, price_type, path}``."""
        self._recover_if_needed()
        out = []
        for values, folder in walk(self.root, dataset).partitions:
            try:
                symbol = symbol_from_key(values.get("symbol", ""))
            except DataError:
                continue  # a foreign folder: not ours to list
            out.append({"exchange": values.get("exchange"), "symbol": symbol,
                        "timeframe": values.get("timeframe"), "price_type": values.get("price_type"),
                        "path": folder})
        return out

    def listing(self) -> pl.DataFrame:
        """What is stored: one row per partition with ``start``, ``end``, ``rows``, ``gaps``, ``files``, ``bytes``.

        ``gaps`` counts missing intervals (candles: timeframe; funding: ``interval_hours``);
        it is null for datasets without a cadence (trades, tiers, markets).
        """
        from data_loaders.catalog import listing_frame

        return listing_frame(self)

    def coverage(self, dataset: str, *, exchange: str, symbol: str, timeframe: str | None = None,
                 price_type: str | None = None) -> list[tuple[int, int]]:
        """Covered time ranges of one partition as half-open ``(start_ms, end_ms)`` intervals.

        Candles: consecutive bars form one interval ending at the last bar's close
        (``ts + timeframe``). Funding: consecutive settlements (spaced by ``interval_hours``)
        form one interval ending one funding interval after the last settlement. Other datasets
        (trades, tiers, markets) have no cadence: one interval ``[first, last + 1 ms)``.
        Returns ``[]`` when nothing is stored (never raises for a missing partition).
        """
        try:
            frame = self.read(dataset, exchange=exchange, symbol=symbol, timeframe=timeframe,
                              price_type=price_type)
        except DataNotFoundError:
            return []
        return _runs(dataset, frame, timeframe)

    def verify(self) -> list[str]:
        """Compare every stored file with its manifest checksum; return the problems found.

        Interrupted writes are rolled forward first (:func:`data_loaders.store_io.recover`), so
        what remains was changed outside margincall.
        """
        self._recover_if_needed()
        manifest = self.manifest.load()["files"]
        problems = []
        fix = "remove its range with `margincall data rm ... --yes` and import the data again"
        for dataset in ("ohlcv", "funding", "risk_tiers", "markets", "trades"):
            for path in self.files(dataset):
                rel = path.relative_to(self.root).as_posix()
                entry = manifest.get(rel)
                if entry is None:
                    problems.append(f"{rel}: not in the manifest: the file was copied into the store by hand "
                                    f"(margincall journals its writes); {fix}")
                elif sha256_file(path) != entry["sha256"]:
                    problems.append(f"{rel}: sha256 differs from the manifest: the file was changed after "
                                    "margincall wrote it (edited or restored by hand, or a write by a margincall "
                                    f"older than the write journal was killed before its manifest update); {fix}")
        return problems

    def connect(self) -> duckdb.DuckDBPyConnection:
        """Read-only in-memory DuckDB connection with one view per dataset (:func:`data_loaders.catalog.connect`)."""
        from data_loaders.catalog import connect

        self._recover_if_needed()
        return connect(self.root)


def _runs(dataset: str, frame: pl.DataFrame, timeframe: str | None) -> list[tuple[int, int]]:
    schema = get_schema(dataset)
    if frame.is_empty():
        return []
    ts = frame[schema.time_column].dt.epoch("ms")
    if dataset == "ohlcv":
        step = pl.Series([timeframe_ms(timeframe)] * frame.height)  # type: ignore[arg-type]
    elif dataset == "funding":
        step = (frame["interval_hours"] * 3_600_000).round(0).cast(pl.Int64)
    else:
        return [(int(ts.min()), int(ts.max()) + 1)]
    runs = (pl.DataFrame({"ts": ts, "step": step})
            .with_columns(end=pl.col("ts") + pl.col("step"))
            .with_columns(new=(pl.col("ts") > pl.col("end").shift(1).cum_max()).fill_null(True))
            .with_columns(run=pl.col("new").cum_sum())
            .group_by("run", maintain_order=True).agg(pl.col("ts").min(), pl.col("end").max()))
    return [(int(a), int(b)) for a, b in runs.select("ts", "end").iter_rows()]


@dataclass(frozen=True)
class ImportResult:
    """What importing one file did (returned by every importer).

    Attributes
    ----------
    path : Path
        The file imported.
    dataset : str
        Canonical dataset it went to.
    exchange, symbol : str
        Where it went (for multi-symbol files, the symbols joined by ``,``).
    timeframe, price_type : str or None
        Candle partition, when ohlcv.
    rows_read : int
        Rows parsed from the file.
    write : WriteResult
        The store write.
    warnings : tuple of str
        Data-quality findings (file lines named) plus dropped-row notes.
    """

    path: Path
    dataset: str
    exchange: str
    symbol: str
    timeframe: str | None
    price_type: str | None
    rows_read: int
    write: WriteResult
    warnings: tuple[str, ...]


def file_target(store: MarketStore, dataset: str, first: dict, period: str) -> Path:
    """The stored file of one period (``"2020"``, or ``"2020-03-01"`` for trades) of ``first``'s market."""
    folder = store.partition_dir(dataset, exchange=first["exchange"], symbol=first["symbol"],
                                 timeframe=first.get("timeframe"), price_type=first.get("price_type"))
    return folder / f"year={period[:4]}" / f"part-{period}.parquet"


def _file_parts(frame: pl.DataFrame, schema):
    """Split canonical rows into the stored files they belong to: ``(first row, period, rows)``.

    The period is the file's year (``"2020"``) or day (``"2020-03-01"``, per
    ``schema.file_period``). An import of one market in time order (every import of a file)
    is cut into zero-copy slices where the period changes; anything else is grouped with
    ``partition_by`` (a copy), in order of first appearance either way.
    """
    fmt = "%Y" if schema.file_period == "year" else "%Y-%m-%d"
    ts = frame[schema.time_column]
    key = ts.dt.year() if schema.file_period == "year" else ts.dt.date().cast(pl.Int32)
    one_market = all(n == 1 for n in frame.select(pl.col(schema.partitions).n_unique()).row(0))
    if one_market and ts.null_count() == 0 and key.is_sorted():
        change = (key.diff() != 0).arg_true().to_list()  # row indices where a new period starts
        bounds = [0, *change, frame.height]
        for start, end in zip(bounds[:-1], bounds[1:]):
            part = frame.slice(start, end - start)
            yield part.row(0, named=True), ts[start].strftime(fmt), part
        return
    keyed = frame.with_columns(_period=pl.col(schema.time_column).dt.strftime(fmt))
    for part in keyed.partition_by([*schema.partitions, "_period"], maintain_order=True):
        yield part.row(0, named=True), part["_period"][0], part.drop("_period")


def store_checked(store: MarketStore, dataset: str, frame: pl.DataFrame, *, path: Path, source: str,
                  strict: bool, first_line: int | None = None,
                  replace: bool = False) -> tuple[WriteResult, tuple[str, ...]]:
    """Check a parsed file (naming its lines), repair it in lenient mode, then write it.

    ``replace`` allows the file to change stored rows (see :meth:`MarketStore.write`).

    Returns the write result and the warnings (quality findings of the file, then of the write).
    """
    rows_input = frame.height
    # one quality pass: the file's (naming its lines); the write takes the checked frame as is
    frame, report = _checked(dataset, frame, subject=str(path), first_line=first_line)
    if strict:
        report.raise_if_errors()
    elif not report.ok:
        frame = repair(dataset, frame)
    result = store._write_checked(dataset, frame, source=source, fetched_at=None, replace=replace,
                                  rows_input=rows_input, warnings=())
    result = _with_fields(result, rows_dropped=rows_input - frame.height)
    return result, tuple(report.warnings)


def _checked(dataset: str, frame: pl.DataFrame, *, subject: str,
             first_line: int | None = None) -> tuple[pl.DataFrame, QualityReport]:
    """Conform ``frame``, validate its names, refuse non-finite numbers and run the quality rules.

    The one check of every write (:meth:`MarketStore.write` and :func:`store_checked`).
    """
    frame = conform(dataset, frame, subject=subject)
    for exchange in distinct(frame, "exchange"):
        validate_exchange(exchange)
    for symbol in distinct(frame, "symbol"):
        validate_symbol(symbol)
    refuse_non_finite(dataset, frame, subject=subject)
    return frame, check(dataset, frame, subject=subject, first_line=first_line)
