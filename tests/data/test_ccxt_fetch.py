"""``data fetch`` end to end: recorded Binance USD-M bodies -> ccxt's parsing -> the real store.

No network: :class:`tests.data.ccxt_replay.ReplayTransport` replaces the ccxt instance's HTTP
``fetch``; everything above it is ccxt's own code. The recordings (tests/data/recorded/
binanceusdm) hold real BTCUSDT values of the 2020-03-12 crash; see make_binanceusdm.py.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

import polars as pl
import pytest

from data_loaders.ccxt_client import CapabilityError, FetchError, UnknownExchangeError, UnknownSymbolError, create_exchange
from data_loaders.ccxt_fetch import FetchInterruptedError, FetchRequest, RetryPolicy, fetch_to_store
from data_loaders.store import MarketStore
from tests.data.ccxt_replay import ReplayTransport, replay_exchange

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
HOUR = 3_600_000
T0 = 1583884800000  # 2020-03-11T00:00Z
END = T0 + 72 * HOUR  # 2020-03-14T00:00Z
NOW = 1767225600000  # 2026-01-01T00:00Z, the injected fetch time
KLINES, MARK, INDEX = "/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/fapi/v1/indexPriceKlines"
FUNDING, BRACKETS, INFO = "/fapi/v1/fundingRate", "/fapi/v1/leverageBracket", "/fapi/v1/exchangeInfo"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


@pytest.fixture
def store(tmp_path) -> MarketStore:
    return MarketStore(tmp_path / "store")


def binance(*, keys: bool = True) -> tuple[object, ReplayTransport]:
    """A real ccxt binanceusdm instance whose HTTP is the replay transport."""
    return replay_exchange("binanceusdm", credentials={"apiKey": "test-key", "secret": "test-secret"} if keys else None)


def run(store, what, *, symbols=(BTC,), since=T0, until=END, client=None, sleeps=None, max_tries=6,
        pages_per_write=10, progress=None):
    if client is None:
        client, _ = binance()
    request = FetchRequest(exchange="binanceusdm", symbols=symbols, timeframe="1h", since=since,
                           until=until, what=what)
    retry = RetryPolicy(max_tries=max_tries, sleep=(sleeps.append if sleeps is not None else lambda s: None))
    return fetch_to_store(request, store, client=client, retry=retry, clock=lambda: NOW, max_page=24,
                          pages_per_write=pages_per_write, progress=progress)


def starts(transport: ReplayTransport, path: str) -> list[int]:
    return [int(r.query["startTime"]) for r in transport.requests(path)]


def test_fetches_every_dataset_through_ccxt_into_the_store(store):
    client, transport = binance()
    report = run(store, ("ohlcv", "mark", "funding", "tiers", "markets"), client=client)

    last = store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h", price_type="last")
    mark = store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h", price_type="mark")
    assert last.height == 72 and mark.height == 72
    assert last["ts"].dt.epoch("ms").to_list() == list(range(T0, END, HOUR))
    crash = ms("2020-03-13T02:00:00")
    # Black Thursday anchors (../shared README): perp 1h low 3621.81, mark low 3801.83, same hour.
    assert last.filter(pl.col("ts").dt.epoch("ms") == crash)["low"].item() == 3621.81
    assert mark.filter(pl.col("ts").dt.epoch("ms") == crash)["low"].item() == pytest.approx(3801.83, abs=0.005)
    assert last["volume"].null_count() == 0 and mark["volume"].null_count() == 72

    # Three pages of 24 candles, each from the previous page's last bar + 1 h, same endTime.
    assert starts(transport, KLINES) == [T0, T0 + 24 * HOUR, T0 + 48 * HOUR]
    assert {r.query["endTime"] for r in transport.requests(KLINES)} == {str(END - 1)}
    assert {r.query["limit"] for r in transport.requests(KLINES)} == {"24"}
    assert starts(transport, MARK) == [T0, T0 + 24 * HOUR, T0 + 48 * HOUR]

    funding = store.read("funding", exchange="binanceusdm", symbol=BTC)
    assert funding.height == 9
    # Binance stamps settlements a few ms late (…001, …002); stored on the second.
    assert funding["ts"].dt.epoch("ms").to_list() == list(range(T0, END, 8 * HOUR))
    assert funding["interval_hours"].to_list() == [8.0] * 9
    assert funding["mark_price"].null_count() == 9  # Binance sends "" for 2020
    assert funding.filter(pl.col("ts").dt.epoch("ms") == ms("2020-03-13T08:00:00"))["rate"].item() == -0.003

    tiers = store.read("risk_tiers", exchange="binanceusdm", symbol=BTC).sort("tier")
    assert tiers["tier"].to_list() == list(range(1, 13))
    first = tiers.row(0, named=True)
    assert (first["notional_floor"], first["notional_cap"], first["max_leverage"],
            first["maint_margin_rate"], first["maint_amount"]) == (0.0, 50000.0, 125.0, 0.004, 0.0)
    assert tiers.row(11, named=True)["maint_amount"] == 421481450.0
    assert set(tiers["effective_from"].dt.epoch("ms").to_list()) == {NOW}

    market = store.read("markets", exchange="binanceusdm", symbol=BTC).row(0, named=True)
    assert market["tick_size"] == 0.1 and market["lot_size"] == 0.001 and market["min_qty"] == 0.001
    assert market["min_notional"] == 50.0 and market["liquidation_fee_rate"] == 0.0125
    assert (market["maker_fee"], market["taker_fee"]) == (0.0002, 0.0005)
    assert (market["contract_type"], market["contract_size"], market["settle"]) == ("linear", 1.0, "USDT")

    rows = {(o.dataset, o.detail): o.rows for o in report.outcomes}
    assert rows == {("markets", ""): 1, ("risk_tiers", ""): 12, ("funding", ""): 9,
                    ("ohlcv", "1h last"): 72, ("ohlcv", "1h mark"): 72}


def test_index_candles_are_requested_by_pair_and_have_no_volume(store):
    client, transport = binance()
    run(store, ("index",), client=client, until=T0 + 24 * HOUR)
    index = store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h", price_type="index")
    assert index.height == 24 and index["volume"].null_count() == 24
    (request,) = transport.requests(INDEX)
    assert request.query["pair"] == "BTCUSDT" and "symbol" not in request.query


def test_several_symbols_in_one_run(store):
    client, transport = binance()
    run(store, ("ohlcv",), client=client, symbols=(BTC, ETH), until=T0 + 24 * HOUR)
    assert [r.query["symbol"] for r in transport.requests(KLINES)] == ["BTCUSDT", "ETHUSDT"]
    eth = store.read("ohlcv", exchange="binanceusdm", symbol=ETH, timeframe="1h")
    assert eth.height == 24 and eth["close"].min() > 100 and eth["close"].max() < 300  # ETH ~ $200


def test_rate_limit_backs_off_then_succeeds(store):
    client, transport = binance()
    transport.fail(KLINES, kind="rate_limit", after=1, times=2)  # HTTP 429 on page 2, twice
    sleeps: list[float] = []
    notes: list[str] = []
    progress = type("P", (), {"start": lambda s, d, t: 0, "advance": lambda s, i, a: None,
                              "note": lambda s, m: notes.append(m)})()
    run(store, ("ohlcv",), client=client, sleeps=sleeps, progress=progress)
    # ccxt's binance handle_errors turns a 429 into DDoSProtection; waits double, x2 for rate limits.
    assert sleeps == [2.0, 4.0]
    assert all("DDoSProtection" in note for note in notes) and len(notes) == 2
    assert starts(transport, KLINES) == [T0, T0 + 24 * HOUR, T0 + 24 * HOUR, T0 + 24 * HOUR, T0 + 48 * HOUR]
    assert store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h").height == 72


def test_network_failure_keeps_fetched_pages_and_a_rerun_fetches_only_the_rest(store):
    client, transport = binance()
    transport.fail(KLINES, kind="network", after=2, times=99)  # connection drops from page 3 on
    sleeps: list[float] = []
    with pytest.raises(FetchInterruptedError) as caught:
        run(store, ("ohlcv",), client=client, sleeps=sleeps, max_tries=3)
    message = str(caught.value)
    assert "failed 3 times" in message and "NetworkError" in message
    assert "ohlcv BTC/USDT:USDT 1h last: 48 rows 2020-03-11T00:00Z..2020-03-12T23:00Z" in message
    assert "re-run the same command to resume" in message
    assert sleeps == [1.0, 2.0]
    # Both pages were buffered (pages_per_write=10) and still written before the error surfaced.
    stored = store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h")
    assert stored.height == 48

    client, transport = binance()
    report = run(store, ("ohlcv",), client=client)
    assert starts(transport, KLINES) == [T0 + 48 * HOUR]  # only the missing page
    assert report.outcomes[0].rows == 24 and report.outcomes[0].rows_added == 24
    stored = store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h")
    assert stored["ts"].dt.epoch("ms").to_list() == list(range(T0, END, HOUR))


def test_a_second_run_requests_no_history_and_keeps_unchanged_snapshots(store):
    run(store, ("ohlcv", "funding", "tiers", "markets"))
    client, transport = binance()
    report = run(store, ("ohlcv", "funding", "tiers", "markets"), client=client)
    assert transport.requests(KLINES) == [] and transport.requests(FUNDING) == []
    assert {o.dataset: o.note for o in report.outcomes} == {
        "markets": "unchanged since the stored version", "risk_tiers": "unchanged since the stored version",
        "funding": "already stored", "ohlcv": "already stored"}
    assert report.rows == 0
    assert store.read("risk_tiers", exchange="binanceusdm", symbol=BTC).height == 12


def test_an_empty_page_ends_the_funding_history(store):
    client, transport = binance()
    run(store, ("funding",), client=client)
    requests = transport.requests(FUNDING)
    # Page 1 holds all 9 settlements; the next page starts 1 ms after the last raw stamp and is [].
    assert [int(r.query["startTime"]) for r in requests] == [T0, ms("2020-03-13T16:00:00") + 2 + 1]
    assert store.read("funding", exchange="binanceusdm", symbol=BTC).height == 9


def test_overlapping_pages_are_deduplicated(store):
    client, transport = binance()
    page1 = next(r for r in transport.recordings if r["request"]["path"] == KLINES
                 and r["request"]["query"]["startTime"] == str(T0))["response"]["body"]
    page2 = next(r for r in transport.recordings if r["request"]["path"] == KLINES
                 and r["request"]["query"]["startTime"] == str(T0 + 24 * HOUR))["response"]["body"]
    # A venue that repeats the tail of the previous page: 3 old candles + the 24 new ones.
    transport.override(KLINES, {"symbol": "BTCUSDT", "interval": "1h", "limit": 24,
                                "startTime": T0 + 24 * HOUR, "endTime": END - 1}, page1[-3:] + page2)
    report = run(store, ("ohlcv",), client=client)
    stored = store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h")
    assert stored.height == 72 and stored["ts"].is_unique().all()
    assert report.outcomes[0].rows == 72
    assert starts(transport, KLINES) == [T0, T0 + 24 * HOUR, T0 + 48 * HOUR]


def test_exchange_without_funding_history_gets_a_clear_message(store):
    exchange = create_exchange("kraken")  # spot only: no funding, no mark candles, no tiers
    transport = ReplayTransport(exchange=exchange).install()
    request = FetchRequest(exchange="kraken", symbols=("BTC/USD",), timeframe="1h", since=T0, until=END,
                           what=("ohlcv", "funding", "mark"))
    with pytest.raises(CapabilityError) as caught:
        fetch_to_store(request, store, client=exchange, clock=lambda: NOW)
    message = str(caught.value)
    assert "'kraken'" in message and "funding-rate history" in message and "mark-price candles" in message
    assert "fetchFundingRateHistory" in message and "margincall data import" in message
    assert "ohlcv" not in message.split("\n")[1]  # candles are available, not listed as missing
    assert transport.log == []  # refused before any request


@pytest.mark.parametrize(("symbol", "hint"), [("BTC/USDT", "BTC/USDT:USDT"),
                                              ("BTCUSDT", "use the ccxt unified symbol: BTC/USDT:USDT"),
                                              ("ETH/USDC:USDC", "ETH/USDT:USDT")])
def test_unknown_symbol_lists_close_matches(store, symbol, hint):
    client, transport = binance()
    with pytest.raises(UnknownSymbolError) as caught:
        run(store, ("ohlcv",), client=client, symbols=(symbol,))
    assert repr(symbol) in str(caught.value) and hint in str(caught.value)
    assert [r.path for r in transport.log] == [INFO]


def test_unknown_exchange_lists_close_matches():
    with pytest.raises(UnknownExchangeError, match="did you mean binanceusdm"):
        create_exchange("binanceusdn")


def test_tiers_without_api_key_say_how_to_provide_one(store):
    client, transport = binance(keys=False)
    with pytest.raises(FetchError) as caught:
        run(store, ("markets", "tiers", "ohlcv"), client=client)
    message = str(caught.value)
    assert "MARGINCALL_BINANCEUSDM_API_KEY" in message and "margincall data import" in message
    assert "markets BTC/USDT:USDT: 1 rows" in message  # what was stored before
    assert transport.requests(BRACKETS) == []  # ccxt refuses to sign without a key


def test_candle_window_stops_at_the_last_closed_bar(store):
    client, transport = binance()
    now = T0 + 24 * HOUR + 30 * 60_000  # 2020-03-12T00:30Z: the 00:00 bar is still forming
    request = FetchRequest(exchange="binanceusdm", symbols=(BTC,), timeframe="1h", since=T0, what=("ohlcv",))
    fetch_to_store(request, store, client=client, clock=lambda: now, max_page=24)
    (only,) = transport.requests(KLINES)
    assert only.query["endTime"] == str(T0 + 24 * HOUR - 1)


def test_bad_what_gets_a_did_you_mean():
    with pytest.raises(FetchError, match="did you mean.*funding"):
        FetchRequest(exchange="binanceusdm", symbols=(BTC,), since=T0, what=("ohlcv", "fundng"))


def test_math_inf_is_not_produced_for_bounded_binance_caps(store):
    run(store, ("tiers",), symbols=(ETH,))
    tiers = store.read("risk_tiers", exchange="binanceusdm", symbol=ETH)
    assert tiers.height > 5 and all(math.isfinite(c) for c in tiers["notional_cap"])
    # Binance's own cum keeps maintenance margin continuous at each floor.
    rows = tiers.sort("tier").to_dicts()
    for lower, upper in zip(rows, rows[1:]):
        floor = upper["notional_floor"]
        assert floor * lower["maint_margin_rate"] - lower["maint_amount"] == pytest.approx(
            floor * upper["maint_margin_rate"] - upper["maint_amount"], rel=1e-12)


def test_a_fetch_fills_gaps_around_stored_rows_without_touching_them(store):
    """How fetch merges (docs/data.md): only uncovered ranges of closed bars are requested, so a
    stored row (here an imported bar that differs from the exchange's) is never overlapped, and
    the fetch is not refused for it."""
    client, transport = binance()
    page1 = next(r for r in transport.recordings if r["request"]["path"] == KLINES
                 and r["request"]["query"]["startTime"] == str(T0))["response"]["body"]
    bar = page1[12]  # 2020-03-11T12:00Z, written as imported with a different close
    imported = pl.DataFrame({"exchange": ["binanceusdm"], "symbol": [BTC], "timeframe": ["1h"],
                             "price_type": ["last"], "ts": [int(bar[0])], "open": [float(bar[1])],
                             "high": [float(bar[2]) + 1], "low": [float(bar[3])], "close": [float(bar[2]) + 1],
                             "volume": [float(bar[5])]})
    store.write("ohlcv", imported, source="file:import")
    for lo, hi in ((0, 12), (13, 24)):  # the two gaps around the stored bar, served from the recording
        transport.override(KLINES, {"symbol": "BTCUSDT", "interval": "1h", "limit": 24, "startTime": T0 + lo * HOUR,
                                    "endTime": T0 + hi * HOUR - 1}, page1[lo:hi])
    run(store, ("ohlcv",), client=client, until=T0 + 24 * HOUR)
    after = store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h")
    assert after.height == 24
    assert after.filter(pl.col("ts").dt.epoch("ms") == int(bar[0]))["close"].item() == float(bar[2]) + 1
    assert all(not (T0 + 12 * HOUR <= int(r.query["startTime"]) < T0 + 13 * HOUR)
               for r in transport.requests(KLINES))
