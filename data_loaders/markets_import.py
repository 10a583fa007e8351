"""Importer for contract specifications into the ``markets`` dataset.

Two JSON shapes are recognised automatically:

* **Binance** ``GET /fapi/v1/exchangeInfo`` body: ``{"serverTime": ms, "symbols": [{symbol,
  contractType, baseAsset, quoteAsset, marginAsset, liquidationFee, filters: [...]}]}``.
  Tick size = ``PRICE_FILTER.tickSize``, lot size = ``LOT_SIZE.stepSize``, minimum quantity =
  ``LOT_SIZE.minQty``, minimum notional = ``MIN_NOTIONAL.notional``. The unified symbol is
  ``BASE/QUOTE:MARGIN`` (``BTCUSDT`` -> ``BTC/USDT:USDT``; a delivery contract
  ``BTCUSDT_250328`` -> ``BTC/USDT:USDT-250328``). Entries without a ``contractType``
  (delisted placeholders) are skipped. The body carries no trading fees.
* **ccxt** ``load_markets()`` dump: ``{symbol: {symbol, base, quote, settle, linear, inverse,
  contractSize, precision, limits, maker, taker, info}}``, mapped by
  :func:`data_loaders.ccxt_parse.markets_frame` (the same mapping the fetcher uses). Spot and
  option markets are skipped. ccxt's ``precision`` is a step (TICK_SIZE mode, what ccxt uses
  for Binance) or a number of decimals (DECIMAL_PLACES mode); a dump does not record the
  mode, so it is read from the JSON: any precision written with a decimal point or exponent
  (``0.1``, ``1.0``, ``1e-08``) means steps, only plain integers (``2``, ``3``) mean decimals.
  Pass ``precision_mode`` to override.

``effective_from`` is the ``--effective-from`` given, else the file's ``serverTime``; a
ccxt dump has none and needs the flag. Fees and the liquidation (clearance) fee come from the
file when it has them (ccxt ``maker``/``taker``; Binance ``liquidationFee``, also inside a
ccxt market's ``info``), else from the built-in venue data
(:func:`backtest.venues.defaults.default_fees`, :func:`~backtest.venues.defaults.clearance_fee_rate`)
in force at ``effective_from``; a value known to neither is stored as NaN (unknown) and
reported as a warning.
"""
from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from data_loaders.errors import DataError, ImportFormatError, import_errors, reads_file
from data_loaders.schemas import conform, to_ms
from data_loaders.symbols import unified_symbol, validate_exchange, validate_symbol

__all__ = ["detect_shape", "import_markets", "looks_like_markets", "read_markets"]

_TICK_SIZE, _DECIMAL_PLACES = 4, 2
_EXPECTED = ("a Binance /fapi/v1/exchangeInfo body ({\"serverTime\": ..., \"symbols\": [{\"symbol\", "
             "\"filters\", ...}]}) or a ccxt load_markets() dump ({symbol: {\"symbol\", \"precision\", "
             "\"limits\", ...}})")
_FIX = ("save the exchange's response as it is, e.g. `curl https://fapi.binance.com/fapi/v1/exchangeInfo "
        "> exchangeInfo.json` or `json.dump(exchange.load_markets(), f)` in Python")


def detect_shape(data: object) -> str:
    """``"exchange_info"``, ``"ccxt"`` or ``"unknown"`` for a parsed JSON document."""
    if isinstance(data, dict) and isinstance(data.get("symbols"), list) and data["symbols"] and all(
            isinstance(e, dict) and "symbol" in e and "filters" in e for e in data["symbols"]):
        return "exchange_info"
    if isinstance(data, dict) and data and all(
            isinstance(m, dict) and "symbol" in m and "precision" in m and "limits" in m for m in data.values()):
        return "ccxt"
    return "unknown"


def looks_like_markets(path: str | Path) -> bool:
    """True when ``path`` is a JSON file in one of the two market shapes (used to route imports).

    Unreadable or invalid files give False, so the caller's own importer reports them.
    """
    try:
        return detect_shape(json.loads(Path(path).read_text(encoding="utf-8"))) != "unknown"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False


def _float(value: Any) -> float:
    if value is None or value == "":
        return math.nan
    return float(value)


