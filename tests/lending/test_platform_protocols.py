"""The lending platform view across protocols: Compound v3 and Maker parameter sets through the
protocols' own simulations, the scenario set of the perpetuals' platform view (stored windows,
shocks, Monte Carlo paths of montecarlo_paths), the executor (same tables serially and on the
local pool), the per-protocol recommendation, and the command line with its page."""
from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.lending.auctions import Keeper, run_auctions
from backtest.lending.comet_simulation import CometConfig, simulate_comet
from backtest.lending.errors import LendingParameterError
from backtest.lending.paths import candle_path
from backtest.lending.platform import ParameterSet, parse_grid
from backtest.lending.platform_run import PlatformSetup, lending_scenarios, run_lending_platform
from backtest.lending.platform_sets import CometSet, MakerSet, RunContext, comet_grid
from backtest.lending.simulation import PositionBook, SimulationConfig, generate_positions
from backtest.platform.scenarios import ScenarioSetup
from backtest.risk.paths import GBM

KEEPER = Keeper("keeper", math.inf, 0.05)


def test_comet_sets_follow_the_configurator_and_run_through_simulate_comet(black_thursday_bars):
    with pytest.raises(LendingParameterError, match="borrow_collateral_factor <= liquidate"):
        CometSet("bad", borrow_cf=0.9, liquidate_cf=0.85, liquidation_factor=0.95)
    sets = comet_grid({"borrow_cf": [0.8, 0.9], "liquidate_cf": [0.85],
                       "liquidation_factor": [0.95]})
    assert [s.borrow_cf for s in sets] == [0.8]          # borrowCF 0.9 > liquidateCF 0.85 skipped
    params = CometSet("c", borrow_cf=0.8, liquidate_cf=0.85, liquidation_factor=0.93,
                      store_front_price_factor=0.5)
    coll, debt = np.array([1.0, 2.0]), np.array([500.0, 3000.0])
    # the borrowing limit by hand: 1 x 1000 x 0.8 = 800 (500 stays), 2 x 1000 x 0.8 = 1600
    assert params.admit(coll, debt, 1000.0)[1].tolist() == [500.0, 1600.0]
    times, prices = candle_path(black_thursday_bars, step=300.0)
    base = generate_positions(300, seed=3, price=float(prices[0]), liquidation_threshold=0.9,
                              health_factor_range=(1.02, 1.6))
    c, d = params.admit(base.collateral, base.debt, float(prices[0]))
    ctx = RunContext(SimulationConfig(gas_cost=5.0), depth_quote=2e6)
    row = params.run(c, d, times, prices, ctx, 1.0)
    # one definition: the same numbers as the protocol simulation called directly
    direct = simulate_comet(PositionBook(c, d, 0.85, 2 - 0.93), times, prices,
                            ctx.venue(float(prices[0])),
                            CometConfig(store_front_price_factor=0.5, gas_cost=5.0)).summary
    assert row["bad_debt"] == direct["deficit"] and row["liquidations"] == direct["liquidations"]
    assert row["liquidations"] > 0


def _open_tab_peak(auctions: pl.DataFrame) -> float:
    """Largest sum of the tabs of auctions open at one time (kicked, not yet settled)."""
    kicked = auctions["kicked"].to_numpy()
    settled = auctions["settled"].fill_nan(np.inf).to_numpy()
    tabs = auctions["tab"].to_numpy()
    return max(float(tabs[(kicked <= t) & (settled > t)].sum()) for t in kicked)


def test_maker_sets_limit_by_mat_and_the_dogs_hole(black_thursday_bars):
    m = MakerSet("m", mat=1.5, chop=1.13)
    # vat.frob: a vault draws at most ink x price / mat
    assert m.admit(np.array([1.0]), np.array([900.0]), 1200.0)[1].tolist() == [800.0]
    with pytest.raises(LendingParameterError, match="mat"):
        MakerSet("bad", mat=0.9, chop=1.13)
    with pytest.raises(LendingParameterError, match="cusp"):
        MakerSet("bad", mat=1.5, chop=1.13, cusp=1.5)
    times, prices = candle_path(black_thursday_bars, step=60.0)
    base = generate_positions(200, seed=1, price=float(prices[0]), liquidation_threshold=1 / 1.5,
                              health_factor_range=(1.02, 1.5))
    vaults = pl.DataFrame({"collateral": base.collateral, "debt": base.debt,
                           "liquidation_threshold": 1 / 1.5, "liquidation_bonus": 1.13})
    gas = np.full(times.size, 20.0)
    free = run_auctions(vaults, times, prices, gas, [KEEPER], m.auction_params())
    hole = 0.1 * float(free.auctions["tab"].sum())
    held = run_auctions(vaults, times, prices, gas, [KEEPER],
                        MakerSet("h", mat=1.5, chop=1.13, hole=hole).auction_params())
    # the Dog never lets more than `hole` of tabs be auctioned at once (takes buy whole lots)
    assert _open_tab_peak(free.auctions) > hole
    assert _open_tab_peak(held.auctions) <= hole * (1 + 1e-9)
    assert held.summary["debt_liquidated"] <= free.summary["debt_liquidated"] + 1e-6
    # the platform run of the set is that auction run (bad debt as the study counts it)
    ctx = RunContext(SimulationConfig(), keepers=(KEEPER,), gas_gwei=20.0, maker_step=60.0)
    row = m.run(base.collateral, base.debt, times, prices, ctx, 1.0)
    assert row["liquidations"] == free.summary["auctions"]
    assert row["bad_debt"] == pytest.approx(free.summary["deficit"])


