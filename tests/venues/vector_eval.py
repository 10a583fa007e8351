"""Evaluate a ../shared/specs/vectors.json entry with margincall's venue functions.

One function per ``formula`` key of the vectors; each returns the computed value to compare
with the vector's ``expected`` within its ``abs_tol`` / ``rel_tol``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from backtest.venues import binance_coinm as cm
from backtest.venues import binance_usdm as um
from backtest.venues.rounding import round_price
from backtest.venues.tiers import TierTable, progressive_sum

SIDES = {"long": 1, "short": -1}


def _bracket_table(inputs: dict[str, Any]) -> TierTable:
    return TierTable.from_rates([tuple(row) for row in inputs["brackets"]], label="vector brackets")


def bracket_cum(inputs: dict[str, Any]) -> float:
    return _bracket_table(inputs).for_notional(inputs["notional"]).cum


def bracket_mmr(inputs: dict[str, Any]) -> float:
    return _bracket_table(inputs).for_notional(inputs["notional"]).mmr


def cum_single_step(inputs: dict[str, Any]) -> float:
    return um.next_maintenance_amount(floor=inputs["floor_n"], mmr=inputs["mmr_n"],
                                      previous_mmr=inputs["mmr_prev"],
                                      previous_cum=inputs["cum_prev"])


def maintenance_margin_inverse(inputs: dict[str, Any]) -> float:
    return cm.maintenance_margin_inverse(contracts=inputs["contracts"],
                                         contract_size=inputs["contract_size_usd"],
                                         mark_price=inputs["mark_price"], mmr=inputs["mmr"],
                                         cum=inputs["cum"])


def binance_coinm_liq_price(inputs: dict[str, Any]) -> float:
    leg = um.Leg(SIDES[inputs["side"]], inputs["contracts"], inputs["entry_price"],
                 inputs["mmr"], inputs["cum"])
    return cm.liquidation_price_inverse(wallet_balance=inputs["wallet_balance"],
                                        contract_size=inputs["contract_size_usd"], both=leg)


def _leg(spec: dict[str, Any]) -> um.Leg:
    return um.Leg(SIDES[spec["side"]], spec["amount"], spec["entry_price"], spec["mmr"], spec["cum"])


def binance_usdm_liq_price(inputs: dict[str, Any]) -> float:
    other_mm = other_upnl = 0.0
    for other in inputs.get("other_positions", []):
        leg = _leg(other)
        other_mm += um.leg_maintenance_margin(leg, other["mark_price"])
        other_upnl += um.leg_unrealized_pnl(leg, other["mark_price"])
    price = um.liquidation_price(wallet_balance=inputs["wallet_balance"],
                                 both=_leg(inputs["both"]), other_maintenance=other_mm,
                                 other_unrealized=other_upnl)
    if "round_decimals" in inputs:
        price = round_price(price, decimals=inputs["round_decimals"])
    return price


def funding_fee_sum(inputs: dict[str, Any]) -> float:
    signed = SIDES[inputs["side"]] * inputs["amount"]
    return um.funding_payments(signed_qty=signed,
                               settlements=[(rate, mark) for rate, mark in inputs["settlements"]])


def collateral_haircut(inputs: dict[str, Any]) -> float:
    return um.collateral_value(inputs["market_value"], inputs["collateral_value_ratio"])


def auto_exchange_amount(inputs: dict[str, Any]) -> float:
    return um.auto_exchange_amount(inputs["deficit"], inputs["rate"])


def tiered_progressive_sum(inputs: dict[str, Any]) -> float:
    return math.fsum(progressive_sum(item["value"], [tuple(t) for t in item["tiers"]])
                     for item in inputs["items"])


EVALUATORS: dict[str, Callable[[dict[str, Any]], float]] = {
    "bracket_cum": bracket_cum,
    "bracket_mmr": bracket_mmr,
    "cum_single_step": cum_single_step,
    "maintenance_margin_inverse": maintenance_margin_inverse,
    "binance_coinm_liq_price": binance_coinm_liq_price,
    "binance_usdm_liq_price": binance_usdm_liq_price,
    "funding_fee_sum": funding_fee_sum,
    "collateral_haircut": collateral_haircut,
    "auto_exchange_amount": auto_exchange_amount,
    "tiered_progressive_sum": tiered_progressive_sum,
}


def evaluate(vector: dict[str, Any]) -> float:
    """Computed value of ``vector`` (KeyError names a formula with no evaluator)."""
    try:
        evaluator = EVALUATORS[vector["formula"]]
    except KeyError:
        raise KeyError(f"vector {vector['id']}: no evaluator for formula {vector['formula']!r}") from None
    return evaluator(vector["inputs"])


def within_tolerance(vector: dict[str, Any], value: float) -> bool:
    """True when ``value`` matches the vector's expected value within its tolerance."""
    return math.isclose(value, vector["expected"], rel_tol=vector.get("rel_tol", 0.0),
                        abs_tol=vector.get("abs_tol", 0.0))


