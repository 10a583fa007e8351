"""BitMEX XBTUSD (``--venue bitmex_inverse``): every BitMEX worked example of
../shared/specs/vectors.json through the functions a run calls, one test case per vector.

The run's functions are the fields of ``get_venue("bitmex_inverse")``: its pool formulas for
the XBTUSD contract (liquidation and bankruptcy price, funding), its tier table (risk-limit
steps), the contract arithmetic of backtest/contracts.py (inverse PnL). Vectors of rules a run
does not apply to one account (the ADL queue of many accounts, the position-record fields in
satoshi, the funding-rate formula, nautilus's margin convention) go through the module's
functions, named below.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from backtest.contracts import contract_for
from backtest.venues import bitmex
from backtest.venues.base import Leg, get_venue
from backtest.venues.catalog import day_ms
from backtest.venues.errors import VenueError
from backtest.venues.rounding import round_price
from tests.vector_cases import assert_vector, load_vectors, vector_params
from tests.venues.vector_eval import evaluate, within_tolerance

VENUE = get_venue("bitmex_inverse")
#: BitMEX's XBTUSD under its ccxt unified name (the store's and the engine's).
XBTUSD = "BTC/USD:BTC"
SIDES = {"long": 1, "short": -1}
ON_BLACK_THURSDAY = day_ms("2020-03-12")


def _contract() -> Any:
    return contract_for(VENUE.market(XBTUSD, ON_BLACK_THURSDAY))


def _position(inputs: dict[str, Any]) -> float:
    """The live 2018 record: prices through the venue's pool formulas, fields through
    :func:`bitmex.position_margins` (satoshi fields a run does not keep)."""
    side = SIDES[inputs["side"]]
    margins = bitmex.position_margins(
        side=side, contracts=inputs["contracts"], avg_entry_price=inputs["avg_entry_price"],
        init_margin_req=inputs["init_margin_req"], maint_margin_req=inputs["maint_margin_req"],
        commission=inputs["commission"])
    output = inputs["output"]
    if output in ("posCost", "posInit", "posComm", "posMaint"):
        return {"posCost": margins.pos_cost, "posInit": margins.pos_init,
                "posComm": margins.pos_comm, "posMaint": margins.pos_maint}[output]
    formulas = VENUE.formulas(_contract())
    # the run's isolated margin is posInit (the commission reserve sits in both posMargin and
    # posMaint and cancels in the liquidation price)
    wallet = margins.pos_init / bitmex.SATOSHI_PER_XBT
    if output == "liquidationPrice":
        price = formulas.liquidation_price(
            wallet_balance=wallet,
            both=Leg(side, inputs["contracts"], inputs["avg_entry_price"],
                     inputs["maint_margin_req"], 0.0))
    else:
        price = formulas.bankruptcy_price(wallet_balance=wallet, side=side,
                                          qty=inputs["contracts"],
                                          entry_price=inputs["avg_entry_price"])
    return round_price(price, tick=inputs["tick"], mode="up" if side == 1 else "down")


def _funding(inputs: dict[str, Any]) -> float:
    rate = bitmex.interest_rate(quote_rate_daily=inputs["quote_rate_daily"],
                                base_rate_daily=inputs["base_rate_daily"],
                                intervals_per_day=inputs["intervals_per_day"])
    if inputs["output"] == "rate":
        return rate
    payment = VENUE.formulas(_contract()).funding_payment(
        signed_qty=inputs["contracts"], mark_price=inputs["mark_price"], rate=rate)
    return -payment  # the amount the long pays


def _inverse_pnl(inputs: dict[str, Any]) -> float:
    assert _contract().contract_size == inputs["contract_usd"]
    return _contract().unrealized_pnl(
        signed_qty=SIDES[inputs["side"]] * inputs["contracts"],
        entry_price=inputs["entry_price"], mark_price=inputs["exit_price"])


def _risk_limit(inputs: dict[str, Any]) -> float:
    """The run's XBTUSD table on 2020-03-12: the step of the position value."""
    table = VENUE.tier_schedule(XBTUSD).at(ON_BLACK_THURSDAY)
    assert table.tiers[0].cap == inputs["base_limit_xbt"]
    assert table.tiers[1].cap - table.tiers[1].floor == inputs["step_xbt"]
    step = table.for_notional(inputs["position_xbt"])
    return step.mmr if inputs["output"] == "mm" else 1.0 / step.max_leverage


