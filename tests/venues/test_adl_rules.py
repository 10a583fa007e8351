"""Each venue's ADL rule (backtest.venues.adl_rules.AdlRule), worked by hand, and BitMEX's
published example through the engine's own queue (backtest.adl.adl_fills)."""
from __future__ import annotations

import json
import math
from typing import Any

import pytest

from backtest.adl import adl_fills, adl_queue
from backtest.venues import binance_usdm, bitmex, bybit, dydx_v4, hyperliquid, okx
from backtest.venues.adl_rules import (BANKRUPTCY, PREVIOUS_ORACLE, AdlCandidate, AdlRule,
                                       effective_leverage, pnl_percent)
from backtest.venues.base import get_venue


def _linear(side: int, qty: float, entry: float, mark: float, margin: float,
            maintenance: float = 0.0) -> AdlCandidate:
    """An isolated linear position: values ``s*Q*P``, equity = margin + PnL."""
    entry_value = side * qty * entry
    upnl = side * qty * (mark - entry)
    return AdlCandidate(side, qty, entry, mark, entry_value, entry_value + upnl, upnl, margin,
                        maintenance, margin + upnl)


def _vector(shared_dir: Any, vector_id: str) -> dict:
    vectors = json.loads((shared_dir / "specs" / "vectors.json").read_text())
    return next(v for v in vectors if v["id"] == vector_id)


# ---- BitMEX ---------------------------------------------------------------------------------

def test_bitmex_rule_is_pnl_percent_times_effective_leverage_of_values() -> None:
    """Long 0.1 at 20,100, mark 20,500, margin 201: PnL 40, PnL% 40/2,010; margin balance
    241, effective leverage 2,050/241; score = (40/2,010) x (2,050/241) = 0.169278."""
    c = _linear(1, 0.1, 20_100.0, 20_500.0, 201.0)
    expected = (40 / 2_010) * (2_050 / 241)
    assert bitmex.ADL_RULE.score(c) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.169278, abs=1e-6)
    # the engine's candidate and the position-record function agree (one definition)
    assert bitmex.adl_score(mark_value=2_050.0, entry_value=2_010.0,
                            bankrupt_value=2_050.0 - 241.0) == pytest.approx(expected)
    assert bitmex.ADL_RULE.price_basis == BANKRUPTCY


def test_bitmex_inverse_values_carry_the_sign_that_makes_their_change_the_pnl() -> None:
    """Long 10,000 XBTUSD at 8,100, mark 8,500, margin 0.1234568 XBT (10x): values are
    -Q/P; PnL = 10,000 (1/8,100 - 1/8,500) = 0.0580973 XBT."""
    q, entry, mark = 10_000.0, 8_100.0, 8_500.0
    margin = q / entry / 10
    upnl = q * (1 / entry - 1 / mark)
    c = AdlCandidate(1, q, entry, mark, -q / entry, -q / mark, upnl, margin, 0.0, margin + upnl)
    assert c.mark_value - c.entry_value == pytest.approx(upnl, rel=1e-12)
    pnl_pct = upnl / (q / entry)  # = 1 - 8,100/8,500 = 0.0470588
    assert pnl_pct == pytest.approx(1 - entry / mark)
    lev = (q / mark) / (margin + upnl)
    assert bitmex.adl_candidate_score(c) == pytest.approx(pnl_pct * lev, rel=1e-12)


def test_bitmex_losing_positions_divide_and_unbacked_ones_are_not_ranked() -> None:
    c = _linear(1, 1.0, 100.0, 90.0, 30.0)  # PnL% -0.1, margin balance 20, leverage 90/20
    assert bitmex.adl_candidate_score(c) == pytest.approx(-0.1 / (90 / 20))
    assert bitmex.adl_candidate_score(_linear(1, 1.0, 100.0, 60.0, 30.0)) == 0.0  # equity < 0


def test_bitmex_doc_adl_allocation_through_the_engine_queue(shared_dir: Any) -> None:
    vector = _vector(shared_dir, "bitmex-doc-adl-allocation")
    positions = vector["inputs"]["positions"]
    scores = [float(p["score"]) for p in positions]
    qtys = [float(p["qty"]) for p in positions]
    fills = adl_fills(scores, qtys, vector["inputs"]["liquidated_qty"], ranked=True)
    got = {str(positions[k]["account"]): size for k, size in fills}
    assert got == {k: float(v) for k, v in vector["expected"].items()}


def test_bitmex_doc_adl_quintiles_through_the_venue_rule(shared_dir: Any) -> None:
    vector = _vector(shared_dir, "bitmex-doc-adl-quintiles")
    positions = vector["inputs"]["positions"]
    quantiles = bitmex.ADL_RULE.quantiles([float(p["score"]) for p in positions],
                                          [float(p["qty"]) for p in positions])
    # the rule reports the indicator as lights / 5 (1 = head); the page shows the bucket
    buckets = {str(p["account"]): round(120 - 100 * q) for p, q in zip(positions, quantiles)}
    assert buckets == {k: int(v) for k, v in vector["expected"].items()}


