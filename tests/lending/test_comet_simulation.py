"""Compound v3 populations in the simulation: absorb + buyCollateral by hand, cross-checked
against the scalar Comet functions, reserves bearing the shortfall, and Compound rows in the
study's bad-debt table."""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from backtest.lending import compound_v3 as comet
from backtest.lending.amm import ConstantProductPool
from backtest.lending.comet_simulation import CometConfig, simulate_comet
from backtest.lending.errors import LendingParameterError
from backtest.lending.population import generate_population
from backtest.lending.simulation import PositionBook
from backtest.lending.study import LendingSetup, run_study

CF, LF, SFPF = 0.9, 0.95, 0.6
DEEP = ConstantProductPool.at_price(2000.0, depth_quote=1e10, fee=0.0)


def _book(collateral, debt) -> PositionBook:
    return PositionBook(np.array(collateral, dtype=float), np.array(debt, dtype=float), CF,
                        2.0 - LF)


def test_absorb_and_buy_match_the_scalar_comet_functions() -> None:
    book = _book([1.0, 1.0], [1850.0, 1000.0])
    result = simulate_comet(book, [0.0, 12.0], [2000.0, 2000.0], DEEP,
                            CometConfig(store_front_price_factor=SFPF, heartbeat=1.0))
    row = result.liquidations.row(0, named=True)
    assert result.liquidations.height == 1 and row["position"] == 0   # 1800 < 1850 only
    config = comet.AssetConfig("WETH", 0.8, CF, LF)
    expected = comet.absorb(base_balance=-1850.0, base_price=1.0,
                            holdings=[comet.Holding(config, 1.0, 2000.0)], reserves=0.0)
    assert row["surplus_to_user"] == pytest.approx(expected.new_base_balance)   # 1900 - 1850
    assert row["base_paid_out"] == pytest.approx(expected.base_paid_out)
    quote = comet.quote_collateral(base_amount=row["base_paid"], base_price=1.0,
                                   asset_price=2000.0, store_front_price_factor=SFPF,
                                   liquidation_factor=LF)
    assert quote == pytest.approx(1.0)                         # 2000 x (1 - 0.6 x 0.05) = 1940
    assert row["base_paid"] == pytest.approx(1940.0)
    assert result.summary["reserves_end"] == pytest.approx(1940.0 - 1900.0)
    assert result.summary["deficit"] == 0.0
    assert result.collateral[0] == 0.0 and result.debt[0] == 0.0
    assert result.supplied[0] == pytest.approx(50.0)


def test_an_underwater_account_leaves_a_shortfall_the_reserves_bear() -> None:
    # the oracle only updates at the heartbeat: the account is found at 1,000 USD, under water
    book = _book([1.0], [1500.0])
    result = simulate_comet(book, [0.0, 12.0, 3600.0], [2000.0, 1000.0, 1000.0], DEEP,
                            CometConfig(store_front_price_factor=SFPF, reserves=100.0,
                                        deviation=0.9))
    row = result.liquidations.row(0, named=True)
    assert row["step"] == 2 and row["surplus_to_user"] == 0.0
    assert row["base_paid_out"] == pytest.approx(1500.0)         # the whole debt forgiven
    assert row["base_paid"] == pytest.approx(1000.0 * (1 - SFPF * (1 - LF)))   # 970
    assert result.summary["deficit"] == pytest.approx(1500.0 - 970.0)
    assert result.summary["reserves_end"] == pytest.approx(100.0 - 1500.0 + 970.0)
    assert result.toxic_step[0] == 2


def test_not_for_sale_above_target_reserves_keeps_the_collateral() -> None:
    book = _book([1.0], [1850.0])
    result = simulate_comet(book, [0.0], [2000.0], DEEP,
                            CometConfig(reserves=5e6, target_reserves=1e6))
    s = result.summary
    assert s["liquidations"] == 1 and s["collateral_sold"] == 0.0 and s["collateral_unsold"] == 1.0
    assert s["reserves_end"] == pytest.approx(5e6 - 1900.0)
    assert s["deficit"] == 0.0   # the collateral is worth 2000 at the final price


def test_unprofitable_purchases_wait_and_bad_input_is_refused() -> None:
    book = _book([1.0], [1850.0])
    result = simulate_comet(book, [0.0, 12.0], [2000.0, 2000.0], DEEP,
                            CometConfig(gas_cost=100.0))   # 60 of discount < 100 of gas
    assert result.liquidations.height == 0
    with pytest.raises(LendingParameterError, match="store_front_price_factor"):
        CometConfig(store_front_price_factor=1.5)
    with pytest.raises(LendingParameterError, match="strictly increasing"):
        simulate_comet(book, [0.0, 0.0], [1.0, 1.0], DEEP)


def test_the_study_reports_compound_rows_next_to_aave(black_thursday_bars: pl.DataFrame) -> None:
    price = float(black_thursday_bars["open"][0])
    population = pl.concat([
        generate_population(500, seed=3, protocol=protocol, asset="ETH", price=price,
                            health_factor_range=(1.02, 2.0))
        for protocol in ("aave_v3", "compound_v3")])
    study = run_study(population, {"ETH": black_thursday_bars},
                      LendingSetup(step=60.0, depth=5e7))
    bad = study.tables["bad_debt"].sort("protocol")
    assert bad["protocol"].to_list() == ["aave_v3", "compound_v3"]
    comet_row = bad.row(1, named=True)
    # ETH fell ~50 %: every account under HF 2 at the start is absorbed whole
    assert comet_row["liquidations"] > 100
    assert comet_row["debt_liquidated"] > 0.5 * comet_row["debt_start"]
    assert comet_row["reserves_end"] - comet_row["reserves_start"] == pytest.approx(
        float(study.tables["liquidations"].filter(pl.col("protocol") == "compound_v3")
              .select(pl.col("base_paid").sum() - pl.col("base_paid_out").sum()).item()))
    assert math.isfinite(comet_row["bad_debt"]) and comet_row["bad_debt"] >= 0
