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


EVALUATORS: dict[str, Callable[[dict[str, Any]], Any]] = {
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


def evaluate(vector: dict[str, Any]) -> Any:
    """Computed value of ``vector`` (KeyError names a formula with no evaluator)."""
    try:
        evaluator = EVALUATORS[vector["formula"]]
    except KeyError:
        raise KeyError(f"vector {vector['id']}: no evaluator for formula {vector['formula']!r}") from None
    return evaluator(vector["inputs"])


def within_tolerance(vector: dict[str, Any], value: float | dict[str, float]) -> bool:
    """True when ``value`` matches the vector's expected value within its tolerance.

    A mapping (e.g. an ADL allocation by account) matches when it has exactly the expected
    keys and every value is within the tolerance.
    """
    expected = vector["expected"]
    tolerance = {"rel_tol": vector.get("rel_tol", 0.0), "abs_tol": vector.get("abs_tol", 0.0)}
    if isinstance(expected, dict):
        return (isinstance(value, dict) and set(value) == set(expected)
                and all(math.isclose(value[key], expected[key], **tolerance) for key in expected))
    return math.isclose(value, expected, **tolerance)


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


# ---- BitMEX, Hyperliquid, dYdX v4 ---------------------------------------------------------
from backtest.venues import bitmex, dydx_v4, hyperliquid  # noqa: E402


def bitmex_adl(inputs: dict[str, Any]) -> dict[str, float]:
    positions = [bitmex.AdlPosition(p["account"], p["qty"], p["score"]) for p in inputs["positions"]]
    if inputs["output"] == "allocation":
        result = bitmex.adl_allocation(positions, inputs["liquidated_qty"])
    else:
        result = bitmex.adl_indicator_percentiles(positions)
    # vectors.json keys accounts by their JSON text
    return {str(account): value for account, value in result.items()}


def bitmex_interest_funding(inputs: dict[str, Any]) -> float:
    # the guide's example ignores the premium: the rate is the interest component alone
    rate = bitmex.interest_rate(quote_rate_daily=inputs["quote_rate_daily"],
                                base_rate_daily=inputs["base_rate_daily"],
                                intervals_per_day=inputs["intervals_per_day"])
    if inputs["output"] == "rate":
        return rate
    return bitmex.funding_amount(contracts=inputs["contracts"], mark_price=inputs["mark_price"],
                                 rate=rate, contract_usd=inputs["contract_usd"])


def inverse_pnl(inputs: dict[str, Any]) -> float:
    return bitmex.inverse_pnl(side=SIDES[inputs["side"]], contracts=inputs["contracts"],
                              entry_price=inputs["entry_price"], exit_price=inputs["exit_price"],
                              contract_usd=inputs["contract_usd"])


def bitmex_position(inputs: dict[str, Any]) -> float:
    side = SIDES[inputs["side"]]
    margins = bitmex.position_margins(side=side, contracts=inputs["contracts"],
                                      avg_entry_price=inputs["avg_entry_price"],
                                      init_margin_req=inputs["init_margin_req"],
                                      maint_margin_req=inputs["maint_margin_req"],
                                      commission=inputs["commission"])
    output = inputs["output"]
    if output == "liquidationPrice":
        return bitmex.liquidation_price(side=side, contracts=inputs["contracts"],
                                        pos_cost=margins.pos_cost, pos_margin=margins.pos_margin,
                                        pos_maint=margins.pos_maint, tick=inputs["tick"])
    if output == "bankruptPrice":
        return bitmex.bankruptcy_price(side=side, contracts=inputs["contracts"],
                                       pos_cost=margins.pos_cost, pos_init=margins.pos_init,
                                       tick=inputs["tick"])
    fields = {"posCost": margins.pos_cost, "posInit": margins.pos_init,
              "posComm": margins.pos_comm, "posMaint": margins.pos_maint}
    return float(fields[output])


def bitmex_risk_limit(inputs: dict[str, Any]) -> float:
    im, mm = bitmex.risk_limit_margins(inputs["position_xbt"], base_limit_xbt=inputs["base_limit_xbt"],
                                       step_xbt=inputs["step_xbt"], base_mm=inputs["base_mm"],
                                       base_im=inputs["base_im"])
    return {"im": im, "mm": mm}[inputs["output"]]


def leveraged_margin_model(inputs: dict[str, Any]) -> float:
    return bitmex.leveraged_margin(quantity=inputs["quantity"], price=inputs["price"],
                                   rate=inputs["rate"], leverage=inputs["leverage"],
                                   inverse=inputs["inverse"])


def hyperliquid_liq_price(inputs: dict[str, Any]) -> float:
    return hyperliquid.liquidation_price(side=SIDES[inputs["side"]], size=inputs["size"],
                                         price=inputs["entry_price"], margin=inputs["margin"],
                                         max_leverage=inputs["max_leverage"])


def premium_clamp_funding(inputs: dict[str, Any]) -> float:
    average = hyperliquid.premium(oracle_price=inputs["reference_price"],
                                  impact_bid=inputs["impact_bid"], impact_ask=inputs["impact_ask"])
    return hyperliquid.premium_clamp_funding(average_premium=average,
                                             interest_rate=inputs["interest_rate"],
                                             clamp=inputs["clamp"])


def _subaccount(inputs: dict[str, Any]) -> dydx_v4.Subaccount:
    positions = tuple(dydx_v4.Position(float(p["size"]), float(p["price"]), float(p["mmf"]))
                      for p in inputs["positions"])
    return dydx_v4.Subaccount(float(inputs["usdc"]), positions)


def dydx_bankruptcy_quote(inputs: dict[str, Any]) -> float:
    return dydx_v4.bankruptcy_quote(_subaccount(inputs), target=inputs["target"],
                                    delta_size=float(inputs["delta_size"]))


def dydx_fillable_price(inputs: dict[str, Any]) -> float:
    return dydx_v4.fillable_price(_subaccount(inputs), target=inputs["target"],
                                  bankruptcy_adjustment_ppm=inputs["bankruptcy_adjustment_ppm"],
                                  spread_to_mmr_ppm=inputs["spread_to_mmr_ppm"])


def dydx_funding_index_delta(inputs: dict[str, Any]) -> float:
    return dydx_v4.funding_index_delta(rate_ppm_8h=inputs["rate_ppm_8h"], seconds=inputs["seconds"],
                                       price_value=inputs["price_value"],
                                       price_exponent=inputs["price_exponent"],
                                       atomic_resolution=inputs["atomic_resolution"])


def dydx_oimf_initial_margin(inputs: dict[str, Any]) -> float:
    # maintenance plays no part in the IMR; any valid fraction will do
    tier = dydx_v4.LiquidityTier(inputs["imf_ppm"], 500_000, inputs["oi_lower_cap"],
                                 inputs["oi_upper_cap"])
    return dydx_v4.initial_margin_quantums(quote_quantums=inputs["quote_quantums"], tier=tier,
                                           open_interest_quantums=inputs["open_interest_notional"])


EVALUATORS.update({
    "bitmex_adl": bitmex_adl,
    "bitmex_interest_funding": bitmex_interest_funding,
    "inverse_pnl": inverse_pnl,
    "bitmex_position": bitmex_position,
    "bitmex_risk_limit": bitmex_risk_limit,
    "leveraged_margin_model": leveraged_margin_model,
    "hyperliquid_liq_price": hyperliquid_liq_price,
    "premium_clamp_funding": premium_clamp_funding,
    "dydx_bankruptcy_quote": dydx_bankruptcy_quote,
    "dydx_fillable_price": dydx_fillable_price,
    "dydx_funding_index_delta": dydx_funding_index_delta,
    "dydx_oimf_initial_margin": dydx_oimf_initial_margin,
})
