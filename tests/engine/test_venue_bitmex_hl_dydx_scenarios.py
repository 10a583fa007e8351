"""A position liquidated by hand from each venue's formula, reproduced by a real engine run.

BitMEX XBTUSD (inverse, takeover at bankruptcy into the insurance fund), Hyperliquid (a 20 %
slice of a large position, then the backstop vault after a gap) and dYdX v4 (the fillable
price as the liquidation fill, the 1.5 % fee to the insurance fund). Tiny inline candle tables
(tests/engine/scenario.py), no fees, no slippage, no liquidation latency, so every price of
the liquidations table is the arithmetic written here. Each run uses the venue's own built-in
tables (the market data's ``exchange``), not the textbook tier. A takeover fills at the last
price of the walked path at the trigger's millisecond, within a few cents of the threshold
(``PATH_MS``), so amounts that follow from the fill are computed from the reported fill.
"""
from __future__ import annotations

from typing import Any

import pytest

from backtest import MarketData
from tests.engine.scenario import LATENCY, SYMBOL, T0, candles
from tests.engine.venue_runs import Buy, run_held, run_venue

#: BitMEX's XBTUSD under its ccxt unified name (the store's).
SYMBOL_XBT = "BTC/USD:BTC"
BLACK_THURSDAY = 1_583_971_200_000  # 2020-03-12 00:00 UTC
#: How far the path's price moves in a millisecond at most here (800 USD over a 1m segment).
PATH_MS = 0.5


# ---- BitMEX XBTUSD, 2020-03-12 rules ------------------------------------------------------

def test_bitmex_long_is_taken_over_and_the_maintenance_goes_to_the_fund() -> None:
    """10,000 XBTUSD contracts long at 8,000 on 1 XBT, 10x isolated.

    Position value 10,000/8,000 = 1.25 XBT; margin 1.25/10 = 0.125 XBT; maintenance on the
    entry value at the first risk-limit step 1.25 x 0.5 % = 0.00625 XBT. Liquidation where the
    value reaches cost + margin - maintenance: 10,000 / (1.25 + 0.125 - 0.00625) = 7,305.94;
    bankruptcy where the loss is the margin: 10,000 / 1.375 = 7,272.73. The takeover fills at
    the liquidation mark (no latency, no slippage): what is left of the margin, the 0.00625
    XBT of maintenance, goes to the insurance fund; the trader keeps 1 - 0.125 = 0.875 XBT.
    """
    rows = [(8_000, 8_000, 8_000, 8_000)] * 3 + [(8_000, 8_000, 7_200, 7_500)] + \
        [(7_500, 7_500, 7_500, 7_500)]
    result = run_held("bitmex_inverse", "bitmex", SYMBOL_XBT, rows, 10_000, 1.0, start=BLACK_THURSDAY)
    (liq,) = result.liquidations.iter_rows(named=True)
    lp = 10_000 / (1.25 + 0.125 - 0.00625)
    assert liq["liquidation_price"] == pytest.approx(lp)
    assert liq["bankruptcy_price"] == pytest.approx(10_000 / 1.375)
    assert liq["fill_price"] == pytest.approx(lp, abs=PATH_MS)
    assert liq["qty"] == 10_000 and liq["maint_margin_rate"] == 0.005
    fund = 0.125 + 10_000 * (1 / 8_000 - 1 / liq["fill_price"])  # margin + inverse PnL
    assert liq["insurance_fund_delta"] == pytest.approx(fund, abs=1e-12)
    assert fund == pytest.approx(0.00625, abs=1e-5)
    assert liq["fee"] == 0.0 and liq["bad_debt"] == 0.0
    assert result.equity["wallet_balance"][-1] == pytest.approx(0.875)


