"""Pieces of ``data fetch`` on their own: resume planning, parsing, retries, and the client
protocol with an in-memory fake exchange (a venue that is not Binance)."""
from __future__ import annotations

import math
import subprocess
import sys

import ccxt
import pytest

from data_loaders.ccxt_client import ExchangeClient, page_limit
from data_loaders.ccxt_fetch import FetchRequest, RetryPolicy, fetch_to_store
from data_loaders.ccxt_parse import funding_frame, markets_frame, tiers_frame
from data_loaders.ccxt_plan import uncovered
from data_loaders.ccxt_retry import RetriesExhaustedError
from data_loaders.store import MarketStore

HOUR = 3_600_000
BASE = 1_609_459_200_000  # 2021-01-01T00:00Z
SYMBOL = "XYZ/USDT:USDT"


@pytest.mark.parametrize(("covered", "start", "end", "expected"), [
    ([], 0, 10, [(0, 10)]),
    ([(0, 10)], 0, 10, []),
    ([(0, 4), (6, 8)], 0, 10, [(4, 6), (8, 10)]),
    ([(6, 8), (0, 4), (2, 5)], 0, 10, [(5, 6), (8, 10)]),
    ([(-5, 3)], 0, 10, [(3, 10)]),
    ([(12, 20)], 0, 10, [(0, 10)]),
    ([(0, 10)], 5, 5, []),
])
def test_uncovered_ranges(covered, start, end, expected):
    assert uncovered(covered, start, end) == expected


def _entry(ts: int, rate: float, **info) -> dict:
    return {"timestamp": ts, "fundingRate": rate, "info": info}


def test_funding_interval_follows_the_data_when_a_venue_switches_from_8h_to_4h():
    stamps = [0, 8 * HOUR, 16 * HOUR, 20 * HOUR, 24 * HOUR]
    frame = funding_frame([_entry(t, 1e-4) for t in stamps], exchange="x", symbol=SYMBOL)
    assert frame["interval_hours"].to_list() == [8.0, 8.0, 8.0, 4.0, 4.0]


def test_funding_interval_across_a_hole_uses_the_next_spacing_then_reported_then_previous():
    # 0 -> 40h is a hole (not an interval): row 2 takes the spacing to its successor.
    frame = funding_frame([_entry(0, 1e-4), _entry(40 * HOUR, 1e-4), _entry(44 * HOUR, 1e-4)],
                          exchange="x", symbol=SYMBOL, previous_ts=-8 * HOUR, previous_interval_h=8.0)
    assert frame["interval_hours"].to_list() == [8.0, 4.0, 4.0]
    lone = funding_frame([_entry(0, 1e-4, fundingIntervalHours=1)], exchange="x", symbol=SYMBOL)
    assert lone["interval_hours"].to_list() == [1.0]
    default = funding_frame([_entry(0, 1e-4)], exchange="x", symbol=SYMBOL, fallback_interval_h=8.0)
    assert default["interval_hours"].to_list() == [8.0]


def test_funding_mark_price_and_ms_jitter():
    frame = funding_frame([_entry(1_704_067_200_006, 3.7409e-4, markPrice="42283.6"),
                           _entry(1_704_096_000_000, 1e-4, markPrice="")], exchange="x", symbol=SYMBOL)
    assert frame["ts"].dt.epoch("ms").to_list() == [1_704_067_200_000, 1_704_096_000_000]
    assert frame["mark_price"].to_list() == [42283.6, None]


def test_tiers_without_exchange_cum_derive_it_continuously():
    tiers = [{"minNotional": 0, "maxNotional": 50_000, "maintenanceMarginRate": 0.004, "maxLeverage": 125},
             {"minNotional": 50_000, "maxNotional": 250_000, "maintenanceMarginRate": 0.005, "maxLeverage": 100},
             {"minNotional": 250_000, "maxNotional": None, "maintenanceMarginRate": 0.01, "maxLeverage": 50}]
    frame = tiers_frame(tiers, exchange="x", symbol=SYMBOL, effective_from=0)
    # Binance BTCUSDT brackets 1-3: cum 0, 50, 1300.
    assert frame["maint_amount"].to_list() == [0.0, 50.0, 1300.0]
    assert math.isinf(frame["notional_cap"][-1]) and frame["tier"].to_list() == [1, 2, 3]


