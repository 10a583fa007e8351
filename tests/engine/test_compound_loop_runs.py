"""Runs under ``venue = "compound_v3"``: ``absorb`` through the engine with the arithmetic
written in, and the venue next to Binance and Aave on one path.

Scenario (1m candles, no fees, no slippage, no latency): 10,000 USDC and ``hold`` at exposure
4 buy 20 ETH at 2,000 (collateral 40,000 against 30,000 of USDC, under the cap 1/(1 - 0.83)).
Liquidatable when ``20 x P x 0.90 < 30,000``: ``P = 1,666.67``.
"""
from __future__ import annotations

import pytest

from backtest import MarketData, RunConfig, run_backtest
from backtest.slippage import NoSlippage
from tests.engine.scenario import ETH, MINUTE, candles

FLAT = (2_000.0,) * 4


def _run(rows: list[tuple]):
    data = MarketData.from_frames({ETH: candles(rows, step=MINUTE)}, timeframe="1m", exchange="compound_v3")
    config = RunConfig(venue="compound_v3", initial_balance=10_000.0, leverage=5.0, margin_mode="cross",
                       fees=(0.0, 0.0), slippage=NoSlippage(), rounding=False, liquidation_latency_ms=0)
    return run_backtest(data, "hold", params={"exposure": 4.0}, config=config)


def test_absorb_by_hand_leaves_the_surplus_with_the_account() -> None:
    # a gap to 1,650: 20 x 1,650 x 0.90 = 29,700 < 30,000. absorb seizes all 20 WETH and
    # credits 20 x 1,650 x 0.95 = 31,350: the debt is repaid and 1,350 USDC stay (the cost is
    # 33,000 x 0.05 = 1,650, the equity 3,000 -> 1,350)
    result = _run([FLAT, FLAT, (1_650.0,) * 4, (1_650.0,) * 4])
    (row,) = result.liquidations.iter_rows(named=True)
    assert row["qty"] == 20.0 and row["fill_price"] == 1_650.0
    assert row["fee"] == pytest.approx(1_650.0, rel=1e-12)
    assert row["bad_debt"] == 0.0
    assert result.summary["final_equity"] == pytest.approx(1_350.0, rel=1e-12)
    assert result.fills["position_qty_after"].to_list()[-1] == 0.0  # the whole loop is gone


def test_absorb_below_the_debt_is_the_reserves_loss() -> None:
    # a gap to 1,500: credited 20 x 1,500 x 0.95 = 28,500 < 30,000: the reserves absorb 1,500
    result = _run([FLAT, FLAT, (1_500.0,) * 4, (1_500.0,) * 4])
    (row,) = result.liquidations.iter_rows(named=True)
    assert row["bad_debt"] == pytest.approx(1_500.0, rel=1e-12)
    assert result.summary["final_equity"] == 0.0


def test_the_liquidation_line_is_the_liquidate_collateral_factor() -> None:
    result = _run([FLAT, FLAT, FLAT])
    assert result.equity["liquidation_price"].to_list()[-1] == pytest.approx(30_000.0 / (20 * 0.90), rel=1e-12)
