"""Liquidator latency and capital, interest accrual and the depth curve inside the simulation."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtest.lending.amm import ConstantProductPool
from backtest.lending.depth import DepthCurve
from backtest.lending.errors import LendingParameterError
from backtest.lending.interest import compounded_interest
from backtest.lending.simulation import PositionBook, SimulationConfig, simulate

DEEP = ConstantProductPool.at_price(2000.0, depth_quote=1e10, fee=0.0)


def _book(collateral, debt) -> PositionBook:
    return PositionBook(np.array(collateral, float), np.array(debt, float), 0.825, 1.05)


def test_latency_delays_each_liquidation_by_that_many_steps() -> None:
    book = _book([10.0], [16_000.0])                       # liquidatable from 1,939 down
    times, prices = np.arange(6) * 12.0, [2000.0, 1900.0, 1900, 1900, 1900, 1900]
    for latency in (0, 1, 3):
        result = simulate(book, times, prices, DEEP, SimulationConfig(latency_steps=latency))
        assert result.liquidations["step"].to_list()[0] == 1 + latency


def test_capital_caps_the_debt_repaid_per_step_most_profitable_first() -> None:
    book = _book([10.0, 20.0, 5.0], [16_000.0, 32_000.0, 8_000.0])
    result = simulate(book, np.arange(4) * 12.0, [2000.0, 1900, 1900, 1900], DEEP,
                      SimulationConfig(capital=17_000.0))
    liq = result.liquidations
    # step 1: the most profitable (position 1 repays 16,000) fits; 16,000 + 8,000 would not
    assert liq.filter(pl.col("step") == 1)["position"].to_list() == [1]
    # step 2: the two that waited (8,000 + 4,000); position 1 is healthy again (HF 1.093)
    assert sorted(liq.filter(pl.col("step") == 2)["position"].to_list()) == [0, 2]
    per_step = liq.group_by("step").agg(pl.col("debt_repaid").sum())
    assert per_step["debt_repaid"].max() <= 17_000.0
    unlimited = simulate(book, np.arange(4) * 12.0, [2000.0, 1900, 1900, 1900], DEEP)
    assert unlimited.liquidations.filter(unlimited.liquidations["step"] == 1).height == 3


def test_interest_pushes_a_position_under_and_the_next_oracle_update_finds_it() -> None:
    # HF 1.0001 at a constant price: a 50 % borrow rate crosses HF 1 after about 1.8 hours
    value, lt = 20_000.0, 0.825
    book = _book([10.0], [value * lt / 1.0001])
    times = np.arange(0, 4 * 3600 + 1, 60.0)
    config = SimulationConfig(borrow_rate=0.5, heartbeat=3600.0)
    result = simulate(book, times, np.full(times.size, 2000.0), DEEP, config)
    step = result.liquidations["step"][0]
    assert times[step] == 7200.0                              # the second heartbeat, not earlier
    index = result.steps["borrow_index"][step]
    assert index == pytest.approx(compounded_interest(0.5, 60.0) ** step)
    assert result.liquidations["debt_repaid"][0] == pytest.approx(0.5 * book.debt[0] * index)
    assert result.summary["borrow_index"] == pytest.approx(compounded_interest(0.5, 60.0) ** (times.size - 1))


def test_a_depth_curve_is_a_venue_like_the_pool() -> None:
    book = _book([10.0], [16_000.0])
    curve = DepthCurve(2000.0, depth=1e6)
    result = simulate(book, [0.0, 12.0], [2000.0, 1900.0], curve, SimulationConfig())
    row = result.liquidations.row(0, named=True)
    expected = float(DepthCurve(1900.0, depth=1e6).amount_out(row["collateral_to_liquidator"]))
    assert row["realised_proceeds"] == pytest.approx(expected)
    assert result.steps["pool_price"][1] < 1900.0            # the sale moved the book


def test_agent_parameters_are_checked() -> None:
    with pytest.raises(LendingParameterError, match="latency_steps"):
        SimulationConfig(latency_steps=-1)
    with pytest.raises(LendingParameterError, match="capital"):
        SimulationConfig(capital=0.0)
    with pytest.raises(LendingParameterError, match="borrow_rate"):
        SimulationConfig(borrow_rate=float("nan"))
