"""``margincall report``: one run, several runs, a sweep directory, and bad input."""
from __future__ import annotations

import shutil

import pytest

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
    assert result.exit_code == 2
    assert "expected a run directory" in result.output
    assert "Traceback" not in result.output


def test_bad_plotlyjs_option(demo_run):
    result = _invoke(str(demo_run.path), "--plotlyjs", "cdn")
    assert result.exit_code == 2 and "--plotlyjs must be" in result.output


def _broken_copy(demo_run, tmp_path, edit):
    import json

    run = tmp_path / "run"
    shutil.copytree(demo_run.path, run)
    manifest = json.loads((run / "manifest.json").read_text())
    edit(run, manifest)
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def _truncate(run, manifest):
    data = (run / "fills.parquet").read_bytes()
    (run / "fills.parquet").write_bytes(data[: len(data) // 2])


def _old_manifest_beside_new_tables(run, manifest):
    manifest["files"]["equity.parquet"]["sha256"] = "0" * 64


@pytest.mark.parametrize("edit, expected", [
    (_truncate, "fills.parquet: "),
    (lambda run, m: (run / "trades.parquet").unlink(), "trades.parquet: missing"),
    (lambda run, m: (run / "equity.parquet").unlink(), "equity.parquet: missing"),
    (_old_manifest_beside_new_tables, "equity.parquet: content differs"),
    (lambda run, m: m.pop("format"), "older than run format"),
    (lambda run, m: m.pop("files"), "'files' record"),
    (lambda run, m: m["format"].update(version=99), "newer margincall: upgrade"),
    (lambda run, m: m["format"].update(version=1), "re-run the backtest with this margincall"),
])
def test_incomplete_or_foreign_run_folders_are_refused(demo_run, tmp_path, edit, expected):
    run = _broken_copy(demo_run, tmp_path, edit)
    result = _invoke(str(run))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert expected in result.output.replace("\n", " "), result.output
    assert not (run / "report.html").exists()


def test_a_store_folder_is_not_taken_for_a_run(tmp_path):
    from data_loaders.store import MarketStore
    from data_loaders.synthetic import generate_perpetual, write_to_store

    write_to_store(MarketStore(tmp_path / "store"), [generate_perpetual(days=2, crash_day=1, seed=1)],
                   timeframes=("1h",))
    result = _invoke(str(tmp_path / "store"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "not a run folder" in result.output.replace("\n", " ")


def test_a_writers_temporary_folder_is_not_part_of_a_sweep(ladder, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(ladder, sweep)
    shutil.copytree(sweep / "hold-5x", sweep / ".hold-7x.partial-123-abc")
    (sweep / ".hold-7x.partial-123-abc" / "equity.parquet").unlink()
    result = _invoke(str(sweep))
    assert result.exit_code == 0, result.output
    assert "hold-7x" not in (sweep / "comparison.html").read_text(encoding="utf-8")


def test_engine_run_tampered_after_writing_is_refused(tmp_path):
    """A real engine run: readable as written, refused once a table changes underneath."""
    from backtest import MarketData, RunConfig, run_backtest
    from data_loaders.synthetic import engine_frames, generate_perpetual

    market = generate_perpetual(days=2, crash_day=1, seed=3)
    bars, funding = engine_frames(market)
    data = MarketData.from_frames({market.symbol: bars}, funding={market.symbol: funding},
                                  timeframe="1m")
    out = run_backtest(data, "hold", config=RunConfig(leverage=5)).write(tmp_path / "run")
    assert _invoke(str(out)).exit_code == 0
    import polars as pl

    pl.read_parquet(out / "fills.parquet").head(0).write_parquet(out / "fills.parquet")
    result = _invoke(str(out))
    assert result.exit_code == 2 and "fills.parquet" in result.output


def test_an_unwritable_report_path_is_a_clear_error(demo_run, tmp_path):
    (tmp_path / "taken").mkdir()
    result = _invoke(str(demo_run.path), "--out", str(tmp_path / "taken"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "expected to write the report there" in result.output
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _invoke(str(demo_run.path), "--out", str(blocker / "r.html"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "expected to write the report there" in result.output
    assert not list(tmp_path.glob(".report-*"))  # no temporary file left behind
