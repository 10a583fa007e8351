"""Runs as data: ``margincall runs`` lists run folders, ``runs query`` reads all their tables
at once (read-only), and a copied or moved run's results.duckdb still opens."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.runcatalog import RunCatalogError, connect_runs, find_runs, run_query, runs_listing
from backtest.runfolder import open_results

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real engine runs: hold at 2x and 50x (liquidated in the crash), one in a sub-folder."""
    from backtest import MarketData, RunConfig, run_backtest
    from data_loaders.synthetic import engine_frames, generate_perpetual

    market = generate_perpetual(symbol=SYMBOL, days=3, crash_day=1, seed=11, timeframe="5m")
    bars, funding = engine_frames(market)
    data = MarketData.from_frames(bars={SYMBOL: bars}, funding={SYMBOL: funding}, timeframe="5m")
    root = tmp_path_factory.mktemp("runs")
    for leverage, where in ((2.0, "hold-2x"), (50.0, "ladder/hold-50x")):
        config = RunConfig(initial_balance=10_000.0, leverage=leverage, margin_mode="isolated",
                           seed=0)
        run_backtest(data, strategy="hold", params={"side": "long"}, config=config).write(root / where)
    (root / "notes").mkdir()  # a folder that is not a run is not listed
    return root


def _invoke(*args: str):
    return CliRunner().invoke(build_app(), ["runs", *args])


def _summary(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())["summary"]


def test_listing_names_every_run_by_its_path_under_the_folder(runs_root):
    found = find_runs(runs_root)
    assert [r.run_id for r in found] == ["hold-2x", "ladder/hold-50x"]
    listing = runs_listing(found)
    assert listing.get_column("leverage").to_list() == [2.0, 50.0]
    assert listing.get_column("n_liquidations").to_list() == [
        _summary(runs_root / "hold-2x")["n_liquidations"],
        _summary(runs_root / "ladder/hold-50x")["n_liquidations"]]
    result = _invoke(str(runs_root))
    assert result.exit_code == 0, result.output
    assert "hold-2x" in result.output and "ladder/hold-50x" in result.output
    assert "50x" in result.output


def test_query_reads_every_runs_tables_tagged_with_the_run_id(runs_root):
    con = connect_runs(find_runs(runs_root), runs_root)
    rows = run_query(con, "SELECT run_id, count(*) FROM liquidations GROUP BY run_id "
                          "ORDER BY run_id").fetchall()
    liquidated = {r: n for r, n in rows}
    assert liquidated.get("ladder/hold-50x", 0) == _summary(runs_root / "ladder/hold-50x")["n_liquidations"] > 0
    assert liquidated.get("hold-2x", 0) == _summary(runs_root / "hold-2x")["n_liquidations"]
    bars = dict(run_query(con, "SELECT run_id, count(*) FROM equity GROUP BY run_id").fetchall())
    assert bars == {"hold-2x": _summary(runs_root / "hold-2x")["bars"],
                    "ladder/hold-50x": _summary(runs_root / "ladder/hold-50x")["bars"]}
    fills = run_query(con, "SELECT r.run_id, r.n_fills, count(*) FROM runs r JOIN fills f "
                           "USING (run_id) GROUP BY ALL ORDER BY 1").fetchall()
    assert len(fills) == 2 and all(a == b > 0 for _, a, b in fills)
    con.close()


def test_query_is_read_only(runs_root, tmp_path):
    before = {p: p.read_bytes() for p in (runs_root / "hold-2x").iterdir()}
    con = connect_runs(find_runs(runs_root), runs_root)
    with pytest.raises(RunCatalogError, match="expected SELECT .* found a COPY statement"):
        run_query(con, f"COPY (SELECT 1) TO '{runs_root / 'hold-2x' / 'x.csv'}'")
    with pytest.raises(RunCatalogError, match="found a DROP statement"):
        run_query(con, "SELECT 1; DROP VIEW fills")
    con.close()
    result = _invoke("query", "DELETE FROM runs", str(runs_root))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "read-only" in result.output.replace("\n", " ")
    assert {p: p.read_bytes() for p in (runs_root / "hold-2x").iterdir()} == before


def test_cli_query_prints_rows_and_names_the_views_on_a_typo(runs_root):
    result = _invoke("query", "SELECT run_id, count(*) AS n FROM fills GROUP BY run_id ORDER BY run_id",
                     str(runs_root))
    assert result.exit_code == 0, result.output
    assert "hold-2x" in result.output and "ladder/hold-50x" in result.output
    bad = _invoke("query", "SELECT * FROM fils", str(runs_root))
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "views: runs" in bad.output.replace("\n", " ")


def test_an_incomplete_run_is_listed_as_such_and_left_out_of_queries(runs_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(runs_root, root)
    (root / "hold-2x" / "fills.parquet").write_bytes(b"not parquet")
    found = find_runs(root)
    assert [r.ok for r in found] == [False, True]
    assert runs_listing(found).get_column("status").to_list() == ["incomplete", "ok"]
    result = _invoke("query", "SELECT DISTINCT run_id FROM equity", str(root))
    assert result.exit_code == 0, result.output
    assert "left out 1 incomplete run(s): hold-2x" in result.output.replace("\n", " ")


def test_a_moved_run_still_opens_its_results_database(runs_root, tmp_path):
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(runs_root / "ladder" / "hold-50x", moved)
    con = open_results(moved)
    assert con.execute("SELECT count(*) FROM equity").fetchone()[0] == _summary(moved)["bars"]
    assert con.execute("SELECT count(*) FROM liquidations").fetchone()[0] == _summary(moved)["n_liquidations"]
    con.close()


def test_a_folder_that_is_not_there_is_a_clear_error(tmp_path):
    result = _invoke(str(tmp_path / "nope"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "expected a folder holding run folders" in result.output.replace("\n", " ")
    empty = _invoke("query", "SELECT 1", str(tmp_path))
    assert empty.exit_code == 2 and "expected at least one complete run folder" in empty.output.replace("\n", " ")
