"""Market data as the engine consumes it: validated columns per symbol on one time grid.

``MarketData`` converts the frames once into NumPy arrays (and the engine turns those into
Python lists once), so the bar loop never touches a DataFrame.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from backtest.errors import MarketDataError, utc_text

__all__ = ["BAR_COLUMNS", "MarketData", "SymbolBars", "SymbolFunding", "SymbolTrades", "timeframe_ms"]

#: Columns of a bar frame (CONTRACTS §8); ``ts`` is the bar's open time.
BAR_COLUMNS = ("open", "high", "low", "close", "volume",
               "mark_open", "mark_high", "mark_low", "mark_close")
#: Optional bar column: factor on every slippage impact of fills in that bar (1 = the model's
#: own book; 5 = a book five times thinner, e.g. a liquidity drought of a stress scenario).
SLIPPAGE_SCALE = "slippage_scale"
_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def timeframe_ms(timeframe: str) -> int:
    """Length of a timeframe such as ``1m``, ``5m``, ``1h``, ``4h``, ``1d`` in milliseconds."""
    text = str(timeframe).strip()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise MarketDataError(
            f"timeframe: expected a count and a unit like '1m', '5m', '1h', '1d', found {timeframe!r}")
    return int(text[:-1]) * _UNITS[text[-1]]


def _ts_ms(frame: pl.DataFrame, what: str) -> np.ndarray:
    if "ts" not in frame.columns:
        raise MarketDataError(f"{what}: missing column 'ts'; found columns {frame.columns}")
    col = frame.get_column("ts")
    if col.dtype == pl.Datetime or isinstance(col.dtype, pl.Datetime):
        col = col.dt.cast_time_unit("ms").dt.epoch("ms") if hasattr(col.dt, "epoch") else col.cast(pl.Int64)
    if col.null_count():
        raise MarketDataError(f"{what}: column 'ts' has {col.null_count()} nulls; expected none")
    return col.cast(pl.Int64).to_numpy().astype(np.int64, copy=False)


def _check_sorted(ts: np.ndarray, what: str) -> None:
    if ts.size > 1:
        step = np.diff(ts)
        bad = np.flatnonzero(step <= 0)
        if bad.size:
            k = int(bad[0])
            kind = "duplicate" if step[k] == 0 else "unsorted"
            raise MarketDataError(
                f"{what}: timestamps must be strictly increasing; {kind} at row {k + 1} "
                f"({_iso(int(ts[k]))} then {_iso(int(ts[k + 1]))}). Sort and de-duplicate the frame "
                "(`margincall data validate` reports such rows)")


_iso = utc_text


@dataclass
class SymbolBars:
    """Bar columns of one symbol (float64 arrays, ``ts`` int64 UTC ms of the bar open)."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    mark_open: np.ndarray
    mark_high: np.ndarray
    mark_low: np.ndarray
    mark_close: np.ndarray
    #: Per-bar factor on slippage impacts (``slippage_scale`` column), None when absent.
    slippage_scale: np.ndarray | None = None

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, what: str, warnings: list[str]) -> SymbolBars:
        """Validate a bar frame and convert its columns (missing mark columns -> last price)."""
        ts = _ts_ms(frame, what)
        _check_sorted(ts, what)
        missing = [c for c in ("open", "high", "low", "close") if c not in frame.columns]
        if missing:
            raise MarketDataError(f"{what}: missing columns {missing}; expected ts, "
                                  f"{', '.join(BAR_COLUMNS)} (found {frame.columns})")
        arrays: dict[str, np.ndarray] = {}
        for name in BAR_COLUMNS:
            source = name
            if name not in frame.columns:
                if name == "volume":
                    arrays[name] = np.full(ts.size, np.nan)
                    continue
                source = name.removeprefix("mark_")
                if name == "mark_open":
                    warnings.append(f"{what}: no mark-price columns; liquidations are checked on "
                                    "the last price instead (load mark candles for exact results)")
            col = frame.get_column(source).cast(pl.Float64)
            if name != "volume" and col.null_count():
                raise MarketDataError(f"{what}: column {source!r} has {col.null_count()} nulls; "
                                      "expected a price in every row")
            arrays[name] = col.to_numpy().astype(np.float64, copy=False)
        bad = np.flatnonzero((arrays["high"] < np.maximum(arrays["open"], arrays["close"]))
                             | (arrays["low"] > np.minimum(arrays["open"], arrays["close"]))
                             | (arrays["low"] <= 0))
        if bad.size:
            k = int(bad[0])
            raise MarketDataError(f"{what}: row {k} ({_iso(int(ts[k]))}) has low/high outside the "
                                  "open/close or a non-positive price; fix or drop the row")
        bars = cls(ts=ts, **arrays, slippage_scale=_slippage_scale(frame, ts, what))
        _read_only(bars)
        return bars

    def __len__(self) -> int:
        return int(self.ts.size)


