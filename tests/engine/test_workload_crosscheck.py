"""The WORKLOAD cross-check model, re-derived by an independent plain-Python loop.

The reference below knows nothing of the engine: SMA cross always in the market, flips at the
next open (close, then open 1x the wallet), taker fee on every fill, funding at each
settlement on the position held into that bar at the mark price (against the isolated
margin), liquidation when the mark low/high reaches LP = (M - s*Q*EP) / (Q*mmr - s*Q) with one
0.5 % tier, the trader losing the isolated margin, re-entry at the next open.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from backtest import MarketData, RunConfig, run_backtest
from backtest.slippage import FixedBps
from backtest.venues.tiers import TierTable
from data_loaders.synthetic import engine_frames, generate_perpetual

BTC = "BTC/USDT:USDT"
MMR = 0.005
FEE = 0.0004


def reference(bars, funding, *, fast: int, slow: int, leverage: float, balance: float = 10_000.0):  # noqa: ANN001
    o = bars["open"].to_list()
    c = np.asarray(bars["close"].to_list())
    ml, mh = bars["mark_low"].to_list(), bars["mark_high"].to_list()
    mark_open = bars["mark_open"].to_list()
    ts = [int(t.timestamp() * 1000) for t in bars["ts"]]
    fund = {int(t.timestamp() * 1000): (r, m) for t, r, m in
            zip(funding["ts"], funding["rate"], funding["mark_price"])}
    n = len(o)
    sma_f = np.convolve(c, np.ones(fast) / fast)[: n]
    sma_s = np.convolve(c, np.ones(slow) / slow)[: n]
    side_at = [0] * n
    side = 0
    for i in range(n):
        if i >= slow - 1:
            if sma_f[i] > sma_s[i]:
                side = 1
            elif sma_f[i] < sma_s[i]:
                side = -1
        side_at[i] = side
    wallet, qty, entry, margin = balance, 0.0, 0.0, 0.0
    liquidations = 0
    want = 0
    for i in range(n):
        if ts[i] in fund and qty:
            rate, mark = fund[ts[i]]
            mark = mark if mark == mark else mark_open[i]
            pay = -qty * mark * rate
            wallet += pay
            margin += pay
        if want and (qty == 0 or (qty > 0) != (want > 0)):
            if qty:
                wallet += qty * (o[i] - entry) - abs(qty) * o[i] * FEE
            q = wallet / o[i]
            qty, entry, margin = want * q, o[i], q * o[i] / leverage
            wallet -= q * o[i] * FEE
        if qty:
            s = 1 if qty > 0 else -1
            q = abs(qty)
            lp = (margin - s * q * entry) / (q * MMR - s * q)
            if (s > 0 and ml[i] <= lp) or (s < 0 and mh[i] >= lp):
                wallet -= margin
                qty, margin = 0.0, 0.0
                liquidations += 1
        want = side_at[i]
    final = wallet + (qty * (bars["mark_close"][-1] - entry) if qty else 0.0)
    return final, liquidations


@pytest.mark.parametrize("leverage", [10.0, 50.0])
def test_engine_matches_the_reference_loop(leverage):
    market = generate_perpetual(days=30, crash_day=20, seed=3)
    bars, funding = engine_frames(market)
    data = MarketData.from_frames({BTC: bars}, {BTC: funding}, timeframe="1m")
    config = RunConfig(initial_balance=10_000.0, leverage=leverage, margin_mode="isolated",
                       tiers=TierTable.from_rates([(0.0, MMR)], max_leverage=[125.0]),
                       liquidation_fee_rate=0.0, fees=(FEE, FEE),
                       slippage=FixedBps(bps=0.0, forced_bps=10.0), rounding=False)
    result = run_backtest(data, "sma_cross", params={"fast": 20, "slow": 60}, config=config)
    expected_final, expected_liqs = reference(bars, funding, fast=20, slow=60, leverage=leverage)
    assert result.summary["n_liquidations"] == expected_liqs
    assert result.summary["final_equity"] == pytest.approx(expected_final, rel=1e-9)
    if leverage > 40:
        assert expected_liqs >= 1
    liq = result.liquidations
    if liq.height:
        assert (liq["slippage_bps"] - 10.0).abs().max() < 1e-6
        assert math.isclose(liq["margin_lost"].sum(), result.summary["liquidation_loss"])
