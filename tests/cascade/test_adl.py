"""cascades.md's unit examples (exact answers) and the ADL rules' defining properties."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.cascade import adl
from backtest.cascade.errors import CascadeError
from backtest.venues import bitmex

SIX_LONGS = [(1, 10, 3), (2, 10, 6), (3, 20, 1), (4, 30, 4), (5, 20, 5), (6, 10, 2)]


def test_bitmex_six_account_allocation_closes_account_2_fully_and_half_of_account_5():
    ids = np.array([a for a, _, _ in SIX_LONGS])
    qty = np.array([q for _, q, _ in SIX_LONGS], dtype=float)
    score = np.array([s for _, _, s in SIX_LONGS], dtype=float)
    closed = adl.queue_allocation(qty, score, 20.0)
    assert {int(a): float(c) for a, c in zip(ids, closed) if c > 0} == {2: 10.0, 5: 10.0}


def test_bitmex_allocation_matches_the_vector_file(shared_dir):
    vectors = json.loads((shared_dir / "specs" / "vectors.json").read_text())
    vector = next(v for v in vectors if v["id"] == "bitmex-doc-adl-allocation")
    positions = vector["inputs"]["positions"]
    qty = np.array([p["qty"] for p in positions], dtype=float)
    score = np.array([p["score"] for p in positions], dtype=float)
    closed = adl.queue_allocation(qty, score, vector["inputs"]["liquidated_qty"])
    got = {str(p["account"]): c for p, c in zip(positions, closed) if c > 0}
    assert got == {k: float(v) for k, v in vector["expected"].items()}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), st.integers(-5, 5)), min_size=1, max_size=12),
       st.integers(0, 400))
def test_queue_equals_bitmex_scalar_allocation(rows, matched):
    qty = np.array([q for q, _ in rows], dtype=float)
    score = np.array([s for _, s in rows], dtype=float)
    closed = adl.queue_allocation(qty, score, float(matched))
    scalar = bitmex.adl_allocation([bitmex.AdlPosition(i, q, s) for i, (q, s) in enumerate(rows)], matched)
    assert {i: float(c) for i, c in enumerate(closed) if c > 0} == {i: float(v) for i, v in scalar.items() if v > 0}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([-1.0, 1.0]), st.floats(1e-6, 1e6), st.floats(1e3, 1e6), st.floats(0.01, 0.9))
def test_bitmex_score_equals_the_scalar_venue_function(sign, magnitude, mark_value, margin_share):
    # a position's signed value, side x qty x price: never 0 nor subnormal (an entry value of
    # 3.5e-308 against a mark of 1000 made PnL% overflow the float range, a RuntimeWarning)
    entry_value = sign * magnitude
    bankrupt = mark_value * (1 - margin_share)
    expected = bitmex.adl_score(mark_value=mark_value, entry_value=entry_value, bankrupt_value=bankrupt)
    got = adl.bitmex_score(np.array([mark_value]), np.array([entry_value]), np.array([bankrupt]))[0]
    assert got == pytest.approx(expected, rel=1e-12)


def test_bitmex_score_refuses_a_zero_entry_value_as_the_scalar_function_does():
    with pytest.raises(CascadeError, match=r"entry value 0 at position\(s\) \[1\]"):
        adl.bitmex_score(np.array([1000.0, 1000.0]), np.array([900.0, 0.0]), np.array([500.0, 500.0]))
    with pytest.raises(bitmex.VenueError):
        bitmex.adl_score(mark_value=1000.0, entry_value=0.0, bankrupt_value=500.0)


def test_bybit_insurance_fund_plus_30_and_minus_20_per_unit():
    deltas = adl.insurance_fund_delta([1, 1], [1.0, 1.0], [6980.0, 6930.0], [6950.0, 6950.0])
    assert deltas.tolist() == [30.0, -20.0]
    # a short mirrors it: buying back above bankruptcy costs the fund
    assert adl.insurance_fund_delta(-1, 2.0, 105.0, 100.0) == -10.0


def test_bybit_drawdown_adl_pool_absorbs_300k_and_50k_goes_to_adl():
    out = adl.bybit_drawdown_adl(pool_max_balance=1_000_000.0, pool_balance=1_000_000.0,
                                 symbol_pnl=-350_000.0, symbol_max_pnl=0.0)
    assert out.triggered
    assert out.pnl_ratio == pytest.approx(-0.35)
    assert out.pool_absorbs == pytest.approx(300_000.0)
    assert out.to_adl == pytest.approx(50_000.0)
    calm = adl.bybit_drawdown_adl(pool_max_balance=1_000_000.0, pool_balance=1_000_000.0,
                                  symbol_pnl=-250_000.0, symbol_max_pnl=0.0)
    assert not calm.triggered and calm.to_adl == 0.0 and calm.pool_absorbs == 250_000.0


def test_binance_leverage_pnl_worked_example_is_1_26():
    upnl, wallet = 40.2, 4.27
    maintenance = 0.1342 * (wallet + upnl)  # the forum example's margin ratio 13.42 %
    score = adl.binance_leverage_pnl([upnl], [wallet], [maintenance])[0]
    assert round(40.2 / 4.27, 2) == 9.41
    assert round(score, 2) == 1.26
    # no profit ranks zero; no equity ranks zero
    assert adl.binance_leverage_pnl([-5.0, 10.0], [4.0, -20.0], [1.0, 1.0]).tolist() == [0.0, 0.0]


@pytest.mark.parametrize(("bonus", "threshold"), [(0.05, 0.952), (0.10, 0.909)])
def test_toxic_spiral_threshold(bonus, threshold):
    assert round(adl.toxic_spiral_ltv(bonus), 3) == threshold


@settings(max_examples=300, deadline=None)
@given(st.floats(0.05, 0.99), st.floats(0.01, 0.2), st.floats(0.001, 0.2))
def test_liquidation_lowers_ltv_exactly_below_the_frontier(ltv, bonus, repay_share):
    collateral = 1000.0
    debt = ltv * collateral
    repay = repay_share * debt
    frontier = adl.toxic_spiral_ltv(bonus)
    if abs(ltv - frontier) < 1e-9:
        return
    assert adl.liquidation_lowers_ltv(collateral, debt, repay, bonus) == (ltv < frontier)


# ---- the three allocation rules on one deficit ---------------------------------------------

WINNERS = dict(qty=np.array([1.0, 2.0, 4.0]), notional=np.array([100.0, 200.0, 400.0]),
               equity=np.array([10.0, 50.0, 200.0]), profit=np.array([5.0, 20.0, 40.0]),
               score=np.array([3.0, 2.0, 1.0]))


def test_queue_overshoot_is_profit_of_matched_quantity_beyond_the_deficit():
    # deficit 6; the queue must match 2 units: account 0 (1 of 1) then account 1 (1 of 2)
    out = adl.allocate("queue", deficit=6.0, matched_qty=2.0, **WINNERS)
    assert out.fractions.tolist() == [1.0, 0.5, 0.0]
    assert out.profit_taken == 5.0 + 10.0
    assert out.overshoot == 9.0 and out.paid == 6.0 and out.shortfall == 0.0
    assert out.counterparties == 2


def test_pro_rata_takes_the_same_share_of_every_winner_and_no_overshoot():
    out = adl.allocate("pro_rata", deficit=6.5, **WINNERS)
    assert out.fractions == pytest.approx([0.1, 0.1, 0.1])
    assert out.profit_taken == pytest.approx(6.5) and out.overshoot == pytest.approx(0.0, abs=1e-12)


def test_leverage_levelling_cuts_the_most_levered_first_to_one_level():
    out = adl.allocate("leverage_levelling", deficit=1.0, **WINNERS)
    # leverages 10, 4, 2: only account 0 is cut, down to a level still above 4
    assert out.fractions[1] == 0.0 and out.fractions[2] == 0.0
    assert out.profit_taken == pytest.approx(1.0, rel=1e-12)
    f = out.fractions[0]
    assert 100 * (1 - f) / (10 - 5 * f) == pytest.approx(out.max_leverage_after)
    assert out.max_leverage_after < 10.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(1.0, 1e4), st.floats(1.5, 100.0), st.floats(0.01, 0.9)),
                min_size=1, max_size=20), st.floats(0.0, 1.0))
def test_levelling_minimises_the_maximum_leverage_against_pro_rata(rows, deficit_share):
    notional = np.array([n for n, _, _ in rows])
    leverage = np.array([lev for _, lev, _ in rows])
    equity = notional / leverage
    profit = equity * np.array([p for _, _, p in rows])
    deficit = deficit_share * float(profit.sum()) * 0.99
    kw = dict(qty=notional / 100, notional=notional, equity=equity, profit=profit)
    level = adl.allocate("leverage_levelling", deficit=deficit, **kw)
    prorata = adl.allocate("pro_rata", deficit=deficit, **kw)
    assert level.paid == pytest.approx(deficit, rel=1e-9, abs=1e-9)
    assert level.overshoot == pytest.approx(0.0, abs=1e-9 * max(1.0, deficit))
    assert level.max_leverage_after <= prorata.max_leverage_after * (1 + 1e-9)


def test_unknown_rule_is_a_clear_error():
    with pytest.raises(CascadeError, match="did you mean 'pro_rata'"):
        adl.allocate("prorata", deficit=1.0, **WINNERS)


@settings(max_examples=300, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(-1e5, 1e6), st.floats(0.0, 1e5))
def test_binance_leverage_pnl_equals_the_scalar_venue_function(upnl, wallet, maintenance):
    from backtest.venues import binance_usdm

    expected = binance_usdm.adl_score(unrealized_pnl=upnl, wallet_balance=wallet, maintenance_margin=maintenance)
    assert adl.binance_leverage_pnl([upnl], [wallet], [maintenance])[0] == expected
