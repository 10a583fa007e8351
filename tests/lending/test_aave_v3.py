"""Aave v3 scenarios with the arithmetic written out: health factor over two collaterals,
close factor (v3.0 vs v3.3), seizure with bonus and protocol fee, dust rule, deficit, e-mode,
isolation mode; and the errors raised for invalid input."""
from __future__ import annotations

import math

import pytest

from backtest.lending import aave_v3 as aave
from backtest.lending.errors import LendingParameterError, UnknownAssetError

WETH = aave.ReserveConfig("WETH", ltv=0.80, liquidation_threshold=0.825, liquidation_bonus=1.05,
                          liquidation_protocol_fee=0.10)
WBTC = aave.ReserveConfig("WBTC", ltv=0.70, liquidation_threshold=0.75, liquidation_bonus=1.10,
                          liquidation_protocol_fee=0.10, decimals=8)
USDC = aave.ReserveConfig("USDC", ltv=0.75, liquidation_threshold=0.78, liquidation_bonus=1.045,
                          decimals=6)
DAI = aave.ReserveConfig("DAI", ltv=0.63, liquidation_threshold=0.77, liquidation_bonus=1.05)
WSTETH = aave.ReserveConfig("wstETH", ltv=0.70, liquidation_threshold=0.80, liquidation_bonus=1.06)
ETH_EMODE = aave.EModeCategory(1, ltv=0.93, liquidation_threshold=0.95, liquidation_bonus=1.01,
                               collateral_assets=frozenset({"WETH", "wstETH"}),
                               borrowable_assets=frozenset({"WETH"}))
MARKET = aave.Market({r.asset: r for r in (WETH, WBTC, USDC, DAI, WSTETH)}, {1: ETH_EMODE})
PRICES = {"WETH": 2000.0, "WBTC": 40000.0, "USDC": 1.0, "DAI": 1.0, "wstETH": 2300.0}


def test_health_factor_and_borrowing_power_over_two_collaterals() -> None:
    position = aave.Position({"WETH": 10.0, "WBTC": 0.5}, {"USDC": 32000.0})
    data = aave.account_data(position, PRICES, MARKET)
    assert data.total_collateral_base == pytest.approx(40000.0)
    # (20,000 x 0.825 + 20,000 x 0.75) / 32,000
    assert data.health_factor == pytest.approx((16500 + 15000) / 32000)
    assert data.liquidation_threshold == pytest.approx(31500 / 40000)
    assert data.ltv == pytest.approx((20000 * 0.80 + 20000 * 0.70) / 40000)
    # 30,000 of borrowing power, all used
    assert data.available_borrows_base == 0.0
    assert aave.loan_to_value(position, PRICES, MARKET) == pytest.approx(0.8)


def test_liquidation_over_two_collaterals_by_hand_v33() -> None:
    position = aave.Position({"WETH": 10.0, "WBTC": 0.5}, {"USDC": 32000.0})
    result = aave.liquidation_call(position, PRICES, MARKET, collateral_asset="WETH",
                                   debt_asset="USDC", debt_to_cover=math.inf)
    assert result.status == "liquidated"
    assert result.health_factor_before == pytest.approx(0.984375)
    # HF > 0.95 and both reserves above 2,000 USD: 50 % of the total debt
    assert result.debt_repaid == pytest.approx(16000.0)
    # 16,000 USD / 2,000 x 1.05 = 8.4 WETH; bonus part 8.4 - 8.0 = 0.4; 10 % to the treasury
    assert result.collateral_seized == pytest.approx(8.4)
    assert result.protocol_fee == pytest.approx(0.04)
    assert result.collateral_to_liquidator == pytest.approx(8.36)
    assert result.bonus_base == pytest.approx(8.36 * 2000 - 16000)
    after = result.position_after
    assert after.collateral["WETH"] == pytest.approx(1.6)
    assert after.collateral["WBTC"] == 0.5
    assert after.debt["USDC"] == pytest.approx(16000.0)
    # (3,200 x 0.825 + 20,000 x 0.75) / 16,000
    assert result.health_factor_after == pytest.approx((2640 + 15000) / 16000)
    assert dict(result.deficit) == {}


def test_v33_caps_on_total_debt_where_v30_caps_the_reserve() -> None:
    position = aave.Position({"WETH": 10.0, "WBTC": 0.5}, {"USDC": 16000.0, "DAI": 16000.0})
    v30 = aave.liquidation_call(position, PRICES, MARKET, collateral_asset="WETH",
                                debt_asset="USDC", debt_to_cover=math.inf, version="3.0")
    v33 = aave.liquidation_call(position, PRICES, MARKET, collateral_asset="WETH",
                                debt_asset="USDC", debt_to_cover=math.inf, version="3.3")
    assert v30.debt_repaid == pytest.approx(8000.0)    # 50 % of the USDC reserve debt
    assert v33.debt_repaid == pytest.approx(16000.0)   # the whole USDC debt <= 50 % of 32,000


