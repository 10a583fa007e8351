"""Importer for risk-tier (leverage bracket) snapshots into the ``risk_tiers`` dataset.

Three JSON shapes are recognised automatically:

* **ccxt** ``fetch_leverage_tiers``: ``{symbol: [{tier, minNotional, maxNotional,
  maintenanceMarginRate, maxLeverage, info}, ...]}``; the maintenance amount is
  ``info["cum"]`` when present, else derived with Binance's recursion.
* **Binance** ``GET /fapi/v1/leverageBracket``: ``[{symbol, brackets: [{bracket,
  initialLeverage, notionalCap, notionalFloor, maintMarginRatio, cum}]}]``.
* **freqtrade history** (``/work/shared/data/margin/binance_um_leverage_brackets_*.json``):
  ``{"versions": [{snapshot_commit_date, symbols: {BTCUSDT: {brackets: [{bracket,
  notional_floor_usdt, notional_cap_usdt, maint_margin_rate, maint_amount_usdt,
  max_initial_leverage}]}}}]}``; each version is effective from its snapshot date. The
  file's ``older_format_snapshot`` (Sept 2021) records no max leverage and is not imported.

Snapshots of a single moment (ccxt, Binance) need ``effective_from``. Caps at or above
9.2e18 (Java ``Long.MAX``, Binance's "unbounded") become ``inf``.
"""
from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import polars as pl

from data_loaders.errors import ImportFormatError, import_errors, reads_file
from data_loaders.schemas import TS, to_ms
from data_loaders.symbols import unified_symbol, validate_exchange
from data_loaders.tier_rules import maintenance_amounts as rule_amounts

_UNBOUNDED = 9.2e18


def maintenance_amounts(floors: list[float], rates: list[float]) -> list[float]:
    """Binance's cumulative maintenance amounts: ``cum_i = cum_{i-1} + floor_i * (mmr_i - mmr_{i-1})``.

    Source: Binance USDT-M "Leverage and Margin" FAQ (maintenance amount column), units USDT.
    Delegates to :func:`data_loaders.tier_rules.maintenance_amounts`, the recursion the engine
    uses too, so the importer and the engine cannot drift apart.
    """
    return rule_amounts(zip(floors, rates))


def _cap(value: object) -> float:
    cap = float(value) if value is not None else math.inf
    return math.inf if cap >= _UNBOUNDED else cap


def _rows_ccxt(data: dict, exchange: str, effective_ms: int) -> list[dict]:
    rows = []
    for symbol, tiers in data.items():
        # ccxt keys are unified already; older ccxt used 'BTC/USDT' for the USDT-M perpetual.
        unified = symbol.replace("/", "") if "/" in symbol and ":" not in symbol else symbol
        unified = unified_symbol(unified, exchange=exchange)
        ordered = sorted(tiers, key=lambda t: float(t["minNotional"]))
        floors = [float(t["minNotional"]) for t in ordered]
        rates = [float(t["maintenanceMarginRate"]) for t in ordered]
        derived = maintenance_amounts(floors, rates)
        for i, tier in enumerate(ordered):
            cum = (tier.get("info") or {}).get("cum")
            rows.append(_row(exchange, unified, effective_ms, int(tier.get("tier") or i + 1), floors[i],
                             _cap(tier.get("maxNotional")), float(tier["maxLeverage"]), rates[i],
                             float(cum) if cum is not None else derived[i]))
    return rows


def _rows_binance(data: list, exchange: str, effective_ms: int) -> list[dict]:
    rows = []
    for entry in data:
        unified = unified_symbol(entry["symbol"], exchange=exchange)
        for b in sorted(entry["brackets"], key=lambda b: int(b["bracket"])):
            rows.append(_row(exchange, unified, effective_ms, int(b["bracket"]), float(b["notionalFloor"]),
                             _cap(b["notionalCap"]), float(b["initialLeverage"]),
                             float(b["maintMarginRatio"]), float(b["cum"])))
    return rows


def _rows_history(data: dict, exchange: str) -> list[dict]:
    rows = []
    for version in data["versions"]:
        effective_ms = to_ms(datetime.fromisoformat(version["snapshot_commit_date"]))
        for native, table in version["symbols"].items():
            unified = unified_symbol(native, exchange=exchange)
            for b in table["brackets"]:
                rows.append(_row(exchange, unified, effective_ms, int(b["bracket"]),
                                 float(b["notional_floor_usdt"]), _cap(b["notional_cap_usdt"]),
                                 float(b["max_initial_leverage"]), float(b["maint_margin_rate"]),
                                 float(b["maint_amount_usdt"])))
    return rows


def _row(exchange: str, symbol: str, effective_ms: int, tier: int, floor: float, cap: float,
         max_leverage: float, mmr: float, cum: float) -> dict:
    return {"exchange": exchange, "symbol": symbol, "effective_from": effective_ms, "tier": tier,
            "notional_floor": floor, "notional_cap": cap, "max_leverage": max_leverage,
            "maint_margin_rate": mmr, "maint_amount": cum}


