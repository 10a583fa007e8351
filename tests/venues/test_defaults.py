"""Built-in venue data, the venue registry and price rounding."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

from backtest.venues import (
    MarketSpec,
    UnknownSymbolError,
    UnknownVenueError,
    VersionError,
    clearance_fee_rate,
    default_fees,
    default_market,
    default_tier_schedule,
    get_venue,
)
from backtest.venues.base import available_venues
from backtest.venues.defaults import known_symbols
from backtest.venues.errors import TierError
from backtest.venues.rounding import round_price


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def test_btcusdt_2022_table_is_the_spec_table() -> None:
    table = default_tier_schedule("binanceusdm", "BTC/USDT:USDT").at(ms("2022-03-01"))
    rows = [(t.floor, t.mmr, t.max_leverage) for t in table]
    assert rows == [
        (0, 0.004, 125), (50_000, 0.005, 100), (250_000, 0.01, 50), (1_000_000, 0.025, 20),
        (7_500_000, 0.05, 10), (40_000_000, 0.1, 5), (100_000_000, 0.125, 4),
        (200_000_000, 0.15, 3), (400_000_000, 0.25, 2), (600_000_000, 0.5, 1)]
    assert table.for_notional(500_000).cum == 1_300.0


def test_schedule_picks_later_versions_by_date() -> None:
    schedule = default_tier_schedule("binance_usdm", "BTC/USDT:USDT")
    # bracket 3 max leverage was cut to 25x in the 2022-11-25 snapshot, back to 50x on 2023-02-16
    assert schedule.at(ms("2022-12-01")).for_notional(300_000).max_leverage == 25
    assert schedule.at(ms("2023-03-01")).for_notional(300_000).max_leverage == 50
    eth = default_tier_schedule("binanceusdm", "ETH/USDT:USDT")
    assert eth.at(ms("2024-06-01")).tiers[0].mmr == 0.004
    assert eth.at(ms("2022-03-01")).tiers[0].mmr == 0.005
    # the earliest table (2021-09 rates, used from listing) is in force on Black Thursday
    early = schedule.at(ms("2020-03-12"))
    assert [(t.floor, t.mmr) for t in early][:4] == [(0, 0.004), (50_000, 0.005), (250_000, 0.01), (1_000_000, 0.025)]
    assert early.for_notional(6_000_000).cum == 141_300.0
    with pytest.raises(TierError, match="margincall data import"):
        schedule.at(ms("2019-01-01"))


def test_unknown_symbol_lists_known_and_how_to_import() -> None:
    with pytest.raises(UnknownSymbolError) as info:
        default_tier_schedule("binanceusdm", "BTCUSDT")
    message = str(info.value)
    assert "BTC/USDT:USDT, ETH/USDT:USDT" in message and "margincall data import" in message
    with pytest.raises(UnknownSymbolError, match="market spec"):
        default_market("binanceusdm", "SOL/USDT:USDT")
    with pytest.raises(UnknownVenueError, match="known: aave_v3, binance, binance_coinm, binance_usdm, binancecoinm, binanceusdm"):
        default_tier_schedule("kraken", "BTC/USD:USD")
    assert known_symbols("binance") == ("BTC/USDT:USDT", "ETH/USDT:USDT")


def test_clearance_fee_versions() -> None:
    assert clearance_fee_rate("binanceusdm", "BTC/USDT:USDT", ms("2020-03-12")) == 0.003
    assert clearance_fee_rate("binanceusdm", "ETH/USDT:USDT", ms("2020-03-12")) == 0.005
    with pytest.raises(VersionError, match="first version takes effect 2019-11-27"):
        clearance_fee_rate("binanceusdm", "ETH/USDT:USDT", ms("2019-10-01"))


def test_default_market_and_fees() -> None:
    btc = default_market("binanceusdm", "BTC/USDT:USDT", ms("2021-05-19"))
    assert isinstance(btc, MarketSpec)
    assert (btc.tick_size, btc.lot_size, btc.min_qty, btc.contract_type, btc.settle) == (0.1, 0.001, 0.001, "linear", "USDT")
    assert (btc.maker_fee, btc.taker_fee, btc.liquidation_fee_rate) == (0.0002, 0.0005, 0.003)
    eth = default_market("binanceusdm", "ETH/USDT:USDT")
    assert eth.tick_size == 0.01 and eth.liquidation_fee_rate == 0.005
    assert list(btc.to_row()) == ["exchange", "symbol", "effective_from", "base", "quote", "settle",
                                  "contract_type", "contract_size", "tick_size", "lot_size", "min_qty",
                                  "min_notional", "maker_fee", "taker_fee", "liquidation_fee_rate"]
    fees = default_fees("binanceusdm")
    assert (fees.maker, fees.taker, fees.effective_from_known) == (0.0002, 0.0005, False)
    with pytest.raises(ValueError, match="contract_type"):
        MarketSpec(**{**btc.to_row(), "contract_type": "spot"})


def test_venue_registry() -> None:
    venue = get_venue("binance_usdm")
    assert get_venue("binanceusdm") is venue
    assert {"binance_coinm", "binance_usdm", "bybit_linear", "bybit_inverse", "okx",
            "bitmex_inverse", "hyperliquid", "dydx_v4"} <= set(available_venues())
    assert available_venues() == tuple(sorted(available_venues()))
    assert venue.contract_type == "linear"
    assert venue.market("BTC/USDT:USDT").symbol == "BTC/USDT:USDT"
    assert venue.clearance_fee_rate("BTC/USDT:USDT", ms("2022-01-01")) == 0.003
    assert venue.default_fees().taker == 0.0005
    assert venue.funding_payment(signed_qty=1.0, mark_price=100.0, rate=0.001) == -0.1
    assert venue.tier_schedule("ETH/USDT:USDT").label == "binanceusdm ETH/USDT:USDT"
    assert "liquidation_price" in venue.describe()["rule_versions"]
    with pytest.raises(UnknownVenueError, match="Did you mean 'binance_usdm'"):
        get_venue("binance_usdn")


def test_round_price() -> None:
    assert round_price(5_739.08, tick=0.5, mode="up") == 5_739.5
    assert round_price(6_968.86, tick=0.5, mode="down") == 6_968.5
    assert round_price(26_316.894, decimals=2) == 26_316.89
    assert round_price(0.30000000000000004, tick=0.1) == 0.3
    with pytest.raises(ValueError, match="exactly one"):
        round_price(1.0)
    with pytest.raises(ValueError, match="mode"):
        round_price(1.0, tick=0.1, mode="sideways")  # type: ignore[arg-type]


def test_import_does_not_pull_heavy_packages() -> None:
    import subprocess
    import sys
    code = ("import sys, backtest.venues, backtest.venues.binance_usdm; "
            "print(any(m in sys.modules for m in ('ccxt', 'plotly', 'ray', 'polars')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.shared
def test_typed_tiers_agree_with_the_shared_snapshot(shared_data: Path) -> None:
    """Every typed table equals the one recorded in ../shared (the typing has no slip)."""
    source = json.loads((shared_data / "margin" /
                         "binance_um_leverage_brackets_BTCUSDT_ETHUSDT_2021-2024.json").read_text("utf-8"))
    for symbol, key in (("BTC/USDT:USDT", "BTCUSDT"), ("ETH/USDT:USDT", "ETHUSDT")):
        schedule = default_tier_schedule("binanceusdm", symbol)
        # the first typed version is the 2021-09 rate table used from listing; the rest are dated
        early_start, early_table = schedule.versions[0]
        older = source["older_format_snapshot"]["entries"][0]["symbols"][key]["brackets"]
        assert [(t.floor, t.mmr, t.cum) for t in early_table] == [
            (b["notional_floor_usdt"], b["maint_margin_rate"], b["maint_amount_usdt_derived"]) for b in older]
        dated = schedule.versions[1:]
        assert len(dated) == len(source["versions"])
        for (start, table), version in zip(dated, source["versions"]):
            when = datetime.fromisoformat(version["snapshot_commit_date"])
            assert start == int(when.timestamp() * 1000)
            expected = [(b["notional_floor_usdt"],
                         math.inf if b["notional_cap_usdt"] > 1e18 else b["notional_cap_usdt"],
                         b["maint_margin_rate"], b["maint_amount_usdt"], b["max_initial_leverage"])
                        for b in version["symbols"][key]["brackets"]]
            assert [(t.floor, t.cap, t.mmr, t.cum, t.max_leverage) for t in table] == expected


@pytest.mark.parametrize("exchange", ["hyperliquid", "dydx"])
def test_usdc_symbol_of_a_usdc_venue_resolves_to_its_built_in_tables(exchange):
    # ccxt (and so `margincall data fetch`) names these perpetuals BTC/USDC:USDC; the file keys
    # the same contract BTC/USDT:USDT: both names give the same dated tables and fee schedule
    from backtest.venues.defaults import clearance_fee_schedule, default_tier_schedule, known_symbols

    usdc, key = default_tier_schedule(exchange, "BTC/USDC:USDC"), default_tier_schedule(exchange, "BTC/USDT:USDT")
    assert usdc.versions == key.versions
    ts = 1_735_689_600_000  # 2025-01-01 UTC
    assert (clearance_fee_schedule(exchange, "ETH/USDC:USDC").at(ts)
            == clearance_fee_schedule(exchange, "ETH/USDT:USDT").at(ts))
    assert "BTC/USDC:USDC" not in known_symbols(exchange)  # aliases are not listed as symbols


def test_a_usdc_symbol_runs_under_hyperliquid_rules():
    import numpy as np
    import polars as pl

    from backtest import MarketData, RunConfig, run_backtest

    hour = 3_600_000
    closes = [60_000.0, 60_000.0, 59_000.0]
    frame = pl.DataFrame({"ts": 1_700_000_000_000 // hour * hour + hour * np.arange(3), "open": closes,
                          "high": closes, "low": closes, "close": closes, "volume": [1.0] * 3})
    data = MarketData.from_frames({"BTC/USDC:USDC": frame}, timeframe="1h", exchange="hyperliquid")
    result = run_backtest(data, "hold", params={"side": "long"}, config=RunConfig(venue="hyperliquid", leverage=5))
    assert result.fills.height == 1 and result.summary["n_liquidations"] == 0
