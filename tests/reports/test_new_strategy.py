"""``margincall new-strategy`` writes a template that runs as it is; the strategy API page is
generated from the docstrings and kept in sync."""
from __future__ import annotations

import runpy
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app

PROJECT = Path(__file__).resolve().parents[2]


def _cli(*args: str):
    return CliRunner().invoke(build_app(), list(args))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from data_loaders.store import MarketStore
    from data_loaders.synthetic import generate_perpetual, write_to_store

    root = tmp_path_factory.mktemp("store")
    write_to_store(MarketStore(root), [generate_perpetual(days=20, crash_day=10, seed=5)],
                   timeframes=("1h",))
    return root


def test_the_template_runs_as_written_and_its_stops_reach_the_report(store, tmp_path):
    target = tmp_path / "my_breakout.py"
    made = _cli("new-strategy", "my_breakout", "--out", str(target))
    assert made.exit_code == 0, made.output
    assert f"{target}:MyBreakout" in made.output
    source = target.read_text()
    assert "class MyBreakout(Strategy):" in source and source.count("#") >= 10  # commented
    run = _cli("run", "--strategy", f"{target}:MyBreakout", "--store", str(store), "--timeframe",
               "1h", "--leverage", "5", "--out", str(tmp_path / "out"), "--no-progress")
    assert run.exit_code == 0, run.output
    orders = pl.read_parquet(tmp_path / "out" / "orders.parquet")
    assert orders.filter(pl.col("type") == "market").height >= 1          # it entered
    assert orders.filter(pl.col("type") == "stop_market").height >= 1     # and protected it
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert '"name":"stop orders"' in page  # the report draws the run's stop orders


def test_parameters_of_the_template_are_checked(store, tmp_path):
    target = tmp_path / "x.py"
    assert _cli("new-strategy", "x_y", "--out", str(target)).exit_code == 0
    bad = _cli("run", "--strategy", f"{target}:XY", "--store", str(store), "--timeframe", "1h",
               "--param", "lookbak=10", "--out", str(tmp_path / "o"), "--no-progress", "--no-report")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "lookback" in bad.output  # did you mean


def test_an_existing_file_is_never_replaced_and_bad_names_are_refused(tmp_path):
    target = tmp_path / "mine.py"
    target.write_text("keep me")
    result = _cli("new-strategy", "mine", "--out", str(target))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "found one already there" in result.output.replace("\n", " ")
    assert target.read_text() == "keep me"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left
    bad = _cli("new-strategy", "9lives", "--out", str(tmp_path / "n.py"))
    assert bad.exit_code == 2 and "letters, digits and underscores" in bad.output.replace("\n", " ")


def test_strategy_api_page_is_generated_from_the_current_docstrings():
    generator = runpy.run_path(str(PROJECT / "docs" / "generate_reference.py"))
    page = generator["render"]()
    written = (PROJECT / "docs" / "strategy_api.md").read_text(encoding="utf-8")
    assert written == page, "docs/strategy_api.md is stale: run python docs/generate_reference.py"
    for heading in ("## Strategy", "## Context", "## Position (PositionView)",
                    "## Account (AccountView)", "## Order", "## Events", "## Param",
                    "## Run file (TOML) reference", "### `[data]`", "### `[run]`"):
        assert f"\n{heading}\n" in page
    from backtest.config import _FIELDS, RUN_FILE_SCHEMA

    for key in [*_FIELDS, *RUN_FILE_SCHEMA["data"], *RUN_FILE_SCHEMA["strategy"]]:
        assert f"| `{key}` |" in page  # every run-file key has its row
