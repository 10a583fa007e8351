"""Validation: the aggregate 2025-10-10 case on the stored 5m BTCUSDT/ETHUSDT window."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from backtest.cascade import oct10
from backtest.cascade.engine import CascadeConfig, run_cascade
from backtest.cascade.paths import window_paths
from data_loaders.schemas import to_ms
from tests.risk.conftest import read_shared_bars

SYMBOLS = {"BTC/USDT:USDT": "binance_um_BTCUSDT_5m_2025-10-09_2025-10-12.parquet",
           "ETH/USDT:USDT": "binance_um_ETHUSDT_5m_2025-10-09_2025-10-12.parquet"}
N = 100_000


@pytest.fixture(scope="module")
def paths(shared_data: Path, tmp_path_factory):
    from data_loaders.store import MarketStore

    store = MarketStore(tmp_path_factory.mktemp("oct10") / "store")
    for symbol, name in SYMBOLS.items():
        bars = read_shared_bars(shared_data / "klines/crash_2025-10-10" / name)
        store.write("ohlcv", bars.with_columns(exchange=pl.lit("binanceusdm"), symbol=pl.lit(symbol),
                                               timeframe=pl.lit("5m"), price_type=pl.lit("last")), source="test")
    loaded = window_paths(store, exchange="binanceusdm", symbols=list(SYMBOLS), timeframe="5m",
                          start_ms=to_ms("2025-10-10T20:00:00Z"), end_ms=to_ms("2025-10-11T00:00:00Z"))
    return loaded.paths


def _run(paths, hyperliquid_share: float):
    population = oct10.aggregate_population(N, seed=10, prices={s: float(p.price[0]) for s, p in paths.items()},
                                            hyperliquid_share=hyperliquid_share)
    liquidity = {s: oct10.pass_through_liquidity(s) for s in paths}
    return population, run_cascade(population, paths, CascadeConfig(liquidity=liquidity))


@pytest.fixture(scope="module")
def documented(paths):
    return _run(paths, oct10.HYPERLIQUID_SHARE)


def test_documented_population_lands_between_the_reported_bound_and_the_oi_decline(paths, documented):
    btc = paths["BTC/USDT:USDT"].price
    assert btc.min() == pytest.approx(101_516.5)  # the stored crash low (4 sources agree)
    population, result = documented
    oi = float((population.qty * population.entry).sum())
    assert oi == pytest.approx(oct10.OI_BEFORE, rel=0.05)
    liquidated = result.summary["liquidated_notional"]
    assert oct10.LIQUIDATIONS_REPORTED < liquidated < oct10.OI_DECLINE
    # the path is passed through: the forced orders did not move it again
    assert max(v for v in result.summary["amplification"].values()) == pytest.approx(1.0, abs=1e-3)


def test_hyperliquids_low_leverage_alone_would_fall_below_the_reported_bound(paths, documented):
    _, hl_only = _run(paths, 1.0)
    assert hl_only.summary["liquidated_notional"] < oct10.LIQUIDATIONS_REPORTED
    assert hl_only.summary["liquidated_notional"] < documented[1].summary["liquidated_notional"]
