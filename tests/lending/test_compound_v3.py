"""Compound v3 (Comet) scenarios with the arithmetic written out: collateral checks, absorb
with the reserves paying the shortfall, buyCollateral at the store-front discount; errors."""
from __future__ import annotations

import pytest

from backtest.lending import compound_v3 as comet
from backtest.lending.errors import LendingParameterError

WETH = comet.AssetConfig("WETH", borrow_collateral_factor=0.80, liquidate_collateral_factor=0.85,
                         liquidation_factor=0.93)
WBTC = comet.AssetConfig("WBTC", borrow_collateral_factor=0.70, liquidate_collateral_factor=0.77,
                         liquidation_factor=0.95)


def test_borrow_and_liquidation_collateral_factors() -> None:
    holdings = [comet.Holding(WETH, 5.0, 1800.0)]   # 9,000 USD
    # borrow limit 9,000 x 0.80 = 7,200; liquidation line 9,000 x 0.85 = 7,650
    assert comet.is_borrow_collateralized(base_balance=-7200.0, base_price=1.0, holdings=holdings)
    assert not comet.is_borrow_collateralized(base_balance=-7200.01, base_price=1.0,
                                              holdings=holdings)
    assert not comet.is_liquidatable(base_balance=-7650.0, base_price=1.0, holdings=holdings)
    assert comet.is_liquidatable(base_balance=-7650.01, base_price=1.0, holdings=holdings)
    # a supplier is never liquidatable, whatever its collateral
    assert not comet.is_liquidatable(base_balance=100.0, base_price=1.0, holdings=[])
    assert comet.is_borrow_collateralized(base_balance=0.0, base_price=1.0, holdings=[])


def test_absorb_forgives_debt_and_reserves_pay_the_shortfall() -> None:
    holdings = [comet.Holding(WETH, 5.0, 1800.0)]
    result = comet.absorb(base_balance=-10000.0, base_price=1.0, holdings=holdings,
                          reserves=50000.0)
    assert result.absorbed
    assert result.value_credited_usd == pytest.approx(9000 * 0.93)   # 8,370 credited
    assert result.new_base_balance == 0.0          # -10,000 + 8,370 < 0: the rest is forgiven
    assert result.base_paid_out == pytest.approx(10000.0)
    assert result.reserves_after == pytest.approx(40000.0)
    assert dict(result.seized) == {"WETH": 5.0}


def test_absorb_surplus_stays_with_the_borrower() -> None:
    holdings = [comet.Holding(WETH, 5.0, 1800.0), comet.Holding(WBTC, 0.1, 30000.0)]
    # liquidation line 7,650 + 3,000 x 0.77 = 9,960 < 10,000
    result = comet.absorb(base_balance=-10000.0, base_price=1.0, holdings=holdings, reserves=0.0)
    credited = 9000 * 0.93 + 3000 * 0.95   # 11,220
    assert result.new_base_balance == pytest.approx(credited - 10000)
    assert result.reserves_after == pytest.approx(-credited)   # negative reserves until sold


def test_absorb_refuses_a_healthy_account() -> None:
    holdings = [comet.Holding(WETH, 5.0, 1800.0)]
    result = comet.absorb(base_balance=-1000.0, base_price=1.0, holdings=holdings,
                          reserves=123.0)
    assert not result.absorbed
    assert result.new_base_balance == -1000.0 and result.reserves_after == 123.0
    assert dict(result.seized) == {}


def test_buy_collateral_at_the_store_front_price() -> None:
    # discount 0.5 x (1 - 0.93) = 3.5 %: WETH at 1,800 x 0.965 = 1,737 USDC
    assert comet.store_front_discount(0.5, 0.93) == pytest.approx(0.035)
    bought = comet.buy_collateral(base_amount=1737.0, min_amount=0.99, reserves=40000.0,
                                  target_reserves=1_000_000.0, collateral_reserves=5.0,
                                  base_price=1.0, asset_price=1800.0,
                                  store_front_price_factor=0.5, liquidation_factor=0.93)
    assert bought.status == "bought"
    assert bought.collateral_out == pytest.approx(1.0)
    assert bought.reserves_after == pytest.approx(41737.0)
    assert bought.collateral_reserves_after == pytest.approx(4.0)
    common = dict(base_price=1.0, asset_price=1800.0, store_front_price_factor=0.5,
                  liquidation_factor=0.93)
    assert comet.buy_collateral(base_amount=1737.0, min_amount=0.0, reserves=2e6,
                                target_reserves=1e6, collateral_reserves=5.0,
                                **common).status == "not_for_sale"
    assert comet.buy_collateral(base_amount=1737.0, min_amount=1.01, reserves=0.0,
                                target_reserves=1e6, collateral_reserves=5.0,
                                **common).status == "too_much_slippage"
    assert comet.buy_collateral(base_amount=17370.0, min_amount=0.0, reserves=-5.0,
                                target_reserves=0.0, collateral_reserves=5.0,
                                **common).status == "insufficient_reserves"


@pytest.mark.parametrize("build, match", [
    (lambda: comet.AssetConfig("X", 0.9, 0.8, 0.9), "borrow_collateral_factor <="),
    (lambda: comet.AssetConfig("X", 0.5, 0.8, 1.2), "liquidation_factor"),
    (lambda: comet.Holding(WETH, -1.0, 1.0), "collateral WETH amount"),
    (lambda: comet.Holding(WETH, 1.0, 0.0), "price of WETH"),
    (lambda: comet.collateral_value([], "borow"), "factor expected"),
    (lambda: comet.is_liquidatable(base_balance=float("nan"), base_price=1.0, holdings=[]),
     "base_balance"),
])
def test_invalid_input_raises(build, match) -> None:
    with pytest.raises(LendingParameterError, match=match):
        build()