def _rows_exchange_info(data: dict, exchange: str, effective_ms: int, path: Path) -> tuple[list[dict], list[str]]:
    rows, skipped = [], []
    for entry in data["symbols"]:
        native = entry["symbol"]
        if not entry.get("contractType"):
            skipped.append(native)
            continue
        filters = {f.get("filterType"): f for f in entry["filters"] if isinstance(f, dict)}
        missing = [name for name in ("PRICE_FILTER", "LOT_SIZE") if name not in filters]
        if missing:
            raise ImportFormatError(
                f"{path}: symbol {native}: expected the {' and '.join(missing)} filter(s) of an exchangeInfo "
                f"entry, found filters {sorted(k for k in filters if k)}; {_FIX}")
        base, quote = entry["baseAsset"], entry["quoteAsset"]
        settle = entry.get("marginAsset") or quote
        _, _, suffix = native.partition("_")
        symbol = f"{base}/{quote}:{settle}" + (f"-{suffix}" if suffix and suffix != "PERP" else "")
        notional = filters.get("MIN_NOTIONAL") or {}
        rows.append({
            "exchange": exchange, "symbol": validate_symbol(symbol), "effective_from": effective_ms,
            "base": base, "quote": quote, "settle": settle,
            "contract_type": "inverse" if settle == base else "linear",
            "contract_size": _float(entry.get("contractSize", 1.0)),
            "tick_size": _float(filters["PRICE_FILTER"]["tickSize"]),
            "lot_size": _float(filters["LOT_SIZE"]["stepSize"]),
            "min_qty": _float(filters["LOT_SIZE"]["minQty"]),
            "min_notional": _float(notional.get("notional", notional.get("minNotional"))),
            "maker_fee": math.nan, "taker_fee": math.nan,
            "liquidation_fee_rate": _float(entry.get("liquidationFee")),
        })
    warnings = [f"{len(skipped)} entries without a contractType skipped ({', '.join(skipped[:5])}"
                f"{', ...' if len(skipped) > 5 else ''})"] if skipped else []
    return rows, warnings


def _precision_mode(markets: list[dict]) -> int:
    values = [(m.get("precision") or {}).get(k) for m in markets for k in ("price", "amount")]
    values = [v for v in values if v is not None]
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return _DECIMAL_PLACES
    return _TICK_SIZE


def _frame_ccxt(data: dict, exchange: str, effective_ms: int,
                precision_mode: int | None) -> tuple[pl.DataFrame, list[str]]:
    from data_loaders.ccxt_parse import markets_frame

    contracts = [m for m in data.values() if m.get("contract") and not m.get("option")
                 and (m.get("linear") or m.get("inverse"))]
    skipped = len(data) - len(contracts)
    warnings = [f"{skipped} non-contract (spot/option) market(s) skipped"] if skipped else []
    for market in contracts:
        validate_symbol(market["symbol"])
    mode = precision_mode if precision_mode is not None else _precision_mode(contracts)
    if not contracts:
        return _empty(), warnings
    return markets_frame(contracts, exchange=exchange, effective_from=effective_ms, precision_mode=mode), warnings


def _empty() -> pl.DataFrame:
    from data_loaders.schemas import get_schema

    return pl.DataFrame(schema=dict(get_schema("markets").columns))


def _unknown_fee_notes(frame: pl.DataFrame) -> list[str]:
    """Notes for fees the file does not carry (stored as NaN = unknown).

    The importer stores what the file says and nothing else: a fee the file lacks stays
    unknown in the store, and the one market loader (``backtest.market_loader``) takes the
    built-in dated value of each run's date for it, naming the table it used. (Filling it here
    would freeze the built-in value of the import date into the store, and would make
    data_loaders depend on backtest.)
    """
    notes = []
    if frame["maker_fee"].is_nan().any() or frame["taker_fee"].is_nan().any():
        notes.append("trading fees: the file has none; maker_fee/taker_fee stored as NaN (unknown): "
                     "runs use the venue's built-in dated fees for them")
    unknown = frame.filter(pl.col("liquidation_fee_rate").is_nan())["symbol"].to_list()
    if unknown:
        notes.append(
            f"liquidation fee not in the file for {len(unknown)} symbol(s) ({', '.join(unknown[:5])}"
            f"{', ...' if len(unknown) > 5 else ''}): stored as NaN (unknown); runs use the venue's "
            "built-in dated clearance fee where it has one")
    return notes


