"""The venue comparison page in a real headless Chromium at 1,400 px: every chart draws with
titled axes, nothing overflows, no console error, no remote request; it states which prices
drove which rules and why a venue is n/a."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from backtest import MarketData, RunConfig
from backtest.compare import compare_venues
from backtest.venues.base import available_venues
from reports.venue_compare import write_comparison_page
from tests.reports.browser import (
    assert_page_quality,
    chart_trace_counts,
    open_report,
    require_chromium,
    screenshot,
    table_row_count,
)

pytestmark = pytest.mark.browser
SYMBOL = "BTC/USDT:USDT"
HOUR = 3_600_000
T0 = 1_700_000_000_000 // HOUR * HOUR
CLOSES = [30_000.0, 30_000.0, 29_000.0, 27_000.0, 26_000.0, 26_500.0]
LEVERAGES = [2.0, 5.0, 10.0, 20.0, 50.0]


@pytest.fixture(scope="module")
def comparison():
    ts = T0 + HOUR * np.arange(len(CLOSES))
    frame = pl.DataFrame({"ts": ts, "open": CLOSES, "high": CLOSES, "low": CLOSES, "close": CLOSES,
                          "volume": [1_000.0] * len(CLOSES)})
    data = MarketData.from_frames({SYMBOL: frame}, timeframe="1h")
    return compare_venues(data, "hold", venues=available_venues(), leverages=LEVERAGES,
                          config=RunConfig(slippage="none"))


def test_comparison_page_renders_offline_at_1400px(comparison, tmp_path: Path) -> None:
    require_chromium()
    out = write_comparison_page(comparison, tmp_path / "comparison.html")
    with open_report(out, viewport=(1400, 1000)) as visit:
        assert visit.console_errors == [] and visit.page_errors == [] and visit.dialogs == []
        assert visit.remote_requests() == []
        traces = chart_trace_counts(visit.page)
        tradable = comparison.table.filter(pl.col("tradable"))
        n_venues = len(set(tradable["venue"].to_list()))
        assert len(traces) == 2 and all(n == n_venues for n in traces.values()), traces
        assert_page_quality(visit.page, min_charts=2)
        # the survival grid: one row per leverage, one column per venue, outcomes as text
        assert table_row_count(visit.page, "venue-survival") == len(LEVERAGES)
        headers = visit.page.locator("#venue-survival thead th").all_inner_texts()
        assert headers == ["leverage", *dict.fromkeys(comparison.table["venue"].to_list())]
        usdm = headers.index("binance_usdm") + 1
        cells = visit.page.locator(f"#venue-survival tbody td:nth-child({usdm})").all_inner_texts()
        assert cells == comparison.survival["binance_usdm"].to_list()
        assert "liquidated" in cells and "survived" in cells
        text = visit.page.locator("body").inner_text()
        assert "prices: binanceusdm, rules: binance_usdm" in text
        assert "prices: binanceusdm, rules: binance_coinm" in text
        assert "--symbol BTC/USD:BTC" in text  # why the inverse venue is n/a
        untradable = visit.page.locator("#untradable li").all_inner_texts()
        assert any(item.startswith("binance_coinm: ") for item in untradable)
        assert table_row_count(visit.page, "venue-comparison") == comparison.table.height
        screenshot(visit.page, "venue_comparison_1400.png")