def detect_shape(data: object) -> str:
    """``"history"``, ``"ccxt"`` or ``"binance"`` for a parsed JSON document."""
    if isinstance(data, dict) and isinstance(data.get("versions"), list):
        return "history"
    if isinstance(data, dict) and data and all(
            isinstance(v, list) and v and isinstance(v[0], dict) and "minNotional" in v[0] for v in data.values()):
        return "ccxt"
    if isinstance(data, dict) and "brackets" in data:
        return "binance"
    if isinstance(data, list) and data and all(isinstance(e, dict) and "brackets" in e for e in data):
        return "binance"
    return "unknown"


@reads_file("a JSON tier snapshot")
def load_tiers(path: str | Path, *, exchange: str = "binanceusdm",
               effective_from: int | datetime | str | None = None,
               symbols: list[str] | None = None) -> pl.DataFrame:
    """Parse a tier snapshot file into ``risk_tiers`` rows (nothing is written).

    Parameters
    ----------
    path : str or Path
        JSON file in one of the module's three shapes.
    exchange : str, default "binanceusdm"
        Exchange the tiers belong to (native symbols are mapped with it).
    effective_from : int (epoch ms), datetime or ISO string, optional
        Required for single snapshots (ccxt, Binance); overrides nothing in a history file.
    symbols : list of str, optional
        Keep only these unified symbols.

    Returns
    -------
    polars.DataFrame
        ``risk_tiers`` columns, sorted by symbol, effective_from, tier.
    """
    path = Path(path)
    validate_exchange(exchange)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportFormatError(f"{path}: no such file") from None
    except RecursionError as exc:
        raise ImportFormatError(f"{path}: expected a JSON tier snapshot, found data nested too deeply to parse; "
                                "the file is not a tier or market snapshot: check it") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportFormatError(f"{path}: expected a JSON tier snapshot, found invalid JSON ({exc}); "
                                "the file is truncated or not JSON") from exc
    shape = detect_shape(data)
    if shape == "unknown":
        raise ImportFormatError(
            f"{path}: expected a ccxt fetch_leverage_tiers dict, a Binance leverageBracket list or a "
            "freqtrade history ({'versions': [...]}), found none of them"
        )
    try:
        if shape == "history":
            rows = _rows_history(data, exchange)
        else:
            if effective_from is None:
                raise ImportFormatError(
                    f"{path}: a {shape} snapshot has no date; pass --effective-from YYYY-MM-DD (the day the "
                    "tiers were fetched or took effect)"
                )
            effective_ms = to_ms(effective_from)
            data = [data] if isinstance(data, dict) and shape == "binance" else data
            rows = (_rows_ccxt if shape == "ccxt" else _rows_binance)(data, exchange, effective_ms)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ImportFormatError):
            raise
        raise ImportFormatError(
            f"{path}: expected every {shape} tier entry to hold its fields with numeric values, found an entry "
            f"that lacks a field or holds a bad value ({type(exc).__name__}: {exc}); fix that entry or save the "
            "exchange's response again") from exc
    frame = pl.DataFrame(rows, schema={"exchange": pl.String, "symbol": pl.String, "effective_from": pl.Int64,
                                       "tier": pl.Int32, "notional_floor": pl.Float64, "notional_cap": pl.Float64,
                                       "max_leverage": pl.Float64, "maint_margin_rate": pl.Float64,
                                       "maint_amount": pl.Float64}, orient="row")
    frame = frame.with_columns(pl.col("effective_from").cast(TS))
    if symbols:
        frame = frame.filter(pl.col("symbol").is_in(symbols))
    return frame.sort("symbol", "effective_from", "tier")


def import_tiers(store, path: str | Path, *, exchange: str = "binanceusdm",
                 effective_from: int | datetime | str | None = None, symbols: list[str] | None = None,
                 strict: bool = True, replace: bool = False):
    """Import a tier snapshot into ``store`` (dataset ``risk_tiers``).

    Every table is checked with the engine's own rules (:mod:`data_loaders.tier_rules`)
    before it is stored; ``replace`` allows changing stored rows (see ``MarketStore.write``).

    Returns
    -------
    ImportResult
    """
    from data_loaders.store import ImportResult, store_checked

    path = Path(path)
    with import_errors(path, "a JSON tier snapshot"):
        frame = load_tiers(path, exchange=exchange, effective_from=effective_from, symbols=symbols)
        result, warnings = store_checked(store, "risk_tiers", frame, path=path, strict=strict,
                                         source=f"tiers:{path.name}", replace=replace)
    return ImportResult(path, "risk_tiers", exchange, ",".join(sorted(frame["symbol"].unique().to_list())),
                        None, None, frame.height, result, warnings)
