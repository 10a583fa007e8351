"""One market-data loader for every command: stored tiers and markets where they cover the date,
the built-in dated tables otherwise (named in a warning), mark = last said on the console.

The stores are built from real Binance data in ../shared (1h and 5m candles, mark candles,
funding, and Binance's bracket history whose first version is 2022-02-13 05:02:07 UTC).
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.venues.defaults import default_tier_schedule
from tests.risk.conftest import read_shared_bars

BTC = "BTC/USDT:USDT"
EXCHANGE = "binanceusdm"
FIRST_STORED = datetime(2022, 2, 13, 5, 2, 7, tzinfo=timezone.utc)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def _write_bars(store, bars: pl.DataFrame, timeframe: str, price_type: str = "last") -> None:
    store.write("ohlcv", bars.with_columns(exchange=pl.lit(EXCHANGE), symbol=pl.lit(BTC), timeframe=pl.lit(timeframe),
                                           price_type=pl.lit(price_type)), source="test")


def _custom_tiers(effective: str, mmr: float = 0.05, max_leverage: float = 50.0) -> pl.DataFrame:
    """One bracket for every notional: maintenance ``mmr`` x notional, cum 0."""
    return pl.DataFrame({"exchange": [EXCHANGE], "symbol": [BTC],
                         "effective_from": [datetime.fromisoformat(effective).replace(tzinfo=timezone.utc)],
                         "tier": [1], "notional_floor": [0.0], "notional_cap": [math.inf],
                         "max_leverage": [max_leverage], "maint_margin_rate": [mmr], "maint_amount": [0.0]})


@pytest.fixture(scope="module")
def history_store(shared_data: Path, tmp_path_factory):
    """1h BTC candles (last + mark) and funding 2022-02-10 .. 2022-02-17, plus Binance's bracket history."""
    from data_loaders.store import MarketStore
    from data_loaders.tiers_import import import_tiers

    store = MarketStore(tmp_path_factory.mktemp("loader") / "store")
    kw = {"start": "2022-02-10", "end": "2022-02-17"}
    _write_bars(store, read_shared_bars(shared_data / "klines/long/binance_um_BTCUSDT_1h_2019-09-08_2026-05-17.parquet",
                                        **kw), "1h")
    marks = pl.read_parquet(shared_data / "mark/binance_um_BTCUSDT_markprice_1h_2019-12-23_2026-05-17.parquet").select(
        pl.col("open_time").alias("ts"), "open", "high", "low", "close", volume=pl.lit(None, pl.Float64))
    marks = marks.filter((pl.col("ts") >= datetime(2022, 2, 10, tzinfo=timezone.utc))
                         & (pl.col("ts") < datetime(2022, 2, 17, tzinfo=timezone.utc)))
    _write_bars(store, marks, "1h", "mark")
    import_tiers(store, shared_data / "margin/binance_um_leverage_brackets_BTCUSDT_ETHUSDT_2021-2024.json")
    return store


@pytest.fixture(scope="module")
def crash_store(shared_data: Path, tmp_path_factory):
    """5m BTC last-price candles of 2024-08-04 .. 2024-08-06 (no mark) and the BTC funding history."""
    from data_loaders.store import MarketStore

    store = MarketStore(tmp_path_factory.mktemp("crash") / "store")
    _write_bars(store, read_shared_bars(shared_data / "klines/crash_2024-08-05/"
                                        "binance_um_BTCUSDT_5m_2024-08-04_2024-08-06.parquet"), "5m")
    funding = pl.read_parquet(shared_data / "funding/binance_um_BTCUSDT_funding_8h.parquet").select(
        exchange=pl.lit(EXCHANGE), symbol=pl.lit(BTC), ts=pl.col("funding_time_utc"), rate=pl.col("funding_rate"),
        interval_hours=pl.col("funding_interval_hours").cast(pl.Float64), mark_price=pl.lit(None, pl.Float64))
    store.write("funding", funding.filter(pl.col("ts").dt.year() == 2024), source="test")
    return store


