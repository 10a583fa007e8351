"""Oracle update rules (push feed heartbeat/deviation, Maker OSM delay) and the constant-product
pool, with the expected values derived in the tests."""
from __future__ import annotations

import numpy as np
import pytest

from backtest.lending.amm import ConstantProductPool
from backtest.lending.errors import LendingParameterError
from backtest.lending.oracle import chainlink_path, osm_path


def test_push_feed_publishes_on_heartbeat_without_moves() -> None:
    times = np.arange(0.0, 4 * 3600 + 1, 12.0)
    answers, published = chainlink_path(times, np.full(times.size, 100.0), heartbeat=3600,
                                        deviation=0.01)
    assert list(times[published]) == [0.0, 3600.0, 7200.0, 10800.0, 14400.0]
    assert np.all(answers == 100.0)


def test_push_feed_publishes_on_deviation_and_holds_otherwise() -> None:
    times = np.array([0.0, 12, 24, 36, 48])
    prices = np.array([100.0, 100.4, 100.6, 99.9, 100.0])
    answers, published = chainlink_path(times, prices, heartbeat=3600, deviation=0.005)
    # 0.4 % held; 0.6 % published; then -0.7 % from 100.6 published; 0.1 % held
    assert list(published) == [True, False, True, True, False]
    assert list(answers) == [100.0, 100.0, 100.6, 99.9, 99.9]


def test_osm_serves_the_previous_hours_reading() -> None:
    times = np.arange(0.0, 3 * 3600, 600.0)     # every 10 minutes for 3 hours
    prices = 1000.0 + times                     # a rising source
    served = osm_path(times, prices, hop=3600)
    # hour 0 and hour 1 serve the first reading; hour 2 serves the reading at 1 h
    assert list(served[:6]) == [1000.0] * 6
    assert list(served[6:12]) == [1000.0] * 6
    assert list(served[12:]) == [1000.0 + 3600] * 6


def test_oracle_input_errors() -> None:
    with pytest.raises(LendingParameterError, match="strictly increasing"):
        chainlink_path([0, 0], [1, 1], heartbeat=1, deviation=0.1)
    with pytest.raises(LendingParameterError, match="finite and > 0"):
        osm_path([0, 1], [1, -1])
    with pytest.raises(LendingParameterError, match="same non-zero length"):
        osm_path([0, 1], [1])


def test_constant_product_sale_and_arbitrage() -> None:
    pool = ConstantProductPool.at_price(2000.0, depth_quote=1_000_000.0, fee=0.003)
    assert pool.collateral == 500.0 and pool.price == 2000.0
    out, after = pool.sell(10.0)
    dx = 10 * 0.997
    assert out == pytest.approx(1_000_000 * dx / (500 + dx))
    assert after.collateral == 510.0 and after.quote == pytest.approx(1_000_000 - out)
    assert after.collateral * after.quote >= pool.collateral * pool.quote   # fee stays in
    assert out < 10 * 2000                                                   # slippage
    back = after.arbitraged(2000.0)
    assert back.price == pytest.approx(2000.0)
    assert back.collateral * back.quote == pytest.approx(after.collateral * after.quote)
    half = after.arbitraged(2000.0, share=0.5)
    assert half.price == pytest.approx(np.sqrt(after.price * 2000.0))
    quotes = pool.amount_out(np.array([1.0, 10.0]))
    assert quotes[1] == pytest.approx(out)
    with pytest.raises(LendingParameterError, match="pool fee"):
        ConstantProductPool(1.0, 1.0, fee=1.0)
