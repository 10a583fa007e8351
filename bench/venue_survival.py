"""Survival of ``hold`` long at 2, 5, 10, 20, 50x through two crash windows, by venue.

The built-in ``hold`` strategy, long, 10,000 USDT isolated, the default run configuration,
through the crash windows ``2020-03-12`` (1h candles + 1h mark + 8h funding) and
``2025-10-10`` (5m candles, mark = last, 8h funding) of the crash library, under every
registered venue's rules (:func:`backtest.venues.base.available_venues`). Prices: Binance
USDⓈ-M BTCUSDT from ../shared/data, imported into a temporary store the way the tests'
shared fixtures do; every venue reads the same prices with its own tiers, contract spec,
fees and liquidation fee (:func:`backtest.compare.compare_venues`). Inverse venues (COIN-M,
Bybit inverse, BitMEX) run on the same candles stored again as ``BTC/USD:BTC`` (a stated proxy:
the USDT price as the USD price, basis ignored) with the same stake held as coin bought at the
first open. A venue whose dated rules start after the window (dYdX v4, Hyperliquid, COIN-M in
2020) is ``n/a`` in the dated pass and is then run again with its earliest known tables
(``allow_tiers_before_first``), printed separately and marked as an assumption.

    MARGINCALL_SHARED=/work/shared .venv/bin/python bench/venue_survival.py

Prints the two survival tables, the liquidation price at entry per venue, and the wall and
CPU seconds with the machine's load average (the machine is shared).
"""
from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

SYMBOL = "BTC/USDT:USDT"
#: The same Binance candles stored a second time under the inverse symbol, so inverse venues
#: (COIN-M, Bybit inverse, BitMEX) can be compared on the same path (a stated proxy: the
#: USDT price taken as the USD price of the inverse contract; the basis is ignored).
INVERSE_SYMBOL = "BTC/USD:BTC"
LEVERAGES = (2.0, 5.0, 10.0, 20.0, 50.0)
WINDOWS = ("2020-03-12", "2025-10-10")
FILES = {
    "1h": "klines/long/binance_um_BTCUSDT_1h_2019-09-08_2026-05-17.parquet",
    "5m": "klines/crash_2025-10-10/binance_um_BTCUSDT_5m_2025-10-09_2025-10-12.parquet",
    "mark_1h": "mark/binance_um_BTCUSDT_markprice_1h_2019-12-23_2026-05-17.parquet",
    "funding": "funding/binance_um_BTCUSDT_funding_8h.parquet",
}


def shared_data() -> Path:
    """../shared/data (or $MARGINCALL_SHARED/data)."""
    root = Path(os.environ.get("MARGINCALL_SHARED", PROJECT.parent / "shared"))
    if not (root / "data").is_dir():
        sys.exit(f"error: {root}/data not found; set MARGINCALL_SHARED to the shared folder")
    return root / "data"


def build_store(data: Path, root: Path, windows: list) -> None:
    """Import the windows' Binance candles, marks and funding into a store at ``root``."""
    import polars as pl

    from data_loaders.store import MarketStore

    store = MarketStore(root)
    for symbol in (SYMBOL, INVERSE_SYMBOL):
        _write_symbol(store, data, symbol, windows)


def _exchange(symbol: str) -> str:
    """The store exchange of ``symbol``'s copy (the inverse proxy sits under COIN-M's id so the
    loader finds an inverse market spec for it; the prices are still Binance USDⓈ-M's)."""
    return "binancecoinm" if symbol == INVERSE_SYMBOL else "binanceusdm"


def _stake(data, symbol: str) -> float:
    """10,000 USDT, or for the inverse copy the same stake as coin bought at the first open
    (a run's balance is in its venue's margin asset; one stake makes the venues comparable)."""
    stake = 10_000.0
    return stake / float(data.bars[symbol].open[0]) if symbol == INVERSE_SYMBOL else stake


