"""``data fetch --exchange okx``: recorded OKX v5 bodies -> ccxt's okx parsing -> the store.

OKX bounds candle and funding pages with exclusive ``before``/``after`` timestamps and answers
newest-first; its swap tiers are by contract count. Set-up: tests/data/venue_fetch.py.
"""
from __future__ import annotations

import pytest

from data_loaders.store import MarketStore
from tests.data.venue_fetch import END, HOUR, NOW, T0, bodies, candles, fetch, fetched, funding, replay_client, sql

BTC, ETH, INVERSE = "BTC/USDT:USDT", "ETH/USDT:USDT", "BTC/USD:BTC"


@pytest.mark.parametrize(("price_type", "what", "name", "inst_id"), [
    ("last", "ohlcv", "history-candles", "BTC-USDT-SWAP"),
    ("mark", "mark", "history-mark-price-candles", "BTC-USDT-SWAP"),
    ("index", "index", "history-index-candles", "BTC-USDT"),  # the index has its own id
])
def test_candles_cross_two_page_boundaries(tmp_path, price_type, what, name, inst_id):
    store, transport = fetched(tmp_path, "okx", (what,), symbols=(BTC,))

    stored = candles(store, "okx", BTC, price_type)
    assert [row[0] for row in stored] == list(range(T0, END, HOUR))
    raw = {int(row[0]): row for body in bodies("okx", name) for row in body["data"]}
    for ts, open_, high, low, close, volume in stored:
        wire = raw[ts]
        assert (open_, high, low, close) == tuple(float(v) for v in wire[1:5])
        if price_type == "last":
            # volCcy (field 6) is base currency; vol (field 5) counts 0.01 BTC contracts
            assert volume == float(wire[6]) == pytest.approx(float(wire[5]) * 0.01)
        else:
            assert volume is None
    requests = transport.requests(f"/api/v5/market/{name}")
    assert [int(r.query["after"]) for r in requests] == [END - 1, T0 + 48 * HOUR - 1, T0 + 24 * HOUR - 1]
    assert {(r.query["instId"], r.query["before"], r.query["bar"]) for r in requests} == {(inst_id, str(T0 - 1), "1H")}


def test_funding_is_bounded_by_after_and_keeps_the_rates(tmp_path):
    store, transport = fetched(tmp_path, "okx", ("funding",), symbols=(BTC,))
    rows = funding(store, "okx", BTC)
    body = bodies("okx", "funding-rate-history")[0]  # the page of 24
    raw = {int(e["fundingTime"]): float(e["fundingRate"]) for e in body["data"]}
    assert [r[0] for r in rows] == list(range(T0, END, 8 * HOUR))
    assert [r[1] for r in rows] == [raw[ts] for ts in range(T0, END, 8 * HOUR)]
    assert {r[2] for r in rows} == {8.0} and {r[3] for r in rows} == {None}
    # without `after` OKX would answer its newest settlements (today's), none inside the window
    (request,) = transport.requests("/api/v5/public/funding-rate-history")
    assert request.query["after"] == str(END) and request.query["before"] == str(T0 - 1)
    assert "until" not in request.query  # not an OKX parameter


def test_position_tiers_are_stored_in_contracts(tmp_path):
    store = MarketStore(tmp_path / "store")
    client, transport = replay_client("okx")
    (outcome,) = fetch(store, "okx", ("tiers",), symbols=(BTC,), client=client).outcomes
    assert outcome.describe().startswith("risk_tiers BTC/USDT:USDT bounds in contracts: 4 rows")
    tiers = sql(store, "select notional_floor, notional_cap, max_leverage, maint_margin_rate, maint_amount, "
                       "epoch_ms(effective_from) from risk_tiers where exchange = 'okx' order by tier")
    (body,) = bodies("okx", "position-tiers")
    assert [t[:4] for t in tiers] == [(float(w["minSz"]), float(w["maxSz"]), float(w["maxLever"]), float(w["mmr"]))
                                      for w in body["data"]]
    assert {t[5] for t in tiers} == {NOW}
    # the store's tables keep maintenance continuous at each floor (OKX itself deducts nothing)
    assert tiers[0][4] == 0.0
    for lower, upper in zip(tiers, tiers[1:]):
        assert upper[4] == pytest.approx(lower[4] + upper[0] * (upper[3] - lower[3]))
    (request,) = transport.requests("/api/v5/public/position-tiers")
    # ccxt 4.5.83 (the pinned release) sends the family as `uly`; OKX accepts `uly` or `instFamily`
    assert request.query == {"instType": "SWAP", "tdMode": "cross", "uly": "BTC-USDT"}


def test_markets_keep_okx_contract_values(tmp_path):
    store, transport = fetched(tmp_path, "okx", ("markets",), symbols=(BTC, ETH, INVERSE))
    rows = {r[0]: r[1:] for r in sql(store, "select symbol, settle, contract_type, contract_size, tick_size, "
                                            "lot_size, min_qty, min_notional from markets where exchange = 'okx'")}
    # lot and minimum are in contracts (ctVal 0.01 BTC / 0.1 ETH / 100 USD), no notional minimum
    assert rows[BTC] == ("USDT", "linear", 0.01, 0.1, 0.01, 0.01, 0.0)
    assert rows[ETH] == ("USDT", "linear", 0.1, 0.01, 0.01, 0.01, 0.0)
    assert rows[INVERSE] == ("BTC", "inverse", 100.0, 0.1, 1.0, 1.0, 0.0)
    assert [r.query for r in transport.log] == [{"instType": "SWAP"}]  # swaps only


def test_the_command_fetches_okx_and_refuses_nothing_it_has(tmp_path):
    from typer.testing import CliRunner

    from tests.data.ccxt_replay import replay_fetch_app

    result = CliRunner().invoke(replay_fetch_app(), [
        "data", "fetch", "--exchange", "okx", "--symbol", BTC, "--timeframe", "1h", "--since", "2025-10-10",
        "--until", "2025-10-13", "--what", "funding,tiers,markets", "--store", str(tmp_path)])
    assert result.exit_code == 0, result.output
    counts = dict(sql(MarketStore(tmp_path), "select 'funding', count(*) from funding union all "
                                             "select 'tiers', count(*) from risk_tiers union all "
                                             "select 'markets', count(*) from markets"))
    assert counts == {"funding": 9, "tiers": 4, "markets": 1}
