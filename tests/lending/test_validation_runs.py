"""The validation runs of issue 13 on the stored candles (through ``shared_data``).

Black Thursday: Maker ETH-A vaults through the ETH 1h path of 2020-03-12/13 with keepers priced
out by gas (the documented ``BLACK_THURSDAY`` scenario) show zero-bid Flipper auctions and a
deficit; the same population under Clipper parameters a much smaller one. 2025-10-10: a
synthetic Aave v3 market liquidates through the crash with consistent tables.
"""
from __future__ import annotations

import polars as pl
import pytest

from backtest.lending.auctions import AuctionParams
from backtest.lending.population import generate_population
from backtest.lending.scenarios import BLACK_THURSDAY as BT
from backtest.lending.scenarios import OCTOBER_2025 as OCT
from backtest.lending.simulation import SimulationConfig
from backtest.lending.study import LendingSetup, run_study


def _black_thursday(bars: pl.DataFrame, mode: str):
    population = generate_population(
        BT["positions"], seed=BT["seed"], protocol="maker", asset="ETH",
        price=float(bars["open"][0]), median_value=BT["median_value"],
        value_sigma=BT["value_sigma"], health_factor_range=BT["health_factor_range"])
    setup = LendingSetup(auction=AuctionParams(mode=mode), keepers=BT["keepers"],
                         gas_base_gwei=BT["gas_base_gwei"], gas_spikes=BT["gas_spikes"])
    return run_study(population, {"ETH": bars}, setup)


def test_black_thursday_flipper_zero_bids_and_deficit_clipper_much_smaller(black_thursday_bars):
    flipper = _black_thursday(black_thursday_bars, "flipper")
    clipper = _black_thursday(black_thursday_bars, "clipper")
    f, c = flipper.summaries[0], clipper.summaries[0]
    # the same vaults are liquidated under both systems (same OSM path, same rule)
    assert f["debt_liquidated"] == pytest.approx(c["debt_liquidated"])
    assert f["debt_liquidated"] > 0.3 * f["debt_start"]
    # Flipper: zero-bid auctions, all won by the keeper that could pay the gas, and a deficit
    auctions = flipper.tables["auctions"]
    zero = auctions.filter(pl.col("zero_bid"))
    assert zero.height > 0.2 * auctions.height
    assert set(zero["winner"].unique()) == {"lowball"}
    assert f["shortfall"] > 0.5 * f["debt_liquidated"] * zero.height / auctions.height
    # zero bids happen on auctions kicked while gas is above every value keeper's limit
    # (120 gwei): a value keeper that can land a transaction bids first
    gas = flipper.tables["steps"].select("ts", "gas_gwei")
    at_kick = zero.join(gas, left_on="kicked", right_on="ts", how="left")["gas_gwei"]
    assert at_kick.null_count() == 0 and at_kick.min() > 120.0
    # Clipper: no zero bids (a Dutch auction never sells near zero), a much smaller deficit
    assert c["zero_bid_auctions"] == 0
    assert c["deficit"] < f["deficit"] / 3
    assert clipper.tables["auctions"]["clearing_price"].min() > 0.3 * black_thursday_bars["low"].min()
    # the bad-debt table is the per-protocol/asset view of the same figures
    bad = flipper.tables["bad_debt"].row(0, named=True)
    assert bad["deficit"] == pytest.approx(f["shortfall"])
    assert bad["bad_debt"] == pytest.approx(f["deficit"] + bad["underwater_debt"])


def test_october_2025_aave_stress(october_bars):
    n = 20_000   # the preset's 100,000 run in the CLI and the report; the test keeps it quick
    population = generate_population(
        n, seed=OCT["seed"], protocol="aave_v3", asset="ETH", price=float(october_bars["open"][0]),
        median_value=OCT["median_value"], value_sigma=OCT["value_sigma"],
        health_factor_range=OCT["health_factor_range"])
    config = SimulationConfig(gas_cost=OCT["gas_cost"], latency_steps=OCT["latency_steps"],
                              borrow_rate=OCT["borrow_rate"], feedback=OCT["feedback"],
                              arbitrage_share=OCT["arbitrage_share"])
    study = run_study(population, {"ETH": october_bars},
                      LendingSetup(aave=config, venue=OCT["venue"], depth=OCT["depth"]))
    liq, bad = study.tables["liquidations"], study.tables["bad_debt"].row(0, named=True)
    assert liq.height > 0 and bad["debt_liquidated"] == pytest.approx(liq["debt_repaid"].sum())
    # liquidations cluster in the crash hour (2025-10-10 21:00 UTC, the 5m low at 21:20)
    busiest = liq.group_by(pl.col("ts").dt.truncate("1h")).agg(pl.col("debt_repaid").sum()) \
        .sort("debt_repaid", descending=True)["ts"][0]
    assert busiest.strftime("%Y-%m-%d %H") == "2025-10-10 21"
    # every liquidation pays its bonus: collateral worth more than the debt at the oracle price
    assert (liq["bonus_value"] > 0).all()
    assert bad["bad_debt"] == pytest.approx(bad["deficit"] + bad["underwater_debt"])
    steps = study.tables["steps"]
    assert steps["borrow_index"][-1] > 1.0 and steps.height == october_bars.height * 25


def test_the_flipper_defaults_are_the_cited_eth_a_values_and_the_spell_helps(black_thursday_bars):
    from backtest.lending import maker_flipper as flip

    params = AuctionParams()
    assert params.lump == flip.ETH_A_LUMP_2020_03_12 == 50.0
    assert (params.flip.beg, params.flip.ttl, params.flip.tau) == (1.03, 600.0, 3 * 86400.0)
    # the 2020-03-12 spell as deployed (ttl 6 h, tau 6 h, lump 500 ETH): bids live long enough for the
    # value keepers to land once gas falls, so zero bids and the deficit mostly disappear
    before = _black_thursday(black_thursday_bars, "flipper").summaries[0]
    population = generate_population(
        BT["positions"], seed=BT["seed"], protocol="maker", asset="ETH",
        price=float(black_thursday_bars["open"][0]), median_value=BT["median_value"],
        value_sigma=BT["value_sigma"], health_factor_range=BT["health_factor_range"])
    spell = AuctionParams(lump=flip.ETH_A_LUMP_AFTER_SPELL_2020_03_12,
                          flip=flip.ETH_A_AFTER_SPELL_2020_03_12)
    after = run_study(population, {"ETH": black_thursday_bars}, LendingSetup(
        auction=spell, keepers=BT["keepers"], gas_base_gwei=BT["gas_base_gwei"],
        gas_spikes=BT["gas_spikes"])).summaries[0]
    assert after["zero_bid_auctions"] < before["zero_bid_auctions"] / 10
    assert after["deficit"] < before["deficit"] / 5
