"""``margincall report``: write the HTML report of one run, or compare several.

``margincall report RUN_DIR`` writes ``RUN_DIR/report.html``. Several run directories, or a
sweep directory holding run directories, give one comparison report (``--out``, default
``comparison.html`` in the sweep directory or in the runs' common parent folder).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    """Attach the ``report`` command to the root application."""
    app.command("report")(report)


def _default_comparison_out(paths: list[Path]) -> Path:
    if len(paths) == 1:
        return paths[0] / "comparison.html"
    common = Path(os.path.commonpath([str(p.resolve()) for p in paths]))
    return common / "comparison.html"


def report(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="A run directory; several run directories or a sweep directory for a comparison.",
        show_default=False)],
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Output HTML file (default: RUN_DIR/report.html, or comparison.html).")] = None,
    plotlyjs: Annotated[str, typer.Option(
        "--plotlyjs", help="'inline' (self-contained page) or 'beside' (plotly.js written once "
                           "next to the report and referenced relatively).")] = "inline",
) -> None:
    """Write an offline HTML report of a backtest run, or a comparison of several runs."""
    from backtest.cli.output import console as output_console
    from backtest.cli.output import fail

    from reports import RunDirError, write_comparison, write_report
    from reports.rundir import is_run_dir

    console = output_console()
    if plotlyjs not in ("inline", "beside"):
        raise fail(f"--plotlyjs must be 'inline' or 'beside', found {plotlyjs!r}")
    try:
        if len(run_dirs) == 1 and is_run_dir(run_dirs[0]):
            written = write_report(run_dirs[0], out=out, plotlyjs=plotlyjs)  # type: ignore[arg-type]
        else:
            target = out if out is not None else _default_comparison_out(run_dirs)
            written = write_comparison(list(run_dirs), out=target, plotlyjs=plotlyjs)  # type: ignore[arg-type]
    except RunDirError as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:  # the report file cannot be written (a folder, no permission, disk full)
        where = exc.filename or out or run_dirs[0]
        raise fail(f"{where}: expected to write the report there, found {exc.strerror or exc}; "
                   f"pass --out with a writable file path") from None
    size_mb = written.stat().st_size / 1e6
    console.print(f"wrote {written} ({size_mb:.1f} MB)", highlight=False, soft_wrap=True)
