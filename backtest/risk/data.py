"""Reading the risk lab's market data from the store, with the mark-price fallback made explicit.

Crash replays and fits need last-price candles, mark-price candles and funding for a symbol
over a range. Missing last-price candles raise :class:`MissingWindowDataError` naming the
window, the data and the exact command that fetches or imports it. Missing mark candles do not
stop a replay: the mark is taken equal to the last price and a data-quality warning says so
(liquidations then trigger on traded wicks, which is pessimistic for the trader: Binance
liquidates on the mark price, which is smoother — in the 2020-03-13 02:00 UTC hour the BTCUSDT
mark low was 3,801.83 against a last-price low of 3,621.81).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import polars as pl

from backtest.risk.errors import MissingWindowDataError

__all__ = ["WindowData", "fetch_command", "import_command", "load_window"]


def _iso_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def fetch_command(*, exchange: str, symbol: str, timeframe: str, start_ms: int, end_ms: int,
                  what: str = "ohlcv,mark,funding") -> str:
    """The ``margincall data fetch`` command line that downloads the range (end day inclusive)."""
    until = _iso_day(end_ms + 86_399_999)  # --until is exclusive: round the end up to a whole day
    return (f"margincall data fetch --exchange {exchange} --symbol {symbol} --timeframe {timeframe} "
            f"--since {_iso_day(start_ms)} --until {until} --what {what}")


def import_command(*, symbol: str, timeframe: str, price_type: str = "last") -> str:
    """The ``margincall data import`` command line for a local Binance dump file."""
    kind = "markPriceKlines" if price_type == "mark" else "klines"
    return (f"margincall data import PATH --kind {kind} --symbol {symbol} --timeframe {timeframe}"
            + (" --price-type mark" if price_type == "mark" else ""))


@dataclass(frozen=True)
class WindowData:
    """Bars and funding of one symbol over a range, in the engine's format.

    Attributes
    ----------
    bars : DataFrame
        ``ts, open, high, low, close, volume, mark_open, mark_high, mark_low, mark_close``.
    funding : DataFrame or None
        ``ts, rate, interval_hours, mark_price`` or None when none is stored.
    warnings : list of str
        Data-quality warnings (mark fallback, partial coverage, no funding).
    """

    bars: pl.DataFrame
    funding: pl.DataFrame | None
    warnings: list[str] = field(default_factory=list)


def load_window(store: Any, *, exchange: str, symbol: str, timeframe: str, start_ms: int, end_ms: int,
                label: str) -> WindowData:
    """Read last + mark candles and funding of ``[start_ms, end_ms)`` from a ``MarketStore``.

    Parameters
    ----------
    store : MarketStore
        The store (``data_loaders.store.MarketStore``).
    exchange, symbol, timeframe : str
        What to read.
    start_ms, end_ms : int
        UTC ms range, end exclusive.
    label : str
        Name of the window for messages (e.g. ``crash window '2020-03-12'``).

    Raises
    ------
    MissingWindowDataError
        When no last-price candle of the range is stored.
    """
    from backtest.risk.crashes import timeframe_ms
    from data_loaders.errors import DataError

    interval_ms = timeframe_ms(timeframe)  # to judge coverage
    fetch = fetch_command(exchange=exchange, symbol=symbol, timeframe=timeframe, start_ms=start_ms, end_ms=end_ms)
    span = f"{_iso_day(start_ms)} .. {_iso_day(end_ms - 1)}"
    try:
        last = store.read("ohlcv", exchange=exchange, symbol=symbol, timeframe=timeframe, price_type="last",
                          start=start_ms, end=end_ms)
    except DataError as exc:
        raise MissingWindowDataError(
            f"{label}: no {timeframe} last-price candles of {symbol} on {exchange} for {span} in the store "
            f"({exc.__class__.__name__}). Fetch them with `{fetch}` or import a dump with "
            f"`{import_command(symbol=symbol, timeframe=timeframe)}`") from None
    if last.height == 0:
        raise MissingWindowDataError(
            f"{label}: the store has {symbol} {timeframe} candles on {exchange}, but none in {span}. "
            f"Fetch them with `{fetch}` or import a dump with `{import_command(symbol=symbol, timeframe=timeframe)}`")
    warnings: list[str] = []
    expected = (end_ms - start_ms) // interval_ms
    if last.height < expected:
        warnings.append(f"{label}: {symbol} {timeframe} covers {last.height} of {expected} bars of {span}; "
                        f"the replay runs on what is stored (complete it with `{fetch}`)")
    bars = last.select("ts", "open", "high", "low", "close", "volume")
    try:
        mark = store.read("ohlcv", exchange=exchange, symbol=symbol, timeframe=timeframe, price_type="mark",
                          start=start_ms, end=end_ms)
    except DataError:
        mark = pl.DataFrame()
    if mark.height:
        mark = mark.select("ts", *[pl.col(c).alias(f"mark_{c}") for c in ("open", "high", "low", "close")])
        joined = bars.join(mark, on="ts", how="left", maintain_order="left")
        missing = joined["mark_close"].null_count()
        if missing:
            warnings.append(f"{label}: {missing} of {joined.height} {symbol} {timeframe} bars have no mark candle; "
                            "mark = last price on those bars (fetch the mark candles: "
                            f"`{fetch_command(exchange=exchange, symbol=symbol, timeframe=timeframe, start_ms=start_ms, end_ms=end_ms, what='mark')}`)")
            joined = joined.with_columns([pl.col(f"mark_{c}").fill_null(pl.col(c)) for c in ("open", "high", "low", "close")])
        bars = joined
    else:
        warnings.append(f"{label}: no {timeframe} mark-price candles of {symbol}; mark = last price (liquidations "
                        "trigger on traded wicks, which Binance does not do: results are pessimistic). Fetch the mark "
                        f"with `{fetch_command(exchange=exchange, symbol=symbol, timeframe=timeframe, start_ms=start_ms, end_ms=end_ms, what='mark')}`")
        bars = bars.with_columns([pl.col(c).alias(f"mark_{c}") for c in ("open", "high", "low", "close")])
    try:
        funding = store.read("funding", exchange=exchange, symbol=symbol, start=start_ms, end=end_ms)
        funding = funding.select("ts", "rate", "interval_hours", "mark_price") if funding.height else None
    except DataError:
        funding = None
    if funding is None:
        warnings.append(f"{label}: no funding of {symbol} stored for {span}; no funding is applied")
    return WindowData(bars=bars, funding=funding, warnings=warnings)
