"""Pieces of the multi-exchange fetch on their own: newest-first paging against an in-memory
venue, per-exchange page sizes and capability refusals, Hyperliquid margin tables, raw deductions."""
from __future__ import annotations

import math

import pytest

from data_loaders.ccxt_client import CapabilityError, check_capabilities
from data_loaders.ccxt_fetch import FetchRequest, fetch_to_store
from data_loaders.ccxt_parse import hyperliquid_margin_tiers, tiers_frame
from data_loaders.ccxt_venues import PROFILES, profile
from data_loaders.store import MarketStore

HOUR = 3_600_000
BASE = 1_609_459_200_000  # 2021-01-01T00:00Z
SYMBOL = "XYZ/USDT:USDT"


class NewestFirstVenue:
    """In-memory venue answering a since/until window with its newest ``limit`` bars, as dYdX does
    (its id selects dYdX's profile: newest-first paging)."""

    id = "dydx"
    precisionMode = 4
    features = {"swap": {"linear": {"fetchOHLCV": {"limit": 10}}}}

    def __init__(self, hours: list[int]) -> None:
        self.has = {"fetchOHLCV": True, "fetchMarkets": True}
        self.markets = None
        self.symbols = None
        self.bars = [[BASE + h * HOUR, 100.0 + h, 101.0 + h, 99.0 + h, 100.5 + h, 1.0] for h in hours]
        self.untils: list[int] = []

    def load_markets(self, reload=False, params={}):
        self.markets = {SYMBOL: {"id": "XYZ-USDT-SWAP", "symbol": SYMBOL, "type": "swap", "subType": "linear",
                                 "linear": True}}
        self.symbols = list(self.markets)
        return self.markets

    def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params={}):
        self.untils.append(params["until"])
        inside = [b for b in self.bars if since <= b[0] <= params["until"]]
        return sorted(inside, key=lambda b: -b[0])[:limit]


