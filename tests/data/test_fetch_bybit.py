"""``data fetch --exchange bybit``: recorded Bybit v5 bodies -> ccxt's bybit parsing -> the store.

Bybit answers a start/end window newest-first, cut at ``limit`` rows, so a 72-candle window in
pages of 24 is walked backwards from its end. Set-up: tests/data/venue_fetch.py.
"""
from __future__ import annotations

import pytest

from data_loaders.ccxt_client import UnknownSymbolError
from data_loaders.ccxt_fetch import FetchInterruptedError
from data_loaders.store import MarketStore
from tests.data.venue_fetch import END, HOUR, NOW, T0, bodies, candles, fetch, fetched, funding, replay_client, sql

BTC, ETH, INVERSE = "BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USD:BTC"


def _recorded_candles(name: str) -> dict[int, list[str]]:
    return {int(row[0]): row for body in bodies("bybit", name) for row in body["result"]["list"]}


@pytest.mark.parametrize(("price_type", "what", "path", "name"), [
    ("last", "ohlcv", "/v5/market/kline", "kline"),
    ("mark", "mark", "/v5/market/mark-price-kline", "mark-price-kline"),
    ("index", "index", "/v5/market/index-price-kline", "index-price-kline"),
])
def test_candles_are_walked_back_from_the_window_end_and_stored_in_order(tmp_path, price_type, what, path, name):
    store, transport = fetched(tmp_path, "bybit", (what,), symbols=(BTC,))

    stored = candles(store, "bybit", BTC, price_type)
    assert [row[0] for row in stored] == list(range(T0, END, HOUR))
    raw = _recorded_candles(name)
    for ts, open_, high, low, close, volume in stored:
        wire = raw[ts]
        assert (open_, high, low, close) == tuple(float(v) for v in wire[1:5])
        # linear: volume is the base-coin quantity (field 5); mark/index candles carry none
        assert volume == (float(wire[5]) if price_type == "last" else None)
    # three pages of 24: newest first, each ending where the previous one began
    requests = transport.requests(path)
    assert [int(r.query["end"]) for r in requests] == [END - 1, T0 + 48 * HOUR - 1, T0 + 24 * HOUR - 1]
    assert {(r.query["start"], r.query["limit"], r.query["category"]) for r in requests} == {(str(T0), "24", "linear")}


def test_the_crash_hour_low_is_where_the_recording_puts_it(tmp_path):
    store = MarketStore(tmp_path / "store")
    fetch(store, "bybit", ("ohlcv",), symbols=(BTC,))
    ((ts, low),) = sql(store, "select epoch_ms(ts), low from ohlcv where exchange = 'bybit' "
                              "order by low limit 1")
    assert ts == T0 + 21 * HOUR  # 2025-10-10T21:00Z, the liquidation cascade's hour
    assert low == min(float(row[3]) for row in _recorded_candles("kline").values())


def test_funding_settlements_rates_and_interval(tmp_path):
    store, transport = fetched(tmp_path, "bybit", ("funding",), symbols=(BTC,))
    rows = funding(store, "bybit", BTC)
    raw = {int(e["fundingRateTimestamp"]): float(e["fundingRate"])
           for body in bodies("bybit", "funding-history") for e in body["result"]["list"]}
    assert [r[0] for r in rows] == list(range(T0, END, 8 * HOUR))
    assert [r[1] for r in rows] == [raw[ts] for ts in range(T0, END, 8 * HOUR)]
    assert {r[2] for r in rows} == {8.0}
    assert {r[3] for r in rows} == {None}  # Bybit's funding history carries no mark price
    # 9 settlements fit one page of 24: a page that is not full ends a newest-first walk
    assert len(transport.requests("/v5/market/funding/history")) == 1


