"""The platform page in a real headless Chromium at 1,400 px: both charts draw with unit-titled
axes, no card or table overflows, no console error, no remote request."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from tests.reports.browser import assert_page_quality, chart_trace_counts, open_report, require_chromium, screenshot

pytestmark = pytest.mark.browser
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def test_platform_page_renders_offline_at_1400_px(shared_data: Path, tmp_path: Path) -> None:
    require_chromium()
    page = tmp_path / "platform.html"
    result = CliRunner().invoke(build_app(), [
        "platform", "--synthetic", "1500", "--seed", "5", "--price", f"{BTC}=112000", "--price", f"{ETH}=4300",
        "--shock", "0.05,0.15", "--mc", "3", "--seconds", "240", "--workers", "1", "--depth-scale", "1,0.4",
        "--compare-tiers", str(shared_data / "margin/binance_um_leverage_brackets_BTCUSDT_ETHUSDT_2021-2024.json"),
        "--out", str(tmp_path / "run"), "--html", str(page)], catch_exceptions=False, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    with open_report(page) as visit:
        assert visit.console_errors == [] and visit.page_errors == [] and visit.dialogs == []
        assert visit.remote_requests() == []
        traces = chart_trace_counts(visit.page)
        # histograms: bad debt, drawdown, ADL notional; brackets: recommended and venue per symbol
        assert sorted(traces.values()) == [3, 4], traces
        assert_page_quality(visit.page, min_charts=2)
        cards = visit.page.locator("section.card h2").all_inner_texts()
        for heading in ("Distributions over scenarios", "Recommended maintenance brackets", "Caps and insurance-fund",
                        "Recommended vs reference brackets", "Worst scenarios by bad debt"):
            assert any(heading in c for c in cards), (heading, cards)
        assert "insurance_fund_recommended" in visit.page.inner_text("#recommendations")
        screenshot(visit.page, "platform.png")
