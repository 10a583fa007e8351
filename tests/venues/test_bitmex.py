"""BitMEX XBTUSD 2020: a position liquidated by hand from the venue's formulas, and the rules."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtest.venues import bitmex
from backtest.venues.errors import VenueError

LONG, SHORT = 1, -1
RULES = bitmex.XBTUSD_2020


def test_black_thursday_long_liquidated_by_hand() -> None:
    """Long 10,000 XBTUSD at 8,000, isolated 10x, on 2020-03-12 (no funding due).

    By hand (margin_rules.md §5, XBt):
      one contract at 8,000 = round(1e8/8,000) = 12,500 XBt; posCost = 125,000,000 (1.25 XBT,
      under the 200 XBT base risk limit: IM 1 %, MM 0.5 %)
      initMarginReq = max(1 %, 1/10) = 10 %; posInit = 12,500,000
      posComm = ceil((125,000,000 + 12,500,000) * 0.075 %) = ceil(103,125.0) = 103,125
      posMargin = 12,603,125; posMaint = 125,000,000 * 0.5 % + 103,125 = 728,125
      liquidation: value = posCost + (posMargin - posMaint) = 136,875,000 XBt
        LP = 10,000 * 1e8 / 136,875,000 = 7,305.936...; a long's LP is rounded up: 7,306.0
      bankruptcy: value = posCost + posInit = 137,500,000 -> 7,272.727... -> 7,273.0
      at a Fair Price of 7,300: UPNL = 10,000*(1/8,000 - 1/7,300) XBT = -11,986,301 XBt,
        equity 616,824 < 728,125: liquidated; at 7,310 equity 804,219 > 728,125: not.
    """
    im, mm = bitmex.risk_limit_margins(1.25, base_limit_xbt=RULES.base_risk_limit_xbt,
                                       step_xbt=RULES.risk_step_xbt, base_mm=RULES.base_mm,
                                       base_im=RULES.base_im)
    assert (im, mm) == (0.01, 0.005)
    req = bitmex.initial_margin_req(leverage=10, base_im=im)
    assert req == 0.1
    m = bitmex.position_margins(side=LONG, contracts=10_000, avg_entry_price=8_000,
                                init_margin_req=req, maint_margin_req=mm,
                                commission=RULES.taker_fee)
    assert m.pos_cost == 125_000_000
    assert m.pos_init == pytest.approx(12_500_000)
    assert m.pos_comm == 103_125
    assert m.pos_margin == pytest.approx(12_603_125)
    assert m.pos_maint == pytest.approx(728_125)

    exact = bitmex.liquidation_price(side=LONG, contracts=10_000, pos_cost=m.pos_cost,
                                     pos_margin=m.pos_margin, pos_maint=m.pos_maint)
    assert exact == pytest.approx(1e12 / 136_875_000, rel=1e-12)
    assert bitmex.liquidation_price(side=LONG, contracts=10_000, pos_cost=m.pos_cost,
                                    pos_margin=m.pos_margin, pos_maint=m.pos_maint,
                                    tick=RULES.tick) == 7_306.0
    assert bitmex.bankruptcy_price(side=LONG, contracts=10_000, pos_cost=m.pos_cost,
                                   pos_init=m.pos_init, tick=RULES.tick) == 7_273.0

    def equity_xbt(mark: float) -> float:
        upnl = bitmex.inverse_pnl(side=LONG, contracts=10_000, entry_price=8_000, exit_price=mark)
        return m.pos_margin + upnl * bitmex.SATOSHI_PER_XBT

    assert equity_xbt(7_300) == pytest.approx(616_824, abs=1)
    assert equity_xbt(7_300) <= m.pos_maint < equity_xbt(7_310)
    # at the exact LP equity equals maintenance; at the bankruptcy price equity is the fee reserve
    assert equity_xbt(exact) == pytest.approx(m.pos_maint, abs=1e-3)
    bp = bitmex.bankruptcy_price(side=LONG, contracts=10_000, pos_cost=m.pos_cost, pos_init=m.pos_init)
    assert equity_xbt(bp) == pytest.approx(m.pos_comm, abs=1e-3)

    # taken over at 7,272.73 and closed by the engine at 7,200 in the gap: the fund pays
    # 10,000*(1/7,272.73 - 1/7,200) = 10,000*(0.0001375 - 0.000138889) = -0.0138889 XBT
    paid = bitmex.takeover_insurance_delta(side=LONG, contracts=10_000, bankruptcy_price=bp,
                                           fill_price=7_200)
    assert paid == pytest.approx(10_000 * (0.0001375 - 1 / 7_200), rel=1e-9)
    assert paid == pytest.approx(-0.0138889, abs=1e-7)
    assert bitmex.takeover_insurance_delta(side=LONG, contracts=10_000, bankruptcy_price=bp,
                                           fill_price=7_300) > 0


def test_adverse_funding_raises_maintenance_and_moves_the_price() -> None:
    base = bitmex.position_margins(side=LONG, contracts=10_000, avg_entry_price=8_000,
                                   init_margin_req=0.1, maint_margin_req=0.005, commission=0.00075)
    paying = bitmex.position_margins(side=LONG, contracts=10_000, avg_entry_price=8_000,
                                     init_margin_req=0.1, maint_margin_req=0.005,
                                     commission=0.00075, funding_rate=0.0001)
    receiving = bitmex.position_margins(side=SHORT, contracts=10_000, avg_entry_price=8_000,
                                        init_margin_req=0.1, maint_margin_req=0.005,
                                        commission=0.00075, funding_rate=0.0001)
    assert paying.funding_reserve == pytest.approx(12_500)  # 125,000,000 * 0.01 %
    assert paying.pos_maint == pytest.approx(base.pos_maint + 12_500)
    assert receiving.funding_reserve == 0.0
    lp_base = bitmex.liquidation_price(side=LONG, contracts=10_000, pos_cost=base.pos_cost,
                                       pos_margin=base.pos_margin, pos_maint=base.pos_maint)
    lp_paying = bitmex.liquidation_price(side=LONG, contracts=10_000, pos_cost=paying.pos_cost,
                                         pos_margin=paying.pos_margin, pos_maint=paying.pos_maint)
    assert lp_paying > lp_base


def test_cross_margin_uses_the_free_balance() -> None:
    m = bitmex.position_margins(side=LONG, contracts=10_000, avg_entry_price=8_000,
                                init_margin_req=bitmex.initial_margin_req(leverage=None, base_im=0.01),
                                maint_margin_req=0.005, commission=0.00075)
    isolated = bitmex.liquidation_price(side=LONG, contracts=10_000, pos_cost=m.pos_cost,
                                        pos_margin=m.pos_margin, pos_maint=m.pos_maint)
    # a cross position backed by a whole 1 XBT wallet survives far lower
    cross = bitmex.liquidation_price(side=LONG, contracts=10_000, pos_cost=m.pos_cost,
                                     pos_margin=100_000_000, pos_maint=m.pos_maint)
    assert cross < isolated
    assert cross == pytest.approx(1e12 / (m.pos_cost + 100_000_000 - m.pos_maint))


@pytest.mark.parametrize(("position_xbt", "expected_mm"), [
    (0.0, 0.005), (200.0, 0.005), (200.5, 0.01), (300.0, 0.01), (300.1, 0.015), (-250.0, 0.01),
])
def test_risk_limit_steps(position_xbt: float, expected_mm: float) -> None:
    im, mm = bitmex.risk_limit_margins(position_xbt)
    assert mm == pytest.approx(expected_mm)
    assert im == pytest.approx(expected_mm + 0.005)


def test_funding_rate_clamp_caps_and_fair_price() -> None:
    interest = bitmex.interest_rate(quote_rate_daily=RULES.interest_quote_daily,
                                    base_rate_daily=RULES.interest_base_daily)
    assert interest == pytest.approx(0.0001)
    assert bitmex.funding_rate(premium=0.0003, interest=interest) == pytest.approx(0.0001)
    assert bitmex.funding_rate(premium=0.002, interest=interest) == pytest.approx(0.0015)
    assert bitmex.capped_funding_rate(0.01, previous_rate=None, im=0.01, mm=0.005) == pytest.approx(0.00375)
    assert bitmex.capped_funding_rate(-0.003, previous_rate=0.003, im=0.01, mm=0.005) == pytest.approx(-0.00075)
    assert bitmex.fair_price(index_price=7_000, funding_rate=0.0001,
                             seconds_to_funding=4 * 3600) == pytest.approx(7_000.35)
    sample = bitmex.premium_index(impact_bid=7_010, impact_ask=7_012, mark_price=7_000,
                                  index_price=7_000)
    assert sample == pytest.approx(10 / 7_000)
    paid = bitmex.funding_payment(signed_contracts=15_000, mark_price=750, rate=0.0025)
    assert paid == pytest.approx(-0.05)
    assert bitmex.funding_payment(signed_contracts=-15_000, mark_price=750, rate=0.0025) == pytest.approx(0.05)


def test_adl_score_ranks_profit_times_leverage() -> None:
    # PnL% = (110 - 100)/100 = 10 %, effective leverage = 110/(110 - 60) = 2.2
    assert bitmex.adl_score(mark_value=110, entry_value=100, bankrupt_value=60) == pytest.approx(0.22)
    # a losing position divides: -10 % / (90/30 = 3) = -0.0333
    assert bitmex.adl_score(mark_value=90, entry_value=100, bankrupt_value=60) == pytest.approx(-0.1 / 3)
    queue = [bitmex.AdlPosition("a", 5, 0.5), bitmex.AdlPosition("b", 5, 0.9),
             bitmex.AdlPosition("c", 5, 0.9)]
    # ties keep the input order; the last taker is cut to the remainder
    assert bitmex.adl_allocation(queue, 7) == {"b": 5, "c": 2}
    assert bitmex.adl_allocation(queue, 100) == {"b": 5, "c": 5, "a": 5}


def test_bad_input_names_the_subject() -> None:
    with pytest.raises(VenueError, match="side must be"):
        bitmex.inverse_pnl(side=0, contracts=1, entry_price=1, exit_price=1)
    with pytest.raises(VenueError, match="price must be"):
        bitmex.contract_value_xbt(0.0)
    with pytest.raises(VenueError, match="0.5 % as 0.005"):
        bitmex.position_margins(side=LONG, contracts=1, avg_entry_price=8_000,
                                init_margin_req=10, maint_margin_req=0.005, commission=0.00075)
    with pytest.raises(VenueError, match="qty"):
        bitmex.adl_allocation([bitmex.AdlPosition(1, 0, 1.0)], 1)


@given(side=st.sampled_from([LONG, SHORT]), contracts=st.integers(1, 5_000_000),
       entry=st.integers(2_000, 40_000).map(lambda x: x / 2),
       leverage=st.floats(1.0, 100.0))
def test_equity_equals_maintenance_at_the_liquidation_price(side: int, contracts: int,
                                                            entry: float, leverage: float) -> None:
    req = bitmex.initial_margin_req(leverage=leverage, base_im=0.01)
    m = bitmex.position_margins(side=side, contracts=contracts, avg_entry_price=entry,
                                init_margin_req=req, maint_margin_req=0.005, commission=0.00075)
    lp = bitmex.liquidation_price(side=side, contracts=contracts, pos_cost=m.pos_cost,
                                  pos_margin=m.pos_margin, pos_maint=m.pos_maint)
    assert math.isfinite(lp) and lp > 0
    value = contracts * bitmex.SATOSHI_PER_XBT / lp
    upnl = side * (m.pos_cost - value)  # XBt against the recorded cost
    assert m.pos_margin + upnl == pytest.approx(m.pos_maint, rel=1e-9, abs=1e-6)
    # the liquidation price is hit before the bankruptcy price
    bp = bitmex.bankruptcy_price(side=side, contracts=contracts, pos_cost=m.pos_cost,
                                 pos_init=m.pos_init)
    assert (lp > bp) if side == LONG else (lp < bp)
