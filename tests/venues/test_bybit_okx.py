"""Bybit and OKX/Gate isolated formulas against their worked examples (inline tables)."""
from __future__ import annotations

import pytest

from backtest.venues import bybit, okx
from backtest.venues.rounding import round_price

LONG, SHORT = 1, -1

# freqtrade test_get_liquidation_price bybit rows and jesse's assertion:
# (side, entry, leverage, mmr, expected LP)
RATE_FORM = [
    (LONG, 10.0, 10.0, 0.01, 9.1),
    (LONG, 10.0, 3.0, 0.01, 6.7666666),
    (SHORT, 10.0, 1.0, 0.01, 19.9),
    (SHORT, 10.0, 10.0, 0.01, 10.9),
    (SHORT, 10.0, 5.0, 0.01, 11.9),
    (LONG, 80.0, 2.0, 0.004, 40.32),
]


@pytest.mark.parametrize(("side", "entry", "leverage", "mmr", "expected"), RATE_FORM)
def test_bybit_rate_form(side, entry, leverage, mmr, expected) -> None:
    price = bybit.isolated_liquidation_price_rate_form(side=side, entry_price=entry,
                                                       leverage=leverage, mmr=mmr)
    assert price == pytest.approx(expected, rel=1e-6)
    full = bybit.isolated_liquidation_price(side=side, size=1.0, entry_price=entry,
                                            leverage=leverage, mmr=mmr)
    assert full == pytest.approx(price, rel=1e-12)


def test_bybit_help_centre_examples() -> None:
    assert bybit.isolated_liquidation_price(side=LONG, size=1.0, entry_price=20_000, leverage=50,
                                            mmr=0.005) == pytest.approx(19_700.0)
    assert bybit.isolated_bankruptcy_price(side=LONG, entry_price=10_000, leverage=50) == pytest.approx(9_800.0)
    assert bybit.inverse_initial_margin(contracts=12_000, price=8_000, leverage=50) == pytest.approx(0.03)
    assert bybit.tiered_maintenance_margin(3_500, [(0, 0.02), (1_000, 0.025), (2_000, 0.03),
                                                   (3_000, 0.035), (4_000, 0.04)]) == pytest.approx(92.5)


def test_bybit_extra_margin_moves_the_price_away() -> None:
    base = bybit.isolated_liquidation_price(side=SHORT, size=2.0, entry_price=100, leverage=10, mmr=0.01)
    more = bybit.isolated_liquidation_price(side=SHORT, size=2.0, entry_price=100, leverage=10,
                                            mmr=0.01, extra_margin=10.0)
    assert more == pytest.approx(base + 5.0)


def test_bybit_inverse_cross_example() -> None:
    bp = bybit.inverse_cross_bankruptcy_price(side=LONG, contracts=10_000, entry_price=8_000,
                                              available_balance=0.5, taker_fee=0.00075)
    assert bp == pytest.approx(5_718.57, abs=0.005)
    lp = bybit.inverse_cross_liquidation_price(side=LONG, contracts=10_000, entry_price=8_000,
                                               account_balance=0.5, order_margin=0.0, mmr=0.005,
                                               taker_fee=0.00075)
    assert lp == pytest.approx(5_739.08, abs=0.005)
    assert round_price(lp, tick=0.5, mode="up") == 5_739.5


def test_bybit_inverse_cross_short_is_zero_equity_after_fee() -> None:
    q, ep, balance, fee = 10_000.0, 8_000.0, 0.5, 0.00075
    bp = bybit.inverse_cross_bankruptcy_price(side=SHORT, contracts=q, entry_price=ep,
                                              available_balance=balance, taker_fee=fee)
    short_pnl = q * (1 / bp - 1 / ep)  # s*Q*(1/EP - 1/P) with s = -1
    assert bp > ep
    assert balance + short_pnl - q * fee / bp == pytest.approx(0.0, abs=1e-12)


# freqtrade test_get_liquidation_price okx/gate rows (taker 0.0006, mmr 0.01):
# (side, entry, amount, margin, expected)
OKX_GATE = [
    (LONG, 10, 1.0, 3.3333333333333335, 6.738090425173506),
    (LONG, 10, 1.0, 2.0, 8.085708510208207),
    (SHORT, 10, 1.0, 2.0, 11.87413417771621),
    (SHORT, 10, 2.0, 4.0, 11.87413417771621),
    (SHORT, 10, 1.0, 3.3333333333333335, 13.193482419684678),
]


@pytest.mark.parametrize(("side", "entry", "amount", "margin", "expected"), OKX_GATE)
def test_okx_gate_isolated(side, entry, amount, margin, expected) -> None:
    price = okx.isolated_liquidation_price(side=side, entry_price=entry, size=amount,
                                           margin=margin, mmr=0.01, taker_fee=0.0006)
    assert price == pytest.approx(expected, rel=1e-9)
    # at LP the margin ratio is exactly 100 %
    upl = side * amount * (price - entry)
    assert (margin + upl) / (amount * price * (0.01 + 0.0006)) == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize(("size", "expected"), [(0, 0.01), (2_000, 0.01), (2_001, 0.015), (5_000, 0.02)])
def test_okx_tier_boundaries(size, expected) -> None:
    tiers = [(0, 0.01), (2_001, 0.015), (4_001, 0.02)]
    assert okx.tier_mmr(size, tiers) == expected


def test_okx_mm_jumps_at_tier_boundary_and_validates() -> None:
    tiers = [(0, 0.01), (2_001, 0.015)]
    below = okx.maintenance_margin(size=2_000, mark_price=1.0, tiers=tiers)
    above = okx.maintenance_margin(size=2_001, mark_price=1.0, tiers=tiers)
    assert above - below > 10  # whole position re-priced, no deduction
    with pytest.raises(ValueError, match="ascending"):
        okx.tier_mmr(1, [(5, 0.01), (0, 0.02)])
    with pytest.raises(ValueError, match="side"):
        okx.isolated_liquidation_price(side=0, entry_price=1, size=1, margin=1, mmr=0, taker_fee=0)
    with pytest.raises(ValueError, match="leverage"):
        bybit.isolated_bankruptcy_price(side=LONG, entry_price=1, leverage=0)
