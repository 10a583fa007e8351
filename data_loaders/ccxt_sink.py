"""Where fetched pages go: a buffered writer into the store, and a ledger of what was written.

Pages are buffered and written to the store every few pages (and always before an error
propagates), so an interruption loses at most nothing that was already received.

How a fetch merges: the fetcher requests only the ranges the store does not cover yet, and
only closed bars, so a fetch does not overlap stored rows; stored rows (imported or fetched)
are never re-requested. Where a write still meets a stored key (a venue repeating the tail
of a page, a funding settlement re-stamped), the fetched row replaces the stored one
(``store.write(..., replace=True)``): the exchange's current answer is the truth for its own
data, and a fetch cannot cross price types or datasets (each endpoint fixes the partition:
``klines`` -> last, ``markPriceKlines`` -> mark, ...), which is what the import-side refusal
protects against. File imports refuse to change stored rows unless ``--replace`` is given.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import polars as pl

from data_loaders.errors import DataNotFoundError
from data_loaders.schemas import get_schema


class StoreLike(Protocol):
    """The part of :class:`data_loaders.store.MarketStore` the fetcher uses (CONTRACTS §4)."""

    def write(self, dataset: str, frame: pl.DataFrame, *, source: str, strict: bool = True,
              replace: bool = False) -> Any: ...

    def read(self, dataset: str, *, exchange: str, symbol: str, timeframe: str | None = None,
             price_type: str | None = None, start: Any = None, end: Any = None) -> pl.DataFrame: ...

    def coverage(self, dataset: str, *, exchange: str, symbol: str, timeframe: str | None = None,
                 price_type: str | None = None) -> list[tuple[int, int]]: ...


def read_stored(store: StoreLike, dataset: str, *, exchange: str, symbol: str,
                timeframe: str | None = None, price_type: str | None = None,
                start: int | None = None, end: int | None = None) -> pl.DataFrame:
    """``store.read`` that returns an empty canonical frame when nothing is stored yet."""
    try:
        return store.read(dataset, exchange=exchange, symbol=symbol, timeframe=timeframe,
                          price_type=price_type, start=start, end=end)
    except DataNotFoundError:
        return pl.DataFrame(schema=get_schema(dataset).polars_schema)


def iso(ts_ms: int | None) -> str:
    """Epoch ms -> ``2020-03-12T00:00Z`` (``-`` for None)."""
    if ts_ms is None:
        return "-"
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%MZ") if ts_ms % 60_000 == 0 else moment.isoformat()


@dataclass
class DatasetOutcome:
    """What one fetch task wrote (or why it wrote nothing).

    Attributes
    ----------
    dataset, symbol, detail : str
        Canonical dataset, ccxt symbol and a detail such as ``"1h mark"`` (may be empty).
    rows : int
        Rows this run handed to the store.
    rows_added : int
        Of those, rows whose key was not stored before (the rest replaced stored copies).
    requests : int
        Exchange requests made (retries not counted).
    first_ts, last_ts : int or None
        Time range of the written rows, epoch ms.
    note : str
        Why nothing was fetched, e.g. ``"already stored"``.
    """

    dataset: str
    symbol: str
    detail: str = ""
    rows: int = 0
    rows_added: int = 0
    requests: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    note: str = ""

    def describe(self) -> str:
        """One human line, e.g. ``ohlcv BTC/USDT:USDT 1h last: 72 rows 2020-03-10T00:00Z..``."""
        head = " ".join(p for p in (self.dataset, self.symbol, self.detail) if p)
        if self.rows:
            return f"{head}: {self.rows} rows {iso(self.first_ts)}..{iso(self.last_ts)}"
        return f"{head}: 0 rows" + (f" ({self.note})" if self.note else "")


@dataclass
class FetchReport:
    """Everything one ``fetch`` run did, task by task."""

    exchange: str
    outcomes: list[DatasetOutcome] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Total rows written."""
        return sum(o.rows for o in self.outcomes)

    def stored_summary(self) -> str:
        """Indented lines describing what this run wrote (``nothing yet`` if empty)."""
        written = [o for o in self.outcomes if o.rows]
        if not written:
            return "  nothing yet"
        return "\n".join("  " + o.describe() for o in written)


class PageWriter:
    """Buffers canonical frames of one task and writes them to the store in chunks.

    Parameters
    ----------
    store : StoreLike
        Destination.
    dataset : str
        Canonical dataset name.
    outcome : DatasetOutcome
        Updated with the rows and range of every flushed chunk.
    source : str
        Provenance recorded by the store (``ccxt:binanceusdm``).
    strict : bool
        Passed to ``store.write``.
    pages_per_write : int
        Flush after this many buffered pages.
    """

    def __init__(self, store: StoreLike, dataset: str, outcome: DatasetOutcome, *, source: str,
                 strict: bool, pages_per_write: int) -> None:
        self._store = store
        self._dataset = dataset
        self._outcome = outcome
        self._source = source
        self._strict = strict
        self._pages_per_write = max(1, pages_per_write)
        self._pending: list[pl.DataFrame] = []
        self._time_column = get_schema(dataset).time_column

    def add(self, frame: pl.DataFrame) -> None:
        """Buffer one page; write the buffer when it holds ``pages_per_write`` pages."""
        if frame.height:
            self._pending.append(frame)
        if len(self._pending) >= self._pages_per_write:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered (no-op when empty)."""
        if not self._pending:
            return
        # pages of newest-first venues arrive latest first; the store wants each chunk in time order
        chunk = pl.concat(self._pending, how="vertical").sort(self._time_column, maintain_order=True)
        # replace=True: the exchange's current answer supersedes a stored bar (module docstring)
        result = self._store.write(self._dataset, chunk, source=self._source, strict=self._strict, replace=True)
        self._pending = []
        stamps = chunk.get_column(self._time_column).dt.epoch("ms")
        first, last = int(stamps.min()), int(stamps.max())
        out = self._outcome
        out.rows += chunk.height
        out.rows_added += int(getattr(result, "rows_added", chunk.height))
        out.first_ts = first if out.first_ts is None else min(out.first_ts, first)
        out.last_ts = last if out.last_ts is None else max(out.last_ts, last)
