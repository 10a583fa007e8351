"""Reports opened in a real headless Chromium: they load offline, render every chart, and
show hostile text as text."""
from __future__ import annotations

import pytest

from reports import write_comparison, write_report
from tests.reports.browser import (
    assert_page_quality,
    chart_trace_counts,
    open_report,
    require_chromium,
    screenshot,
    table_row_count,
)
from tests.reports.conftest import XSS

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _chromium() -> None:
    require_chromium()


def _assert_clean(visit, page_url: str) -> None:
    assert visit.console_errors == []
    assert visit.page_errors == []
    assert visit.dialogs == []
    assert visit.remote_requests() == []
    assert all(u.startswith("file://") for u in visit.requests), visit.requests
    assert page_url in visit.requests


def test_single_report_renders_every_chart_and_table(demo_run):
    out = write_report(demo_run.path)
    with open_report(out) as visit:
        _assert_clean(visit, out.resolve().as_uri())
        traces = chart_trace_counts(visit.page)
        assert set(traces) == {"chart-price", "chart-equity", "chart-margin", "chart-attribution",
                               "chart-funding", "chart-monthly"}
        assert all(n > 0 for n in traces.values()), traces
        assert_page_quality(visit.page, min_charts=6)
        assert table_row_count(visit.page, "liquidations-table") == 2
        assert table_row_count(visit.page, "trades-table") == demo_run.n_trades
        assert table_row_count(visit.page, "trade-stats-table") == 13
        assert table_row_count(visit.page, "exit-reasons-table") == 3  # signal, liquidation, end
        assert table_row_count(visit.page, "drawdown-periods-table") >= 1
        assert visit.page.locator("#headline-cards .metric").count() >= 14
        # the story first, the provenance last and collapsed
        order = visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('main > section.card')).map(s => s.id)")
        assert order[:4] == ["headline", "price", "margin", "equity"] and order[-1] == "manifest"
        assert visit.page.locator("#manifest-details").get_attribute("open") is None
        assert not visit.page.locator("#manifest-table").is_visible()
        # mark and last price are distinct traces; the liquidation price line is thick
        names = visit.page.evaluate(
            "() => document.getElementById('chart-price').data.map(t => t.name)")
        assert "last price (candles)" in names and "mark price (triggers liquidation)" in names
        lp_width = visit.page.evaluate(
            "() => document.getElementById('chart-price').data"
            ".find(t => t.name === 'liquidation price').line.width")
        assert lp_width >= 2
        # bad debt absorbed by the insurance fund is its own amber bar, not a green gain
        bar = visit.page.evaluate(
            "() => { const t = document.getElementById('chart-attribution').data[0];"
            " const i = t.x.indexOf('bad debt absorbed<br>by insurance fund');"
            " return i < 0 ? null : t.marker.color[i]; }")
        assert bar == "#d97706"
        shot = screenshot(visit.page, "report-demo.png")
    assert shot.stat().st_size > 50_000


def test_tables_sort_on_header_click(demo_run):
    out = write_report(demo_run.path)
    with open_report(out) as visit:
        page = visit.page
        header = page.locator("#trades-table thead th", has_text="pnl").first
        column = page.evaluate(
            "() => Array.from(document.querySelectorAll('#trades-table thead th'))"
            ".findIndex(th => th.textContent === 'pnl')")
        read = ("col => Array.from(document.querySelectorAll('#trades-table tbody tr'))"
                ".map(r => parseFloat(r.cells[col].getAttribute('data-sort')))")
        header.click()
        ascending = page.evaluate(read, column)
        assert ascending == sorted(ascending) and len(ascending) == demo_run.n_trades
        header.click()
        assert page.evaluate(read, column) == sorted(ascending, reverse=True)
        assert header.get_attribute("aria-sort") == "descending"


def test_hostile_names_render_as_text_without_running(hostile_run, tmp_path):
    out = write_report(hostile_run.path, out=tmp_path / "hostile.html")
    with open_report(out) as visit:
        _assert_clean(visit, out.resolve().as_uri())
        assert XSS in visit.page.inner_text("header.top h1")
        visit.page.click("#manifest-details > summary")  # collapsed until the reader opens it
        manifest = visit.page.inner_text("#manifest")
        assert "<img src=x onerror=alert(2)>" in manifest
        assert "</script><script>alert(4)</script>" in visit.page.inner_text("#quality-warnings")
        assert visit.page.locator("header.top script, #manifest img").count() == 0
        assert all(n > 0 for n in chart_trace_counts(visit.page).values())
        screenshot(visit.page, "report-hostile.png", full_page=False)


def test_reference_year_renders(year_run):
    out = write_report(year_run.path)
    assert out.stat().st_size <= 10_000_000
    with open_report(out, timeout_ms=60_000) as visit:
        _assert_clean(visit, out.resolve().as_uri())
        traces = chart_trace_counts(visit.page)
        assert len(traces) == 6 and all(n > 0 for n in traces.values())
        assert_page_quality(visit.page, min_charts=6)
        assert table_row_count(visit.page, "liquidations-table") == len(year_run.liquidation_ts)
        screenshot(visit.page, "report-year.png")


def test_comparison_report_renders(ladder, tmp_path):
    out = write_comparison([ladder], out=tmp_path / "comparison.html")
    with open_report(out) as visit:
        _assert_clean(visit, out.resolve().as_uri())
        assert chart_trace_counts(visit.page)["chart-comparison"] >= 5
        assert_page_quality(visit.page, min_charts=1)
        assert table_row_count(visit.page, "survival-table-1") == 5
        assert table_row_count(visit.page, "runs-table") == 5
        # a distinct colour per run; each run's liquidation crosses in its own colour
        traces = visit.page.evaluate(
            "() => document.getElementById('chart-comparison').data.map(t => ({name: t.name,"
            " group: t.legendgroup, color: (t.line && t.mode === 'lines') ? t.line.color"
            " : t.marker.color}))")
        lines = {t["group"]: t["color"] for t in traces if not t["name"].endswith("liquidation")}
        assert len(set(lines.values())) == 5
        liq = [t for t in traces if t["name"].endswith("liquidation")]
        assert liq and all(t["color"] == lines[t["group"]] for t in liq)
        headers = visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('#runs-table thead th'))"
            ".map(th => th.textContent)")
        for column in ("max drawdown", "fees", "funding (net received)", "bad debt",
                       "leverage", "effective leverage (max)"):
            assert column in headers
        cells = visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('#runs-table tbody tr'))"
            ".map(r => r.cells[2].textContent)")
        assert cells == ["2x", "5x", "10x", "20x", "50x"]
        # the whole runs table is readable at 1,400 px: its frame does not scroll sideways
        assert visit.page.evaluate(
            "() => { const w = document.getElementById('runs-table').parentElement;"
            " return w.scrollWidth <= w.clientWidth; }")
        screenshot(visit.page, "report-comparison.png")


def test_plotly_beside_the_report_loads_from_file(demo_run, tmp_path):
    out = write_report(demo_run.path, out=tmp_path / "r.html", plotlyjs="beside")
    with open_report(out) as visit:
        _assert_clean(visit, out.resolve().as_uri())
        assert any(u.endswith(".min.js") for u in visit.requests)
        assert len(chart_trace_counts(visit.page)) == 6
