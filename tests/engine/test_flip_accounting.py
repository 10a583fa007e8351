"""A position flip is one fill sequence: the target order closes the old side, then opens the
new one sized on the wallet the close left, both at the next bar's open.

With a constant impact (``FixedBps``) both fills take the one slipped price (both sell, or
both buy, at the same reference); a model whose impact depends on the fill (here on its
quantity) is asked for each fill. The expected figures are computed here from the rules
(fee = notional x taker rate, realized = qty x (price - entry), size = wallet / price).
"""
from __future__ import annotations

import numpy as np
import pytest

from backtest import MarketData, RunConfig, run_backtest, run_signals
from backtest.fastpath import SignalStrategy
from backtest.slippage import FixedBps
from data_loaders.synthetic import engine_frames, generate_perpetual

BTC = "BTC/USDT:USDT"
FLIP = 200  # the signal turns short at this bar's close: the flip fills at the next open
TAKER = 0.0005


class QtyImpact(FixedBps):
    """An impact that grows with the fill's quantity (not constant: asked per fill)."""

    def impact(self, *, qty: float, price: float, bar_high: float, bar_low: float,
               bar_volume: float, forced: bool) -> float:
        return 1e-4 * (1.0 + qty)


@pytest.fixture(scope="module")
def data() -> MarketData:
    market = generate_perpetual(symbol=BTC, days=1, crash_day=None, seed=5)
    bars, funding = engine_frames(market)
    return MarketData.from_frames({BTC: bars}, {BTC: funding}, timeframe="1m")


def _signal(n: int) -> np.ndarray:
    signal = np.full(n, np.nan)
    signal[0] = 1.0
    signal[FLIP] = -1.0
    return signal


def _config(slippage) -> RunConfig:  # noqa: ANN001
    return RunConfig(initial_balance=10_000.0, leverage=5.0, margin_mode="isolated", rounding=False,
                     fees=(0.0002, TAKER), slippage=slippage)


@pytest.mark.parametrize("slippage", [FixedBps(bps=5.0), QtyImpact()], ids=["constant", "per-fill"])
def test_a_flip_closes_then_opens_on_the_wallet_the_close_left(data: MarketData, slippage) -> None:  # noqa: ANN001
    result = run_signals(data, _signal(len(data)), config=_config(slippage))
    fills = result.fills
    opening, close, reopen = fills.row(0, named=True), fills.row(1, named=True), fills.row(2, named=True)
    assert close["order_id"] == reopen["order_id"] != opening["order_id"]  # one order, two fills
    assert close["side"] == reopen["side"] == "sell"
    ref = float(data.bars[BTC].open[FLIP + 1])
    assert close["reference_price"] == reopen["reference_price"] == ref

    def slipped(qty: float) -> float:  # a sell moves the price down by the impact
        return ref * (1.0 - slippage.impact(qty=qty, price=ref, bar_high=0.0, bar_low=0.0,
                                            bar_volume=float("nan"), forced=False))

    held = opening["qty"]
    assert close["qty"] == held and close["position_qty_after"] == 0.0
    assert close["price"] == pytest.approx(slipped(held), rel=1e-15)
    assert close["realized_pnl"] == pytest.approx(held * (close["price"] - opening["price"]), rel=1e-12)
    wallet = 10_000.0 - opening["fee"] + close["realized_pnl"] - close["fee"]
    assert close["fee"] == pytest.approx(held * close["price"] * TAKER, rel=1e-12)
    # the new side is sized on the wallet after the close, at the reference price
    assert reopen["qty"] == pytest.approx(wallet / ref, rel=1e-12)
    assert reopen["position_qty_after"] == -reopen["qty"]
    assert reopen["price"] == pytest.approx(slipped(reopen["qty"]), rel=1e-15)
    if isinstance(slippage, QtyImpact):  # asked per fill: the two quantities differ, so do the prices
        assert reopen["price"] != close["price"]
    else:  # one slipped price for the whole flip
        assert reopen["price"] == close["price"]
    trade = result.trades.row(0, named=True)
    assert trade["exit_price"] == close["price"] and trade["side"] == "long"


@pytest.mark.parametrize("slippage", [FixedBps(bps=5.0), QtyImpact()], ids=["constant", "per-fill"])
def test_the_flip_is_the_event_paths_on_every_table(data: MarketData, slippage) -> None:  # noqa: ANN001
    signal = _signal(len(data))
    array = run_signals(data, signal, config=_config(slippage))
    event = run_backtest(data, SignalStrategy(signal), config=_config(slippage))
    for name in ("equity", "positions", "orders", "fills", "rejections", "funding", "liquidations", "trades"):
        assert array.frame(name).equals(event.frame(name)), name
    assert array.summary == event.summary
