"""Risk-lab outputs record their provenance beside their tables (backtest.risk.provenance), and
``sweep --keep-runs`` keeps each configuration's run folder for ``margincall report``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from data_loaders.store_io import sha256_file

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def bars_path(tmp_path_factory) -> Path:
    rng = np.random.default_rng(5)
    n = 300
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[30_000.0, close[:-1]]
    high, low = np.maximum(open_, close) * 1.003, np.minimum(open_, close) * 0.997
    ts = pl.Series("ts", np.arange(n, dtype=np.int64) * 3_600_000 + 1_672_531_200_000).cast(pl.Datetime("ms", "UTC"))
    bars = pl.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                         "volume": np.full(n, 1_000.0), "mark_open": open_, "mark_high": high, "mark_low": low,
                         "mark_close": close})
    path = tmp_path_factory.mktemp("manifests") / "bars.parquet"
    bars.write_parquet(path)
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