def _fetch(tmp_path, venue: NewestFirstVenue) -> list[float]:
    store = MarketStore(tmp_path)
    request = FetchRequest(exchange=venue.id, symbols=(SYMBOL,), timeframe="1h", since=BASE,
                           until=BASE + 40 * HOUR, what=("ohlcv",))
    fetch_to_store(request, store, client=venue, clock=lambda: 10**13)
    stored = store.read("ohlcv", exchange=venue.id, symbol=SYMBOL, timeframe="1h")
    return [(t - BASE) // HOUR for t in stored["ts"].dt.epoch("ms").to_list()]


def test_newest_first_pages_are_followed_back_across_a_hole(tmp_path):
    hours = [h for h in range(40) if not 10 <= h < 15]  # the venue has no bars 10..14
    venue = NewestFirstVenue(hours)
    assert _fetch(tmp_path, venue) == hours
    # 30..39, then 20..29, then 5..9 + 15..19 (the hole inside it), then 0..4 (reaches the start)
    assert [(u + 1 - BASE) // HOUR for u in venue.untils] == [40, 30, 20, 5]


def test_an_empty_answer_ends_the_walk(tmp_path):
    venue = NewestFirstVenue(list(range(33, 40)))  # listed at hour 33: nothing older exists
    assert _fetch(tmp_path, venue) == list(range(33, 40))
    assert [(u + 1 - BASE) // HOUR for u in venue.untils] == [40, 33]


def test_pages_cut_below_the_size_asked_for_still_walk_back(tmp_path):
    venue = NewestFirstVenue(list(range(40)))
    cut = venue.fetch_ohlcv
    venue.fetch_ohlcv = lambda *a, **k: cut(*a, **k)[:7]  # OKX history answers 100 when asked 300
    assert _fetch(tmp_path, venue) == list(range(40))
    assert [(u + 1 - BASE) // HOUR for u in venue.untils] == [40, 33, 26, 19, 12, 5]


def test_profile_refusals_win_over_what_ccxt_claims():
    class Claims:
        id = "dydx"
        has = {name: True for name in ("fetchOHLCV", "fetchMarkOHLCV", "fetchIndexOHLCV", "fetchFundingRateHistory",
                                       "fetchLeverageTiers", "fetchMarketLeverageTiers", "fetchMarkets")}

    with pytest.raises(CapabilityError) as caught:
        check_capabilities(Claims(), ("ohlcv", "mark", "tiers", "funding"))
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0].strip(" -") for line in lines[1:-1]] == ["mark", "tiers"]
    check_capabilities(Claims(), ("ohlcv", "funding", "markets"))  # no error
    assert profile("binanceusdm") == profile("no-such-exchange")  # the defaults are Binance's
    assert set(PROFILES) == {"bybit", "okx", "hyperliquid", "dydx", "bitmex"}


def test_hyperliquid_margin_tables_and_their_fallbacks():
    meta = {"universe": [{"name": "BTC", "maxLeverage": 40, "marginTableId": 56},
                         {"name": "DOGE", "maxLeverage": 10, "marginTableId": 10}],
            "marginTables": [[56, {"marginTiers": [{"lowerBound": "150000000.0", "maxLeverage": 20},
                                                   {"lowerBound": "0.0", "maxLeverage": 40}]}]]}
    btc = hyperliquid_margin_tiers(meta, "BTC")
    assert [(t["minNotional"], t["maxNotional"], t["maxLeverage"]) for t in btc] == [
        (0.0, 150e6, 40.0), (150e6, None, 20.0)]  # sorted by floor whatever the wire order
    assert [t["maintenanceMarginRate"] for t in btc] == [1 / 80, 1 / 40]
    (doge,) = hyperliquid_margin_tiers(meta, "DOGE")  # table 10 not listed: one tier at 10x
    assert (doge["minNotional"], doge["maxNotional"], doge["maxLeverage"]) == (0.0, None, 10.0)
    assert hyperliquid_margin_tiers(meta, "NOPE") == []


def test_raw_deduction_is_used_and_an_empty_one_falls_back_to_the_recursion():
    tiers = [{"minNotional": 0, "maxNotional": 100, "maintenanceMarginRate": 0.01, "maxLeverage": 50,
              "info": {"mmDeduction": ""}},
             {"minNotional": 100, "maxNotional": None, "maintenanceMarginRate": 0.02, "maxLeverage": 25,
              "info": {"mmDeduction": "1"}}]
    frame = tiers_frame(tiers, exchange="bybit", symbol=SYMBOL, effective_from=0, maint_amount="raw:mmDeduction")
    assert frame["maint_amount"].to_list() == [0.0, 1.0] and math.isinf(frame["notional_cap"][1])
    tiers[1]["info"]["mmDeduction"] = ""
    frame = tiers_frame(tiers, exchange="bybit", symbol=SYMBOL, effective_from=0, maint_amount="raw:mmDeduction")
    assert frame["maint_amount"].to_list() == pytest.approx([0.0, 100 * (0.02 - 0.01)])


def test_a_window_the_exchange_has_nothing_for_is_reported_not_silent(tmp_path):
    venue = NewestFirstVenue([])
    store = MarketStore(tmp_path)
    request = FetchRequest(exchange=venue.id, symbols=(SYMBOL,), timeframe="1h", since=BASE,
                           until=BASE + 40 * HOUR, what=("ohlcv",))
    (outcome,) = fetch_to_store(request, store, client=venue, clock=lambda: 10**13).outcomes
    assert outcome.rows == 0 and "returned no rows" in outcome.describe()
    assert "margincall data import" in outcome.note
    assert store.coverage("ohlcv", exchange=venue.id, symbol=SYMBOL, timeframe="1h", price_type="last") == []


def test_okx_history_candles_are_asked_at_the_size_they_serve():
    from data_loaders.ccxt_client import create_exchange, page_limit

    okx = create_exchange("okx")
    market = {"type": "swap", "subType": "linear", "linear": True}
    assert okx.features["swap"]["linear"]["fetchOHLCV"]["limit"] == 300  # what ccxt claims
    assert page_limit(okx, "fetchOHLCV", market) == 100
    assert page_limit(create_exchange("bybit"), "fetchOHLCV", market) == 1000  # ccxt's feature value
