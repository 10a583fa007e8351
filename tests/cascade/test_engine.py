"""The cascade loop: flagging, feedback, ADL, determinism, the output folder and conservation."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.cascade.engine import CascadeConfig, run_cascade
from backtest.cascade.errors import CascadeError
from backtest.cascade.liquidity import LiquidityModel
from backtest.cascade.paths import shock_path
from backtest.cascade.population import synthetic_population
from backtest.runfolder import RunFolderError

BTC = "BTC/USDT:USDT"
T0 = 1_760_130_000_000


def _run(n=3000, seed=1, drop=0.06, depth=3.5e6, fund=1e5, **config):
    pop = synthetic_population(n, seed=seed, prices={BTC: 100_000.0}, prior="binance_2019")
    path = shock_path(start_price=100_000.0, seconds=300, drop=drop, start_ms=T0)
    liquidity = {BTC: LiquidityModel(depth_at_ref=depth)}
    return pop, path, run_cascade(pop, {BTC: path}, CascadeConfig(insurance_fund=fund, liquidity=liquidity, **config))


def test_no_move_liquidates_nothing_and_prices_follow_the_index():
    _, path, result = _run(drop=0.0)
    assert result.summary["liquidated_positions"] == 0
    assert np.allclose(result.prices["last"].to_numpy(), path.price)
    assert result.summary["amplification"][BTC] is None


def test_positions_are_taken_over_exactly_when_the_mark_crosses_their_liquidation_price():
    pop, _, result = _run()
    liq = result.liquidated_positions
    assert liq.height > 0
    longs, shorts = liq.filter(pl.col("side") == "long"), liq.filter(pl.col("side") == "short")
    assert (longs["mark_price"] <= longs["liquidation_price"]).all()
    assert (shorts["mark_price"] >= shorts["liquidation_price"]).all()
    # nobody left alive was crossed: the lowest mark stayed above every surviving long's LP
    from backtest.cascade.venue import TierArrays, isolated_liquidation_prices
    from backtest.venues.defaults import default_tier_schedule

    tiers = TierArrays.from_table(default_tier_schedule("binanceusdm", BTC).at(T0))
    lp = isolated_liquidation_prices(pop.side.astype(float), pop.qty, pop.entry, pop.margin, tiers)
    alive = np.setdiff1d(np.arange(len(pop)), liq["position"].to_numpy())
    alive_long = alive[pop.side[alive] > 0]
    assert lp[alive_long].max() < result.prices["mark"].min()


def test_forced_selling_amplifies_the_move_and_a_deeper_book_amplifies_less():
    _, _, thin = _run(depth=1e6)
    _, _, deep = _run(depth=1e9)
    assert thin.summary["amplification"][BTC] > deep.summary["amplification"][BTC] >= 1.0 - 1e-9
    assert thin.summary["liquidated_notional"] > deep.summary["liquidated_notional"]
    assert thin.summary["max_loop_gain"] > deep.summary["max_loop_gain"]
    assert not deep.summary["runaway"]


def test_a_large_fund_avoids_adl_and_a_small_one_needs_it():
    _, _, rich = _run(fund=1e12)
    _, _, poor = _run(fund=0.0)
    assert rich.adl.height == 0 and rich.summary["bad_debt"] == 0.0
    assert poor.adl.height > 0 and poor.summary["time_to_first_adl_s"] is not None
    assert poor.summary["adl_counterparties"] == poor.adl_counterparties["position"].n_unique() > 0


def test_same_inputs_same_tables():
    _, _, a = _run(seed=7)
    _, _, b = _run(seed=7)
    for name in a.tables:
        assert a.tables[name].equals(b.tables[name]), name


def test_adl_rules_differ_only_in_allocation_and_queue_overshoots():
    results = {rule: _run(fund=0.0, adl_rule=rule)[2] for rule in ("queue", "pro_rata", "leverage_levelling")}
    assert results["queue"].summary["adl_overshoot"] > 0
    assert results["pro_rata"].summary["adl_overshoot"] == pytest.approx(0.0, abs=1e-6)
    assert results["leverage_levelling"].summary["adl_overshoot"] == pytest.approx(0.0, abs=1e-6)


def _whale_and_winners():
    from backtest.cascade.population import Population

    # one 20x long of 1M USDT notional, and shorts in profit to ADL against
    n = 50
    side = np.array([1] + [-1] * n, dtype=np.int8)
    qty = np.array([10.0] + [0.5] * n)
    entry = np.array([100_000.0] + [101_000.0] * n)
    margin = np.array([50_000.0] + [10_000.0] * n)
    return Population(np.array([BTC] * (n + 1)), side, qty, entry, margin)


def test_hyperliquid_sends_20_percent_of_a_large_position_then_the_rest_after_30_s():
    pop = _whale_and_winners()
    path = shock_path(start_price=100_000.0, seconds=120, drop=0.06, shock_start_s=5, shock_seconds=10, start_ms=T0)
    liquidity = {BTC: LiquidityModel(depth_at_ref=1e9)}
    hl = run_cascade(pop, {BTC: path}, CascadeConfig(venue="hyperliquid", liquidity=liquidity))
    book = hl.fills.filter(pl.col("kind") == "book")
    assert book["qty"].to_list() == pytest.approx([2.0, 8.0])
    gap = (book["ts"][1] - book["ts"][0]).total_seconds()
    assert gap == 30
    bn = run_cascade(pop, {BTC: path}, CascadeConfig(venue="binance_usdm", liquidity=liquidity))
    assert bn.fills.filter(pl.col("kind") == "book")["qty"].to_list() == pytest.approx([10.0])


@pytest.mark.parametrize("venue", ["binance_usdm", "hyperliquid"])
def test_adl_closes_the_bankrupt_inventory_at_the_venues_adl_price(venue):
    pop = _whale_and_winners()
    path = shock_path(start_price=100_000.0, seconds=60, drop=0.08, shock_start_s=5, shock_seconds=5, start_ms=T0)
    # a thin book and a small per-step disposal: inventory is left when the fund runs dry
    result = run_cascade(pop, {BTC: path}, CascadeConfig(venue=venue, insurance_fund=0.0, disposal_cap=50_000.0,
                                                         liquidity={BTC: LiquidityModel(depth_at_ref=1e5)}))
    adl_fills = result.fills.filter(pl.col("kind") == "adl")
    assert adl_fills.height > 0
    bp = result.liquidated_positions["bankruptcy_price"][0]
    if venue == "binance_usdm":
        assert adl_fills["price"].to_numpy() == pytest.approx(bp)
        assert adl_fills["insurance_fund_delta"].to_numpy() == pytest.approx(0.0, abs=1e-6)
    else:
        prices = result.prices.with_columns(pl.col("mark").shift(1).alias("previous"))
        joined = adl_fills.join(prices.select("ts", "previous"), on="ts")
        assert joined["price"].to_numpy() == pytest.approx(joined["previous"].to_numpy())


def _conserved(result, pop, fund_start):
    liq = result.liquidated_positions
    fills = result.fills
    sign = {"long": 1.0, "short": -1.0}
    entry_value = sum(sign[s] * q * e for s, q, e in liq.select("side", "qty", "entry_price").iter_rows())
    exit_value = sum(sign[s] * q * p for s, q, p in fills.select("side", "qty", "price").iter_rows())
    loss = entry_value - exit_value
    margin = float(liq["margin"].sum())
    adl = result.adl
    overshoot = float(adl["overshoot"].sum()) if adl.height else 0.0
    paid = float(adl["paid"].sum()) if adl.height else 0.0
    bad = float(result.bad_debt["amount"].sum()) if result.bad_debt.height else 0.0
    fund_end = float(result.insurance_fund["balance"][-1])
    payers = margin + (fund_start - fund_end + overshoot) + paid + bad
    return loss, payers


@settings(max_examples=25, deadline=None)
@given(n=st.integers(20, 600), seed=st.integers(0, 10_000), drop=st.floats(-0.15, 0.2),
       fund=st.sampled_from([0.0, 1e4, 1e6]), depth=st.sampled_from([2e5, 3.5e6, 1e8]),
       venue=st.sampled_from(["binance_usdm", "bybit", "bitmex", "hyperliquid"]),
       rule=st.sampled_from(["queue", "pro_rata", "leverage_levelling"]),
       cap=st.sampled_from([float("inf"), 2e5]))
def test_every_liquidation_loss_is_paid_by_margin_fund_adl_or_bad_debt(n, seed, drop, fund, depth, venue, rule, cap):
    pop = synthetic_population(n, seed=seed, prices={BTC: 50_000.0, "ETH/USDT:USDT": 3_000.0},
                               prior="binance_2019")
    paths = {s: shock_path(start_price=p, seconds=120, drop=drop, shock_start_s=5, shock_seconds=30, start_ms=T0)
             for s, p in ((BTC, 50_000.0), ("ETH/USDT:USDT", 3_000.0))}
    liquidity = {s: LiquidityModel(depth_at_ref=depth) for s in paths}
    result = run_cascade(pop, paths, CascadeConfig(venue=venue, adl_rule=rule, insurance_fund=fund,
                                                   liquidity=liquidity, disposal_cap=cap))
    loss, payers = _conserved(result, pop, fund)
    assert loss == pytest.approx(payers, rel=1e-9, abs=1e-6)
    assert (result.insurance_fund["balance"] >= 0).all()
    # every taken-over unit left the engine (book, ADL or the end valuation)
    liq, fills = result.liquidated_positions, result.fills
    assert float(fills["qty"].sum()) == pytest.approx(float(liq["qty"].sum()), rel=1e-9, abs=1e-9)


def test_result_folder_is_written_whole_with_duckdb_views(tmp_path):
    _, _, result = _run(fund=0.0)
    out = result.write(tmp_path / "cascade")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["summary"]["liquidated_positions"] == result.summary["liquidated_positions"]
    con = duckdb.connect(str(out / "results.duckdb"), read_only=True)
    try:
        n = con.execute("SELECT count(*) FROM liquidated_positions").fetchone()[0]
        buckets = con.execute("SELECT sum(positions) FROM liquidations").fetchone()[0]
    finally:
        con.close()
    assert n == buckets == result.summary["liquidated_positions"]
    with pytest.raises(RunFolderError, match="--overwrite"):
        result.write(out)
    assert result.write(out, overwrite=True) == out


def test_population_without_a_path_is_a_clear_error():
    pop = synthetic_population(10, seed=0, prices={BTC: 100.0})
    path = shock_path(start_price=100.0, seconds=10, drop=0.0)
    with pytest.raises(CascadeError, match="no exogenous path for BTC/USDT:USDT"):
        run_cascade(pop, {"ETH/USDT:USDT": path})
    with pytest.raises(CascadeError, match="ADL rule 'fifo'"):
        CascadeConfig(adl_rule="fifo")


def test_rules_compared_on_the_same_deficits_without_changing_the_run():
    _, _, plain = _run(fund=0.0)
    _, _, compared = _run(fund=0.0, compare_adl_rules=True)
    for name in plain.tables:
        if name != "adl_comparison":
            assert plain.tables[name].equals(compared.tables[name]), name
    table = compared.adl_comparison
    assert table.height == 3 * compared.adl.height > 0
    applied = table.filter(pl.col("applied")).sort("round")
    assert applied["rule"].unique().to_list() == ["queue"]
    assert applied["overshoot"].to_list() == compared.adl["overshoot"].to_list()
    # one deficit per round, shared by the three rules
    assert table.group_by("round").agg(pl.col("deficit").n_unique())["deficit"].max() == 1
    totals = compared.summary["adl_rule_comparison"]
    assert totals["pro_rata"]["overshoot"] == pytest.approx(0.0, abs=1e-6)
    assert totals["queue"]["overshoot"] > 0
    assert totals["leverage_levelling"]["max_leverage_after"] <= totals["pro_rata"]["max_leverage_after"] + 1e-9


def test_a_winner_closed_in_full_by_adl_is_not_liquidated_later():
    from backtest.cascade.paths import ExogenousPath
    from backtest.cascade.population import Population

    # big 50x longs whose bankrupt fills in a thin book cost more than the 20x shorts' profit:
    # pro-rata ADL closes every short in full; the rally then passes the shorts' LPs
    side = np.array([1] * 5 + [-1] * 5, dtype=np.int8)
    qty = np.array([20.0] * 5 + [0.1] * 5)
    entry = np.full(10, 100_000.0)
    margin = qty * entry / np.where(side > 0, 50.0, 20.0)
    pop = Population(np.array([BTC] * 10), side, qty, entry, margin)
    t = np.arange(180)
    price = 100_000.0 * np.where(t < 30, 1 - 0.05 * t / 30, 0.95 + 0.20 * np.clip((t - 30) / 60, 0, 1))
    path = ExogenousPath(T0 + t.astype(np.int64) * 1000, price)
    result = run_cascade(pop, {BTC: path}, CascadeConfig(
        insurance_fund=0.0, adl_rule="pro_rata",
        liquidity={BTC: LiquidityModel(permanent_fraction=0.0, refill_half_life_s=5.0)}))
    closed = result.adl_counterparties.group_by("position").agg(pl.col("qty_closed").sum())
    assert sorted(closed["position"].to_list()) == [5, 6, 7, 8, 9]
    assert closed["qty_closed"].to_numpy() == pytest.approx(0.1)  # closed in full
    assert result.prices["mark"].max() > 105_000.0  # above every short's liquidation price
    liq = result.liquidated_positions
    assert liq["position"].to_list() == [0, 1, 2, 3, 4]
    assert (liq["qty"] > 0).all()