@dataclass
class SymbolFunding:
    """Funding settlements of one symbol: ``ts`` (UTC ms), ``rate``, ``interval_hours``,
    ``mark_price`` (nan when not recorded: the bar's mark at the settlement is used)."""

    ts: np.ndarray
    rate: np.ndarray
    interval_hours: np.ndarray
    mark_price: np.ndarray

    @classmethod
    def empty(cls) -> SymbolFunding:
        """No settlements."""
        z = np.zeros(0)
        return cls(np.zeros(0, dtype=np.int64), z, z, z)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, what: str) -> SymbolFunding:
        """Validate a funding frame (``rate`` or ``funding_rate``; interval inferred if absent)."""
        ts = _ts_ms(frame, what)
        _check_sorted(ts, what)
        rate_col = "rate" if "rate" in frame.columns else "funding_rate"
        if rate_col not in frame.columns:
            raise MarketDataError(f"{what}: missing column 'rate'; found {frame.columns}")
        rate = frame.get_column(rate_col).cast(pl.Float64).fill_null(0.0).to_numpy()
        if "interval_hours" in frame.columns:
            hours = frame.get_column("interval_hours").cast(pl.Float64).to_numpy()
        else:
            hours = np.diff(ts, prepend=ts[0] - 8 * 3_600_000 if ts.size else 0) / 3_600_000.0
        mark = (frame.get_column("mark_price").cast(pl.Float64).fill_null(np.nan).to_numpy()
                if "mark_price" in frame.columns else np.full(ts.size, np.nan))
        funding = cls(ts=ts, rate=np.asarray(rate, dtype=np.float64),
                      interval_hours=np.asarray(hours, dtype=np.float64),
                      mark_price=np.asarray(mark, dtype=np.float64))
        _read_only(funding)
        return funding


@dataclass
class SymbolTrades:
    """Trade ticks of one symbol: ``ts`` (UTC ms), ``price`` (quote), ``qty`` (base units)."""

    ts: np.ndarray
    price: np.ndarray
    qty: np.ndarray

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, what: str) -> SymbolTrades:
        """Validate a trades frame (``ts, price, qty[, side]``); timestamps non-decreasing."""
        if not isinstance(frame, pl.DataFrame):
            raise MarketDataError(f"{what}: expected a polars DataFrame (ts, price, qty, side), "
                                  f"found {type(frame).__name__}")
        ts = _ts_ms(frame, what)
        if ts.size > 1 and np.any(np.diff(ts) < 0):
            k = int(np.flatnonzero(np.diff(ts) < 0)[0])
            raise MarketDataError(f"{what}: trades must be sorted by ts; row {k + 1} "
                                  f"({_iso(int(ts[k + 1]))}) is earlier than row {k}; sort them")
        for col in ("price", "qty"):
            if col not in frame.columns:
                raise MarketDataError(f"{what}: missing column {col!r}; found {frame.columns}")
        price = frame.get_column("price").cast(pl.Float64).to_numpy()
        if price.size and not np.all(price > 0):
            raise MarketDataError(f"{what}: every trade price must be > 0")
        return cls(ts=ts, price=price, qty=frame.get_column("qty").cast(pl.Float64).to_numpy())