def test_a_run_spanning_the_first_stored_table_uses_built_in_before_and_stored_after(history_store):
    from backtest import MarketData, RunConfig, run_backtest
    from backtest.venues.tiers import TierSchedule

    data = MarketData.from_store(history_store, exchange=EXCHANGE, symbols=[BTC], timeframe="1h")
    schedule = data.tiers[BTC]
    stored = TierSchedule.from_frame(history_store.read("risk_tiers", exchange=EXCHANGE, symbol=BTC),
                                     exchange=EXCHANGE, symbol=BTC)
    built_in = default_tier_schedule(EXCHANGE, BTC)
    before, after = _ms("2022-02-12T00:00"), _ms("2022-02-14T00:00")
    assert schedule.at(before) == built_in.at(before)
    assert schedule.at(after) == stored.at(after)
    assert schedule.at(after).label.endswith("(stored risk_tiers)")  # named by its source
    assert schedule.at(before).label.endswith("(built-in)")
    warnings = [w for w in data.quality_warnings if w.startswith(f"tiers {BTC}")]
    assert len(warnings) == 1
    assert "built-in" in warnings[0] and "effective_from 2019-09-08 00:00:00 UTC" in warnings[0]
    assert "stored risk_tiers start 2022-02-13 05:02:07 UTC" in warnings[0]
    # the run used to stop with "no tier table is known at 2022-02-10" once the history was imported
    result = run_backtest(data, "hold", params={"side": "long"}, config=RunConfig(leverage=5.0))
    assert result.summary["bars"] == data.ts.size and result.summary["n_fills"] >= 1
    # the tier versions the run used come from both sources
    assert FIRST_STORED.year == 2022 and data.ts[0] < int(FIRST_STORED.timestamp() * 1000) < data.ts[-1]


def test_replay_and_mc_use_the_stored_tiers_in_force_at_their_date(crash_store, tmp_path):
    """A single-bracket stored table (mmr 5 %, max 50x) decides the replay's and mc's liquidation prices."""
    from backtest import RunConfig
    from backtest.cli.risk import _fit
    from backtest.risk.crashes import load_crashes
    from backtest.risk.replay import replay_library
    from data_loaders.store import MarketStore

    store = MarketStore(tmp_path / "store")
    _write_bars(store, crash_store.read("ohlcv", exchange=EXCHANGE, symbol=BTC, timeframe="5m").drop(
        "exchange", "symbol", "timeframe", "price_type"), "5m")
    store.write("risk_tiers", _custom_tiers("2024-01-01"), source="test")
    window = load_crashes().get("2024-08-05")
    outcome = replay_library([window], store, strategy="hold", params={"side": "long"}, leverages=[10.0],
                             config=RunConfig(slippage="none"), symbols=[BTC])
    row = outcome.table.row(0, named=True)
    qty = 10_000.0 / row["entry_price"]  # hold: notional = 1 x the wallet, isolated margin = notional / 10
    wallet = qty * row["entry_price"] / 10.0
    lp_stored = (wallet - qty * row["entry_price"]) / (qty * 0.05 - qty)
    assert row["liquidation_price"] == pytest.approx(lp_stored, rel=2e-3)
    built_in_mmr = default_tier_schedule(EXCHANGE, BTC).at(window.start_ms).for_notional(10_000.0).mmr
    assert built_in_mmr != 0.05
    assert not any(w.startswith(f"tiers {BTC}") for w in outcome.warnings)  # the stored table covers the date
    # mc/survive: the table in force at the entry (end of the fit data), from the same loader
    *_, tiers = _fit(tmp_path / "store", EXCHANGE, BTC, "5m", None, None, "last", "gbm")
    assert [(t.mmr, t.max_leverage) for t in tiers.tiers] == [(0.05, 50.0)]


def test_mc_without_stored_tiers_uses_the_built_in_table_of_the_date_not_the_newest(history_store, tmp_path):
    from backtest.cli.risk import _fit
    from data_loaders.store import MarketStore

    store = MarketStore(tmp_path / "store")
    _write_bars(store, history_store.read("ohlcv", exchange=EXCHANGE, symbol=BTC, timeframe="1h").drop(
        "exchange", "symbol", "timeframe", "price_type"), "1h")
    *_, data, tiers = _fit(tmp_path / "store", EXCHANGE, BTC, "1h", None, None, "last", "gbm")
    schedule = default_tier_schedule(EXCHANGE, BTC)
    entry = data.last_ms + 3_600_000
    assert tiers == schedule.at(entry)
    assert schedule.at(entry) != schedule.at(2**62)  # the old code took the newest table whatever the date


