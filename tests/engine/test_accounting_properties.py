"""Property tests (hypothesis): the accounting identities hold in every liquidation and margin mode.

Small generated candle tables (crashes, wicks, mark lagging the last price, funding stress up
to 50 % per settlement), random target exposures, fees, clearance fee and forced slippage;
the identities of tests/engine/accounting.py are checked on every run.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.accounting import Case, residuals, run_case

TOL = 1e-6  # USDT; the identities hold to float rounding of sums of ~10^5-sized terms


@st.composite
def cases(draw, *, liquidation_mode: str, margin_mode: str, remainder: str,  # noqa: ANN001
          position_mode: str = "one_way") -> Case:
    n = draw(st.integers(4, 16))
    move = st.one_of(st.floats(-0.05, 0.05), st.floats(-0.5, 0.3))  # ordinary or crash bars
    moves = tuple(draw(st.lists(move, min_size=n, max_size=n)))
    wicks = tuple(draw(st.lists(st.floats(0.0, 0.15), min_size=n, max_size=n)))
    lag = tuple(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    targets = tuple(draw(st.lists(st.tuples(st.integers(0, n - 1), st.floats(-7.5, 7.5)),
                                  min_size=1, max_size=4)))
    funding = tuple(draw(st.lists(st.tuples(st.integers(0, n - 1),
                                            st.sampled_from([0.0001, -0.003, 0.05, 0.5, -0.5])),
                                  max_size=2)))
    leverage = draw(st.sampled_from([2.0, 5.0, 10.0, 20.0]))
    forced = draw(st.sampled_from([0.0, 25.0]))
    return Case(moves, wicks, lag, targets, funding, leverage, margin_mode, liquidation_mode,
                remainder, position_mode, forced)


def _check(case: Case) -> None:
    r = residuals(run_case(case))
    assert abs(r["conservation"]) < TOL, r
    assert abs(r["bad_debt_once"]) < TOL, r
    assert r["min_wallet"] >= 0.0, r
    assert r["min_isolated_margin"] >= 0.0, r
    assert r["min_row_bad_debt"] >= 0.0, r
    assert r["min_row_takings"] >= -TOL, r


MODES = [(liq, margin, rem) for liq in ("full", "tier_down") for margin in ("isolated", "cross")
         for rem in ("insurance_fund", "trader")]


@pytest.mark.parametrize("liquidation_mode, margin_mode, remainder", MODES)
def test_identities_hold_in_every_mode(liquidation_mode, margin_mode, remainder):  # noqa: ANN001
    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(cases(liquidation_mode=liquidation_mode, margin_mode=margin_mode, remainder=remainder))
    def prop(case: Case) -> None:
        _check(case)

    prop()


@pytest.mark.parametrize("liquidation_mode", ["full", "tier_down"])
def test_identities_hold_in_hedge_mode(liquidation_mode):  # noqa: ANN001
    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(cases(liquidation_mode=liquidation_mode, margin_mode="isolated",
                 remainder="insurance_fund", position_mode="hedge"))
    def prop(case: Case) -> None:
        _check(case)

    prop()


def test_the_identity_catches_a_wallet_driven_below_zero():
    """The check itself can fail: a hand-made result with a negative wallet breaks it."""
    case = Case((0.0, -0.4, 0.0, 0.0), (0.0, 0.1, 0.0, 0.0), (1.0, 1.0, 1.0, 1.0), ((0, 7.5),), (),
                20.0, "isolated", "full", "insurance_fund")
    result = run_case(case)
    assert result.liquidations.height == 1
    r = residuals(result)
    assert abs(r["conservation"]) < TOL
    result.summary["insurance_fund_delta"] -= 100.0  # a bad debt charged twice
    assert abs(residuals(result)["conservation"]) == pytest.approx(100.0)
