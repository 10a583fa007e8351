"""ccxt unified structures -> canonical margincall frames (CONTRACTS §3). Pure functions.

ccxt already parsed the exchange's wire format; these functions only map its unified
structures (candle lists, funding-rate-history dicts, leverage-tier dicts, market dicts) onto
the canonical columns and types via :func:`data_loaders.schemas.conform`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from data_loaders.schemas import conform

#: Binance reports an unbounded notional cap as Long.MAX (~9.22e18).
_UNBOUNDED = 9.0e18
#: Settlement intervals (hours) venues use; a spacing outside this set is a gap, not an interval.
FUNDING_INTERVALS_H = (1.0, 2.0, 4.0, 8.0)
_HOUR_MS = 3_600_000


def ohlcv_frame(rows: Sequence[Sequence[Any]], *, exchange: str, symbol: str, timeframe: str,
                price_type: str) -> pl.DataFrame:
    """Canonical ``ohlcv`` frame from ccxt candles ``[ts, open, high, low, close, volume]``.

    Rows are sorted by ``ts`` and de-duplicated (the last copy of a timestamp wins). Volume is
    base units for last-price candles and null for mark/index candles, whose exchange
    "volume" is a placeholder (Binance sends ``"0"``).
    """
    by_ts: dict[int, Sequence[Any]] = {int(row[0]): row for row in rows}
    ordered = [by_ts[ts] for ts in sorted(by_ts)]
    volume = [_float(r[5]) if len(r) > 5 else None for r in ordered] if price_type == "last" \
        else [None] * len(ordered)
    frame = pl.DataFrame(
        {
            "exchange": [exchange] * len(ordered),
            "symbol": [symbol] * len(ordered),
            "timeframe": [timeframe] * len(ordered),
            "price_type": [price_type] * len(ordered),
            "ts": [int(r[0]) for r in ordered],
            "open": [_float(r[1]) for r in ordered],
            "high": [_float(r[2]) for r in ordered],
            "low": [_float(r[3]) for r in ordered],
            "close": [_float(r[4]) for r in ordered],
            "volume": volume,
        },
        schema_overrides={"ts": pl.Int64, "open": pl.Float64, "high": pl.Float64,
                          "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64},
    )
    return conform("ohlcv", frame)


def funding_frame(entries: Sequence[Mapping[str, Any]], *, exchange: str, symbol: str,
                  previous_ts: int | None = None, previous_interval_h: float | None = None,
                  fallback_interval_h: float = 8.0, mark_key: str = "markPrice") -> pl.DataFrame:
    """Canonical ``funding`` frame from ccxt funding-rate-history entries.

    ``interval_hours`` comes from the data: the spacing to the previous settlement when it is
    one of :data:`FUNDING_INTERVALS_H`; otherwise (first row, or a gap) the spacing to the next
    settlement, the exchange-reported interval in the entry's ``info``, the previous row's
    interval, and finally ``fallback_interval_h`` (Binance: 8 h).

    Parameters
    ----------
    entries : sequence of dict
        ccxt ``fetch_funding_rate_history`` items (``timestamp`` ms, ``fundingRate``, ``info``).
    previous_ts : int, optional
        Settlement time (epoch ms) of the last stored row before these entries.
    previous_interval_h : float, optional
        Interval (hours) of that stored row.
    fallback_interval_h : float
        Interval used when nothing else tells it (hours).
    mark_key : str
        Key of the settlement's mark price in the raw entry (Binance ``markPrice``; dYdX
        ``price``, the oracle price its perpetuals are marked at).
    """
    by_ts: dict[int, Mapping[str, Any]] = {}
    for entry in entries:
        ts = entry.get("timestamp")
        if ts is None or entry.get("fundingRate") is None:
            continue
        by_ts[_round_second(int(ts))] = entry
    stamps = sorted(by_ts)
    rates, intervals, marks = [], [], []
    last_interval = previous_interval_h
    for i, ts in enumerate(stamps):
        entry = by_ts[ts]
        prev = stamps[i - 1] if i else previous_ts
        nxt = stamps[i + 1] if i + 1 < len(stamps) else None
        interval = _spacing_h(prev, ts) or _spacing_h(ts, nxt) or _reported_interval(entry) \
            or last_interval or fallback_interval_h
        last_interval = interval
        rates.append(float(entry["fundingRate"]))
        intervals.append(float(interval))
        info = entry.get("info") or {}
        marks.append(_float(info.get(mark_key)) if isinstance(info, Mapping) else None)
    frame = pl.DataFrame(
        {"exchange": [exchange] * len(stamps), "symbol": [symbol] * len(stamps), "ts": stamps,
         "rate": rates, "interval_hours": intervals, "mark_price": marks},
        schema_overrides={"ts": pl.Int64, "rate": pl.Float64, "interval_hours": pl.Float64,
                          "mark_price": pl.Float64},
    )
    return conform("funding", frame)


def tiers_frame(tiers: Sequence[Mapping[str, Any]], *, exchange: str, symbol: str,
                effective_from: int, maint_amount: str = "raw:cum") -> pl.DataFrame:
    """Canonical ``risk_tiers`` frame from ccxt leverage tiers of one market.

    ``maint_amount`` (the rule, :data:`data_loaders.ccxt_venues.MaintAmountRule`):
    ``"raw:<key>"`` takes the exchange's own amount from the raw tier (Binance ``cum``, Bybit
    ``mmDeduction``, source: https://bybit-exchange.github.io/docs/v5/market/risk-limit) and
    falls back to the recursion when the field is absent or empty; ``"recursion"`` derives it
    with Binance's ``cum_i = cum_{i-1} + floor_i * (mmr_i - mmr_{i-1})`` (source: Binance USD-M
    "Leverage and Margin" FAQ, https://www.binance.com/en/support/faq/360033162192), which keeps
    the maintenance margin continuous at every tier floor. An unbounded cap (null or
    Long.MAX) becomes ``inf``. Bounds are in the units the exchange's tiers use (notional in
    the settle currency; OKX: contracts, source:
    https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers).
    """
    raw_key = maint_amount.partition(":")[2] if maint_amount.startswith("raw:") else None
    ordered = sorted(tiers, key=lambda t: (t.get("minNotional") or 0.0))
    floors, caps, levs, mmrs, cums = [], [], [], [], []
    derived_cum, prev_mmr = 0.0, 0.0
    for tier in ordered:
        floor = float(tier.get("minNotional") or 0.0)
        cap = tier.get("maxNotional")
        mmr = float(tier["maintenanceMarginRate"])
        derived_cum += floor * (mmr - prev_mmr)
        prev_mmr = mmr
        info = tier.get("info") or {}
        raw_cum = _float(info.get(raw_key)) if raw_key and isinstance(info, Mapping) else None
        floors.append(floor)
        caps.append(math.inf if cap is None or float(cap) >= _UNBOUNDED else float(cap))
        levs.append(float(tier["maxLeverage"]))
        mmrs.append(mmr)
        cums.append(raw_cum if raw_cum is not None else derived_cum)
    n = len(ordered)
    frame = pl.DataFrame(
        {"exchange": [exchange] * n, "symbol": [symbol] * n, "effective_from": [effective_from] * n,
         "tier": list(range(1, n + 1)), "notional_floor": floors, "notional_cap": caps,
         "max_leverage": levs, "maint_margin_rate": mmrs, "maint_amount": cums},
        schema_overrides={"effective_from": pl.Int64, "tier": pl.Int32},
    )
    return conform("risk_tiers", frame)


def hyperliquid_margin_tiers(meta: Mapping[str, Any], coin: str) -> list[dict[str, Any]]:
    """ccxt-shaped leverage tiers of ``coin`` from Hyperliquid's raw ``meta`` answer.

    The coin's ``universe`` entry names its ``marginTableId``; the table's ``marginTiers`` give
    each tier's ``lowerBound`` (USDC notional) and ``maxLeverage``. The maintenance rate is
    half the initial margin at max leverage, ``1 / (2 * maxLeverage)`` (source: Hyperliquid
    docs "Margin tiers", https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers;
    the same rule as ``backtest.venues.hyperliquid.maintenance_rate``, which data_loaders may
    not import). A coin whose table is not listed has one tier at its universe
    ``maxLeverage``. Returns ``[]`` for a coin not in the universe.
    """
    entry = next((u for u in meta.get("universe") or [] if u.get("name") == coin), None)
    if entry is None:
        return []
    tables = {int(table_id): table for table_id, table in meta.get("marginTables") or []}
    table = tables.get(int(entry.get("marginTableId", -1)))
    rows = [(float(t["lowerBound"]), float(t["maxLeverage"])) for t in (table or {}).get("marginTiers") or []]
    rows = sorted(rows) or [(0.0, float(entry["maxLeverage"]))]
    return [{"tier": i + 1, "minNotional": floor,
             "maxNotional": rows[i + 1][0] if i + 1 < len(rows) else None,
             "maintenanceMarginRate": 1.0 / (2.0 * lev), "maxLeverage": lev,
             "info": {"marginTableId": entry.get("marginTableId")}}
            for i, (floor, lev) in enumerate(rows)]


def markets_frame(markets: Sequence[Mapping[str, Any]], *, exchange: str, effective_from: int,
                  precision_mode: int) -> pl.DataFrame:
    """Canonical ``markets`` frame from loaded ccxt markets.

    Tick and lot sizes come from ccxt's ``precision`` (a step in TICK_SIZE mode, a number of
    decimals in DECIMAL_PLACES mode); quantities (lot, minimum) are in ccxt amount units, i.e.
    contracts of ``contract_size`` base units (OKX 0.01 BTC, Bybit inverse 1 USD; 1 elsewhere).
    Without a published minimum quantity the minimum is one lot; without a minimum notional it
    is 0 (none). ``liquidation_fee_rate`` is Binance's ``liquidationFee`` from the raw market;
    fees and liquidation fee an exchange does not publish are NaN (unknown), never a guess.
    """
    rows = [_market_row(m, exchange, effective_from, precision_mode) for m in markets]
    columns = ["exchange", "symbol", "effective_from", "base", "quote", "settle", "contract_type",
               "contract_size", "tick_size", "lot_size", "min_qty", "min_notional", "maker_fee",
               "taker_fee", "liquidation_fee_rate"]
    frame = pl.DataFrame(
        {col: [row[col] for row in rows] for col in columns},
        schema_overrides={"effective_from": pl.Int64, **{c: pl.Float64 for c in columns[7:]}},
    )
    return conform("markets", frame)


def _market_row(market: Mapping[str, Any], exchange: str, effective_from: int,
                precision_mode: int) -> dict[str, Any]:
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    info = market.get("info") or {}
    settle = market.get("settle") or market.get("quote")
    lot_size = _step(precision.get("amount"), precision_mode)
    # No separate minimum published (Hyperliquid, dYdX sizes; OKX, dYdX notional): an order must
    # be a positive multiple of the lot, and there is no notional floor beyond that.
    min_qty = _num((limits.get("amount") or {}).get("min"), default=lot_size)
    min_notional = _num((limits.get("cost") or {}).get("min"), default=0.0)
    return {
        "exchange": exchange,
        "symbol": market["symbol"],
        "effective_from": effective_from,
        "base": market.get("base"),
        "quote": market.get("quote"),
        "settle": settle,
        "contract_type": "inverse" if market.get("inverse") else "linear",
        "contract_size": _num(market.get("contractSize"), default=1.0),
        "tick_size": _step(precision.get("price"), precision_mode),
        "lot_size": lot_size,
        "min_qty": min_qty,
        "min_notional": min_notional,
        "maker_fee": _num(market.get("maker")),
        "taker_fee": _num(market.get("taker")),
        "liquidation_fee_rate": _num(info.get("liquidationFee") if isinstance(info, Mapping) else None),
    }


def _step(value: Any, precision_mode: int) -> float:
    """A precision value as a step size (ccxt DECIMAL_PLACES = 2, SIGNIFICANT_DIGITS = 3, TICK_SIZE = 4)."""
    number = _num(value)
    if math.isnan(number):
        return number
    return 10.0 ** -number if precision_mode == 2 else number


def _spacing_h(earlier: int | None, later: int | None) -> float | None:
    if earlier is None or later is None:
        return None
    hours = (later - earlier) / _HOUR_MS
    return hours if hours in FUNDING_INTERVALS_H else None


def _reported_interval(entry: Mapping[str, Any]) -> float | None:
    info = entry.get("info") or {}
    if not isinstance(info, Mapping):
        return None
    for key in ("fundingIntervalHours", "fundingInterval", "interval"):
        value = _float(info.get(key))
        if value and value > 0:
            # Some venues report minutes (e.g. 480); anything above 24 is read as minutes.
            return value / 60.0 if value > 24 else value
    return None


def _round_second(ts: int) -> int:
    return (ts + 500) // 1000 * 1000


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _num(value: Any, default: float = math.nan) -> float:
    number = _float(value)
    return default if number is None else number
