"""ADL demo: a synthetic crash in which a counterparty's loss exhausts the insurance fund and
the account's profitable short is auto-deleveraged (prints its tables; not a timed test).

The account: a 1 BTC short at 5x, cross margin, Multi-Assets Mode with 0.5 BTC of collateral
besides 4,000 USDT. The market: 3 days of synthetic 5-minute BTC candles; the stress scenario
``shock:-0.25@2022-11-09T13:00Z + adl:3e6@2022-11-09T13:00Z`` gaps the price down 25 % and, at
that open, liquidates a long counterparty with a 3,000,000 USDT loss beyond its bankruptcy
price against a 1,000,000 USDT fund: the fund pays 1,000,000 and is exhausted, and the
uncovered 2/3 of the counterparty's size is taken from the account's short at the gapped
mark (the counterparty is as large as the account's short: ``backtest.adl``'s assumption).

    .venv/bin/python bench/adl_demo.py [--out runs/adl-demo]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backtest import MarketData, RunConfig, run_backtest  # noqa: E402
from backtest.risk.scenarios import StressMarket, parse_scenario  # noqa: E402

SYMBOL = "BTC/USDT:USDT"
START = 1_667_865_600_000  # 2022-11-08 00:00 UTC
STEP = 300_000  # 5 minutes
SCENARIO = "crash-adl=shock:-0.25@2022-11-09T13:00Z+adl:3e6@2022-11-09T13:00Z"


def synthetic_bars(n: int = 3 * 288) -> pl.DataFrame:
    """A calm, slightly drifting BTC path (deterministic), mark = last."""
    rows = []
    price = 20_000.0
    for k in range(n):
        close = price * (1.0 + 0.0004 * math.sin(k / 7.0) - 0.00002)
        high, low = max(price, close) * 1.0005, min(price, close) * 0.9995
        rows.append((START + k * STEP, price, high, low, close, 50.0))
        price = close
    frame = pl.DataFrame(rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row")
    return frame.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the run (and its report) here")
    args = parser.parse_args()
    scenario = parse_scenario(SCENARIO)
    stressed = scenario.apply(StressMarket(bars={SYMBOL: synthetic_bars()}))
    data = stressed.market_data(timeframe="5m")
    base = RunConfig(initial_balance=4_000.0, leverage=5.0, margin_mode="cross",
                     collateral={"BTC": 0.5, "USDT": 4_000.0}, insurance_fund=1_000_000.0,
                     slippage="none")
    config = stressed.config(base)
    result = run_backtest(data, "hold", params={"side": "short", "exposure": 5.0}, config=config)
    pl.Config.set_tbl_cols(12)
    pl.Config.set_tbl_width_chars(160)
    pl.Config.set_float_precision(4)
    print(f"scenario: {scenario.describe()}")
    print("adl table:")
    print(result.adl)
    print("insurance_fund table:")
    print(result.insurance_fund)
    at = stressed.adl_events[0].ts
    window = result.equity.filter(pl.col("ts").dt.epoch("ms").is_between(at - 2 * STEP, at + 2 * STEP))
    print("equity around the event (collateral valued at the BTC mark, 95 %):")
    print(window.select("ts", "wallet_balance", "collateral_value", "unrealized_pnl", "equity",
                        "position_qty", "mark_price"))
    keys = ("n_adl", "adl_qty", "adl_realized_pnl", "first_adl_ts", "insurance_fund_start",
            "insurance_fund_end", "insurance_fund_max_drawdown", "insurance_fund_uncovered",
            "collateral_value_start", "collateral_value_end", "n_liquidations", "final_equity")
    print({k: result.summary[k] for k in keys})
    if args.out is not None:
        from reports.single import write_report

        out = result.write(args.out)
        print(f"report: {write_report(out)}")


if __name__ == "__main__":
    main()
