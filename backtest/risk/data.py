"""The risk lab's market data: one symbol over a range, read through the one store loader.

Crash replays, stress runs and fits read the store with
:func:`backtest.market_loader.load_market`, the loader of every command (``run`` and
``sweep`` too): last-price candles (required), mark candles (mark = last with a warning where
missing: Binance liquidates on the mark price, which is smoother — in the 2020-03-13 02:00 UTC
hour the BTCUSDT mark low was 3,801.83 against a last-price low of 3,621.81), funding, and the
stored tiers and markets where they cover the date (the built-in dated tables otherwise, named
in a warning). Missing last-price candles raise :class:`MissingWindowDataError` naming the
window, the data and the exact command that fetches or imports it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from backtest.market_loader import fetch_command, import_command
from backtest.risk.errors import MissingWindowDataError

__all__ = ["WindowData", "fetch_command", "import_command", "load_window"]


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
        Data-quality warnings (mark fallback, partial coverage, built-in tables used).
    tiers : TierSchedule or None
        The symbol's tier schedule (stored where it covers the date, built-in before); None:
        the venue's built-in schedule.
    market : MarketSpec or None
        The symbol's contract spec and fees; None: the venue's built-in spec.
    sources : list of dict
        Provenance of what was read.
    """

    bars: pl.DataFrame
    funding: pl.DataFrame | None
    warnings: list[str] = field(default_factory=list)
    tiers: Any = None
    market: Any = None
    sources: list[dict[str, Any]] = field(default_factory=list)

    def market_kwargs(self, symbol: str) -> dict[str, Any]:
        """``tiers=`` / ``markets=`` / ``sources=`` for ``MarketData.from_frames`` of ``symbol``."""
        return {"tiers": None if self.tiers is None else {symbol: self.tiers},
                "markets": None if self.market is None else {symbol: self.market},
                "sources": self.sources}

    def market_data(self, symbol: str, *, timeframe: str, exchange: str) -> Any:
        """The window as ``backtest.MarketData`` (tables and warnings kept)."""
        from backtest.market_data import MarketData

        return MarketData.from_frames({symbol: self.bars}, None if self.funding is None else {symbol: self.funding},
                                      timeframe=timeframe, exchange=exchange, quality_warnings=self.warnings,
                                      **self.market_kwargs(symbol))

    @property
    def last_ms(self) -> int:
        """Open time of the last bar, UTC ms."""
        from data_loaders.schemas import to_ms

        return to_ms(self.bars["ts"][-1])


def load_window(store: Any, *, exchange: str, symbol: str, timeframe: str, start_ms: int | None,
                end_ms: int | None, label: str) -> WindowData:
    """Read one symbol's candles, funding, tiers and market over ``[start_ms, end_ms)``.

    Parameters
    ----------
    store : MarketStore
        The store (``data_loaders.store.MarketStore``).
    exchange, symbol, timeframe : str
        What to read.
    start_ms, end_ms : int or None
        UTC ms range, end exclusive (None: open).
    label : str
        Name of the window for messages (e.g. ``crash window '2020-03-12'``).

    Raises
    ------
    MissingWindowDataError
        When no last-price candle of the range is stored.
    """
    from backtest.market_loader import MissingStoreDataError, load_market

    try:
        loaded = load_market(store, exchange=exchange, symbols=[symbol], timeframe=timeframe, start=start_ms,
                             end=end_ms, label=label)
    except MissingStoreDataError as exc:
        raise MissingWindowDataError(str(exc)) from None
    return WindowData(bars=loaded.bars[symbol], funding=loaded.funding.get(symbol), warnings=loaded.warnings,
                      tiers=loaded.tiers[symbol], market=loaded.markets[symbol], sources=loaded.sources)
