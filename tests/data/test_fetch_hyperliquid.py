"""``data fetch --exchange hyperliquid``: recorded ``POST /info`` bodies -> ccxt's hyperliquid
parsing -> the store.

Hyperliquid answers a startTime/endTime window oldest-first (cut at 500 funding rows / 5000
candles; the recordings cut at 24 to exercise paging), settles funding hourly, publishes no
mark or index candles, and keeps its margin tables in the ``meta`` answer. Set-up:
tests/data/venue_fetch.py.
"""
from __future__ import annotations

import pytest

from data_loaders.ccxt_client import CapabilityError
from data_loaders.store import MarketStore
from tests.data.venue_fetch import END, HOUR, NOW, T0, bodies, candles, fetch, fetched, funding, replay_client, sql

BTC = "BTC/USDC:USDC"


def _bodies_of(transport, kind: str) -> list[dict]:
    return [r.body for r in transport.log if r.body and r.body["type"] == kind]


def test_candles_are_paged_forward(tmp_path):
    store, transport = fetched(tmp_path, "hyperliquid", ("ohlcv",), symbols=(BTC,))
    stored = candles(store, "hyperliquid", BTC, "last")
    assert [row[0] for row in stored] == list(range(T0, END, HOUR))
    raw = {c["t"]: c for body in bodies("hyperliquid", "info-candleSnapshot") for c in body}
    for ts, open_, high, low, close, volume in stored:
        wire = raw[ts]
        assert (open_, high, low, close, volume) == tuple(float(wire[k]) for k in "ohlcv")
    # each page starts one bar after the last one received; the coin is asked by name
    requests = [b["req"] for b in _bodies_of(transport, "candleSnapshot")]
    assert [r["startTime"] for r in requests] == [T0, T0 + 24 * HOUR, T0 + 48 * HOUR]
    assert {(r["coin"], r["interval"], r["endTime"]) for r in requests} == {("BTC", "1h", END - 1)}


def test_hourly_funding_is_stamped_on_the_hour(tmp_path):
    store, transport = fetched(tmp_path, "hyperliquid", ("funding",), symbols=(BTC,))
    rows = funding(store, "hyperliquid", BTC)
    raw = {(e["time"] + 500) // 1000 * 1000: float(e["fundingRate"])
           for body in bodies("hyperliquid", "info-fundingHistory") for e in body}
    # settlements arrive a few ms after the hour; stored on the second, 1 h apart
    assert [r[0] for r in rows] == list(range(T0, END, HOUR))
    assert [r[1] for r in rows] == [raw[ts] for ts in range(T0, END, HOUR)]
    assert {r[2] for r in rows} == {1.0}
    starts = [b["startTime"] for b in _bodies_of(transport, "fundingHistory")]
    assert starts[0] == T0 and len(starts) == 4  # 3 pages of 24, then an empty answer ends it
    assert all(later > earlier for earlier, later in zip(starts, starts[1:]))


def test_margin_tables_come_from_meta(tmp_path):
    store, transport = fetched(tmp_path, "hyperliquid", ("tiers",), symbols=(BTC,))
    tiers = sql(store, "select notional_floor, notional_cap, max_leverage, maint_margin_rate, maint_amount, "
                       "epoch_ms(effective_from) from risk_tiers where exchange = 'hyperliquid' order by tier")
    # BTC's table 56: 40x below 150M USDC, 20x above; maintenance = half the initial margin at max
    # leverage (1/80, 1/40), deduction continuous at the 150M floor: 150e6 * (1/40 - 1/80)
    assert tiers == [(0.0, 150e6, 40.0, 1 / 80, 0.0, NOW),
                     (150e6, float("inf"), 20.0, 1 / 40, pytest.approx(150e6 * (1 / 40 - 1 / 80)), NOW)]
    assert _bodies_of(transport, "meta") == [{"type": "meta"}]


def test_markets_are_usdc_perpetuals(tmp_path):
    store, transport = fetched(tmp_path, "hyperliquid", ("markets",), symbols=(BTC, "ETH/USDC:USDC"))
    rows = {r[0]: r[1:] for r in sql(store, "select symbol, base, settle, contract_type, lot_size, min_qty, "
                                            "min_notional, maker_fee, taker_fee from markets")}
    market = transport.exchange.market(BTC)
    # szDecimals 5 -> lot 0.00001 BTC; no separate minimum size: one lot; 10 USDC minimum order value
    assert rows[BTC] == ("BTC", "USDC", "linear", 1e-05, 1e-05, 10.0, market["maker"], market["taker"])
    assert rows["ETH/USDC:USDC"][3:5] == (1e-04, 1e-04)


@pytest.mark.parametrize("what", [("mark",), ("index",), ("ohlcv", "mark", "index")])
def test_mark_and_index_candles_are_refused_with_what_to_import(tmp_path, what):
    client, transport = replay_client("hyperliquid")
    with pytest.raises(CapabilityError) as caught:
        fetch(MarketStore(tmp_path / "store"), "hyperliquid", what, symbols=(BTC,), client=client)
    message = str(caught.value)
    assert "'hyperliquid'" in message and "publishes no" in message
    assert "margincall data import" in message and "--price-type" in message
    assert "ohlcv:" not in message  # last-price candles are available
    assert transport.log == []  # refused before any request, nothing written
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.parquet"))
