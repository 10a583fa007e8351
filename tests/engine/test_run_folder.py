"""Run folders are written whole: a kill, an error or a concurrent writer never leaves a mix.

The runs here are small ``RunResult`` objects built from real frames (the writer does not care
how the tables were computed), so kills and races can be repeated cheaply in subprocesses.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from backtest.results import OUTPUT_TABLES, RunResult
from backtest.runfolder import (RUN_FORMAT, RUN_FORMAT_VERSION, RunFolderError, open_results,
                                check_output_folder, verify_run_folder)

PROJECT = Path(__file__).resolve().parents[2]

#: A writer process: builds a run tagged ``tag`` whose tables each carry the tag, and writes
#: it to ``target``. ``die_at`` (a table index) kills the process with os._exit while the
#: tables are being written; ``raise_at`` raises instead.
WRITER = textwrap.dedent("""
    import os, sys
    import polars as pl
    from backtest.results import OUTPUT_TABLES, RunResult

    target, tag, overwrite, die_at = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])

    def builder(i, name):
        def build():
            if i == die_at:
                os._exit(9)  # a kill in the middle of the table writes
            return pl.DataFrame({"writer": [tag] * 2000, "i": list(range(2000))})
        return build

    result = RunResult(summary={"tag": tag}, manifest={"writer": tag},
                       builders={n: builder(i, n) for i, n in enumerate(OUTPUT_TABLES)})
    try:
        result.write(target, overwrite=overwrite)
    except Exception as exc:
        print(type(exc).__name__, exc)
        sys.exit(3)
