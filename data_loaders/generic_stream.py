"""A generic candle or funding CSV imported block by block (bounded memory), as :mod:`binance_dump`.

:func:`import_csv_streamed` reads the file's column types from its first rows exactly as the
whole read infers them (``infer_schema_length`` rows), then parses blocks of whole lines with
those types, selects the canonical columns with the same expressions
(:func:`data_loaders.generic.column_exprs`) and hands the blocks to
:func:`data_loaders.store_stream.store_stream`. A timeframe to infer is read from a first pass
over the time column alone, counting the steps between rows (as many counters as distinct
steps: a handful for candles), whose median is the whole read's.

It returns None, having written nothing, for whatever the whole read must judge: a file that is
not plain UTF-8, a quote character (a quoted field may hold a line break, which a cut between
blocks would split), a block the fixed types cannot parse (the whole read names the line), a
file without data rows or without any volume column, times out of order or missing, or several
markets; the caller then imports the file whole, with the same result or error as before.
"""
from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from data_loaders.binance_dump import _blocks, _plain_utf8_file
from data_loaders.generic import (INFER_ROWS, canonical_columns, column_exprs, fill_constants,
                                  median_of_counts, timeframe_of_step)
from data_loaders.price_type import has_no_volume, price_type_from_name, refuse_volumeless_last
from data_loaders.quality_stream import STREAMED_DATASETS
from data_loaders.schemas import get_schema
from data_loaders.store_stream import NotStreamable, StreamedWrite, store_stream

_PARSE_ERRORS = (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError,
                 pl.exceptions.SchemaError, pl.exceptions.ColumnNotFoundError, ValueError)


def _head(path: Path, block_bytes: int | None) -> pl.DataFrame:
    """The first :data:`INFER_ROWS` rows, typed as the whole read types them."""
    data = b""
    for block in _blocks(path, size=block_bytes):
        data += block
        if data.count(b"\n") > INFER_ROWS:
            break
    return pl.read_csv(io.BytesIO(data), infer_schema_length=INFER_ROWS, n_rows=INFER_ROWS)


def _parsed_blocks(path: Path, schema: pl.Schema, block_bytes: int | None,
                   column: str | None = None) -> Iterator[pl.DataFrame]:
    """The file's rows block by block with the given column types (or only ``column``);
    NotStreamable where it cannot."""
    columns = None if column is None else [list(schema).index(column)]  # by position: later blocks have no header
    for number, block in enumerate(_blocks(path, size=block_bytes)):
        if b'"' in block:
            raise NotStreamable(f"{path}: a quoted field")
        try:
            raw = pl.read_csv(io.BytesIO(block), has_header=number == 0, schema=schema, columns=columns,
                              raise_if_empty=False)
        except _PARSE_ERRORS as exc:
            raise NotStreamable(f"{path}: {exc}") from exc
        if raw.height:
            yield raw


def _streamed_timeframe(path: Path, schema: pl.Schema, ts_expr: pl.Expr, source: str, dataset: str,
                        block_bytes: int | None) -> str | None:
    """The timeframe :func:`data_loaders.generic.infer_timeframe` names, from the steps between rows.

    None when a time is missing or goes back (the whole read sorts them first).
    """
    counts: Counter[int] = Counter()
    last: pl.Series | None = None
    for raw in _parsed_blocks(path, schema, block_bytes, column=source):
        ts = canonical_columns(raw, [ts_expr], path, dataset).to_series().dt.epoch("ms")
        if ts.null_count():
            return None
        steps = (ts if last is None else pl.concat([last, ts])).diff().drop_nulls()
        if (steps < 0).any():
            return None
        counts.update(dict(steps.filter(steps > 0).value_counts().iter_rows()))
        last = ts.tail(1)
    return timeframe_of_step(median_of_counts(counts))


def import_csv_streamed(store, path: Path, *, dataset: str, exchange: str, symbol: str | None,
                        timeframe: str | None, price_type: str | None, mapping: dict[str, str] | None,
                        ts_unit: str, strict: bool, replace: bool,
                        block_bytes: int | None = None) -> tuple[StreamedWrite, dict] | None:
    """Import a generic CSV block by block (see the module docstring); None: import it whole.

    Returns
    -------
    (StreamedWrite, dict) or None
        The write and the first stored row's market (``symbol``, ``timeframe``, ``price_type``).
    """
    if (dataset not in STREAMED_DATASETS or path.suffix.lower() not in (".csv", ".txt") or not path.is_file()
            or not _plain_utf8_file(path)):
        return None
    try:
        head = _head(path, block_bytes)
    except _PARSE_ERRORS:
        return None
    if head.height == 0:
        return None
    time_col = get_schema(dataset).time_column
    exprs = column_exprs(head.schema, path, dataset, mapping, ts_unit)  # mapping errors as the whole read's
    names = {e.meta.output_name(): e for e in exprs}
    if time_col not in names:
        return None
    try:
        if dataset == "ohlcv" and timeframe is None and "timeframe" not in names:
            source = next(iter(names[time_col].meta.root_names()))
            timeframe = _streamed_timeframe(path, head.schema, names[time_col], source, dataset, block_bytes)
            if timeframe is None:
                return None
    except NotStreamable:
        return None
    check_volume = False
    if dataset == "ohlcv" and price_type is None and "price_type" not in names:
        price_type = price_type_from_name(path)
        if price_type is None and {"open", "high", "low", "close"} <= set(names):
            if "volume" not in names:
                return None  # refused by the whole read (no volume at all)
            check_volume = True  # last-price candles unless no block has any volume
        price_type = price_type or "last"
    seen: dict = {}

    def chunks() -> Iterator[pl.DataFrame]:
        for raw in _parsed_blocks(path, head.schema, block_bytes):
            frame = fill_constants(canonical_columns(raw, exprs, path, dataset), path, dataset=dataset,
                                   exchange=exchange, symbol=symbol, timeframe=timeframe, price_type=price_type)
            if not seen:  # the market only: a time is not turned into a Python datetime before it is checked
                seen.update(frame.select(c for c in ("symbol", "timeframe", "price_type") if c in frame.columns)
                            .row(0, named=True))
            seen["volume_seen"] = seen.get("volume_seen") or (check_volume and not has_no_volume(frame["volume"]))
            yield frame

    def refuse_without_volume() -> None:
        if check_volume and not seen.get("volume_seen"):  # the whole read's rule, over every block
            refuse_volumeless_last(path, "--price-type")

    first_line = 2 if path.suffix.lower() == ".csv" else None  # as the whole import numbers lines
    streamed = store_stream(store, dataset, chunks(), path=path, source=f"file:{path.name}", strict=strict,
                            replace=replace, first_line=first_line, before_commit=refuse_without_volume)
    return None if streamed is None else (streamed, seen)
