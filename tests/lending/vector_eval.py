"""Evaluate the DeFi entries of ../shared/specs/vectors.json with the lending modules.

One evaluator per ``formula`` key; each calls the modules' public functions on the vector's
inputs and returns the value to compare with ``expected`` (a number or a bool).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from backtest.lending import aave_v3, compound_v3, maker

DEFI_VENUES = frozenset({"aave_v3", "compound_v3", "makerdao"})


def aave_health_factor(inputs: dict[str, Any]) -> float:
    return aave_v3.health_factor([(c["value"], c["lt"]) for c in inputs["collateral"]],
                                 inputs["debt_value"])


def aave_v33_max_liquidatable_debt(inputs: dict[str, Any]) -> float:
    return aave_v3.max_liquidatable_debt_v33(
        reserve_collateral_base=inputs["reserve_collateral_base"],
        reserve_debt_base=inputs["reserve_debt_base"], total_debt_base=inputs["total_debt_base"],
        health_factor=inputs["health_factor"], threshold_base=inputs["threshold_base"])


def aave_max_partial_leaving_dust_floor(inputs: dict[str, Any]) -> float:
    return aave_v3.max_partial_leaving_dust_floor(inputs["balance_base"],
                                                  inputs["min_leftover_base"])


def _holdings(inputs: dict[str, Any], factor_key: str) -> list[compound_v3.Holding]:
    # A vector gives only the factor its formula reads; the other two factors of the asset are
    # set to the same value (they do not enter that formula).
    out = []
    for row in inputs["collateral"]:
        f = row[factor_key]
        config = compound_v3.AssetConfig(row["asset"], f, f, f)
        out.append(compound_v3.Holding(config, row["amount"], row["price"]))
    return out


def comet_absorb_new_balance(inputs: dict[str, Any]) -> float:
    return compound_v3.absorbed_base_balance(base_balance=inputs["old_balance"],
                                             base_price=inputs["base_price"],
                                             holdings=_holdings(inputs, "liquidation_factor"))


def comet_is_liquidatable(inputs: dict[str, Any]) -> bool:
    return compound_v3.is_liquidatable(base_balance=-inputs["debt"], base_price=inputs["base_price"],
                                       holdings=_holdings(inputs, "liquidate_cf"))


def comet_quote_collateral(inputs: dict[str, Any]) -> float:
    return compound_v3.quote_collateral(
        base_amount=inputs["base_amount"], base_price=inputs["base_price"],
        asset_price=inputs["asset_price"],
        store_front_price_factor=inputs["store_front_price_factor"],
        liquidation_factor=inputs["liquidation_factor"])


def maker_bark(inputs: dict[str, Any]) -> float:
    result = maker.bark(ink=inputs["ink"], art=inputs["art"], rate=inputs["rate"],
                        chop=inputs["chop"], room=inputs.get("room_dai", math.inf),
                        dust=inputs.get("dust", 0.0), tip=inputs.get("tip", 0.0),
                        chip=inputs.get("chip", 0.0))
    assert result.status == "barked", result
    return {"tab": result.tab, "lot": result.lot, "incentive": result.incentive}[inputs["output"]]


def maker_is_unsafe(inputs: dict[str, Any]) -> bool:
    return maker.is_unsafe(ink=inputs["ink"], art=inputs["art"], rate=inputs["rate"],
                           price=inputs["oracle_price"], mat=inputs["mat"])


def maker_price_curve(inputs: dict[str, Any]) -> float:
    kind = inputs["curve"]
    curve: maker.LinearDecrease | maker.StairstepExponentialDecrease | maker.ExponentialDecrease
    if kind == "linear":
        curve = maker.LinearDecrease(inputs["tau"])
    elif kind == "stairstep":
        curve = maker.StairstepExponentialDecrease(inputs["cut"], inputs["step"])
    elif kind == "exponential":
        curve = maker.ExponentialDecrease(inputs["cut"])
    else:
        raise KeyError(f"maker_price_curve: no curve {kind!r}")
    return curve.price(inputs["top"], inputs["elapsed"])


def maker_take(inputs: dict[str, Any]) -> float:
    result = maker.take(lot=inputs["lot"], tab=inputs["tab"], price=inputs["price"],
                        amt=inputs["amt"])
    assert result.status == "taken", result
    return {"slice": result.slice, "returned_to_owner": result.returned_to_owner,
            "remaining_tab": result.tab_left}[inputs["output"]]


def maker_top(inputs: dict[str, Any]) -> float:
    return maker.top(inputs["oracle_price"], inputs["buf"])


EVALUATORS: dict[str, Callable[[dict[str, Any]], float | bool]] = {
    "aave_health_factor": aave_health_factor,
    "aave_max_partial_leaving_dust_floor": aave_max_partial_leaving_dust_floor,
    "aave_v33_max_liquidatable_debt": aave_v33_max_liquidatable_debt,
    "comet_absorb_new_balance": comet_absorb_new_balance,
    "comet_is_liquidatable": comet_is_liquidatable,
    "comet_quote_collateral": comet_quote_collateral,
    "maker_bark": maker_bark,
    "maker_is_unsafe": maker_is_unsafe,
    "maker_price_curve": maker_price_curve,
    "maker_take": maker_take,
    "maker_top": maker_top,
}


def evaluate(vector: dict[str, Any]) -> float | bool:
    """Computed value of ``vector`` (KeyError names a formula with no evaluator)."""
    try:
        evaluator = EVALUATORS[vector["formula"]]
    except KeyError:
        raise KeyError(f"vector {vector['id']}: no evaluator for formula {vector['formula']!r}") from None
    return evaluator(vector["inputs"])


def matches(vector: dict[str, Any], value: float | bool) -> bool:
    """True when ``value`` equals the expected value: exactly for booleans, else within the
    vector's ``abs_tol`` / ``rel_tol``."""
    expected = vector["expected"]
    if isinstance(expected, bool):
        return isinstance(value, bool) and value is expected
    return math.isclose(value, expected, rel_tol=vector.get("rel_tol", 0.0),
                        abs_tol=vector.get("abs_tol", 0.0))
