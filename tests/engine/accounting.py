"""Accounting identities of a run, and random small runs to check them on.

Used by the property tests (tests/engine/test_accounting_properties.py, hypothesis draws the
cases) and by bench/identity_residuals.py (a seeded sweep that prints the worst residuals).

The identities (money in the margin asset, USDT):

* **conservation** (trader and fund together, nothing created or lost)::

      final_equity + insurance_fund = initial + sum(-signed_qty * price over all fills)
                                      + net_qty_end * mark_end - strategy fees + funding

  The liquidation clearance fee moves money from the trader to the fund (it cancels) and bad
  debt is the fund's payment of a trader's shortfall (it cancels): a bad debt charged twice,
  a wallet pushed below zero or a loss realised past bankruptcy without the fund paying it
  breaks the equality.
* **bad debt counted once**: ``insurance_fund + bad_debt`` of the summary equals the sum of
  ``insurance_fund_delta + bad_debt`` over the liquidation rows (the fund's takings: clearance
  fees and remainders); a shortfall booked by the wallet floor appears on both sides.
* **floors**: the wallet, every isolated margin and every row's bad debt are >= 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from backtest import MarketData, RunConfig, RunResult, run_backtest
from backtest.slippage import FixedBps, NoSlippage
from backtest.venues.tiers import TierTable
from tests.engine.scenario import MINUTE, SYMBOL, T0, Script, candles

#: Four brackets (cum from the recursion): tier-down has somewhere to step.
TIERS = TierTable.from_rates([(0.0, 0.005, 50.0), (20_000.0, 0.01, 25.0),
                              (60_000.0, 0.025, 20.0), (150_000.0, 0.05, 10.0)])


@dataclass(frozen=True)
class Case:
    """One random run: a price path, orders, funding and the configuration."""

    moves: tuple[float, ...]          # close-to-close returns per bar
    wicks: tuple[float, ...]          # last-price wick depth per bar (fraction)
    mark_lag: tuple[float, ...]       # mark wick as a share of the last wick (0..1)
    targets: tuple[tuple[int, float], ...]  # (bar, target exposure)
    funding: tuple[tuple[int, float], ...]  # (bar, rate) settled 30 s into the bar
    leverage: float
    margin_mode: str
    liquidation_mode: str
    remainder: str
    position_mode: str = "one_way"
    forced_bps: float = 0.0
    extra: dict = field(default_factory=dict)


def market_of(case: Case) -> MarketData:
    """1m candles of the case (mark inside the last-price range) and its funding."""
    rows = []
    price = 100.0
    for move, wick, lag in zip(case.moves, case.wicks, case.mark_lag):
        close = max(price * (1.0 + move), 1.0)
        low = min(price, close) * (1.0 - wick)
        high = max(price, close) * (1.0 + wick * 0.5)
        mark_low = min(price, close) - (min(price, close) - low) * lag
        mark_high = max(price, close) + (high - max(price, close)) * lag
        rows.append((price, high, low, close, price, mark_high, mark_low, close))
        price = close
    bars = candles(rows)
    funding = None
    settlements = sorted(dict(case.funding).items())  # one settlement per bar at most
    if settlements:
        funding = pl.DataFrame({
            "ts": [T0 + bar * MINUTE + 30_000 for bar, _ in settlements],
            "rate": [rate for _, rate in settlements],
            "interval_hours": [8.0] * len(settlements),
            "mark_price": [None] * len(settlements),
        }).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")),
                        pl.col("mark_price").cast(pl.Float64))
    return MarketData.from_frames({SYMBOL: bars}, {SYMBOL: funding} if funding is not None else None,
                                  timeframe="1m")


def run_case(case: Case) -> RunResult:
    """Run the case with fees, clearance fee and (optionally) forced slippage."""
    actions = {bar: (lambda x: lambda ctx: ctx.target_exposure(x))(x) for bar, x in case.targets}
    slippage = FixedBps(bps=1.0, forced_bps=case.forced_bps) if case.forced_bps else NoSlippage()

    class Trader(Script):
        exposure = max((abs(x) for _, x in case.targets), default=1.0) or 1.0

    cfg = RunConfig(initial_balance=10_000.0, leverage=case.leverage, margin_mode=case.margin_mode,
                    position_mode=case.position_mode, tiers=TIERS, fees=(0.0002, 0.0005),
                    liquidation_fee_rate=0.01, liquidation_mode=case.liquidation_mode,
                    liquidation_remainder=case.remainder, slippage=slippage, rounding=False,
                    **case.extra)
    return run_backtest(market_of(case), Trader(actions), config=cfg)


def residuals(result: RunResult) -> dict[str, float]:
    """Residuals of the identities (0 when they hold) and the floors' worst values."""
    s = result.summary
    fills = result.fills
    sign = pl.when(pl.col("side") == "buy").then(-1.0).otherwise(1.0)
    cash = fills.select((sign * pl.col("qty") * pl.col("price")).sum()).item() if fills.height else 0.0
    fees = fills.filter(pl.col("liquidity") != "liquidation")["fee"].sum() if fills.height else 0.0
    funding = result.funding["payment"].sum() if result.funding.height else 0.0
    last = result.equity.tail(1).row(0, named=True)
    open_value = result.positions.filter(pl.col("ts") == result.positions["ts"].max()) \
        .select((pl.col("qty") * pl.col("mark_price")).sum()).item() if result.positions.height \
        and last["gross_notional"] > 0 else 0.0
    conservation = (s["final_equity"] + s["insurance_fund_delta"]
                    - (s["initial_balance"] + cash + open_value - fees + funding))
    liq = result.liquidations
    takings = (liq["insurance_fund_delta"].sum() + liq["bad_debt"].sum()) if liq.height else 0.0
    once = s["insurance_fund_delta"] + s["bad_debt"] - takings
    isolated = result.positions.filter(pl.col("margin_mode") == "isolated")["isolated_margin"]
    return {
        "conservation": float(conservation),
        "bad_debt_once": float(once),
        "min_wallet": float(result.equity["wallet_balance"].min()),
        "min_isolated_margin": float(isolated.min()) if isolated.len() else 0.0,
        "min_row_bad_debt": float(liq["bad_debt"].min()) if liq.height else 0.0,
        "min_row_takings": float((liq["insurance_fund_delta"] + liq["bad_debt"]).min())
        if liq.height else 0.0,
    }


def random_case(rng: np.random.Generator, *, liquidation_mode: str, margin_mode: str,
                remainder: str, position_mode: str = "one_way") -> Case:
    """A seeded random case (for the bench sweep; the tests draw theirs with hypothesis)."""
    n = int(rng.integers(6, 30))
    moves = rng.normal(0.0, 0.03, n) + np.where(rng.random(n) < 0.15, rng.normal(0, 0.12, n), 0)
    targets = tuple((int(b), float(x)) for b, x in zip(
        rng.integers(0, n, int(rng.integers(1, 5))), rng.uniform(-7.5, 7.5, 4)))
    funding = tuple((int(b), float(r)) for b, r in zip(
        rng.integers(0, n, int(rng.integers(0, 3))), rng.choice([0.0001, 0.01, 0.5, -0.5], 3)))
    return Case(tuple(np.clip(moves, -0.6, 0.6).tolist()), tuple(rng.uniform(0, 0.1, n).tolist()),
                tuple(rng.uniform(0, 1, n).tolist()), targets, funding,
                float(rng.choice([2.0, 5.0, 10.0, 20.0])), margin_mode, liquidation_mode,
                remainder, position_mode, float(rng.choice([0.0, 20.0])))
