"""Shared set-up of the per-exchange ``data fetch`` tests (tests/data/test_fetch_<venue>.py).

A real ccxt instance of the exchange (built by :func:`data_loaders.ccxt_client.create_exchange`,
as the command builds it) has its HTTP replaced by :class:`tests.data.ccxt_replay.ReplayTransport`
serving ``tests/data/recorded/<exchange>/``; its markets are loaded from the recorded listing by
ccxt's own ``load_markets``. Rows are read back from the Parquet store through DuckDB
(``MarketStore.connect``). Window: 2025-10-10T00:00Z .. 2025-10-13T00:00Z, 1 h candles,
pages cut at 24 rows (``max_page``) so every candle fetch crosses two page boundaries.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from data_loaders.ccxt_client import CapabilityError
from data_loaders.ccxt_fetch import FetchReport, FetchRequest, RetryPolicy, fetch_to_store
from data_loaders.store import MarketStore
from tests.data.ccxt_replay import RECORDED, ReplayTransport, replay_exchange

HOUR = 3_600_000
T0 = 1760054400000  # 2025-10-10T00:00Z
END = T0 + 72 * HOUR  # 2025-10-13T00:00Z
NOW = 1767225600000  # 2026-01-01T00:00Z, the injected fetch time
PAGE = 24


def replay_client(exchange_id: str) -> tuple[Any, ReplayTransport]:
    """A real ccxt instance of ``exchange_id`` whose HTTP replays the recordings (no API key)."""
    return replay_exchange(exchange_id)


def fetched(tmp_path: Path, exchange_id: str, what: tuple[str, ...], *,
            symbols: tuple[str, ...]) -> tuple[MarketStore, ReplayTransport]:
    """Fetch ``what`` from the recordings into a new store under ``tmp_path``.

    Returns the store and the transport (its ``log`` of requests; ``transport.exchange`` is the
    ccxt instance, with the markets it loaded).
    """
    store = MarketStore(tmp_path / "store")
    client, transport = replay_client(exchange_id)
    fetch(store, exchange_id, what, symbols=symbols, client=client)
    return store, transport


def refusal(tmp_path: Path, exchange_id: str, what: tuple[str, ...], symbol: str) -> str:
    """The message refusing ``what`` before any request; asserts nothing was asked or stored."""
    client, transport = replay_client(exchange_id)
    store = MarketStore(tmp_path / "store")
    with pytest.raises(CapabilityError) as caught:
        fetch(store, exchange_id, what, symbols=(symbol,), client=client)
    assert transport.log == [] and not any(store.root.rglob("*.parquet"))
    return str(caught.value)


def fetch(store: MarketStore, exchange_id: str, what: tuple[str, ...], *, symbols: tuple[str, ...],
          client: Any = None, since: int = T0, until: int = END, sleeps: list | None = None,
          max_tries: int = 6) -> FetchReport:
    """Run ``data fetch`` for the window with the tests' page size and fetch time."""
    if client is None:
        client, _ = replay_client(exchange_id)
    request = FetchRequest(exchange=exchange_id, symbols=symbols, timeframe="1h", since=since, until=until,
                           what=what)
    retry = RetryPolicy(max_tries=max_tries, sleep=sleeps.append if sleeps is not None else (lambda s: None))
    return fetch_to_store(request, store, client=client, retry=retry, clock=lambda: NOW, max_page=PAGE)


def sql(store: MarketStore, query: str, *params: Any) -> list[tuple]:
    """Rows of a DuckDB query over the store's views."""
    return store.connect().execute(query, list(params)).fetchall()


def candles(store: MarketStore, exchange_id: str, symbol: str, price_type: str) -> list[tuple]:
    """Stored 1 h candles ``(epoch ms, open, high, low, close, volume)`` in time order."""
    return sql(store, "select epoch_ms(ts), open, high, low, close, volume from ohlcv where exchange = ? "
                      "and symbol = ? and timeframe = '1h' and price_type = ? order by ts",
               exchange_id, symbol, price_type)


def funding(store: MarketStore, exchange_id: str, symbol: str) -> list[tuple]:
    """Stored settlements ``(epoch ms, rate, interval_hours, mark_price)`` in time order."""
    return sql(store, "select epoch_ms(ts), rate, interval_hours, mark_price from funding where exchange = ? "
                      "and symbol = ? order by ts", exchange_id, symbol)


def recorded(exchange_id: str, name: str) -> list[dict]:
    """The recorded exchanges of ``recorded/<exchange_id>/<name>.json``."""
    return json.loads((RECORDED / exchange_id / f"{name}.json").read_text())


def bodies(exchange_id: str, name: str) -> list[Any]:
    """Just the response bodies of a recording file, in file order."""
    return [item["response"]["body"] for item in recorded(exchange_id, name)]
