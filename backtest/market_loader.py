"""The one market-data loader of every command: candles, funding, tiers and markets from a store.

``run``, ``sweep``, ``replay``, ``stress``, ``mc`` and ``survive`` all read the store through
:func:`load_market`, so they apply the same rules:

* **Last-price candles** are required; when none are stored for the range the error names the
  market, the range and the command that fetches (or imports) them.
* **Mark candles**: Binance liquidates on the mark price. Bars without a stored mark candle
  take mark = last price, and a data-quality warning says so with the command that fetches
  the mark (liquidations then trigger on traded wicks: pessimistic for the trader).
* **Funding**: the stored settlements of the range (none: the engine warns and applies none).
* **Risk tiers and market specs**: the stored ``risk_tiers`` / ``markets`` where they cover
  the date, the venue's built-in dated tables otherwise
  (:func:`backtest.venues.defaults.resolve_tier_schedule`,
  :func:`~backtest.venues.defaults.resolve_market`); each built-in table used is named in a
  warning with its source and ``effective_from``.

Every warning lands in :attr:`LoadedMarket.warnings` and from there in the
``MarketData.quality_warnings`` that each command prints (and the run manifest records).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from backtest.errors import MarketDataError
from backtest.market_data import MarketData, timeframe_ms
from backtest.spill import SPILL_BARS, Spill

__all__ = ["LoadedMarket", "MissingStoreDataError", "fetch_command", "import_command", "load_market"]

_OHLC = ("open", "high", "low", "close")


class MissingStoreDataError(MarketDataError, LookupError):
    """The store holds no last-price candles of a market over the range asked for."""


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def fetch_command(*, exchange: str, symbol: str, timeframe: str, start_ms: int | None, end_ms: int | None,
                  what: str = "ohlcv,mark,funding") -> str:
    """The ``margincall data fetch`` command line that downloads the range (end day inclusive)."""
    since = f" --since {_day(start_ms)}" if start_ms is not None else " --since YYYY-MM-DD"
    until = f" --until {_day(end_ms + 86_399_999)}" if end_ms is not None else ""  # --until is exclusive
    return (f"margincall data fetch --exchange {exchange} --symbol {symbol} --timeframe {timeframe}"
            f"{since}{until} --what {what}")


def import_command(*, symbol: str, timeframe: str, price_type: str = "last") -> str:
    """The ``margincall data import`` command line for a local Binance dump file."""
    kind = "markPriceKlines" if price_type == "mark" else "klines"
    return (f"margincall data import PATH --kind {kind} --symbol {symbol} --timeframe {timeframe}"
            + (" --price-type mark" if price_type == "mark" else ""))


@dataclass(frozen=True)
class LoadedMarket:
    """What :func:`load_market` read: engine-format frames plus the tables and warnings.

    Attributes
    ----------
    exchange, timeframe : str
        The market and the bars' timeframe.
    bars : dict of str to DataFrame
        Per symbol ``ts, open, high, low, close, volume, mark_open, mark_high, mark_low,
        mark_close`` (mark = last where no mark candle is stored, with a warning).
    funding : dict of str to DataFrame
        Per symbol with stored settlements: ``ts, rate, interval_hours, mark_price``.
    detail : dict of str to DataFrame or None
        Finer candles (same columns) when a detail timeframe was asked for.
    detail_timeframe : str or None
        Their timeframe.
    tiers : dict of str to TierSchedule
        Stored versions where they cover the date, built-in before.
    markets : dict of str to MarketSpec
        The spec in force at the first bar (stored, else built-in).
    sources : list of dict
        Provenance (files, checksums, rows, range) for the manifest.
    warnings : list of str
        Data-quality warnings (mark fallback, partial coverage, built-in tables used).
    """

    exchange: str
    timeframe: str
    bars: dict[str, pl.DataFrame]
    funding: dict[str, pl.DataFrame]
    tiers: dict[str, Any]
    markets: dict[str, Any]
    detail: dict[str, pl.DataFrame] | None = None
    detail_timeframe: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Per symbol, the stored market spec versions taking effect inside the range.
    market_versions: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    #: The scratch-file maps holding the bar columns of a long or wide range
    #: (``backtest.spill``; each symbol's frame is spilled as soon as it is read), or None.
    spill: Any = None

    def market_data(self) -> MarketData:
        """The loaded frames as :class:`~backtest.market_data.MarketData` (tables and warnings kept)."""
        return MarketData.from_frames(self.bars, self.funding or None, timeframe=self.timeframe,
                                      detail_bars=self.detail, detail_timeframe=self.detail_timeframe,
                                      tiers=self.tiers, markets=self.markets, exchange=self.exchange,
                                      sources=self.sources, quality_warnings=self.warnings,
                                      market_versions=self.market_versions,
                                      spill=self.spill if self.spill is not None else False)


def load_market(store: Any, *, exchange: str, symbols: Sequence[str], timeframe: str,
                start: int | datetime | None = None, end: int | datetime | None = None,
                detail_timeframe: str | None = None, label: str | None = None,
                tables: str | None = None) -> LoadedMarket:
    """Read candles (last + mark), funding, tiers and markets of ``[start, end)`` from a store.

    Parameters
    ----------
    store : MarketStore
        ``data_loaders.store.MarketStore``.
    exchange : str
        ccxt exchange id of the stored data.
    symbols : sequence of str
        ccxt unified symbols.
    timeframe : str
        Candle timeframe of the strategy bars.
    start, end : int (UTC ms) or datetime, optional
        Range, end exclusive; None = everything stored.
    detail_timeframe : str, optional
        Finer candles for the intrabar path.
    label : str, optional
        What the data is for, starting every message (e.g. ``crash window '2020-03-12'``).
    tables : str, optional
        Exchange or venue whose tiers and market specs apply (stored, else built-in); default
        ``exchange``. Another venue's, when its rules run on these prices
        (:func:`backtest.compare.price_source`).

    Raises
    ------
    MissingStoreDataError
        No last-price candle of a symbol in the range (the message has the fetch command).
    MarketDataError
        Stored tiers the engine cannot use (the message names the fix).
    """
    from data_loaders.schemas import to_ms

    start_ms = None if start is None else to_ms(start)
    end_ms = None if end is None else to_ms(end)
    what = label or f"{exchange} {timeframe} data"
    warnings: list[str] = []
    sources: list[dict[str, Any]] = []
    bars, detail, funding, tiers, markets, versions = {}, {}, {}, {}, {}, {}
    spill = None
    for symbol in symbols:
        last = _last(store, exchange, symbol, timeframe, start_ms, end_ms, what)
        if spill is None and last.count() * len(symbols) >= SPILL_BARS:
            # a long or wide range: every symbol's candles are read batch by batch straight
            # to disk, never whole in memory (backtest.spill)
            spill = Spill()
        bars[symbol] = _bars(store, exchange, symbol, timeframe, start_ms, end_ms, what, sources, warnings,
                             last, spill)
        if detail_timeframe:
            detail[symbol] = _bars(store, exchange, symbol, detail_timeframe, start_ms, end_ms, what, sources,
                                   warnings, _last(store, exchange, symbol, detail_timeframe, start_ms, end_ms,
                                                   what), spill)
        frame = _read(store, "funding", exchange=exchange, symbol=symbol, start=start_ms, end=end_ms)
        if frame is not None and frame.height:
            funding[symbol] = frame.select("ts", "rate", "interval_hours", "mark_price")
            sources.append(_source(store, "funding", exchange, symbol, None, frame))
        ts = bars[symbol]["ts"]
        first = to_ms(ts[0])
        last = to_ms(ts[-1]) + timeframe_ms(timeframe)
        tiers[symbol] = _tiers(store, tables or exchange, symbol, first, last, sources, warnings)
        markets[symbol], later = _markets(store, tables or exchange, symbol, first, last, sources, warnings)
        if later:
            versions[symbol] = later
    return LoadedMarket(exchange=exchange, timeframe=timeframe, bars=bars, funding=funding, tiers=tiers,
                        markets=markets, detail=detail or None, detail_timeframe=detail_timeframe,
                        sources=sources, warnings=warnings, market_versions=versions, spill=spill)


def _read(store: Any, dataset: str, **query: Any) -> pl.DataFrame | None:
    """``store.read(dataset, ...)``, None when nothing of it is stored."""
    from data_loaders.errors import DataNotFoundError

    try:
        return store.read(dataset, **query)
    except DataNotFoundError:
        return None


def _span(start_ms: int | None, end_ms: int | None) -> str:
    if start_ms is None and end_ms is None:
        return "the whole stored range"
    if end_ms is None:
        return f"the window from start {_day(start_ms)} on"
    if start_ms is None:
        return f"the window before end {_day(end_ms)}"
    return f"the window start {_day(start_ms)} .. end {_day(end_ms - 1)}"


class _Last:
    """The last-price candles of a symbol's window, not read yet (counted once, on demand)."""

    def __init__(self, batches: Any) -> None:
        self.batches = batches
        self._rows: int | None = None

    def count(self) -> int:
        if self._rows is None:
            self._rows = self.batches.count()
        return self._rows


