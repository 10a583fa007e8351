"""``data fetch --exchange dydx``: recorded dYdX v4 indexer bodies -> ccxt's dydx parsing -> the store.

The indexer answers newest-first and its funding history ignores a start time (it pages by
``effectiveBeforeOrAt``), so both are walked backwards from the window's end. dYdX v4 has no
mark or index candles and no tier endpoint. Set-up: tests/data/venue_fetch.py.
"""
from __future__ import annotations

import pytest

from tests.data.venue_fetch import END, HOUR, T0, bodies, candles, fetched, funding, refusal, sql

BTC = "BTC/USDC:USDC"  # dYdX's BTC-USD, settled in USDC


def test_candles_are_walked_back_by_iso_window(tmp_path):
    store, transport = fetched(tmp_path, "dydx", ("ohlcv",), symbols=(BTC,))
    stored = candles(store, "dydx", BTC, "last")
    assert [row[0] for row in stored] == list(range(T0, END, HOUR))
    raw = {c["id"]: c for body in bodies("dydx", "candles") for c in body["candles"]}
    for ts, open_, high, low, close, volume in stored:
        wire = raw[f"BTC-USD-1HOUR-{ts}"]
        assert (open_, high, low, close) == tuple(float(wire[k]) for k in ("open", "high", "low", "close"))
        assert volume == float(wire["baseTokenVolume"])  # base units, not the USD volume
    requests = transport.requests("/v4/candles/perpetualMarkets/BTC-USD")
    assert [r.query["toIso"] for r in requests] == ["2025-10-12T23:59:59.999Z", "2025-10-11T23:59:59.999Z",
                                                    "2025-10-10T23:59:59.999Z"]
    assert {r.query["fromIso"] for r in requests} == {"2025-10-10T00:00:00.000Z"}


def test_funding_is_paged_backwards_and_keeps_the_oracle_price(tmp_path):
    store, transport = fetched(tmp_path, "dydx", ("funding",), symbols=(BTC,))
    rows = funding(store, "dydx", BTC)
    raw = {e["effectiveAt"]: e for body in bodies("dydx", "historicalFunding") for e in body["historicalFunding"]}
    assert [r[0] for r in rows] == list(range(T0, END, HOUR))
    assert {r[2] for r in rows} == {1.0}
    first, last = raw["2025-10-10T00:00:00.000Z"], raw["2025-10-12T23:00:00.000Z"]
    assert (rows[0][1], rows[0][3]) == (float(first["rate"]), float(first["price"]))
    assert (rows[-1][1], rows[-1][3]) == (float(last["rate"]), float(last["price"]))
    # each page ends where the previous one began
    requests = transport.requests("/v4/historicalFunding/BTC-USD")
    assert [r.query["effectiveBeforeOrAt"] for r in requests] == [
        "2025-10-12T23:59:59.999Z", "2025-10-11T23:59:59.999Z", "2025-10-10T23:59:59.999Z"]


def test_markets_carry_tick_and_step(tmp_path):
    store, transport = fetched(tmp_path, "dydx", ("markets",), symbols=(BTC,))
    ((row),) = sql(store, "select base, quote, settle, contract_type, contract_size, tick_size, lot_size, min_qty, "
                          "min_notional from markets where exchange = 'dydx'")
    assert row == ("BTC", "USDC", "USDC", "linear", 1.0, 1.0, 0.0001, 0.0001, 0.0)


@pytest.mark.parametrize(("what", "named"), [(("tiers",), "no leverage-tier endpoint"),
                                             (("mark", "funding"), "publishes no mark-price candles")])
def test_missing_endpoints_are_refused_with_what_to_import(tmp_path, what, named):
    message = refusal(tmp_path, "dydx", what, BTC)
    assert "'dydx'" in message and named in message and "margincall data import" in message
    assert "funding:" not in message  # funding history is available
