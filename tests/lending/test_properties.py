"""Property tests of the lending math (hypothesis): the toxic-LTV line of Aave liquidations,
conservation in seizures, Comet absorb and Maker take, monotone Clipper price curves, and
bark's limit and dust guarantees."""
from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from backtest.lending import aave_v3 as aave
from backtest.lending import compound_v3 as comet
from backtest.lending import maker


def _amounts(min_value: float, max_value: float, **kwargs):
    """Floats for amounts, prices and rates: no subnormal values (below 2.2e-308 a product or
    quotient loses the relative precision these identities are checked to; no real amount is
    that small)."""
    return st.floats(min_value, max_value, allow_subnormal=False, **kwargs)


FAST = settings(max_examples=150, deadline=None)


@st.composite
def single_collateral_market(draw, *, toxic: bool):
    """One collateral reserve (LT, bonus) and a position with HF in (0.95, 1) whose LTV is
    below 1/bonus (``toxic=False``) or above it (``toxic=True``)."""
    lt = draw(_amounts(0.5, 0.9))
    # toxic needs 1/bonus < LTV < LT/0.95, i.e. bonus > 0.95/LT; LT x bonus <= 1 always
    low_bonus = 0.95 / lt + 1e-6 if toxic else 1.0
    bonus = draw(_amounts(low_bonus, 1.0 / lt))
    reserve = aave.ReserveConfig("C", ltv=lt * 0.9, liquidation_threshold=lt,
                                 liquidation_bonus=bonus, liquidation_protocol_fee=draw(
                                     _amounts(0.0, 0.5)))
    debt = aave.ReserveConfig("D", ltv=0.0, liquidation_threshold=0.0)
    market = aave.Market({"C": reserve, "D": debt})
    collateral_value = draw(_amounts(10_000.0, 1e7))
    if toxic:
        low, high = max(lt, 1.0 / bonus), lt / 0.95
    else:
        low, high = lt, min(1.0 / bonus, lt / 0.95)
    low, high = low * (1 + 1e-6), high * (1 - 1e-6)   # stay off the lines themselves
    assume(high > low)
    ltv = draw(_amounts(low, high, exclude_min=True, exclude_max=True))
    price = draw(_amounts(0.5, 5000.0))
    position = aave.Position({"C": collateral_value / price}, {"D": collateral_value * ltv})
    prices = {"C": price, "D": 1.0}
    assume(0.95 < aave.account_data(position, prices, market).health_factor < 1.0)
    return market, position, prices


@FAST
@given(single_collateral_market(toxic=False), _amounts(0.01, 1.0))
def test_aave_liquidation_below_toxic_ltv_does_not_lower_hf(case, share) -> None:
    market, position, prices = case
    result = aave.liquidation_call(position, prices, market, collateral_asset="C",
                                   debt_asset="D", debt_to_cover=position.debt["D"] * 0.5 * share,
                                   version="3.0")
    assert result.status == "liquidated"
    assert result.debt_repaid <= position.debt["D"] * 0.5 * (1 + 1e-12)   # close factor 0.5
    assert result.health_factor_after >= result.health_factor_before * (1 - 1e-9)


@FAST
@given(single_collateral_market(toxic=True), _amounts(0.01, 1.0))
def test_aave_liquidation_above_toxic_ltv_lowers_hf(case, share) -> None:
    market, position, prices = case
    result = aave.liquidation_call(position, prices, market, collateral_asset="C",
                                   debt_asset="D", debt_to_cover=position.debt["D"] * 0.5 * share,
                                   version="3.0")
    assert result.status == "liquidated"
    assert result.health_factor_after < result.health_factor_before


@FAST
@given(debt=_amounts(0.0, 1e7), p_debt=_amounts(0.01, 1e5), p_coll=_amounts(0.01, 1e5),
       balance=_amounts(0.0, 1e6), bonus=_amounts(1.0, 1.25), fee=_amounts(0.0, 1.0))
def test_aave_seizure_conserves_collateral_and_value(debt, p_debt, p_coll, balance, bonus,
                                                     fee) -> None:
    s = aave.collateral_to_seize(debt_to_cover=debt, debt_price=p_debt, collateral_price=p_coll,
                                 collateral_balance=balance, liquidation_bonus=bonus,
                                 liquidation_protocol_fee=fee)
    assert s.collateral_seized <= balance
    assert math.isclose(s.collateral_to_liquidator + s.protocol_fee, s.collateral_seized,
                        rel_tol=1e-12, abs_tol=1e-12)
    assert s.debt_repaid <= debt * (1 + 1e-12)
    # seized value = repaid value x bonus, capped or not
    assert math.isclose(s.collateral_seized * p_coll, s.debt_repaid * p_debt * bonus,
                        rel_tol=1e-9, abs_tol=1e-9)


