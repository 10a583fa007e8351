"""The risk-lab page in a real headless Chromium: every chart draws, no remote request."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from backtest.risk import report_sections as rs
from backtest.risk.barriers import liquidation_barriers
from backtest.risk.montecarlo import LiquidationStudy
from backtest.risk.paths import GBM
from tests.reports.browser import chart_trace_counts, open_report, require_chromium, screenshot

pytestmark = pytest.mark.browser


def test_risk_page_renders_every_chart_offline(btc_tiers, tmp_path: Path) -> None:
    require_chromium()
    barriers = liquidation_barriers([5, 20, 50], side=1, entry_price=30_000.0, margin=1_000.0, tiers=btc_tiers)
    study = LiquidationStudy.run(GBM(sigma_step=0.002, step_ms=300_000), barriers, horizon_ms=86_400_000,
                                 n_paths=500, seed=1)
    table = study.table([3_600_000, 86_400_000])
    sweep = pl.DataFrame({"leverage": [2.0, 2.0, 10.0, 10.0], "p_fast": [10, 20, 10, 20],
                          "total_return": [0.1, -0.1, 0.3, -0.5]})
    out = rs.write_risk_report(tmp_path / "risk.html", title="<b>risk</b>", subtitle="GBM", sections=[
        ("heat", "Heatmap", lambda t: rs.liquidation_heatmap_section(table, title=t)),
        ("survival", "Survival", lambda t: rs.survival_table_section(table, title=t)),
        ("fan", "Fan", lambda t: rs.fan_chart_section(study, leverage=20.0, title=t)),
        ("sweep", "Sweep", lambda t: rs.sweep_heatmap_section(sweep, x="p_fast", y="leverage", title=t)),
    ])
    with open_report(out) as visit:
        assert visit.console_errors == [] and visit.page_errors == [] and visit.dialogs == []
        assert visit.remote_requests() == []
        traces = chart_trace_counts(visit.page)
        assert len(traces) == 3 and all(n > 0 for n in traces.values()), traces
        assert visit.page.locator("h1").inner_text() == "<b>risk</b>"  # escaped, shown as text
        screenshot(visit.page, "risk-lab.png")
