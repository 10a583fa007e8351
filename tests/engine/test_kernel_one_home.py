"""One definition of each money rule: the kernel compiles the engine's own functions.

The takeover settlement (``backtest.settlement``), the venue's maintenance margin,
bankruptcy price and funding payment (``binance_usdm``) and the linear PnL
(``contracts.linear_pnl``) are each written once; the event path calls them and the kernel
(``backtest.kernel.compiled``) compiles the very same function. These tests pin that: the
compiled dispatchers wrap the engine functions, their files are in the compile-cache digest,
compiled and Python results are bit-identical, and the settlement's worked cases.
"""
from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from backtest.contracts import (
    LinearContract, linear_average_entry, linear_notional, linear_pnl, linear_price_move_value)
from backtest.kernel import have_numba
from backtest.settlement import takeover_settlement
from backtest.venues import binance_usdm as um
from backtest.venues.tiers import Tier

pytestmark = pytest.mark.skipif(not have_numba(), reason="numba is not installed (the kernel is off)")

money = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False)


def _compiled():
    from backtest.kernel import compiled
    return compiled


def test_kernel_compiles_the_engine_functions_themselves():
    c = _compiled()
    pairs = {c.settlement: takeover_settlement, c.maintenance: um._maintenance_margin,
             c.bankruptcy: um._bankruptcy_price, c.funding: um._funding_payment, c.pnl: linear_pnl,
             c.notional_of: linear_notional, c.average_entry: linear_average_entry,
             c.move_value: linear_price_move_value}
    for dispatcher, function in pairs.items():
        assert dispatcher.py_func is function, dispatcher


def test_every_compiled_engine_function_is_in_the_cache_digest():
    # a dispatcher whose Python function lives outside backtest/kernel must be listed, else a
    # change to its file would leave stale machine code in numba's cache
    c = _compiled()
    kernel_dir = Path(c.__file__).parent
    listed = {Path(inspect.getsourcefile(f)) for f in c._ENGINE_FUNCTIONS}
    outside = [d.py_func for d in vars(c).values() if hasattr(d, "py_func")
               and Path(inspect.getsourcefile(d.py_func)).parent != kernel_dir]
    assert {Path(inspect.getsourcefile(f)) for f in outside} <= listed
    assert Path(inspect.getsourcefile(takeover_settlement)) in listed


def test_public_wrappers_are_the_one_definition():
    assert LinearContract.unrealized_pnl is linear_pnl
    assert LinearContract.notional is linear_notional
    assert LinearContract.average_entry is linear_average_entry
    assert LinearContract.price_move_value is linear_price_move_value
    assert LinearContract("USDT", 1.0).average_entry(1.0, 100.0, 3.0, 200.0) == 175.0
    assert LinearContract("USDT", 1.0).unrealized_pnl(signed_qty=-2.0, entry_price=100.0,
                                                      mark_price=90.0) == 20.0
    assert um.maintenance_margin(-50_000.0, Tier(0.0, 250_000.0, 125.0, 0.01, 0.0)) == 500.0
    assert um.bankruptcy_price(wallet_balance=100.0, side=1, qty=2.0, entry_price=1_000.0) == 950.0
    assert um.funding_payment(signed_qty=-10.0, mark_price=2.5, rate=0.0002) == pytest.approx(0.005)


@pytest.mark.parametrize("pnl,fee_due,to_trader,expected", [
    # W = 100 throughout: (fee, trader_delta, fund_delta, bad_debt)
    (-50.0, 20.0, False, (20.0, -100.0, 50.0, 0.0)),    # Binance: the fund takes what is left
    (-50.0, 20.0, True, (20.0, -70.0, 20.0, 0.0)),      # trader keeps E - fee = 30
    (-90.0, 20.0, True, (10.0, -100.0, 10.0, 0.0)),     # the fee is capped by E = 10
    (-130.0, 20.0, False, (0.0, -100.0, -30.0, 30.0)),  # worse than bankruptcy: bad debt
    (-130.0, 20.0, True, (0.0, -100.0, -30.0, 30.0)),   # E < 0: the trader policy does not apply
])
def test_takeover_settlement_worked_cases(pnl, fee_due, to_trader, expected):
    assert takeover_settlement(100.0, pnl, fee_due, to_trader) == expected
    assert _compiled().settlement(100.0, pnl, fee_due, to_trader) == expected


@settings(max_examples=200, deadline=None)
@given(wallet=st.floats(min_value=0.0, max_value=1e9), pnl=money, fee_due=st.floats(min_value=0.0, max_value=1e9), to_trader=st.booleans())
def test_settlement_compiled_is_bit_identical_and_conserves(wallet, pnl, fee_due, to_trader):
    python = takeover_settlement(wallet, pnl, fee_due, to_trader)
    assert _compiled().settlement(wallet, pnl, fee_due, to_trader) == python
    fee, trader_delta, fund_delta, bad_debt = python
    assert 0.0 <= fee <= fee_due and bad_debt >= 0.0
    # the pool's PnL is split between the trader and the fund, nothing made or lost
    scale = max(1.0, abs(wallet), abs(pnl))
    assert math.isclose(trader_delta + fund_delta, pnl, abs_tol=1e-9 * scale)


@settings(max_examples=200, deadline=None)
@given(a=money, b=positive, c=money, side=st.sampled_from([1, -1]), q=positive, rate=money)
def test_venue_cores_compiled_are_bit_identical(a, b, c, side, q, rate):
    k = _compiled()
    mmr = b / 1e9
    assert k.maintenance(a, mmr, c) == um._maintenance_margin(a, mmr, c)
    assert k.bankruptcy(a, side, q, b, c) == um._bankruptcy_price(a, side, q, b, c)
    assert k.funding(a, b, rate / 1e9) == um._funding_payment(a, b, rate / 1e9)
    assert k.pnl(a, b, c) == linear_pnl(a, b, c)
    assert k.notional_of(a, b) == linear_notional(a, b)
    assert k.move_value(q, b, c) == linear_price_move_value(q, b, c)
    assert k.average_entry(q, b, q, c) == linear_average_entry(q, b, q, c)
