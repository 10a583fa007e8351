"""Each venue's own ADL in a real engine run: its ranking, its quantile, its close price.

One profitable long, one injected counterparty liquidation the fund cannot pay (``adl@``), the
arithmetic written here. Prices rise 100 a bar from 20,000 (``RISE``): the strategy buys at the
first close, filled at bar 1's open 20,100; the event acts at bar 5's open, mark 20,500. No
fees, no slippage, 10x isolated: margin 0.1 x 20,100 / 10 = 201, PnL at the event
0.1 x 400 = 40, margin balance 241, position value 2,050.
"""
from __future__ import annotations

import math
from typing import Any

import pytest

from tests.engine.scenario import MINUTE, SYMBOL, T0
from tests.engine.venue_runs import run_held

RISE = [(20_000 + 100 * k,) * 4 for k in range(10)]
EVENT = T0 + 5 * MINUTE
BLACK_THURSDAY = 1_583_971_200_000  # 2020-03-12 00:00 UTC (BitMEX's 2020 rules)

#: BitMEX / Bybit / OKX: PnL% x effective leverage = (40 / 2,010) x (2,050 / 241).
PNL_X_LEVERAGE = (40 / 2_010) * (2_050 / 241)


def _run(venue: str, exchange: str, *, symbol: str = SYMBOL, rows: list = RISE, qty: float = 0.1,
         balance: float = 10_000.0, start: int = T0, event: dict | None = None,
         **config: Any) -> Any:
    """The held long (tests/engine/venue_runs.py) with one injected ADL event (bar 5's open)."""
    return run_held(venue, exchange, symbol, rows, qty, balance, start=start,
                    adl_events=[event or {"ts": start + 5 * MINUTE}], **config)


@pytest.mark.parametrize(("venue", "exchange", "rule"), [
    ("bybit_linear", "bybit", "bybit_pnl_x_effective_leverage"),
    ("okx", "okx", "okx_pnl_x_effective_leverage")])
def test_bybit_and_okx_rank_by_pnl_percent_times_effective_leverage(venue: str, exchange: str,
                                                                   rule: str) -> None:
    result = _run(venue, exchange)
    (row,) = result.adl.iter_rows(named=True)
    assert row["rule"] == rule and row["price_basis"] == "bankruptcy"
    assert row["score"] == pytest.approx(PNL_X_LEVERAGE, rel=1e-9)
    assert row["quantile"] == 1.0  # a lone position heads the queue
    assert row["price"] == 20_500.0  # the counterparty's bankruptcy price (the mark: no price given)
    assert row["realized_pnl"] == pytest.approx(40.0)


def test_binance_keeps_its_margin_ratio_score() -> None:
    """Binance: PnL% = 40 / 201, margin ratio = maintenance / 241 with the 0.4 % first bracket
    of its BTCUSDT table: 0.004 x 2,050 / 241; score = their product."""
    result = _run("binance_usdm", "binanceusdm")
    (row,) = result.adl.iter_rows(named=True)
    assert row["rule"] == "binance_usdm_leverage_pnl" and row["price_basis"] == "bankruptcy"
    assert row["score"] == pytest.approx((40 / 201) * (0.004 * 2_050 / 241), rel=1e-9)
    assert row["price"] == 20_500.0


def test_hyperliquid_closes_at_the_previous_oracle_price_not_the_bankruptcy_price() -> None:
    """Index (20,500 / 20,100) x (2,050 / 241) = 8.6755; the close is at the oracle before the
    event, bar 4's close mark 20,400 (the run's mark stands in for the oracle), even though
    the counterparty's bankruptcy price is given as 21,000: PnL 0.1 x (20,400 - 20,100) = 30."""
    result = _run("hyperliquid", "hyperliquid", event={"ts": EVENT, "symbol": SYMBOL,
                                                       "price": 21_000.0})
    (row,) = result.adl.iter_rows(named=True)
    assert row["rule"] == "hyperliquid_pnl_x_leverage_index"
    assert row["price_basis"] == "previous_oracle"
    assert row["score"] == pytest.approx((20_500 / 20_100) * (2_050 / 241), rel=1e-9)
    assert row["score"] == pytest.approx(8.6755, abs=1e-4)
    assert row["price"] == 20_400.0
    assert row["realized_pnl"] == pytest.approx(30.0)
    assert result.equity["wallet_balance"][-1] == pytest.approx(10_030.0)


def test_dydx_offsets_without_a_ranking_at_the_bankruptcy_price_and_repeats() -> None:
    result = _run("dydx_v4", "dydx", event={"ts": EVENT, "symbol": SYMBOL, "price": 20_450.0})
    (row,) = result.adl.iter_rows(named=True)
    assert row["rule"] == "dydx_v4_offset_from_random_start"
    assert row["price_basis"] == "bankruptcy"
    assert math.isnan(row["score"]) and math.isnan(row["quantile"])
    assert row["price"] == 20_450.0  # the given bankruptcy price
    assert row["realized_pnl"] == pytest.approx(0.1 * (20_450 - 20_100))
    again = _run("dydx_v4", "dydx", event={"ts": EVENT, "symbol": SYMBOL, "price": 20_450.0})
    assert again.adl.equals(result.adl, null_equal=True)


def test_bitmex_ranks_inverse_position_values() -> None:
    """10,000 XBTUSD long at 8,100 on 1 XBT, 10x: margin 10,000 / 8,100 / 10 = 0.123457 XBT;
    at 8,500 the PnL is 10,000 (1/8,100 - 1/8,500) = 0.058097 XBT, PnL% = 1 - 8,100/8,500 =
    4.7059 %, effective leverage (10,000 / 8,500) / (0.123457 + 0.058097) = 6.4801; score
    0.30495. BitMEX's indicator is the cumulative quantity share down the queue in 20 %
    buckets: a lone position holds 100 % of it, bucket 100, one light of five (quantile 0.2)."""
    rows = [(8_000 + 100 * k,) * 4 for k in range(10)]
    result = _run("bitmex_inverse", "bitmex", symbol="BTC/USD:BTC", rows=rows, qty=10_000,
                  balance=1.0, start=BLACK_THURSDAY)
    (row,) = result.adl.iter_rows(named=True)
    margin = 10_000 / 8_100 / 10
    pnl = 10_000 * (1 / 8_100 - 1 / 8_500)
    expected = (1 - 8_100 / 8_500) * (10_000 / 8_500) / (margin + pnl)
    assert row["rule"] == "bitmex_pnl_x_effective_leverage"
    assert row["score"] == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.30495, abs=1e-5)
    assert row["quantile"] == pytest.approx(0.2) and row["price"] == 8_500.0
    assert row["realized_pnl"] == pytest.approx(pnl, rel=1e-9)


def test_the_unranked_start_is_drawn_from_the_seed_and_repeats() -> None:
    """dYdX's pseudo-random first subaccount: a pure function of the run's seed, the time, the
    symbol, the side and the rows so far (two runs agree; another seed may start elsewhere)."""
    from types import SimpleNamespace

    from backtest.adl import Deleverager

    def start(seed: int, now: int, rows: int = 0) -> int:
        d = Deleverager.__new__(Deleverager)
        state = SimpleNamespace(config=SimpleNamespace(seed=seed), now=now)
        d._state = lambda: state
        d.rows = [()] * rows
        return d._seeded_start(0, 1, 7)

    assert start(7, T0) == start(7, T0)
    starts = {start(seed, T0 + k, rows) for seed in range(5) for k in range(5) for rows in (0, 1)}
    assert starts <= set(range(7)) and len(starts) > 1
