"""Importer for Binance public-data dumps (https://data.binance.vision) — CSV or zip.

Supported kinds and their columns (Binance's published formats; files since ~2022 carry a
header row, older ones and spot files do not — both are accepted):

=================  ========  ==========================================================
kind               dataset   columns
=================  ========  ==========================================================
klines             ohlcv     open_time, open, high, low, close, volume, close_time,
markPriceKlines              quote_volume, count, taker_buy_volume,
indexPriceKlines             taker_buy_quote_volume, ignore   (12)
fundingRate        funding   calc_time, funding_interval_hours, last_funding_rate  (3)
aggTrades          trades    agg_trade_id, price, quantity, first_trade_id, last_trade_id,
                             transact_time, is_buyer_maker [, is_best_match (spot)]  (7/8)
=================  ========  ==========================================================

Names follow Binance's tree, e.g.
``futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2020-03.zip``,
``futures/um/monthly/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-2020-03.zip``,
``futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2020-03.zip``,
``futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2020-03-01.zip``.
Symbol, timeframe and kind come from the name (kind from the folder, since candle files of
every price type share one naming pattern; default ``klines``); the exchange from the
``futures/um`` / ``futures/cm`` / ``spot`` folders (default ``binanceusdm``). Flags override.

Timestamps are detected per value by magnitude: milliseconds (13 digits) or microseconds
(16 digits; Binance switched spot dumps to microseconds on 2025-01-01). Seconds are refused.
A ``.CHECKSUM`` file next to a zip (Binance publishes one per file) is verified.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from data_loaders.errors import ImportFormatError, import_errors, reads_file
from data_loaders.price_type import has_no_volume, price_type_from_name, refuse_volumeless_last
from data_loaders.schemas import timeframe_ms, utf8_text
from data_loaders.store import sha256_file
from data_loaders.symbols import unified_symbol, validate_exchange, validate_symbol

KINDS = {"klines": ("ohlcv", "last"), "markPriceKlines": ("ohlcv", "mark"),
         "indexPriceKlines": ("ohlcv", "index"), "fundingRate": ("funding", None),
         "aggTrades": ("trades", None)}
BINANCE_EXCHANGES = ("binanceusdm", "binancecoinm", "binance")
KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                 "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")
FUNDING_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")
AGG_COLUMNS = ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
               "transact_time", "is_buyer_maker", "is_best_match")

_DTYPES: dict[str, pl.DataType] = {
    "open_time": pl.Int64(), "close_time": pl.Int64(), "count": pl.Int64(), "ignore": pl.String(),
    "calc_time": pl.Int64(), "agg_trade_id": pl.Int64(), "first_trade_id": pl.Int64(),
    "last_trade_id": pl.Int64(), "transact_time": pl.Int64(), "is_buyer_maker": pl.String(),
    "is_best_match": pl.String(),
}
_CANDLE_NAME = re.compile(r"^(?P<sym>[A-Z0-9_]+)-(?P<tf>[0-9]+[smhdw])-(?P<date>\d{4}-\d{2}(?:-\d{2})?)$")
_KIND_NAME = re.compile(r"^(?P<sym>[A-Z0-9_]+)-(?P<kind>fundingRate|aggTrades|trades|bookTicker|"
                        r"metrics|bookDepth)-(?P<date>\d{4}-\d{2}(?:-\d{2})?)$")
_SUPPORTED_TEXT = ", ".join(KINDS)


@dataclass(frozen=True)
class DumpSpec:
    """What a dump file holds, inferred from its path and the override flags."""

    kind: str
    dataset: str
    exchange: str
    symbol: str
    timeframe: str | None
    price_type: str | None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".zip", ".csv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def infer_spec(path: Path, *, kind: str | None = None, symbol: str | None = None,
               timeframe: str | None = None, price_type: str | None = None,
               exchange: str | None = None) -> DumpSpec:
    """Infer kind, exchange, symbol, timeframe and price type of a dump from its path.

    Flags given explicitly win over the name. ``price_type`` overrides the kind's (e.g. a
    klines file renamed by hand that holds mark prices: ``kind="klines", price_type="mark"``).

    Raises
    ------
    ImportFormatError
        When the name does not follow Binance's pattern and no flag fills the gap.
    """
    stem = _stem(path)
    candle, other = _CANDLE_NAME.match(stem), _KIND_NAME.match(stem)
    folder_kind = next((p for p in reversed(path.parts[:-1]) if p in KINDS or p == "premiumIndexKlines"), None)
    if kind is None:
        kind = other.group("kind") if other else folder_kind or ("klines" if candle else None)
    if kind not in KINDS:
        found = kind or f"a name that is not Binance's ({path.name})"
        raise ImportFormatError(
            f"{path}: expected a Binance dump of kind {_SUPPORTED_TEXT}, found {found}; pass "
            "--kind, or use --map for a generic CSV/Parquet file"
        )
    dataset, kind_price = KINDS[kind]
    if kind == "klines" and price_type is None:
        kind_price = price_type_from_name(path) or kind_price
    if exchange is None:
        parts = [p.lower() for p in path.parts]
        exchange = ("binancecoinm" if "cm" in parts and "futures" in parts
                    else "binance" if "spot" in parts else "binanceusdm")
    validate_exchange(exchange)
    if exchange not in BINANCE_EXCHANGES:
        raise ImportFormatError(
            f"{path}: exchange {exchange!r} is not a Binance venue; expected one of "
            f"{', '.join(BINANCE_EXCHANGES)} for data.binance.vision dumps"
        )
    native = (candle or other).group("sym") if (candle or other) else None
    if symbol is None:
        if native is None:
            raise ImportFormatError(f"{path}: cannot read the symbol from the name; pass --symbol BTC/USDT:USDT")
        symbol = unified_symbol(native, exchange=exchange)
    else:
        symbol = validate_symbol(symbol) if "/" in symbol else unified_symbol(symbol, exchange=exchange)
    if dataset == "ohlcv":
        if timeframe is None:
            if not candle:
                raise ImportFormatError(f"{path}: cannot read the timeframe from the name; pass --timeframe 1m")
            timeframe = candle.group("tf")
        timeframe_ms(timeframe)
        price_type = price_type or kind_price
    else:
        timeframe, price_type = None, None
    return DumpSpec(kind, dataset, exchange, symbol, timeframe, price_type)


#: Bytes read at a time when a plain CSV is checked for UTF-8 (the file is never held whole).
_CHUNK_BYTES = 8 << 20


def _plain_utf8_file(path: Path) -> bool:
    """True when ``path`` is UTF-8 without a byte-order mark, checked chunk by chunk.

    Such a file is handed to the CSV reader by name (it maps the file) instead of being read
    into memory, decoded, and copied again; a file with a BOM or not UTF-8 returns False and
    goes through :func:`data_loaders.schemas.utf8_text`, which re-encodes or refuses it.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        head = handle.read(4)
        if any(head.startswith(bom) for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
            return False
        chunk = head
        try:
            while chunk:
                # ASCII (every Binance dump) is UTF-8: a scan 4x cheaper than decoding, unless a
                # multi-byte character began at the end of the previous chunk
                if not chunk.isascii() or decoder.getstate()[0]:
                    decoder.decode(chunk)
                chunk = handle.read(_CHUNK_BYTES)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def read_csv_source(path: Path) -> bytes | Path:
    """The CSV of a dump: the file's path (plain UTF-8), or its bytes (a zip member, a BOM).

    A zip must hold exactly one CSV named like the zip (Binance's convention); a sibling
    ``<zip>.CHECKSUM`` file, when present, must match the zip's SHA-256.
    """
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file")
    if path.suffix.lower() != ".zip":
        return path if _plain_utf8_file(path) else utf8_text(path.read_bytes(), subject=path)
    checksum_file = path.with_name(path.name + ".CHECKSUM")
    if checksum_file.exists():
        expected = _checksum(checksum_file)
        found = sha256_file(path)
        if expected != found:
            raise ImportFormatError(
                f"{path}: sha256 {found} differs from {checksum_file.name} ({expected}); the "
                "download is corrupt or truncated: download it again"
            )
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            wanted = _stem(path) + ".csv"
            if members != [wanted]:
                raise ImportFormatError(
                    f"{path}: expected one member {wanted!r}, found {members}; this zip does not "
                    "hold the file its name promises: download it again or import the CSV itself"
                )
            info = archive.getinfo(wanted)
            if info.flag_bits & 0x1:
                raise ImportFormatError(
                    f"{path}: member {wanted!r} is encrypted; expected a plain zip as data.binance.vision "
                    "publishes it: download it again, or unzip it yourself and import the CSV"
                )
            try:
                return utf8_text(archive.read(wanted), subject=f"{path} member {wanted}")
            except NotImplementedError as exc:  # compression method zipfile cannot read (e.g. deflate64)
                raise ImportFormatError(
                    f"{path}: member {wanted!r} uses a compression method that cannot be read "
                    f"(compress_type {info.compress_type}: {exc}); expected deflate or stored: unzip it with "
                    "another tool and import the CSV itself"
                ) from exc
    except (zipfile.BadZipFile, EOFError, zlib_error()) as exc:
        raise ImportFormatError(
            f"{path}: expected a zip archive, found one that is not readable ({exc}); the download is "
            "truncated or corrupt: download it again"
        ) from exc


def _checksum(checksum_file: Path) -> str:
    """The hex SHA-256 in a Binance ``.CHECKSUM`` file (``<64 hex>  <name>``)."""
    text = checksum_file.read_bytes().decode("ascii", errors="replace").strip()
    digest = text.split()[0].lower() if text else ""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        found = "an empty file" if not text else f"{text[:40]!r}"
        raise ImportFormatError(
            f"{checksum_file}: expected a SHA-256 checksum (64 hex digits, then the file name), found "
            f"{found}; download the .CHECKSUM file again, or delete it to import without the check"
        )
    return digest


def zlib_error() -> type[Exception]:
    """``zlib.error`` (raised by a zip with a damaged deflate stream)."""
    import zlib

    return zlib.error


def _first_line(data: bytes) -> list[str]:
    text = data[: 4096].decode("utf-8", errors="replace").splitlines()
    return next(csv.reader(text[:1]), []) if text else []


def _to_ms(raw: pl.Expr) -> pl.Expr:
    """Epoch ms from ms or us integers (per value, by magnitude); seconds/ns become null."""
    return (pl.when((raw >= 100_000_000_000) & (raw < 100_000_000_000_000)).then(raw)
            .when((raw >= 100_000_000_000_000) & (raw < 100_000_000_000_000_000)).then(raw // 1000)
            .otherwise(None))


def _head(source: bytes | Path, size: int = 4096) -> bytes:
    """The first ``size`` bytes of the CSV."""
    if isinstance(source, bytes):
        return source[:size]
    with open(source, "rb") as handle:
        return handle.read(size)


def parse(data: bytes | Path, spec: DumpSpec, *, path: Path,
          block_bytes: int | None = None) -> tuple[pl.DataFrame, int]:
    """Parse a dump CSV (bytes, or a plain UTF-8 file by path) into a canonical frame.

    Returns
    -------
    (polars.DataFrame, int)
        Canonical rows and the file line number of the first data row (1-based).
    """
    first_line, blocks = _parse_blocks(data, spec, path=path, block_bytes=block_bytes)
    frames = list(blocks)  # only the canonical columns of each block (the constants are added once)
    rows = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical", rechunk=False)
    order = [*_constants(spec), *rows.columns]
    return _with_constants(rows, spec).select(order), first_line


def parse_chunks(data: bytes | Path, spec: DumpSpec, *, path: Path,
                 block_bytes: int | None = None) -> tuple[int, Iterator[pl.DataFrame]]:
    """The rows of :func:`parse` block by block (the streamed import's input).

    Returns
    -------
    (int, iterator of polars.DataFrame)
        The file line of the first data row, and the canonical rows of each block of about
        ``block_bytes`` of CSV (default :data:`PARSE_BLOCK_BYTES`), in file order. A bad line
        raises when its block is reached.
    """
    first_line, blocks = _parse_blocks(data, spec, path=path, block_bytes=block_bytes)
    order = None

    def with_constants() -> Iterator[pl.DataFrame]:
        nonlocal order
        for frame in blocks:
            order = order or [*_constants(spec), *frame.columns]
            yield _with_constants(frame, spec).select(order)

    return first_line, with_constants()


def _parse_blocks(data: bytes | Path, spec: DumpSpec, *, path: Path,
                  block_bytes: int | None) -> tuple[int, Iterator[pl.DataFrame]]:
    """Check the first line, then parse block by block: the first data line and the blocks' rows.

    The rows of each block are canonical but for the file's constant columns (exchange,
    symbol, ...), which the callers add once (:func:`_with_constants`).
    """
    first = _first_line(_head(data))
    if not first:
        raise ImportFormatError(f"{path}: the file is empty; expected a {spec.kind} CSV")
    has_header = not first[0].strip().lstrip("-").isdigit()
    names = {"ohlcv": KLINE_COLUMNS, "funding": FUNDING_COLUMNS, "trades": AGG_COLUMNS}[spec.dataset]
    allowed = {"ohlcv": (12,), "funding": (3,), "trades": (7, 8)}[spec.dataset]
    if len(first) not in allowed:
        hint = _guess_kind(first) if has_header else None
        raise ImportFormatError(
            f"{path}: expected {' or '.join(map(str, allowed))} columns for a {spec.kind} dump, found "
            f"{len(first)} ({','.join(first[:13])}){'; it looks like a ' + hint + ' file: pass --kind ' + hint if hint else ''}; "
            "if it is not a Binance dump, import it with --map"
        )
    columns = list(names[: len(first)])
    schema = {c: _DTYPES.get(c, pl.Float64) for c in columns}
    first_line = 2 if has_header else 1
    return first_line, _block_rows(data, spec, path, columns, schema, has_header, first_line, block_bytes)


def _block_rows(data: bytes | Path, spec: DumpSpec, path: Path, columns: list[str], schema: dict,
                has_header: bool, first_line: int, block_bytes: int | None) -> Iterator[pl.DataFrame]:
    line = first_line
    rows = 0
    # Parsed block by block (whole lines of about PARSE_BLOCK_BYTES): only one block's raw
    # columns exist at a time and only the canonical columns are kept, so the peak memory is
    # the canonical rows plus one block, not the file's 12 raw columns (nor the file mapped).
    for number, block in enumerate(_blocks(data, size=block_bytes)):
        try:
            # the header stays in the first block: polars checks it against the schema as before
            raw = pl.read_csv(io.BytesIO(block), has_header=has_header and number == 0, raise_if_empty=False,
                              schema=schema)
        except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as exc:
            whole = data.read_bytes() if isinstance(data, Path) else data  # only on a failure: name the odd line
            raise ImportFormatError(
                f"{path}: expected a {spec.kind} CSV of {len(columns)} columns ({', '.join(columns)}) holding "
                f"numbers, found a line it cannot read ({str(exc).splitlines()[0]}{_odd_line(whole, len(columns))}); "
                "the file is truncated, has extra columns or is another kind: check it or pass --kind"
            ) from exc
        _refuse_ragged(raw, path, line)
        frame = _canonical(raw, spec)
        _refuse_bad_time(frame, raw, spec, path, line)
        line += raw.height
        rows += raw.height
        del raw
        if frame.height:
            yield frame.drop(_constants(spec))
    if not rows:
        raise ImportFormatError(f"{path}: expected at least one data row, found only the header; "
                                "download the file again (an import of zero rows is a mistake)")


#: Bytes of CSV parsed at once by :func:`parse` (whole lines; the last block takes the rest).
PARSE_BLOCK_BYTES = 8 * 1024 * 1024


def _blocks(data: bytes | Path, *, size: int | None = None):
    """Yield the CSV's lines in blocks of about ``size`` bytes, each ending at a line end.

    A block ends after its last newline (the partial line is carried into the next block), so
    no line is split.
    """
    size = size or PARSE_BLOCK_BYTES
    if isinstance(data, bytes):
        start = 0
        # bytes input (a zip member, a re-encoded file) is in memory already: slice it by lines
        view = memoryview(data)
        while start < len(data):
            cut = data.rfind(b"\n", start, start + size) + 1 if start + size < len(data) else len(data)
            if cut <= start:  # one line longer than a block
                cut = data.find(b"\n", start + size) + 1 or len(data)
            yield bytes(view[start:cut])
            start = cut
        return
    with open(data, "rb") as handle:
        tail = b""
        while True:
            chunk = handle.read(size)
            if not chunk:
                if tail:
                    yield tail
                return
            chunk = tail + chunk
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:
                tail = chunk
                continue
            tail = chunk[cut:]
            yield chunk[:cut]


def _odd_line(data: bytes, width: int) -> str:
    """Name the first line whose field count differs (only runs when parsing already failed)."""
    for number, fields in enumerate(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))), 1):
        if fields and len(fields) != width:
            return f"; line {number} has {len(fields)} fields, expected {width}"
    return ""