""")


def _result(tag: int, *, fail_at: int | None = None) -> RunResult:
    def builder(i: int):
        def build() -> pl.DataFrame:
            if i == fail_at:
                raise RuntimeError("injected fault while writing the tables")
            return pl.DataFrame({"writer": [tag] * 50, "i": list(range(50))})
        return build

    return RunResult(summary={"tag": tag}, manifest={"writer": tag},
                     builders={name: builder(i) for i, name in enumerate(OUTPUT_TABLES)})


def _writers(target: Path, tags: list[int], *, overwrite: bool, die_at: int = -1) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return [subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(tag),
                              "1" if overwrite else "0", str(die_at)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for tag in tags]


def _assert_whole(folder: Path) -> int:
    """The folder is one complete run: verified, and every table from the same writer."""
    manifest = json.loads((folder / "manifest.json").read_text())
    verify_run_folder(folder, manifest)
    tag = manifest["writer"]
    for name in OUTPUT_TABLES:
        assert set(pl.read_parquet(folder / f"{name}.parquet")["writer"]) == {tag}, name
    return tag


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name != folder.name)


def test_manifest_records_every_table_and_the_format(tmp_path):
    out = _result(1).write(tmp_path / "run")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == {"name": RUN_FORMAT, "version": RUN_FORMAT_VERSION}
    assert sorted(manifest["files"]) == sorted(f"{n}.parquet" for n in OUTPUT_TABLES)
    assert all(r["rows"] == 50 and len(r["sha256"]) == 64 for r in manifest["files"].values())
    verify_run_folder(out, manifest)
    # the DuckDB views were made before the folder had its final name, and read from it
    con = open_results(out)  # views are relative to the run folder
    assert con.execute("select sum(i) from fills").fetchone()[0] == sum(range(50))
    assert _siblings(out) == []  # no temporary folder left


def test_an_existing_run_is_refused_and_left_untouched(tmp_path):
    out = _result(1).write(tmp_path / "run")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(RunFolderError, match="found one holding a run.*--overwrite"):
        _result(2).write(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _siblings(out) == []


def test_overwrite_swaps_the_whole_folder(tmp_path):
    out = _result(1).write(tmp_path / "run")
    (out / "report.html").write_text("report of run 1")
    _result(2).write(out, overwrite=True)
    assert _assert_whole(out) == 2
    assert not (out / "report.html").exists()  # nothing of the old run is left beside the new
    assert _siblings(out) == []


def test_overwrite_never_replaces_a_folder_that_is_not_a_run(tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious")
    with pytest.raises(RunFolderError, match="replaces only a run folder"):
        _result(1).write(mine, overwrite=True)
    assert [p.name for p in mine.iterdir()] == ["chapter1.tex"]


def test_an_empty_folder_may_receive_a_run(tmp_path):
    (tmp_path / "run").mkdir()
    assert _assert_whole(_result(4).write(tmp_path / "run")) == 4


@pytest.mark.parametrize("fail_at", [0, 4, len(OUTPUT_TABLES) - 1])
def test_an_error_while_writing_leaves_no_folder_or_the_old_one(tmp_path, fail_at):
    with pytest.raises(RuntimeError, match="injected"):
        _result(1, fail_at=fail_at).write(tmp_path / "new")
    assert list(tmp_path.iterdir()) == []
    old = _result(1).write(tmp_path / "old")
    with pytest.raises(RuntimeError, match="injected"):
        _result(2, fail_at=fail_at).write(old, overwrite=True)
    assert _assert_whole(old) == 1 and _siblings(old) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_kill_mid_write_leaves_no_folder_or_the_old_one(tmp_path, overwrite):
    target = tmp_path / "run"
    if overwrite:
        _result(1).write(target)
    (proc,) = _writers(target, [2], overwrite=overwrite, die_at=5)
    assert proc.wait(timeout=120) == 9, proc.stdout.read()
    if overwrite:
        assert _assert_whole(target) == 1
    else:
        assert not target.exists()
    # the killed writer's hidden temporary folder is never taken for a run, and the next
    # write of that name clears it (its process is gone)
    assert all(name.startswith(".run.partial-") for name in _siblings(target))
    _result(3).write(target, overwrite=True)
    assert _assert_whole(target) == 3 and _siblings(target) == []


def test_concurrent_runs_into_one_folder_never_mix(tmp_path):
    target = tmp_path / "run"
    procs = _writers(target, [1, 2, 3, 4], overwrite=False)
    codes = [p.wait(timeout=180) for p in procs]
    outputs = [p.stdout.read() for p in procs]
    assert sorted(codes) == [0, 3, 3, 3], outputs
    assert all("RunFolderError" in o for c, o in zip(codes, outputs) if c == 3)
    winner = _assert_whole(target)
    assert codes[winner - 1] == 0
    assert _siblings(target) == []


def test_concurrent_overwrites_leave_one_whole_run(tmp_path):
    target = tmp_path / "run"
    _result(9).write(target)
    procs = _writers(target, [1, 2, 3, 4], overwrite=True)
    codes = [p.wait(timeout=180) for p in procs]
    assert codes == [0, 0, 0, 0], [p.stdout.read() for p in procs]
    assert _assert_whole(target) in (1, 2, 3, 4)
    assert _siblings(target) == []


def test_output_location_is_checked_without_leaving_a_trace(tmp_path):
    parent_file = tmp_path / "file"
    parent_file.write_text("x")
    with pytest.raises(RunFolderError, match="is a file, not a folder"):
        check_output_folder(parent_file / "deeper" / "run")
    with pytest.raises(RunFolderError, match="found a file"):
        check_output_folder(parent_file)
    with pytest.raises(RunFolderError, match="file-system root"):
        check_output_folder("/")
    assert check_output_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # probe removed, nothing made


def test_the_demo_runs_twice_into_its_own_folder(tmp_path):
    """``make demo`` twice: the demo owns runs/demo and replaces its own runs whole."""
    from backtest.cli.demo import run_demo

    first = dict(run_demo(out=tmp_path / "demo", log=lambda *_: None))
    second = dict(run_demo(out=tmp_path / "demo", log=lambda *_: None))
    assert first == second
    for name in first:
        run = tmp_path / "demo" / name
        verify_run_folder(run, json.loads((run / "manifest.json").read_text()))
        assert (run / "report.html").is_file()
    assert not [p for p in (tmp_path / "demo").iterdir() if p.name.startswith(".")]


def test_overwrite_without_an_atomic_exchange_still_leaves_one_whole_run(tmp_path, monkeypatch):
    """On an OS without renameat2 the old run is parked beside, then removed."""
    import backtest.runfolder as runfolder

    monkeypatch.setattr(runfolder, "_renameat2", lambda: None)
    out = _result(1).write(tmp_path / "run")
    _result(2).write(out, overwrite=True)
    assert _assert_whole(out) == 2 and _siblings(out) == []
