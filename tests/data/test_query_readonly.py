"""`data query` cannot write or delete files (issue 9: COPY ... OVERWRITE deleted stored funding)."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from data_loaders.catalog import run_read_only
from data_loaders.errors import DataError
from data_loaders.store import MarketStore
from tests.data.trust_helpers import data_cli, folder_hash, seeded_store

WRITES = [
    ("copy-into-store", "COPY (SELECT * FROM ohlcv) TO '{part}' (FORMAT parquet, OVERWRITE)", "COPY"),
    ("copy-outside", "COPY (SELECT 1 AS x) TO '{tmp}/out.csv'", "COPY"),
    ("create-table", "CREATE TABLE t AS SELECT * FROM ohlcv", "CREATE"),
    ("insert", "INSERT INTO ohlcv SELECT * FROM ohlcv", "INSERT"),
    ("drop-view", "DROP VIEW ohlcv", "DROP"),
    ("export", "EXPORT DATABASE '{tmp}/exp'", "EXPORT"),
    ("attach", "ATTACH '{tmp}/x.duckdb' AS x", "ATTACH"),
    ("unlock", "SET enable_external_access = true", "SET"),
    ("second-statement", "SELECT 1; COPY (SELECT 1) TO '{tmp}/y.csv'", "COPY"),
]


@pytest.mark.parametrize("case_id,sql,kind", WRITES, ids=[w[0] for w in WRITES])
def test_writing_statements_are_refused(tmp_path: Path, case_id: str, sql: str, kind: str) -> None:
    root = seeded_store(tmp_path)
    before = folder_hash(root)
    part = next(root.rglob("part-*.parquet"))
    result = data_cli()("query", "--store", root, sql.format(part=part, tmp=tmp_path))
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert f"found a {kind} statement" in flat and "read-only" in flat and "--out" in flat
    assert "Traceback" not in result.output
    assert folder_hash(root) == before
    assert not any((tmp_path / n).exists() for n in ("out.csv", "exp", "x.duckdb", "y.csv"))


def test_session_cannot_read_or_write_outside_the_store_even_in_a_select(tmp_path: Path) -> None:
    """The DuckDB lock-down stands behind the statement check: file functions outside the store fail."""
    root = seeded_store(tmp_path)
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    con = MarketStore(root).connect()
    with pytest.raises(Exception, match="disabled by configuration|Permission"):
        run_read_only(con, f"SELECT * FROM read_csv('{outside}')")
    with pytest.raises(Exception, match="Cannot change configuration|lock"):
        con.execute("SET enable_external_access = true")
    assert run_read_only(con, "SELECT count(*) FROM ohlcv").fetchone() == (48,)


def test_empty_and_unparsable_sql_are_clear(tmp_path: Path) -> None:
    con = MarketStore(seeded_store(tmp_path)).connect()
    with pytest.raises(DataError, match="found empty SQL"):
        run_read_only(con, "  ")
    with pytest.raises(DataError, match="does not parse"):
        run_read_only(con, "SELEKT 1")


def test_out_writes_the_result_outside_the_store_only(tmp_path: Path) -> None:
    root = seeded_store(tmp_path)
    before = folder_hash(root)
    cli = data_cli()
    out = tmp_path / "closes.parquet"
    result = cli("query", "--store", root, "--out", out, "SELECT ts, close FROM ohlcv ORDER BY ts")
    assert result.exit_code == 0 and "wrote 48 rows" in result.output
    assert pl.read_parquet(out).height == 48
    again = cli("query", "--store", root, "--out", out, "SELECT 1 AS x")
    assert again.exit_code == 2 and "--overwrite" in again.output and pl.read_parquet(out).height == 48
    inside = cli("query", "--store", root, "--out", root / "funding" / "x.parquet", "SELECT 1 AS x")
    assert inside.exit_code == 2 and "outside the store" in inside.output
    assert folder_hash(root) == before