@dataclass
class MarketData:
    """Everything a run reads: bars per symbol on one grid, funding, detail bars, tiers, specs.

    Build it with :meth:`from_frames` or :meth:`from_store`.
    """

    symbols: tuple[str, ...]
    timeframe: str
    interval_ms: int
    bars: dict[str, SymbolBars]
    frames: dict[str, pl.DataFrame]
    funding: dict[str, SymbolFunding]
    detail: dict[str, SymbolBars] | None
    detail_timeframe: str | None
    tiers: dict[str, Any]
    markets: dict[str, Any]
    exchange: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    quality_warnings: list[str] = field(default_factory=list)
    trades: dict[str, SymbolTrades] | None = None
    #: Per symbol, the market spec versions taking effect after the first bar (MarketSpec with
    #: their ``effective_from``, in time order), applied by the run at their date
    #: (``backtest.events.MarketVersions``).
    market_versions: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    #: The scratch-file maps of the bar columns of a long run (``backtest.spill``), or None
    #: when they are in memory.
    spill: Any = None

    def release(self, start: int, stop: int) -> None:
        """Drop the resident memory of bars ``[start, stop)`` of spilled columns (a residency
        hint: the values stay readable; ``backtest.spill.Spill.release``)."""
        if self.spill is not None:
            self.spill.release(start, stop)

    def per_bar(self, key: Any, compute: Any, dtype: Any = np.float64) -> np.ndarray:
        """A derived per-bar column, ``compute(start, stop)`` giving its bars ``[start, stop)``,
        built once per ``key`` and cached (read-only): for spilled data it is built chunk by
        chunk on disk (no per-bar array of the whole history in memory), else at once.

        ``compute`` must give each bar's value from that bar alone (so the chunks are the
        whole); e.g. bar close times, the funding rate settled by each close.
        """
        from backtest.metrics import CHUNK_BARS

        cache = self.__dict__.setdefault("_run_cache", {})
        if ("per_bar", key) not in cache:
            n = len(self)
            if self.spill is None:
                values = np.ascontiguousarray(compute(0, n), dtype=dtype)
            else:
                values = self.spill.column(n, dtype, compute, CHUNK_BARS)
                self.release(0, n)
            values.setflags(write=False)
            cache[("per_bar", key)] = values
        return cache[("per_bar", key)]

    @property
    def ts(self) -> np.ndarray:
        """Bar open times (UTC ms) shared by all symbols."""
        return self.bars[self.symbols[0]].ts

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_frames(cls, bars: Mapping[str, pl.DataFrame | pl.LazyFrame],
                    funding: Mapping[str, pl.DataFrame] | None = None,
                    *, timeframe: str, detail_bars: Mapping[str, pl.DataFrame] | None = None,
                    detail_timeframe: str | None = None,
                    trades: Mapping[str, pl.DataFrame] | None = None,
                    tiers: Mapping[str, Any] | None = None, markets: Mapping[str, Any] | None = None,
                    exchange: str = "binanceusdm", sources: Sequence[dict[str, Any]] = (),
                    quality_warnings: Sequence[str] = (),
                    market_versions: Mapping[str, Sequence[Any]] | None = None,
                    spill: Any = None) -> MarketData:
        """Build from polars frames keyed by ccxt symbol.

        Parameters
        ----------
        bars : mapping of str to DataFrame or LazyFrame
            ``ts, open, high, low, close, volume, mark_open, mark_high, mark_low, mark_close``.
            All symbols must share the same timestamps. A ``LazyFrame`` (``pl.scan_parquet``)
            is read batch by batch straight to a scratch file (``backtest.spill``): a long or
            wide run never holds its whole history in memory.
        funding : mapping of str to DataFrame, optional
            ``ts, rate, interval_hours, mark_price`` (``funding_rate`` is accepted for ``rate``).
        timeframe : str
            The bars' timeframe (``1m``, ``1h`` ...); the strategy runs on these bars.
        detail_bars : mapping of str to DataFrame, optional
            Finer candles (same columns) that drive the intrabar path; every symbol or none.
        detail_timeframe : str, optional
            Their timeframe; inferred from the first two rows when omitted.
        trades : mapping of str to DataFrame, optional
            Trade ticks (``ts, price, qty, side``) of a single-symbol run: they become the
            last-price ticks of the intrabar path (bars without trades use the candle path).
        tiers : mapping of str to TierSchedule or TierTable, optional
            Default: the venue's built-in schedule of each symbol.
        markets : mapping of str to MarketSpec, optional
            Default: the venue's built-in spec.
        market_versions : mapping of str to sequence of MarketSpec, optional
            Later spec versions (fees, tick, lot, liquidation fee) of a symbol, each applied
            from its ``effective_from`` on; versions at or before the first bar are refused
            (give the one in force then as ``markets``).
        exchange : str
            ccxt exchange id.
        sources, quality_warnings
            Provenance recorded in the manifest.
        spill : bool or Spill, optional
            Keep the bar columns in a read-only scratch-file map rather than in memory
            (``backtest.spill``; the same values). Default: when a LazyFrame is given or the
            run has at least ``backtest.spill.SPILL_BARS`` symbol-bars. A ``Spill`` is one the
            frames were already spilled into (``backtest.market_loader``).
        """
        if not bars:
            raise MarketDataError("MarketData: expected at least one symbol in bars={...}, found none")
        warnings = list(quality_warnings)
        interval = timeframe_ms(timeframe)
        symbols = tuple(bars)
        spilled = _spill_for(spill, bars)
        if spilled is not None:
            bars = {s: spilled.lazy(f) if isinstance(f, pl.LazyFrame) else
                    f if spilled.holds(f) else spilled.frame(f) for s, f in bars.items()}
            if detail_bars:
                detail_bars = {s: spilled.lazy(f) if isinstance(f, pl.LazyFrame) else
                               f if spilled.holds(f) else spilled.frame(f) for s, f in detail_bars.items()}
        converted = {}
        for s, f in bars.items():
            converted[s] = SymbolBars.from_frame(f, f"bars[{s!r}]", warnings)
            if spilled is not None:  # the checks read every bar of the symbol: done with them
                spilled.release(0, len(converted[s]))
        first = converted[symbols[0]]
        for s in symbols[1:]:
            if not np.array_equal(converted[s].ts, first.ts):
                raise MarketDataError(
                    f"bars[{s!r}]: timestamps differ from bars[{symbols[0]!r}] ({len(converted[s])} "
                    f"vs {len(first)} rows); align all symbols on one grid (inner join on ts)")
            if spilled is not None:
                spilled.release(0, len(first))
        if len(first) and np.any(np.diff(first.ts) % interval):
            raise MarketDataError(f"bars: timestamps are not multiples of the {timeframe} timeframe "
                                  "apart; pass the right timeframe= or resample the frame")
        gaps = int(np.count_nonzero(np.diff(first.ts) != interval)) if len(first) > 1 else 0
        if gaps:
            warnings.append(f"bars: {gaps} gap(s) in the {timeframe} grid; the engine steps over them")
        fund = {}
        for s in symbols:
            frame = (funding or {}).get(s)
            fund[s] = SymbolFunding.empty() if frame is None else SymbolFunding.from_frame(frame, f"funding[{s!r}]")
            if frame is None:
                warnings.append(f"funding[{s!r}]: no funding data; no funding is applied")
        detail = None
        if detail_bars:
            missing = [s for s in symbols if s not in detail_bars]
            if missing:
                raise MarketDataError(f"detail_bars: missing symbols {missing}; give detail candles "
                                      "for every symbol or for none")
            detail = {s: SymbolBars.from_frame(detail_bars[s], f"detail_bars[{s!r}]", warnings)
                      for s in symbols}
            dts = detail[symbols[0]].ts
            for s in symbols[1:]:
                if not np.array_equal(detail[s].ts, dts):
                    raise MarketDataError(f"detail_bars[{s!r}]: timestamps differ from "
                                          f"detail_bars[{symbols[0]!r}]; align them")
            if detail_timeframe is None:
                if dts.size < 2:
                    raise MarketDataError("detail_bars: pass detail_timeframe= (fewer than 2 rows)")
                detail_timeframe = f"{int(np.min(np.diff(dts)) // 60_000)}m"
            check_detail_timeframe(detail_timeframe, timeframe)
        trade_ticks = None
        if trades:
            if len(symbols) != 1 or detail_bars:
                raise MarketDataError(
                    "MarketData: trade-tick replay supports one symbol without detail candles; "
                    f"found {len(symbols)} symbols{' and detail_bars' if detail_bars else ''}. Pass "
                    "detail candles instead for several symbols")
            if symbols[0] not in trades:
                raise MarketDataError(f"trades: expected ticks for {symbols[0]!r}, found {sorted(trades)}")
            trade_ticks = {symbols[0]: SymbolTrades.from_frame(trades[symbols[0]], f"trades[{symbols[0]!r}]")}
        frames = {s: _feature_frame(bars[s], converted[s]) for s in symbols}
        start_ms = int(first.ts[0]) if len(first) else None
        venue_tiers, venue_markets = _venue_defaults(exchange, symbols, tiers, markets, start_ms,
                                                     warnings)
        end_ms = int(first.ts[-1]) + interval if len(first) else None
        market_versions = dict(market_versions or {})
        for symbol in symbols:  # built-in specs: their later dated versions apply as stored ones do
            if not (markets and symbol in markets) and symbol not in market_versions:
                later = _built_in_versions(exchange, symbol, venue_markets[symbol], start_ms, end_ms)
                if later:
                    market_versions[symbol] = later
        data = cls(symbols=symbols, timeframe=timeframe, interval_ms=interval, bars=converted,
                   frames=frames, funding=fund, detail=detail, detail_timeframe=detail_timeframe,
                   tiers=venue_tiers, markets=venue_markets, exchange=exchange,
                   sources=list(sources), quality_warnings=warnings, trades=trade_ticks,
                   market_versions=_market_versions(market_versions, symbols, start_ms), spill=spilled)
        data.release(0, len(data))  # the checks above read every bar: none is needed in memory now
        return data

    @classmethod
    def from_store(cls, store: Any, *, exchange: str, symbols: Sequence[str], timeframe: str,
                   start: int | datetime | None = None, end: int | datetime | None = None,
                   detail_timeframe: str | None = None, tables: str | None = None) -> MarketData:
        """Read bars (last + mark), funding, tiers and markets from a ``MarketStore``.

        The one loader of every command (:func:`backtest.market_loader.load_market`): mark =
        last where no mark candle is stored, stored tiers and markets where they cover the
        date, the venue's built-in dated tables otherwise, each fallback a quality warning.
        """
        from backtest.market_loader import load_market

        if detail_timeframe is not None:
            check_detail_timeframe(detail_timeframe, timeframe)  # before any data is read

        return load_market(store, exchange=exchange, symbols=symbols, timeframe=timeframe, start=start,
                           end=end, detail_timeframe=detail_timeframe, tables=tables).market_data()