def test_bitmex_gap_through_bankruptcy_is_paid_by_the_fund() -> None:
    """The same position when the bar opens at 7,000, below bankruptcy (7,272.73).

    Closing at 7,000 loses 10,000 x (1/8,000 - 1/7,000) = 0.178571 XBT against a margin of
    0.125: the fund pays the 0.053571 XBT shortfall; the trader still loses only the margin.
    """
    rows = [(8_000, 8_000, 8_000, 8_000)] * 3 + [(7_000, 7_000, 7_000, 7_000)]
    result = run_held("bitmex_inverse", "bitmex", SYMBOL_XBT, rows, 10_000, 1.0, start=BLACK_THURSDAY)
    (liq,) = result.liquidations.iter_rows(named=True)
    assert liq["fill_price"] == 7_000
    shortfall = 10_000 * (1 / 7_000 - 1 / 8_000) - 0.125
    assert liq["insurance_fund_delta"] == pytest.approx(-shortfall)
    assert result.equity["wallet_balance"][-1] == pytest.approx(0.875)


# ---- Hyperliquid, 2024 BTC table (50x: maintenance 1 %) ------------------------------------

HL = dict(liquidation_mode="tier_down", liquidation_remainder="trader")


def test_hyperliquid_large_position_loses_a_20_percent_slice_only() -> None:
    """4 BTC long at 50,000 (200k USDC > 100k: a large position) on 30,000 USDC, 10x isolated.

    Margin 20,000; maintenance 1 % (half of 1/50). [LIQ]'s price: 50,000 - (20,000 - 1 % x
    200,000) / 4 / (1 - 1 %) = 180,000 / 3.96 = 45,454.55. There 20 % (0.8 BTC) is sent to
    the book: it realizes 0.8 x (45,454.55 - 50,000) = -3,636.36, the margin left is 16,363.64
    and the 3.2 BTC left need 1 % x 3.2 x 45,454.55 = 1,454.55 while their equity is
    16,363.64 + 3.2 x (45,454.55 - 50,000) = 1,818.18: the account is healthy again, nothing
    more is sold. The next threshold, (160,000 - 16,363.64) / (3.2 x 0.99) = 45,339.51, is
    below the bar's low 45,400.
    """
    rows = [(50_000, 50_000, 50_000, 50_000)] * 3 + [(50_000, 50_000, 45_400, 45_600)] + \
        [(45_600, 45_600, 45_600, 45_600)]
    result = run_held("hyperliquid", "hyperliquid", SYMBOL, rows, 4.0, 30_000.0, **HL)
    (liq,) = result.liquidations.iter_rows(named=True)
    lp = 180_000 / 3.96
    assert liq["liquidation_price"] == pytest.approx(lp)
    fill = liq["fill_price"]
    assert fill == pytest.approx(lp, abs=PATH_MS)
    assert liq["qty"] == pytest.approx(0.8)
    assert result.positions["qty"][-1] == pytest.approx(3.2)
    assert result.positions["liquidation_price"][-1] == pytest.approx(
        (160_000 - (20_000 - 0.8 * (50_000 - fill))) / (3.2 * 0.99))
    assert result.positions["liquidation_price"][-1] == pytest.approx(45_339.51, abs=0.5)
    assert result.equity["wallet_balance"][-1] == pytest.approx(30_000 - 0.8 * (50_000 - fill))


def test_hyperliquid_gap_below_two_thirds_of_maintenance_is_the_backstop() -> None:
    """The same position when the bar opens at 44,000: equity 20,000 + 4 x (44,000 - 50,000)
    = -4,000 is below 2/3 of the maintenance (1,173.33): the backstop vault takes all 4 BTC,
    the trader loses the 20,000 margin and the 4,000 below bankruptcy is bad debt."""
    rows = [(50_000, 50_000, 50_000, 50_000)] * 3 + [(44_000, 44_000, 44_000, 44_000)]
    result = run_held("hyperliquid", "hyperliquid", SYMBOL, rows, 4.0, 30_000.0, **HL)
    (liq,) = result.liquidations.iter_rows(named=True)
    assert liq["qty"] == 4.0 and liq["fill_price"] == 44_000
    assert liq["bad_debt"] == pytest.approx(4_000.0)
    assert result.equity["wallet_balance"][-1] == pytest.approx(10_000.0)


