"""Aave positions with several collaterals and debts: the health factor over all of them, the
liquidator's pair choice by hand (v3.3 thresholds and dust on each pair), the deficit when
every reserve is exhausted, the population rows and the study."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtest.lending.errors import LendingParameterError
from backtest.lending.multi import MultiBook, book_from_rows, health_factors, simulate_multi
from backtest.lending.population import generate_multi_population, validate_population
from backtest.lending.simulation import SimulationConfig
from backtest.lending.study import LendingSetup, run_study

LT = np.array([0.825, 0.78])
BONUS = np.array([1.05, 1.05])


def _book(eth, btc, usdc, usdt=0.0) -> MultiBook:
    return MultiBook(np.array([[eth, btc]]), np.array([[usdc, usdt]]), ("ETH", "BTC"),
                     ("USDC", "USDT"), LT, BONUS)


def _prices(eth_path, btc=40_000.0):
    n = len(eth_path)
    return {"ETH": np.array(eth_path, dtype=float), "BTC": np.broadcast_to(btc, (n,)).astype(float),
            "USDC": np.ones(n), "USDT": np.ones(n)}


def test_health_factor_over_every_collateral_and_debt() -> None:
    hf = health_factors(np.array([[2000.0, 2000.0]]), np.array([[1000.0, 2000.0]]), LT)
    assert hf[0] == pytest.approx((2000 * 0.825 + 2000 * 0.78) / 3000)


def test_the_liquidator_picks_the_pair_paying_the_most_bonus() -> None:
    # 1 ETH + 0.05 BTC (2,000 USD each) against 3,000 USDC: HF 1.07; ETH falls to 1,600: 0.96
    result = simulate_multi(_book(1.0, 0.05, 3000.0), [0.0, 12.0, 24.0],
                            _prices([2000.0, 1600.0, 1600.0]), SimulationConfig(version="3.3"))
    liq = result.liquidations
    assert liq.height == 1
    row = liq.row(0, named=True)
    # ETH pair: its reserve (1,600) is under 2,000, so the whole USDC debt may be repaid; the
    # bonus paid is min(1600, 3000 x 1.05) x (1 - 1/1.05) = 76.2. BTC pair: HF > 0.95 and both
    # reserves >= 2,000 cap it at 50 % = 1,500, then the dust rule shrinks it to leave 1,000 of
    # BTC: 1,000 x (1 - 1/1.05) = 47.6. The liquidator takes ETH.
    assert row["collateral_asset"] == "ETH" and row["debt_asset"] == "USDC"
    assert row["collateral_seized"] == pytest.approx(1.0)          # the ETH balance caps it
    assert row["debt_repaid"] == pytest.approx(1600.0 / 1.05)
    assert row["protocol_fee"] == pytest.approx((1.0 - 1.0 / 1.05) * 0.1)
    assert result.collateral[0].tolist() == [0.0, 0.05]
    assert result.debt[0, 0] == pytest.approx(3000.0 - 1600.0 / 1.05)
    # after it: HF = 2000 x 0.78 / 1476.2 > 1, no second liquidation
    assert result.summary["deficit"] == 0.0


def test_v33_burns_the_debt_once_every_reserve_is_empty() -> None:
    book = _book(1.0, 0.05, 2500.0, 500.0)   # HF 3,210 / 3,000 = 1.07
    prices = _prices([2000.0, 1000.0, 1000.0, 1000.0, 1000.0],
                     btc=np.array([40_000.0, 20_000.0, 20_000.0, 20_000.0, 20_000.0]))
    result = simulate_multi(book, np.arange(5.0) * 12, prices, SimulationConfig(version="3.3"))
    # 1,000 + 1,000 of collateral against 3,000 of debt: each reserve is under 2,000, so each
    # call may repay the whole USDC debt; the two pairs pay the same bonus (ETH first, the tie
    # rule), then BTC at the next step, then the rest of the debt is burned
    assert result.liquidations["collateral_asset"].to_list() == ["ETH", "BTC"]
    assert result.liquidations["step"].to_list() == [1, 2]
    repaid = float(result.liquidations["debt_repaid_value"].sum())
    assert repaid == pytest.approx(2000.0 / 1.05)
    assert result.summary["deficit"] == pytest.approx(3000.0 - repaid)
    assert result.collateral.sum() == 0.0 and result.debt.sum() == 0.0
    old = simulate_multi(book, np.arange(5.0) * 12, prices, SimulationConfig(version="3.0"))
    assert old.summary["deficit"] == 0.0
    assert old.summary["underwater_debt"] == pytest.approx(3000.0 - repaid)


def test_rows_sharing_an_id_are_one_position_and_bad_rows_are_refused() -> None:
    rows = validate_population(pl.DataFrame({
        "position_id": ["a", "a", "b"], "protocol": ["aave_v3"] * 3, "asset": ["ETH", "BTC", "ETH"],
        "collateral": [1.0, 0.05, 2.0], "debt": [1000.0, 500.0, 100.0],
        "liquidation_threshold": [0.825, 0.78, 0.825], "liquidation_bonus": [1.05, 1.05, 1.05],
        "debt_asset": ["USDC", "USDT", "ETH"]}))
    book, ids = book_from_rows(rows, {"USDC": 1.0, "USDT": 1.0, "ETH": 2000.0})
    assert ids.to_list() == ["a", "b"] and book.collateral_assets == ("ETH", "BTC")
    assert book.collateral.tolist() == [[1.0, 0.05], [2.0, 0.0]]
    assert book.debt.tolist() == [[1000.0, 500.0, 0.0], [0.0, 0.0, 100.0 / 2000.0]]
    with pytest.raises(LendingParameterError, match="several thresholds"):
        book_from_rows(rows.with_columns(liquidation_threshold=pl.Series([0.825, 0.78, 0.8])),
                       {"USDC": 1.0, "USDT": 1.0, "ETH": 2000.0})
    with pytest.raises(LendingParameterError, match="only for aave_v3"):
        validate_population(rows.with_columns(protocol=pl.Series(["maker", "maker", "aave_v3"])))


def test_generated_multi_positions_through_the_study(black_thursday_bars: pl.DataFrame) -> None:
    eth = black_thursday_bars
    # a second collateral on the same clock: ETH candles scaled, a stand-in "BTC" of the window
    btc = eth.with_columns(pl.col("open", "high", "low", "close") * 20.0)
    prices = {"ETH": float(eth["open"][0]), "BTC": float(btc["open"][0])}
    population = generate_multi_population(300, seed=5, prices=prices,
                                           health_factor_range=(1.05, 2.0))
    assert population.height == 600 and population["position_id"].n_unique() == 300
    a = generate_multi_population(300, seed=5, prices=prices)
    assert a.equals(generate_multi_population(300, seed=5, prices=prices))
    study = run_study(population, {"ETH": eth, "BTC": btc}, LendingSetup(step=60.0))
    bad = study.tables["bad_debt"].row(0, named=True)
    assert bad["asset"] == "ETH+BTC" and bad["positions"] == 300
    liq = study.tables["liquidations"]
    assert liq.height > 0 and set(liq["collateral_asset"]) <= {"ETH", "BTC"}
    assert bad["debt_liquidated"] == pytest.approx(float(liq["debt_repaid_value"].sum()))
    assert study.tables["positions"].height == 300


def test_seized_collateral_sells_into_each_assets_venue() -> None:
    from backtest.lending.amm import ConstantProductPool

    prices = _prices([2000.0, 1600.0, 1600.0])
    # deep venues: the first test's liquidation (1 ETH to the liquidator's side) goes ahead,
    # realised at the pool's quote, not the market price
    deep = {"ETH": ConstantProductPool.at_price(2000.0, depth_quote=1e7, fee=0.0),
            "BTC": ConstantProductPool.at_price(40_000.0, depth_quote=1e7, fee=0.0)}
    result = simulate_multi(_book(1.0, 0.05, 3000.0), [0.0, 12.0, 24.0], prices,
                            SimulationConfig(version="3.3"), deep)
    row = result.liquidations.row(0, named=True)
    pool = deep["ETH"].arbitraged(1600.0)   # at step 1 arbitrage has moved it to the market
    expected, _ = pool.sell(row["collateral_to_liquidator"])
    assert row["realised_proceeds"] == pytest.approx(expected)
    assert row["realised_proceeds"] < row["collateral_to_liquidator"] * 1600.0   # slippage
    assert row["profit"] == pytest.approx(expected - row["debt_repaid"])
    # a shallow ETH venue: the sale would not cover the debt, so nobody liquidates
    shallow = {**deep, "ETH": ConstantProductPool.at_price(2000.0, depth_quote=2e3, fee=0.0)}
    none = simulate_multi(_book(1.0, 0.05, 3000.0), [0.0, 12.0, 24.0], prices,
                          SimulationConfig(version="3.3"), shallow)
    assert none.liquidations.height == 0
    with pytest.raises(LendingParameterError, match="venue for every collateral asset"):
        simulate_multi(_book(1.0, 0.05, 3000.0), [0.0, 12.0], _prices([2000.0, 1600.0]),
                       SimulationConfig(), {"ETH": deep["ETH"]})


def test_one_batch_per_asset_and_step_shares_the_proceeds() -> None:
    from backtest.lending.amm import ConstantProductPool

    book = MultiBook(np.array([[1.0, 0.0], [2.0, 0.0]]), np.array([[1500.0, 0.0], [3000.0, 0.0]]),
                     ("ETH", "BTC"), ("USDC", "USDT"), LT, BONUS)
    venues = {"ETH": ConstantProductPool.at_price(2000.0, depth_quote=5e5, fee=0.0),
              "BTC": ConstantProductPool.at_price(40_000.0, depth_quote=5e5, fee=0.0)}
    result = simulate_multi(book, [0.0, 12.0], _prices([2000.0, 1700.0]), SimulationConfig(),
                            venues)
    liq = result.liquidations
    assert liq.height == 2 and liq["step"].to_list() == [1, 1]
    total, _ = venues["ETH"].arbitraged(1700.0).sell(float(liq["collateral_to_liquidator"].sum()))
    assert float(liq["realised_proceeds"].sum()) == pytest.approx(total)
    share = liq["realised_proceeds"] / liq["collateral_to_liquidator"]
    assert share[0] == pytest.approx(share[1])          # pro rata: one price for the batch
    # each was judged on its own quote, which beats the batch's average price
    assert (liq["estimated_proceeds"] > liq["realised_proceeds"]).all()