def _write_symbol(store, data: Path, symbol: str, windows: list) -> None:
    """Write the windows' candles, marks and funding under ``symbol``."""
    import polars as pl

    ident = {"exchange": pl.lit(_exchange(symbol)), "symbol": pl.lit(symbol)}

    def within(frame: pl.DataFrame, column: str) -> pl.DataFrame:
        keep = pl.lit(False)
        for w in windows:  # a day of margin either side: the loader reads the window only
            keep = keep | pl.col(column).is_between(w.start_ms - 86_400_000, w.end_ms + 86_400_000)
        return frame.filter(keep)

    for timeframe, key in (("1h", "1h"), ("5m", "5m"), ("1h", "mark_1h")):
        frame = pl.read_parquet(data / FILES[key]).select(
            pl.col("open_time").dt.epoch("ms").alias("t"), pl.col("open_time").alias("ts"),
            "open", "high", "low", "close", *([] if key.startswith("mark") else ["volume"]))
        frame = within(frame, "t").drop("t")
        if key.startswith("mark"):
            frame = frame.with_columns(volume=pl.lit(None, dtype=pl.Float64))
        store.write("ohlcv", frame.with_columns(**ident, timeframe=pl.lit(timeframe),
                                                price_type=pl.lit("mark" if key.startswith("mark") else "last")),
                    source=FILES[key])
    funding = pl.read_parquet(data / FILES["funding"]).select(
        pl.col("funding_time_utc").dt.epoch("ms").alias("t"), pl.col("funding_time_utc").alias("ts"),
        pl.col("funding_rate").alias("rate"), pl.col("funding_interval_hours").cast(pl.Float64).alias("interval_hours"))
    store.write("funding", within(funding, "t").drop("t").with_columns(
        **ident, mark_price=pl.lit(None, dtype=pl.Float64)), source=FILES["funding"])


def main() -> None:
    import polars as pl

    from backtest import RunConfig
    from backtest.compare import compare_venues
    from backtest.market_data import MarketData
    from backtest.risk.crashes import load_crashes
    from backtest.venues.base import available_venues
    from data_loaders.store import MarketStore

    wall0, cpu0 = time.perf_counter(), time.process_time()
    library = load_crashes([])
    windows = [library.get(name) for name in WINDOWS]
    venues = available_venues()
    pl.Config.set_tbl_rows(50)
    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(200)
    pl.Config.set_fmt_str_lengths(200)
    with tempfile.TemporaryDirectory(prefix="venue-survival-") as tmp:
        build_store(shared_data(), Path(tmp) / "store", windows)
        store = MarketStore(Path(tmp) / "store")
        print(f"hold long, 10,000 USDT isolated, {', '.join(f'{v:g}x' for v in LEVERAGES)}; "
              f"prices: binanceusdm {SYMBOL} (Binance USDⓈ-M, ../shared/data); rules: {', '.join(venues)}")
        reasons: dict[str, str] = {}
        # pass 1: each venue's rules as dated; pass 2 (marked): a venue's earliest known
        # tables applied before their start (dYdX v4, Hyperliquid did not exist in 2020)
        passes = [(window, symbol, early) for window in windows for symbol in (SYMBOL, INVERSE_SYMBOL)
                  for early in (False, True)]
        for window, symbol, early in passes:
            data = MarketData.from_store(store, exchange=_exchange(symbol), symbols=[symbol], timeframe=window.timeframe,
                                         start=window.start_ms, end=window.end_ms)
            comparison = compare_venues(data, "hold", venues=venues, leverages=LEVERAGES, params={"side": "long"},
                                        config=RunConfig(allow_tiers_before_first=early,
                                                         initial_balance=_stake(data, symbol)))
            table = comparison.table
            if early:  # only the venues whose dated rules did not cover the window
                missing = [v for v, r in reasons.items() if "no rules in force" in (r or "")]
                table = table.filter(pl.col("venue").is_in(missing) & pl.col("tradable"))
                if table.is_empty():
                    continue
                print(f"\n== {window.name}, {symbol}: venues without rules dated that early, their EARLIEST "
                      "known tables applied (allow_tiers_before_first; an assumption, not history)")
                print(table.select("venue", "leverage", "survived", "liquidated", "first_liquidation",
                                   "liquidation_price_at_entry", "loss", "bad_debt"))
                continue
            print(f"\n== {window.name} ({window.title}), {symbol}, {window.timeframe} bars, {len(data)} bars; "
                  f"{', '.join(dict.fromkeys(table['price_source'].to_list()))}")
            print(comparison.survival)
            print(table.filter(pl.col("tradable")).select(
                "venue", "leverage", "entry_price", "liquidation_price_at_entry", "first_liquidation", "loss",
                "bad_debt").with_columns(pl.col("liquidation_price_at_entry").round(2), pl.col("loss").round(2)))
            for row in table.filter(~pl.col("tradable")).unique("venue", keep="first").iter_rows(named=True):
                reasons[row["venue"]] = row["reason"]
            for warning in comparison.warnings:
                print(f"  data quality: {warning}")
        for venue, reason in reasons.items():
            print(f"n/a {venue}: {reason}")
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"\nwall {wall:.2f} s, CPU {cpu:.2f} s (+ children {children.ru_utime + children.ru_stime:.2f} s), "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