def _fix(exchange: str, symbol: str, timeframe: str, start_ms: int | None, end_ms: int | None) -> tuple[str, str]:
    """The fetch command of the window and the sentence saying how to get the candles."""
    fetch = fetch_command(exchange=exchange, symbol=symbol, timeframe=timeframe, start_ms=start_ms, end_ms=end_ms)
    fix = f"Fetch them with `{fetch}` or import a dump with `{import_command(symbol=symbol, timeframe=timeframe)}`"
    return fetch, fix


def _last(store: Any, exchange: str, symbol: str, timeframe: str, start_ms: int | None, end_ms: int | None,
          what: str) -> _Last:
    """The stored last-price candles of the window, as batches not read yet (None stored: the
    error with the fetch command)."""
    from data_loaders.errors import DataNotFoundError

    _, fix = _fix(exchange, symbol, timeframe, start_ms, end_ms)
    try:
        batches = store.read_batches("ohlcv", exchange=exchange, symbol=symbol, timeframe=timeframe,
                                     price_type="last", start=start_ms, end=end_ms, columns=["ts", *_OHLC, "volume"])
    except DataNotFoundError as exc:
        raise MissingStoreDataError(
            f"{what}: expected {timeframe} last-price candles of symbol {symbol} on exchange {exchange} in the "
            f"store, found none for {_span(start_ms, end_ms)} ({exc}). Pick a stored market, or "
            f"{fix[0].lower()}{fix[1:]}") from None
    return _Last(batches)


