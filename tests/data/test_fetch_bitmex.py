"""``data fetch --exchange bitmex``: recorded BitMEX v1 bodies -> ccxt 4.5.83's bitmex -> the store.

BitMEX stamps a ``/trade/bucketed`` bin at its close and answers a startTime/endTime window
oldest-first; XBTUSD bins count ``volume`` in contracts (USD) and ``homeNotional`` in XBT; the
.BXBT index has bins of its own; XBTUSD settles funding at 04:00, 12:00 and 20:00 UTC. Set-up:
tests/data/venue_fetch.py (pages of 24, so each candle fetch crosses two page boundaries).
"""
from __future__ import annotations

from datetime import datetime

import ccxt
import pytest

from data_loaders.ccxt_client import FetchError, UnknownExchangeError, create_exchange
from data_loaders.ccxt_fetch import FetchInterruptedError
from data_loaders.store import MarketStore
from tests.data.ccxt_replay import replay_fetch_app
from tests.data.venue_fetch import END, HOUR, NOW, T0, bodies, candles, fetch, fetched, funding, refusal, replay_client, sql

XBTUSD, XBTUSDT, ETHUSD = "BTC/USD:BTC", "BTC/USDT:USDT", "ETH/USD:BTC"
BINS = "/api/v1/trade/bucketed"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _bins(symbol: str) -> dict[int, dict]:
    """Recorded bins of ``symbol`` by their *close* time (epoch ms)."""
    return {_ms(b["timestamp"]): b for body in bodies("bitmex", "trade-bucketed") for b in body if b["symbol"] == symbol}


def test_the_pinned_ccxt_ships_bitmex():
    # pyproject pins ccxt<4.5.84: later releases removed the exchange, and every test below needs it
    assert "bitmex" in ccxt.exchanges, f"ccxt {ccxt.__version__}: reinstall with pip install 'ccxt>=4.5.0,<4.5.84'"


def test_last_candles_are_moved_to_their_open_and_keep_base_volume(tmp_path):
    store, transport = fetched(tmp_path, "bitmex", ("ohlcv",), symbols=(XBTUSD,))

    stored = candles(store, "bitmex", XBTUSD, "last")
    # every hour once, the last one (opening 23:00, stamped 00:00 by BitMEX) included
    assert [row[0] for row in stored] == list(range(T0, END, HOUR))
    raw = _bins("XBTUSD")
    for ts, open_, high, low, close, volume in stored:
        wire = raw[ts + HOUR]  # the bin stamped one hour later is the candle opening at ts
        assert (open_, high, low, close) == (wire["open"], wire["high"], wire["low"], wire["close"])
        assert volume == wire["homeNotional"] != wire["volume"]  # XBT, not USD contracts
    # three pages of 24, oldest first, each asking for bins closing after the previous page
    requests = transport.requests(BINS)
    assert [_ms(r.query["startTime"]) for r in requests] == [T0 + HOUR, T0 + 25 * HOUR, T0 + 49 * HOUR]
    assert {(r.query["symbol"], r.query["binSize"], r.query["partial"], r.query["count"], _ms(r.query["endTime"]))
            for r in requests} == {("XBTUSD", "1h", "false", "24", END)}


def test_index_candles_are_the_bxbt_bins(tmp_path):
    store, transport = fetched(tmp_path, "bitmex", ("index",), symbols=(XBTUSD,))
    stored = candles(store, "bitmex", XBTUSD, "index")
    assert [row[0] for row in stored] == list(range(T0, END, HOUR))
    raw = _bins(".BXBT")
    assert [row[1:5] for row in stored] == [tuple(raw[ts + HOUR][k] for k in ("open", "high", "low", "close"))
                                            for ts in range(T0, END, HOUR)]
    assert {row[5] for row in stored} == {None}
    # asked by the instrument's referenceSymbol; ccxt lists no .BXBT market
    assert {r.query["symbol"] for r in transport.requests(BINS)} == {".BXBT"}
    assert ".BXBT" not in (transport.exchange.markets_by_id or {})


def test_funding_settlements_rates_and_interval(tmp_path):
    store, transport = fetched(tmp_path, "bitmex", ("funding",), symbols=(XBTUSD,))
    rows = funding(store, "bitmex", XBTUSD)
    (body, empty, *_) = bodies("bitmex", "funding")
    assert empty == []
    settlements = list(range(T0 + 4 * HOUR, END, 8 * HOUR))  # 04:00, 12:00, 20:00 UTC
    assert [r[0] for r in rows] == settlements and len(settlements) == 9
    assert [r[1] for r in rows] == [e["fundingRate"] for e in body]
    assert {r[2] for r in rows} == {8.0}
    assert {r[3] for r in rows} == {None}  # /funding carries no mark price
    # one page; the request after the last settlement comes back empty and ends the walk
    starts = [_ms(r.query["startTime"]) for r in transport.requests("/api/v1/funding")]
    assert starts == [T0, settlements[-1] + 1]


def test_markets_store_the_face_value_of_inverse_contracts(tmp_path):
    store, transport = fetched(tmp_path, "bitmex", ("markets",), symbols=(XBTUSD, XBTUSDT))
    rows = {r[0]: r[1:] for r in sql(store, "select symbol, base, quote, settle, contract_type, contract_size, "
                                            "tick_size, lot_size, min_qty, min_notional, maker_fee, taker_fee "
                                            "from markets where exchange = 'bitmex'")}
    # ccxt reads XBTUSD's multiplier as the contract size; the store keeps 1 USD per contract
    assert transport.exchange.market(XBTUSD)["contractSize"] == 100_000_000
    assert rows[XBTUSD] == ("BTC", "USD", "BTC", "inverse", 1.0, 0.1, 100.0, 100.0, 0.0, -0.0001, 0.00075)
    # XBTUSDT: 1e-6 XBT per contract (1 / underlyingToPositionMultiplier), as ccxt reads it
    assert rows[XBTUSDT][:8] == ("BTC", "USDT", "USDT", "linear", 1e-6, 0.5, 1000.0, 1000.0)


