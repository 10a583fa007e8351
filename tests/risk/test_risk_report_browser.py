"""Risk-lab pages in a real headless Chromium at 1,400 px: every chart draws with unit-titled
axes, no table or card overflows, no console error, no remote request."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.risk import report_sections as rs
from backtest.risk.barriers import liquidation_barriers
from backtest.risk.montecarlo import LiquidationStudy
from backtest.risk.paths import GBM
from tests.reports.browser import (
    assert_page_quality,
    chart_trace_counts,
    open_report,
    require_chromium,
    screenshot,
)
from tests.risk.conftest import AUG5_5M, store_shared_window

pytestmark = pytest.mark.browser
SYMBOL = "BTC/USDT:USDT"


def _clean(visit) -> None:
    assert visit.console_errors == [] and visit.page_errors == [] and visit.dialogs == []
    assert visit.remote_requests() == []


def test_risk_page_renders_every_chart_offline(btc_tiers, tmp_path: Path) -> None:
    require_chromium()
    barriers = liquidation_barriers([5, 20, 50], side=1, entry_price=30_000.0, margin=1_000.0, tiers=btc_tiers)
    study = LiquidationStudy.run(GBM(sigma_step=0.002, step_ms=300_000), barriers, horizon_ms=86_400_000,
                                 n_paths=500, seed=1)
    table = study.table([3_600_000, 86_400_000])
    sweep = pl.DataFrame({"leverage": [2.0, 2.0, 10.0, 10.0], "p_fast": [10, 20, 10, 20],
                          "total_return": [0.1, -0.1, 0.3, -0.5], "max_drawdown": [0.1, 0.2, 0.4, 0.9]})
    out = rs.write_risk_report(tmp_path / "risk.html", title="<b>risk</b>", subtitle="GBM", sections=[
        ("heat", "Heatmap", lambda t: rs.liquidation_heatmap_section(table, title=t)),
        ("survival", "Survival", lambda t: rs.survival_table_section(table, title=t)),
        ("fan", "Fan", lambda t: rs.fan_chart_section(study, leverage=20.0, title=t)),
        ("sweep", "Sweep", lambda t: rs.sweep_heatmap_section(sweep, x="p_fast", y="leverage", title=t)),
        ("sweep-dd", "Sweep drawdown",
         lambda t: rs.sweep_heatmap_section(sweep, x="p_fast", y="leverage", value="max_drawdown", title=t)),
    ])
    with open_report(out) as visit:
        _clean(visit)
        traces = chart_trace_counts(visit.page)
        assert len(traces) == 4 and all(n > 0 for n in traces.values()), traces
        assert_page_quality(visit.page, min_charts=4)
        assert visit.page.locator("h1").inner_text() == "<b>risk</b>"  # escaped, shown as text
        # one title per card: the card heading, no second heading inside the fragment
        assert visit.page.locator("section.card h2").count() == 5
        assert visit.page.locator("section.mc-risk h2").count() == 0
        heatmaps = visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".filter(gd => gd.data[0].type === 'heatmap')"
            ".map(gd => ({y: gd.data[0].y, text: gd.data[0].text, scale: gd._fullData[0].colorscale,"
            " reverse: gd._fullData[0].reversescale}))")
        assert len(heatmaps) == 3
        assert heatmaps[0]["y"] == ["5x", "20x", "50x"]            # leverages print as 5x
        assert all(cell for row in heatmaps[0]["text"] for cell in row)  # every cell labelled
        ret, dd = heatmaps[1], heatmaps[2]
        # green is better: the best return and the smallest drawdown share the colour end
        assert ret["scale"][-1][1] == dd["scale"][0][1]
        notes = visit.page.inner_text("#sweep")
        assert "mean total_return over" in notes and "run(s) per cell" in notes
        leverages = visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('#survival td:first-child')).map(td => td.textContent)")
        assert set(leverages) == {"5x", "20x", "50x"}
        screenshot(visit.page, "risk-lab.png")


def test_replay_page_draws_each_crash_with_its_liquidation_prices(shared_data: Path, tmp_path: Path) -> None:
    require_chromium()

    store = tmp_path / "store"
    store_shared_window(shared_data, store, SYMBOL, AUG5_5M)
    html, table = tmp_path / "replay.html", tmp_path / "replay.parquet"
    result = CliRunner().invoke(build_app(), [
        "replay", "--crash", "2024-08-05", "--leverage", "2,20,50", "--param", "side=long",
        "--store", str(store), "--out", str(table), "--html", str(html)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(table)
    liquidated = rows.filter(~pl.col("survived"))
    assert liquidated.height >= 1
    with open_report(html) as visit:
        _clean(visit)
        assert_page_quality(visit.page, min_charts=1)
        headers = visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('#replays th')).map(th => th.textContent)")
        for column in ("leverage", "entry_price", "liquidation_price", "bad_debt", "warnings"):
            assert column in headers
        cells = visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('#replays tbody tr'))"
            ".map(r => r.cells[2].textContent)")
        assert cells == ["2x", "20x", "50x"]
        names = visit.page.evaluate(
            "() => document.querySelector('#replay-charts .js-plotly-plot').data.map(t => t.name)")
        assert "last price" in names and "entry price" in names
        for lev in liquidated.get_column("leverage").to_list():
            assert f"{lev:g}x liquidation price" in names and f"{lev:g}x liquidated" in names
        assert "2x: survived" in names
        screenshot(visit.page, "risk-replay.png")