def test_full_close_factor_at_or_below_hf_095() -> None:
    assert aave.close_factor_v30(0.95) == 1.0
    assert aave.close_factor_v30(0.9500001) == 0.5
    assert aave.max_liquidatable_debt_v30(1000.0, 0.94) == 1000.0
    assert aave.max_liquidatable_debt_v33(reserve_collateral_base=1e6, reserve_debt_base=9e5,
                                          total_debt_base=9e5, health_factor=0.95) == 9e5


def test_v33_refuses_a_partial_liquidation_that_leaves_dust() -> None:
    # 1.1 WETH = 2,200 USD against 2,000 USDC: HF = 1,815 / 2,000 = 0.9075 (<= 0.95: 100 %)
    position = aave.Position({"WETH": 1.1}, {"USDC": 2000.0})
    ok = aave.liquidation_call(position, PRICES, MARKET, collateral_asset="WETH",
                               debt_asset="USDC", debt_to_cover=1000.0)
    assert ok.status == "liquidated"   # leaves 1,000 of debt and 0.575 WETH = 1,150 USD
    dusty = aave.liquidation_call(position, PRICES, MARKET, collateral_asset="WETH",
                                  debt_asset="USDC", debt_to_cover=1100.0)
    assert dusty.status == "must_not_leave_dust"   # 900 USD of debt would remain
    assert dusty.debt_repaid == 0.0 and dusty.position_after == position
    full = aave.liquidation_call(position, PRICES, MARKET, collateral_asset="WETH",
                                 debt_asset="USDC", debt_to_cover=math.inf)
    assert full.status == "liquidated" and full.debt_repaid == pytest.approx(2000.0)
    assert full.position_after.collateral["WETH"] == pytest.approx(1.1 - 1.05)
    # the same dusty call is allowed before v3.3
    assert aave.liquidation_call(position, PRICES, MARKET, collateral_asset="WETH",
                                 debt_asset="USDC", debt_to_cover=1100.0,
                                 version="3.2").status == "liquidated"


def test_v33_burns_remaining_debt_into_the_deficit_when_collateral_runs_out() -> None:
    position = aave.Position({"WETH": 1.0}, {"USDC": 2500.0, "DAI": 100.0})
    result = aave.liquidation_call(position, PRICES, MARKET, collateral_asset="WETH",
                                   debt_asset="USDC", debt_to_cover=math.inf)
    assert result.health_factor_before == pytest.approx(1650 / 2600)
    # 2,500 x 1.05 / 2,000 = 1.3125 WETH > 1: all of it, debt repaid 2,000 / 1.05
    assert result.collateral_seized == pytest.approx(1.0)
    assert result.debt_repaid == pytest.approx(2000 / 1.05)
    assert result.protocol_fee == pytest.approx((1 - 1 / 1.05) * 0.10)
    assert dict(result.deficit) == pytest.approx({"USDC": 2500 - 2000 / 1.05, "DAI": 100.0})
    assert all(v == 0 for v in result.position_after.debt.values())
    assert result.health_factor_after == math.inf
    v32 = aave.liquidation_call(position, PRICES, MARKET, collateral_asset="WETH",
                                debt_asset="USDC", debt_to_cover=math.inf, version="3.2")
    assert dict(v32.deficit) == {}   # before v3.3 the bad debt stays on the account
    assert v32.position_after.debt["USDC"] == pytest.approx(2500 - 2000 / 1.05)


def test_refusals_are_outcomes() -> None:
    healthy = aave.Position({"WETH": 10.0}, {"USDC": 1000.0})
    assert aave.liquidation_call(healthy, PRICES, MARKET, collateral_asset="WETH",
                                 debt_asset="USDC", debt_to_cover=500.0).status == "healthy"
    sick = aave.Position({"WETH": 1.0}, {"USDC": 2500.0})
    assert aave.liquidation_call(sick, PRICES, MARKET, collateral_asset="WBTC",
                                 debt_asset="USDC", debt_to_cover=1.0).status == "no_collateral"
    assert aave.liquidation_call(sick, PRICES, MARKET, collateral_asset="WETH",
                                 debt_asset="DAI", debt_to_cover=1.0).status == "no_debt"


def test_emode_overrides_lt_ltv_and_bonus_of_its_assets() -> None:
    plain = aave.Position({"wstETH": 10.0}, {"WETH": 10.0})
    looped = aave.Position({"wstETH": 10.0}, {"WETH": 10.0}, emode=1)
    assert aave.account_data(plain, PRICES, MARKET).health_factor == pytest.approx(18400 / 20000)
    assert aave.account_data(looped, PRICES, MARKET).health_factor == pytest.approx(21850 / 20000)
    assert MARKET.risk_params("USDC", 1) == (0.75, 0.78, 1.045)   # not in the category
    low = dict(PRICES, wstETH=2100.0)   # HF = 21,000 x 0.95 / 20,000 = 0.9975
    result = aave.liquidation_call(looped, low, MARKET, collateral_asset="wstETH",
                                   debt_asset="WETH", debt_to_cover=math.inf)
    assert result.debt_repaid == pytest.approx(5.0)   # 50 % of 20,000 USD = 5 WETH
    assert result.collateral_seized == pytest.approx(5 * 2000 / 2100 * 1.01)   # e-mode bonus
    assert aave.borrow_refusal(looped, PRICES, MARKET, asset="USDC",
                               amount=1.0) == "not_borrowable_in_emode"


