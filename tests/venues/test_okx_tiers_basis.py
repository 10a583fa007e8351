"""OKX tiers counted in contracts are never read as notional (issue 11).

``margincall data fetch --exchange okx`` stores OKX's position tiers with bounds in contracts
(``minSz``/``maxSz``, OKX's own unit); the engine looks every tier table up by notional. A run
over such a store must refuse before the loop, naming the fix, instead of picking brackets by
the wrong unit. The store is written by the real fetch path (ccxt's okx parsing of the recorded
OKX v5 bodies, tests/data/venue_fetch.py).
"""
from __future__ import annotations

import pytest

from backtest.errors import MarketDataError
from backtest.market_loader import load_market
from backtest.venues.defaults import default_tier_schedule
from data_loaders.ccxt_tiers import tier_bound_unit
from data_loaders.store import MarketStore
from tests.data.venue_fetch import END, T0, fetch, replay_client, sql

BTC = "BTC/USDT:USDT"


@pytest.fixture
def okx_store(tmp_path) -> MarketStore:
    """Candles (last + mark) and position tiers of OKX BTC/USDT:USDT, fetched as the CLI does."""
    store = MarketStore(tmp_path / "store")
    client, _ = replay_client("okx")
    fetch(store, "okx", ("ohlcv", "mark", "tiers"), symbols=(BTC,), client=client)
    return store


def test_the_unit_of_stored_bounds_is_the_exchange_profiles():
    assert tier_bound_unit("okx") == "contracts"
    for exchange in ("binanceusdm", "bybit", "hyperliquid", "binance_usdm"):
        assert tier_bound_unit(exchange) == "notional"


def test_a_run_over_fetched_okx_tiers_refuses_before_the_loop(okx_store):
    # the fetched table really is multi-tier in contracts: 2000 contracts (= 20 BTC at ctVal
    # 0.01) is tier 2's floor, a notional of only 2000 USDT if misread
    floors = [row[0] for row in sql(okx_store, "select notional_floor from risk_tiers where exchange = 'okx' "
                                               "order by tier")]
    assert floors == [0.0, 2000.0, 4000.0, 8000.0]
    with pytest.raises(MarketDataError) as info:
        load_market(okx_store, exchange="okx", symbols=[BTC], timeframe="1h", start=T0, end=END)
    message = str(info.value)
    assert f"risk_tiers of okx {BTC}" in message                      # subject
    assert "expected tier bounds in notional" in message              # expected
    assert "found bounds in contracts" in message                     # found
    assert f"margincall data rm risk_tiers --exchange okx --symbol {BTC} --yes" in message  # fix


def test_the_named_fix_works_and_the_built_in_table_applies(okx_store):
    # follow the message: remove the stored tiers (what `data rm ... --yes` does), then load
    okx_store.remove("risk_tiers", exchange="okx", symbol=BTC, dry_run=False)
    loaded = load_market(okx_store, exchange="okx", symbols=[BTC], timeframe="1h", start=T0, end=END)
    built_in = default_tier_schedule("okx", BTC)
    assert loaded.tiers[BTC].at(T0).to_rows() == built_in.at(T0).to_rows()


def test_another_venues_rules_on_okx_prices_read_no_okx_tiers(okx_store):
    # `tables` names whose tiers apply: Binance's rules over OKX prices are not refused
    loaded = load_market(okx_store, exchange="okx", symbols=[BTC], timeframe="1h", start=T0, end=END,
                         tables="binance_usdm")
    assert loaded.tiers[BTC].at(T0).to_rows() == default_tier_schedule("binance_usdm", BTC).at(T0).to_rows()
