"""Benchmark: size, build time and browser render time of margincall HTML reports.

Writes two run directories in the CONTRACTS §6 format (the reference year: 525,600 one-minute
bars with two crash liquidations; and a demo-sized run of 1,500 hourly bars), or takes run
directories given with ``--run-dir``, writes their reports, opens each in headless Chromium
(Debian's ``chromium``, driven by Playwright) and prints:

* report size (MB; the budget is 10 MB for the reference year),
* build time in Python (s),
* browser render time (s): navigation start until every plotly chart has rendered (the
  page's ``window.__reportRendered`` mark; budget 3 s), median of ``--repeat`` loads, and the
  part spent before plotly.js was ready.

Usage: ``.venv/bin/python bench/report_render.py [--repeat 3] [--run-dir DIR ...]``
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def render_times(html: Path, repeat: int) -> tuple[float, float]:
    """Median (render, plotly-ready) seconds over ``repeat`` cold page loads."""
    from tests.reports.browser import open_report

    rendered, ready = [], []
    for _ in range(repeat):
        with open_report(html, timeout_ms=120_000) as visit:
            errors = visit.console_errors + visit.page_errors + visit.remote_requests()
            if errors:
                raise SystemExit(f"{html}: the page reported problems: {errors}")
            rendered.append(visit.render_ms / 1000)
            ready.append(float(visit.page.evaluate("window.__plotlyReady")) / 1000)
    return statistics.median(rendered), statistics.median(ready)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="page loads per report (median)")
    parser.add_argument("--run-dir", type=Path, action="append", default=[],
                        help="measure the report of this run directory instead of the fixtures")
    args = parser.parse_args()

    from reports import write_report
    from tests.reports.browser import chromium_executable
    from tests.reports.run_fixture import HOUR_MS, MINUTE_MS, write_run_dir

    work = Path(tempfile.mkdtemp(prefix="margincall-bench-"))
    targets: list[tuple[str, Path]] = [(p.name, p) for p in args.run_dir]
    if not targets:
        start = time.perf_counter()
        year = write_run_dir(work / "reference-year-1m", n_bars=525_600, interval_ms=MINUTE_MS)
        print(f"wrote the reference-year run dir ({year.n_bars:,} bars) in "
              f"{time.perf_counter() - start:.2f} s")
        demo = write_run_dir(work / "demo-1h", n_bars=1_500, interval_ms=HOUR_MS)
        targets = [("reference year (525,600 x 1m)", year.path), ("demo (1,500 x 1h)", demo.path)]
    browser = chromium_executable()
    if browser is None:
        print("Chromium not installed (apt-get install chromium): render times are not measured")
    print(f"{'report':34} {'size MB':>8} {'build s':>8} {'render s':>9} {'plotly.js s':>12}")
    for label, run_dir in targets:
        start = time.perf_counter()
        out = write_report(run_dir, out=work / f"{run_dir.name}.html")
        build = time.perf_counter() - start
        size = out.stat().st_size / 1e6
        if browser is None:
            print(f"{label:34} {size:8.2f} {build:8.2f} {'-':>9} {'-':>12}")
            continue
        rendered, ready = render_times(out, args.repeat)
        print(f"{label:34} {size:8.2f} {build:8.2f} {rendered:9.2f} {ready:12.2f}")
    print(f"(files in {work})")


if __name__ == "__main__":
    main()