def test_a_quanto_market_is_refused_not_stored(tmp_path):
    store = MarketStore(tmp_path / "store")
    with pytest.raises(FetchError) as caught:
        fetch(store, "bitmex", ("markets",), symbols=(ETHUSD,))
    message = str(caught.value)
    assert "ETH/USD:BTC" in message and "quanto" in message and "linear and inverse" in message
    assert sql(store, "select count(*) from markets") == [(0,)]


@pytest.mark.parametrize(("what", "named"), [(("tiers",), "no risk-limit table endpoint"),
                                             (("mark", "funding"), "publishes no mark-price candles")])
def test_missing_endpoints_are_refused_with_what_to_import(tmp_path, what, named):
    message = refusal(tmp_path, "bitmex", what, XBTUSD)
    assert "'bitmex'" in message and named in message and "margincall data import" in message
    assert "funding:" not in message  # funding history is available


def test_a_timeframe_bitmex_does_not_bin_is_refused_before_any_request(tmp_path):
    client, transport = replay_client("bitmex")
    store = MarketStore(tmp_path / "store")
    with pytest.raises(FetchError, match=r"--timeframe 15m: bitmex serves candles of 1m, 5m, 1h, 1d only"):
        from data_loaders.ccxt_fetch import FetchRequest, fetch_to_store

        fetch_to_store(FetchRequest(exchange="bitmex", symbols=(XBTUSD,), timeframe="15m", since=T0, until=END,
                                    what=("ohlcv",)), store, client=client, clock=lambda: NOW)
    assert transport.log == []


def test_a_dropped_page_is_retried_and_an_interrupted_walk_resumes(tmp_path):
    store = MarketStore(tmp_path / "store")
    client, transport = replay_client("bitmex")
    transport.fail(BINS, kind="network", after=1, times=99)  # the second page never comes
    with pytest.raises(FetchInterruptedError, match="re-run the same command"):
        fetch(store, "bitmex", ("ohlcv",), symbols=(XBTUSD,), client=client, max_tries=2)
    assert [r[0] for r in candles(store, "bitmex", XBTUSD, "last")] == list(range(T0, T0 + 24 * HOUR, HOUR))
    client, transport = replay_client("bitmex")
    sleeps: list[float] = []
    transport.fail(BINS, kind="network", after=0, times=1)
    fetch(store, "bitmex", ("ohlcv",), symbols=(XBTUSD,), client=client, sleeps=sleeps)
    assert sleeps == [1.0]
    # only what was missing is asked for: bins closing after the stored first day
    assert [_ms(r.query["startTime"]) for r in transport.requests(BINS)] == [T0 + 25 * HOUR] * 2 + [T0 + 49 * HOUR]
    assert [r[0] for r in candles(store, "bitmex", XBTUSD, "last")] == list(range(T0, END, HOUR))


def test_the_command_fetches_bitmex(tmp_path):
    from typer.testing import CliRunner

    result = CliRunner().invoke(replay_fetch_app(), [
        "data", "fetch", "--exchange", "bitmex", "--symbol", XBTUSD, "--timeframe", "1h", "--since", "2025-10-10",
        "--until", "2025-10-13", "--what", "ohlcv,index,funding,markets", "--store", str(tmp_path)])
    assert result.exit_code == 0, result.output
    counts = dict(sql(MarketStore(tmp_path), "select price_type, count(*) from ohlcv group by price_type union all "
                                             "select 'funding', count(*) from funding union all "
                                             "select 'markets', count(*) from markets"))
    assert counts == {"last": 72, "index": 72, "funding": 9, "markets": 1}


def test_without_bitmex_in_ccxt_the_refusal_says_how_to_get_it(monkeypatch):
    # a later ccxt than the pin (4.5.84+) lists no bitmex: the message names the pin and the import
    monkeypatch.setattr(ccxt, "exchanges", [name for name in ccxt.exchanges if name != "bitmex"])
    with pytest.raises(UnknownExchangeError) as caught:
        create_exchange("bitmex")
    message = str(caught.value)
    assert "ccxt>=4.5.0,<4.5.84" in message and "public.bitmex.com" in message
    assert "margincall data import" in message and "--exchange bitmex" in message


def test_fetched_bitmex_data_loads_for_a_run_and_says_what_to_do_about_the_mark(tmp_path):
    from backtest.market_loader import load_market

    store, _ = fetched(tmp_path, "bitmex", ("ohlcv", "index", "funding"), symbols=(XBTUSD,))
    loaded = load_market(store, exchange="bitmex", symbols=[XBTUSD], timeframe="1h", start=T0, end=END)
    bars = loaded.bars[XBTUSD]
    assert bars.height == 72 and loaded.funding[XBTUSD].height == 9
    # BitMEX has no mark candles to fetch: the warning names what to import, not a refused fetch
    (mark_note,) = [w for w in loaded.warnings if "mark-price candles" in w]
    assert "publishes no mark-price candles" in mark_note and "--price-type mark" in mark_note
    assert "--what mark" not in mark_note
    assert bars["mark_close"].to_list() == bars["close"].to_list()  # mark = last, as the warning says
