"""Cross-margin accounts in the cascade engine: an account is flagged whole when its equity at
every symbol's mark falls to its summed maintenance, its legs settle at the bankruptcy prices
of the allocated wallet, and the money identity still holds to 1e-9."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from backtest.cascade.engine import CascadeConfig, run_cascade
from backtest.cascade.paths import ExogenousPath, shock_path
from backtest.cascade.population import Population, read_population, synthetic_population, with_cross_accounts
from backtest.platform.params import default_venue
from backtest.platform.run import run_platform
from backtest.platform.scenarios import ScenarioSetup, build_scenarios

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
START = 1_760_130_000_000


def _account(btc_margin: float = 5_000.0, eth_margin: float = 2_000.0) -> Population:
    # one account: long 1 BTC at 100,000 and short 10 ETH at 4,000; wallet 7,000
    return Population(np.array([BTC, ETH]), np.array([1, -1], dtype=np.int8), np.array([1.0, 10.0]),
                      np.array([100_000.0, 4_000.0]), np.array([btc_margin, eth_margin]),
                      np.array([0, 0], dtype=np.int64))


def _paths(seconds: int = 400) -> dict[str, ExogenousPath]:
    return {BTC: shock_path(start_price=100_000.0, seconds=seconds, drop=0.10, shock_start_s=10, shock_seconds=300,
                            start_ms=START),
            ETH: ExogenousPath(START + np.arange(seconds, dtype=np.int64) * 1000, np.full(seconds, 4_000.0))}


def test_account_is_flagged_on_its_equity_against_summed_maintenance():
    paths = _paths()
    result = run_cascade(_account(), paths, CascadeConfig(insurance_fund=1e6))
    liq = result.tables["liquidated_positions"]
    assert liq["position"].to_list() == [0, 1]  # both legs, the flat ETH short too
    assert liq["ts"].n_unique() == 1
    # by hand: BTC notional ~95k is in bracket 2 (0.5 %, cum 50), ETH 40k in bracket 1 (0.4 %):
    # 7,000 + (p - 100,000) <= 0.005 p - 50 + 0.004 * 40,000  ->  p <= 93,110 / 0.995
    threshold = (100_000.0 - 7_000.0 - 50.0 + 160.0) / 0.995
    price = paths[BTC].price
    expected = int(np.argmax(price <= threshold))
    assert liq["ts"][0].timestamp() * 1000 == paths[BTC].ts[expected]
    # isolated, the BTC leg alone (5,000 margin) would have gone at (5,000 + 50 - 100,000) / (0.005 - 1)
    isolated = Population(np.array([BTC]), np.array([1], dtype=np.int8), np.array([1.0]), np.array([100_000.0]),
                          np.array([5_000.0]))
    alone = run_cascade(isolated, {BTC: paths[BTC]}, CascadeConfig(insurance_fund=1e6))
    assert alone.tables["liquidated_positions"]["ts"][0] < liq["ts"][0]  # the ETH leg's wallet share held it longer
    # the legs' bankruptcy prices spend exactly the wallet, split by notional at the take-over marks
    mark_btc, mark_eth = liq["mark_price"].to_list()
    share_btc = mark_btc / (mark_btc + 10 * mark_eth)
    assert liq["margin"].to_list() == pytest.approx([7_000.0 * share_btc, 7_000.0 * (1 - share_btc)], rel=1e-12)
    assert liq["bankruptcy_price"][0] == pytest.approx(100_000.0 - 7_000.0 * share_btc, rel=1e-12)
    assert liq["bankruptcy_price"][1] == pytest.approx(4_000.0 + 7_000.0 * (1 - share_btc) / 10, rel=1e-12)
    assert liq["liquidation_price"].is_nan().all()  # a cross leg has no price of its own
    s = result.summary
    assert s["margin_lost"] == pytest.approx(7_000.0, rel=1e-12)
    assert abs(s["conservation_residual"]) <= 1e-9 * s["liquidation_loss"]


def test_a_hedged_account_is_never_flagged():
    hedge = Population(np.array([BTC, BTC]), np.array([1, -1], dtype=np.int8), np.array([1.0, 1.0]),
                       np.array([100_000.0, 100_000.0]), np.array([500.0, 500.0]), np.array([7, 7], dtype=np.int64))
    result = run_cascade(hedge, {BTC: _paths()[BTC]}, CascadeConfig())
    assert result.tables["liquidated_positions"].height == 0  # isolated at 1 % margin both would die on -10 %/+10 %


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conservation_with_cross_accounts_in_a_crash(seed: int):
    prices = {BTC: 112_000.0, ETH: 4_300.0}
    base = synthetic_population(4000, seed=seed, prices=prices, prior="binance_2019")
    pop = with_cross_accounts(base, share=0.6, legs=3, seed=seed)
    paths = {s: shock_path(start_price=p, seconds=300, drop=0.12, start_ms=START) for s, p in prices.items()}
    result = run_cascade(pop, paths, CascadeConfig(insurance_fund=2e5))
    s = result.summary
    liq = result.tables["liquidated_positions"]
    cross_rows = set(np.flatnonzero(pop.cross).tolist())
    taken = set(liq["position"].to_list())
    assert taken & cross_rows and taken - cross_rows
    assert s["bad_debt"] > 0 or s["adl_notional"] > 0
    assert abs(s["conservation_residual"]) <= 1e-9 * s["liquidation_loss"]
    # accounts go whole: every liquidated cross row's account has all its rows liquidated at one time
    by_account = pl.DataFrame({"position": np.flatnonzero(pop.cross), "account": pop.account[pop.cross]})
    joined = by_account.join(liq.select("position", "ts"), on="position", how="left")
    per_account = joined.group_by("account").agg(pl.col("ts").null_count().alias("open"), pl.len().alias("legs"),
                                                 pl.col("ts").n_unique().alias("times"))
    assert ((per_account["open"] == 0) | (per_account["open"] == per_account["legs"])).all()
    assert (per_account.filter(pl.col("open") == 0)["times"] == 1).all()


def test_population_file_with_cross_accounts(tmp_path: Path):
    csv = tmp_path / "pop.csv"
    pl.DataFrame({"symbol": [BTC, ETH, BTC], "side": ["long", "short", "long"], "qty": [1.0, 10.0, 1.0],
                  "entry_price": [100_000.0, 4_000.0, 100_000.0], "margin": [5_000.0, 2_000.0, 5_000.0],
                  "margin_mode": ["cross", "cross", "isolated"], "account": ["alice", "alice", None]}).write_csv(csv)
    pop = read_population(csv)
    assert pop.account.tolist() == [0, 0, -1] and pop.cross.tolist() == [True, True, False]
    result = run_cascade(pop, _paths(), CascadeConfig())
    liq = result.tables["liquidated_positions"].sort("position")
    assert liq["position"].to_list() == [0, 1, 2]
    assert liq.filter(pl.col("position") == 2)["ts"][0] < liq.filter(pl.col("position") == 0)["ts"][0]


def test_platform_scenarios_with_cross_accounts_conserve():
    prices = {BTC: 112_000.0, ETH: 4_300.0}
    pop = with_cross_accounts(synthetic_population(2000, seed=9, prices=prices, prior="binance_2019"), share=0.5)
    result = run_platform(pop, default_venue(insurance_fund=1e5), build_scenarios(shocks=[0.05, 0.15]),
                          ScenarioSetup(prices, seconds=240), workers=1)
    runs = result.tables["scenarios"]
    assert (runs["liquidated_positions"] > 0).all()
    assert ((runs["conservation_residual"].abs() / runs["liquidation_loss"]) <= 1e-9).all()
