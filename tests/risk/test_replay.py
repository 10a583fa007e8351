"""Crash replays on real Binance data, checked against facts derived by hand from the formulas.

The liquidation price of an isolated one-way long is the Binance FAQ formula with the bracket
of the notional at that price: ``LP = (WB + cum - Q*EP) / (Q*MMR - Q)``. The tests compute it
from the engine's entry fill, then find with polars the first candle whose *mark* low reaches
it, and assert that the engine liquidated in that candle and at that price.

2022-11 and 2024-08 have only last-price candles here: the replay falls back to mark = last and
says so in a data-quality warning (Binance liquidates on the smoother mark price, so the
fallback is pessimistic for the trader).
"""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from backtest.risk.crashes import load_crashes
from backtest.risk.data import WindowData
from backtest.risk.replay import replay_library, replay_window
from backtest.venues.defaults import default_tier_schedule
from tests.risk.conftest import read_shared_bars

SYMBOL = "BTC/USDT:USDT"
HOUR = 3_600_000


def _hand_lp(qty: float, entry: float, leverage: float, tiers) -> tuple[float, object]:
    wallet = qty * entry / leverage  # isolated margin posted at entry
    for tier in tiers.tiers:
        lp = (wallet + tier.cum - qty * entry) / (qty * tier.mmr - qty)
        if tier.floor <= qty * lp < tier.cap:
            return lp, tier
    raise AssertionError("no self-consistent bracket")


def _first_crossing(bars: pl.DataFrame, after: object, column: str, level: float):
    hit = bars.filter((pl.col("ts") >= after) & (pl.col(column) <= level))
    return hit["ts"][0] if hit.height else None


@pytest.fixture(scope="module")
def black_thursday(shared_data: Path) -> pl.DataFrame:
    return read_shared_bars(shared_data / "klines/long/binance_um_BTCUSDT_1h_2019-09-08_2026-05-17.parquet",
                            mark=shared_data / "mark/binance_um_BTCUSDT_markprice_1h_2019-12-23_2026-05-17.parquet",
                            start="2020-03-12", end="2020-03-14")


def _run(window_name, bars, leverages, warnings=()):
    from backtest import RunConfig
    window = load_crashes().get(window_name)
    rows = replay_window(window, SYMBOL, WindowData(bars=bars, funding=None, warnings=list(warnings)),
                         strategy="hold", params={"side": "long"}, leverages=leverages,
                         config=RunConfig(slippage="none", allow_tiers_before_first=True))
    return window, rows


def test_black_thursday_20x_long_liquidated_in_the_first_hour_the_mark_reaches_lp(black_thursday):
    from backtest import MarketData, RunConfig, run_backtest
    data = MarketData.from_frames({SYMBOL: black_thursday}, timeframe="1h")
    result = run_backtest(data, "hold", params={"side": "long"},
                          config=RunConfig(leverage=20.0, slippage="none", allow_tiers_before_first=True))
    entry = result.fills.filter(pl.col("reason") == "strategy")
    qty, price, entry_ts = float(entry["qty"][0]), float(entry["price"][0]), entry["ts"][0]
    # the order placed at the close of the first bar fills at the next bar's open
    assert price == black_thursday["open"][1] and entry_ts == black_thursday["ts"][1]
    tiers = default_tier_schedule("binance_usdm", SYMBOL).at(0, allow_before_first=True)
    lp, tier = _hand_lp(qty, price, 20.0, tiers)
    first_mark = _first_crossing(black_thursday, entry_ts, "mark_low", lp)
    assert first_mark is not None
    liq = result.liquidations
    assert liq.height == 1
    trigger = liq["trigger_ts"][0]
    trigger_ms = int(trigger.timestamp() * 1000)
    hour_ms = int(first_mark.timestamp() * 1000)
    assert hour_ms <= trigger_ms < hour_ms + HOUR, (first_mark, trigger)
    assert float(liq["liquidation_price"][0]) == pytest.approx(lp, rel=1e-9)
    assert float(liq["maint_margin_rate"][0]) == tier.mmr
    # the replay table says the same thing
    _, rows = _run("2020-03-12", black_thursday, [20.0])
    assert rows[0]["survived"] is False
    assert rows[0]["first_liquidation"].startswith(first_mark.strftime("%Y-%m-%d %H"))
    assert rows[0]["liquidation_price"] == pytest.approx(lp, rel=1e-9)