@FAST
@given(st.lists(st.tuples(_amounts(0.0, 1e4), _amounts(0.01, 1e5), _amounts(0.0, 1.0),
                          _amounts(0.0, 1.0)), min_size=1, max_size=4),
       _amounts(1.0, 1e8), _amounts(-1e8, 1e8))
def test_comet_absorb_pays_exactly_what_the_account_gains(rows, excess, reserves) -> None:
    holdings = [comet.Holding(comet.AssetConfig(f"A{i}", cf, cf, lf), amount, price)
                for i, (amount, price, cf, lf) in enumerate(rows)]
    # a debt above the liquidation line by `excess` USD
    debt = comet.collateral_value(holdings, "liquidate") + excess
    result = comet.absorb(base_balance=-debt, base_price=1.0, holdings=holdings,
                          reserves=reserves)
    assert result.absorbed
    assert result.new_base_balance >= 0
    assert math.isclose(result.reserves_after - reserves, -(result.new_base_balance + debt),
                        rel_tol=1e-9, abs_tol=1e-6)
    assert sum(result.seized.values()) == sum(h.amount for h in holdings)


def _curves():
    return st.one_of(
        st.builds(maker.LinearDecrease, _amounts(1.0, 1e6)),
        st.builds(maker.StairstepExponentialDecrease, _amounts(0.0, 1.0), _amounts(1.0, 3600)),
        st.builds(maker.ExponentialDecrease, _amounts(0.0, 1.0)),
    )


@FAST
@given(_curves(), _amounts(0.0, 1e6), _amounts(0.0, 1e6), _amounts(0.0, 1e6))
def test_clipper_price_curves_never_rise(curve, top, t1, t2) -> None:
    early, late = sorted((t1, t2))
    assert curve.price(top, late) <= curve.price(top, early) <= top
    assert curve.price(top, 0.0) == top


@FAST
@given(lot=_amounts(0.0, 1e4), tab=_amounts(0.0, 1e7), price=_amounts(0.01, 1e5),
       amt=_amounts(0.0, 1e5), chost=_amounts(0.0, 1e4))
def test_clipper_take_conserves_lot_and_tab(lot, tab, price, amt, chost) -> None:
    t = maker.take(lot=lot, tab=tab, price=price, amt=amt, chost=chost)
    if t.status != "taken":
        assert (t.slice, t.owe, t.tab_left, t.lot_left) == (0.0, 0.0, tab, lot)
        return
    assert t.owe <= tab
    assert math.isclose(t.owe, t.slice * price, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(t.slice + t.lot_left + t.returned_to_owner, lot, rel_tol=1e-9,
                        abs_tol=1e-9)
    assert math.isclose(t.owe + t.tab_left + t.tab_unpaid, tab, rel_tol=1e-9, abs_tol=1e-9)
    # a partial take never leaves a dusty tab
    if not t.done:
        assert t.tab_left >= chost * (1 - 1e-9)


@FAST
# room is a DAI amount: below 1e-6 DAI (subnormal floats) tab = dart*rate*chop cannot be
# compared with room in float arithmetic, and no real Hole/hole is that small
@given(ink=_amounts(0.001, 1e5), art=_amounts(0.001, 1e8), rate=_amounts(1.0, 2.0),
       chop=_amounts(1.0, 1.3), room=st.one_of(st.just(0.0), _amounts(1e-6, 1e8)), dust=_amounts(0.0, 1e5))
def test_bark_respects_room_unless_the_remnant_is_dust(ink, art, rate, chop, room, dust) -> None:
    b = maker.bark(ink=ink, art=art, rate=rate, chop=chop, room=room, dust=dust)
    if b.status != "barked":
        assert b.tab == 0 and b.art_left == art
        return
    assert b.dart <= art and b.dink <= ink
    assert math.isclose(b.tab, b.dart * rate * chop, rel_tol=1e-12)
    whole = b.art_left == 0
    assert whole or b.tab <= room * (1 + 1e-9)
    assert whole or b.art_left * rate >= dust * (1 - 1e-9)
    assert math.isclose(b.dink / ink, b.dart / art, rel_tol=1e-9)
