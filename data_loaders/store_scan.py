"""A stored partition read in record batches: the store's lazy read, bounded by a row group.

:meth:`data_loaders.store.MarketStore.read` collects a partition's window whole; a long
window (years of 1m candles) is better read batch by batch by a consumer that writes each
batch away (``backtest.spill``). :class:`StoredBatches` is that read: the same files, window
and rows as ``read``, in the same order, as a sequence of polars frames of at most
``batch_rows`` rows each. Each file is decoded one Parquet row group at a time
(``pyarrow.parquet.ParquetFile.iter_batches``), so the transient memory is a row group of the
columns asked for, not the window.

The order is the store's invariant: one file per year (disjoint years, in path order), each
written sorted by time and de-duplicated on the dataset's key (``data_loaders.store``). The
batches check it as they go: a time that goes back raises :class:`DataError` naming the file
(a file changed outside margincall), never a silently unsorted read.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from data_loaders.errors import DataError

__all__ = ["StoredBatches"]

#: Rows per batch: 64Ki rows of six float columns is 3 MiB.
BATCH_ROWS = 1 << 16


@dataclass(frozen=True)
class StoredBatches:
    """The rows of ``[start_ms, end_ms)`` of a partition's ``files``, batch by batch.

    Attributes
    ----------
    files : tuple of Path
        The partition's data files in time order (``data_loaders.store_layout.data_files``).
    time_column : str
        The dataset's time column (a UTC datetime).
    columns : tuple of str
        The columns of each batch, in this order.
    start_ms, end_ms : int or None
        Half-open window, UTC epoch ms (None: open).
    batch_rows : int
        Most rows per batch.
    """

    files: tuple[Path, ...]
    time_column: str
    columns: tuple[str, ...]
    start_ms: int | None = None
    end_ms: int | None = None
    batch_rows: int = BATCH_ROWS

    def _inside(self, ts: pl.Series) -> pl.Series | None:
        """The window mask of a batch's times (None: every row is inside)."""
        ms = ts.dt.epoch("ms")
        mask = None
        if self.start_ms is not None:
            mask = ms >= self.start_ms
        if self.end_ms is not None:
            mask = (ms < self.end_ms) if mask is None else mask & (ms < self.end_ms)
        return mask

    def count(self) -> int:
        """Rows in the window (reads the time column only, one file at a time)."""
        import pyarrow.parquet as pq

        total = 0
        for path in self.files:
            ts = pl.from_arrow(pq.read_table(path, columns=[self.time_column]).column(0))
            mask = self._inside(ts)
            total += len(ts) if mask is None else int(mask.sum())
        return total

    def __iter__(self) -> Iterator[pl.DataFrame]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        wanted: Sequence[str] = list(dict.fromkeys((*self.columns, self.time_column)))
        previous = None
        for path in self.files:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=self.batch_rows, columns=wanted):
                frame = pl.from_arrow(pa.Table.from_batches([batch]))
                assert isinstance(frame, pl.DataFrame)
                ts = frame.get_column(self.time_column)
                if ts.len() and ((previous is not None and ts[0] < previous) or not ts.is_sorted()):
                    raise DataError(f"{path}: expected rows sorted by {self.time_column} (the store writes "
                                    f"them so), found a time going back; the file was changed outside "
                                    f"margincall: run `margincall data verify`")
                if ts.len():
                    previous = ts[-1]
                mask = self._inside(ts)
                if mask is not None:
                    frame = frame.filter(mask)
                if frame.height:
                    yield frame.select(self.columns)

    def schema(self) -> dict[str, pl.DataType]:
        """The batches' column types, as stored (from the first file's footer)."""
        if not self.files:
            raise DataError("StoredBatches.schema: expected at least one stored file, found none")
        stored = pl.read_parquet_schema(self.files[0])
        return {c: stored[c] for c in self.columns}
