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
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from data_loaders.errors import DataNotFoundError, DataError
from data_loaders.quality import check, repair
from data_loaders.schemas import PRICE_TYPES, get_schema, conform, timeframe_ms, to_ms
from data_loaders.symbols import symbol_from_key, symbol_key, validate_exchange, validate_symbol

if TYPE_CHECKING:
    import duckdb

MANIFEST = "manifest.json"
_PARTITION_DIR = {"exchange": "exchange", "symbol": "symbol_key", "timeframe": "timeframe",
                  "price_type": "price_type"}


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
        Stored rows overwritten by a newer row with the same key.
    rows_dropped : int
        Input rows dropped in lenient mode (bad rows, in-input duplicates).
    files : tuple of Path
        Files (re)written.
    warnings : tuple of str
        Data-quality findings (gaps always; errors too in lenient mode).
    """

    dataset: str
    rows_input: int
    rows_added: int
    rows_replaced: int
    rows_dropped: int
    files: tuple[Path, ...]
    warnings: tuple[str, ...]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(tmp: Path, target: Path) -> None:
    """fsync ``tmp`` then atomically move it over ``target``."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def atomic_write_parquet(frame: pl.DataFrame, target: Path) -> str:
    """Write ``frame`` to ``target`` atomically (temp file, fsync, rename); return its sha256."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        digest = sha256_file(tmp)
        _commit(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return digest


def atomic_write_text(text: str, target: Path) -> None:
    """Write ``text`` to ``target`` atomically (temp file, fsync, rename)."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        _commit(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class Manifest:
    """Provenance of every stored file: checksum, rows, range and the writes that made it."""

    def __init__(self, root: Path) -> None:
        self.path = root / MANIFEST

    def load(self) -> dict:
        """The manifest as a dict (``{"version": 1, "files": {relpath: entry}}``)."""
        if not self.path.exists():
            return {"version": 1, "files": {}}
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"store manifest {self.path}: expected JSON, found a corrupt file ({exc}); "
                "it is rewritten atomically, so it was edited by hand: restore it or delete it "
                "(the Parquet files stay valid; provenance history is lost)"
            ) from exc

    def record(self, manifest: dict, relpath: str, *, sha256: str, frame: pl.DataFrame,
               time_column: str, write: dict) -> None:
        """Update ``manifest`` in memory for one rewritten file and save it atomically."""
        times = frame[time_column].dt.epoch("ms")
        entry = manifest["files"].setdefault(relpath, {"writes": []})
        entry.update(sha256=sha256, rows=frame.height, range=[int(times.min()), int(times.max())])
        entry["writes"].append(write)
        atomic_write_text(json.dumps(manifest, indent=1, sort_keys=True), self.path)


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
            path = path / f"{_PARTITION_DIR[column]}={value}"
        return path

    def files(self, dataset: str) -> list[Path]:
        """Every stored Parquet file of ``dataset`` (sorted)."""
        base = self.root / get_schema(dataset).name
        return sorted(p for p in base.glob("**/*.parquet") if not p.name.startswith("."))

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---------------------------------------------------------------- write
    def write(self, dataset: str, frame: pl.DataFrame, *, source: str, strict: bool = True,
              fetched_at: datetime | None = None) -> WriteResult:
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

        Returns
        -------
        WriteResult
        """
        schema = get_schema(dataset)
        rows_input = frame.height
        frame = conform(dataset, frame)
        for exchange in frame["exchange"].drop_nulls().unique().to_list():
            validate_exchange(exchange)
        for symbol in frame["symbol"].drop_nulls().unique().to_list():
            validate_symbol(symbol)
        report = check(dataset, frame, subject=source)
        if strict:
            report.raise_if_errors()
        else:
            frame = repair(dataset, frame)
        warnings = tuple(report.warnings)
        if frame.is_empty():
            return WriteResult(dataset, rows_input, 0, 0, rows_input, (), warnings)
        fmt = "%Y" if schema.file_period == "year" else "%Y-%m-%d"
        frame = frame.with_columns(_period=pl.col(schema.time_column).dt.strftime(fmt))
        stamp = (fetched_at or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat()
        written: list[Path] = []
        added = replaced = 0
        with self._lock():
            manifest = self.manifest.load()
            for part in frame.partition_by([*schema.partitions, "_period"], maintain_order=True):
                first = part.row(0, named=True)
                folder = self.partition_dir(dataset, exchange=first["exchange"], symbol=first["symbol"],
                                            timeframe=first.get("timeframe"), price_type=first.get("price_type"))
                target = folder / f"year={first['_period'][:4]}" / f"part-{first['_period']}.parquet"
                n_added, n_replaced = self._merge_file(part.drop("_period"), target, schema, manifest,
                                                       {"source": source, "fetched_at": stamp})
                added += n_added
                replaced += n_replaced
                written.append(target)
        return WriteResult(dataset, rows_input, added, replaced, rows_input - frame.height,
                           tuple(written), warnings)

    def _merge_file(self, new: pl.DataFrame, target: Path, schema, manifest: dict,
                    write: dict) -> tuple[int, int]:
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        new = new.unique(subset=list(schema.keys), keep="last", maintain_order=True)
        try:
            old = pl.read_parquet(target) if target.exists() else new.clear()
        except (pl.exceptions.ComputeError, OSError) as exc:
            raise DataError(
                f"stored file {target}: expected a readable Parquet file, found a corrupt one "
                f"({exc}); nothing was written. Move it away and re-import its range"
            ) from exc
        merged = (pl.concat([old, new], how="vertical")
                  .unique(subset=list(schema.keys), keep="last", maintain_order=True)
                  .sort(schema.time_column))
        n_added = merged.height - old.height
        digest = atomic_write_parquet(merged, target)
        times = new[schema.time_column].dt.epoch("ms")
        self.manifest.record(
            manifest, target.relative_to(self.root).as_posix(), sha256=digest, frame=merged,
            time_column=schema.time_column,
            write={**write, "written_at": datetime.now(timezone.utc).isoformat(),
                   "range": [int(times.min()), int(times.max())], "rows": new.height,
                   "added": n_added, "replaced": new.height - n_added})
        return n_added, new.height - n_added

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
        schema = get_schema(dataset)
        if dataset == "ohlcv":
            price_type = price_type or "last"
            if timeframe is None:
                raise DataNotFoundError(self._not_found(dataset, exchange, symbol, timeframe, price_type,
                                                        "a timeframe is required for ohlcv"))
        folder = self.partition_dir(dataset, exchange=exchange, symbol=symbol,
                                    timeframe=timeframe, price_type=price_type)
        files = sorted(p for p in folder.glob("year=*/*.parquet") if not p.name.startswith("."))
        if not files:
            raise DataNotFoundError(self._not_found(dataset, exchange, symbol, timeframe, price_type,
                                                    "nothing stored"))
        start_ms = to_ms(start) if start is not None else None
        end_ms = to_ms(end) if end is not None else None
        if start_ms is not None or end_ms is not None:
            lo = datetime.fromtimestamp((start_ms or 0) / 1000, timezone.utc).year
            hi = datetime.fromtimestamp(((end_ms or 4_102_444_800_000) - 1) / 1000, timezone.utc).year
            files = [f for f in files if lo <= int(f.parent.name.split("=", 1)[1]) <= hi]
        if not files:
            return pl.DataFrame(schema=schema.polars_schema)
        lazy = pl.scan_parquet(files, hive_partitioning=False)
        time = pl.col(schema.time_column).dt.epoch("ms")
        if start_ms is not None:
            lazy = lazy.filter(time >= start_ms)
        if end_ms is not None:
            lazy = lazy.filter(time < end_ms)
        return lazy.select(schema.column_names).sort(schema.time_column).collect()

    def _not_found(self, dataset: str, exchange: str, symbol: str, timeframe: str | None,
                   price_type: str | None, why: str) -> str:
        asked = " ".join(str(v) for v in (dataset, exchange, symbol, timeframe, price_type) if v)
        # Folder names only (no Parquet reads): callers that expect a miss (coverage, optional
        # funding/tiers/mark inputs) must not pay a scan of the whole store. Partitions without
        # a data file are skipped, as in :meth:`listing`.
        stored = [p for p in self.partitions(dataset)
                  if any(not f.name.startswith(".") for f in p["path"].glob("year=*/*.parquet"))]
        have = sorted({" ".join(str(v) for v in (r["exchange"], r["symbol"], r["timeframe"], r["price_type"]) if v)
                       for r in stored})
        shown = "; ".join(have[:20]) + (" ..." if len(have) > 20 else "") if have else "nothing"
        return (f"{asked}: {why} in store {self.root}; stored {dataset}: {shown}. Fetch it with "
                f"`margincall data fetch` or import a file with `margincall data import PATH --store {self.root}`")

    # ---------------------------------------------------------------- inventory
    def partitions(self, dataset: str) -> list[dict]:
        """Every stored partition of ``dataset`` as ``{exchange, symbol, timeframe, price_type, path}``."""
        schema = get_schema(dataset)
        base = self.root / dataset
        depth = len(schema.partitions)
        out = []
        for folder in sorted(base.glob("/".join(["*"] * depth))) if base.exists() else []:
            parts = folder.relative_to(base).parts
            values = dict(p.split("=", 1) for p in parts)
            row = {"exchange": values.get("exchange"), "timeframe": values.get("timeframe"),
                   "price_type": values.get("price_type"), "path": folder}
            try:
                row["symbol"] = symbol_from_key(values.get("symbol_key", ""))
            except DataError:
                continue  # a foreign folder: not ours to list
            out.append(row)
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
        """Compare every stored file with its manifest checksum; return the problems found."""
        manifest = self.manifest.load()["files"]
        problems = []
        for dataset in ("ohlcv", "funding", "risk_tiers", "markets", "trades"):
            for path in self.files(dataset):
                rel = path.relative_to(self.root).as_posix()
                entry = manifest.get(rel)
                if entry is None:
                    problems.append(f"{rel}: not in the manifest (written outside margincall?)")
                elif sha256_file(path) != entry["sha256"]:
                    problems.append(f"{rel}: sha256 differs from the manifest (file changed since it was written)")
        return problems

    def connect(self) -> duckdb.DuckDBPyConnection:
        """In-memory DuckDB connection with one view per dataset (see :mod:`data_loaders.catalog`)."""
        from data_loaders.catalog import connect

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


def store_checked(store: MarketStore, dataset: str, frame: pl.DataFrame, *, path: Path, source: str,
                  strict: bool, first_line: int | None = None) -> tuple[WriteResult, tuple[str, ...]]:
    """Check a parsed file (naming its lines), repair it in lenient mode, then write it.

    Returns the write result and the warnings (quality findings of the file, then of the write).
    """
    frame = conform(dataset, frame)
    rows_input = frame.height
    report = check(dataset, frame, subject=str(path), first_line=first_line)
    if strict:
        report.raise_if_errors()
    elif not report.ok:
        frame = repair(dataset, frame)
    result = store.write(dataset, frame, source=source, strict=True)
    result = replace(result, rows_input=rows_input, rows_dropped=rows_input - frame.height + result.rows_dropped)
    return result, tuple(report.warnings)
