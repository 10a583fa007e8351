"""Reading run directories: the §6 format is enforced with errors that say how to fix it."""
from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from reports.rundir import RunDirError, load_run
from tests.reports.run_fixture import reseal_run_dir


def _copy(demo_run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(demo_run.path, target)
    return target



def test_load_reads_every_table(demo_run):
    run = load_run(demo_run.path)
    assert run.equity.height == demo_run.n_bars
    assert run.liquidations.height == len(demo_run.liquidation_ts)
    assert run.fills.height == demo_run.n_fills and run.trades.height == demo_run.n_trades
    assert run.bars is not None and run.symbol == "BTC/USDT:USDT"
    assert run.initial_balance == 10_000.0 and run.strategy_name == "sma_cross"
    assert run.ts_ms("liquidations").tolist() == demo_run.liquidation_ts


def test_optional_tables_may_be_absent(demo_run, tmp_path):
    path = _copy(demo_run, tmp_path)
    for name in ("funding", "rejections", "bars", "orders"):
        (path / f"{name}.parquet").unlink()
    reseal_run_dir(path)  # tables the manifest does not record are optional
    run = load_run(path)
    assert run.funding.height == 0 and "payment" in run.funding.columns
    assert run.bars is None


def test_missing_manifest_names_the_fix(demo_run, tmp_path):
    path = _copy(demo_run, tmp_path)
    (path / "manifest.json").unlink()
    with pytest.raises(RunDirError, match="expected manifest.json.*margincall run"):
        load_run(path)


def test_missing_directory(tmp_path):
    with pytest.raises(RunDirError, match="expected a run directory, found nothing"):
        load_run(tmp_path / "nope")


def test_missing_columns_are_listed(demo_run, tmp_path):
    path = _copy(demo_run, tmp_path)
    pl.read_parquet(path / "liquidations.parquet").drop("bad_debt").write_parquet(
        path / "liquidations.parquet")
    reseal_run_dir(path)
    with pytest.raises(RunDirError, match=r"missing \['bad_debt'\]"):
        load_run(path)


def test_corrupt_parquet_and_manifest(demo_run, tmp_path):
    path = _copy(demo_run, tmp_path)
    (path / "fills.parquet").write_bytes(b"not parquet")
    with pytest.raises(RunDirError, match="fills.parquet: 11 bytes, the manifest records"):
        load_run(path)
    reseal_run_dir(path)  # a corrupt file recorded as such still gets a clear message
    with pytest.raises(RunDirError, match="fills.parquet: expected a readable Parquet file"):
        load_run(path)
    path2 = _copy(demo_run, tmp_path / "b")
    (path2 / "manifest.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(RunDirError, match="expected JSON"):
        load_run(path2)


def test_unsorted_equity_is_rejected(demo_run, tmp_path):
    path = _copy(demo_run, tmp_path)
    pl.read_parquet(path / "equity.parquet").reverse().write_parquet(path / "equity.parquet")
    reseal_run_dir(path)
    with pytest.raises(RunDirError, match="unsorted"):
        load_run(path)


def test_initial_balance_falls_back_to_config(demo_run, tmp_path):
    path = _copy(demo_run, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["summary"]
    manifest["config"]["initial_balance"] = 5_000.0
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert load_run(path).initial_balance == 5_000.0