def test_black_thursday_mark_not_last_decides(black_thursday):
    # find a leverage whose LP lies between the mark low and the last-price low of the crash
    lows = black_thursday.select(pl.col("low").min(), pl.col("mark_low").min()).row(0)
    last_low, mark_low = lows
    assert last_low < mark_low  # 3621.81 vs 3801.83 on 2020-03-13 02:00
    _, rows = _run("2020-03-12", black_thursday, [1.9, 2.0, 2.1, 2.2])
    tiers = default_tier_schedule("binance_usdm", SYMBOL).at(0, allow_before_first=True)
    for row in rows:
        qty = 10_000.0 / row["entry_price"]  # hold: notional = 1 x wallet
        lp, _ = _hand_lp(qty, row["entry_price"], row["leverage"], tiers)
        expected_liquidated = mark_low <= lp
        assert row["survived"] is (not expected_liquidated), (row["leverage"], lp, mark_low, last_low)
    assert any(r["survived"] for r in rows) and not all(r["survived"] for r in rows)
    # at least one of them would have been liquidated on the last price but survives on the mark
    survivors = [r for r in rows if r["survived"]]
    assert any(_hand_lp(10_000.0 / r["entry_price"], r["entry_price"], r["leverage"], tiers)[0] >= last_low
               for r in survivors)


@pytest.mark.parametrize("window_name, path, leverage", [
    ("2022-11-08-ftx", "klines/crash_2022-11-FTX/binance_um_BTCUSDT_5m_2022-11-07_2022-11-11.parquet", 10.0),
    ("2024-08-05", "klines/crash_2024-08-05/binance_um_BTCUSDT_5m_2024-08-04_2024-08-06.parquet", 10.0),
])
def test_5m_windows_without_mark_fall_back_to_last(shared_data: Path, tmp_path: Path, window_name, path, leverage):
    from data_loaders.store import MarketStore
    bars = read_shared_bars(shared_data / path)
    store = MarketStore(tmp_path / "store")
    store.write("ohlcv", bars.with_columns(exchange=pl.lit("binanceusdm"), symbol=pl.lit(SYMBOL),
                                           timeframe=pl.lit("5m"), price_type=pl.lit("last")), source="test")
    window = load_crashes().get(window_name)
    from backtest import RunConfig
    outcome = replay_library([window], store, strategy="hold", params={"side": "long"}, leverages=[2.0, leverage],
                             config=RunConfig(slippage="none"))
    # ETH was not written: its absence is reported with the command that fetches it
    assert len(outcome.missing) == 1
    assert "ETH/USDT:USDT" in outcome.missing[0] and window_name in outcome.missing[0]
    assert "margincall data fetch --exchange binanceusdm --symbol ETH/USDT:USDT --timeframe 5m" in outcome.missing[0]
    table = outcome.table
    assert table.height == 2
    assert all("mark = last price" in w for w in table["warnings"].to_list())
    in_window = bars.filter((pl.col("ts") >= window.start) & (pl.col("ts") < window.end))
    tiers = default_tier_schedule("binance_usdm", SYMBOL).at(window.start_ms, allow_before_first=True)
    for row in table.iter_rows(named=True):
        entry_row = in_window.row(1, named=True)
        assert row["entry_price"] == entry_row["open"]
        qty_guess = 10_000.0 / row["entry_price"]
        lp, _ = _hand_lp(qty_guess, row["entry_price"], row["leverage"], tiers)
        crossing = _first_crossing(in_window, entry_row["ts"], "low", lp)
        assert row["survived"] is (crossing is None)
        if crossing is not None:
            assert row["first_liquidation"].startswith(crossing.strftime("%Y-%m-%d %H:%M")[:-1])
            assert row["liquidation_price"] == pytest.approx(lp, rel=2e-3)  # qty is rounded to the lot
            assert row["loss"] > 0 and row["margin_lost"] > 0
    assert table.filter(pl.col("leverage") == 2.0)["survived"][0] is True
    assert table.filter(pl.col("leverage") == leverage)["survived"][0] is False


def test_a_position_the_venue_refuses_is_not_a_survivor() -> None:
    """125x of a 10,000 USDT wallet is 1.25M notional, beyond the 20x cap of that tier."""
    from backtest.risk.crashes import CrashWindow
    from backtest.risk.data import WindowData
    from backtest.risk.replay import replay_window
    from data_loaders.synthetic import engine_frames, generate_perpetual

    market = generate_perpetual(symbol="BTC/USDT:USDT", days=2, crash_day=1, seed=3, timeframe="1h")
    bars, funding = engine_frames(market)
    start, end = int(bars["ts"][0].timestamp() * 1000), market.end_ms
    window = CrashWindow(name="synthetic", title="synthetic crash", start_ms=start, end_ms=end,
                         symbols=("BTC/USDT:USDT",), timeframe="1h", description="", source="test")
    data = WindowData(bars=bars, funding=funding, warnings=[])
    low, = replay_window(window, "BTC/USDT:USDT", data, leverages=[1.0])
    assert low["entered"] and low["rejection"] is None
    # refused before the run (engine setup) with the cap named: one "refused" row, the ladder goes on
    _, high = replay_window(window, "BTC/USDT:USDT", data, leverages=[1.0, 125.0])
    assert not high["entered"] and not high["survived"]
    assert high["rejection"].startswith("refused:")
    assert "leverage 125x is above the venue's cap" in high["rejection"]
