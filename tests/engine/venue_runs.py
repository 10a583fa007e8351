"""The run the venue scenario tests share: one position bought and held under a venue.

A :class:`Buy` of ``qty`` at the first close (filled at the second bar's open), then held; the
run has no trading fees, no slippage, no rounding, 10x isolated margin and, unless a test says
otherwise, no liquidation latency (:data:`QUIET`), so every number of its tables is the
venue's formula written out in the test. Used by tests/engine/test_venue_adl_scenarios.py,
test_venue_maintenance_basis.py, test_venue_bitmex_hl_dydx_scenarios.py and
test_venue_bybit_okx_scenarios.py.
"""
from __future__ import annotations

from typing import Any

import polars as pl

from backtest import MarketData, RunConfig, Strategy, run_backtest
from backtest.slippage import NoSlippage
from tests.engine.scenario import T0, candles

#: The settings every venue scenario shares: 10x isolated, no fees, no slippage, no rounding.
QUIET: dict[str, Any] = dict(leverage=10.0, margin_mode="isolated", fees=(0.0, 0.0),
                             slippage=NoSlippage(), rounding=False)


class Buy(Strategy):
    """Buy ``qty`` at the first close (filled at the second bar's open), then hold."""

    name = "buy_and_hold"

    def __init__(self, qty: float) -> None:
        super().__init__()
        self.qty = qty

    def on_bar(self, ctx: Any) -> None:
        if ctx.bar_index == 0:
            ctx.buy(self.qty)


def run_venue(data: MarketData, strategy: Strategy, *, venue: str, balance: float,
              **config: Any) -> Any:
    """``strategy`` on ``data`` under ``venue`` with :data:`QUIET` settings, ``balance`` of
    wallet and no liquidation latency; ``config`` overrides any of them."""
    settings = dict(QUIET, venue=venue, initial_balance=balance, liquidation_latency_ms=0)
    settings.update(config)
    return run_backtest(data, strategy, config=RunConfig(**settings))


def run_held(venue: str, exchange: str, symbol: str, rows: list[tuple], qty: float, balance: float,
             *, start: int = T0, funding: dict[str, pl.DataFrame] | None = None,
             **config: Any) -> Any:
    """:class:`Buy` ``qty`` of ``symbol`` on 1m candles ``rows`` from ``start`` (the market data's
    ``exchange`` picks the venue's built-in tables), run by :func:`run_venue`."""
    data = MarketData.from_frames({symbol: candles(rows, start=start)}, funding, timeframe="1m",
                                  exchange=exchange)
    return run_venue(data, Buy(qty), venue=venue, balance=balance, **config)