def _guess_kind(header: list[str]) -> str | None:
    if header[:1] == ["calc_time"]:
        return "fundingRate"
    if header[:1] == ["agg_trade_id"]:
        return "aggTrades"
    if header[:1] == ["open_time"]:
        return "klines"
    return None


def _refuse_ragged(raw: pl.DataFrame, path: Path, first_line: int) -> None:
    """A short last line (a truncated download) parses as nulls: refuse it, naming the lines."""
    needed = [c for c in raw.columns if c not in ("ignore", "is_best_match")]
    bad = raw.with_row_index("_row").filter(pl.any_horizontal([pl.col(c).is_null() for c in needed]))["_row"]
    if len(bad):
        lines = ", ".join(str(r + first_line) for r in bad.head(5).to_list())
        raise ImportFormatError(
            f"{path}: {len(bad)} line(s) have missing fields (lines {lines}); expected "
            f"{len(raw.columns)} values per line; the file looks truncated: download it again"
        )


def _constants(spec: DumpSpec) -> list[str]:
    """The canonical columns that hold one value for the whole file (from the spec, not the rows)."""
    return ["exchange", "symbol", *(("timeframe", "price_type") if spec.dataset == "ohlcv" else ())]


def _with_constants(frame: pl.DataFrame, spec: DumpSpec) -> pl.DataFrame:
    """Add the file's constant columns as broadcast literals (polars stores one value, not one per row)."""
    values = {"exchange": spec.exchange, "symbol": spec.symbol, "timeframe": spec.timeframe,
              "price_type": spec.price_type}
    return frame.with_columns(pl.lit(values[c]).alias(c) for c in _constants(spec))


