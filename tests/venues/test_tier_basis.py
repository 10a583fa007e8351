"""The one tier lookup: a table declares what its bounds count, ``tier_key`` turns a position
into that value (backtest/venues/tiers.py).

Bases: ``notional`` (margin asset: quote for linear, coin for inverse = contracts x CS / mark;
margin_rules.md §2.1, §2.2) and ``contracts`` (OKX position tiers, §4: ``qty / ctVal`` linear,
the quantity itself inverse).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtest.contracts import InverseContract, LinearContract
from backtest.venues.base import get_venue
from backtest.venues.defaults import default_tier_schedule
from backtest.venues.stepdown import step_down_plan
from backtest.venues.tiers import (
    CONTRACTS, NOTIONAL, TIER_BASES, Tier, TierError, TierSchedule, TierTable, qty_for_tier_key, tier_key,
    tier_unit)

OKX_BTC = LinearContract("USDT", 0.01)     # BTC-USDT-SWAP ctVal 0.01 BTC
USDM = LinearContract("USDT", 1.0)
COINM_BTC = InverseContract("BTC", 100.0)   # BTCUSD 100 USD per contract


def _two(basis: str) -> TierTable:
    return TierTable.from_rates([(0.0, 0.01, 50.0), (29.0, 0.02, 20.0)], label=f"two by {basis}",
                                basis=basis)


def test_the_bases_are_listed_once():
    assert set(TIER_BASES) == {NOTIONAL, CONTRACTS}


def test_notional_key_is_the_contracts_notional_in_the_margin_asset():
    assert tier_key(NOTIONAL, USDM, -2.5, 40_000.0) == 100_000.0
    assert tier_key(NOTIONAL, None, 2.5, 40_000.0) == 100_000.0            # None: linear base units
    assert tier_key(NOTIONAL, COINM_BTC, 100, 25_000.0) == pytest.approx(0.4)  # 100*100/25,000 BTC
    assert tier_key(NOTIONAL, USDM, 2.5, 40_000.0, notional=7.0) == 7.0     # the caller's own float
    # a resolver's first step without a threshold (price 0 or NaN) has no value to bracket
    assert tier_key(NOTIONAL, COINM_BTC, 100, 0.0) == 0.0
    assert tier_key(NOTIONAL, USDM, 1.0, math.nan) == 0.0


def test_contract_key_counts_contracts_and_ignores_the_price():
    assert tier_key(CONTRACTS, OKX_BTC, -25.0, 100_000.0) == 2_500.0
    assert tier_key(CONTRACTS, OKX_BTC, 25.0, 1.0) == 2_500.0
    assert tier_key(CONTRACTS, COINM_BTC, 300.0, 25_000.0) == 300.0       # inverse qty is contracts
    # 0.29 / 0.01 is 28.999999999999996 in floats: the count is kept to 9 decimals, so a size
    # of exactly 29 contracts lands on the floor of 29, i.e. in the upper tier
    assert 0.29 / 0.01 < 29.0
    assert tier_key(CONTRACTS, OKX_BTC, 0.29, 1.0) == 29.0
    assert _two(CONTRACTS).index_for_position(0.29, 1.0, OKX_BTC) == 1
    with pytest.raises(TierError, match="needs the symbol's contract"):
        tier_key(CONTRACTS, None, 1.0, 1.0)


def test_an_unknown_basis_is_refused_when_the_table_is_built():
    with pytest.raises(TierError, match="tier basis 'usd' is unknown; expected one of contracts, notional"):
        TierTable([Tier(0.0, math.inf, 10.0, 0.01, 0.0)], label="t", basis="usd")


@given(st.floats(min_value=1e-3, max_value=1e6), st.floats(min_value=1.0, max_value=1e6))
def test_qty_for_key_inverts_the_key(qty: float, price: float):
    for contract in (OKX_BTC, USDM, COINM_BTC):
        for basis in TIER_BASES:
            key = tier_key(basis, contract, qty, price)
            back = qty_for_tier_key(basis, contract, key, price)
            assert back == pytest.approx(qty, rel=1e-9)


def test_a_notional_never_reaches_a_multi_tier_contract_table():
    table = _two(CONTRACTS)
    with pytest.raises(TierError, match="the tiers count contracts"):
        table.for_notional(10.0)
    with pytest.raises(TierError, match="the tiers count contracts"):
        table.max_leverage_for(10.0)
    one = TierTable([Tier(0.0, math.inf, 100.0, 0.004, 0.0)], label="one", basis=CONTRACTS)
    assert one.for_notional(1e9).mmr == 0.004  # one tier answers every key alike


def test_the_basis_is_part_of_the_tables_identity():
    notional, contracts = _two(NOTIONAL), _two(CONTRACTS)
    assert notional.tiers == contracts.tiers and notional != contracts
    assert contracts.relabelled("x").basis == CONTRACTS and contracts.relabelled("x") == contracts
    assert "by contracts" in repr(contracts) and "by" not in repr(notional).split(",")[-1]
    assert contracts.unit(OKX_BTC) == "contracts" and notional.unit(COINM_BTC) == "BTC"
    assert tier_unit(NOTIONAL, None) == "USDT"


def test_schedules_read_rows_in_the_basis_given():
    rows = [{"exchange": "okx", "symbol": "BTC/USDT:USDT", "effective_from": 0, **row}
            for row in _two(NOTIONAL).to_rows()]
    schedule = TierSchedule.from_rows(rows, basis=CONTRACTS)
    assert schedule.at(0).basis == CONTRACTS
    assert TierSchedule.from_rows(rows).at(0).basis == NOTIONAL


def test_venues_declare_their_basis_and_the_built_in_tables_follow():
    assert get_venue("okx").tier_basis == CONTRACTS
    assert set(get_venue("okx").tier_bases) == {CONTRACTS, NOTIONAL}
    for name in ("binance_usdm", "binance_coinm", "bybit_linear", "bybit_inverse", "bitmex_inverse",
                 "hyperliquid", "dydx_v4"):
        assert get_venue(name).tier_basis == NOTIONAL and get_venue(name).tier_bases == (NOTIONAL,)
    _, table = default_tier_schedule("okx", "BTC/USDT:USDT").versions[0]
    assert table.basis == CONTRACTS
    _, table = default_tier_schedule("binance_usdm", "BTC/USDT:USDT").versions[0]
    assert table.basis == NOTIONAL


def test_keys_of_arrays_for_the_equity_table():
    sizes = np.array([0.29, 19.99, 20.0, 25.0])
    keys = _two(CONTRACTS).position_key(sizes, None, OKX_BTC, sizes * 1_000.0)
    assert keys.tolist() == [29.0, 1999.0, 2000.0, 2500.0]
    notional = sizes * 1_000.0
    assert _two(NOTIONAL).position_key(sizes, None, OKX_BTC, notional) is notional


def test_step_down_keeps_just_under_the_floor_in_the_tables_unit():
    tiers = TierTable.from_rates([(0.0, 0.004, 125.0), (2_000.0, 0.006, 100.0)], basis=CONTRACTS)
    requirement = lambda n, t: n * t.mmr  # noqa: E731
    # 25 BTC (2,500 contracts) at a mark whose balance covers tier 1 only
    plan = step_down_plan(qty=25.0, mark_price=100_000.0, margin_balance=14_000.0, tiers=tiers,
                          clearance_rate=0.0, requirement=requirement, contract=OKX_BTC, lot_size=0.01)
    # keep 2,000 contracts = 20 BTC just below the floor, lot-rounded: 19.99 BTC
    assert plan.steps == pytest.approx((25.0 - 19.99,)) and plan.remainder == pytest.approx(19.99)
    assert not plan.takeover  # 19.99 x 100,000 x 0.4 % = 7,996 < 14,000
    by_notional = step_down_plan(qty=25.0, mark_price=100_000.0, margin_balance=14_000.0,
                                 tiers=TierTable.from_rates([(0.0, 0.004, 125.0), (2_000.0, 0.006, 100.0)]),
                                 clearance_rate=0.0, requirement=requirement, contract=OKX_BTC,
                                 lot_size=0.01)
    assert by_notional.remainder == pytest.approx(0.01)  # 2,000 USDT of notional: 0.01 BTC kept
