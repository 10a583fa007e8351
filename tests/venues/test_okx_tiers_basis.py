"""OKX tiers counted in contracts, stored as fetched, read back and used in a run (issue 11).

``margincall data fetch --exchange okx`` stores OKX's position tiers with bounds in contracts
(``minSz``/``maxSz``, OKX's own unit; the partition's exchange names the unit,
``data_loaders.ccxt_tiers.tier_bound_unit``). The loader reads them back as a table whose basis
is ``contracts`` and the engine looks each position up by its contract count (``qty / ctVal``,
ctVal 0.01 BTC for BTC-USDT-SWAP). The tiers are stored by the real fetch path (ccxt's okx
parsing of the recorded OKX v5 body, tests/data/venue_fetch.py), stamped at the fetch time;
the candles after that instant are real Parquet rows written to the same store.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtest import RunConfig, run_backtest
from backtest.market_loader import load_market
from backtest.strategy import Strategy
from backtest.venues.defaults import default_tier_schedule
from backtest.venues.tiers import CONTRACTS
from data_loaders.ccxt_tiers import tier_bound_unit
from data_loaders.store import MarketStore
from tests.data.venue_fetch import NOW, fetch, replay_client, sql

BTC = "BTC/USDT:USDT"
HOUR = 3_600_000
PRICE = 100_000.0
#: hourly closes from the snapshot's date on: flat, then a crash bar down to 90,000
CLOSES = [PRICE, PRICE, PRICE, 95_000.0, 95_000.0]
LOWS = [PRICE, PRICE, PRICE, 90_000.0, 95_000.0]


def _candles(price_type: str) -> pl.DataFrame:
    n = len(CLOSES)
    close = np.array(CLOSES)
    return pl.DataFrame({
        "exchange": ["okx"] * n, "symbol": [BTC] * n, "timeframe": ["1h"] * n,
        "price_type": [price_type] * n,
        "ts": NOW + np.arange(n, dtype=np.int64) * HOUR,
        "open": np.concatenate([[PRICE], close[:-1]]), "high": np.maximum(close, PRICE),
        "low": np.array(LOWS), "close": close,
        "volume": [1e3] * n if price_type == "last" else [None] * n,
    }).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")), pl.col("volume").cast(pl.Float64))


@pytest.fixture
def okx_store(tmp_path) -> MarketStore:
    store = MarketStore(tmp_path / "store")
    client, _ = replay_client("okx")
    fetch(store, "okx", ("tiers",), symbols=(BTC,), client=client)  # `data fetch --what tiers`
    for price_type in ("last", "mark"):
        store.write("ohlcv", _candles(price_type), source="test candles")
    return store


def test_the_unit_of_stored_bounds_is_the_exchange_profiles():
    assert tier_bound_unit("okx") == "contracts"
    for exchange in ("binanceusdm", "bybit", "hyperliquid", "binance_usdm"):
        assert tier_bound_unit(exchange) == "notional"


def test_stored_okx_tiers_are_read_back_by_contract_count(okx_store):
    # the stored table is multi-tier in contracts: 2,000 contracts (20 BTC) is tier 2's floor
    floors = [row[0] for row in sql(okx_store, "select notional_floor from risk_tiers where exchange = 'okx' "
                                               "order by tier")]
    assert floors == [0.0, 2000.0, 4000.0, 8000.0]
    loaded = load_market(okx_store, exchange="okx", symbols=[BTC], timeframe="1h", start=NOW,
                         end=NOW + len(CLOSES) * HOUR)
    table = loaded.tiers[BTC].at(NOW)
    assert table.basis == CONTRACTS and "stored risk_tiers" in table.label
    assert [t.floor for t in table.tiers] == floors
    from backtest.contracts import contract_for
    contract = contract_for(loaded.markets[BTC])
    assert contract.contract_size == 0.01                        # ctVal of BTC-USDT-SWAP
    # 25 BTC = 2,500 contracts: tier 2 (0.6 %); its notional 2.5M USDT read as a count would be
    # far beyond the last cap (16,000)
    assert table.for_position(25.0, PRICE, contract).mmr == 0.006
    assert table.for_position(19.99, PRICE, contract).mmr == 0.004


class _Long(Strategy):
    """Target ``exposure`` x wallet at the first bar, then hold."""

    name = "okx_long"
    exposure = 10.0

    def on_bar(self, ctx) -> None:  # noqa: ANN001
        if ctx.bar_index == 0:
            ctx.target_exposure(self.exposure)


def test_a_run_uses_the_fetched_tier_of_the_contract_count(okx_store):
    loaded = load_market(okx_store, exchange="okx", symbols=[BTC], timeframe="1h", start=NOW,
                         end=NOW + len(CLOSES) * HOUR)
    config = RunConfig(venue="okx", initial_balance=300_000.0, leverage=10.0, margin_mode="isolated",
                       fees=(0.0, 0.0), slippage="none", rounding=False)
    result = run_backtest(loaded.market_data(), _Long(), config=config)
    # 300,000 x 10 = 3,000,000 USDT at 100,000 = 30 BTC = 3,000 contracts: tier 2 (MMR 0.6 %,
    # 100x); OKX's requirement adds its 0.05 % fee rate: 3,000,000 x 0.65 % = 19,500 USDT
    flat = result.equity.row(1, named=True)
    assert flat["position_qty"] == pytest.approx(30.0)
    assert flat["maintenance_margin"] == pytest.approx(3_000_000.0 * (0.006 + 0.0005), rel=1e-12)
    # LP = (EP - margin/size) / (1 - (MMR + fee)) = (100,000 - 10,000) / 0.9935 = 90,588.83
    lp = (PRICE - 300_000.0 / 30.0) / (1.0 - (0.006 + 0.0005))
    liq = result.liquidations.row(0, named=True)
    assert liq["liquidation_price"] == pytest.approx(lp, rel=1e-12)
    assert liq["tier"] == 2 and liq["maint_margin_rate"] == 0.006
    assert result.liquidations.height == 1


def test_another_venues_rules_on_okx_prices_read_no_okx_tiers(okx_store):
    # `tables` names whose tiers apply: Binance's rules over OKX prices read Binance's table
    loaded = load_market(okx_store, exchange="okx", symbols=[BTC], timeframe="1h", start=NOW,
                         end=NOW + len(CLOSES) * HOUR, tables="binance_usdm")
    table = loaded.tiers[BTC].at(NOW)
    assert table.to_rows() == default_tier_schedule("binance_usdm", BTC).at(NOW).to_rows()
    assert table.basis == "notional"
