"""The platform view's machinery: tail figures on known distributions, the bracket
recommendation against the stressed loss it was built from, conservation per scenario,
determinism across executors, venue parameters from TOML, the open-interest estimator and
Monte Carlo paths as cascade input."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.cascade.errors import PopulationError
from backtest.cascade.liquidity import LiquidityModel, default_liquidity
from backtest.cascade.paths import montecarlo_paths
from backtest.cascade.population import LEVERAGE_PRIORS, population_from_open_interest, synthetic_population
from backtest.platform.distribution import expected_shortfall, percentile, tail_summary
from backtest.platform.params import PlatformError, default_venue, load_venue
from backtest.platform.recommend import StressedLoss, fund_size, position_cap, recommend_brackets
from backtest.platform.run import run_platform
from backtest.platform.scenarios import ScenarioSetup, build_scenarios
from backtest.risk.paths import GBM

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
PRICES = {BTC: 112_000.0, ETH: 4_300.0}


# ---- tail figures --------------------------------------------------------------------------
def test_percentile_and_expected_shortfall_of_1_to_100():
    values = np.arange(1, 101, dtype=float)[::-1]  # order must not matter
    # type-7 quantile: position 0.95 * 99 = 94.05 -> 95 + 0.05 * (96 - 95)
    assert percentile(values, 0.95) == pytest.approx(95.05)
    assert percentile(values, 0.99) == pytest.approx(99.01)
    # worst ceil(100 * 0.05) = 5 values: 96..100 -> 98; worst 1 -> 100
    assert expected_shortfall(values, 0.95) == pytest.approx(98.0)
    assert expected_shortfall(values, 0.99) == pytest.approx(100.0)
    summary = tail_summary(values)
    assert summary["mean"] == pytest.approx(50.5) and summary["max"] == 100.0


def test_expected_shortfall_of_an_exponential_sample_is_var_plus_the_mean():
    # memoryless: E[X | X > VaR_q] = VaR_q + 1/lambda, VaR_q = -ln(1 - q) / lambda
    sample = np.random.default_rng(7).exponential(scale=2.0, size=400_000)
    for q in (0.95, 0.99):
        var = -math.log(1 - q) * 2.0
        assert percentile(sample, q) == pytest.approx(var, rel=0.02)
        assert expected_shortfall(sample, q) == pytest.approx(var + 2.0, rel=0.02)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=300), st.sampled_from([0.9, 0.95, 0.99]))
def test_expected_shortfall_lies_between_the_percentile_and_the_maximum(values, q):
    es, p = expected_shortfall(values, q), percentile(values, q)
    assert es <= max(values) + 1e-6 * (1 + abs(max(values)))
    assert es >= p - 1e-6 * (1 + abs(p))


# ---- brackets --------------------------------------------------------------------------------
def test_recommended_bracket_covers_the_stressed_loss_it_was_built_from():
    model = LiquidityModel(depth_at_ref=3.5e6, ref_distance=0.001, exponent=0.674)
    loss = StressedLoss(model, multiplier=0.25, fee=0.005, sigma_1s=0.001, confidence=0.99, step_s=1.0)
    floors = [0.0, 50_000.0, 600_000.0, 3_000_000.0, 12_000_000.0]
    table = recommend_brackets(floors, loss)
    z = 2.3263478740408408  # standard normal 99 % quantile
    for notional in (10_000.0, 50_000.0, 200_000.0, 600_000.0, 1_500_000.0, 3_000_000.0, 8e6):
        # stressed sweep of N at once: dbar = k a/(a+1) N^(1/a), k = (m D0)^(-1/a) d0
        a = 0.674
        k = (0.25 * 3.5e6) ** (-1 / a) * 0.001
        slippage = k * a / (a + 1) * notional ** (1 / a)
        drift = z * 0.001 * math.sqrt(1.0)  # one step of disposal
        stressed_loss = notional * (slippage + 0.005 + drift)
        if notional >= table.tiers[-1].cap:
            continue
        assert table.maintenance_margin(notional) >= stressed_loss * (1 - 1e-9), notional
    rates = [t.mmr for t in table.tiers]
    assert rates == sorted(rates) and table.tiers[0].mmr >= 0.005 + 0.001 * z
    # tight, not padded: at the first bracket's cap the margin is within a basis point of the loss
    cap = table.tiers[0].cap
    assert table.maintenance_margin(cap) <= cap * (loss.rate(cap) + 1e-4) + 1e-6
    # Binance's continuity recursion holds (the TierTable validates it) and leverage follows IMR = 2 MMR
    assert all(t.max_leverage == max(1.0, math.floor(1 / (2 * t.mmr))) for t in table.tiers)


def test_position_cap_is_where_the_stressed_loss_reaches_max_mmr():
    loss = StressedLoss(default_liquidity(BTC), multiplier=0.1, fee=0.0125, sigma_1s=0.002, confidence=0.99)
    cap = position_cap(loss, 0.5)
    assert loss.rate(cap) <= 0.5 < loss.rate(cap * 1.001)
    table = recommend_brackets([0.0, 1e6, 1e12], loss)
    end = table.tiers[-1].cap
    assert len(table.tiers) == 2 and 1e6 < end <= cap * (1 + 1e-9)
    assert table.maintenance_margin(end) >= end * loss.rate(end) * (1 - 1e-9)  # covered up to its end
    assert table.tiers[-1].mmr <= 0.5


def test_fund_size_quantile_and_bad_targets():
    need = np.arange(100, dtype=float)
    assert fund_size(need, 0.05) == pytest.approx(percentile(need, 0.95))
    with pytest.raises(PlatformError, match="target ADL probability"):
        fund_size(need, 0.0)
    loss = StressedLoss(default_liquidity(BTC), multiplier=0.5, fee=0.0, sigma_1s=0.001, confidence=0.99)
    with pytest.raises(PlatformError, match="strictly increasing"):
        recommend_brackets([10.0, 5.0], loss)
    with pytest.raises(PlatformError, match="confidence"):
        StressedLoss(default_liquidity(BTC), multiplier=0.5, fee=0.0, sigma_1s=0.001, confidence=1.5)


# ---- runs -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_run():
    population = synthetic_population(3000, seed=4, prices=PRICES, prior="binance_2019")
    scenarios = build_scenarios(shocks=[0.04, 0.12], montecarlo=3, mc_seed=2, depth_scales=[1.0, 0.3])
    setup = ScenarioSetup(PRICES, seconds=300, shock_seconds=120, model=GBM(0.006, step_ms=60_000))
    venue = default_venue(insurance_fund=2e6)
    return population, scenarios, setup, venue, run_platform(population, venue, scenarios, setup, workers=1)


def test_conservation_holds_in_every_scenario(small_run):
    *_, result = small_run
    runs = result.tables["scenarios"]
    assert runs.height == 10 and (runs["liquidated_positions"] > 0).all()
    assert (runs["bad_debt"] > 0).any() and (runs["adl"] == 1).any()  # the tails are exercised
    for row in runs.iter_rows(named=True):
        assert abs(row["conservation_residual"]) <= 1e-9 * row["liquidation_loss"], row["name"]
        assert row["fund_drawdown"] <= 2e6 + 1e-6
        # what the fund lacked was met by ADL or left as bad debt
        if row["fund_needed"] > 2e6 * (1 + 1e-9):
            assert row["adl_paid"] + row["bad_debt"] > 0


def test_distributions_are_the_tail_figures_of_the_scenario_rows(small_run):
    *_, result = small_run
    runs, dist = result.tables["scenarios"], result.tables["distributions"]
    for metric in ("bad_debt", "fund_drawdown", "liquidated_value"):
        row = dist.filter(pl.col("metric") == metric).row(0, named=True)
        values = runs[metric].to_numpy()
        assert row["p99"] == pytest.approx(np.quantile(values, 0.99))
        assert row["es95"] == pytest.approx(np.sort(values)[-1])  # ceil(10 * 0.05) = 1 worst value
    assert result.summary["adl_probability"] == pytest.approx(runs["adl"].mean())


def test_local_pool_and_serial_give_identical_tables(small_run):
    population, scenarios, setup, venue, serial = small_run
    pooled = run_platform(population, venue, scenarios, setup, workers=2, chunk_size=3)
    for name in ("scenarios", "scenario_symbols", "distributions"):
        assert pooled.tables[name].equals(serial.tables[name]), name
    again = run_platform(population, venue, list(reversed(scenarios)), setup, workers=1)
    assert again.tables["scenarios"].equals(serial.tables["scenarios"])  # order of submission does not matter


def test_recommendations_and_the_folder(small_run, tmp_path: Path):
    import duckdb

    _, _, setup, venue, result = small_run
    result.recommend(venue, setup, confidence=0.95, adl_probability=0.1)
    brackets = result.tables["brackets"]
    assert set(brackets["symbol"]) == {BTC, ETH}
    for symbol in (BTC, ETH):
        rows = brackets.filter(pl.col("symbol") == symbol)
        assert (rows["maint_margin_rate"].diff().drop_nulls() >= 0).all()
        # each bracket's cap carries at least its stressed loss
        for r in rows.iter_rows(named=True):
            mm = r["notional_cap"] * r["maint_margin_rate"] - r["maint_amount"]
            assert mm >= r["notional_cap"] * r["stressed_loss_rate_at_cap"] * (1 - 1e-9)
    recs = {(r["symbol"], r["item"]): r["value"] for r in result.tables["recommendations"].iter_rows(named=True)}
    need = result.tables["scenarios"]["fund_needed"].to_numpy()
    assert recs[("all", "insurance_fund_recommended")] == pytest.approx(np.quantile(need, 0.9))
    folder = result.write(tmp_path / "pf")
    con = duckdb.connect(str(folder / "results.duckdb"), read_only=True)
    try:
        n = con.execute("SELECT count(*) FROM scenarios").fetchone()[0]
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    finally:
        con.close()
    assert n == 10 and {"scenarios", "distributions", "brackets", "recommendations"} <= views
    import json

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["packages"] and manifest["rule_versions"]["rule_set"] == "binance_usdm"
    assert len(manifest["scenarios"]) == 10 and manifest["venue"]["insurance_fund"] == 2e6


def test_leverage_above_the_venue_maximum_is_capped():
    population = synthetic_population(500, seed=1, prices={BTC: 100_000.0}, prior="binance_2019")
    venue = default_venue(max_leverage=20.0)
    capped = venue.cap_leverage(population)
    assert capped.leverage.max() <= 20.0 + 1e-9 and population.leverage.max() > 20.0
    kept = population.leverage <= 20.0
    assert np.array_equal(capped.margin[kept], population.margin[kept])


# ---- inputs ---------------------------------------------------------------------------------
def test_venue_parameters_from_toml(tmp_path: Path):
    path = tmp_path / "venue.toml"
    path.write_text('venue = "binance_usdm"\ninsurance_fund = 1e7\nliquidation_fee = 0.01\n'
                    'disposal_cap = 2e6\n[tiers."BTC/USDT:USDT"]\nfloors = [0, 100000]\nmmr = [0.01, 0.02]\n')
    venue = load_venue(path)
    assert venue.insurance_fund == 1e7 and venue.disposal_cap == 2e6
    table = venue.tier_table(BTC, 0)
    assert [t.mmr for t in table.tiers] == [0.01, 0.02] and table.tiers[1].cum == pytest.approx(1000.0)
    assert venue.tier_table(ETH, 1_760_130_000_000).tiers[0].mmr == 0.004  # not overridden: the venue's own
    path.write_text("insurance_fnd = 1\n")
    with pytest.raises(PlatformError, match="insurance_fnd.*did you mean 'insurance_fund'"):
        load_venue(path)
    path.write_text('adl_rule = "fifo"\n')
    with pytest.raises(PlatformError, match="ADL rule 'fifo'"):
        load_venue(path)
    path.write_text('[tiers."BTC/USDT:USDT"]\nfloors = [0, 10]\nmmr = [0.01]\n')
    with pytest.raises(PlatformError, match="one rate per floor"):
        load_venue(path)
    with pytest.raises(PlatformError, match="no such file"):
        load_venue(tmp_path / "missing.toml")


def test_open_interest_population_matches_the_oi_and_the_prior():
    pop = population_from_open_interest({BTC: 2e9, ETH: 5e8}, seed=3, prices=PRICES, mean_notional=50_000.0)
    for symbol, oi in ((BTC, 2e9), (ETH, 5e8)):
        rows = pop.symbol == symbol
        assert float((pop.qty[rows] * PRICES[symbol]).sum()) == pytest.approx(oi, rel=1e-12)
    # OI share by leverage level approaches the prior (36 % at <= 3x, 49 % at 5x, 15 % above)
    prior = LEVERAGE_PRIORS["hyperliquid_2025_12"]
    notional = pop.qty * np.array([PRICES[s] for s in pop.symbol])
    low = notional[pop.leverage <= 3.0 + 1e-9].sum() / notional.sum()
    assert low == pytest.approx(prior[2.0] + prior[3.0], abs=0.06)
    same = population_from_open_interest({BTC: 2e9, ETH: 5e8}, seed=3, prices=PRICES, mean_notional=50_000.0)
    assert np.array_equal(same.qty, pop.qty)
    with pytest.raises(PopulationError, match="open interest of BTC"):
        population_from_open_interest({BTC: -1.0}, seed=0, prices=PRICES)


def test_montecarlo_paths_follow_the_model_and_the_seed():
    model = GBM(0.003, step_ms=60_000)
    a = montecarlo_paths(model, seed=5, start_prices={BTC: 100.0, ETH: 10.0}, seconds=600)
    b = montecarlo_paths(model, seed=5, start_prices={BTC: 100.0, ETH: 10.0}, seconds=600)
    c = montecarlo_paths(model, seed=6, start_prices={BTC: 100.0, ETH: 10.0}, seconds=600)
    assert np.array_equal(a[BTC].price, b[BTC].price) and not np.array_equal(a[BTC].price, c[BTC].price)
    assert len(a[BTC].ts) == 600 and a[BTC].price[0] == pytest.approx(100.0)
    # same log returns for every symbol from its own start
    assert np.allclose(np.diff(np.log(a[BTC].price)), np.diff(np.log(a[ETH].price)))
    # each minute opens at the previous minute's simulated close: the candle walk passes through it
    sim = model.simulate(np.random.default_rng(5), n_paths=1, n_steps=10, s0=100.0)
    assert a[BTC].price[120] == pytest.approx(math.exp(sim.log_close[0][2]), rel=1e-6)


def test_scenario_set_errors():
    with pytest.raises(PlatformError, match="no scenario"):
        build_scenarios()
    with pytest.raises(PlatformError, match="depth scale"):
        build_scenarios(shocks=[0.1], depth_scales=[0.0])
    with pytest.raises(PlatformError, match="fall fraction"):
        build_scenarios(shocks=[1.5])
    pop = synthetic_population(100, seed=0, prices={BTC: 100_000.0})
    with pytest.raises(PlatformError, match="return model"):
        run_platform(pop, default_venue(), build_scenarios(montecarlo=2), ScenarioSetup({BTC: 1e5}), workers=1)
    with pytest.raises(PlatformError, match="no start price for BTC"):
        run_platform(pop, default_venue(), build_scenarios(shocks=[0.1]), ScenarioSetup({ETH: 1e3}), workers=1)
