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

import bisect
import functools
import math
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from types import MappingProxyType
from typing import Any

from backtest.errors import utc_text
from backtest.venues.errors import UnknownSymbolError, UnknownVenueError, VersionError
from backtest.venues.fees import ClearanceFee, FeeRates, RateSchedule
from backtest.venues.markets import MarketSpec
from backtest.venues.tiers import NOTIONAL, Tier, TierSchedule, TierTable

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
    "resolve_market",
    "resolve_tier_schedule",
    "venue_data",
]

#: Venue name -> data file under backtest/venues/data/.
DATA_FILES: MappingProxyType[str, str] = MappingProxyType({
    "binance_usdm": "binance_usdm.toml",
    "binance_coinm": "binance_coinm.toml",
    "bybit_linear": "bybit_linear.toml",
    "bybit_inverse": "bybit_inverse.toml",
    "okx": "okx.toml",
    "bitmex_inverse": "bitmex_inverse.toml",
    "hyperliquid": "hyperliquid.toml",
    "dydx_v4": "dydx_v4.toml",
    "aave_v3": "aave_v3.toml",
    "compound_v3": "compound_v3.toml",
})

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
    symbol_aliases: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbols with built-in tiers, sorted (the file's keys; aliases are not listed)."""
        return tuple(sorted(s for s in self.tiers if s not in self.symbol_aliases))


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
    # what the file's tier bounds count: the venue's declared basis (``[venue] tier_basis``,
    # default notional), or a block's own ``basis``
    basis = venue.get("tier_basis", NOTIONAL)
    for block in raw.get("tiers", []):
        start = _ms(block["effective_from"])
        label = f"{exchange} {block['symbol']} {block['effective_from']:%Y-%m-%d}"
        tiers = [Tier(floor=float(r[0]), cap=float(r[1]), mmr=float(r[2]), cum=float(r[3]),
                      max_leverage=float(r[4])) for r in block["rows"]]
        versions.setdefault(block["symbol"], []).append(
            (start, TierTable(tiers, label=label, basis=block.get("basis", basis))))
    # ``[venue] symbol_aliases``: the venue's own ccxt symbol -> the file's key for the same
    # contract (Hyperliquid and dYdX settle in USDC; ccxt names them BTC/USDC:USDC, the store's
    # fetched rows carry that name, the built-in tables are keyed like the other venues')
    symbol_aliases = {str(k): str(v) for k, v in venue.get("symbol_aliases", {}).items()}
    for alias, key in symbol_aliases.items():
        for table in (clearance, markets, versions):
            if key in table:
                table[alias] = table[key]
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
        symbol_aliases=MappingProxyType(symbol_aliases),
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


# ---------------------------------------------------------------------- stored or built-in
#: Where a built-in table comes from, for the warnings that name it.
BUILT_IN_SOURCE = "built-in venue data (backtest/venues/data/{file})"
_MARKET_FIELDS = ("base", "quote", "settle", "contract_type", "contract_size", "tick_size", "lot_size",
                  "min_qty", "min_notional", "maker_fee", "taker_fee", "liquidation_fee_rate")


def _built_in_label(exchange: str) -> str:
    try:
        return BUILT_IN_SOURCE.format(file=DATA_FILES[_resolve_name(exchange)])
    except (UnknownVenueError, KeyError):
        return "built-in venue data"


def _span_text(start_ms: int | None, end_ms: int | None) -> str:
    if start_ms is None:
        return "the run"
    return f"{utc_text(start_ms)} .. {utc_text(end_ms) if end_ms is not None else 'the end'}"


def _versions_in(starts: list[int], start_ms: int | None, end_ms: int | None) -> list[int]:
    """Indices of the versions in force at some instant of ``[start_ms, end_ms)``."""
    if start_ms is None:
        return list(range(len(starts)))
    first = max(0, bisect.bisect_right(starts, start_ms) - 1)
    return [i for i in range(first, len(starts)) if i == first or end_ms is None or starts[i] < end_ms]


def resolve_tier_schedule(exchange: str, symbol: str, stored: TierSchedule | None, *,
                          start_ms: int | None, end_ms: int | None, warnings: list[str]) -> TierSchedule:
    """The bracket tables of ``symbol``: stored ones where they cover the date, built-in before.

    One rule for every command (``run``, ``sweep``, ``replay``, ``stress``, ``mc``,
    ``survive``): the stored ``risk_tiers`` versions apply from their first
    ``effective_from`` on; before it (or when nothing is stored) the built-in dated versions
    apply. A run spanning both uses each where it applies (the schedule switches at the first
    stored version). Every built-in version in force during ``[start_ms, end_ms)`` is named in
    a warning (source and ``effective_from``).

    Parameters
    ----------
    exchange, symbol : str
        Market (ccxt ids).
    stored : TierSchedule or None
        The store's versions (``risk_tiers``), None when it has none.
    start_ms, end_ms : int or None
        The run's time range, UTC ms (``end_ms`` exclusive); None = unknown / open.
    warnings : list of str
        Receives one line per built-in version used.

    Raises
    ------
    UnknownSymbolError
        When nothing is stored and the venue has no built-in tiers for ``symbol``.
    """
    try:
        built_in: TierSchedule | None = default_tier_schedule(exchange, symbol)
    except (UnknownSymbolError, UnknownVenueError):
        if stored is None:
            raise
        built_in = None
    if stored is None:
        cutoff = None
        schedule = TierSchedule(_labelled(built_in.versions, "built-in"), label=f"{built_in.label} (built-in)")
    else:
        cutoff = stored.first_effective_ms
        earlier = [v for v in built_in.versions if v[0] < cutoff] if built_in is not None else []
        label = (f"{stored.label} (stored from {utc_text(cutoff)}, built-in before)" if earlier
                 else f"{stored.label} (stored)")
        schedule = TierSchedule([*_labelled(earlier, "built-in"), *_labelled(stored.versions, "stored risk_tiers")],
                                label=label)
        if not earlier:
            return schedule
    starts = [start for start, _ in schedule.versions]
    source = _built_in_label(exchange)
    for index in _versions_in(starts, start_ms, end_ms):
        if cutoff is not None and starts[index] >= cutoff:
            continue
        # (dates before every version: the engine's own error, or allow_tiers_before_first, decides)
        reason = ("the store has no risk_tiers for it; import the venue's bracket history with "
                  "`margincall data import PATH` (risk_tiers) for exact dated tables" if cutoff is None else
                  f"the stored risk_tiers start {utc_text(cutoff)}")
        until = starts[index + 1] if index + 1 < len(starts) else None
        early = index == 0 and start_ms is not None and start_ms < starts[0]
        # a window opening before the first version runs on it from its own start (the engine allows
        # that only with allow_tiers_before_first), so the span begins at the window, not the table
        lo = starts[index] if start_ms is None else (start_ms if early else max(start_ms, starts[index]))
        hi = until if end_ms is None else (end_ms if until is None else min(end_ms, until))
        before = ", before its effective_from (allow_tiers_before_first)" if early else ""
        warnings.append(f"tiers {symbol}: {source}, table effective_from {utc_text(starts[index])}, used for "
                        f"{_span_text(lo, hi)}{before} ({reason})")
    return schedule


def _labelled(versions: Any, source: str) -> list[tuple[int, TierTable]]:
    """The versions with their source in each table's label (shown by the manifest and ``mc``)."""
    return [(start, table.relabelled(f"{table.label} ({source})")) for start, table in versions]


def resolve_market(exchange: str, symbol: str, stored_rows: list[dict[str, Any]] | None, *,
                   start_ms: int | None, end_ms: int | None, warnings: list[str]) -> MarketSpec:
    """The contract spec, fees and liquidation fee of ``symbol`` for a run starting at ``start_ms``.

    The stored ``markets`` row in force at ``start_ms`` (latest ``effective_from <= start``)
    when there is one, else the built-in dated spec (named in a warning with its source and
    ``effective_from``). A stored field recorded as unknown (NaN, e.g. the fees of an
    exchangeInfo import) takes the built-in value in force at ``start_ms``. A version taking
    effect inside the run is named in a warning; the store loader resolves each such version
    with this function at its date and the run applies it then (``backtest.events``).

    Parameters
    ----------
    exchange, symbol : str
        Market (ccxt ids).
    stored_rows : list of dict or None
        The store's ``markets`` rows of the symbol (``effective_from`` as int UTC ms or aware
        datetime), None or empty when it has none.
    start_ms, end_ms : int or None
        The run's time range, UTC ms (None: unknown; the newest version is used).
    warnings : list of str
        Receives the lines naming built-in values used and versions taking effect inside the run.

    Raises
    ------
    UnknownSymbolError
        When neither the store nor the venue's built-in data knows the symbol's spec.
    """
    rows = sorted((dict(r, effective_from=_row_ms(r["effective_from"])) for r in stored_rows or []),
                  key=lambda r: r["effective_from"])
    starts = [r["effective_from"] for r in rows]
    at = start_ms if start_ms is not None else (starts[-1] if starts else None)
    built_in = _built_in_market(exchange, symbol, at, warnings)
    source = _built_in_label(exchange)
    index = bisect.bisect_right(starts, at) - 1 if at is not None and rows else -1
    if index < 0:
        if built_in is None:
            raise _unknown_symbol(venue_data(exchange), symbol, "market spec") if not rows else UnknownSymbolError(
                f"{exchange} {symbol}: the stored markets start {utc_text(starts[0])}, after the run's start "
                f"{utc_text(int(at))}, and there is no built-in spec; import an older markets snapshot or start later")
        reason = ("the store has no markets rows for it; import them with `margincall data import PATH` "
                  "(exchangeInfo or a ccxt markets dump)" if not rows else
                  f"the stored markets start {utc_text(starts[0])}")
        warnings.append(f"markets {symbol}: {source}, spec effective_from {utc_text(built_in.effective_from)} "
                        f"(tick {built_in.tick_size:g}, lot {built_in.lot_size:g}, taker fee {built_in.taker_fee:g}, "
                        f"liquidation fee {built_in.liquidation_fee_rate:g}) used for {_span_text(start_ms, end_ms)} "
                        f"({reason})")
        later = [s for s in starts if start_ms is not None and start_ms < s and (end_ms is None or s < end_ms)]
        _warn_not_applied(symbol, later, warnings)
        return built_in
    row = rows[index]
    values: dict[str, Any] = {}
    filled = []
    for name in _MARKET_FIELDS:
        value = row.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if built_in is None:
                raise UnknownSymbolError(
                    f"{exchange} {symbol}: the stored markets row effective_from {utc_text(row['effective_from'])} "
                    f"has no {name} and there is no built-in value; re-import the markets with it, or set it "
                    "in the run config (fees=, liquidation_fee_rate=)")
            value = getattr(built_in, name)
            filled.append(name)
        values[name] = value
    if filled:
        warnings.append(f"markets {symbol}: the stored spec effective_from {utc_text(row['effective_from'])} "
                        f"has no {', '.join(filled)}; {source} values in force at the start are used")
    later = [s for s in starts[index + 1:] if end_ms is None or s < end_ms]
    _warn_not_applied(symbol, later, warnings)
    return MarketSpec(exchange=row.get("exchange", exchange), symbol=symbol, effective_from=row["effective_from"],
                      **{k: (float(v) if k not in ("base", "quote", "settle", "contract_type") else str(v))
                         for k, v in values.items()})


def _warn_not_applied(symbol: str, starts: list[int], warnings: list[str]) -> None:
    if starts:
        warnings.append(f"markets {symbol}: a spec version takes effect inside the run "
                        f"({', '.join(utc_text(s) for s in starts)}); the run applies each from the first bar "
                        "open at or after its date")


def _built_in_market(exchange: str, symbol: str, at: int | None, warnings: list[str]) -> MarketSpec | None:
    """The built-in spec at ``at`` (the earliest one, with a warning, before it); None if unknown."""
    try:
        return default_market(exchange, symbol, at)
    except (UnknownSymbolError, UnknownVenueError):
        return None
    except VersionError:
        spec = default_market(exchange, symbol, None)
        first = min(_ms(r["effective_from"]) for r in venue_data(exchange).markets[symbol])
        warnings.append(f"markets {symbol}: no built-in spec or fee is known at {utc_text(int(at))} (the first "
                        f"takes effect {utc_text(first)}); the latest known values are used")
        return spec


def _row_ms(value: Any) -> int:
    if isinstance(value, datetime):
        return _ms(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    return int(value)