@reads_file("a JSON market list")
def read_markets(path: str | Path, *, exchange: str = "binanceusdm",
                 effective_from: int | datetime | str | None = None, symbols: list[str] | None = None,
                 precision_mode: int | None = None) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Parse a contract-spec file into ``markets`` rows (nothing is written).

    Parameters
    ----------
    path : str or Path
        JSON file: a Binance exchangeInfo body or a ccxt ``load_markets()`` dump.
    exchange : str, default "binanceusdm"
        ccxt exchange id the markets belong to (also selects the built-in fee data).
    effective_from : int (epoch ms), datetime or ISO string, optional
        When the specs took effect; default the file's ``serverTime`` (exchangeInfo only).
    symbols : list of str, optional
        Keep only these (unified ``BTC/USDT:USDT`` or native ``BTCUSDT``).
    precision_mode : int, optional
        ccxt dumps: 4 (TICK_SIZE, precision is a step) or 2 (DECIMAL_PLACES); default inferred.

    Returns
    -------
    frame : polars.DataFrame
        Canonical ``markets`` columns sorted by symbol; sizes in base units (contracts for
        inverse), prices in quote per base, fees as fractions of notional.
    warnings : tuple of str
        Skipped entries and values stored as NaN (unknown).

    Raises
    ------
    ImportFormatError
        When the file is missing, not JSON, in neither shape, lacks a field, or has no date.
    """
    path = Path(path)
    validate_exchange(exchange)
    if precision_mode not in (None, _TICK_SIZE, _DECIMAL_PLACES):
        raise ImportFormatError(f"precision_mode {precision_mode!r}: expected 4 (TICK_SIZE) or 2 (DECIMAL_PLACES)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportFormatError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportFormatError(f"{path}: expected {_EXPECTED}, found invalid JSON ({exc}); the file is "
                                f"truncated or not JSON: {_FIX}") from exc
    shape = detect_shape(data)
    if shape == "unknown":
        found = f"a JSON {type(data).__name__}" + (f" with keys {sorted(data)[:6]}" if isinstance(data, dict) else "")
        raise ImportFormatError(f"{path}: expected {_EXPECTED}, found {found}; {_FIX}")
    if effective_from is None and shape == "exchange_info" and data.get("serverTime") is not None:
        effective_from = int(data["serverTime"])
    if effective_from is None:
        raise ImportFormatError(
            f"{path}: a {shape} market snapshot without a serverTime has no date; pass --effective-from "
            "YYYY-MM-DD (the day the specs were fetched or took effect)")
    effective_ms = to_ms(effective_from)
    try:
        if shape == "exchange_info":
            rows, warnings = _rows_exchange_info(data, exchange, effective_ms, path)
            schema = {**_empty().schema, "effective_from": pl.Int64}
            frame = conform("markets", pl.DataFrame(rows, schema=schema, orient="row")) if rows else _empty()
        else:
            frame, warnings = _frame_ccxt(data, exchange, effective_ms, precision_mode)
    except ImportFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = str(exc) if isinstance(exc, DataError) else repr(exc)
        raise ImportFormatError(f"{path}: a {shape} market entry lacks a field or holds a bad value ({detail}); "
                                f"{_FIX}") from exc
    if symbols:
        wanted = [unified_symbol(s, exchange=exchange) for s in symbols]
        held = frame["symbol"].to_list()
        absent = [s for s in wanted if s not in held]
        if absent:
            raise ImportFormatError(f"{path}: expected market(s) {', '.join(absent)}, found only "
                                    f"{', '.join(held[:10])}{' ...' if len(held) > 10 else ''}; check --symbol")
        frame = frame.filter(pl.col("symbol").is_in(wanted))
    if frame.is_empty():
        raise ImportFormatError(f"{path}: expected at least one perpetual or futures contract, found none; {_FIX}")
    frame = frame.sort("symbol")
    return frame, tuple(warnings + _unknown_fee_notes(frame))


def import_markets(store, path: str | Path, *, exchange: str = "binanceusdm",
                   effective_from: int | datetime | str | None = None, symbols: list[str] | None = None,
                   precision_mode: int | None = None, strict: bool = True, replace: bool = False):
    """Import a contract-spec file into ``store`` (dataset ``markets``; see :func:`read_markets`).

    Re-importing the same file changes nothing; a file with other values for a stored
    ``(symbol, effective_from)`` is refused unless ``replace``.

    Returns
    -------
    ImportResult
    """
    from data_loaders.store import ImportResult, store_checked

    path = Path(path)
    with import_errors(path, "a JSON market list"):
        frame, warnings = read_markets(path, exchange=exchange, effective_from=effective_from, symbols=symbols,
                                       precision_mode=precision_mode)
        result, write_warnings = store_checked(store, "markets", frame, path=path, strict=strict,
                                               source=f"markets:{path.name}", replace=replace)
    names = frame["symbol"].to_list()
    label = ",".join(names) if len(names) <= 5 else f"{','.join(names[:3])},... ({len(names)} symbols)"
    return ImportResult(path, "markets", exchange, label, None, None, frame.height, result,
                        warnings + write_warnings)
