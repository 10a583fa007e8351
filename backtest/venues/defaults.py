"""Built-in venue data (``backtest/venues/data/*.toml``): tiers, fees, liquidation fees, markets.

The data files are read with :mod:`importlib.resources` and parsed once per process into
immutable objects (the parse is memoised; nothing mutable is shared).

File layout (one TOML per venue): ``[venue]`` (name, exchange, aliases, contract_type);
``[[fees]]`` (effective_from, maker, taker, source); ``[[clearance_fee]]`` (symbol,
effective_from, rate, source, note); ``[[markets]]`` (symbol, effective_from, base, quote,
settle, contract_type, contract_size, tick_size, lot_size, min_qty, min_notional, source);
``[[tiers]]`` (symbol, effective_from, observed_in, rows = [[floor, cap, mmr, cum,
max_leverage], ...]). ``effective_from`` is a TOML UTC datetime.
"""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from types import MappingProxyType
from typing import Any

from backtest.venues.errors import UnknownSymbolError, UnknownVenueError
from backtest.venues.fees import ClearanceFee, FeeRates, RateSchedule
from backtest.venues.markets import MarketSpec
from backtest.venues.tiers import Tier, TierSchedule, TierTable

__all__ = [
    "DATA_FILES",
    "VenueData",
    "clearance_fee_rate",
    "clearance_fee_schedule",
    "default_fees",
    "default_market",
    "default_tier_schedule",
    "fee_schedule",
    "known_symbols",
    "venue_data",
]

#: Venue name -> data file under backtest/venues/data/.
DATA_FILES: MappingProxyType[str, str] = MappingProxyType({"binance_usdm": "binance_usdm.toml"})

_IMPORT_HINT = (
    "import the venue's tiers with `margincall data import` (dataset risk_tiers, e.g. a ccxt "
    "fetch_leverage_tiers snapshot) and pass them to MarketData(tiers=...)"
)