def test_isolation_mode_debt_ceiling() -> None:
    iso = aave.ReserveConfig("XYZ", ltv=0.5, liquidation_threshold=0.6, liquidation_bonus=1.1,
                             debt_ceiling=1_000_000.0)
    usdc = aave.ReserveConfig("USDC", ltv=0.75, liquidation_threshold=0.78,
                              borrowable_in_isolation=True)
    market = aave.Market({"XYZ": iso, "USDC": usdc, "DAI": DAI})
    prices = {"XYZ": 10.0, "USDC": 1.0, "DAI": 1.0}
    position = aave.Position({"XYZ": 1000.0}, {})   # 10,000 USD, 5,000 of borrowing power
    assert aave.account_data(position, prices, market).isolated_asset == "XYZ"
    assert aave.borrow_refusal(position, prices, market, asset="USDC", amount=4000.0) is None
    assert aave.borrow_refusal(position, prices, market, asset="USDC", amount=4000.0,
                               isolation_total_debt=997_000.0) == "debt_ceiling_exceeded"
    assert aave.borrow_refusal(position, prices, market, asset="USDC",
                               amount=6000.0) == "ltv_exceeded"
    assert aave.borrow_refusal(position, prices, market, asset="DAI",
                               amount=1.0) == "not_borrowable_in_isolation"
    # a liquidation repays the ceiling by the debt repaid only, never by the deficit
    assert aave.isolation_debt_after_liquidation(997_000.0, 3000.0) == 994_000.0
    mixed = aave.Position({"XYZ": 1.0, "DAI": 1.0}, {})
    with pytest.raises(LendingParameterError, match="isolation mode"):
        aave.account_data(mixed, prices, market)


def test_seizure_formula_with_decimals_cancelling() -> None:
    # raw on-chain balances: 150000000 sat = 1.5 WBTC
    assert aave.amount_from_raw(150_000_000, 8) == 1.5
    s = aave.collateral_to_seize(debt_to_cover=1000.0, debt_price=1.0, collateral_price=40000.0,
                                 collateral_balance=1.5, liquidation_bonus=1.1,
                                 liquidation_protocol_fee=0.2)
    assert s.collateral_seized == pytest.approx(1000 / 40000 * 1.1)
    assert s.protocol_fee == pytest.approx((0.0275 - 0.025) * 0.2)
    assert not s.capped
    assert aave.toxic_loan_to_value(1.05) == pytest.approx(1 / 1.05)


@pytest.mark.parametrize("build, match", [
    (lambda: aave.ReserveConfig("X", ltv=0.9, liquidation_threshold=0.8), "ltv <= liquidation"),
    (lambda: aave.ReserveConfig("X", ltv=0.5, liquidation_threshold=80), "fraction"),
    (lambda: aave.ReserveConfig("X", ltv=0.5, liquidation_threshold=0.95,
                                liquidation_bonus=1.1), "liquidation_bonus <= 1"),
    (lambda: aave.ReserveConfig("X", ltv=0.5, liquidation_threshold=0.8,
                                liquidation_bonus=0.95), "multiplier"),
    (lambda: aave.Position({"WETH": -1.0}, {}), "position collateral WETH"),
    (lambda: aave.Market({"WETH": USDC}), "keyed"),
    (lambda: aave.EModeCategory(0, 0.9, 0.93, 1.01, frozenset()), "category id"),
])
def test_invalid_parameters_raise_clear_errors(build, match) -> None:
    with pytest.raises(LendingParameterError, match=match):
        build()


def test_unknown_asset_and_version_name_the_fix() -> None:
    position = aave.Position({"WETH": 1.0}, {"USDC": 2500.0})
    with pytest.raises(UnknownAssetError, match="did you mean 'WETH'"):
        aave.liquidation_call(position, PRICES, MARKET, collateral_asset="WETh",
                              debt_asset="USDC", debt_to_cover=1.0)
    with pytest.raises(UnknownAssetError, match="no price for asset 'WETH'"):
        aave.account_data(position, {"USDC": 1.0}, MARKET)
    with pytest.raises(LendingParameterError, match="did you mean '3.3'"):
        aave.liquidation_call(position, PRICES, MARKET, collateral_asset="WETH",
                              debt_asset="USDC", debt_to_cover=1.0, version="3.33")
    with pytest.raises(LendingParameterError, match="category 7"):
        aave.account_data(aave.Position({"WETH": 1.0}, {}, emode=7), PRICES, MARKET)