def _canonical(raw: pl.DataFrame, spec: DumpSpec) -> pl.DataFrame:
    ident = [pl.lit(spec.exchange).alias("exchange"), pl.lit(spec.symbol).alias("symbol")]
    if spec.dataset == "ohlcv":
        volume = pl.col("volume") if spec.price_type == "last" else pl.lit(None, dtype=pl.Float64)
        return raw.select(*ident, pl.lit(spec.timeframe).alias("timeframe"),
                          pl.lit(spec.price_type).alias("price_type"),
                          _to_ms(pl.col("open_time")).alias("ts"), "open", "high", "low", "close",
                          volume.alias("volume"))
    if spec.dataset == "funding":
        return raw.select(*ident, _to_ms(pl.col("calc_time")).alias("ts"),
                          pl.col("last_funding_rate").cast(pl.Float64).alias("rate"),
                          pl.col("funding_interval_hours").cast(pl.Float64).alias("interval_hours"),
                          pl.lit(None, dtype=pl.Float64).alias("mark_price"))
    maker = pl.col("is_buyer_maker").str.to_lowercase().str.strip_chars()
    return raw.select(*ident, _to_ms(pl.col("transact_time")).alias("ts"),
                      pl.col("price").cast(pl.Float64), pl.col("quantity").cast(pl.Float64).alias("qty"),
                      pl.when(maker == "true").then(pl.lit("sell")).when(maker == "false")
                      .then(pl.lit("buy")).otherwise(None).alias("side"),
                      pl.col("agg_trade_id").cast(pl.Int64).alias("trade_id"))