def test_markets_in_decimal_places_precision_mode():
    market = {"symbol": SYMBOL, "base": "XYZ", "quote": "USDT", "settle": "USDT", "linear": True,
              "contractSize": 10, "precision": {"price": 2, "amount": 0}, "maker": 0.0002, "taker": 0.0006,
              "limits": {"amount": {"min": 1}, "cost": {"min": None}}, "info": {}}
    row = markets_frame([market], exchange="x", effective_from=0, precision_mode=2).row(0, named=True)
    assert (row["tick_size"], row["lot_size"], row["contract_size"]) == (0.01, 1.0, 10.0)
    # no notional minimum published: 0 (none; the store refuses NaN there); fee unknown: NaN
    assert row["min_notional"] == 0.0 and math.isnan(row["liquidation_fee_rate"])
    no_minimum = {**market, "limits": {}}
    row = markets_frame([no_minimum], exchange="x", effective_from=0, precision_mode=2).row(0, named=True)
    assert row["min_qty"] == row["lot_size"] == 1.0  # the smallest order is one lot


def test_retry_stops_after_max_tries_and_does_not_retry_permanent_errors():
    calls: list[int] = []
    sleeps: list[float] = []
    policy = RetryPolicy(max_tries=4, base_delay=0.5, max_delay=1.5, sleep=sleeps.append)

    def unavailable():
        calls.append(1)
        raise ccxt.ExchangeNotAvailable("binanceusdm 503")

    with pytest.raises(RetriesExhaustedError, match="failed 4 times.*ExchangeNotAvailable"):
        policy.call("ping", unavailable)
    assert len(calls) == 4 and sleeps == [0.5, 1.0, 1.5]  # capped at max_delay

    def bad_symbol():
        calls.append(1)
        raise ccxt.BadSymbol("no such market")

    calls.clear()
    with pytest.raises(ccxt.BadSymbol):
        policy.call("ping", bad_symbol)
    assert len(calls) == 1


class FakeExchange:
    """In-memory :class:`ExchangeClient`: a linear perpetual on a venue ccxt-shaped but not real."""

    id = "fakeperp"
    precisionMode = 4
    features = {"swap": {"linear": {"fetchOHLCV": {"limit": 10}}}}

    def __init__(self, n_bars: int) -> None:
        self.has = {"fetchOHLCV": True, "fetchFundingRateHistory": True, "fetchMarkOHLCV": False,
                    "fetchLeverageTiers": False, "fetchMarketLeverageTiers": False, "fetchMarkets": True}
        self.markets = None
        self.symbols = None
        self.bars = [[BASE + i * HOUR, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 5.0] for i in range(n_bars)]
        self.calls: list[tuple] = []

    def load_markets(self, reload=False, params={}):
        self.markets = {SYMBOL: {"id": "XYZUSDT", "symbol": SYMBOL, "type": "swap", "subType": "linear",
                                 "linear": True}}
        self.symbols = list(self.markets)
        return self.markets

    def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params={}):
        self.calls.append(("ohlcv", since, limit, params.get("until")))
        rows = [b for b in self.bars if b[0] >= since and b[0] <= params.get("until", math.inf)]
        return rows[:limit]

    def fetch_funding_rate_history(self, symbol=None, since=None, limit=None, params={}):
        return []

    def fetch_leverage_tiers(self, symbols=None, params={}):
        return {}


def test_fake_client_follows_the_protocol_and_its_page_limit(tmp_path):
    fake = FakeExchange(n_bars=25)
    assert isinstance(fake, ExchangeClient)
    fake.load_markets()
    assert page_limit(fake, "fetchOHLCV", fake.markets[SYMBOL]) == 10
    store = MarketStore(tmp_path)
    request = FetchRequest(exchange="fakeperp", symbols=(SYMBOL,), timeframe="1h", since=BASE,
                           until=BASE + 40 * HOUR, what=("ohlcv",))
    report = fetch_to_store(request, store, client=fake, clock=lambda: 10**13)
    # 10 + 10 + 5 bars, then an empty page: the venue has no data after bar 24.
    assert [c[1] - BASE for c in fake.calls] == [0, 10 * HOUR, 20 * HOUR, 25 * HOUR]
    assert {c[2] for c in fake.calls} == {10}
    assert report.outcomes[0].rows == 25 and report.outcomes[0].requests == 4
    stored = store.read("ohlcv", exchange="fakeperp", symbol=SYMBOL, timeframe="1h")
    assert stored["close"].to_list() == [100.5 + i for i in range(25)]


def test_importing_backtest_and_the_fetch_modules_does_not_import_ccxt():
    code = ("import sys, backtest, backtest.cli, backtest.cli.fetch, data_loaders.ccxt_fetch; "
            "assert 'ccxt' not in sys.modules, 'ccxt imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
