"""A store write fed chunk by chunk: an import's peak memory is bounded whatever its file size.

:meth:`MarketStore.write` takes one frame; an import of a large file would hold the file's rows,
then every stored file they merge into, at once. :func:`store_stream` takes the parsed file as
consecutive chunks instead and, under the store lock, in one pass:

1. conforms each chunk and runs the quality rules on it with the state carried over from the
   previous chunk (:class:`data_loaders.quality_stream.ChunkedCheck`), plus the non-finite
   refusal (:func:`data_loaders.store_merge.non_finite_found`);
2. buffers the rows of the current stored file period (a year of candles) without their
   constant market columns; when the period ends, merges them with the stored file
   (:func:`data_loaders.store_merge.plan_file`, the one merge rule), stages the merged file as
   a temporary file (:func:`data_loaders.store_merge.stage_plan`) and lets go of it;
3. after the last chunk applies the same refusals as a whole write, in the same order (the
   caller's own check, non-finite numbers, quality errors in strict mode, changed stored rows
   without ``replace``), then commits every staged file through the journal (one atomic
   commit, :mod:`data_loaders.store_io`).

So the memory is one chunk plus one file period's rows (new, stored and merged), not the
input; the stored bytes equal those of the whole-frame write, which runs the same merge on the
same rows. A strict import that breaks a rule stops staging at once (nothing will be written)
and only keeps checking, for the full report. Any refusal or failure removes the staged files:
the store is left as it was.

Inputs a bounded check cannot judge (another market in the file, a missing time, a time before
the previous row's; see :mod:`data_loaders.quality_stream`) return None: the caller then
imports the file whole, as before.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from data_loaders.quality import distinct
from data_loaders.quality_stream import ChunkedCheck
from data_loaders.schemas import conform, get_schema
from data_loaders.store import MarketStore, WriteResult, _file_parts, file_target
from data_loaders.store_io import commit
from data_loaders.store_merge import (FilePlan, discard_staged, non_finite_found, plan_file, raise_non_finite,
                                      refuse_changes, stage_plan)
from data_loaders.symbols import validate_exchange, validate_symbol


class NotStreamable(Exception):
    """Raised by a chunk source that met input only the whole-input import can judge."""


@dataclass(frozen=True)
class StreamedWrite:
    """What :func:`store_stream` did: the write, the quality warnings and the rows read."""

    write: WriteResult
    warnings: tuple[str, ...]
    rows_read: int


class _PeriodStager:
    """Buffers one stored file period of rows at a time and stages its merged file when it ends."""

    def __init__(self, store: MarketStore, dataset: str, manifest: dict, write: dict) -> None:
        self.store, self.schema, self.manifest, self.write = store, get_schema(dataset), manifest, write
        self.plans: list[FilePlan] = []
        self.moves: list[tuple[Path | None, Path]] = []
        self.active = True
        self._swept: set[Path] = set()
        self._made: list[Path] = []  # folders this write created, removed again when it is refused
        self._period: str | None = None
        self._first: dict | None = None
        self._parts: list[pl.DataFrame] = []

    def add(self, chunk: pl.DataFrame) -> None:
        """Take the next rows (one market, in time order)."""
        if not self.active or chunk.is_empty():  # a lenient import may drop a whole block
            return
        for first, period, part in _file_parts(chunk, self.schema):
            if period != self._period:
                self._flush()
                self._period, self._first = period, first
            # the market columns hold one value: added back once per period, not held per row
            self._parts.append(part.drop(self.schema.partitions))

    def finish(self) -> None:
        """Stage the last period."""
        if self.active:
            self._flush()

    def stop(self) -> None:
        """Nothing will be written: drop the buffer and the staged files."""
        self.active = False
        self._parts = []
        self.plans = []
        discard_staged(self.moves)
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):  # not empty: another file is there, keep it
                folder.rmdir()
        self._made = []

    def _flush(self) -> None:
        if not self._parts:
            return
        parts, self._parts = self._parts, []
        first = self._first
        assert first is not None and self._period is not None
        new = (pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]).with_columns(
            pl.lit(first[c]).alias(c) for c in self.schema.partitions).select(self.schema.column_names)
        plan = plan_file(new, file_target(self.store, self.schema.name, first, self._period), self.schema)
        self.plans.append(plan)
        if plan.writes:
            folder = plan.target.parent
            missing = [f for f in (folder, *folder.parents) if not f.exists() and self.store.root in f.parents]
            self._made.extend(reversed(missing))  # outermost first
            self.moves.append(stage_plan(self.store.root, plan, self.manifest, self.schema.time_column,
                                         self.write, self._swept))
        plan.merged = None  # staged: its rows are on disk until the commit moves them in


def store_stream(store: MarketStore, dataset: str, chunks: Iterable[pl.DataFrame], *, path: Path, source: str,
                 strict: bool, replace: bool = False, first_line: int | None = None,
                 before_commit: Callable[[], None] | None = None) -> StreamedWrite | None:
    """Check, merge and write a parsed file given as chunks (see the module docstring).

    Parameters
    ----------
    store : MarketStore
        Destination.
    dataset : str
        Canonical dataset of the rows.
    chunks : iterable of polars.DataFrame
        The file's rows in file order, each chunk with the dataset's columns.
    path : Path
        The file (named in every message).
    source : str
        Provenance recorded in the manifest.
    strict, replace : bool
        As :func:`data_loaders.store.store_checked`.
    first_line : int, optional
        File line of the first row (messages name file lines).
    before_commit : callable, optional
        The caller's own refusal of the whole input (e.g. candles without any volume), run
        after the last chunk and before the other refusals.

    Returns
    -------
    StreamedWrite or None
        None when the input needs the whole-input write (nothing was written): the check
        found it, or ``chunks`` raised :class:`NotStreamable`.
    """
    check = ChunkedCheck(dataset, subject=str(path), first_line=first_line)
    if not check.streamable:
        return None
    schema = get_schema(dataset)
    non_finite: dict[str, tuple[int, dict]] = {}
    stamp = datetime.now(timezone.utc).isoformat()
    with store._lock():
        stager = _PeriodStager(store, dataset, store.manifest.load(), {"source": source, "fetched_at": stamp})
        try:
            for chunk in chunks:
                chunk = conform(dataset, chunk, subject=str(path))
                for exchange in distinct(chunk, "exchange"):
                    validate_exchange(exchange)
                for symbol in distinct(chunk, "symbol"):
                    validate_symbol(symbol)
                for name, (count, first) in non_finite_found(dataset, chunk, offset=check.rows).items():
                    seen = non_finite.get(name)
                    non_finite[name] = (count + seen[0], seen[1]) if seen else (count, first)
                bad = check.feed(chunk)
                if bad is None:
                    stager.stop()
                    return None
                if non_finite or (strict and check.has_errors):
                    stager.stop()  # it will be refused: only the check goes on, for the full report
                    continue
                stager.add(chunk.filter(~bad) if bad.any() else chunk)
            stager.finish()
            if before_commit is not None:
                before_commit()
            raise_non_finite(dataset, {n: non_finite[n] for n in schema.column_names if n in non_finite},
                             subject=str(path))
            report = check.report()
            if strict:
                report.raise_if_errors()
            if not replace:
                refuse_changes(stager.plans, schema, source=source, root=store.root)
            if stager.moves:
                commit(store.root, stager.manifest, stager.moves)
        except NotStreamable:
            stager.stop()
            return None
        except BaseException:
            stager.stop()
            raise
    plans = stager.plans
    kept = sum(p.write_summary["rows"] for p in plans)
    result = WriteResult(dataset, check.rows, sum(p.added for p in plans), sum(p.changed for p in plans),
                         check.rows - kept, tuple(p.target for p in plans if p.writes), (),
                         rows_unchanged=sum(p.unchanged for p in plans))
    return StreamedWrite(result, tuple(report.warnings), check.rows)
