"""dYdX v4's per-block liquidation limits (block_limited_plan) and open-interest scaling of the
run's initial margin, worked by hand (margin_rules.md §7; genesis limits)."""
from __future__ import annotations

import pytest

from backtest.venues import dydx_v4 as dydx
from backtest.venues.base import get_venue
from backtest.venues.tiers import TierTable

#: The genesis large-cap tier as the engine's table: MMF 1.2 %.
LARGE_CAP = TierTable.from_rates([(0.0, 0.012)], max_leverage=[50.0])


def _plan(qty: float, mark: float, tnc: float, blocks: int, **kw: float) -> dydx.BlockPlan:
    return dydx.block_limited_plan(qty=qty, mark_price=mark, margin_balance=tnc,
                                   tiers=LARGE_CAP, clearance_rate=0.015, blocks=blocks, **kw)


def test_the_subaccount_block_limit_caps_a_large_position() -> None:
    """100 BTC at 36,400 (3.64M USDC): 10 % is 364k > 100k, so each block closes 100,000 /
    36,400 = 2.7473 BTC while the position is above 1M. TNC 40,000 vs MMR 43,680: ABR =
    1 - 40,000/43,680, the fill is 1.5 x 1.2 % x ABR below the oracle (55.2 per BTC); what is
    left above bankruptcy (400 - 55.2 per BTC) is below the 1.5 % fee cap and all goes to the
    fund: TNC per BTC stays 400 < 436.8 of maintenance, so every block liquidates."""
    plan = _plan(100.0, 36_400.0, 40_000.0, blocks=3)
    cap = 100_000 / 36_400
    assert plan.steps == pytest.approx((cap, cap, cap))
    assert plan.remainder == pytest.approx(100 - 3 * cap)
    assert plan.deferred and not plan.takeover and plan.kind == "partial"


def test_ten_percent_then_the_minimum_then_the_whole_position() -> None:
    """0.5 BTC at 36,400 = 18,200 USDC: 10 % = 1,820 > 1,000: 0.05 BTC; at 0.45 BTC 10 % =
    1,638 -> 0.045 BTC. A 0.2 BTC position (7,280 USDC): 10 % = 728 < 1,000, so 1,000 USDC
    (0.027473 BTC) per block. A 0.02 BTC position (728 USDC <= 1,000): the whole of it."""
    tnc_per_btc = 400.0  # below 436.8 per BTC of maintenance: liquidatable
    assert _plan(0.5, 36_400.0, 0.5 * tnc_per_btc, blocks=2).steps == pytest.approx((0.05, 0.045))
    assert _plan(0.2, 36_400.0, 0.2 * tnc_per_btc, blocks=1).steps == pytest.approx(
        (1_000 / 36_400,))
    whole = _plan(0.02, 36_400.0, 0.02 * tnc_per_btc, blocks=5)
    assert whole.steps == (0.02,) and whole.remainder == 0.0 and not whole.deferred


def test_the_insurance_loss_limit_per_block() -> None:
    """100 BTC at 40,000 with TNC -50M (far beyond bankruptcy): ABR = 1, the fill is 1.5 x
    480 = 720 below the oracle and the bankruptcy price 500,000 above it: the fund loses
    500,720 per BTC, so a block may close 1,000,000 / 500,720 = 1.9971 BTC (the 100k notional
    limit would allow 2.5)."""
    plan = _plan(100.0, 40_000.0, -50_000_000.0, blocks=1)
    assert plan.steps == pytest.approx((1_000_000 / 500_720,))


def test_a_healthy_pool_stops_and_no_block_means_no_order() -> None:
    # a fill at the oracle that restores TNC > MMR ends the liquidation
    plan = _plan(1.0, 36_437.25, 500.0, blocks=60)  # 500 > 437.25 of maintenance: healthy
    assert plan.steps == () and not plan.deferred
    waiting = _plan(100.0, 36_400.0, 40_000.0, blocks=0)  # the time step has no block left
    assert waiting.steps == () and waiting.deferred and waiting.remainder == 100.0


def test_lot_rounding_rounds_each_block_down() -> None:
    plan = _plan(100.0, 36_400.0, 40_000.0, blocks=1, lot_size=0.001)
    assert plan.steps == pytest.approx((2.747,))


def test_the_venue_maps_blocks_from_seconds() -> None:
    venue = get_venue("dydx_v4")
    assert venue.liquidation_block_s == dydx.BLOCK_TIME_S == 1.0
    plan = venue.liquidation_procedure(mode="tier_down", qty=100.0, mark_price=36_400.0,
                                       bankruptcy_price=36_000.0, margin_balance=40_000.0,
                                       tiers=LARGE_CAP, clearance_rate=0.015, window_s=2.5)
    assert len(plan.steps) == 2 and plan.deferred and not plan.takeover
    assert {step.kind for step in plan.steps} == {"partial"}
    # the manifest states the limits and the open-interest default
    assert "OFF" in venue.rule_versions["open_interest_scaling"]
    assert "1,000,000" in venue.rule_versions["block_limits"]


def test_open_interest_scales_the_initial_margin_only_when_known() -> None:
    """A tier with OI caps 25M-50M USDC and base IMF 20 %: at 37.5M open interest IMF_eff =
    0.2 + 0.8 x 0.5 = 60 %; 10,000 USDC at 10x needs max(1,000, 6,000) = 6,000. Without open
    interest (the run's default) the leverage alone: 1,000."""
    tier = dydx.LiquidityTier(200_000, 500_000, 25_000_000_000_000, 50_000_000_000_000)
    assert dydx.initial_margin(10_000.0, 10.0, tier=tier, open_interest=37_500_000.0) == \
        pytest.approx(6_000.0)
    assert dydx.initial_margin(10_000.0, 10.0, tier=tier) == pytest.approx(1_000.0)
    assert dydx.OPEN_INTEREST_DEFAULT is None
    assert get_venue("dydx_v4").initial_margin(10_000.0, 10.0) == pytest.approx(1_000.0)
