"""dYdX v4's per-block liquidation limits in a real run: one row per block, the remainder of
the time step's 60 blocks deferred to the next bar, never an exception (margin_rules.md §7).

100 BTC long at 40,000 on 500,000 USDC, 10x isolated (margin 400,000), genesis large-cap
tier (MMF 1.2 %): liquidation price 360,000 / 9.88 = 36,437.25. Bar 3 opens at 36,400: TNC
= 400,000 + 100 x (36,400 - 40,000) = 40,000 against MMR 1.2 % x 3,640,000 = 43,680. The
trigger is at the bar's open, so the bar's 60 s give 60 blocks of 1 s.

* Each block's order fills at the fillable price: ABR = 1 - 40,000 / 43,680 = 0.084249, the
  fill 36,400 x (1 - 0.084249 x 150 % x 1.2 %) = 36,344.80.
* Per BTC the position holds 400 above bankruptcy, 55.20 of which the fill gives away; the
  fee takes the rest, 344.80 (< 1.5 % x 36,344.80 = 545.17): TNC per BTC stays 400 < 436.80
  of maintenance, so every block liquidates.
* Size per block: min(max(1,000, 10 % of the notional), 100,000) USDC: 100,000 / 36,400 =
  2.747253 BTC while the notional is above 1M (27 blocks), then 10 % of what is left.
"""
from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from backtest import MarketData, RunConfig, Strategy, run_backtest
from backtest.slippage import NoSlippage
from tests.engine.scenario import MINUTE, SYMBOL, T0, candles

ROWS = [(40_000,) * 4] * 3 + [(36_400,) * 4] * 4
FILL = 36_400 * (1 - (1 - 40_000 / 43_680) * 1.5 * 0.012)
CAP = 100_000 / 36_400


class Buy(Strategy):
    def on_bar(self, ctx: Any) -> None:
        if ctx.bar_index == 0:
            ctx.buy(100.0)


def _run(mode: str) -> Any:
    data = MarketData.from_frames({SYMBOL: candles(ROWS)}, timeframe="1m", exchange="dydx")
    cfg = RunConfig(venue="dydx_v4", initial_balance=500_000.0, leverage=10.0,
                    margin_mode="isolated", fees=(0.0, 0.0), slippage=NoSlippage(),
                    rounding=False, liquidation_latency_ms=0, liquidation_mode=mode,
                    liquidation_remainder="trader")
    return run_backtest(data, Buy(), config=cfg)


def test_one_row_per_block_and_the_rest_waits_for_the_next_bar() -> None:
    result = _run("tier_down")
    liq = result.liquidations
    by_trigger = liq.group_by("trigger_ts", maintain_order=True).agg(pl.len(), pl.col("qty").sum())
    first_bar, second_bar = by_trigger.rows()
    assert first_bar[1] == 60  # every block of bar 3 used, still liquidatable
    assert first_bar[2] < 100.0 and first_bar[2] + second_bar[2] == pytest.approx(100.0)
    assert second_bar[0].timestamp() * 1000 == T0 + 4 * MINUTE  # the next bar's open
    qty = liq["qty"].to_list()
    assert qty[:27] == pytest.approx([CAP] * 27)  # the 100,000 USDC subaccount limit
    left = 100.0 - 27 * CAP
    assert left * 36_400 < 1_000_000 < (left + CAP) * 36_400
    assert qty[27] == pytest.approx(0.1 * left)  # then 10 % of the position
    assert all(q * 36_400 <= 100_000 * (1 + 1e-12) for q in qty)
    assert liq["fill_price"].to_list() == pytest.approx([FILL] * liq.height)
    assert FILL == pytest.approx(36_344.80, abs=0.005)
    assert liq["fee"].to_list() == pytest.approx([q * (400 - (36_400 - FILL)) for q in qty])
    assert liq["bad_debt"].sum() == 0.0
    # the trader loses the whole margin: everything above bankruptcy went to the fund
    assert result.equity["wallet_balance"][-1] == pytest.approx(100_000.0)
    assert result.positions["qty"][-1] == pytest.approx(100.0 - first_bar[2])


def test_the_default_full_mode_still_takes_the_position_over_at_once() -> None:
    liq = _run("full").liquidations
    assert liq.height == 1 and liq["qty"][0] == 100.0


def test_the_manifest_states_the_block_limits_and_that_open_interest_scaling_is_off() -> None:
    rules = _run("tier_down").manifest["venue"]["rule_versions"]
    assert rules["open_interest_scaling"].startswith("OFF")
    assert "block time 1 s" in rules["block_limits"]
