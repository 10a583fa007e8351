"""Long columns kept on disk, read through the page cache: memory bounded by a chunk.

A long run's bar columns (and its strategy's feature and signal columns) are written once to
an unlinked scratch file and mapped read-only (``mmap``); the NumPy arrays and polars frames
the engine reads are zero-copy views of that map, so the values are the very same floats.
Behind the loop, :func:`release` tells the kernel that the pages of bars already run are no
longer needed (``madvise(MADV_DONTNEED)``): they leave the process's resident memory and stay
in the page cache. Reading such a bar again (a strategy's long lookback, the output tables at
the end) faults its pages back in from the file: releasing is a residency hint only, it never
changes a value, so any lookback works, it only costs a page fault.

The scratch file is created unlinked (``tempfile.TemporaryFile``, in ``$TMPDIR``): a killed
run leaves nothing behind, and the disk space returns when the last view is dropped. It takes
the columns' size on disk (8 bytes per value: ~40 MB per symbol-year of 1m bars).
"""
from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import polars as pl

__all__ = ["SPILL_BARS", "Spill"]

#: Symbol-bars from which a run's columns are spilled (below, they stay in memory: a short
#: run gains nothing from a scratch file). 2^18 bars is about half a year of 1m bars.
SPILL_BARS = 1 << 18
_PAGE = mmap.PAGESIZE
#: ``madvise`` advice dropping resident pages (None where the OS has none: nothing is released).
_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)
#: Dtypes whose column is a plain fixed-width buffer (null-free columns of these are spilled).
_FIXED = (pl.Float64, pl.Float32, pl.Int64, pl.Int32, pl.UInt32, pl.UInt64)