def _spill_for(spill: Any, bars: Mapping[str, Any]) -> Any:
    """The :class:`~backtest.spill.Spill` the bar columns go to, or None to keep them in memory."""
    from backtest.spill import SPILL_BARS, Spill

    if isinstance(spill, Spill):
        return spill
    if spill is None:
        lazy = any(isinstance(f, pl.LazyFrame) for f in bars.values())
        spill = lazy or sum(f.height for f in bars.values()) >= SPILL_BARS
    return Spill() if spill else None


def check_detail_timeframe(detail_timeframe: str, timeframe: str) -> None:
    """The one rule of the intrabar detail: a timeframe finer than ``timeframe`` that divides it.

    Raises
    ------
    MarketDataError
        Naming ``detail_timeframe``, what was expected and what was found.
    """
    interval = timeframe_ms(timeframe)
    if timeframe_ms(detail_timeframe) >= interval or interval % timeframe_ms(detail_timeframe):
        raise MarketDataError(f"detail_timeframe: expected a timeframe finer than and dividing "
                              f"{timeframe}, found {detail_timeframe}; pass a finer one (e.g. 1m) or leave it out")


def _read_only(columns: Any) -> None:
    """Make every array column of ``columns`` read-only.

    Runs sharing one ``MarketData`` cache what they derive from its columns (funding maps,
    block extremes of the mark ranges); a column is therefore replaced, never edited in place.
    """
    for value in vars(columns).values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)


