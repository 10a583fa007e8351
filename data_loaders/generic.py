"""Importer for generic CSV / Parquet files through a column mapping.

``--map ts=open_time,open=o,high=h`` maps canonical columns to the file's columns; canonical
columns that the file already names need no mapping, and a few common aliases are tried
automatically (``open_time``/``timestamp``/``date`` -> ``ts``, ``funding_rate`` -> ``rate``,
``funding_interval_hours`` -> ``interval_hours``, ``quantity``/``amount`` -> ``qty``).
Constant columns (``exchange``, ``symbol``, ``timeframe``, ``price_type``) come from flags
when the file lacks them; a native symbol column (``BTCUSDT``) is mapped to the unified form,
and without either the symbol is read from the file name (``binance_um_BTCUSDT_1h_...``).

Integer timestamps are read in ``ts_unit`` (``ms`` by default; ``s``, ``us``, ``ns`` or
``auto`` = by magnitude); datetime columns are used as they are (naive = UTC). The
``/work/shared/data`` Parquet files import directly: their ``open_time`` /
``funding_time_utc`` columns are aliases of ``ts``.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import polars as pl

from data_loaders.errors import ImportFormatError, SchemaError, import_errors, reads_file
from data_loaders.price_type import has_no_volume, price_type_from_name, refuse_volumeless_last
from data_loaders.schemas import PRICE_TYPES, get_schema, timeframe_ms, utf8_text
from data_loaders.symbols import unified_symbol, validate_exchange, validate_symbol

ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("open_time", "funding_time_utc", "timestamp", "time", "date", "datetime", "transact_time"),
    "rate": ("funding_rate", "fundingRate", "last_funding_rate"),
    "interval_hours": ("funding_interval_hours",),
    "mark_price": ("markPrice",),
    "qty": ("quantity", "amount"),
    "trade_id": ("id", "agg_trade_id"),
}
_NAME_SYMBOL = re.compile(r"(?:^|[_\-])([A-Z0-9]{2,}?(?:USDT|USDC|FDUSD|BUSD|USD)(?:_PERP)?)(?=[_\-.])")
TS_UNITS = ("ms", "us", "s", "ns", "auto")
#: Rows whose values decide a CSV column's type (``pl.read_csv(infer_schema_length=...)``).
INFER_ROWS = 10_000
_UNIT_FACTORS = {"s": ("mul", 1000), "ms": ("mul", 1), "us": ("div", 1000), "ns": ("div", 1_000_000)}


def parse_mapping(text: str | None) -> dict[str, str]:
    """Parse ``"ts=open_time,open=o"`` into ``{"ts": "open_time", "open": "o"}``."""
    mapping: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        canonical, sep, source = item.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise SchemaError(
                f"column mapping item {item!r}: expected CANONICAL=SOURCE, e.g. --map ts=open_time,open=o"
            )
        mapping[canonical.strip()] = source.strip()
    return mapping


def _read(path: Path, n_rows: int | None = None) -> pl.DataFrame:
    from data_loaders.binance_dump import _plain_utf8_file

    if not path.exists():
        raise ImportFormatError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix in (".csv", ".txt"):
            if n_rows is not None and _plain_utf8_file(path):  # a few rows: not the whole file in memory
                return pl.read_csv(path, infer_schema_length=INFER_ROWS, n_rows=n_rows)
            data = utf8_text(path.read_bytes(), subject=path)
            return pl.read_csv(io.BytesIO(data), infer_schema_length=INFER_ROWS, n_rows=n_rows)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        raise ImportFormatError(
            f"{path}: expected a readable {suffix[1:]} file with a header and data rows, found one it cannot "
            f"read ({str(exc).splitlines()[0]}); the file is corrupt or truncated: check it or export it again"
        ) from exc
    raise ImportFormatError(f"{path}: expected a .csv or .parquet file, found {suffix or 'no suffix'}")


def _ts_expr(dtype: pl.DataType, column: str, unit: str, path: Path) -> pl.Expr:
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        return col
    if dtype == pl.String:
        return col.str.to_datetime(time_zone="UTC", time_unit="ms", strict=False)
    if not dtype.is_numeric():
        raise SchemaError(f"{path}: time column {column!r} has type {dtype}; expected integers or datetimes")
    raw = col.cast(pl.Int64)
    if unit == "auto":
        return (pl.when(raw < 100_000_000_000).then(raw * 1000)
                .when(raw < 100_000_000_000_000).then(raw)
                .when(raw < 100_000_000_000_000_000).then(raw // 1000)
                .otherwise(raw // 1_000_000))
    op, factor = _UNIT_FACTORS[unit]
    return raw * factor if op == "mul" else raw // factor


def infer_dataset(columns: list[str]) -> str:
    """Guess the dataset of a generic file from its columns (funding, trades, else ohlcv)."""
    names = set(columns)
    if names & {"rate", *ALIASES["rate"]}:
        return "funding"
    if "price" in names and names & {"qty", *ALIASES["qty"]} and "open" not in names:
        return "trades"
    return "ohlcv"


def read_columns(path: Path) -> list[str]:
    """Column names of a CSV/Parquet file without reading its rows."""
    if path.suffix.lower() == ".parquet":
        try:
            return list(pl.read_parquet_schema(path))
        except (pl.exceptions.ComputeError, OSError) as exc:
            raise ImportFormatError(f"{path}: not a readable Parquet file: expected Parquet, found {exc}; "
                                    "export it again") from exc
    return _read(path, n_rows=1).columns  # the header (and one row), not the whole file


def symbol_from_filename(path: Path) -> str | None:
    """A native symbol such as ``BTCUSDT`` in a file name (``binance_um_BTCUSDT_1h_....parquet``)."""
    match = _NAME_SYMBOL.search(path.name)
    return match.group(1) if match else None


def infer_timeframe(ts: pl.Series) -> str:
    """Name the median step of a datetime series as a timeframe (``3600000`` ms -> ``"1h"``)."""
    steps = ts.sort().dt.epoch("ms").diff().drop_nulls()
    steps = steps.filter(steps > 0)
    return timeframe_of_step(None if steps.is_empty() else steps.median())


def median_of_counts(counts: dict[int, int]) -> float | None:
    """The median of the values counted in ``counts`` (value -> times seen) as polars computes it
    (the mean of the two middle values of an even count); None when empty."""
    total = sum(counts.values())
    if not total:
        return None
    middle: list[int] = []
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        while len(middle) < 2 and seen > ((total - 1) // 2, total // 2)[len(middle)]:
            middle.append(value)
    return (middle[0] + middle[1]) / 2


def timeframe_of_step(median: float | None) -> str:
    """Name a median candle step in ms as a timeframe (None: fewer than two candles)."""
    if median is None:
        raise SchemaError("cannot infer the timeframe from fewer than two candles; pass --timeframe")
    step = int(median)
    for unit, ms in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if step % ms == 0:
            return f"{step // ms}{unit}"
    raise SchemaError(f"median candle step {step} ms is not a whole number of seconds; the timestamps may "
                      "be in another unit (pass --ts-unit s/ms/us) or pass --timeframe")


def _check_options(dataset: str, ts_unit: str, exchange: str) -> None:
    get_schema(dataset)
    if ts_unit not in TS_UNITS:
        raise SchemaError(f"--ts-unit {ts_unit!r}: expected one of {', '.join(TS_UNITS)}")
    validate_exchange(exchange)


def column_exprs(raw_schema: pl.Schema, path: Path, dataset: str, mapping: dict[str, str] | None,
                 ts_unit: str) -> list[pl.Expr]:
    """The expressions that select the ``dataset`` columns of a file with columns ``raw_schema``.

    ``mapping`` (canonical -> file column) is completed with the file's canonical names and
    the :data:`ALIASES`; the time column is read in ``ts_unit``.
    """
    schema = get_schema(dataset)
    columns = list(raw_schema)
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(schema.column_names))
    if unknown:
        raise SchemaError(f"--map names {unknown}, which are not {dataset} columns; expected some of {schema.column_names}")
    for canonical in schema.column_names:
        if canonical not in mapping and canonical not in columns:
            alias = next((a for a in ALIASES.get(canonical, ()) if a in columns), None)
            if alias:
                mapping[canonical] = alias
    missing_sources = {k: v for k, v in mapping.items() if v not in columns}
    if missing_sources:
        pairs = ",".join(f"{k}={v}" for k, v in missing_sources.items())
        raise SchemaError(f"{path}: --map {pairs}: expected a column of the file, one of {columns}, found "
                          f"{sorted(missing_sources.values())}, which the file lacks; map to one of its columns")
    time_col = schema.time_column
    exprs = []
    for canonical, source in mapping.items():
        if canonical == time_col:
            exprs.append(_ts_expr(raw_schema[source], source, ts_unit, path).alias(canonical))
        else:
            exprs.append(pl.col(source).alias(canonical))
    kept = [c for c in schema.column_names if c in columns and c not in mapping]
    for column in kept:
        if column == time_col:
            exprs.append(_ts_expr(raw_schema[column], column, ts_unit, path).alias(column))
        else:
            exprs.append(pl.col(column))
    return exprs


def canonical_columns(raw: pl.DataFrame, exprs: list[pl.Expr], path: Path, dataset: str) -> pl.DataFrame:
    """``raw`` through :func:`column_exprs`, its integer times read as epoch-ms datetimes."""
    time_col = get_schema(dataset).time_column
    frame = raw.select(exprs)
    if time_col not in frame.columns:
        raise SchemaError(f"{path}: no time column; expected {time_col!r} or --map {time_col}=<column>; found {raw.columns}")
    if frame.schema[time_col] != pl.Datetime and frame.schema[time_col].is_integer():
        frame = frame.with_columns(pl.col(time_col).cast(pl.Datetime("ms", "UTC")))
    return frame


@reads_file("a market data CSV or Parquet file")
def load_generic(path: str | Path, *, dataset: str, exchange: str, symbol: str | None = None,
                 timeframe: str | None = None, price_type: str | None = None,
                 mapping: dict[str, str] | None = None, ts_unit: str = "ms") -> pl.DataFrame:
    """Read a CSV/Parquet file into the columns of ``dataset`` (nothing is written).

    Parameters
    ----------
    path : str or Path
        ``.csv`` or ``.parquet``.
    dataset : str
        Target dataset (``ohlcv``, ``funding``, ``trades``, ``markets``, ``risk_tiers``).
    exchange : str
        Exchange id when the file has no ``exchange`` column.
    symbol : str, optional
        Unified (``BTC/USDT:USDT``) or native (``BTCUSDT``) symbol when the file has none.
    timeframe, price_type : str, optional
        For ohlcv; the timeframe is inferred from the median step when omitted, the price
        type from the file (:mod:`data_loaders.price_type`: name, then volume), else ``last``.
    mapping : dict, optional
        Canonical column -> file column.
    ts_unit : {"ms", "us", "s", "ns", "auto"}
        Unit of integer timestamps.

    Returns
    -------
    polars.DataFrame
        The dataset's columns (not yet conformed or validated).
    """
    path = Path(path)
    _check_options(dataset, ts_unit, exchange)
    raw = _read(path)
    if raw.height == 0:
        raise ImportFormatError(f"{path}: expected at least one data row, found only the header "
                                f"{raw.columns}; export the file again with its rows")
    frame = canonical_columns(raw, column_exprs(raw.schema, path, dataset, mapping, ts_unit), path, dataset)
    return fill_constants(frame, path, dataset=dataset, exchange=exchange, symbol=symbol,
                          timeframe=timeframe, price_type=price_type)


def fill_constants(frame: pl.DataFrame, path: Path, *, dataset: str, exchange: str, symbol: str | None,
                   timeframe: str | None, price_type: str | None) -> pl.DataFrame:
    """Add the columns the file lacks (exchange, symbol, timeframe, price type) and map native symbols."""
    if "exchange" not in frame.columns:
        frame = frame.with_columns(exchange=pl.lit(exchange))
    if symbol is not None:
        unified = validate_symbol(symbol) if "/" in symbol else unified_symbol(symbol, exchange=exchange)
        frame = frame.with_columns(symbol=pl.lit(unified))
    elif "symbol" in frame.columns:
        natives = frame["symbol"].unique().to_list()
        lookup = {n: unified_symbol(str(n), exchange=exchange) for n in natives}
        frame = frame.with_columns(pl.col("symbol").replace_strict(lookup, return_dtype=pl.String))
    else:
        native = symbol_from_filename(path)
        if native is None:
            raise SchemaError(f"{path}: the file has no symbol column and its name holds no symbol "
                              "such as BTCUSDT; pass --symbol BTC/USDT:USDT")
        frame = frame.with_columns(symbol=pl.lit(unified_symbol(native, exchange=exchange)))
    if dataset == "ohlcv":
        if price_type is not None and price_type not in PRICE_TYPES:
            raise SchemaError(f"--price-type {price_type!r}: expected one of {', '.join(PRICE_TYPES)}")
        if "timeframe" not in frame.columns:
            tf = timeframe if timeframe is not None else infer_timeframe(frame["ts"])
            timeframe_ms(tf)
            frame = frame.with_columns(timeframe=pl.lit(tf))
        if "price_type" not in frame.columns:
            detected = price_type or price_type_from_name(path)
            has_prices = {"open", "high", "low", "close"} <= set(frame.columns)  # else conform names what is missing
            if detected is None and has_prices and has_no_volume(frame.get_column("volume") if "volume" in frame.columns else None):
                refuse_volumeless_last(path, "--price-type")
            detected = detected or "last"
            if detected != "last" and "volume" in frame.columns:
                frame = frame.with_columns(volume=pl.lit(None, dtype=pl.Float64))  # as the dump importer
            frame = frame.with_columns(price_type=pl.lit(detected))
    return frame


def import_generic(store, path: str | Path, *, dataset: str | None = None, exchange: str = "binanceusdm",
                   symbol: str | None = None, timeframe: str | None = None, price_type: str | None = None,
                   mapping: dict[str, str] | None = None, ts_unit: str = "ms", strict: bool = True,
                   replace: bool = False, block_bytes: int | None = None):
    """Import one generic CSV/Parquet file into ``store`` (see :func:`load_generic`).

    ``dataset`` defaults to :func:`infer_dataset` of the file's columns. A CSV of candles or
    funding of one market in time order is streamed block by block (``block_bytes`` of CSV at a
    time; :mod:`data_loaders.generic_stream`), so its peak memory does not grow with the file;
    other files are read whole. The stored result is the same either way.

    Returns
    -------
    ImportResult
    """
    from data_loaders.generic_stream import import_csv_streamed
    from data_loaders.store import ImportResult, store_checked

    path = Path(path)
    with import_errors(path, f"a {dataset or 'market data'} CSV or Parquet file"):
        dataset = dataset or infer_dataset(read_columns(path))
        _check_options(dataset, ts_unit, exchange)
        streamed = import_csv_streamed(store, path, dataset=dataset, exchange=exchange, symbol=symbol,
                                       timeframe=timeframe, price_type=price_type, mapping=mapping,
                                       ts_unit=ts_unit, strict=strict, replace=replace, block_bytes=block_bytes)
        if streamed is not None:
            write, market = streamed
            return ImportResult(path, dataset, exchange, market["symbol"], market.get("timeframe"),
                                market.get("price_type"), write.rows_read, write.write, write.warnings)
        frame = load_generic(path, dataset=dataset, exchange=exchange, symbol=symbol, timeframe=timeframe,
                             price_type=price_type, mapping=mapping, ts_unit=ts_unit)
        first_line = 2 if path.suffix.lower() == ".csv" else None
        result, warnings = store_checked(store, dataset, frame, path=path, strict=strict, replace=replace,
                                         source=f"file:{path.name}", first_line=first_line)
    symbols = ",".join(sorted(frame["symbol"].unique().to_list()))
    return ImportResult(path, dataset, exchange, symbols,
                        frame["timeframe"][0] if dataset == "ohlcv" else None,
                        frame["price_type"][0] if dataset == "ohlcv" else None,
                        frame.height, result, warnings)