def _ms(value: datetime) -> int:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError(f"venue data: effective_from must be a UTC datetime, found {value!r}")
    return int(value.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class VenueData:
    """Parsed contents of one venue data file (immutable)."""

    name: str
    exchange: str
    aliases: tuple[str, ...]
    contract_type: str
    fees: RateSchedule[FeeRates]
    clearance: MappingProxyType[str, RateSchedule[ClearanceFee]]
    markets: MappingProxyType[str, tuple[dict[str, Any], ...]]
    tiers: MappingProxyType[str, TierSchedule]

    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbols with built-in tiers, sorted."""
        return tuple(sorted(self.tiers))


def _parse(name: str, raw: dict[str, Any]) -> VenueData:
    venue = raw["venue"]
    exchange = venue["exchange"]
    fees = RateSchedule(
        (FeeRates(maker=float(f["maker"]), taker=float(f["taker"]),
                  effective_from=_ms(f["effective_from"]), source=f.get("source", ""),
                  effective_from_known=bool(f.get("effective_from_known", True)))
         for f in raw.get("fees", [])),
        label=f"{exchange} trading fees",
    )
    clearance: dict[str, list[ClearanceFee]] = {}
    for row in raw.get("clearance_fee", []):
        clearance.setdefault(row["symbol"], []).append(
            ClearanceFee(rate=float(row["rate"]), effective_from=_ms(row["effective_from"]),
                         source=row.get("source", ""), note=row.get("note", "")))
    markets: dict[str, list[dict[str, Any]]] = {}
    for row in raw.get("markets", []):
        markets.setdefault(row["symbol"], []).append(row)
    versions: dict[str, list[tuple[int, TierTable]]] = {}
    for block in raw.get("tiers", []):
        start = _ms(block["effective_from"])
        label = f"{exchange} {block['symbol']} {block['effective_from']:%Y-%m-%d}"
        tiers = [Tier(floor=float(r[0]), cap=float(r[1]), mmr=float(r[2]), cum=float(r[3]),
                      max_leverage=float(r[4])) for r in block["rows"]]
        versions.setdefault(block["symbol"], []).append((start, TierTable(tiers, label=label)))
    return VenueData(
        name=name,
        exchange=exchange,
        aliases=tuple(venue.get("aliases", [])),
        contract_type=venue["contract_type"],
        fees=fees,
        clearance=MappingProxyType({
            s: RateSchedule(v, label=f"{exchange} {s} liquidation clearance fee")
            for s, v in clearance.items()}),
        markets=MappingProxyType({
            s: tuple(sorted(v, key=lambda r: r["effective_from"])) for s, v in markets.items()}),
        tiers=MappingProxyType({
            s: TierSchedule(v, label=f"{exchange} {s}") for s, v in versions.items()}),
    )


@functools.cache
def _load(name: str) -> VenueData:
    text = resources.files("backtest.venues").joinpath("data", DATA_FILES[name]).read_text("utf-8")
    return _parse(name, tomllib.loads(text))


def _resolve_name(exchange: str) -> str:
    if exchange in DATA_FILES:
        return exchange
    for name in DATA_FILES:
        if exchange in _load(name).aliases or exchange == _load(name).exchange:
            return name
    known = sorted({alias for n in DATA_FILES for alias in (n, *_load(n).aliases)})
    raise UnknownVenueError(
        f"venue data: no built-in data for exchange {exchange!r}; known: {', '.join(known)}. "
        f"For another exchange, {_IMPORT_HINT}"
    )


def venue_data(exchange: str) -> VenueData:
    """Parsed built-in data of a venue, by venue name (``binance_usdm``) or ccxt id.

    Raises
    ------
    UnknownVenueError
        For an exchange without built-in data (the message lists the known names).
    """
    return _load(_resolve_name(exchange))


def known_symbols(exchange: str) -> tuple[str, ...]:
    """Symbols that have built-in tiers for ``exchange``."""
    return venue_data(exchange).symbols


def _unknown_symbol(data: VenueData, symbol: str, what: str) -> UnknownSymbolError:
    return UnknownSymbolError(
        f"{data.exchange}: no built-in {what} for symbol {symbol!r}; known symbols: "
        f"{', '.join(data.symbols)} (ccxt unified form, e.g. 'BTC/USDT:USDT'). For another "
        f"symbol, {_IMPORT_HINT}"
    )


def default_tier_schedule(exchange: str, symbol: str) -> TierSchedule:
    """The built-in bracket tables of ``symbol`` over time.

    Parameters
    ----------
    exchange : str
        Venue name or ccxt id (``"binance_usdm"``, ``"binanceusdm"``).
    symbol : str
        ccxt unified symbol (``"BTC/USDT:USDT"``).

    Raises
    ------
    UnknownSymbolError
        When the symbol has no built-in tiers; the message lists the known ones and how to
        import tiers.
    """
    data = venue_data(exchange)
    try:
        return data.tiers[symbol]
    except KeyError:
        raise _unknown_symbol(data, symbol, "risk tiers") from None


def fee_schedule(exchange: str) -> RateSchedule[FeeRates]:
    """Dated regular-tier trading fees of the venue."""
    return venue_data(exchange).fees


def default_fees(exchange: str, ts_ms: int | None = None) -> FeeRates:
    """Trading fees in force at ``ts_ms`` (UTC ms); the latest when ``ts_ms`` is None."""
    schedule = fee_schedule(exchange)
    return schedule.latest if ts_ms is None else schedule.at(ts_ms)


def clearance_fee_schedule(exchange: str, symbol: str) -> RateSchedule[ClearanceFee]:
    """Dated liquidation (clearance) fee rates of ``symbol``."""
    data = venue_data(exchange)
    try:
        return data.clearance[symbol]
    except KeyError:
        raise _unknown_symbol(data, symbol, "liquidation clearance fee") from None


def clearance_fee_rate(exchange: str, symbol: str, ts_ms: int) -> float:
    """Liquidation (clearance) fee rate in force at ``ts_ms``, fraction of liquidated notional.

    Binance BTC/USDT:USDT 0.3 %, other perpetuals 0.5 % (2019-2020 rule text, bradkyle/Qenv @
    bf999d43 ``logic/binance.md``; later per-symbol values unknown: margin_rules.md open
    question 1).
    """
    return clearance_fee_schedule(exchange, symbol).at(ts_ms).rate


def default_market(exchange: str, symbol: str, ts_ms: int | None = None) -> MarketSpec:
    """Contract spec of ``symbol`` with the fees in force at ``ts_ms`` (latest when None).

    Raises
    ------
    UnknownSymbolError
        When the symbol has no built-in market data.
    """
    data = venue_data(exchange)
    rows = data.markets.get(symbol)
    if not rows:
        raise _unknown_symbol(data, symbol, "market spec")
    if ts_ms is None:
        row = rows[-1]
        fees, clearance = data.fees.latest, clearance_fee_schedule(exchange, symbol).latest
    else:
        candidates = [r for r in rows if _ms(r["effective_from"]) <= ts_ms]
        row = candidates[-1] if candidates else rows[0]
        if not candidates:
            # reuse the schedule's own error (names the first known instant)
            clearance_fee_schedule(exchange, symbol).at(ts_ms)
        fees, clearance = data.fees.at(ts_ms), clearance_fee_schedule(exchange, symbol).at(ts_ms)
    start = max(_ms(row["effective_from"]), fees.effective_from, clearance.effective_from)
    return MarketSpec(
        exchange=data.exchange, symbol=symbol, effective_from=start,
        base=row["base"], quote=row["quote"], settle=row["settle"],
        contract_type=row["contract_type"], contract_size=float(row["contract_size"]),
        tick_size=float(row["tick_size"]), lot_size=float(row["lot_size"]),
        min_qty=float(row["min_qty"]), min_notional=float(row["min_notional"]),
        maker_fee=fees.maker, taker_fee=fees.taker, liquidation_fee_rate=clearance.rate,
    )
