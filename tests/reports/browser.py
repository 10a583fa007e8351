"""Open a report in a real headless Chromium (Debian's ``chromium``) through Playwright.

Playwright drives the system executable (``executable_path``); it downloads nothing. Every
request the page makes, every console error, page error and dialog is recorded.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SKIP_REASON = "Chromium not installed (apt-get install chromium)"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def chromium_executable() -> str | None:
    """Path of the system Chromium, or None."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def require_chromium() -> str:
    """The Chromium path, or skip the calling test with the install hint."""
    path = chromium_executable()
    if path is None:
        pytest.skip(SKIP_REASON)
    return path


@dataclass
class PageVisit:
    """What happened while a report was open."""

    page: Any
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    render_ms: float | None = None

    def remote_requests(self) -> list[str]:
        """Requests that would leave the machine (anything but file:, data:, blob:, about:)."""
        local = ("file:", "data:", "blob:", "about:")
        return [u for u in self.requests if not u.startswith(local)]


@contextmanager
def open_report(html_path: Path, *, timeout_ms: int = 30_000,
                viewport: tuple[int, int] = (1400, 1000)) -> Iterator[PageVisit]:
    """Open ``html_path`` in headless Chromium and wait until every chart rendered.

    Any request that is not local is recorded and aborted (the test then fails on it).
    ``render_ms`` is the time from navigation start to the page's ``__reportRendered`` mark.
    """
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    profile = tempfile.mkdtemp(prefix="margincall-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=executable, headless=True, args=LAUNCH_ARGS,
                viewport={"width": viewport[0], "height": viewport[1]})
            try:
                page = context.pages[0] if context.pages else context.new_page()
                visit = PageVisit(page=page)
                page.on("request", lambda req: visit.requests.append(req.url))
                page.on("console", lambda msg: visit.console_errors.append(msg.text)
                        if msg.type == "error" else None)
                page.on("pageerror", lambda exc: visit.page_errors.append(str(exc)))

                def on_dialog(dialog: Any) -> None:
                    visit.dialogs.append(f"{dialog.type}: {dialog.message}")
                    dialog.dismiss()

                page.on("dialog", on_dialog)

                def route(r: Any) -> None:
                    url = r.request.url
                    if url.startswith(("file:", "data:", "blob:", "about:")):
                        r.continue_()
                    else:
                        r.abort()

                context.route("**/*", route)
                page.goto(html_path.resolve().as_uri(), wait_until="load", timeout=timeout_ms)
                page.wait_for_function("window.__reportRendered !== undefined", timeout=timeout_ms)
                visit.render_ms = float(page.evaluate("window.__reportRendered"))
                yield visit
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def chart_trace_counts(page: Any) -> dict[str, int]:
    """Number of traces of every rendered plotly chart, by element id."""
    return page.evaluate(
        "() => Object.fromEntries(Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".map(gd => [gd.id, (gd.data || []).length]))")


def table_row_count(page: Any, table_id: str) -> int:
    """Body rows of the table with ``table_id``."""
    return int(page.evaluate(f"() => document.querySelectorAll('#{table_id} tbody tr').length"))


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG under ``test-artifacts/`` and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / name
    page.screenshot(path=str(target), full_page=full_page)
    return target



PAGE_CHECKS_JS = r"""
() => {
  const vw = document.documentElement.clientWidth;
  const out = {pageOverflow: document.documentElement.scrollWidth - vw, overflowing: [],
               undrawn: [], axesWithoutUnit: [], charts: 0};
  // every card, table frame and metric card stays inside the viewport
  document.querySelectorAll('section.card, .table-wrap, .metric, .cards, table.kv, details')
    .forEach(el => {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && (r.right > vw + 0.5 || r.left < -0.5)) {
        out.overflowing.push((el.id || el.className || el.tagName) + ':' + Math.round(r.right));
      }
    });
  document.querySelectorAll('div.chart').forEach(div => {
    out.charts += 1;
    const full = div._fullData || [];
    const drawn = div.classList.contains('js-plotly-plot') && full.length > 0 &&
      div.querySelector('svg.main-svg') !== null;
    if (!drawn) { out.undrawn.push(div.id); return; }
    const layout = div._fullLayout;
    Object.keys(layout).filter(k => /^[xy]axis\d*$/.test(k)).forEach(k => {
      const ax = layout[k];
      if (!ax || ax.visible === false || ax.showticklabels === false) { return; }
      const title = (ax.title && ax.title.text) || '';
      const unitless = ax.type === 'category';
      if (!title || (!unitless && !/\(.+\)/.test(title))) {
        out.axesWithoutUnit.push(div.id + '.' + k + ':' + JSON.stringify(title));
      }
    });
  });
  return out;
}
"""


def page_checks(page: Any) -> dict[str, Any]:
    """Layout checks of a rendered report at the current viewport.

    Returns ``pageOverflow`` (px the page is wider than the window; <= 0 is fine),
    ``overflowing`` (cards, tables, metric cards reaching past the window), ``undrawn``
    (chart slots plotly did not draw), ``axesWithoutUnit`` (visible axes whose title is
    missing or, for numeric axes, names no unit in parentheses) and ``charts`` (slots seen).
    """
    return page.evaluate(PAGE_CHECKS_JS)


def assert_page_quality(page: Any, *, min_charts: int = 1) -> dict[str, Any]:
    """Assert :func:`page_checks` found nothing wrong and at least ``min_charts`` charts."""
    found = page_checks(page)
    assert found["pageOverflow"] <= 0, found
    assert found["overflowing"] == [], found
    assert found["undrawn"] == [], found
    assert found["axesWithoutUnit"] == [], found
    assert found["charts"] >= min_charts, found
    return found
