"""Maintenance as each venue charges it, in runs: BitMEX's funding term (margin_rules.md §5)
and the entry-value basis of Bybit and BitMEX in the liquidation price and the equity table.

Tiny inline candles (tests/engine/scenario.py) and the held long of tests/engine/venue_runs.py:
no fees, no slippage, no latency; every number is worked here from the venue's formula.
"""
from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from backtest.venues import bitmex
from tests.engine.scenario import SYMBOL
from tests.engine.venue_runs import run_held

SYMBOL_XBT = "BTC/USD:BTC"
BLACK_THURSDAY = 1_583_971_200_000  # 2020-03-12 00:00 UTC
HOUR = 3_600_000
#: BitMEX: 8-hourly funding exchanged at 04:00, 12:00, 20:00 UTC.
NEXT_SETTLEMENT = BLACK_THURSDAY + 4 * HOUR


def _bitmex(rows: list[tuple], rate: float | None) -> Any:
    """10,000 XBTUSD contracts long at 8,000 on 1 XBT, 10x isolated, with the next funding
    rate ``rate`` announced for 04:00 (after the window: announced, not yet exchanged)."""
    funding = None
    if rate is not None:
        funding = {SYMBOL_XBT: pl.DataFrame({"ts": [NEXT_SETTLEMENT], "rate": [rate],
                                             "interval_hours": [8.0]}).with_columns(
            pl.col("ts").cast(pl.Datetime("ms", "UTC")))}
    return run_held("bitmex_inverse", "bitmex", SYMBOL_XBT, rows, 10_000, 1.0,
                    start=BLACK_THURSDAY, funding=funding)


#: A dip to 7,320: above BitMEX's plain liquidation price, below it with the funding term.
DIP = [(8_000, 8_000, 8_000, 8_000)] * 3 + [(8_000, 8_000, 7_320, 7_400)] + \
    [(7_400, 7_400, 7_400, 7_400)] * 2


def test_bitmex_adverse_funding_raises_maintenance_and_liquidates_earlier() -> None:
    """posCost 10,000 / 8,000 = 1.25 XBT, margin 0.125, maintenance 0.5 % x 1.25 = 0.00625.

    The next funding +0.375 % (longs pay) adds 1.25 x 0.375 % = 0.0046875 XBT: liquidation
    where the value reaches cost + margin - maintenance - funding term, 10,000 / (1.25 + 0.125
    - 0.00625 - 0.0046875) = 10,000 / 1.3640625 = 7,331.04 (without it 7,305.94): the dip to
    7,320 liquidates the position.
    """
    result = _bitmex(DIP, 0.00375)
    lp = 10_000 / (1.25 + 0.125 - 0.00625 - 0.0046875)
    assert lp == pytest.approx(7_331.04, abs=0.01)
    assert result.positions["liquidation_price"][0] == pytest.approx(lp, rel=1e-12)
    (liq,) = result.liquidations.iter_rows(named=True)
    assert liq["liquidation_price"] == pytest.approx(lp, rel=1e-12)
    # the equity table's maintenance before the dip: 0.00625 + 0.0046875 on the entry value
    assert result.equity["maintenance_margin"][1] == pytest.approx(0.0109375, rel=1e-12)
    # the term is the module's own rule (one definition): max(0, s x F) on posCost
    assert bitmex.funding_maintenance_rate(1, 0.00375) * 1.25 == pytest.approx(0.0046875)


def test_bitmex_funding_the_long_receives_adds_nothing_and_it_survives() -> None:
    """F = -0.375 %: shorts pay, the long's term is max(0, -0.00375) = 0; liquidation stays at
    10,000 / 1.36875 = 7,305.94, below the dip: no liquidation; maintenance 0.00625."""
    result = _bitmex(DIP, -0.00375)
    assert result.liquidations.height == 0
    assert result.positions["liquidation_price"][0] == pytest.approx(10_000 / 1.36875, rel=1e-12)
    assert result.equity["maintenance_margin"][-1] == pytest.approx(0.00625, rel=1e-12)
    # without funding data the run charges no term: the same threshold
    plain = _bitmex(DIP, None)
    assert plain.positions["liquidation_price"][0] == result.positions["liquidation_price"][0]


def test_bitmex_maintenance_column_stays_on_the_entry_value() -> None:
    """At the close 7,400 the position is worth 10,000 / 7,400 = 1.3514 XBT, but BitMEX's
    posMaint is on posCost: 0.5 % x 1.25 = 0.00625 XBT, not 0.5 % x 1.3514 = 0.00676."""
    result = _bitmex(DIP, -0.00375)
    assert result.equity["mark_price"][-1] == 7_400
    assert result.equity["maintenance_margin"][-1] == pytest.approx(0.005 * 1.25, rel=1e-12)


def test_bybit_maintenance_column_uses_the_entry_value_as_its_liquidation_price_does() -> None:
    """1 BTC long at 20,000 on 10,000 USDT, 10x isolated (IM 2,000), first risk limit 0.5 %:
    MM = PV x MMR = 20,000 x 0.5 % = 100 on the ENTRY value (margin_rules.md §3.2), LP =
    20,000 - (2,000 - 100) / 1 = 18,100, where the equity 2,000 - 1,900 = 100 is exactly that
    maintenance. At the close 19,000 the equity table shows 100 (not 19,000 x 0.5 % = 95) and
    the margin ratio 100 / (2,000 - 1,000) = 10 %."""
    rows = [(20_000,) * 4] * 3 + [(20_000, 20_000, 19_000, 19_000)]
    result = run_held("bybit_linear", "bybit", SYMBOL, rows, 1.0, 10_000.0)
    assert result.positions["liquidation_price"][-1] == pytest.approx(18_100.0)
    last = result.equity.row(-1, named=True)
    assert last["mark_price"] == 19_000
    assert last["maintenance_margin"] == pytest.approx(100.0)
    assert last["margin_ratio"] == pytest.approx(0.1)