def test_grid_keys_per_protocol() -> None:
    sets = parse_grid(["lt=0.8", "bonus=1.05", "comet.borrow_cf=0.8,0.85",
                       "comet.liquidate_cf=0.9", "comet.liquidation_factor=0.95",
                       "maker.mat=1.45,1.5", "maker.chop=1.13", "maker.Hole=1e6"])
    assert [s.protocol for s in sets] == ["aave_v3"] + ["compound_v3"] * 2 + ["maker"] * 2
    assert {s.global_hole for s in sets if s.protocol == "maker"} == {1e6}
    with pytest.raises(LendingParameterError, match="did you mean 'maker.mat'"):
        parse_grid(["maker.matt=1.5"])
    with pytest.raises(LendingParameterError, match="expected values for borrow_cf"):
        parse_grid(["comet.liquidate_cf=0.9", "comet.liquidation_factor=0.95"])


def _setup(prices: np.ndarray, times: np.ndarray, moves: dict, **kw) -> PlatformSetup:
    generated = ScenarioSetup({"ETH": float(prices[0])}, seconds=6 * 3600,
                              start_ms=int(times[0] * 1000), step_s=300.0, shock_start_s=3600,
                              shock_seconds=3600, model=GBM(0.004, step_ms=60_000))
    ctx = RunContext(SimulationConfig(gas_cost=20.0), depth_quote=5e7, keepers=(KEEPER,))
    return PlatformSetup("ETH", ctx, positions=300, seeds=(0, 1), scenario=generated,
                         move_depths=moves, **kw)


@pytest.fixture(scope="module")
def platform(black_thursday_bars):
    from backtest.cascade.paths import montecarlo_paths

    times, prices = candle_path(black_thursday_bars, step=300.0)
    scenarios, moves = lending_scenarios(symbol="ETH", times=times, prices=prices,
                                         move_depths=[1.0, 1.5], shocks=[0.4], montecarlo=3,
                                         mc_seed=2)
    sets = [ParameterSet("aave-a", 0.825, 1.05), ParameterSet("aave-b", 0.78, 1.075,
                                                              borrow_cap=0.5),
            CometSet("comet-a", 0.8, 0.85, 0.95), MakerSet("maker-a", 1.5, 1.13),
            MakerSet("maker-b", 1.5, 1.13, tip=0.0, chip=0.0)]
    setup = _setup(prices, times, moves)
    result = run_lending_platform(sets, scenarios, setup, workers=1, min_efficiency=0.9)
    return result, scenarios, sets, setup, montecarlo_paths


def test_scenarios_are_the_platform_views_windows_shocks_and_monte_carlo(platform) -> None:
    result, scenarios, sets, setup, montecarlo_paths = platform
    assert [s.kind for s in scenarios] == ["window"] * 2 + ["shock"] + ["montecarlo"] * 3
    runs = result.runs
    assert runs.height == len(scenarios) * len(sets) * 2
    by_id = runs.group_by("scenario_id").agg(pl.col("path_low").first(),
                                             pl.col("move_depth").first()).sort("scenario_id")
    p0 = setup.scenario.start_prices["ETH"]
    # the shock falls 40 % (to 0.6 x the start); a window at depth 1.5 falls deeper than at 1
    assert by_id["path_low"][2] == pytest.approx(0.6 * p0)
    assert by_id["move_depth"].to_list()[:2] == [1.0, 1.5]
    assert by_id["path_low"][1] < by_id["path_low"][0]
    # the Monte Carlo paths are the perpetual view's montecarlo_paths of the same seeds
    for sc in scenarios[3:]:
        path = montecarlo_paths(setup.scenario.model, seed=sc.seed, start_prices={"ETH": p0},
                                seconds=setup.scenario.seconds, start_ms=setup.scenario.start_ms,
                                step_s=300.0)["ETH"]
        assert by_id["path_low"][sc.scenario_id] == pytest.approx(float(path.price.min()))


