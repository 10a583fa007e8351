"""ADL after a tier-down step: a step filled beyond the bankruptcy price costs the insurance
fund the difference; what an exhausted fund cannot pay goes to ADL by the same rule as a
takeover's loss (``Liquidator._after`` -> ``Deleverager.after_liquidation``)."""
from __future__ import annotations

import pytest

from backtest import run_backtest
from backtest.venues.tiers import TierTable
from tests.engine.scenario import LATENCY, MINUTE, T0, Script, config, market, path_at, trigger_ms

TWO_TIERS = TierTable.from_rates([(0.0, 0.005, 50.0), (50_000.0, 0.01, 25.0)])  # cum 0 / 250
FLAT = (100.0, 100.0, 100.0, 100.0)
#: bar 2: the mark only touches the liquidation price (low 95.5) while the last price wicks to 80
WICK = (100.0, 100.0, 80.0, 97.0, 100.0, 100.0, 95.5, 97.0)


def _both(ctx) -> None:  # noqa: ANN001
    ctx.buy(600.0, position_side="long")   # 60,000 notional at 20x: bracket 2, isolated 3,000
    ctx.sell(100.0, position_side="short")  # the profitable opposite leg ADL reaches


def _run(fund: float | None):  # noqa: ANN202
    cfg = config(leverage=20.0, tiers=TWO_TIERS, liquidation_fee_rate=0.005, liquidation_mode="tier_down",
                 position_mode="hedge", insurance_fund=fund)
    return run_backtest(market([FLAT, FLAT, WICK, (97.0,) * 4]), Script({0: _both}), config=cfg)


def test_a_tier_down_step_the_fund_cannot_pay_is_deleveraged() -> None:
    result = _run(0.0)
    # the step (margin_rules.md §2.1 step 2): LP in bracket 2 = (3000 + 250 - 60000) / (600*0.01 - 600);
    # it closes what takes the notional just below the bracket-2 floor at the trigger mark
    lp = (3000 + 250 - 60_000) / (6 - 600)
    reduced = 600 - 50_000 / lp * (1 - 1e-9)
    bar = T0 + 2 * MINUTE
    fill = path_at(bar, MINUTE, (100, 80.0, 100, 97), trigger_ms(bar, MINUTE, (100, 95.5, 100, 97), lp) + LATENCY)
    bankruptcy = 100 - 3000 / 600                        # 95: entry - isolated margin / qty
    assert fill < bankruptcy
    beyond = reduced * (bankruptcy - fill)               # the fund's loss on the step
    fee = 0.005 * reduced * fill                         # clearance fee, to the fund
    step = result.liquidations.row(0, named=True)
    assert step["qty"] == pytest.approx(reduced, rel=1e-9) and step["fill_price"] == pytest.approx(fill, rel=1e-12)
    assert step["insurance_fund_delta"] == pytest.approx(fee - beyond, rel=1e-9)
    # a fund of 0: it pays nothing of beyond - fee; the step's whole size is deleveraged against
    # the short at the step's bankruptcy price, no fee: the short gains 100 - 95 per unit
    adl = result.adl.row(0, named=True)
    assert (adl["side"], adl["cause"]) == ("short", "fund_exhausted")
    assert adl["ts"] == step["ts"]
    assert adl["qty"] == pytest.approx(reduced, rel=1e-9)
    assert adl["price"] == pytest.approx(bankruptcy, rel=1e-12)
    assert adl["realized_pnl"] == pytest.approx(reduced * (100 - bankruptcy), rel=1e-9)
    assert result.summary["insurance_fund_uncovered"] >= beyond - fee - 1e-6
    # an unbounded fund (the default) pays the step's loss: nobody is deleveraged
    assert _run(None).adl.height == 0
