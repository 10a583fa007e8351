"""``margincall demo``: the embedded job end to end (data, store, ladder, reports)."""
from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.cli.demo import LADDER


def test_demo_writes_the_ladder_and_its_reports(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(build_app(), ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Comparison report" in result.output
    assert (out / "comparison.html").stat().st_size > 100_000
    first_liquidations = []
    for leverage in LADDER:
        run = out / f"hold-long-{leverage:g}x"
        for name in ("equity", "fills", "liquidations", "bars", "manifest.json", "report.html"):
            assert (run / (name if "." in name else f"{name}.parquet")).exists(), (run, name)
        liquidations = pl.read_parquet(run / "liquidations.parquet")
        first_liquidations.append(liquidations["trigger_ts"].min() if liquidations.height else None)
    # more leverage never survives longer: liquidation times are non-increasing up the ladder
    seen = [t for t in first_liquidations if t is not None]
    assert seen == sorted(seen, reverse=True)
    assert first_liquidations[-1] is not None  # 50x cannot ride out the crash day
    # the ladder's comparison names every run
    page = (out / "comparison.html").read_text(encoding="utf-8")
    assert all(f"hold-long-{lev:g}x" in page for lev in LADDER)


def test_demo_is_deterministic(tmp_path: Path) -> None:
    from backtest.cli.demo import run_demo

    first = dict(run_demo(out=tmp_path / "a", log=lambda *_: None))
    second = dict(run_demo(out=tmp_path / "b", log=lambda *_: None))
    assert first == second
    a = pl.read_parquet(tmp_path / "a" / "hold-long-10x" / "equity.parquet")
    b = pl.read_parquet(tmp_path / "b" / "hold-long-10x" / "equity.parquet")
    assert a.equals(b)