# ---- Bybit, OKX, Gate ---------------------------------------------------------------------
from backtest.venues import bybit, okx  # noqa: E402


def bybit_inverse_cross(inputs: dict[str, Any]) -> float:
    common = dict(side=1, contracts=inputs["contracts"], entry_price=inputs["entry_price"],
                  taker_fee=inputs["taker_fee"])
    if inputs["output"] == "bankruptcy_price":
        return bybit.inverse_cross_bankruptcy_price(
            available_balance=inputs["account_balance"] - inputs["order_margin"], **common)
    price = bybit.inverse_cross_liquidation_price(
        account_balance=inputs["account_balance"], order_margin=inputs["order_margin"],
        mmr=inputs["mmr"], **common)
    if "tick" in inputs:
        mode = {"ceil": "up", "floor": "down"}.get(inputs["tick_rounding"], inputs["tick_rounding"])
        price = round_price(price, tick=inputs["tick"], mode=mode)
    return price


def inverse_initial_margin(inputs: dict[str, Any]) -> float:
    return bybit.inverse_initial_margin(contracts=inputs["contracts"], price=inputs["price"],
                                        leverage=inputs["leverage"],
                                        contract_size=inputs["contract_size_usd"])


def isolated_bankruptcy_linear(inputs: dict[str, Any]) -> float:
    return bybit.isolated_bankruptcy_price(side=SIDES[inputs["side"]],
                                           entry_price=inputs["entry_price"],
                                           leverage=inputs["leverage"])


def isolated_margin_liq_price(inputs: dict[str, Any]) -> float:
    return bybit.isolated_liquidation_price(
        side=SIDES[inputs["side"]], size=inputs["amount"], entry_price=inputs["entry_price"],
        leverage=inputs["leverage"], mmr=inputs["mmr"], mm_deduction=inputs["mm_deduction"],
        extra_margin=inputs["extra_margin"])


def isolated_rate_liq_price(inputs: dict[str, Any]) -> float:
    return bybit.isolated_liquidation_price_rate_form(
        side=SIDES[inputs["side"]], entry_price=inputs["entry_price"],
        leverage=inputs["leverage"], mmr=inputs["mmr"])


def okx_gate_isolated_liq_price(inputs: dict[str, Any]) -> float:
    return okx.isolated_liquidation_price(
        side=SIDES[inputs["side"]], entry_price=inputs["entry_price"], size=inputs["amount"],
        margin=inputs["margin"], mmr=inputs["mmr"], taker_fee=inputs["taker_fee"])


def okx_tier_mmr(inputs: dict[str, Any]) -> float:
    return okx.tier_mmr(inputs["size"], [(t["min"], t["mmr"]) for t in inputs["tiers"]])


EVALUATORS.update({
    "bybit_inverse_cross": bybit_inverse_cross,
    "inverse_initial_margin": inverse_initial_margin,
    "isolated_bankruptcy_linear": isolated_bankruptcy_linear,
    "isolated_margin_liq_price": isolated_margin_liq_price,
    "isolated_rate_liq_price": isolated_rate_liq_price,
    "okx_gate_isolated_liq_price": okx_gate_isolated_liq_price,
    "okx_tier_mmr": okx_tier_mmr,
})