def test_the_stored_markets_row_sets_fees_tick_lot_and_liquidation_fee(crash_store, tmp_path):
    from backtest import MarketData, RunConfig, run_backtest
    from backtest.venues.defaults import default_market
    from data_loaders.store import MarketStore

    store = MarketStore(tmp_path / "store")
    _write_bars(store, crash_store.read("ohlcv", exchange=EXCHANGE, symbol=BTC, timeframe="5m").drop(
        "exchange", "symbol", "timeframe", "price_type"), "5m")
    row = {"exchange": EXCHANGE, "symbol": BTC, "base": "BTC", "quote": "USDT", "settle": "USDT",
           "contract_type": "linear", "contract_size": 1.0, "tick_size": 0.5, "lot_size": 0.01, "min_qty": 0.01,
           "min_notional": 5.0, "maker_fee": math.nan, "taker_fee": 0.001, "liquidation_fee_rate": 0.0125}
    store.write("markets", pl.DataFrame([{**row, "effective_from": datetime(2024, 1, 1, tzinfo=timezone.utc)}]),
                source="test")
    data = MarketData.from_store(store, exchange=EXCHANGE, symbols=[BTC], timeframe="5m")
    spec = data.markets[BTC]
    reference = default_market(EXCHANGE, BTC, int(data.ts[0]))
    assert (spec.tick_size, spec.lot_size, spec.taker_fee, spec.liquidation_fee_rate) == (0.5, 0.01, 0.001, 0.0125)
    assert spec.maker_fee == reference.maker_fee  # unknown in the store: the built-in value of the date
    assert any("has no maker_fee" in w for w in data.quality_warnings)
    result = run_backtest(data, "hold", params={"side": "long"}, config=RunConfig(leverage=2.0, slippage="none"))
    fill = result.fills.row(0, named=True)
    assert fill["fee"] == pytest.approx(fill["qty"] * fill["price"] * 0.001, rel=1e-12)
    assert abs(fill["qty"] / 0.01 - round(fill["qty"] / 0.01)) < 1e-9
    # a run before the stored row: the built-in spec, named in a warning
    # a row taking effect after the run changes nothing; one before the stored rows: built-in, named
    store.write("markets", pl.DataFrame([{**row, "effective_from": datetime(2025, 1, 1, tzinfo=timezone.utc),
                                          "taker_fee": 0.002}]), source="test")
    data = MarketData.from_store(store, exchange=EXCHANGE, symbols=[BTC], timeframe="5m")
    assert data.markets[BTC].taker_fee == 0.001
    late = MarketStore(tmp_path / "late")
    _write_bars(late, crash_store.read("ohlcv", exchange=EXCHANGE, symbol=BTC, timeframe="5m").drop(
        "exchange", "symbol", "timeframe", "price_type"), "5m")
    late.write("markets", pl.DataFrame([{**row, "effective_from": datetime(2025, 1, 1, tzinfo=timezone.utc)}]),
               source="test")
    data = MarketData.from_store(late, exchange=EXCHANGE, symbols=[BTC], timeframe="5m")
    assert data.markets[BTC] == reference
    note = next(w for w in data.quality_warnings if w.startswith(f"markets {BTC}"))
    assert "built-in" in note and "stored markets start 2025-01-01" in note


def test_partial_mark_candles_fall_back_per_bar_with_a_warning(history_store, tmp_path):
    from backtest import MarketData
    from data_loaders.store import MarketStore

    store = MarketStore(tmp_path / "store")
    last = history_store.read("ohlcv", exchange=EXCHANGE, symbol=BTC, timeframe="1h", price_type="last")
    mark = history_store.read("ohlcv", exchange=EXCHANGE, symbol=BTC, timeframe="1h", price_type="mark")
    drop = ["exchange", "symbol", "timeframe", "price_type"]
    _write_bars(store, last.drop(drop), "1h")
    _write_bars(store, mark.drop(drop).head(100), "1h", "mark")
    data = MarketData.from_store(store, exchange=EXCHANGE, symbols=[BTC], timeframe="1h")
    bars = data.bars[BTC]
    assert (bars.mark_close[:100] == mark["close"].to_numpy()[:100]).all()
    assert (bars.mark_close[100:] == bars.close[100:]).all()
    assert any(f"{last.height - 100} of {last.height}" in w and "mark = last price" in w
               for w in data.quality_warnings)


def _invoke(*args: str):
    return CliRunner().invoke(build_app(), list(args), catch_exceptions=False, env={"COLUMNS": "250"})