def _bars(store: Any, exchange: str, symbol: str, timeframe: str, start_ms: int | None, end_ms: int | None,
          what: str, sources: list[dict[str, Any]], warnings: list[str], last: _Last, spill: Any) -> pl.DataFrame:
    """Last candles joined with the mark ones; mark = last (warned) where no mark is stored.

    With a ``spill`` (a long or wide range) both are read batch by batch to its scratch file
    and joined there chunk by chunk (:func:`_streamed_mark`): the same frame, never whole in
    memory. Otherwise they are read whole.
    """
    fetch, fix = _fix(exchange, symbol, timeframe, start_ms, end_ms)
    span = _span(start_ms, end_ms)
    n = last.count()
    if n == 0:
        held = store.read("ohlcv", exchange=exchange, symbol=symbol, timeframe=timeframe, price_type="last")["ts"]
        raise MissingStoreDataError(
            f"{what}: expected a window (start/end) that overlaps the stored {symbol} {timeframe} candles on "
            f"{exchange}, {held.min():%Y-%m-%d %H:%M} .. {held.max():%Y-%m-%d %H:%M} UTC, found none in {span}. "
            f"Move the window, or {fix[0].lower()}{fix[1:]}")
    if spill is None:
        frame = store.read("ohlcv", exchange=exchange, symbol=symbol, timeframe=timeframe, price_type="last",
                           start=start_ms, end=end_ms).select("ts", *_OHLC, "volume")
    else:
        frame = spill.batches(last.batches.schema(), n, lambda: iter(last.batches))
    sources.append(_source(store, "ohlcv", exchange, symbol, timeframe, frame, "last"))
    if start_ms is not None and end_ms is not None:
        expected = (end_ms - start_ms) // timeframe_ms(timeframe)
        if n < expected:
            warnings.append(f"{what}: {symbol} {timeframe} covers {n} of {expected} bars of {span}; "
                            f"the run uses what is stored (complete it with `{fetch}`)")
    from data_loaders.schemas import to_ms

    # the mark fetch command covers what the run reads, also when no range was given
    covered = (to_ms(frame["ts"][0]) if start_ms is None else start_ms,
               to_ms(frame["ts"][-1]) + timeframe_ms(timeframe) if end_ms is None else end_ms)
    fetch_mark = fetch_command(exchange=exchange, symbol=symbol, timeframe=timeframe, start_ms=covered[0],
                               end_ms=covered[1], what="mark")
    query = dict(exchange=exchange, symbol=symbol, timeframe=timeframe, price_type="mark", start=start_ms, end=end_ms)
    mark_spill = None
    if spill is None:
        mark = _read(store, "ohlcv", **query)
    else:
        mark, mark_spill = _read_mark_batches(store, query, spill) or (None, None)
    if mark is None or mark.height == 0:
        from data_loaders.ccxt_venues import profile

        # an exchange that serves no mark candles (BitMEX, Hyperliquid, dYdX) gets what to import
        remedy = profile(exchange).missing.get("mark") or f"Fetch the mark with `{fetch_mark}`"
        warnings.append(f"{what}: no {timeframe} mark-price candles of {symbol}; mark = last price (liquidations "
                        f"trigger on traded wicks, which Binance does not do: results are pessimistic). {remedy}")
        return frame.with_columns([pl.col(c).alias(f"mark_{c}") for c in _OHLC])
    sources.append(_source(store, "ohlcv", exchange, symbol, timeframe, mark, "mark"))
    if spill is None:
        mark = mark.select("ts", *[pl.col(c).alias(f"mark_{c}") for c in _OHLC])
        joined = frame.join(mark, on="ts", how="left", maintain_order="left")
        missing = joined["mark_close"].null_count()
    else:
        joined, missing = _streamed_mark(frame, mark, spill, mark_spill)
    if missing:
        warnings.append(f"{what}: {missing} of {joined.height} {symbol} {timeframe} bars have no mark candle; "
                        f"mark = last price on those bars (fetch the mark candles: `{fetch_mark}`)")
        if spill is None:
            joined = joined.with_columns([pl.col(f"mark_{c}").fill_null(pl.col(c)) for c in _OHLC])
    return joined


