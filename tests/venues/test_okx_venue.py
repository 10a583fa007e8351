"""OKX's worked examples through the registered venue ``okx``.

Each OKX vector of ../shared/specs/vectors.json (and Gate's, which freqtrade and Gate document
with the same isolated form) is its own case, evaluated with what the engine calls:
``get_venue("okx").formulas(contract)`` and the tier table lookup. Plus the requirement with
no maintenance amount, OKX's jumps at a tier boundary, the partial-liquidation plan and the
conversion of contract counts by ``ctVal``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from backtest.contracts import InverseContract, LinearContract
from backtest.venues import okx
from backtest.venues.base import Leg, get_venue
from backtest.venues.errors import VenueError
from backtest.venues.tiers import Tier, TierTable
from tests.vector_cases import assert_vector, load_vectors, vector_params
from tests.venues.vector_eval import within_tolerance

SIDES = {"long": 1, "short": -1}
OKX = get_venue("okx")
USDT = LinearContract("USDT", 0.01)


def _isolated_lp(inputs: dict[str, Any]) -> float:
    leg = Leg(SIDES[inputs["side"]], inputs["amount"], inputs["entry_price"], inputs["mmr"])
    return OKX.formulas(USDT).liquidation_price(wallet_balance=inputs["margin"], both=leg,
                                                liquidation_fee_rate=inputs["taker_fee"])


def _tier_mmr(inputs: dict[str, Any]) -> float:
    # OKX's tiers are by contract count: the lower bound of a tier belongs to it, as in the
    # engine's TierTable (a value equal to a floor is in the upper tier)
    table = TierTable.from_rates([(t["min"], t["mmr"]) for t in inputs["tiers"]], label="okx")
    return table.for_notional(inputs["size"]).mmr


EVALUATORS = {"okx_gate_isolated_liq_price": _isolated_lp, "okx_tier_mmr": _tier_mmr}


@pytest.fixture(scope="module")
def vectors(shared_dir: Path) -> dict[str, dict[str, Any]]:
    return load_vectors(shared_dir)


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", vector_params({"okx", "gate"}))
def test_okx_vector_through_the_venue(vector_id: str, vectors: dict[str, dict[str, Any]]) -> None:
    assert_vector(vectors[vector_id], lambda v: EVALUATORS[v["formula"]](v["inputs"]),
                  within_tolerance)


@pytest.mark.shared
def test_every_okx_formula_has_a_venue_evaluator(vectors: dict[str, dict[str, Any]]) -> None:
    formulas = {v["formula"] for v in vectors.values() if v["venue"] in ("okx", "gate")}
    assert formulas and formulas <= set(EVALUATORS), formulas - set(EVALUATORS)


def test_requirement_is_the_whole_position_rate_plus_the_fee() -> None:
    tier = Tier(5_000.0, 1e6, 10.0, 0.05, 200.0)  # cum 200 is not used by OKX
    fee = OKX.default_fees().taker
    assert OKX.maintenance_margin(10_000.0, tier) == pytest.approx(10_000.0 * (0.05 + fee))
    assert okx.requirement(-10_000.0, tier, liquidation_fee_rate=0.0) == pytest.approx(500.0)


def test_resolved_price_handles_the_jump_at_a_tier_boundary() -> None:
    """Gap = equity - requirement jumps down at a floor: the breach can be the boundary itself."""
    tiers = TierTable([Tier(0.0, 5_000.0, 100.0, 0.01, 0.0),
                       Tier(5_000.0, 1e6, 10.0, 0.2, 950.0)], label="jump")
    formulas = OKX.formulas(USDT)
    leg = Leg(1, 100.0, 100.0)
    lp = formulas.liquidation_price_resolved(wallet_balance=1_200.0, tiers=tiers, both=leg,
                                             liquidation_fee_rate=0.0)
    # tier 2 (20 %) requires 2,000 at the entry, more than the 1,200 margin: already breached,
    # the LP lies above the entry (the engine liquidates at once)
    assert lp == pytest.approx((100.0 - 12.0) / (1 - 0.2))
    # a short of 4,000 (tier 1) breaches exactly where its notional enters tier 2 (price 50):
    # tier 1's solution 5,200/101 = 51.49 lies beyond its range, and at 50 the equity
    # 1,200 - 1,000 = 200 is below tier 2's 5,000*20 % = 1,000
    short = formulas.liquidation_price_resolved(wallet_balance=1_200.0, tiers=tiers,
                                                both=Leg(-1, 100.0, 40.0), liquidation_fee_rate=0.0)
    assert short == pytest.approx(50.0)
    # a milder tier 2: breach inside tier 2's range at (100 - 12)/(1 - 0.05) = 92.63
    tiers = TierTable([Tier(0.0, 5_000.0, 100.0, 0.01, 0.0),
                       Tier(5_000.0, 1e6, 10.0, 0.05, 200.0)], label="mild")
    lp = formulas.liquidation_price_resolved(wallet_balance=1_200.0, tiers=tiers, both=leg,
                                             liquidation_fee_rate=0.0)
    assert lp == pytest.approx(88.0 / 0.95)
    # short: the first breach above the entry
    short = formulas.liquidation_price_resolved(wallet_balance=1_200.0, tiers=tiers,
                                                both=Leg(-1, 100.0, 100.0), liquidation_fee_rate=0.0)
    assert short == pytest.approx(112.0 / 1.05)


def test_partial_liquidation_plan_and_contract_conversion() -> None:
    tiers = TierTable([Tier(0.0, 5_000.0, 100.0, 0.01, 0.0),
                       Tier(5_000.0, 1e6, 10.0, 0.05, 200.0)], label="two")
    plan = OKX.liquidation_procedure(mode="tier_down", qty=200.0, mark_price=52.0,
                                     bankruptcy_price=50.0, margin_balance=400.0, tiers=tiers,
                                     clearance_rate=0.0005, lot_size=0.01)
    keep = math.floor(5_000.0 / 52.0 * (1 - 1e-9) / 0.01 + 1e-9) * 0.01
    assert [s.kind for s in plan.steps] == ["tier_down"]
    assert plan.steps[0].qty == pytest.approx(200.0 - keep) and plan.remainder == pytest.approx(keep)
    # 1,000 BTC-USDT-SWAP contracts of ctVal 0.01 BTC are 10 BTC
    assert okx.contracts_to_base(1_000, OKX.market("BTC/USDT:USDT").contract_size) == 10.0


def test_okx_refuses_inverse_specs_and_names_its_sources() -> None:
    with pytest.raises(VenueError, match="USDT-margined"):
        OKX.formulas(InverseContract("BTC", 100.0))
    assert "ASSUMPTION" in OKX.describe()["rule_versions"]["tiers"]
    assert OKX.max_open_orders == 500
