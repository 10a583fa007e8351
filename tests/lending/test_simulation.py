"""The vectorized lending simulation: cross-checked against the scalar Aave API, with hand
arithmetic for deficits, gas, oracle lag and the pool feedback cascade; conservation and
determinism over seeded populations."""
from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.lending import aave_v3 as aave
from backtest.lending.amm import ConstantProductPool
from backtest.lending.errors import LendingParameterError
from backtest.lending.simulation import (
    PositionBook,
    SimulationConfig,
    generate_positions,
    simulate,
)

LT, BONUS, FEE = 0.825, 1.05, 0.1
DEEP = ConstantProductPool.at_price(2000.0, depth_quote=1e10, fee=0.0)


def _book(collateral, debt) -> PositionBook:
    return PositionBook(np.array(collateral, dtype=float), np.array(debt, dtype=float), LT, BONUS)


def test_a_liquidation_matches_the_scalar_liquidation_call() -> None:
    book = _book([10.0], [16000.0])
    result = simulate(book, [0.0, 12.0, 24.0], [2000.0, 1900.0, 1900.0], DEEP,
                      SimulationConfig(liquidation_protocol_fee=FEE))
    reserve = aave.ReserveConfig("WETH", ltv=0.8, liquidation_threshold=LT,
                                 liquidation_bonus=BONUS, liquidation_protocol_fee=FEE)
    market = aave.Market({"WETH": reserve,
                          "USDC": aave.ReserveConfig("USDC", ltv=0.0, liquidation_threshold=0.0)})
    expected = aave.liquidation_call(aave.Position({"WETH": 10.0}, {"USDC": 16000.0}),
                                     {"WETH": 1900.0, "USDC": 1.0}, market,
                                     collateral_asset="WETH", debt_asset="USDC",
                                     debt_to_cover=math.inf)
    assert result.liquidations.height == 1   # HF after = 1.093: no second liquidation
    row = result.liquidations.row(0, named=True)
    assert row["step"] == 1 and row["oracle_price"] == 1900.0
    assert row["debt_repaid"] == pytest.approx(expected.debt_repaid)          # 8,000
    assert row["collateral_seized"] == pytest.approx(expected.collateral_seized)
    assert row["protocol_fee"] == pytest.approx(expected.protocol_fee)
    assert result.final.collateral[0] == pytest.approx(expected.position_after.collateral["WETH"])
    assert result.final.debt[0] == pytest.approx(8000.0)
    # the liquidator sells into the pool arbitraged to 1,900
    proceeds = float(DEEP.arbitraged(1900.0).amount_out(row["collateral_to_liquidator"]))
    assert row["profit"] == pytest.approx(proceeds - 8000)
    assert row["profit"] == pytest.approx(8000 * BONUS * (1 - (1 - 1 / BONUS) * FEE) - 8000,
                                          abs=0.01)   # the bonus less the treasury's fee


def test_v33_deficit_and_v30_underwater_debt() -> None:
    book = _book([1.0], [1500.0])   # HF 1.1 at 2,000; at 1,200: 990 / 1,500 = 0.66, < 2,000 USD
    path = ([0.0, 12.0], [2000.0, 1200.0])
    v33 = simulate(book, *path, DEEP, SimulationConfig(liquidation_protocol_fee=FEE))
    repaid = 1200 / BONUS   # 1,500 x 1.05 / 1,200 = 1.31 WETH wanted: all of the 1 WETH
    assert v33.summary["liquidations"] == 1
    assert v33.summary["debt_repaid"] == pytest.approx(repaid)
    assert v33.summary["deficit"] == pytest.approx(1500 - repaid)
    assert v33.final.debt[0] == 0.0 and v33.final.collateral[0] == 0.0
    v30 = simulate(book, *path, DEEP, SimulationConfig(version="3.0", liquidation_protocol_fee=FEE))
    assert v30.summary["deficit"] == 0.0
    assert v30.summary["underwater_debt"] == pytest.approx(1500 - repaid)


def test_gas_cost_keeps_liquidators_away() -> None:
    book = _book([10.0], [16000.0])
    path = ([0.0, 12.0, 24.0], [2000.0, 1900.0, 1900.0])
    bonus_value = 8000 * BONUS * (1 - (1 - 1 / BONUS) * FEE) - 8000   # 360 USD at 1,900
    cheap = simulate(book, *path, DEEP, SimulationConfig(gas_cost=bonus_value - 1))
    dear = simulate(book, *path, DEEP, SimulationConfig(gas_cost=bonus_value + 1))
    assert cheap.summary["liquidations"] == 1
    assert dear.summary["liquidations"] == 0 and dear.final.debt[0] == 16000.0