#: Rows per chunk of the streamed mark join (six 8-byte columns: 3 MiB).
_JOIN_ROWS = 1 << 16


def _read_mark_batches(store: Any, query: dict[str, Any], spill: Any) -> tuple[pl.DataFrame, Any] | None:
    """The window's mark candles read batch by batch into a scratch file of their own
    (dropped with the frame once joined) and that file's ``Spill``, or None when none are stored."""
    from backtest.spill import Spill
    from data_loaders.errors import DataNotFoundError

    try:
        batches = store.read_batches("ohlcv", columns=["ts", *_OHLC], **query)
    except DataNotFoundError:
        return None
    m = batches.count()
    if not m:
        return None
    own = Spill(spill.directory)
    return own.batches(batches.schema(), m, lambda: iter(batches)), own


def _streamed_mark(frame: pl.DataFrame, mark: pl.DataFrame, spill: Any,
                   mark_spill: Any = None) -> tuple[pl.DataFrame, int]:
    """``frame`` with ``mark_*`` columns: the mark candle of the same ``ts``, else the last
    price (the whole-frame path's left join and fill), written to ``spill`` chunk by chunk.
    Returns the frame and how many bars had no mark candle."""
    import numpy as np

    if mark.schema["ts"] != frame.schema["ts"]:
        mark = mark.with_columns(pl.col("ts").cast(frame.schema["ts"]))
    last_ts = frame["ts"].to_physical().to_numpy()
    mark_ts = mark["ts"].to_physical().to_numpy()
    top = len(mark_ts) - 1

    def matched(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        at = np.minimum(np.searchsorted(mark_ts, last_ts[start:stop]), top)
        return at, mark_ts[at] == last_ts[start:stop]

    n = frame.height
    missing = sum(int((~matched(a, min(n, a + _JOIN_ROWS))[1]).sum()) for a in range(0, n, _JOIN_ROWS))
    columns = []
    for c in _OHLC:
        marks, lasts = mark[c].to_numpy(), frame[c].to_numpy()

        def values(start: int, stop: int, marks: np.ndarray = marks, lasts: np.ndarray = lasts) -> np.ndarray:
            at, hit = matched(start, stop)
            return np.where(hit, marks[at], lasts[start:stop])

        columns.append(pl.Series(f"mark_{c}", spill.column(n, np.float64, values, _JOIN_ROWS)))
        # the pages read for the join leave resident memory column by column
        spill.release(0, n)
        if mark_spill is not None:
            mark_spill.release(0, mark.height)
    return frame.with_columns(columns), missing


def _tiers(store: Any, exchange: str, symbol: str, start_ms: int, end_ms: int, sources: list[dict[str, Any]],
           warnings: list[str]) -> Any:
    from backtest.venues.defaults import resolve_tier_schedule
    from backtest.venues.errors import TierError
    from backtest.venues.tiers import TierSchedule
    from data_loaders.ccxt_tiers import tier_bound_unit

    frame = _read(store, "risk_tiers", exchange=exchange, symbol=symbol)
    stored = None
    if frame is not None and frame.height:
        # the stored rows carry no unit: the exchange's own (OKX counts contracts) is the
        # table's basis, and the engine looks each position up by it (TierTable.for_position)
        try:
            stored = TierSchedule.from_frame(frame, exchange=exchange, symbol=symbol,
                                             basis=tier_bound_unit(exchange))
        except TierError as exc:
            raise MarketDataError(
                f"stored risk_tiers of {exchange} {symbol}: the engine cannot use them ({exc}). Remove the bad "
                "import (`margincall data rm`) and import a valid tier table") from None
        sources.append(_source(store, "risk_tiers", exchange, symbol, None, frame))
    return resolve_tier_schedule(exchange, symbol, stored, start_ms=start_ms, end_ms=end_ms, warnings=warnings)


def _markets(store: Any, exchange: str, symbol: str, start_ms: int, end_ms: int, sources: list[dict[str, Any]],
             warnings: list[str]) -> tuple[Any, tuple[Any, ...]]:
    """The market spec in force at ``start_ms`` and the stored versions taking effect in
    ``(start_ms, end_ms)``, each resolved by the one rule (``resolve_market``) at its date."""
    from backtest.venues.defaults import resolve_market
    from data_loaders.schemas import to_ms

    frame = _read(store, "markets", exchange=exchange, symbol=symbol)
    rows = None
    if frame is not None and frame.height:
        rows = frame.to_dicts()
        sources.append(_source(store, "markets", exchange, symbol, None, frame))
    try:
        first = resolve_market(exchange, symbol, rows, start_ms=start_ms, end_ms=end_ms, warnings=warnings)
        starts = sorted({to_ms(r["effective_from"]) for r in rows or ()})
        later = tuple(resolve_market(exchange, symbol, rows, start_ms=s, end_ms=end_ms, warnings=[])
                      for s in starts if start_ms < s < end_ms)
    except ValueError as exc:  # a stored row MarketSpec refuses (e.g. tick size 0)
        raise MarketDataError(f"stored markets of {exchange} {symbol}: {exc}. Re-import the markets "
                              "(`margincall data import`) or remove the bad rows (`margincall data rm`)") from None
    return first, later


def _source(store: Any, dataset: str, exchange: str, symbol: str, timeframe: str | None,
            frame: pl.DataFrame, price_type: str | None = None) -> dict[str, Any]:
    """Provenance of a dataset read from the store: files with checksums, rows and range."""
    entry: dict[str, Any] = {"dataset": dataset, "exchange": exchange, "symbol": symbol,
                             "timeframe": timeframe, "price_type": price_type, "rows": frame.height}
    time_column = "ts" if "ts" in frame.columns else "effective_from" if "effective_from" in frame.columns else None
    if frame.height and time_column:
        entry["range"] = [str(frame[time_column].min()), str(frame[time_column].max())]
    files = []
    try:
        from data_loaders.store import sha256_file

        kwargs = {"exchange": exchange, "symbol": symbol}
        if timeframe is not None:
            kwargs["timeframe"] = timeframe
        if price_type is not None:
            kwargs["price_type"] = price_type
        directory = Path(store.partition_dir(dataset, **kwargs))
        for path in sorted(directory.rglob("*.parquet")):
            files.append({"path": str(path), "sha256": sha256_file(path)})
        entry["path"] = str(directory)
    except Exception as exc:  # provenance is best effort; the data itself was read fine
        entry["files_error"] = str(exc)
    entry["files"] = files
    # One digest per dataset partition: the sha256 of its files' sha256 in path order, so a
    # report can show a single checksum that changes when any stored file changes.
    combined = hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()
    entry["sha256"] = combined if files else None
    return entry
