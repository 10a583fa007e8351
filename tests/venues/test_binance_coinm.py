"""Binance COIN-M (inverse) formulas against the FAQ/forum examples, plus properties."""
from __future__ import annotations

import math

import numpy as np
import pytest

from backtest.venues import binance_coinm as cm
from backtest.venues.binance_usdm import Leg
from backtest.venues.tiers import TierTable

LONG, SHORT = 1, -1


def test_faq_maintenance_margin_100_contracts() -> None:
    # FAQ ceccfcfb...: 100 * 100 / 25,000 * 0.4 % - 0 = 0.0016 BTC
    assert cm.maintenance_margin_inverse(contracts=100, contract_size=100, mark_price=25_000,
                                         mmr=0.004, cum=0.0) == pytest.approx(0.0016, abs=1e-12)


# dev.binance.vision thread 6292: WB 101 BTC, long 100,000 BTCUSD (100 USD) @ 45,000, level 7
# MMR 12.5 %: newer maintenance amount 11.605 -> 33,599.40 (Binance calculator); the older
# 11.81 -> 33,578.86 (the poster's own number).
@pytest.mark.parametrize(("cum", "expected"), [(11.605, 33_599.40), (11.81, 33_578.86)])
def test_forum_cross_liquidation_price(cum, expected) -> None:
    leg = Leg(LONG, 100_000, 45_000, 0.125, cum)
    price = cm.liquidation_price_inverse(wallet_balance=101.0, contract_size=100, both=leg)
    assert price == pytest.approx(expected, abs=0.05)


def _equity(wallet: float, legs: list[Leg], cs: float, price: float) -> float:
    return wallet + sum(cm.unrealized_pnl_inverse(signed_contracts=leg.side * leg.qty, contract_size=cs,
                                                  entry_price=leg.entry_price, mark_price=price)
                        for leg in legs)


def _mm(legs: list[Leg], cs: float, price: float) -> float:
    return sum(cm.maintenance_margin_inverse(contracts=leg.qty, contract_size=cs, mark_price=price,
                                             mmr=leg.mmr, cum=leg.cum) for leg in legs)


def test_property_equity_equals_mm_at_lp_and_zero_at_bp() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        side = LONG if rng.random() < 0.5 else SHORT
        entry = float(rng.uniform(1_000, 80_000))
        contracts = float(rng.integers(1, 100_000))
        cs = 100.0
        wallet = contracts * cs / entry / float(rng.uniform(1.5, 100))
        leg = Leg(side, contracts, entry, 0.005, 0.0)
        lp = cm.liquidation_price_inverse(wallet_balance=wallet, contract_size=cs, both=leg)
        assert math.isfinite(lp) and lp > 0
        assert _equity(wallet, [leg], cs, lp) == pytest.approx(_mm([leg], cs, lp), rel=1e-9, abs=1e-12)
        bp = cm.bankruptcy_price_inverse(wallet_balance=wallet, side=side, contracts=contracts,
                                         contract_size=cs, entry_price=entry)
        assert _equity(wallet, [leg], cs, bp) == pytest.approx(0.0, abs=1e-9 * wallet)


def test_short_with_margin_above_face_value_never_goes_bankrupt() -> None:
    assert cm.bankruptcy_price_inverse(wallet_balance=2.0, side=SHORT, contracts=100,
                                       contract_size=100, entry_price=10_000) == math.inf
    leg = Leg(SHORT, 100, 10_000, 0.005, 0.0)
    assert cm.liquidation_price_inverse(wallet_balance=2.0, contract_size=100, both=leg) == math.inf


def test_resolve_in_coin_brackets() -> None:
    # coin brackets: 0-5 BTC 0.5 %, 5-10 BTC 1 %, 10+ 2.5 % (illustrative table)
    table = TierTable.from_rates([(0, 0.005, 125), (5, 0.01, 50), (10, 0.025, 20)])
    leg = Leg(LONG, 4_000, 40_000)  # 400,000 USD = 10 BTC at entry; more coin as price falls
    wallet = 2.0
    price = cm.liquidation_price_inverse_resolved(wallet_balance=wallet, contract_size=100,
                                                  both=leg, tiers=table)
    notional = 4_000 * 100 / price
    tier = table.for_notional(notional)
    resolved = leg.with_tier(tier)
    assert tier.mmr == 0.025
    assert _equity(wallet, [resolved], 100, price) == pytest.approx(_mm([resolved], 100, price), rel=1e-9)


def test_inverse_funding_and_face_value() -> None:
    # a long of 1,000 USD at 50,000 (0.02 BTC) pays 0.01 % -> -0.000002 BTC
    assert cm.funding_payment_inverse(signed_contracts=10, contract_size=100, mark_price=50_000,
                                      rate=0.0001) == pytest.approx(-2e-6)
    assert cm.notional_inverse(contracts=-10, contract_size=100, mark_price=50_000) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="side"):
        cm.bankruptcy_price_inverse(wallet_balance=1, side=0, contracts=1, contract_size=1, entry_price=1)