def _refuse_bad_time(frame: pl.DataFrame, raw: pl.DataFrame, spec: DumpSpec, path: Path,
                     first_line: int) -> None:
    bad = frame.with_row_index("_row").filter(pl.col("ts").is_null())["_row"]
    if len(bad):
        column = {"ohlcv": "open_time", "funding": "calc_time", "trades": "transact_time"}[spec.dataset]
        sample = raw[column][int(bad[0])]
        lines = ", ".join(str(r + first_line) for r in bad.head(5).to_list())
        raise ImportFormatError(
            f"{path}: expected {column} in epoch milliseconds (13 digits) or microseconds (16 digits), "
            f"found {len(bad)} value(s) that are neither, e.g. {sample} on line {lines.split(',')[0]} (lines {lines}); "
            "seconds or nanoseconds are not Binance units: import such a file with "
            "--map ts=<column> --ts-unit s"
        )


#: How to tell a candle file without volume what it holds (the refusal names it).
_VOLUMELESS_HOW = "--kind markPriceKlines / indexPriceKlines, or --price-type"


def _volume_decides(spec: DumpSpec, kind: str | None, price_type: str | None) -> bool:
    """True when only the volume can tell last-price candles from mark/index ones (nothing said)."""
    # markPriceKlines/indexPriceKlines files are named like klines; only the folder tells them apart
    return spec.price_type == "last" and kind is None and price_type is None


