"""Binance COIN-M smart liquidation: tier-down by coin-notional bracket, as on USDⓈ-M.

margin_rules.md §2.2 ("the IF and ADL logic match USDⓈ-M") with §2.1 step 2 (a large
position is reduced towards lower brackets before any takeover, the liquidation fee charged on
the liquidated amount only). The arithmetic below is the inverse one: quantities in contracts
of 100 USD, money and brackets in BTC (notional = contracts x 100 / mark).
"""
from __future__ import annotations

import math

import pytest

from backtest import run_backtest
from backtest.venues.base import get_venue
from backtest.venues.tiers import TierTable
from tests.engine.test_coinm import Buy, _config, _data

CS = 100.0
# two brackets by coin notional: 0.5 % below 1 BTC, 1 % from 1 BTC (cum 1 x 0.5 % = 0.005 BTC)
TIERS = TierTable.from_rates([(0.0, 0.005, 50.0), (1.0, 0.01, 25.0)], label="coinm two brackets")
ENTRY = 25_000.0
GAP = 23_960.0  # bar 3 opens here, below the liquidation price
CONTRACTS = 400


def _run(mode: str):  # noqa: ANN202 - RunResult
    prices = [ENTRY, ENTRY, ENTRY, GAP, GAP, GAP]
    return run_backtest(_data(prices, tiers=TIERS), Buy(CONTRACTS),
                        config=_config(initial_balance=1.0, leverage=20.0, margin_mode="isolated",
                                       liquidation_fee_rate=0.005, liquidation_mode=mode))


def test_coinm_venue_has_the_shared_tier_down():
    venue = get_venue("binance_coinm")
    assert venue.tier_down_plan is not None
    with pytest.raises(Exception, match="inverse contract"):
        venue.tier_down_plan(qty=10.0, mark_price=1.0, margin_balance=1.0, tiers=TIERS,
                             clearance_rate=0.0)


def test_coinm_tier_down_reduces_to_the_lower_coin_bracket_and_survives():
    q = CONTRACTS * CS                          # 40,000 USD face value
    margin = q / ENTRY / 20.0                   # 1.6 BTC notional / 20x = 0.08 BTC isolated
    # bracket 2 (1.6 BTC >= 1 BTC): LP = Q (MMR + 1) / (WB + cum + Q/EP)
    lp = q * 1.01 / (margin + 0.005 + q / ENTRY)
    assert GAP < lp < ENTRY and q / lp >= 1.0   # the gap breaches, still in bracket 2 at the LP
    balance = margin + q * (1 / ENTRY - 1 / GAP)            # margin balance at the gap, BTC
    assert balance < q / GAP * 0.01 - 0.005                 # below bracket 2's maintenance
    # one step: keep just below 1 BTC of notional, rounded down to whole contracts
    keep = math.floor(1.0 * GAP / CS * (1 - 1e-9) + 1e-9)  # 239 contracts
    step = CONTRACTS - keep                                 # 161 contracts
    fee = 0.005 * step * CS / GAP                           # on the liquidated amount only
    assert balance - fee - keep * CS / GAP * 0.005 > 0      # the remainder is compliant
    bankruptcy = q / (margin + q / ENTRY)
    assert GAP > bankruptcy                                 # the fill needs no bound

    result = _run("tier_down")
    liq = result.liquidations
    assert liq.height == 1
    r = liq.row(0, named=True)
    assert r["qty"] == pytest.approx(step) and r["tier"] == 2
    assert r["liquidation_price"] == pytest.approx(lp, rel=1e-12)
    assert r["fill_price"] == pytest.approx(GAP)
    assert r["fee"] == pytest.approx(fee, rel=1e-9) and r["bad_debt"] == 0.0
    last = result.positions.tail(1).row(0, named=True)
    assert last["qty"] == pytest.approx(keep)
    kept_margin = margin + step * CS * (1 / ENTRY - 1 / GAP) - fee
    assert last["isolated_margin"] == pytest.approx(kept_margin, rel=1e-9)
    # the survivor's LP is solved in bracket 1 and lies below the gap: no second liquidation
    q2 = keep * CS
    lp2 = q2 * 1.005 / (kept_margin + q2 / ENTRY)
    assert q2 / lp2 < 1.0 and lp2 < GAP
    assert last["liquidation_price"] == pytest.approx(lp2, rel=1e-9)
    assert result.summary["final_equity"] == pytest.approx(
        1.0 + step * CS * (1 / ENTRY - 1 / GAP) - fee + q2 * (1 / ENTRY - 1 / GAP), rel=1e-9)


def test_coinm_full_mode_still_takes_the_whole_position_over():
    full = _run("full")
    assert full.liquidations.height == 1
    assert full.liquidations["qty"][0] == pytest.approx(CONTRACTS)
    assert full.equity["position_qty"][-1] == 0.0
    tier_down = _run("tier_down")
    # stepping down loses less than the takeover of the whole isolated margin
    assert tier_down.summary["final_equity"] > full.summary["final_equity"]