def _slippage_scale(frame: pl.DataFrame, ts: np.ndarray, what: str) -> np.ndarray | None:
    """The optional ``slippage_scale`` column as float64, checked finite and > 0 in every row."""
    if SLIPPAGE_SCALE not in frame.columns:
        return None
    col = frame.get_column(SLIPPAGE_SCALE).cast(pl.Float64)
    if col.null_count():
        raise MarketDataError(f"{what}: column {SLIPPAGE_SCALE!r} has {col.null_count()} nulls; "
                              "expected a factor in every row (1.0 where the book is normal)")
    values = col.to_numpy().astype(np.float64, copy=False)
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
    if bad.size:
        k = int(bad[0])
        raise MarketDataError(f"{what}: row {k} ({_iso(int(ts[k]))}) has {SLIPPAGE_SCALE} "
                              f"{values[k]}; expected a finite factor > 0 (1.0 = the slippage "
                              "model's own impact)")
    return values


def _feature_frame(frame: pl.DataFrame, bars: SymbolBars) -> pl.DataFrame:
    """The frame a strategy's ``features`` sees: canonical columns, ``ts`` as UTC datetime."""
    data = {"ts": pl.Series("ts", bars.ts).cast(pl.Datetime("ms", "UTC"))}
    for name in BAR_COLUMNS:
        data[name] = getattr(bars, name)
    return pl.DataFrame(data)