def test_every_command_says_mark_equals_last_on_the_console(crash_store, tmp_path):
    store = ["--store", str(crash_store.root)]
    commands = {
        "run": ["run", "--symbol", BTC, "--timeframe", "5m", "--strategy", "hold", "--leverage", "2",
                "--out", str(tmp_path / "run"), "--no-report", "--no-progress", *store],
        "replay": ["replay", "--crash", "2024-08-05", "--symbol", BTC, "--leverage", "2", *store],
        "stress": ["stress", "--symbol", BTC, "--timeframe", "5m", "--start", "2024-08-04", "--end", "2024-08-06",
                   "--scenario", "s=shock:-0.1@2024-08-05T00:00Z", "--leverage", "2", *store],
        "mc": ["mc", "--timeframe", "5m", "--price", "last", "--model", "gbm", "--leverage", "5", "--horizon", "1",
               "--paths", "200", *store],
        "survive": ["survive", "--timeframe", "5m", "--price", "last", "--model", "gbm", "--horizon", "1",
                    "--paths", "200", *store],
    }
    for name, args in commands.items():
        result = _invoke(*args)
        assert result.exit_code == 0, (name, result.output)
        assert "data quality:" in result.output and "mark = last price" in result.output, (name, result.output)
        assert "built-in venue data" in result.output, name  # which tier table was used, named
        if name == "mc":
            assert "2024-05-30 (built-in)" in result.output  # the table the barriers were solved with


def test_funding_has_the_runs_sign_in_stress_and_replay(crash_store):
    from backtest import RunConfig, run_backtest
    from backtest.risk.data import load_window
    from backtest.risk.scenarios import StressMarket
    from backtest.risk.stress import run_stress

    data = load_window(crash_store, exchange=EXCHANGE, symbol=BTC, timeframe="5m", start_ms=_ms("2024-08-04T00:00"),
                       end_ms=_ms("2024-08-07T00:00"), label="funding sign")
    config = RunConfig(leverage=2.0, slippage="none")
    result = run_backtest(data.market_data(BTC, timeframe="5m", exchange=EXCHANGE), "hold",
                          params={"side": "long"}, config=config)
    received_minus_paid = float(result.funding["payment"].sum())
    assert result.funding.height >= 8 and received_minus_paid != 0.0
    market = StressMarket(bars={BTC: data.bars}, funding={BTC: data.funding}, tiers={BTC: data.tiers},
                          markets={BTC: data.market})
    table = run_stress(market, [], timeframe="5m", strategy="hold", params={"side": "long"}, leverages=(2.0,),
                       config=config)
    assert "funding" not in table.columns
    assert table["net_funding_received"][0] == pytest.approx(received_minus_paid, rel=1e-12)
    summary = result.summary
    assert table["net_funding_received"][0] == pytest.approx(summary["funding_received"] - summary["funding_paid"])


def test_resolve_tier_schedule_switches_at_the_first_stored_version_and_names_the_span():
    from backtest.venues.defaults import resolve_tier_schedule
    from backtest.venues.tiers import TierSchedule

    stored = TierSchedule.from_frame(_custom_tiers("2022-02-13T05:02:07"), exchange=EXCHANGE, symbol=BTC)
    built_in = default_tier_schedule(EXCHANGE, BTC)
    warnings: list[str] = []
    merged = resolve_tier_schedule(EXCHANGE, BTC, stored, start_ms=_ms("2022-02-01T00:00"),
                                   end_ms=_ms("2022-03-01T00:00"), warnings=warnings)
    assert merged.at(_ms("2022-02-13T05:02:06")) == built_in.at(_ms("2022-02-13T05:02:06"))
    assert merged.at(_ms("2022-02-13T05:02:07")) == stored.at(_ms("2022-02-13T05:02:07"))
    assert len(warnings) == 1 and "2022-02-01 00:00:00 UTC .. 2022-02-13 05:02:07 UTC" in warnings[0]
    assert "effective_from 2019-09-08 00:00:00 UTC" in warnings[0]
    # a run entirely inside the stored range: the stored schedule itself, nothing to say
    warnings.clear()
    assert resolve_tier_schedule(EXCHANGE, BTC, stored, start_ms=_ms("2023-01-01T00:00"),
                                 end_ms=_ms("2023-02-01T00:00"), warnings=warnings).at(_ms("2023-01-02T00:00")) \
        == stored.at(_ms("2023-01-02T00:00"))
    assert warnings == []


def test_a_window_before_the_first_built_in_table_names_its_own_start():
    from backtest.venues.defaults import resolve_tier_schedule

    # Binance's first built-in USDⓈ-M table is effective from 2019-09-08; a 2019-08 window runs on it
    # only under allow_tiers_before_first, and the warning's span starts at the window, never after its end
    warnings: list[str] = []
    resolve_tier_schedule(EXCHANGE, BTC, None, start_ms=_ms("2019-08-01T00:00"), end_ms=_ms("2019-08-03T00:00"),
                          warnings=warnings)
    assert len(warnings) == 1
    assert "used for 2019-08-01 00:00:00 UTC .. 2019-08-03 00:00:00 UTC, before its effective_from" in warnings[0]
