"""Cross margin over N symbols on the event path: microseconds per symbol-bar.

Synthetic one-minute bars (a seeded random walk per symbol, marks = lasts), one cross pool
holding every symbol from the first bar (alternating long / short, 1x the wallet in total at
5x), a rebalance of every symbol once a day (fills, so the pool's thresholds are refreshed by
state changes as well as by every bar's open), Binance-like four-bracket tiers. The run is
``backtest.run_backtest`` (the Python ``on_bar`` loop).

Usage (from the project root)::

    .venv/bin/python bench/cross_margin.py [--symbols 1 10 40 100] [--days 30] [--year40]

Prints one JSON line per run: ``symbols``, ``bars``, ``loop_s`` (run_backtest including the
result), ``us_per_symbol_bar`` (``loop_s / (symbols * bars)``), ``cpu_us_per_symbol_bar`` (the
same with the process's CPU time: steadier on a shared machine), ``fills``, ``liquidations``,
``load_1m`` (the machine's 1-minute load average when the run ended). The default prints the
curve (1, 10, 40, 100 symbols over 30 days); ``--year40`` adds 40 symbols over one year.
Target (issue 10): 40 symbols over one year <= 1.5 us per symbol-bar.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
import polars as pl

MINUTE_MS = 60_000
START_MS = 1_672_531_200_000  # 2023-01-01 UTC


def synthetic_data(n_symbols: int, n_bars: int, seed: int = 7) -> Any:
    """MarketData of ``n_symbols`` random-walk 1m series sharing one clock."""
    from backtest.market_data import MarketData
    from backtest.venues.defaults import default_market
    from backtest.venues.tiers import TierTable
    import dataclasses

    rng = np.random.default_rng(seed)
    ts = START_MS + np.arange(n_bars, dtype=np.int64) * MINUTE_MS
    table = TierTable.from_rates([(0.0, 0.004), (50_000.0, 0.005), (250_000.0, 0.01),
                                  (1_000_000.0, 0.025)], max_leverage=[125.0, 100.0, 50.0, 20.0],
                                 label="bench four brackets")
    base = default_market("binance_usdm", "BTC/USDT:USDT")
    frames, tiers, markets = {}, {}, {}
    for k in range(n_symbols):
        symbol = f"S{k:03d}/USDT:USDT"
        steps = rng.normal(0.0, 0.0008, n_bars)
        close = 100.0 * (1 + k % 7) * np.exp(np.cumsum(steps))
        open_ = np.concatenate(([close[0]], close[:-1]))
        spread = np.abs(rng.normal(0.0, 0.0004, n_bars)) * close
        high = np.maximum(open_, close) + spread
        low = np.minimum(open_, close) - spread
        frame = pl.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                              "volume": np.full(n_bars, 1_000.0)})
        frame = frame.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")),
                                   mark_open=pl.col("open"), mark_high=pl.col("high"),
                                   mark_low=pl.col("low"), mark_close=pl.col("close"))
        frames[symbol] = frame
        tiers[symbol] = table
        markets[symbol] = dataclasses.replace(base, symbol=symbol)
    return MarketData.from_frames(frames, timeframe="1m", tiers=tiers, markets=markets)


def _strategy(n_symbols: int) -> Any:
    from backtest.strategy import Strategy

    class CrossBook(Strategy):
        """Every symbol held in one cross pool; rebalanced once a day."""

        name = "cross_book"

        def on_bar(self, ctx: Any) -> None:
            if ctx.bar_index % 1440:
                return
            share = 1.0 / n_symbols
            for k, symbol in enumerate(ctx.symbols):
                ctx.target_exposure(share if k % 2 == 0 else -share, symbol, tolerance=0.0)

    return CrossBook


def run_once(n_symbols: int, n_bars: int) -> dict[str, Any]:
    """One run; its figures."""
    from backtest import RunConfig, run_backtest

    data = synthetic_data(n_symbols, n_bars)
    config = RunConfig(initial_balance=100_000.0, leverage=5.0, margin_mode="cross",
                       fees=(0.0002, 0.0004))
    start, cpu = time.perf_counter(), time.process_time()
    result = run_backtest(data, _strategy(n_symbols), config=config)
    loop_s = time.perf_counter() - start
    cpu_s = time.process_time() - cpu
    summary = result.summary
    return {"symbols": n_symbols, "bars": n_bars, "loop_s": round(loop_s, 3),
            "us_per_symbol_bar": round(loop_s / (n_symbols * n_bars) * 1e6, 3),
            "cpu_us_per_symbol_bar": round(cpu_s / (n_symbols * n_bars) * 1e6, 3),
            "fills": summary["n_fills"], "liquidations": summary["n_liquidations"],
            "load_1m": round(os.getloadavg()[0], 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[1, 10, 40, 100])
    parser.add_argument("--days", type=int, default=30, help="length of each run, days of 1m")
    parser.add_argument("--year40", action="store_true", help="also 40 symbols over 365 days")
    args = parser.parse_args(argv)
    for n in args.symbols:
        print(json.dumps(run_once(n, args.days * 1440)), flush=True)
    if args.year40:
        print(json.dumps(run_once(40, 365 * 1440)), flush=True)


if __name__ == "__main__":
    main()