# ---- dYdX v4, genesis large-cap tier (MMF 1.2 %) ------------------------------------------

DYDX = dict(liquidation_remainder="trader")


def test_dydx_liquidation_fills_at_the_fillable_price_and_pays_the_fund() -> None:
    """1 BTC long at 40,000 on 5,000 USDC, 10x isolated: margin 4,000.

    TNC = MMR where 4,000 + (P - 40,000) = 1.2 % P: P = 36,000 / 0.988 = 36,437.25. There
    TNC = TMMR, so ABR = 0 and the fillable price is the oracle price itself. What is left,
    4,000 - 3,562.75 = 437.25 (= the maintenance), is below the 1.5 % fee cap (546.56): all of
    it goes to the insurance fund, the trader keeps nothing of the margin.
    """
    rows = [(40_000, 40_000, 40_000, 40_000)] * 3 + [(40_000, 40_000, 36_000, 36_200)] + \
        [(36_200, 36_200, 36_200, 36_200)]
    result = run_held("dydx_v4", "dydx", SYMBOL, rows, 1.0, 5_000.0, **DYDX)
    (liq,) = result.liquidations.iter_rows(named=True)
    lp = 36_000 / 0.988
    assert liq["liquidation_price"] == pytest.approx(lp)
    assert liq["fill_price"] == pytest.approx(lp)
    assert liq["fee"] == pytest.approx(4_000 - (40_000 - lp))
    assert result.equity["wallet_balance"][-1] == pytest.approx(1_000.0)


def test_dydx_gap_fills_at_the_adjusted_fillable_price() -> None:
    """The bar opens at 35,000: TNC = 4,000 - 5,000 < 0, so ABR = 1 and the fillable price is
    35,000 x (1 - 150 % x 1.2 %) = 34,370; the fill is 5,630 below entry, 1,630 beyond the
    margin: bad debt paid by the insurance fund; the trader loses the 4,000 margin."""
    rows = [(40_000, 40_000, 40_000, 40_000)] * 3 + [(35_000, 35_000, 35_000, 35_000)]
    result = run_held("dydx_v4", "dydx", SYMBOL, rows, 1.0, 5_000.0, **DYDX)
    (liq,) = result.liquidations.iter_rows(named=True)
    assert liq["fill_price"] == pytest.approx(34_370.0)
    assert liq["bad_debt"] == pytest.approx(1_630.0)
    assert result.equity["wallet_balance"][-1] == pytest.approx(1_000.0)


@pytest.mark.parametrize(("venue", "exchange", "symbol"), [
    ("bitmex_inverse", "bitmex", SYMBOL_XBT), ("hyperliquid", "hyperliquid", SYMBOL),
    ("dydx_v4", "dydx", SYMBOL)])
def test_hedge_mode_is_refused_before_the_run(venue: str, exchange: str, symbol: str) -> None:
    """None of the three has a hedge mode: a hedge run is a clear error, not a silent run
    without liquidation thresholds."""
    from backtest.errors import ConfigError

    rows = [(40_000, 40_000, 40_000, 40_000)] * 3
    with pytest.raises(ConfigError, match="one_way"):
        run_held(venue, exchange, symbol, rows, 1.0, 5_000.0, start=BLACK_THURSDAY
                 if venue == "bitmex_inverse" else T0, position_mode="hedge")


# ---- Black Thursday under BitMEX's rules ---------------------------------------------------

