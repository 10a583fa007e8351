"""Reports opened in a real headless Chromium: they load offline, render every chart, and
show hostile text as text."""
from __future__ import annotations

import pytest

from reports import write_comparison, write_report
from tests.reports.browser import (
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
                               "chart-funding"}
        assert all(n > 0 for n in traces.values()), traces
        assert table_row_count(visit.page, "liquidations-table") == 2
        assert table_row_count(visit.page, "trades-table") == demo_run.n_trades
        assert visit.page.locator("#headline-cards .metric").count() >= 14
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
        assert len(traces) == 5 and all(n > 0 for n in traces.values())
        assert table_row_count(visit.page, "liquidations-table") == len(year_run.liquidation_ts)
        screenshot(visit.page, "report-year.png")


def test_comparison_report_renders(ladder, tmp_path):
    out = write_comparison([ladder], out=tmp_path / "comparison.html")
    with open_report(out) as visit:
        _assert_clean(visit, out.resolve().as_uri())
        assert chart_trace_counts(visit.page)["chart-comparison"] >= 5
        assert table_row_count(visit.page, "survival-table-1") == 5
        assert table_row_count(visit.page, "runs-table") == 5
        screenshot(visit.page, "report-comparison.png")


def test_plotly_beside_the_report_loads_from_file(demo_run, tmp_path):
    out = write_report(demo_run.path, out=tmp_path / "r.html", plotlyjs="beside")
    with open_report(out) as visit:
        _assert_clean(visit, out.resolve().as_uri())
        assert any(u.endswith(".min.js") for u in visit.requests)
        assert len(chart_trace_counts(visit.page)) == 5
