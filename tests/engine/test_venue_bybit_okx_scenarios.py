"""Bybit (linear, inverse) and OKX through the engine: tiny candle tables, liquidations by hand.

Each scenario builds its own market data (no price-source rule involved), opens a position by
a strategy, writes the venue's formula out by hand, and checks that a real ``run_backtest``
with ``venue=...`` liquidates it where, when and at what the formula says. Where the venues
disagree, the same candles are run under Binance USDⓈ-M too: the candle that liquidates under
one venue's rule leaves the position alive under the other's.

Common setup: no trading fees, no slippage, no rounding; the venue's own clearance fee. A long
of 1x wallet (10,000 USDT) at 100 with 10x isolated holds 100 units and posts 1,000 USDT.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest

from backtest import MarketData, RunConfig, run_backtest
from backtest.venues.tiers import Tier, TierTable
from tests.engine.scenario import LATENCY, MINUTE, SYMBOL, T0, Script, candles, path_at, trigger_ms
from tests.engine.venue_runs import QUIET, Buy, run_venue

FLAT = (100.0, 100.0, 100.0, 100.0)
HOUR = 3_600_000


def long_at_bar0(ctx: Any) -> None:
    ctx.target_exposure(1.0)


def _linear_data(rows: list[tuple], venue: str, tiers: TierTable | None = None) -> MarketData:
    return MarketData.from_frames({SYMBOL: candles(rows)}, timeframe="1m", exchange=venue,
                                  tiers=None if tiers is None else {SYMBOL: tiers})


def _config(venue: str, **kw: Any) -> RunConfig:
    return RunConfig(**{**QUIET, "venue": venue, "initial_balance": 10_000.0, **kw})


def _one(frame: pl.DataFrame) -> dict:
    assert frame.height == 1, frame
    return frame.row(0, named=True)


def _ms(value: Any) -> int:
    return int(value.timestamp() * 1000)


# --------------------------------------------------------------------------- bybit_linear
#: The crash candle: open 100, low 90.48, close 95 (mark = last); worst case for a long, the
#: path is open -> low -> high -> close.
CRASH = (100.0, 100.0, 90.48, 95.0)


def test_bybit_linear_long_is_liquidated_at_bybits_entry_value_price() -> None:
    """Bybit [LP-USDT]: ``LP = EP - (IM - MM)/size`` with MM at the *entry* value.

    Built-in BTCUSDT risk limit 1 (up to 2,000,000 USDT): MMR 0.5 %, no deduction.
    100 units @ 100: IM = 10,000/10 = 1,000; MM = 10,000 * 0.5 % = 50;
    LP = 100 - (1,000 - 50)/100 = 90.50. Bankruptcy = 100*(1 - 1/10) = 90.
    Binance's rule (MM at the mark) gives (1,000 - 10,000)/(100*0.005 - 100) = 90.4523 < 90.48,
    so the same candle does not liquidate the Binance run.
    """
    rows = [FLAT, FLAT, CRASH, (95.0, 95.0, 95.0, 95.0)]
    result = run_backtest(_linear_data(rows, "bybit_linear"), Script({0: long_at_bar0}),
                          config=_config("bybit_linear"))
    r = _one(result.liquidations)
    lp = 100.0 - (1_000.0 - 50.0) / 100.0
    assert lp == 90.5
    assert r["liquidation_price"] == pytest.approx(lp, rel=1e-12)
    assert r["bankruptcy_price"] == pytest.approx(90.0, rel=1e-12)
    assert r["maint_margin_rate"] == 0.005 and r["tier"] == 1
    # the mark crosses 90.5 on the open -> low segment; the forced fill is 1 s later on the path
    start = T0 + 2 * MINUTE
    path = (100.0, 90.48, 100.0, 95.0)
    trig = trigger_ms(start, MINUTE, path, lp)
    assert _ms(r["trigger_ts"]) == trig
    assert r["mark_price"] == pytest.approx(lp, rel=1e-9)
    fill = path_at(start, MINUTE, path, trig + LATENCY)
    assert r["fill_price"] == pytest.approx(fill, rel=1e-12)
    # remaining margin 1,000 + 100*(fill - 100) goes to the fund after Bybit's fee to close
    # (the taker rate 0.055 % of the liquidated value, backtest/venues/data/bybit_linear.toml)
    remaining = 1_000.0 + 100.0 * (fill - 100.0)
    fee = min(0.00055 * 100.0 * fill, remaining)
    assert r["fee"] == pytest.approx(fee, rel=1e-9)
    assert r["insurance_fund_delta"] == pytest.approx(remaining, rel=1e-9)
    assert result.equity["wallet_balance"][-1] == pytest.approx(9_000.0)

    binance = run_backtest(_linear_data(rows, "bybit_linear", TierTable.from_rates(
        [(0.0, 0.005)], max_leverage=[100.0])), Script({0: long_at_bar0}),
        config=_config("binance_usdm"))
    assert binance.liquidations.height == 0
    assert binance.positions["liquidation_price"][0] == pytest.approx(
        (1_000.0 - 10_000.0) / (100 * 0.005 - 100.0), rel=1e-12)


def test_bybit_linear_lowers_the_risk_limit_before_a_takeover() -> None:
    """Bybit's liquidation process (margin_rules.md §3.4) with ``liquidation_mode="tier_down"``.

    Risk limits (scenario table, USDT): [0, 5,000) 1 %, [5,000, 20,000) 5 % (deduction
    5,000*(5 % - 1 %) = 200). 20,000 USDT wallet, 2x isolated long of 1x wallet: 200 units @ 100,
    IM = 10,000, entry value 20,000: risk limit 2.
    Tier 2 entry-value MM = 20,000*5 % - 200 = 800: LP = 100 - (10,000 - 800)/200 = 54.
    At the trigger mark 54 the position value is 200*54 = 10,800, in tier 2: Bybit lowers the
    risk limit by closing what takes the value just below 5,000: keep 5,000/54 (x (1 - 1e-9))
    units, close the rest at the mark. The margin balance at the trigger, 10,000 + 200*(54 - 100)
    = 800, pays the step's fee (0.055 % of the closed value); what is left must exceed the tier-1
    MM of the remainder, 1 % of ~5,000 = 50: it does, so the remainder stays open.
    """
    tiers = TierTable([Tier(0.0, 5_000.0, 100.0, 0.01, 0.0),
                       Tier(5_000.0, 1_000_000.0, 10.0, 0.05, 200.0)], label="scenario risk limits")
    down = (100.0, 100.0, 53.0, 60.0)
    rows = [FLAT, FLAT, down, (60.0, 60.0, 60.0, 60.0)]
    result = run_backtest(_linear_data(rows, "bybit_linear", tiers), Script({0: long_at_bar0}),
                          config=_config("bybit_linear", initial_balance=20_000.0, leverage=2.0,
                                         liquidation_mode="tier_down"))
    lp = 100.0 - (10_000.0 - (20_000.0 * 0.05 - 200.0)) / 200.0
    assert lp == 54.0
    liq = result.liquidations
    assert liq.height == 1  # one risk-limit step restored compliance: no takeover
    r = liq.row(0, named=True)
    assert r["liquidation_price"] == pytest.approx(lp, rel=1e-12)
    keep = 5_000.0 / lp * (1.0 - 1e-9)
    assert r["qty"] == pytest.approx(200.0 - keep, rel=1e-9)
    assert r["fee"] == pytest.approx(0.00055 * (200.0 - keep) * r["fill_price"], rel=1e-9)
    balance = 10_000.0 + 200.0 * (lp - 100.0) - 0.00055 * (200.0 - keep) * lp
    assert balance - 0.01 * keep * lp > 0  # compliant at tier 1: Bybit stops here
    final = result.positions.row(-1, named=True)
    assert final["qty"] == pytest.approx(keep, rel=1e-9)


# --------------------------------------------------------------------------- bybit_inverse
def _hourly(prices: list[float]) -> pl.DataFrame:
    p = np.asarray(prices, dtype=float)
    frame = pl.DataFrame({"ts": T0 + np.arange(p.size, dtype=np.int64) * HOUR, "open": p,
                          "high": p, "low": p, "close": p, "volume": np.full(p.size, 1e6)})
    return frame.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")),
                              mark_open=pl.col("open"), mark_high=pl.col("high"),
                              mark_low=pl.col("low"), mark_close=pl.col("close"))


def test_bybit_inverse_long_is_liquidated_at_the_coin_margined_price() -> None:
    """Bybit inverse (§3.3, UTA isolated form): ``LP(long) = Q / [PV + (IM - MM)]``, in coin.

    BTCUSD contracts are 1 USD. 10,000 contracts @ 10,000: Q = 10,000 USD, PV = Q/EP = 1 BTC;
    10x isolated: IM = 0.1 BTC; built-in risk limit 1 (up to 150 BTC): MMR 0.5 %, MM = 0.005
    BTC at the entry value. LP = 10,000 / (1 + 0.1 - 0.005) = 9,132.42; bankruptcy (zero coin
    equity) = 10,000 / (1 + 0.1) = 9,090.91. The market gaps from 10,000 to 9,000 at an open:
    the trigger is that open, the forced fill 1 s later at 9,000, below the bankruptcy price,
    so the loss beyond the margin, 10,000*(1/9,000 - 1/10,000) - 0.1 = 1/90 BTC, is bad debt.
    """
    symbol = "BTC/USD:BTC"
    data = MarketData.from_frames({symbol: _hourly([10_000.0] * 3 + [9_000.0] * 2)},
                                  timeframe="1h", exchange="bybit_inverse")
    result = run_venue(data, Buy(10_000), venue="bybit_inverse", balance=1.0,
                       liquidation_latency_ms=LATENCY)
    r = _one(result.liquidations)
    assert r["liquidation_price"] == pytest.approx(10_000.0 / (1.0 + 0.1 - 0.005), rel=1e-12)
    assert r["bankruptcy_price"] == pytest.approx(10_000.0 / 1.1, rel=1e-12)
    assert _ms(r["trigger_ts"]) == T0 + 3 * HOUR
    assert r["fill_price"] == 9_000.0
    assert r["bad_debt"] == pytest.approx(10_000.0 * (1 / 9_000 - 1 / 10_000) - 0.1, rel=1e-9)
    assert r["fee"] == 0.0  # nothing left to pay the fee to close from
    assert result.equity["wallet_balance"][-1] == pytest.approx(0.9)


# --------------------------------------------------------------------------- okx
def test_okx_long_is_liquidated_when_the_margin_ratio_reaches_100_percent() -> None:
    """OKX (§4): liquidation at ``(margin + UPL) / (size*P*(MMR + fee)) = 1``.

    Built-in BTC-USDT-SWAP tier (one tier, MMR 0.4 %); the fee in OKX's ratio is the venue's
    taker rate 0.05 % (the run's own trading fees are zero here):
    LP = (EP - margin/size) / (1 - (MMR + fee)) = (100 - 10) / (1 - 0.0045) = 90.4068.
    Binance's rule with the same 0.4 % tier: (1,000 - 10,000)/(100*0.004 - 100) = 90.3614,
    below the candle's low 90.38: the Binance run survives it.
    """
    crash = (100.0, 100.0, 90.38, 95.0)
    rows = [FLAT, FLAT, crash, (95.0, 95.0, 95.0, 95.0)]
    result = run_backtest(_linear_data(rows, "okx"), Script({0: long_at_bar0}),
                          config=_config("okx"))
    r = _one(result.liquidations)
    lp = (100.0 - 1_000.0 / 100.0) / (1.0 - (0.004 + 0.0005))
    assert r["liquidation_price"] == pytest.approx(lp, rel=1e-12)
    assert r["bankruptcy_price"] == pytest.approx(90.0, rel=1e-12)
    start = T0 + 2 * MINUTE
    path = (100.0, 90.38, 100.0, 95.0)
    trig = trigger_ms(start, MINUTE, path, lp)
    assert _ms(r["trigger_ts"]) == trig
    fill = path_at(start, MINUTE, path, trig + LATENCY)
    assert r["fill_price"] == pytest.approx(fill, rel=1e-12)
    # OKX's liquidation fee (the Lv1 taker rate, data/okx.toml) on the liquidated value
    remaining = 1_000.0 + 100.0 * (fill - 100.0)
    assert r["fee"] == pytest.approx(min(0.0005 * 100.0 * fill, remaining), rel=1e-9)
    # the equity table's maintenance requirement is OKX's denominator, at the mark
    eq = result.equity.row(1, named=True)
    assert eq["maintenance_margin"] == pytest.approx(100.0 * 100.0 * 0.0045, rel=1e-12)

    binance = run_backtest(_linear_data(rows, "okx", TierTable.from_rates(
        [(0.0, 0.004)], max_leverage=[100.0])), Script({0: long_at_bar0}),
        config=_config("binance_usdm"))
    assert binance.liquidations.height == 0


def test_okx_partial_liquidation_steps_down_a_tier_then_stops() -> None:
    """OKX's partial liquidation (§4) with ``liquidation_mode="tier_down"``.

    Tiers (scenario table, USDT notional): [0, 5,000) 1 %, [5,000, 1,000,000) 5 %; OKX charges the
    tier's rate on the whole position, plus the fee 0.05 % in the requirement. 20,000 USDT,
    2x isolated long of 1x wallet: 200 units @ 100, margin 10,000. Over the tier-2 price range
    [25, 200) the margin ratio reaches 100 % at LP = (100 - 50)/(1 - 0.0505) = 52.66, where the
    notional 10,532 is in tier 2 (the tier-1 solution (100 - 50)/(1 - 0.0105) = 50.53 lies
    outside tier 1's range [0, 25)). At the trigger OKX closes what takes the notional just
    below 5,000 (keep 5,000/LP units) and stops when the rest is above its requirement.
    """
    tiers = TierTable([Tier(0.0, 5_000.0, 100.0, 0.01, 0.0),
                       Tier(5_000.0, 1_000_000.0, 10.0, 0.05, 200.0)], label="scenario tiers")
    rows = [FLAT, FLAT, (100.0, 100.0, 52.0, 60.0), (60.0, 60.0, 60.0, 60.0)]
    result = run_backtest(_linear_data(rows, "okx", tiers), Script({0: long_at_bar0}),
                          config=_config("okx", initial_balance=20_000.0, leverage=2.0,
                                         liquidation_mode="tier_down"))
    lp = (100.0 - 10_000.0 / 200.0) / (1.0 - (0.05 + 0.0005))
    assert 5_000.0 <= 200.0 * lp < 1_000_000.0
    r = _one(result.liquidations)
    assert r["liquidation_price"] == pytest.approx(lp, rel=1e-12)
    keep = 5_000.0 / lp * (1.0 - 1e-9)
    assert r["qty"] == pytest.approx(200.0 - keep, rel=1e-9)
    balance = 10_000.0 + 200.0 * (lp - 100.0) - 0.0005 * (200.0 - keep) * lp
    assert balance - keep * lp * (0.01 + 0.0005) > 0  # compliant in tier 1: OKX stops
    assert result.positions.row(-1, named=True)["qty"] == pytest.approx(keep, rel=1e-9)
    assert not math.isnan(r["fill_price"])