def test_black_thursday_replay_under_bitmex_rules(shared_data: Any) -> None:
    """2020-03-11..13 with Binance's BTCUSDT perpetual 1h last and mark prices standing in for
    XBTUSD's last and Fair Price (../shared holds no BitMEX candles; stated in the warnings).

    50,000 contracts long from the window's first open on 1 XBT at 10x: position value
    Q/EP, margin Q/EP/10, maintenance 0.5 % of the entry value (first risk-limit step), so the
    liquidation mark is Q / (Q/EP x (1 + 0.1 - 0.005)) = EP / 1.095, and the trader loses the
    margin (takeover at bankruptcy; fees off), whatever the crash's fill.
    """
    import polars as pl

    start, end = pl.datetime(2020, 3, 11, time_zone="UTC"), pl.datetime(2020, 3, 14, time_zone="UTC")
    window = pl.col("open_time").is_between(start, end, closed="left")
    last = pl.read_parquet(shared_data / "klines" / "long"
                           / "binance_um_BTCUSDT_1h_2019-09-08_2026-05-17.parquet").filter(window)
    mark = pl.read_parquet(shared_data / "mark"
                           / "binance_um_BTCUSDT_markprice_1h_2019-12-23_2026-05-17.parquet"
                           ).filter(window).select("open_time", *[pl.col(c).alias(f"mark_{c}")
                                                                    for c in ("open", "high", "low", "close")])
    frame = last.join(mark, on="open_time").sort("open_time").select(
        pl.col("open_time").alias("ts"), "open", "high", "low", "close", "volume",
        "mark_open", "mark_high", "mark_low", "mark_close")
    assert frame.height == 72
    proxy = ("BTC/USD:BTC (XBTUSD): Binance USDT-M BTCUSDT 1h last and mark prices stand in for "
             "BitMEX's last and Fair Price (proxy; ../shared has no BitMEX candles)")
    data = MarketData.from_frames({SYMBOL_XBT: frame}, timeframe="1h", exchange="bitmex",
                                  quality_warnings=(proxy,))
    contracts = 50_000.0
    result = run_venue(data, Buy(contracts), venue="bitmex_inverse", balance=1.0,
                       liquidation_latency_ms=LATENCY)
    assert proxy in result.manifest["quality_warnings"]
    (liq,) = result.liquidations.iter_rows(named=True)
    entry = liq["entry_price"]
    assert entry == frame["open"][1]  # bought at the first close, filled at the next open
    assert liq["liquidation_price"] == pytest.approx(entry / 1.095)
    assert liq["bankruptcy_price"] == pytest.approx(entry / 1.1)
    assert liq["mark_price"] <= liq["liquidation_price"] * (1 + 1e-9)
    assert liq["ts"].date().isoformat() == "2020-03-12"
    margin = contracts / entry / 10.0
    assert result.equity["wallet_balance"][-1] == pytest.approx(1.0 - margin)
    assert liq["insurance_fund_delta"] == pytest.approx(
        margin + contracts * (1 / entry - 1 / liq["fill_price"]), abs=1e-12)


def test_bitmex_short_above_a_risk_limit_step_keeps_its_step() -> None:
    """A short of 2,100,000 contracts at 10,000 is worth 210 XBT at entry: the second step
    (1 %), though at its liquidation price the value is below 200 XBT. Margin 21 XBT (10x):
    liquidation where 210 - Q/P = 21 - 2.1, i.e. P = 2,100,000 / (210 - 18.9) = 10,989.01
    (the first step's 0.5 % would give 2,100,000 / 190.05 = 11,049.72)."""
    class Sell(Buy):
        def on_bar(self, ctx: Any) -> None:
            if ctx.bar_index == 0:
                ctx.sell(self.qty)

    rows = [(10_000, 10_000, 10_000, 10_000)] * 4
    data = MarketData.from_frames({SYMBOL_XBT: candles(rows, start=BLACK_THURSDAY)}, timeframe="1m",
                                  exchange="bitmex")
    result = run_venue(data, Sell(2_100_000.0), venue="bitmex_inverse", balance=50.0,
                       liquidation_latency_ms=LATENCY)
    assert result.positions["liquidation_price"][-1] == pytest.approx(2_100_000 / (210 - 18.9))