def test_oracle_lag_delays_the_liquidation() -> None:
    book = _book([10.0], [16000.0])
    times = np.arange(0.0, 2 * 3600, 12.0)
    prices = np.where(times == 0, 2000.0, 1900.0)
    lagging = simulate(book, times, prices, DEEP,
                       SimulationConfig(deviation=0.5, heartbeat=3600.0))
    first = lagging.liquidations["step"][0]
    assert times[first] == 3600.0   # the heartbeat, not the 5 % move, published 1,900
    assert lagging.steps["oracle_price"][first - 1] == 2000.0


def test_pool_feedback_cascades_into_a_second_liquidation() -> None:
    # A: liquidation price 16,000 / (10 x 0.825) = 1,939; B: 15,400 / 8.25 = 1,866.7
    book = _book([10.0, 10.0], [16000.0, 15400.0])
    thin = ConstantProductPool.at_price(2000.0, depth_quote=300_000.0, fee=0.003)
    times, prices = np.arange(0.0, 600.0, 12.0), np.full(50, 1930.0)
    prices[0] = 2000.0
    # A's 4.3 WETH sale moves the 150 WETH pool from 1,930 to about 1,825; arbitrage closes
    # 20 % of the log gap per step, so the next reading (~1,845) is below B's line
    calm = simulate(book, times, prices, thin, SimulationConfig(arbitrage_share=0.2))
    cascade = simulate(book, times, prices, thin,
                       SimulationConfig(arbitrage_share=0.2, feedback=True))
    assert set(calm.liquidations["position"]) == {0}
    assert set(cascade.liquidations["position"]) == {0, 1}
    assert calm.steps["oracle_price"].min() == 1930.0
    assert cascade.steps["oracle_price"].min() < 1866.7


def test_toxic_positions_are_flagged() -> None:
    # LTV at 1,500: 1,480 / 1,500 = 0.987 > 1 / 1.05; the other stays at 0.1
    book = _book([1.0, 1.0], [1480.0, 150.0])
    result = simulate(book, [0.0, 12.0], [2000.0, 1500.0], DEEP)
    assert list(result.toxic) == [True, False]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_conservation_and_determinism_over_a_seeded_crash(seed: int) -> None:
    book = generate_positions(2000, seed=seed, price=2000.0, health_factor_range=(1.01, 1.6))
    rng = np.random.default_rng(seed)
    times = np.arange(0.0, 7200.0, 12.0)
    prices = 2000.0 * np.exp(np.cumsum(rng.normal(-0.0008, 0.002, times.size)))
    pool = ConstantProductPool.at_price(2000.0, depth_quote=5e7)
    config = SimulationConfig(gas_cost=5.0, arbitrage_share=0.3, feedback=True)
    first = simulate(book, times, prices, pool, config)
    again = simulate(book, times, prices, pool, config)
    assert first.liquidations.equals(again.liquidations) and first.steps.equals(again.steps)
    liq = first.liquidations
    assert liq.height > 0
    seized = np.bincount(liq["position"].to_numpy(), liq["collateral_seized"].to_numpy(), len(book))
    repaid = np.bincount(liq["position"].to_numpy(), liq["debt_repaid"].to_numpy(), len(book))
    burned = np.bincount(liq["position"].to_numpy(), liq["deficit"].to_numpy(), len(book))
    np.testing.assert_allclose(first.final.collateral + seized, book.collateral, rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose(first.final.debt + repaid + burned, book.debt, rtol=1e-9,
                               atol=1e-6)
    assert np.all(first.final.collateral >= 0) and np.all(first.final.debt >= 0)
    assert first.summary["deficit"] == pytest.approx(float(liq["deficit"].sum()))
    # liquidators only act when their estimate pays
    assert (liq["estimated_proceeds"] - liq["debt_repaid"] - liq["gas_cost"] > 0).all()


def test_generated_population_is_seeded() -> None:
    a = generate_positions(100, seed=7, price=2000.0)
    b = generate_positions(100, seed=7, price=2000.0)
    c = generate_positions(100, seed=8, price=2000.0)
    assert np.array_equal(a.collateral, b.collateral) and np.array_equal(a.debt, b.debt)
    assert not np.array_equal(a.collateral, c.collateral)
    hf = a.collateral * 2000.0 * a.liquidation_threshold / a.debt
    assert np.all((hf >= 1.05 - 1e-9) & (hf <= 2.5 + 1e-9))


def test_invalid_input_raises() -> None:
    with pytest.raises(LendingParameterError, match="'debt'"):
        PositionBook(np.array([1.0]), np.array([-1.0]), LT, BONUS)
    with pytest.raises(LendingParameterError, match="threshold x bonus"):
        PositionBook(np.array([1.0]), np.array([1.0]), 0.95, 1.1)
    with pytest.raises(LendingParameterError, match="strictly increasing"):
        simulate(_book([1.0], [1.0]), [0.0, 0.0], [1.0, 1.0], DEEP)
    with pytest.raises(LendingParameterError, match="version"):
        SimulationConfig(version="4")
