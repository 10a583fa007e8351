"""One strategy under several venues' rules on the same prices (backtest.compare).

The liquidation price of the Binance USDⓈ-M row is worked by hand from the venue's formula
(margin_rules.md §1.2, isolated one-way: LP = (WB + cum - side·Q·E) / (Q·MMR - side·Q)); the
other registered venues are covered by name from the registry, so each new venue is compared
without a change here.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import polars as pl
import pytest

from backtest import MarketData, RunConfig
from backtest.compare import (COMPARISON_COLUMNS, compare_venues, contract_kind, parse_venues, price_source,
                              venue_market, venue_symbol, write_comparison)
from backtest.errors import ConfigError
from backtest.venues.base import available_venues, get_venue

SYMBOL = "BTC/USDT:USDT"
INVERSE = "BTC/USD:BTC"
HOUR = 3_600_000
T0 = 1_700_000_000_000 // HOUR * HOUR  # 2023-11-14 22:00 UTC
#: One price path: flat, then down 10 % in two hours and a partial bounce.
CLOSES = [30_000.0, 30_000.0, 29_000.0, 27_000.0, 26_000.0, 26_500.0]


def _frame(closes: list[float]) -> pl.DataFrame:
    ts = T0 + HOUR * np.arange(len(closes))
    return pl.DataFrame({"ts": ts, "open": closes, "high": closes, "low": closes, "close": closes,
                         "volume": [1_000.0] * len(closes)})


def _data(symbol: str = SYMBOL, exchange: str = "binanceusdm") -> MarketData:
    return MarketData.from_frames({symbol: _frame(CLOSES)}, timeframe="1h", exchange=exchange)


CONFIG = RunConfig(slippage="none")


@pytest.fixture(scope="module")
def comparison():
    return compare_venues(_data(), "hold", venues=available_venues(), leverages=[2.0, 10.0, 200.0],
                          params={"side": "long"}, config=CONFIG)


def _row(table: pl.DataFrame, venue: str, leverage: float) -> dict:
    return table.filter((pl.col("venue") == venue) & (pl.col("leverage") == leverage)).row(0, named=True)


def test_binance_usdm_row_is_the_hand_worked_liquidation(comparison) -> None:
    row = _row(comparison.table, "binance_usdm", 10.0)
    q, entry = row["qty"], row["entry_price"]
    assert entry == 30_000.0 and row["price_source"] == "prices: binanceusdm, rules: binance_usdm"
    notional = q * entry
    tier = get_venue("binance_usdm").tier_schedule(SYMBOL).at(T0).for_notional(notional)
    wallet = notional / 10.0  # isolated margin of a 10x position
    # LP = (WB + cum - side*Q*E) / (Q*MMR - side*Q), side = +1 (long)
    lp = (wallet + tier.cum - q * entry) / (q * tier.mmr - q)
    assert row["liquidation_price_at_entry"] == pytest.approx(lp, rel=1e-12)
    assert 27_000.0 < lp < 29_000.0  # so the 01:00 close (27,000) is the first below it
    assert row["liquidated"] is True and row["survived"] is False
    assert row["first_liquidation"] == "2023-11-15 01:00:00 UTC" and row["hours_to_liquidation"] == 2.0
    assert row["fees"] > 0 and row["loss"] == pytest.approx(10_000.0 - row["final_equity"])
    # 2x: LP far below 26,000, survives; the loss is the price move and the fees
    calm = _row(comparison.table, "binance_usdm", 2.0)
    assert calm["survived"] is True and calm["liquidated"] is False
    assert calm["liquidation_price_at_entry"] < 26_000.0
    assert calm["loss"] == pytest.approx(calm["qty"] * (30_000.0 - 26_500.0) + calm["fees"], rel=1e-9)


def test_a_leverage_above_the_cap_is_a_row_not_an_error(comparison) -> None:
    row = _row(comparison.table, "binance_usdm", 200.0)
    assert row["tradable"] is True and row["entered"] is False and row["rejection"].startswith("refused:")
    assert dict(zip(comparison.survival["leverage"], comparison.survival["binance_usdm"]))[200.0] == "not opened"


def test_every_registered_venue_is_a_row_per_leverage(comparison) -> None:
    table = comparison.table
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    assert sorted(set(table["venue"])) == sorted(available_venues())
    assert table.height == 3 * len(available_venues())
    for row in table.iter_rows(named=True):
        venue = get_venue(row["venue"])
        assert row["tradable"] is (venue.contract_type == "linear" and venue_symbol(venue, SYMBOL)[0] is not None)
        assert (row["reason"] is None) is row["tradable"]
        assert row["price_source"] == f"prices: binanceusdm, rules: {venue.name}"
    # the survival table is the rows' outcome, leverage by venue
    grid = comparison.survival
    assert grid.columns == ["leverage", *dict.fromkeys(table["venue"])]
    for row in table.iter_rows(named=True):
        cell = dict(zip(grid["leverage"], grid[row["venue"]]))[row["leverage"]]
        expected = ("n/a" if not row["tradable"] else "not opened" if not row["entered"]
                    else "liquidated" if row["liquidated"] else "survived")
        assert cell == expected


def test_inverse_venue_on_linear_prices_says_which_symbol(comparison) -> None:
    row = _row(comparison.table, "binance_coinm", 10.0)
    assert row["tradable"] is False and row["symbol"] is None and row["entered"] is False
    assert "inverse" in row["reason"] and f"--symbol {INVERSE}" in row["reason"]
    assert "--prices-from binancecoinm" in row["reason"]


def test_inverse_prices_under_a_linear_venue_say_which_symbol() -> None:
    table = compare_venues(_data(INVERSE, "binancecoinm"), "hold", venues=["binance_usdm", "binance_coinm"],
                           leverages=[5.0], config=CONFIG.replace(initial_balance=1.0)).table  # 1 BTC
    linear, inverse = _row(table, "binance_usdm", 5.0), _row(table, "binance_coinm", 5.0)
    assert linear["tradable"] is False and f"--symbol {SYMBOL}" in linear["reason"]
    assert inverse["tradable"] is True and inverse["entered"] is True and inverse["margin_asset"] == "BTC"
    assert inverse["price_source"] == "prices: binancecoinm, rules: binance_coinm"


def test_contract_kind() -> None:
    assert contract_kind(SYMBOL) == "linear" and contract_kind(INVERSE) == "inverse"
    assert contract_kind("ETH/USDC:USDC") == "linear" and contract_kind("ETH/USD:ETH") == "inverse"


# ----------------------------------------------------------------------------- price source
def test_price_source_defaults_to_the_venues_own_exchange() -> None:
    for name in available_venues():
        source = price_source(name)
        assert source.prices == get_venue(name).exchange and source.native
        assert source.text == f"prices: {get_venue(name).exchange}, rules: {name}"
    assert price_source("binance_usdm", exchange="binanceusdm").native
    assert price_source("binance_usdm", exchange="binance").native  # a ccxt alias of the venue


def test_price_source_mismatch_not_asked_for_is_an_error_naming_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        price_source("binance_coinm", exchange="binanceusdm", where="run file x.toml")
    text = str(err.value)
    assert text.startswith("run file x.toml:")
    assert "--prices-from binanceusdm" in text and '[data] prices_from = "binanceusdm"' in text
    assert "--exchange binancecoinm" in text


def test_price_source_stated_is_allowed_and_worded() -> None:
    source = price_source("binance_coinm", prices_from="binanceusdm")
    assert (source.prices, source.rules, source.native) == ("binanceusdm", "binance_coinm", False)
    assert source.record() == {"prices": "binanceusdm", "rules": "binance_coinm", "native": False,
                               "text": "prices: binanceusdm, rules: binance_coinm"}
    assert price_source("binance_coinm", exchange="binanceusdm", prices_from="binanceusdm").prices == "binanceusdm"
    with pytest.raises(ConfigError, match="different price sources"):
        price_source("binance_coinm", exchange="binancecoinm", prices_from="binanceusdm")


def test_venue_market_keeps_native_data_and_refuses_a_wrong_contract_kind() -> None:
    data = _data()
    assert venue_market(data, "binance_usdm") is data
    with pytest.raises(ConfigError) as err:
        venue_market(data, "binance_coinm")
    assert SYMBOL in str(err.value) and INVERSE in str(err.value)


def test_venue_market_uses_the_rule_venues_own_tables() -> None:
    # prices of another exchange carrying that exchange's own tables (here: a doubled taker fee
    # and the USDⓈ-M bracket table); under binance_coinm's rules its built-in tables replace them
    data = _data(INVERSE, "binancecoinm")
    spec = data.markets[INVERSE]
    foreign = dataclasses.replace(
        data, exchange="elsewhere", markets={INVERSE: dataclasses.replace(spec, taker_fee=2 * spec.taker_fee)},
        tiers={INVERSE: get_venue("binance_usdm").tier_schedule(SYMBOL)})
    moved = venue_market(foreign, "binance_coinm")
    assert moved is not foreign and moved.exchange == "elsewhere"  # the prices stay the other exchange's
    assert moved.markets[INVERSE] == spec
    assert moved.tiers[INVERSE].at(T0) == get_venue("binance_coinm").tier_schedule(INVERSE).at(T0)
    assert moved.tiers[INVERSE].at(T0) != foreign.tiers[INVERSE].at(T0)
    assert np.array_equal(moved.bars[INVERSE].close, data.bars[INVERSE].close)


def test_parse_venues() -> None:
    assert parse_venues("all") == available_venues()
    assert parse_venues("binance_usdm, binance") == ("binance_usdm",)  # alias, once
    with pytest.raises(ConfigError, match="did you mean 'binance_usdm'"):
        parse_venues("binance_usdn")
    with pytest.raises(ConfigError, match="expected 'all' or comma-separated"):
        parse_venues(" , ")


def test_write_comparison_folder_is_whole_and_queryable(comparison, tmp_path) -> None:
    from backtest.runfolder import RunFolderError, open_results

    out = write_comparison(comparison, tmp_path / "cmp", manifest={"strategy": {"name": "hold"}})
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "venue_comparison" and manifest["prices"] == "binanceusdm"
    assert "prices: binanceusdm, rules: binance_usdm" in manifest["price_sources"]
    assert set(manifest["files"]) == {"venue_comparison.parquet", "venue_survival.parquet"}
    con = open_results(out)
    try:
        n = con.execute("SELECT count(*) FROM venue_comparison").fetchone()[0]
        liquidated = con.execute("SELECT leverage FROM venue_comparison WHERE venue = 'binance_usdm' "
                                 "AND liquidated").fetchall()
    finally:
        con.close()
    assert n == comparison.table.height and liquidated == [(10.0,)]
    before = (out / "venue_comparison.parquet").read_bytes()
    with pytest.raises(RunFolderError):
        write_comparison(comparison, out, manifest={})
    assert (out / "venue_comparison.parquet").read_bytes() == before


# ----------------------------------------------------------------------------- replay / stress
def test_stress_and_replay_venues_add_a_venue_column() -> None:
    from backtest.risk.crashes import CrashWindow
    from backtest.risk.data import WindowData
    from backtest.risk.replay import replay_window
    from backtest.risk.scenarios import StressMarket
    from backtest.risk.stress import run_stress

    bars = _frame(CLOSES).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    market = StressMarket(bars={SYMBOL: bars}, funding={}, tiers={}, markets={}, warnings=())
    table = run_stress(market, [], timeframe="1h", leverages=[10.0], config=CONFIG,
                       venues=("binance_usdm", "binance_coinm"))
    assert table["venue"].to_list() == ["binance_usdm", "binance_coinm"]
    usdm, coinm = table.row(0, named=True), table.row(1, named=True)
    assert usdm["survived"] is False and usdm["n_liquidations"] == 1
    assert coinm["entered"] is False and coinm["rejection"].startswith("not tradable:") and INVERSE in coinm["rejection"]
    plain = run_stress(market, [], timeframe="1h", leverages=[10.0], config=CONFIG)
    assert plain["venue"].to_list() == ["binance_usdm"]

    window = CrashWindow(name="inline", title="inline", start_ms=T0, end_ms=T0 + HOUR * len(CLOSES),
                         symbols=(SYMBOL,), timeframe="1h", description="", source="test")
    rows = replay_window(window, SYMBOL, WindowData(bars=bars, funding=None, warnings=[]), leverages=[10.0],
                         config=CONFIG, venues=("binance_usdm", "binance_coinm"))
    assert [r["venue"] for r in rows] == ["binance_usdm", "binance_coinm"]
    assert rows[0]["survived"] is False and rows[0]["liquidation_price"] == pytest.approx(
        _row(compare_venues(_data(), "hold", venues=["binance_usdm"], leverages=[10.0], config=CONFIG).table,
             "binance_usdm", 10.0)["liquidation_price_at_entry"])
    assert rows[1]["rejection"].startswith("not tradable:")


def test_a_venue_without_rules_at_the_window_start_is_a_row_with_the_reason() -> None:
    # dYdX v4's first built-in table takes effect 2023-10-26: a 2020 window has no dYdX rules
    t2020 = 1_584_000_000_000 // HOUR * HOUR  # 2020-03-12 08:00 UTC
    frame = _frame(CLOSES).with_columns(ts=pl.Series(t2020 + HOUR * np.arange(len(CLOSES))))
    data = MarketData.from_frames({SYMBOL: frame}, timeframe="1h", exchange="binanceusdm")
    table = compare_venues(data, "hold", venues=["binance_usdm", "dydx_v4"], leverages=[2.0],
                           params={"side": "long"}, config=CONFIG).table
    dydx = _row(table, "dydx_v4", 2.0)
    assert dydx["tradable"] is False and dydx["entered"] is False
    assert "no rules in force at the window start" in dydx["reason"] and "2023-10-26" in dydx["reason"]
    assert _row(table, "binance_usdm", 2.0)["entered"] is True
    # the user may state the assumption: the earliest table then applies and the run happens
    early = compare_venues(data, "hold", venues=["dydx_v4"], leverages=[2.0], params={"side": "long"},
                           config=CONFIG.replace(allow_tiers_before_first=True)).table
    assert _row(early, "dydx_v4", 2.0)["entered"] is True
