"""Hyperliquid: a position liquidated by hand from the docs' formulas, and the rules around it."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtest.venues import hyperliquid as hl
from backtest.venues.errors import TierError, UnknownSymbolError, VenueError

LONG, SHORT = 1, -1
OCT_2025 = 1_760_054_400_000  # 2025-10-10T00:00Z
JUNE_2024 = 1_717_200_000_000  # 2024-06-01T00:00Z


def test_btc_long_liquidated_by_hand() -> None:
    """Long 2 BTC at 60,000, isolated 10x, on 2025-10-10 (BTC max leverage 40x).

    By hand (margin_rules.md §6):
      isolated margin = IM = 2 * 60,000 / 10 = 12,000 USDC
      l = 1/(2*40) = 1.25 %; MM at entry = 120,000 * 1.25 % = 1,500
      margin_available = 12,000 - 1,500 = 10,500
      LP = 60,000 - 10,500 / 2 / (1 - 1.25 %) = 60,000 - 5,316.4557 = 54,683.5443
      check: equity at LP = 12,000 + 2*(LP - 60,000) = 1,367.0886 = 2 * LP * 1.25 %
      backstop below 2/3 MM: 12,000 + 2*(P - 60,000) = (2/3)*0.025*P -> P = 108,000/(2 - 1/60)
        = 54,453.7815
      notional at LP = 109,367 > 100,000: 20 % (0.4 BTC) first, 1.6 BTC after 30 s
    """
    table = hl.margin_table("BTC/USDC:USDC", OCT_2025)
    assert table.for_notional(120_000).max_leverage == 40
    margin = hl.initial_margin(size=2, mark_price=60_000, leverage=10)
    assert margin == pytest.approx(12_000)
    assert hl.maintenance_margin(size=2, mark_price=60_000, table=table) == pytest.approx(1_500)

    lp = hl.liquidation_price(side=LONG, size=2, price=60_000, margin=margin, max_leverage=40)
    assert lp == pytest.approx(60_000 - 5_250 / 0.9875, rel=1e-12)
    assert lp == pytest.approx(54_683.5443, abs=1e-4)
    assert hl.liquidation_price_tiered(side=LONG, size=2, price=60_000, margin=margin,
                                       table=table) == pytest.approx(lp, rel=1e-12)

    def equity(mark: float) -> float:
        return margin + 2 * (mark - 60_000)

    mm_at_lp = hl.maintenance_margin(size=2, mark_price=lp, table=table)
    assert equity(lp) == pytest.approx(mm_at_lp, abs=1e-9)
    assert not hl.is_liquidatable(equity=equity(lp + 0.01),
                                  maintenance=hl.maintenance_margin(size=2, mark_price=lp + 0.01, table=table))
    below = lp - 0.01
    mm_below = hl.maintenance_margin(size=2, mark_price=below, table=table)
    assert hl.is_liquidatable(equity=equity(below), maintenance=mm_below)
    assert not hl.is_backstop_liquidatable(equity=equity(below), maintenance=mm_below)

    backstop = 108_000 / (2 - 1 / 60)
    assert backstop == pytest.approx(54_453.7815, abs=1e-4)
    mm_bs = hl.maintenance_margin(size=2, mark_price=backstop - 0.01, table=table)
    assert hl.is_backstop_liquidatable(equity=equity(backstop - 0.01), maintenance=mm_bs)
    mm_bs_above = hl.maintenance_margin(size=2, mark_price=backstop + 0.01, table=table)
    assert not hl.is_backstop_liquidatable(equity=equity(backstop + 0.01), maintenance=mm_bs_above)

    slices = hl.liquidation_slices(size=2, mark_price=lp)
    assert slices == [(0.0, pytest.approx(0.4)), (30.0, pytest.approx(1.6))]
    assert hl.liquidation_slices(size=1, mark_price=lp) == [(0.0, 1)]


def test_same_position_under_the_2024_table_lives_longer() -> None:
    table = hl.margin_table("BTC", JUNE_2024)
    assert table.for_notional(1e9).max_leverage == 50
    lp_2024 = hl.liquidation_price(side=LONG, size=2, price=60_000, margin=12_000, max_leverage=50)
    lp_2025 = hl.liquidation_price(side=LONG, size=2, price=60_000, margin=12_000, max_leverage=40)
    assert lp_2024 < lp_2025  # a lower MM (1 % vs 1.25 %) moves the LP away


def test_tiered_liquidation_price_in_the_upper_tier() -> None:
    table = hl.margin_table("BTC", OCT_2025)
    # short 3,000 BTC at 60,000 = 180M notional, 5x; above 150M the 20x tier (MMR 2.5 %,
    # deduction 150M * (2.5 % - 1.25 %) = 1.875M) applies
    size, price, margin = 3_000, 60_000.0, 36_000_000.0
    lp = hl.liquidation_price_tiered(side=SHORT, size=size, price=price, margin=margin, table=table)
    assert table.for_notional(size * lp).max_leverage == 20
    assert table.for_notional(size * lp).cum == pytest.approx(1_875_000)
    assert margin - size * (lp - price) == pytest.approx(table.maintenance_margin(size * lp), rel=1e-9)
    # the one-tier docs formula at 20x ignores the deduction, so it liquidates earlier
    assert lp > hl.liquidation_price(side=SHORT, size=size, price=price, margin=margin, max_leverage=20)


def test_cross_margin_other_maintenance_pulls_the_price_in() -> None:
    alone = hl.liquidation_price(side=SHORT, size=10, price=3_000, margin=6_000, max_leverage=25)
    shared = hl.liquidation_price(side=SHORT, size=10, price=3_000, margin=6_000, max_leverage=25,
                                  other_maintenance=500)
    # 500 USDC less available over 10 ETH at (1 + 2 %) -> 49.02 USDC lower
    assert alone - shared == pytest.approx(500 / 10 / 1.02)
    assert hl.liquidation_price(side=LONG, size=1, price=100, margin=100, max_leverage=3) == 0.0


def test_hourly_funding_on_the_oracle_price() -> None:
    p = hl.premium(oracle_price=10_000, impact_bid=10_100, impact_ask=10_120)
    assert p == pytest.approx(0.01)
    rate = hl.premium_clamp_funding(average_premium=p)
    assert rate == pytest.approx(0.0095)
    hourly = hl.hourly_funding_rate(rate)
    assert hourly == pytest.approx(0.0011875)
    assert hl.funding_payment(signed_size=2, oracle_price=60_000, hourly_rate=hourly) == pytest.approx(-142.5)
    assert hl.funding_payment(signed_size=-2, oracle_price=60_000, hourly_rate=hourly) == pytest.approx(142.5)
    assert hl.hourly_funding_rate(0.5) == 0.04
    assert hl.hourly_funding_rate(-0.5) == -0.04
    # inside the clamp band the rate is the interest rate
    assert hl.premium_clamp_funding(average_premium=0.0003) == pytest.approx(0.0001)


def test_bad_input_names_the_subject() -> None:
    with pytest.raises(UnknownSymbolError, match="XYZ"):
        hl.margin_table("XYZ", OCT_2025)
    with pytest.raises(TierError, match="no tier table is known"):
        hl.margin_table("BTC", 1_600_000_000_000)
    with pytest.raises(VenueError, match="side must be"):
        hl.liquidation_price(side=2, size=1, price=1, margin=1, max_leverage=10)
    with pytest.raises(VenueError, match="max_leverage"):
        hl.maintenance_rate(0)
    with pytest.raises(VenueError, match="size"):
        hl.liquidation_price(side=LONG, size=0, price=1, margin=1, max_leverage=10)


@given(side=st.sampled_from([LONG, SHORT]), size=st.floats(1e-3, 1e3),
       price=st.floats(1.0, 1e5), leverage=st.integers(1, 50), max_lev=st.sampled_from([3, 10, 20, 40, 50]))
def test_equity_equals_maintenance_at_the_docs_price(side: int, size: float, price: float,
                                                     leverage: int, max_lev: int) -> None:
    margin = size * price / min(leverage, max_lev)
    lp = hl.liquidation_price(side=side, size=size, price=price, margin=margin, max_leverage=max_lev)
    if lp == 0.0:
        return  # a long backed beyond its maintenance at any price
    equity = margin + side * size * (lp - price)
    assert equity == pytest.approx(size * lp * hl.maintenance_rate(max_lev), rel=1e-7, abs=1e-9 * margin)
