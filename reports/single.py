"""The single-run report: ``write_report(run_dir)`` writes ``run_dir/report.html``."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from reports.html import PlotlyJsMode, Section, fmt_num, fmt_ts, render_page
from reports.rundir import RunData, load_run
from reports.sections import compute_metrics, run_sections

REPORT_NAME = "report.html"


def write_html(out: Path, page: str) -> Path:
    """Write ``page`` to ``out`` atomically (a temporary file renamed into place)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def render_run_report(run: RunData, *, out: Path, plotlyjs: PlotlyJsMode = "inline",
                      extra_sections: Sequence[Section] = ()) -> str:
    """Return the HTML page of one run (see :func:`write_report`)."""
    metrics = compute_metrics(run)
    sections = run_sections(run, metrics, extra_sections)
    leverage = run.config.get("leverage")
    title = f"{run.strategy_name} · {run.symbol} · {run.name}"
    subtitle = (f"{fmt_ts(metrics.start_ts)} → {fmt_ts(metrics.end_ts)} UTC · {metrics.bars:,} bars"
                + (f" · {fmt_num(leverage)}x" if leverage is not None else "")
                + f" · {run.config.get('margin_mode', '')}".rstrip(" ·"))
    source = run.manifest.get("price_source")
    if isinstance(source, dict) and source.get("text"):  # which prices drove which rules
        subtitle += f" · {source['text']}"
    created = run.manifest.get("created_at")
    footer = "margincall report" + (f" · run created {created}" if created else "")
    return render_page(title=title, subtitle=subtitle, sections=sections, out=out,
                       plotlyjs=plotlyjs, footer=footer)


def write_report(run_dir: Path, *, out: Path | None = None, plotlyjs: PlotlyJsMode = "inline",
                 extra_sections: Sequence[Section] = ()) -> Path:
    """Write the HTML report of one run directory.

    Parameters
    ----------
    run_dir : pathlib.Path
        A run directory (CONTRACTS §6).
    out : pathlib.Path, optional
        Output file; default ``run_dir / "report.html"``.
    plotlyjs : {"inline", "beside"}
        Inline plotly.js in the page (self-contained, ~4.8 MB) or write it once beside the
        page and reference it relatively. Either way the page loads nothing from the network.
    extra_sections : sequence of Section
        Sections appended after the default ones (e.g. risk-lab results).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    reports.rundir.RunDirError
        When ``run_dir`` is not a readable run directory.
    """
    run = load_run(Path(run_dir))
    target = Path(out) if out is not None else run.path / REPORT_NAME
    page = render_run_report(run, out=target, plotlyjs=plotlyjs, extra_sections=extra_sections)
    return write_html(target, page)
