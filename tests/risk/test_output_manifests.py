"""Risk-lab outputs record their provenance beside their tables (backtest.risk.provenance), and
``sweep --keep-runs`` keeps each configuration's run folder for ``margincall report``."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from data_loaders.store_io import sha256_file
from tests.risk.walk_bars import write_walk_bars

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def bars_path(tmp_path_factory) -> Path:
    path = write_walk_bars(tmp_path_factory.mktemp("manifests") / "bars.parquet", seed=5, n=300, start=30_000.0,
                           sigma=0.01, high_factor=1.003, low_factor=0.997, step_ms=3_600_000, volume=1_000.0)
    return path


def _invoke(*args: str):  # noqa: ANN202
    return CliRunner().invoke(build_app(), list(args), env={"COLUMNS": "250"})


def _sweep(bars_path: Path, out: Path, *extra: str):  # noqa: ANN202
    return _invoke("sweep", "--data", str(bars_path), "--workers", "1", "--out", str(out),
                   "--strategy", "sma_cross", "--leverage", "2,5", "--grid", "fast=5,10", "--grid", "slow=30",
                   *extra)


@pytest.fixture(scope="module")
def kept(bars_path: Path, tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("kept") / "sweep"
    html = out.parent / "sweep.html"
    return out, html, _sweep(bars_path, out, "--keep-runs", "--html", str(html))


def test_sweep_writes_a_manifest_beside_its_table_and_keeps_runs_for_report(kept: tuple, tmp_path: Path):
    out, html, result = kept
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "sweep.manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "sweep"
    assert manifest["files"]["sweep.parquet"]["sha256"] == sha256_file(out / "sweep.parquet")
    assert manifest["inputs"]["grid"] == {"fast": [5, 10], "slow": [30]}
    assert manifest["inputs"]["leverages"] == [2.0, 5.0]
    assert manifest["rules"]["venue"]["name"] == "binance_usdm"
    assert {"polars", "numpy"} <= set(manifest["packages"])
    assert manifest["config"]["initial_balance"] > 0 and "seed" in manifest
    # kept runs: one complete run folder per configuration, matching its sweep row
    table = pl.read_parquet(out / "sweep.parquet").sort("run_id")
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == [f"run_{i:04d}" for i in table["run_id"].to_list()] == manifest["inputs"]["kept_runs"]
    for row in table.iter_rows(named=True):
        kept = json.loads((out / f"run_{row['run_id']:04d}" / "manifest.json").read_text(encoding="utf-8"))
        assert kept["config"]["leverage"] == row["leverage"]
        assert kept["strategy"]["params"]["fast"] == row["p_fast"]
        assert kept["summary"]["total_return"] == pytest.approx(row["total_return"], rel=1e-9, abs=1e-12)
    assert "kept 4 run folder(s)" in result.output
    # the page ends with the provenance, collapsed
    page = html.read_text(encoding="utf-8")
    assert page.index('id="provenance-details"') > page.index("Best runs")
    assert manifest["files"]["sweep.parquet"]["sha256"] in page
    # margincall report compares the kept runs
    compared = _invoke("report", str(out), "--out", str(tmp_path / "compare.html"))
    assert compared.exit_code == 0, compared.output
    assert all(name in (tmp_path / "compare.html").read_text(encoding="utf-8") for name in folders)


def test_keep_runs_never_replaces_an_existing_run_folder(bars_path: Path, kept: tuple):
    out = kept[0]
    before = (out / "run_0000" / "manifest.json").read_bytes()
    again = _sweep(bars_path, out, "--keep-runs")
    assert again.exit_code != 0
    assert "run_0000" in again.output and "pass another --out" in again.output
    assert (out / "run_0000" / "manifest.json").read_bytes() == before


def test_write_output_manifest_is_atomic_and_lists_the_files(tmp_path: Path):
    from backtest.risk.provenance import output_manifest, write_output_manifest

    table = tmp_path / "t.parquet"
    pl.DataFrame({"a": [1, 2]}).write_parquet(table)
    sources = [{"dataset": "ohlcv", "symbol": SYMBOL, "timeframe": "1h", "price_type": "last", "sha256": "ab" * 32}]
    record = output_manifest("replay", inputs={"leverages": (2.0, float("nan"))}, seed=7, sources=sources,
                             warnings=["w", "w"])
    path = write_output_manifest(tmp_path / "t.manifest.json", record, {"table": table})
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["inputs"]["leverages"] == [2.0, None]  # NaN is not JSON
    assert written["data"] == sources and written["seed"] == 7 and written["quality_warnings"] == ["w"]
    assert written["files"]["table"] == {"bytes": table.stat().st_size, "sha256": sha256_file(table)}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


@pytest.fixture(scope="module")
def store_dir(shared_data: Path, tmp_path_factory) -> Path:
    from tests.risk.conftest import AUG5_5M, store_shared_window

    root = tmp_path_factory.mktemp("manifest-store") / "store"
    store_shared_window(shared_data, root, SYMBOL, AUG5_5M)
    return root


def _page_manifest_checks(page: str, manifest: dict) -> None:
    # the last section, after the charts, collapsed
    assert page.index('<details class="manifest" id="provenance-details">') > \
        page.index("Price and liquidation prices per crash")
    for source in manifest["data"]:
        assert source["sha256"] in page


def test_replay_writes_its_manifest_beside_the_table_and_on_its_page(store_dir: Path, tmp_path: Path):
    out, html = tmp_path / "replay.parquet", tmp_path / "replay.html"
    result = _invoke("replay", "--crash", "2024-08-05", "--leverage", "2,20", "--param", "side=long",
                     "--store", str(store_dir), "--out", str(out), "--html", str(html))
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "replay.manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "replay" and manifest["inputs"]["crashes"] == ["2024-08-05"]
    assert manifest["files"]["replay.parquet"]["sha256"] == sha256_file(out)
    ohlcv = [s for s in manifest["data"] if s.get("dataset") == "ohlcv"]
    assert ohlcv and all(len(s["sha256"]) == 64 for s in ohlcv)
    assert ohlcv[0]["symbol"] == SYMBOL and ohlcv[0]["timeframe"] == "5m"
    assert "2024-08-05 " + SYMBOL in manifest["rules"]["tiers"]
    assert manifest["config"]["leverage"] and manifest["seed"] == manifest["config"]["seed"]
    _page_manifest_checks(html.read_text(encoding="utf-8"), manifest)


def test_stress_and_mc_pages_end_with_their_provenance(store_dir: Path, tmp_path: Path):
    html = tmp_path / "stress.html"
    result = _invoke("stress", "--symbol", SYMBOL, "--timeframe", "5m", "--start", "2024-08-04", "--end", "2024-08-06",
                     "--scenario", "crash=shock:-0.2@2024-08-04T12:00Z", "--leverage", "3",
                     "--store", str(store_dir), "--html", str(html))
    assert result.exit_code == 0, result.output
    page = html.read_text(encoding="utf-8")
    assert "crash=shock:-0.2@2024-08-04T12:00Z" in page and 'id="provenance-details"' in page
    html = tmp_path / "mc.html"
    result = _invoke("mc", "--timeframe", "5m", "--price", "last", "--model", "gbm", "--leverage", "5",
                     "--horizon", "1", "--paths", "200", "--seed", "11", "--store", str(store_dir), "--html", str(html))
    assert result.exit_code == 0, result.output
    page = html.read_text(encoding="utf-8")
    tail = page[page.index('id="provenance-details"'):]
    assert "gbm" in tail and "11" in tail and "Package versions" in tail


def test_cascade_folder_manifest_records_the_window_partitions(shared_data: Path, tmp_path: Path):
    from tests.risk.conftest import store_oct10_window

    root = tmp_path / "store"
    store_oct10_window(shared_data, root, SYMBOL)
    out = tmp_path / "cascade"
    result = _invoke("cascade", "--synthetic", "500", "--start", "2025-10-10T21:00:00Z", "--end",
                     "2025-10-10T21:15:00Z", "--timeframe", "5m", "--store", str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "cascade" and manifest["seed"] == 0
    assert [s["timeframe"] for s in manifest["data"] if s.get("dataset") == "ohlcv"] == ["5m"]
    assert {"polars", "numpy"} <= set(manifest["packages"]) and manifest["rules"]["venue"]