def _aligned(size: int) -> int:
    return -(-size // _PAGE) * _PAGE


def _fixed(dtype: pl.DataType) -> bool:
    return dtype in _FIXED or isinstance(dtype, pl.Datetime)


def _numpy(series: pl.Series) -> np.ndarray:
    """A fixed-width column's values (a datetime as its int64 epoch in its own unit)."""
    if isinstance(series.dtype, pl.Datetime):
        series = series.dt.epoch(series.dtype.time_unit)
    return series.to_numpy()


def _from_array(name: str, dtype: pl.DataType, values: np.ndarray) -> pl.Series:
    """A polars column over ``values`` without a copy (a datetime from its int64 epoch)."""
    series = pl.Series(name, values)
    return series.cast(dtype) if isinstance(dtype, pl.Datetime) else series


class Spill:
    """The scratch-file maps of a set of per-bar columns, released together.

    Parameters
    ----------
    directory : str, optional
        Where the (unlinked) scratch files live (default ``$TMPDIR``).
    """

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory
        #: Per spilled column: its map, byte offset, item size and length.
        self._columns: list[tuple[mmap.mmap, int, int, int]] = []
        #: Per spilled column its address range ``[start, end)`` in memory (the maps never
        #: move while open), so telling a view of a spilled column costs two int compares.
        self._spans: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self._columns)

    def _has(self, series: pl.Series) -> bool:
        """Whether ``series``' values lie in one of the maps (a view of a spilled column)."""
        address = _numpy(series).ctypes.data
        return any(start <= address < end for start, end in self._spans)

    def _spillable(self, series: pl.Series) -> bool:
        return _fixed(series.dtype) and series.len() > 0 and not series.null_count() and not self._has(series)

    def holds(self, frame: pl.DataFrame) -> bool:
        """Whether every null-free fixed-width column of ``frame`` is already in its maps."""
        return not any(self._spillable(frame.get_column(c)) for c in frame.columns)

    def _write(self, columns: Mapping[str, tuple[np.dtype, int]],
               fill: Callable[[int, dict[str, int]], None]) -> dict[str, np.ndarray]:
        """Lay ``columns`` (name -> dtype, length) out page-aligned in a new scratch file,
        let ``fill(fd, offsets)`` write them, map the file and return the columns."""
        offsets, total = {}, 0
        for name, (dtype, n) in columns.items():
            offsets[name] = total
            total += _aligned(max(n, 1) * np.dtype(dtype).itemsize)
        if not total:
            return {name: np.zeros(0, dtype=dt) for name, (dt, _) in columns.items()}
        with tempfile.TemporaryFile(dir=self.directory) as file:
            file.truncate(total)
            fill(file.fileno(), offsets)
            view = mmap.mmap(file.fileno(), total, access=mmap.ACCESS_READ)  # outlives the file
        out = {}
        for name, (dtype, n) in columns.items():
            dtype = np.dtype(dtype)
            out[name] = np.frombuffer(view, dtype=dtype, count=n, offset=offsets[name])
            self._columns.append((view, offsets[name], dtype.itemsize, n))
            start = np.frombuffer(view, np.uint8, 1).ctypes.data + offsets[name]
            self._spans.append((start, start + dtype.itemsize * n))
        return out

    def arrays(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Read-only copies of 1-D fixed-width ``arrays`` on disk (same dtypes and values)."""
        def fill(fd: int, offsets: dict[str, int]) -> None:
            for name, values in arrays.items():
                if values.size:
                    os.pwrite(fd, memoryview(np.ascontiguousarray(values)).cast("B"), offsets[name])

        return self._write({name: (a.dtype, a.size) for name, a in arrays.items()}, fill)

    def column(self, n: int, dtype: Any, compute: Callable[[int, int], np.ndarray], chunk: int) -> np.ndarray:
        """A column of ``n`` values on disk, written ``chunk`` rows at a time from
        ``compute(start, stop)`` (its values of rows ``[start, stop)``)."""
        dtype = np.dtype(dtype)

        def fill(fd: int, offsets: dict[str, int]) -> None:
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                values = np.ascontiguousarray(compute(start, stop), dtype=dtype)
                if values.shape != (stop - start,):
                    raise ValueError(f"Spill.column: compute({start}, {stop}) gave shape {values.shape}")
                os.pwrite(fd, memoryview(values).cast("B"), offsets["v"] + start * dtype.itemsize)

        return self._write({"v": (dtype, n)}, fill)["v"]

    def frame(self, frame: pl.DataFrame, held: Spill | None = None) -> pl.DataFrame:
        """``frame`` with its null-free fixed-width columns (floats, ints, datetimes) on disk.

        The result equals ``frame`` (same columns, dtypes and values); the spilled columns
        are zero-copy views of the map, the others (and columns already in its maps or in
        ``held``'s) are ``frame``'s own.
        """
        names = [c for c in frame.columns if self._spillable(frame.get_column(c))
                 and (held is None or not held._has(frame.get_column(c)))]
        if not names:
            return frame
        spilled = self.arrays({c: _numpy(frame.get_column(c)) for c in names})
        return pl.DataFrame([_from_array(c, frame.schema[c], spilled[c]) if c in spilled
                             else frame.get_column(c) for c in frame.columns])

    def lazy(self, lazy: pl.LazyFrame, *, batch_rows: int = 1 << 14) -> pl.DataFrame:
        """Collect ``lazy`` slice by slice straight to disk: :meth:`frame`'s result without
        ever holding the whole frame in memory. Each slice is one query: a Parquet scan reads
        only the row groups it needs (so the file's row groups bound the transient memory); a
        plan that sorts or joins would run once per slice (collect such a frame first).

        Columns that are not fixed-width (strings, ...) are collected in memory; a
        fixed-width column found to hold a null is read again alone and kept in memory as it
        is (a price column with nulls is then refused by the bar checks as usual).
        """
        schema = dict(lazy.collect_schema())
        n = int(lazy.select(pl.len()).collect().item())  # from the files' metadata
        # a slice per query: a scan reads only the row groups it needs, and polars' readers
        # keep less memory than with its batch iterator (measured: bench/memory.py)
        return self.batches(schema, n, lambda: (lazy.slice(start, batch_rows).collect()
                                                for start in range(0, n, batch_rows)))

    def batches(self, schema: Mapping[str, pl.DataType], n: int,
                read: Callable[[], Iterable[pl.DataFrame]]) -> pl.DataFrame:
        """A frame of ``n`` rows written to disk batch by batch from ``read()`` (the frames of
        its rows in order, with the columns of ``schema``), never held whole in memory.

        Columns that are not fixed-width (strings, ...) are collected in memory; a
        fixed-width column found to hold a null is read again alone (a second ``read()``) and
        kept in memory as it is (a price column with nulls is then refused by the bar checks
        as usual).
        """
        fixed = [c for c, dt in schema.items() if _fixed(dt)]
        if not fixed or not n:
            parts = list(read())
            return pl.concat(parts) if parts else pl.DataFrame(schema=dict(schema))
        dtypes = {c: np.dtype(np.int64) if isinstance(schema[c], pl.Datetime)
                  else pl.Series([], dtype=schema[c]).to_numpy().dtype for c in fixed}
        rest = [c for c in schema if c not in dtypes]
        others: list[pl.DataFrame] = []
        nulls: set[str] = set()

        def fill(fd: int, offsets: dict[str, int]) -> None:
            row = 0
            for batch in read():
                if row + batch.height > n:
                    raise RuntimeError(f"Spill.batches: the batches gave more rows than the {n} counted")
                for c in fixed:
                    series = batch.get_column(c)
                    if series.null_count():
                        nulls.add(c)
                    if c in nulls:
                        continue
                    values = np.ascontiguousarray(_numpy(series), dtype=dtypes[c])
                    os.pwrite(fd, memoryview(values).cast("B"), offsets[c] + row * dtypes[c].itemsize)
                if rest:
                    others.append(batch.select(rest))
                row += batch.height
            if row != n:
                raise RuntimeError(f"Spill.batches: the batches gave {row} rows where {n} were counted")

        spilled = self._write({c: (dtypes[c], n) for c in fixed}, fill)
        kept = pl.concat(others) if others else None
        in_memory = pl.concat([b.select(sorted(nulls)) for b in read()]) if nulls else None
        return pl.DataFrame([in_memory.get_column(c) if c in nulls
                             else _from_array(c, schema[c], spilled[c]) if c in spilled else kept.get_column(c)
                             for c in schema])

    def release(self, start: int, stop: int) -> None:
        """Drop the resident pages of rows ``[start, stop)`` of every spilled column.

        A residency hint only: the values stay readable (a later read faults the pages back
        in from the file), so releasing rows still needed costs time, never a wrong value.
        """
        if stop <= start or _DONTNEED is None:
            return
        for view, offset, itemsize, n in self._columns:
            lo = offset + max(start, 0) * itemsize
            hi = offset + min(stop, n) * itemsize
            lo -= lo % _PAGE
            hi = min(_aligned(hi), len(view))
            if hi > lo:
                view.madvise(_DONTNEED, lo, hi - lo)