@reads_file("a Binance data.binance.vision dump (.zip or .csv)")
def load_dump(path: Path, *, kind: str | None = None, symbol: str | None = None,
              timeframe: str | None = None, price_type: str | None = None,
              exchange: str | None = None, block_bytes: int | None = None) -> tuple[DumpSpec, pl.DataFrame, int]:
    """Infer, read and parse one dump file (nothing is written).

    Returns
    -------
    (DumpSpec, polars.DataFrame, int)
        The spec, the canonical frame and the file line of its first row.
    """
    path = Path(path)
    spec = infer_spec(path, kind=kind, symbol=symbol, timeframe=timeframe, price_type=price_type,
                      exchange=exchange)
    frame, first_line = parse(read_csv_source(path), spec, path=path, block_bytes=block_bytes)
    if _volume_decides(spec, kind, price_type) and has_no_volume(frame["volume"]):
        refuse_volumeless_last(path, _VOLUMELESS_HOW)
    return spec, frame, first_line


def import_dump(store, path: str | Path, *, kind: str | None = None, symbol: str | None = None,
                timeframe: str | None = None, price_type: str | None = None,
                exchange: str | None = None, strict: bool = True, replace: bool = False,
                block_bytes: int | None = None):
    """Import one Binance dump file into ``store``.

    Candles and funding are streamed block by block through the check and into the store
    (:func:`data_loaders.store_stream.store_stream`), so the peak memory is a block plus one
    stored year, whatever the file's size; a file that cannot be streamed (rows out of time
    order) and trades are read whole. The stored result is the same either way.

    Parameters
    ----------
    store : MarketStore
        Destination.
    path : str or Path
        ``.zip`` or ``.csv`` in Binance's format.
    kind, symbol, timeframe, price_type, exchange : str, optional
        Overrides of what the path says (``symbol`` may be ``BTCUSDT`` or ``BTC/USDT:USDT``).
    strict : bool, default True
        Refuse the file on any data-quality error (nothing written); False drops bad rows.
    replace : bool, default False
        Allow the file to change stored rows (otherwise such an import is refused).
    block_bytes : int, optional
        Bytes of CSV parsed and checked at a time (default :data:`PARSE_BLOCK_BYTES`).

    Returns
    -------
    ImportResult
    """
    from data_loaders.quality_stream import STREAMED_DATASETS
    from data_loaders.store import ImportResult, store_checked

    path = Path(path)
    with import_errors(path, "a Binance data.binance.vision dump (.zip or .csv)"):
        spec = infer_spec(path, kind=kind, symbol=symbol, timeframe=timeframe, price_type=price_type,
                          exchange=exchange)
        if spec.dataset in STREAMED_DATASETS:
            streamed = _import_streamed(store, path, spec, strict=strict, replace=replace, block_bytes=block_bytes,
                                        check_volume=_volume_decides(spec, kind, price_type))
            if streamed is not None:
                return ImportResult(path, spec.dataset, spec.exchange, spec.symbol, spec.timeframe,
                                    spec.price_type, streamed.rows_read, streamed.write, streamed.warnings)
        spec, frame, first_line = load_dump(path, kind=kind, symbol=symbol, timeframe=timeframe,
                                            price_type=price_type, exchange=exchange, block_bytes=block_bytes)
        result, warnings = store_checked(store, spec.dataset, frame, path=path, strict=strict, replace=replace,
                                         source=f"binance-dump:{path.name}", first_line=first_line)
    return ImportResult(path, spec.dataset, spec.exchange, spec.symbol, spec.timeframe, spec.price_type,
                        frame.height, result, warnings)


def _import_streamed(store, path: Path, spec: DumpSpec, *, strict: bool, replace: bool, block_bytes: int | None,
                     check_volume: bool):
    """Stream the file's blocks into the store; None when it must be imported whole (nothing written)."""
    from data_loaders.store_stream import store_stream

    first_line, chunks = parse_chunks(read_csv_source(path), spec, path=path, block_bytes=block_bytes)
    seen_volume = False

    def watched() -> Iterator[pl.DataFrame]:
        nonlocal seen_volume
        for chunk in chunks:
            seen_volume = seen_volume or not has_no_volume(chunk["volume"])
            yield chunk

    def refuse_without_volume() -> None:
        if not seen_volume:  # the same rule as load_dump's, over every block
            refuse_volumeless_last(path, _VOLUMELESS_HOW)

    return store_stream(store, spec.dataset, watched() if check_volume else chunks, path=path,
                        source=f"binance-dump:{path.name}", strict=strict, replace=replace, first_line=first_line,
                        before_commit=refuse_without_volume if check_volume else None)
