"""``margincall report``: one run, several runs, a sweep directory, and bad input."""
from __future__ import annotations

import shutil

from typer.testing import CliRunner

from backtest.cli import build_app


def _invoke(*args: str):
    return CliRunner().invoke(build_app(), ["report", *args])


def test_report_of_one_run_dir(demo_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(demo_run.path, run)
    result = _invoke(str(run))
    assert result.exit_code == 0, result.output
    assert (run / "report.html").is_file()
    assert "report.html" in result.output


def test_report_with_out(demo_run, tmp_path):
    result = _invoke(str(demo_run.path), "--out", str(tmp_path / "x" / "r.html"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x" / "r.html").stat().st_size > 1_000_000


def test_sweep_dir_gives_a_comparison_beside_the_runs(ladder):
    result = _invoke(str(ladder))
    assert result.exit_code == 0, result.output
    page = (ladder / "comparison.html").read_text(encoding="utf-8")
    assert "survival-table-1" in page


def test_several_run_dirs_with_out(demo_run, ladder, tmp_path):
    out = tmp_path / "cmp.html"
    result = _invoke(str(demo_run.path), str(ladder / "hold-5x"), "--out", str(out),
                     "--plotlyjs", "beside")
    assert result.exit_code == 0, result.output
    assert out.is_file() and list(tmp_path.glob("plotly-*.min.js"))


def test_bad_directory_is_a_clear_error(tmp_path):
    result = _invoke(str(tmp_path / "missing"))
    assert result.exit_code == 1
    assert "expected a run directory" in result.output
    assert "Traceback" not in result.output


def test_bad_plotlyjs_option(demo_run):
    result = _invoke(str(demo_run.path), "--plotlyjs", "cdn")
    assert result.exit_code == 1 and "--plotlyjs must be" in result.output
