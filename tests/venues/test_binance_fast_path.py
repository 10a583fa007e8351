"""The one-leg liquidation-price helper equals ``liquidation_price`` bit for bit."""
from __future__ import annotations

import dataclasses

import math

import numpy as np
import pytest

from backtest.venues import binance_usdm as um


def _random_cases(seed: int, n: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        side = int(rng.choice([um.LONG, um.SHORT]))
        qty = float(10 ** rng.uniform(-4, 4))
        entry = float(10 ** rng.uniform(-2, 5))
        mmr = float(rng.choice([0.0, 0.004, 0.005, 0.01, 0.025, 0.5, 1.0, rng.uniform(0, 1)]))
        cum = float(rng.choice([0.0, rng.uniform(0, 1e6)]))
        wallet = float(rng.uniform(-1e3, 1e7))
        other_mm = float(rng.choice([0.0, rng.uniform(0, 1e5)]))
        other_upnl = float(rng.choice([0.0, rng.uniform(-1e5, 1e5)]))
        cases.append((wallet, side, qty, entry, mmr, cum, other_mm, other_upnl))
    # edges: flat leg, a long at mmr 1 (price-independent equity - MM -> nan), tiny sizes
    cases += [(1000.0, um.LONG, 0.0, 100.0, 0.005, 0.0, 0.0, 0.0),
              (1000.0, um.LONG, 2.0, 100.0, 1.0, 0.0, 0.0, 0.0),
              (1000.0, um.SHORT, 1e-12, 3e4, 0.004, 0.0, 12.5, -3.0),
              (0.0, um.SHORT, 5.0, 1e-3, 0.0, 0.0, 0.0, 0.0)]
    return cases


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_leg_helper_equals_liquidation_price_one_way(seed: int) -> None:
    for wallet, side, qty, entry, mmr, cum, omm, oup in _random_cases(seed, 3000):
        leg = um.Leg(side, qty, entry, mmr, cum)
        expected = um.liquidation_price(wallet_balance=wallet, both=leg, other_maintenance=omm,
                                        other_unrealized=oup)
        found = um._liquidation_price_one_leg(wallet, side, qty, entry, mmr, cum, omm, oup)
        assert _same(found, expected), (wallet, side, qty, entry, mmr, cum, omm, oup)


def test_one_leg_helper_equals_liquidation_price_hedge_legs() -> None:
    for wallet, side, qty, entry, mmr, cum, omm, oup in _random_cases(7, 2000):
        leg = um.Leg(side, qty, entry, mmr, cum)
        kwargs = {"long": leg} if side == um.LONG else {"short": leg}
        expected = um.liquidation_price(wallet_balance=wallet, other_maintenance=omm,
                                        other_unrealized=oup, **kwargs)
        found = um._liquidation_price_one_leg(wallet, side, qty, entry, mmr, cum, omm, oup)
        assert _same(found, expected)


def test_one_leg_helper_defaults_match_isolated_call() -> None:
    # isolated: other_* stay at the public function's defaults (0.0)
    for wallet, side, qty, entry, mmr, cum, _, _ in _random_cases(11, 2000):
        expected = um.liquidation_price(wallet_balance=wallet,
                                        both=um.Leg(side, qty, entry, mmr, cum))
        found = um._liquidation_price_one_leg(wallet, side, qty, entry, mmr, cum, 0.0, 0.0)
        assert _same(found, expected)


def test_margin_model_fast_path_equals_general_path() -> None:
    """``MarginModel._solve`` gives the same float with and without the one-leg helper."""
    from backtest.margin import MarginModel
    from backtest.positions import Position
    from backtest.venues.tiers import TierSchedule, TierTable

    tables = [TierTable.from_rates([(0.0, 0.005)], max_leverage=[125.0], label="one"),
              TierTable.from_rates([(0, 0.004, 125), (50_000, 0.005, 100), (250_000, 0.01, 50),
                                    (1_000_000, 0.025, 20)], label="four")]
    rng = np.random.default_rng(3)
    for table in tables:
        schedule = TierSchedule([(0, table)], label=table.label)
        fast = MarginModel(um.VENUE, [schedule], allow_before_first=True, warnings=[])
        slow = MarginModel(um.VENUE, [schedule], allow_before_first=True, warnings=[])
        slow.formulas = [dataclasses.replace(f, one_leg=None) for f in slow.formulas]
        assert fast.formulas[0].one_leg is not None
        fast.set_time(0)
        slow.set_time(0)
        for _ in range(2000):
            kind = str(rng.choice(["both", "long", "short"]))
            sign = {"both": float(rng.choice([-1.0, 1.0])), "long": 1.0, "short": -1.0}[kind]
            pos = Position(0, 0, "X", kind, "isolated", 10.0, um.unrealized_pnl)
            pos.qty = sign * float(10 ** rng.uniform(-3, 2))
            pos.entry_price = float(10 ** rng.uniform(2, 5))
            wallet = float(rng.uniform(1.0, 1e6))
            assert _same(fast._solve(wallet, [pos], 0), slow._solve(wallet, [pos], 0))
