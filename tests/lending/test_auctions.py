"""Maker auctions with keepers, by hand: a zero bid wins a Flipper auction nobody else can bid
on, a value keeper bids the market less its margin, a Clipper auction is taken where the price
curve crosses the keeper's price, and gas prices keepers out."""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from backtest.lending.auctions import AuctionParams, Keeper, run_auctions
from backtest.lending.errors import LendingParameterError
from backtest.lending.maker_flipper import FlipParams

# one vault: 10 ETH, 1,000 DAI of debt, mat 150 %, chop 13 %; unsafe below 150 DAI/ETH
VAULT = pl.DataFrame({"collateral": [10.0], "debt": [1_000.0],
                      "liquidation_threshold": [1 / 1.5], "liquidation_bonus": [1.13]})
HOUR = 3600.0


def _path(hours: float = 8, step: float = 60.0, crash_at: float = 1.0, low: float = 140.0):
    """200 DAI/ETH, then ``low`` from ``crash_at`` hours; the OSM serves it one hour later."""
    times = np.arange(0.0, hours * HOUR, step)
    prices = np.where(times < crash_at * HOUR, 200.0, low)
    return times, prices


def test_a_lowball_keeper_alone_wins_with_a_zero_bid() -> None:
    times, prices = _path()
    gas = np.full(times.size, 100.0)
    keepers = [Keeper("honest", 50.0, 0.05), Keeper("lowball", 1000.0, kind="lowball")]
    r = run_auctions(VAULT, times, prices, gas, keepers, AuctionParams(lump=math.inf))
    a = r.auctions.row(0, named=True)
    # the OSM moves to 140 at the poke after the first one following the crash: 2 h
    assert a["kicked"] == 2 * HOUR and a["osm_at_kick"] == 140.0
    assert a["tab"] == pytest.approx(1_130.0) and a["due"] == pytest.approx(1_000.0)
    assert a["winner"] == "lowball" and a["zero_bid"] and a["raised"] == pytest.approx(1e-6)
    assert a["settled"] == pytest.approx(2 * HOUR + 600 + 60)   # ttl 10 min after the bid
    assert a["shortfall"] == pytest.approx(1_000.0 - 1e-6)
    assert r.summary["zero_bid_auctions"] == 1 and r.summary["deficit"] == pytest.approx(1_000.0)


def test_a_value_keeper_bids_the_market_less_its_margin_and_gas() -> None:
    times, prices = _path(low=100.0)   # the lot is worth 1,000 < tab 1,130: tend phase only
    gas = np.full(times.size, 10.0)
    keeper = Keeper("honest", 50.0, 0.05, gas_units=300_000)
    r = run_auctions(VAULT, times, prices, gas, [keeper],
                     AuctionParams(lump=math.inf, flip=FlipParams(beg=1.03, ttl=600, tau=6 * HOUR)))
    a = r.auctions.row(0, named=True)
    gas_dai = 300_000 * 10 * 1e-9 * 100.0
    assert a["raised"] == pytest.approx(10 * 100.0 * 0.95 - gas_dai)
    assert a["shortfall"] == pytest.approx(1_000.0 - a["raised"]) and not a["zero_bid"]
    k = r.keepers.row(0, named=True)
    assert k["profit"] == pytest.approx(10 * 100.0 - a["raised"] - gas_dai)


def test_a_clipper_auction_is_taken_where_the_curve_crosses_the_keeper_price() -> None:
    times, prices = _path(step=30.0)
    gas = np.full(times.size, 10.0)
    params = AuctionParams(mode="clipper", buf=1.2, cut=0.99, step=90.0, tip=0.0, chip=0.0,
                           dust=0.0)
    r = run_auctions(VAULT, times, prices, gas, [Keeper("honest", 50.0, 0.05)], params)
    a = r.auctions.row(0, named=True)
    top = 140.0 * 1.2
    # first stair at or below 140 * 0.95 = 133: 168 * 0.99^k <= 133 -> k = 24 (after 36 min)
    k = math.ceil(math.log(133.0 / top) / math.log(0.99))
    price = top * 0.99 ** k
    assert a["clearing_price"] == pytest.approx(price)
    assert a["settled"] - a["kicked"] == pytest.approx(k * 90.0)
    assert a["raised"] == pytest.approx(1_130.0) and a["shortfall"] == 0.0   # the whole tab
    assert a["returned_to_owner"] == pytest.approx(10.0 - 1_130.0 / price)


def test_gas_prices_keepers_out_until_it_falls() -> None:
    times, prices = _path(step=30.0)
    # only after 5 h can the keeper land a take; the curve reaches cusp (0.4) at ~4 h 18
    gas = np.where(times < 5 * HOUR, 300.0, 10.0)
    params = AuctionParams(mode="clipper", tip=0.0, chip=0.0, dust=0.0)
    keepers = [Keeper("bark-bot", 1000.0, 0.99), Keeper("honest", 50.0, 0.05)]
    r = run_auctions(VAULT, times, prices, gas, keepers, params)
    a = r.auctions.row(0, named=True)
    assert a["winner"] == "honest" and a["settled"] >= 5 * HOUR
    assert a["redos"] == 1          # reset (by the keeper that pays any gas) while nobody took
    assert a["clearing_price"] <= 140.0 * 0.95 and a["shortfall"] == 0.0


def test_keeper_and_auction_parameters_are_checked() -> None:
    with pytest.raises(LendingParameterError, match="kind among value, lowball"):
        Keeper("x", 10.0, kind="greedy")
    with pytest.raises(LendingParameterError, match="margin"):
        Keeper("x", 10.0, margin=1.0)
    with pytest.raises(LendingParameterError, match="flipper, clipper"):
        AuctionParams(mode="dutch")
    times, prices = _path()
    with pytest.raises(LendingParameterError, match="distinct names"):
        run_auctions(VAULT, times, prices, np.ones(times.size), [Keeper("a", 1.0), Keeper("a", 2.0)])
