"""Canonical datasets: their columns (CONTRACTS §3), keys, partitions and conformance.

:func:`conform` turns any frame holding a dataset's columns into the canonical column
order and types (timestamps become ``Datetime("ms", "UTC")``; integer timestamps are read
as epoch milliseconds). It is the single place that knows the schemas.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from data_loaders.errors import SchemaError

TS = pl.Datetime("ms", "UTC")
PRICE_TYPES = ("last", "mark", "index")
CONTRACT_TYPES = ("linear", "inverse")
TRADE_SIDES = ("buy", "sell")

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_TIMEFRAME_RE = re.compile(r"^([1-9][0-9]{0,3})([smhdw])$")


@dataclass(frozen=True)
class DatasetSchema:
    """Description of one canonical dataset.

    Attributes
    ----------
    name : str
        Dataset name (``ohlcv``, ``funding`` ...), also the store's top folder.
    columns : tuple of (str, polars.DataType)
        Canonical columns, in order.
    keys : tuple of str
        De-duplication key within a partition (the newer write wins).
    time_column : str
        Column that orders the rows and decides the year partition.
    partitions : tuple of str
        Columns that become hive folders before the year (``symbol`` is stored as
        ``symbol_key``).
    price_columns : tuple of str
        Columns that must be finite and > 0.
    nullable : tuple of str
        Columns allowed to hold nulls.
    file_period : str
        ``"year"`` (one file per year) or ``"day"`` (one file per day, for trades).
    """

    name: str
    columns: tuple[tuple[str, pl.DataType], ...]
    keys: tuple[str, ...]
    time_column: str
    partitions: tuple[str, ...]
    price_columns: tuple[str, ...]
    nullable: tuple[str, ...] = ()
    file_period: str = "year"

    @property
    def column_names(self) -> list[str]:
        """Canonical column names in order."""
        return [name for name, _ in self.columns]

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        """Column name -> polars dtype."""
        return dict(self.columns)


_ID = (("exchange", pl.String()), ("symbol", pl.String()))

SCHEMAS: dict[str, DatasetSchema] = {
    "ohlcv": DatasetSchema(
        name="ohlcv",
        columns=(*_ID, ("timeframe", pl.String()), ("price_type", pl.String()), ("ts", TS),
                 ("open", pl.Float64()), ("high", pl.Float64()), ("low", pl.Float64()),
                 ("close", pl.Float64()), ("volume", pl.Float64())),
        keys=("symbol", "timeframe", "price_type", "ts"),
        time_column="ts",
        partitions=("exchange", "symbol", "timeframe", "price_type"),
        price_columns=("open", "high", "low", "close"),
        nullable=("volume",),
    ),
    "funding": DatasetSchema(
        name="funding",
        columns=(*_ID, ("ts", TS), ("rate", pl.Float64()), ("interval_hours", pl.Float64()),
                 ("mark_price", pl.Float64())),
        keys=("symbol", "ts"),
        time_column="ts",
        partitions=("exchange", "symbol"),
        price_columns=("mark_price",),
        nullable=("mark_price",),
    ),
    "risk_tiers": DatasetSchema(
        name="risk_tiers",
        columns=(*_ID, ("effective_from", TS), ("tier", pl.Int32()),
                 ("notional_floor", pl.Float64()), ("notional_cap", pl.Float64()),
                 ("max_leverage", pl.Float64()), ("maint_margin_rate", pl.Float64()),
                 ("maint_amount", pl.Float64())),
        keys=("symbol", "effective_from", "tier"),
        time_column="effective_from",
        partitions=("exchange", "symbol"),
        price_columns=(),
    ),
    "markets": DatasetSchema(
        name="markets",
        columns=(*_ID, ("effective_from", TS), ("base", pl.String()), ("quote", pl.String()),
                 ("settle", pl.String()), ("contract_type", pl.String()),
                 ("contract_size", pl.Float64()), ("tick_size", pl.Float64()),
                 ("lot_size", pl.Float64()), ("min_qty", pl.Float64()),
                 ("min_notional", pl.Float64()), ("maker_fee", pl.Float64()),
                 ("taker_fee", pl.Float64()), ("liquidation_fee_rate", pl.Float64())),
        keys=("symbol", "effective_from"),
        time_column="effective_from",
        partitions=("exchange", "symbol"),
        price_columns=("contract_size", "tick_size", "lot_size"),
    ),
    "trades": DatasetSchema(
        name="trades",
        columns=(*_ID, ("ts", TS), ("price", pl.Float64()), ("qty", pl.Float64()),
                 ("side", pl.String()), ("trade_id", pl.Int64())),
        keys=("symbol", "trade_id"),
        time_column="ts",
        partitions=("exchange", "symbol"),
        price_columns=("price", "qty"),
        file_period="day",
    ),
}

DATASETS: tuple[str, ...] = tuple(SCHEMAS)


def get_schema(dataset: str) -> DatasetSchema:
    """Return the schema of ``dataset`` or raise :class:`SchemaError` naming the choices."""
    try:
        return SCHEMAS[dataset]
    except KeyError:
        raise SchemaError(
            f"dataset {dataset!r}: expected one of {', '.join(DATASETS)}"
        ) from None


def timeframe_ms(timeframe: str) -> int:
    """Length of a candle timeframe in milliseconds (``"1m"`` -> 60000).

    Supported units: ``s``, ``m``, ``h``, ``d``, ``w`` (calendar months are not fixed-length
    and are rejected).
    """
    match = _TIMEFRAME_RE.match(timeframe) if isinstance(timeframe, str) else None
    if not match:
        raise SchemaError(
            f"timeframe {timeframe!r}: expected a number and a unit s/m/h/d/w such as "
            "'1m', '5m', '1h', '4h', '1d'"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def to_ms(value: object, *, naive: str = "utc") -> int:
    """Convert an ``int`` (epoch ms), ``datetime`` or ISO string to epoch milliseconds (UTC).

    Naive datetimes and strings without an offset are read as UTC (``naive="utc"``) or
    refused (``naive="reject"``, for inputs where a missing zone is more likely a mistake).
    """
    from datetime import datetime, timezone

    if isinstance(value, bool):
        raise SchemaError(f"time {value!r}: expected epoch ms, a datetime or an ISO date")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise SchemaError(
                f"time {value!r}: expected an ISO date such as '2020-03-12' or "
                "'2020-03-12T00:00:00Z'"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            if naive == "reject":
                raise SchemaError(f"time {value.isoformat()}: naive datetime; give it a UTC time zone "
                                  "(e.g. 2022-11-09T14:00Z)")
            value = value.replace(tzinfo=timezone.utc)
        return int(round(value.timestamp() * 1000))
    raise SchemaError(f"time {value!r}: expected epoch ms, a datetime or an ISO date")


def conform(dataset: str, frame: pl.DataFrame, *, subject: str | None = None) -> pl.DataFrame:
    """Return ``frame`` with exactly the canonical columns of ``dataset``, in order and typed.

    Integer timestamp columns are read as epoch milliseconds; datetimes of any unit or zone
    are converted to UTC milliseconds. Funding ``ts`` is rounded to the nearest second,
    because venues stamp settlements a few ms after the hour and the same settlement must
    de-duplicate across sources. Nullable columns that are absent are added as nulls.

    ``subject`` (e.g. the imported file's path) is named in errors; default ``"<dataset> frame"``.

    Raises
    ------
    SchemaError
        When a required column is missing or cannot be cast.
    """
    schema = get_schema(dataset)
    subject = subject or f"{dataset} frame"
    missing = [c for c in schema.column_names if c not in frame.columns and c not in schema.nullable]
    if missing:
        raise SchemaError(
            f"{subject}: missing column(s) {missing}; expected the {dataset} columns {schema.column_names}, "
            f"found {frame.columns}; rename them or pass a column mapping (--map ts=open_time,...)"
        )
    exprs: list[pl.Expr] = []
    for name, dtype in schema.columns:
        if name not in frame.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        source = frame.schema[name]
        col = pl.col(name)
        if dtype == TS:
            if isinstance(source, pl.Datetime):
                col = col.dt.convert_time_zone("UTC") if source.time_zone else col.dt.replace_time_zone("UTC")
                col = col.dt.cast_time_unit("ms")
            elif source.is_integer():
                col = col.cast(pl.Int64).cast(TS)
            elif source == pl.String:
                col = col.str.to_datetime(time_zone="UTC", time_unit="ms")
            else:
                raise SchemaError(
                    f"{dataset} column {name!r}: expected epoch-ms integers or datetimes, "
                    f"found {source}"
                )
            exprs.append(col.alias(name))
        else:
            exprs.append(col.cast(dtype, strict=True).alias(name))
    try:
        out = frame.select(exprs)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise SchemaError(
            f"{subject}: expected {dataset} columns of types {schema.polars_schema}, found a value that "
            f"cannot be read as its column's type ({str(exc).splitlines()[0]}); fix those values at the source"
        ) from exc
    if dataset == "funding":
        out = out.with_columns(pl.col("ts").dt.round("1s"))
    return out


_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def utf8_text(data: bytes, *, subject: object) -> bytes:
    """CSV bytes as UTF-8 without a byte-order mark (UTF-8 BOM and UTF-16 files are re-encoded).

    Spreadsheet exports often start with a BOM (Excel "CSV UTF-8") or are UTF-16 ("Unicode
    text"); the CSV parsers need plain UTF-8. Text that is none of these is refused.

    Raises
    ------
    SchemaError
        When the bytes are not text in any of those encodings.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding).encode("utf-8")
            except UnicodeDecodeError as exc:
                raise SchemaError(f"{subject}: expected {encoding} text after its byte-order mark, found bytes "
                                  f"that are not ({exc.reason} at byte {exc.start}); export the file again") from exc
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"{subject}: expected UTF-8 (or UTF-16 with a byte-order mark) CSV text, found a byte that is not "
            f"text at offset {exc.start}; the file is binary or in another encoding: export it as UTF-8 CSV"
        ) from exc
    return data