def _market_versions(versions: Mapping[str, Sequence[Any]] | None, symbols: Sequence[str],
                     start_ms: int | None) -> dict[str, tuple[Any, ...]]:
    """The later market spec versions per symbol, checked: known symbols, after the first bar,
    in strictly increasing ``effective_from`` order."""
    out: dict[str, tuple[Any, ...]] = {}
    for symbol, specs in (versions or {}).items():
        if symbol not in symbols:
            raise MarketDataError(f"market_versions: {symbol!r} is not a symbol of the bars "
                                  f"({', '.join(symbols)}); pass versions of the run's symbols only")
        specs = tuple(specs)
        starts = [int(spec.effective_from) for spec in specs]
        if any(b <= a for a, b in zip(starts, starts[1:])) or \
                (starts and start_ms is not None and starts[0] <= start_ms):
            raise MarketDataError(
                f"market_versions[{symbol!r}]: expected versions taking effect after the first bar "
                f"({start_ms}) in increasing effective_from order, found {starts}; pass the spec in force "
                "at the first bar as markets[symbol]")
        if specs:
            out[symbol] = specs
    return out


def _built_in_versions(exchange: str, symbol: str, first: Any, start_ms: int | None,
                       end_ms: int | None) -> tuple[Any, ...]:
    """The venue's built-in market spec versions (spec rows, fee and clearance-fee versions)
    taking effect in ``(start_ms, end_ms)``, each the spec ``default_market`` gives at its date."""
    if start_ms is None or end_ms is None:
        return ()
    from backtest.venues.defaults import _ms, clearance_fee_schedule, default_market, venue_data
    from backtest.venues.errors import VenueError

    try:
        data = venue_data(exchange)
        instants = {_ms(row["effective_from"]) for row in data.markets.get(symbol, ())}
        instants |= {int(v.effective_from) for v in data.fees.versions}
        instants |= {int(v.effective_from) for v in clearance_fee_schedule(exchange, symbol).versions}
    except VenueError:  # no built-in data for it: nothing dated to apply
        return ()
    out, previous = [], first
    for t in sorted(t for t in instants if start_ms < t < end_ms):
        spec = default_market(exchange, symbol, t)
        if spec != previous:
            out.append(spec)
            previous = spec
    return tuple(out)


def _venue_defaults(exchange: str, symbols: Sequence[str], tiers: Mapping[str, Any] | None,
                    markets: Mapping[str, Any] | None, start_ms: int | None,
                    warnings: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tier schedules and market specs per symbol: given ones, else the venue's built-in
    (the spec and fees in force at the run's first bar)."""
    from backtest.venues.base import get_venue

    out_tiers: dict[str, Any] = {}
    out_markets: dict[str, Any] = {}
    venue = None
    for symbol in symbols:
        if tiers and symbol in tiers:
            out_tiers[symbol] = tiers[symbol]
        if markets and symbol in markets:
            out_markets[symbol] = markets[symbol]
        if symbol not in out_tiers or symbol not in out_markets:
            venue = venue or get_venue(exchange)
            if symbol not in out_tiers:
                out_tiers[symbol] = venue.tier_schedule(symbol)
            if symbol not in out_markets:
                try:
                    out_markets[symbol] = venue.market(symbol, start_ms)
                except Exception:  # the venue's data starts later: use its earliest-known spec
                    out_markets[symbol] = venue.market(symbol)
                    warnings.append(f"markets[{symbol!r}]: no built-in spec/fees known at the "
                                    "first bar; the latest known ones are used")
    return out_tiers, out_markets