def test_risk_limits_keep_bybits_own_deduction(tmp_path):
    store = MarketStore(tmp_path / "store")
    fetch(store, "bybit", ("tiers",), symbols=(BTC,))
    tiers = sql(store, "select tier, notional_floor, notional_cap, max_leverage, maint_margin_rate, maint_amount, "
                       "epoch_ms(effective_from) from risk_tiers where exchange = 'bybit' order by tier")
    (body,) = bodies("bybit", "risk-limit")
    raw = body["result"]["list"]
    assert [t[0] for t in tiers] == list(range(1, len(raw) + 1)) and len(raw) == 20
    for stored, wire, previous in zip(tiers, raw, [None, *raw]):
        assert stored[1] == (float(previous["riskLimitValue"]) if previous else 0.0)
        assert stored[2] == float(wire["riskLimitValue"])
        assert (stored[3], stored[4]) == (float(wire["maxLeverage"]), float(wire["maintenanceMargin"]))
        assert stored[5] == float(wire["mmDeduction"] or 0)  # Bybit sends "" for tier 1
        assert stored[6] == NOW
    # Bybit's deduction keeps maintenance margin continuous at each floor (its stated recurrence)
    for lower, upper in zip(tiers, tiers[1:]):
        floor = upper[1]
        assert floor * lower[4] - lower[5] == pytest.approx(floor * upper[4] - upper[5], abs=1e-6)


def test_markets_of_linear_and_inverse_perpetuals(tmp_path):
    store, transport = fetched(tmp_path, "bybit", ("markets",), symbols=(BTC, ETH, INVERSE))
    rows = {r[0]: r[1:] for r in sql(store, "select symbol, base, quote, settle, contract_type, contract_size, "
                                            "tick_size, lot_size, min_qty, min_notional, maker_fee, taker_fee "
                                            "from markets where exchange = 'bybit'")}
    assert rows[BTC][:9] == ("BTC", "USDT", "USDT", "linear", 1.0, 0.1, 0.001, 0.001, 5.0)
    assert rows[ETH][:9] == ("ETH", "USDT", "USDT", "linear", 1.0, 0.01, 0.01, 0.01, 5.0)
    # BTCUSD inverse: 1 USD contracts, 0.5 tick, no minimum notional published -> 0
    assert rows[INVERSE][:9] == ("BTC", "USD", "BTC", "inverse", 1.0, 0.5, 1.0, 1.0, 0.0)
    market = transport.exchange.market(BTC)
    assert rows[BTC][9:] == (market["maker"], market["taker"])
    # only perpetual listings are requested: linear and inverse, never spot or options
    assert {r.query["category"] for r in transport.log} == {"linear", "inverse"}


def test_the_exchange_id_is_answered_with_the_unified_symbol(tmp_path):
    with pytest.raises(UnknownSymbolError, match="use the ccxt unified symbol: BTC/USD:BTC"):
        fetch(MarketStore(tmp_path / "store"), "bybit", ("ohlcv",), symbols=("BTCUSD",))


def test_a_dropped_page_is_retried_and_an_interrupted_walk_resumes(tmp_path):
    store = MarketStore(tmp_path / "store")
    client, transport = replay_client("bybit")
    transport.fail("/v5/market/kline", kind="network", after=1, times=1)
    sleeps: list[float] = []
    fetch(store, "bybit", ("ohlcv",), symbols=(BTC,), client=client, sleeps=sleeps)
    assert sleeps == [1.0] and len(candles(store, "bybit", BTC, "last")) == 72

    store = MarketStore(tmp_path / "other")
    client, transport = replay_client("bybit")
    transport.fail("/v5/market/kline", kind="network", after=2, times=99)  # the oldest page never comes
    with pytest.raises(FetchInterruptedError, match="re-run the same command"):
        fetch(store, "bybit", ("ohlcv",), symbols=(BTC,), client=client, max_tries=2)
    assert [r[0] for r in candles(store, "bybit", BTC, "last")] == list(range(T0 + 24 * HOUR, END, HOUR))
    client, transport = replay_client("bybit")
    fetch(store, "bybit", ("ohlcv",), symbols=(BTC,), client=client)
    assert [int(r.query["end"]) for r in transport.requests("/v5/market/kline")] == [T0 + 24 * HOUR - 1]
    assert [r[0] for r in candles(store, "bybit", BTC, "last")] == list(range(T0, END, HOUR))
