"""Prices print at the symbol's tick: the engine records the tick of the market spec in force
in the run manifest, and the report reads it from there (backtest.formatting.fmt_price)."""
from __future__ import annotations

import dataclasses

from backtest import MarketData, run_backtest
from backtest.formatting import fmt_price
from reports.rundir import load_run
from reports.single import write_report
from tests.engine.scenario import SYMBOL, Script, candles, config

FLAT = (100.0, 100.0, 100.0, 100.0)


def _market(tick: float) -> MarketData:
    bars = {SYMBOL: candles([FLAT, FLAT, (85.0, 86.0, 84.0, 85.0), (85.0, 86.0, 84.0, 85.0)])}
    default = MarketData.from_frames(bars, timeframe="1m")
    spec = dataclasses.replace(default.markets[SYMBOL], tick_size=tick)
    return MarketData.from_frames(bars, timeframe="1m", markets={SYMBOL: spec})


def test_the_manifest_records_the_tick_and_the_report_prints_prices_at_it(tmp_path):
    tick = 0.5
    result = run_backtest(_market(tick), Script({0: lambda ctx: ctx.target_exposure(1.0)}), config=config())
    assert result.manifest["venue"]["markets"][SYMBOL]["tick_size"] == tick
    folder = result.write(tmp_path / "run")
    run = load_run(folder)
    assert run.tick_size == tick
    liquidation = result.liquidations.row(0, named=True)
    page = write_report(folder).read_text(encoding="utf-8")
    # the liquidation price (about 90.45) prints with the tick's one decimal, not 2
    text = fmt_price(liquidation["liquidation_price"], tick_size=tick)
    assert text == f"{liquidation['liquidation_price']:,.1f}"
    assert text in page