THROUGH_THE_VENUE = {"bitmex_position": _position, "bitmex_interest_funding": _funding,
                     "inverse_pnl": _inverse_pnl, "bitmex_risk_limit": _risk_limit}


def _evaluate(vector: dict[str, Any]) -> Any:
    run = THROUGH_THE_VENUE.get(vector["formula"])
    # bitmex_adl and leveraged_margin_model: module functions (tests/venues/vector_eval.py)
    return run(vector["inputs"]) if run else evaluate(vector)


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", vector_params({"bitmex"}))
def test_bitmex_vector_through_the_venue(vector_id: str, shared_dir: Path) -> None:
    assert_vector(load_vectors(shared_dir)[vector_id], _evaluate, within_tolerance)


@pytest.mark.shared
def test_fifteen_bitmex_vectors(shared_dir: Path) -> None:
    assert sum(v["venue"] == "bitmex" for v in load_vectors(shared_dir).values()) == 15


def test_liquidation_price_is_the_position_record_formula() -> None:
    """One leg: the pool formula equals :func:`bitmex.liquidation_price` of the record."""
    cost = 10_000 * 1e8 / 8_000.0
    expected = bitmex.liquidation_price(side=1, contracts=10_000, pos_cost=cost,
                                        pos_margin=0.125e8, pos_maint=cost * 0.005)
    got = VENUE.formulas(_contract()).liquidation_price(
        wallet_balance=0.125, both=Leg(1, 10_000, 8_000.0, 0.005, 0.0))
    # 10,000 / (1.25 + 0.125 - 0.00625) XBT
    assert got == pytest.approx(expected) == pytest.approx(10_000 / 1.36875)


def test_risk_limit_rate_applies_to_the_whole_position() -> None:
    """250 XBT is in the second step: 1 % of all of it, not a marginal sum."""
    table = VENUE.tier_schedule(XBTUSD).at(ON_BLACK_THURSDAY)
    assert VENUE.maintenance_margin(250.0, table.for_notional(250.0)) == pytest.approx(2.5)
    assert bitmex.risk_limit_margins(250.0)[1] * 250.0 == pytest.approx(2.5)


def test_every_step_matches_the_risk_limit_rule() -> None:
    for tier in VENUE.tier_schedule(XBTUSD).at(ON_BLACK_THURSDAY):
        im, mm = bitmex.risk_limit_margins(tier.floor + 1.0)
        assert tier.mmr == pytest.approx(mm)
        assert 1.0 / tier.max_leverage == pytest.approx(im)


def test_resolved_price_uses_the_step_of_the_entry_value() -> None:
    table = VENUE.tier_schedule(XBTUSD).at(ON_BLACK_THURSDAY)
    leg = Leg(1, 2_500_000, 10_000.0)  # 250 XBT at entry: the 1 % step
    got = VENUE.formulas(_contract()).liquidation_price_resolved(wallet_balance=25.0,
                                                                  tiers=table, both=leg)
    assert got == pytest.approx(2_500_000 / (250 + 25 - 2.5))


def test_linear_market_and_hedge_legs_are_refused() -> None:
    from backtest.contracts import LinearContract

    with pytest.raises(VenueError, match="inverse"):
        VENUE.formulas(LinearContract("USDT", 1.0))
    with pytest.raises(VenueError, match="one_way"):
        VENUE.liquidation_price(wallet_balance=1.0, long=Leg(1, 1, 1.0), short=Leg(-1, 1, 1.0))


def test_no_clearance_fee_and_the_2020_fees() -> None:
    spec = VENUE.market(XBTUSD, ON_BLACK_THURSDAY)
    assert spec.liquidation_fee_rate == 0.0
    assert (spec.maker_fee, spec.taker_fee) == (bitmex.XBTUSD_2020.maker_fee,
                                                bitmex.XBTUSD_2020.taker_fee)
    assert spec.tick_size == bitmex.XBTUSD_2020.tick and spec.contract_size == 1.0
    assert math.isclose(spec.contract_size, 1.0) and spec.settle == "XBT"


def test_data_file_states_the_8_hour_funding_and_the_order_limits() -> None:
    import tomllib
    from importlib import resources

    text = resources.files("backtest.venues").joinpath("data", "bitmex_inverse.toml").read_text("utf-8")
    assert tomllib.loads(text)["venue"]["funding_interval_hours"] == \
        bitmex.XBTUSD_2020.funding_interval_hours == 8.0
    assert (VENUE.max_open_orders, VENUE.max_stop_orders) == (200, 10)
    assert VENUE.position_modes == ("one_way",)