# ---- Bybit, OKX ----------------------------------------------------------------------------

def test_bybit_ranks_with_bitmex_value_form() -> None:
    c = _linear(-1, 2.0, 30_000.0, 29_000.0, 6_000.0)  # short in profit 2,000
    pnl, lev = 2_000 / 60_000, 58_000 / 8_000
    assert bybit.adl_score(c) == pytest.approx(pnl * lev, rel=1e-12)
    assert bybit.ADL_RULE.name == "bybit_pnl_x_effective_leverage"
    assert bybit.ADL_RULE.price_basis == BANKRUPTCY


def test_okx_leverage_pnl_is_pnl_percent_times_effective_leverage() -> None:
    c = _linear(1, 3.0, 2_000.0, 2_200.0, 600.0)  # PnL 600 = 10 %; equity 1,200; value 6,600
    assert pnl_percent(c) == pytest.approx(0.1) and effective_leverage(c) == pytest.approx(5.5)
    assert okx.adl_score(c) == pytest.approx(0.55)
    # a loss is multiplied, not divided (OKX's single formula): never reached anyway
    loss = _linear(1, 3.0, 2_000.0, 1_900.0, 600.0)
    assert okx.adl_score(loss) == pytest.approx((-300 / 6_000) * (5_700 / 300))


# ---- Hyperliquid -----------------------------------------------------------------------------

def test_hyperliquid_sorting_index_and_previous_oracle_basis() -> None:
    """Long 1 at 50,000, mark 55,000, margin 5,000: (55,000/50,000) x (55,000/10,000) = 6.05."""
    c = _linear(1, 1.0, 50_000.0, 55_000.0, 5_000.0)
    assert hyperliquid.adl_score(c) == pytest.approx(1.1 * 5.5)
    assert hyperliquid.adl_score(_linear(1, 1.0, 50_000.0, 49_000.0, 5_000.0)) == 0.0  # no profit
    assert hyperliquid.ADL_RULE.price_basis == PREVIOUS_ORACLE


def test_hyperliquid_more_leverage_ranks_first_at_equal_profit() -> None:
    calm = _linear(1, 1.0, 50_000.0, 55_000.0, 20_000.0)
    hot = _linear(1, 1.0, 50_000.0, 55_000.0, 2_000.0)
    order = adl_queue([hyperliquid.adl_score(calm), hyperliquid.adl_score(hot)], ranked=True)
    assert order == [1, 0]


# ---- dYdX v4 -----------------------------------------------------------------------------------

def test_dydx_has_no_ranking_and_offsets_from_the_start_around() -> None:
    rule = dydx_v4.ADL_RULE
    assert rule.score is None and rule.quantiles is None and rule.price_basis == BANKRUPTCY
    nan = [math.nan] * 4
    assert adl_queue(nan, ranked=False, start=2) == [2, 3, 0, 1]
    # losing positions are reached too (no ranking): sizes in queue order from the start
    assert adl_fills(nan, [1.0, 2.0, 3.0, 4.0], 5.0, ranked=False, start=3) == [(3, 4.0), (0, 1.0)]


# ---- the protocol ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, rule", [
    ("bitmex_inverse", bitmex.ADL_RULE), ("bybit_linear", bybit.ADL_RULE),
    ("bybit_inverse", bybit.ADL_RULE), ("okx", okx.ADL_RULE),
    ("hyperliquid", hyperliquid.ADL_RULE), ("dydx_v4", dydx_v4.ADL_RULE)])
def test_each_venue_answers_with_its_own_rule(name: str, rule: AdlRule) -> None:
    assert get_venue(name).adl_ranking() is rule
    assert "ASSUMPTION" not in get_venue(name).rule_versions.get("adl_ranking", "")
    assert "ASSUMPTION" not in get_venue(name).rule_versions.get("adl", "")


def test_binance_rule_is_its_score_unchanged() -> None:
    rule = get_venue("binance_usdm").adl_ranking()
    c = _linear(1, 0.1, 20_100.0, 20_500.0, 201.0, maintenance=10.25)
    assert rule.name == "binance_usdm_leverage_pnl" and rule.price_basis == BANKRUPTCY
    assert rule.score(c) == binance_usdm.adl_score(unrealized_pnl=c.unrealized_pnl,
                                                   wallet_balance=201.0, maintenance_margin=10.25)
    assert rule.quantiles([3.0, 1.0], [1.0, 1.0]) == binance_usdm.adl_quantiles([3.0, 1.0])


def test_a_rule_with_an_unknown_price_basis_is_refused() -> None:
    with pytest.raises(ValueError, match="price_basis"):
        AdlRule("x", None, None, "mark")