def test_tails_and_one_recommendation_per_protocol(platform) -> None:
    result = platform[0]
    s = result.summary
    assert s["protocol"].to_list() == ["aave_v3"] * 2 + ["compound_v3"] + ["maker"] * 2
    for row in s.iter_rows(named=True):
        assert row["p95"] <= row["p99"] + 1e-9 <= row["worst"] + 2e-9
        assert row["es99"] >= row["p99"] - 1e-9 and row["es95"] >= row["p95"] - 1e-9
        mine = result.runs.filter(pl.col("parameter_set") == row["parameter_set"])
        assert row["mean"] == pytest.approx(mine["bad_debt"].mean())
    by = {r["parameter_set"]: r for r in s.iter_rows(named=True)}
    assert not by["aave-b"]["meets_efficiency"]           # LTV cap 0.5 serves less than 90 %
    assert by["aave-a"]["recommended"]                   # the only Aave set serving >= 90 %
    assert s.filter("recommended")["protocol"].to_list() == ["aave_v3", "compound_v3", "maker"]
    # Maker: keeper incentives (tip + chip) are counted as bad debt; the same ilk without them
    # has less of it and is the recommended Maker set
    assert by["maker-b"]["mean"] < by["maker-a"]["mean"] and by["maker-b"]["recommended"]
    assert result.by_kind.height == len(s) * 3
    assert set(result.by_kind["kind"]) == {"window", "shock", "montecarlo"}


def test_the_local_pool_gives_the_same_tables(platform) -> None:
    result, scenarios, sets, setup, _ = platform
    pooled = run_lending_platform(sets, scenarios, setup, workers=2, chunk_size=3)
    assert pooled.timing["workers"] == 2
    assert pooled.runs.drop("cpu_s").equals(result.runs.drop("cpu_s"))
    assert pooled.summary.equals(result.summary)


def test_bad_runs_fail_clearly(platform) -> None:
    result, scenarios, sets, setup, _ = platform
    with pytest.raises(LendingParameterError, match="distinct parameter-set names"):
        run_lending_platform([sets[0], sets[0]], scenarios, setup)
    with pytest.raises(LendingParameterError, match="Monte Carlo scenarios need a return model"):
        from dataclasses import replace

        run_lending_platform(sets[:1], scenarios,
                             replace(setup, scenario=replace(setup.scenario, model=None)))
    with pytest.raises(LendingParameterError, match="no scenario"):
        lending_scenarios(symbol="ETH")


def test_protocol_grid_on_the_command_line(lending_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "plat"
    args = ["lending", "--grid", "lt=0.8,0.825", "--grid", "bonus=1.05", "--grid",
            "comet.borrow_cf=0.8", "--grid", "comet.liquidate_cf=0.85,0.9", "--grid",
            "comet.liquidation_factor=0.95", "--grid", "maker.mat=1.5", "--grid",
            "maker.chop=1.13", "--grid", "maker.tip=0,300", "--generate", "200", "--seeds", "0",
            "--scenario-depth", "1", "--shock", "0.3", "--mc", "2", "--mc-hours", "6",
            "--workers", "1", "--timeframe", "1h", "--start", "2020-03-12", "--end",
            "2020-03-14", "--step", "300", "--store", str(lending_store), "--out", str(out)]
    result = CliRunner().invoke(build_app(), args, catch_exceptions=False, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "recommended maker" in result.output and "runs in" in result.output
    summary = pl.read_parquet(out / "platform_summary.parquet")
    assert summary.height == 2 + 2 + 2
    assert summary.group_by("protocol").agg(pl.col("recommended").sum())["recommended"].max() == 1
    with duckdb.connect(str(out / "lending.duckdb"), read_only=True) as con:
        kinds = {k for (k,) in con.execute("select distinct kind from platform_runs").fetchall()}
    assert kinds == {"window", "shock", "montecarlo"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shocks"] == [0.3] and manifest["montecarlo"]["paths"] == 2
    assert "report.html" in manifest["files"]
    page = (out / "report.html").read_text()
    assert "Recommended sets" in page and "Bad debt per parameter set" in page
    bad = CliRunner().invoke(build_app(), [*args[:1], "--grid", "maker.matt=1.5", "--generate", "10",
                                           "--store", str(lending_store), "--out",
                                           str(tmp_path / "bad")], env={"COLUMNS": "250"})
    assert bad.exit_code == 2 and "did you mean 'maker.mat'" in bad.output
    assert not (tmp_path / "bad").exists()


def test_monte_carlo_from_a_fitted_model(lending_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "fitted"
    base = ["lending", "--grid", "lt=0.825", "--grid", "bonus=1.05", "--generate", "200",
            "--seeds", "0", "--scenario-depth", "", "--mc", "3", "--mc-hours", "6",
            "--workers", "1", "--timeframe", "5m", "--start", "2025-10-09", "--end",
            "2025-10-12", "--step", "300", "--store", str(lending_store)]
    result = CliRunner().invoke(build_app(), [*base, "--mc-model", "bootstrap", "--out", str(out)],
                                catch_exceptions=False, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    runs = pl.read_parquet(out / "platform_runs.parquet")
    assert set(runs["kind"]) == {"montecarlo"} and runs.height == 3
    # bootstrap paths resample the window's own 5m returns: three different lows
    assert runs["path_low"].n_unique() == 3
    assert json.loads((out / "manifest.json").read_text())["montecarlo"]["model"] == "bootstrap"
    bad = CliRunner().invoke(build_app(), [*base, "--mc-model", "bootstrp", "--out",
                                           str(tmp_path / "bad")], env={"COLUMNS": "250"})
    assert bad.exit_code == 2 and "bootstrp" in bad.output and "Traceback" not in bad.output
