"""Stored data is never silently replaced or lost (issue 9): replace guard, price-type detection,
journalled writes, stray files, tier rules on import, `data rm`."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from data_loaders.errors import DataValidationError, ImportFormatError, ReplaceRefusedError
from data_loaders.generic import import_generic
from data_loaders.store import MarketStore
from data_loaders.store_io import JOURNAL
from tests.data.dumps import HOUR, KLINE_HEADER, T0, kline_lines, write_csv, write_zip
from tests.data.test_store import candles
from tests.data.trust_helpers import SYM, data_cli, folder_hash, mark_frame, seeded_store

PROJECT = Path(__file__).resolve().parents[2]


def _last(store: MarketStore) -> pl.DataFrame:
    return store.read("ohlcv", exchange="binanceusdm", symbol=SYM, timeframe="1h", price_type="last")


# ---------------------------------------------------------------- item 1: no silent replacement
def test_mark_file_without_flag_goes_to_mark_and_leaves_last_untouched(tmp_path: Path) -> None:
    root = seeded_store(tmp_path)
    store = MarketStore(root)
    before = _last(store)
    path = tmp_path / "binance_um_BTCUSDT_markprice_1h_2020-03-01_2020-03-02.parquet"
    mark_frame().write_parquet(path)
    result = import_generic(store, path)
    assert result.price_type == "mark" and result.write.rows_replaced == 0
    assert _last(store).equals(before)
    assert store.read("ohlcv", exchange="binanceusdm", symbol=SYM, timeframe="1h", price_type="mark").height == 48


def test_volumeless_candles_without_a_name_hint_are_refused(tmp_path: Path) -> None:
    root = seeded_store(tmp_path)
    before = folder_hash(root)
    path = tmp_path / "BTCUSDT_1h.parquet"  # no hint in the name, no volume column
    mark_frame().write_parquet(path)
    with pytest.raises(ImportFormatError, match="without any volume.*--price-type mark"):
        import_generic(MarketStore(root), path)
    assert folder_hash(root) == before
    # Binance's markPriceKlines layout (volume fields all 0) named like klines, outside its folder
    zero = [",".join(f if i not in (5, 7, 9, 10) else "0" for i, f in enumerate(line.split(",")))
            for line in kline_lines(48, step=HOUR)]
    dump = write_zip(tmp_path / "loose" / "BTCUSDT-1h-2020-03.zip", zero, KLINE_HEADER)
    result = data_cli()("import", "--store", root, dump)
    assert result.exit_code == 1 and "--kind markPriceKlines" in result.output
    assert folder_hash(root) == before


def test_import_changing_stored_rows_is_refused_unless_replace(tmp_path: Path) -> None:
    root = seeded_store(tmp_path)
    before = folder_hash(root)
    cheaper = write_zip(tmp_path / "other" / "klines" / "BTCUSDT-1h-2020-03.zip",
                        kline_lines(30, step=HOUR, price=8000.0), KLINE_HEADER)
    result = data_cli()("import", "--store", root, cheaper)
    assert result.exit_code == 1
    assert "would change 30 stored ohlcv row(s)" in result.output and "--replace" in result.output
    assert "Traceback" not in result.output
    assert folder_hash(root) == before
    result = data_cli()("import", "--store", root, "--replace", cheaper)
    assert result.exit_code == 0 and "30 replaced" in result.output
    assert _last(MarketStore(root))["open"][0] == 8000.0


def test_identical_reimport_is_not_a_replacement(tmp_path: Path) -> None:
    root = seeded_store(tmp_path)
    before = folder_hash(root)
    same = write_zip(tmp_path / "again" / "klines" / "BTCUSDT-1h-2020-03.zip", kline_lines(48, step=HOUR), KLINE_HEADER)
    result = data_cli()("import", "--store", root, same)
    assert result.exit_code == 0, result.output
    assert "0 added, 0 replaced, 48 unchanged" in result.output
    assert folder_hash(root) == before  # nothing rewritten, manifest untouched


def test_refusal_covers_every_file_of_a_multi_year_write(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    dec31 = 1_609_455_600_000
    frame = candles([0, 1]).with_columns(ts=pl.Series([dec31, dec31 + HOUR]).cast(pl.Datetime("ms", "UTC")))
    store.write("ohlcv", frame.head(1), source="a")
    before = folder_hash(tmp_path)
    with pytest.raises(ReplaceRefusedError):  # 2021 file is new, 2020 row changes: nothing written
        store.write("ohlcv", frame.with_columns(close=pl.lit(100.5)), source="b")
    assert folder_hash(tmp_path) == before


# ---------------------------------------------------------------- item 2: journalled writes
def _kill_during_commit(tmp_path: Path, *, after_moves: int) -> subprocess.CompletedProcess:
    """Run a 2-file write in a subprocess that dies (os._exit) at the n-th os.replace."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(PROJECT)!r})
        import polars as pl
        from tests.data.test_store import candles
        from data_loaders.store import MarketStore
        real, calls = os.replace, []
        def dying(src, dst):
            calls.append(dst)
            if len(calls) > {after_moves}:
                os._exit(9)
            real(src, dst)
        os.replace = dying
        dec31 = 1_609_455_600_000
        frame = candles([0, 1, 2], close=100.5).with_columns(
            ts=pl.Series([dec31 - 3_600_000, dec31, dec31 + 3_600_000]).cast(pl.Datetime("ms", "UTC")))
        MarketStore({str(tmp_path)!r}).write("ohlcv", frame, source="killed", replace=True)
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("after_moves", [1, 2, 3])
def test_kill_between_parquet_replace_and_manifest_is_rolled_forward(tmp_path: Path, after_moves: int) -> None:
    """Moves: 1 = journal, 2 = first Parquet, 3 = second Parquet, then the manifest."""
    store = MarketStore(tmp_path)
    dec31 = 1_609_455_600_000
    store.write("ohlcv", candles([0]).with_columns(ts=pl.Series([dec31]).cast(pl.Datetime("ms", "UTC"))), source="a")
    proc = _kill_during_commit(tmp_path, after_moves=after_moves)
    assert proc.returncode == 9, proc.stderr
    assert (tmp_path / JOURNAL).exists()  # killed after the commit point
    assert store.verify() == []  # the next open finishes the write: no "sha256 differs"
    assert not (tmp_path / JOURNAL).exists()
    back = _last(store)
    assert back.height == 3 and back["close"].to_list() == [100.5] * 3
    assert not list(tmp_path.rglob(".*.tmp"))


def test_kill_before_commit_point_leaves_old_state(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write("ohlcv", candles([0]), source="a")
    proc = _kill_during_commit(tmp_path, after_moves=0)
    assert proc.returncode == 9
    assert not (tmp_path / JOURNAL).exists()
    assert store.verify() == [] and _last(store).height == 1


def test_tampered_file_message_says_what_happened_and_the_fix(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    result = store.write("ohlcv", candles([0, 1]), source="a")
    candles([5]).write_parquet(result.files[0])
    (problem,) = store.verify()
    assert "changed after margincall wrote it" in problem and "margincall data rm" in problem


# ---------------------------------------------------------------- item 3: stray files
def test_stray_files_are_ignored_and_noted(tmp_path: Path) -> None:
    root = seeded_store(tmp_path)
    part = next(root.rglob("year=2020"))
    strays = [root / ".DS_Store", root / "ohlcv" / ".DS_Store", part.parent / ".DS_Store",
              part / "part-2020.parquet~", part / "notes.parquet", root / "ohlcv" / "junk" / "x.parquet",
              part.parent.parent / "Untitled Folder" / "a.txt"]
    for path in strays:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00\x01 not ours")
    store = MarketStore(root)
    assert sorted(store.strays()) == sorted([*strays[:5], root / "ohlcv" / "junk", part.parent.parent / "Untitled Folder"])
    assert _last(store).height == 48
    assert store.connect().execute("select count(*) from ohlcv").fetchone() == (48,)
    cli = data_cli()
    for command in ("ls", "validate"):
        result = cli(command, "--store", root)
        assert result.exit_code == 0, result.output
        assert "7 file(s) in the store were not written by margincall" in result.output
        assert "Traceback" not in result.output


# ---------------------------------------------------------------- item 4: tier rules + data rm
def test_tier_table_the_engine_refuses_is_refused_on_import(tmp_path: Path) -> None:
    root = seeded_store(tmp_path)
    before = folder_hash(root)
    overlapping = [{"symbol": "BTCUSDT", "brackets": [
        {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0},
        {"bracket": 2, "initialLeverage": 100, "notionalCap": 250000, "notionalFloor": 40000, "maintMarginRatio": 0.005, "cum": 40}]}]
    path = tmp_path / "tiers.json"
    path.write_text(json.dumps(overlapping))
    result = data_cli()("import", "--store", root, "--effective-from", "2022-01-01", path)
    assert result.exit_code == 1 and "brackets must be contiguous" in result.output
    assert "engine refuses" in result.output
    assert folder_hash(root) == before


def test_engine_and_importer_share_one_rule_set() -> None:
    from backtest.venues import tiers as venue_tiers
    from data_loaders import tier_rules

    assert venue_tiers.maintenance_amounts is tier_rules.maintenance_amounts
    bad = [venue_tiers.Tier(0.0, 100.0, 10.0, 0.01, 0.0), venue_tiers.Tier(90.0, math.inf, 5.0, 0.02, 0.9)]
    with pytest.raises(venue_tiers.TierError) as caught:
        venue_tiers.TierTable(bad, label="t")
    assert str(caught.value) == tier_rules.table_problem(bad, "t")


def test_data_rm_dry_run_then_yes(tmp_path: Path) -> None:
    root = seeded_store(tmp_path)
    before = folder_hash(root)
    cli = data_cli()
    args = ("rm", "ohlcv", "--store", root, "--exchange", "binanceusdm", "--symbol", SYM,
            "--start", "2020-03-02", "--price-type", "last")
    dry = cli(*args)
    assert dry.exit_code == 0 and "would remove 24 rows" in dry.output and "add --yes" in dry.output
    assert folder_hash(root) == before
    done = cli(*args, "--yes")
    assert done.exit_code == 0 and "removed 24 rows" in done.output
    store = MarketStore(root)
    assert _last(store).height == 24 and store.verify() == []
    everything = cli("rm", "ohlcv", "--store", root, "--exchange", "binanceusdm", "--symbol", SYM, "--yes")
    assert everything.exit_code == 0 and "the whole file" in everything.output
    assert store.verify() == [] and store.partitions("ohlcv") == []  # emptied partition folders are pruned
    assert not list((root / "ohlcv").rglob("*.parquet"))
    assert json.loads((root / "manifest.json").read_text())["files"] == {}
    missing = cli("rm", "ohlcv", "--store", root, "--exchange", "binanceusdm", "--symbol", SYM, "--yes")
    assert missing.exit_code == 1 and "nothing stored matches" in missing.output


# ---------------------------------------------------------------- item 6: non-finite values
@pytest.mark.parametrize("dataset,column,value", [
    ("ohlcv", "volume", math.inf), ("ohlcv", "volume", math.nan), ("funding", "interval_hours", math.inf),
    ("funding", "rate", math.nan)])
def test_non_finite_numbers_are_refused_naming_column_and_row(tmp_path: Path, dataset: str, column: str,
                                                              value: float) -> None:
    store = MarketStore(tmp_path)
    store.write("ohlcv", candles([0]), source="seed")
    before = folder_hash(tmp_path)
    if dataset == "ohlcv":
        frame = candles([1, 2, 3]).with_columns(pl.Series(column, [1.0, value, 1.0]))
    else:
        frame = pl.DataFrame({"exchange": ["binanceusdm"] * 3, "symbol": [SYM] * 3,
                              "ts": [T0 + 8 * HOUR * i for i in range(3)], "rate": [0.0001] * 3,
                              "interval_hours": [8.0] * 3, "mark_price": [None] * 3})
        frame = frame.with_columns(pl.Series(column, [frame[column][0], value, frame[column][0]]))
    with pytest.raises(DataValidationError, match=rf"column '{column}': expected finite numbers.*row 2"):
        store.write(dataset, frame, source="bad")
    assert folder_hash(tmp_path) == before


def test_unbounded_tier_cap_is_still_allowed(tmp_path: Path) -> None:
    from data_loaders.tiers_import import import_tiers

    path = tmp_path / "t.json"
    path.write_text(json.dumps([{"symbol": "BTCUSDT", "brackets": [
        {"bracket": 1, "initialLeverage": 20, "notionalCap": 9223372036854775807, "notionalFloor": 0,
         "maintMarginRatio": 0.01, "cum": 0}]}]))
    result = import_tiers(MarketStore(tmp_path / "s"), path, effective_from="2022-01-01")
    assert result.write.rows_added == 1


def test_generic_csv_empty_timeframe_is_refused(tmp_path: Path) -> None:
    root = seeded_store(tmp_path)
    before = folder_hash(root)
    csv = write_csv(tmp_path / "BTCUSDT_x.csv", [f"{T0 + i * HOUR},1,2,0.5,1.5,3" for i in range(5)],
                    "open_time,open,high,low,close,volume")
    result = data_cli()("import", "--store", root, "--timeframe", "", csv)
    assert result.exit_code == 2 and "--timeframe ''" in result.output and "empty string" in result.output
    with pytest.raises(Exception, match="timeframe ''"):
        import_generic(MarketStore(root), csv, timeframe="")
    assert folder_hash(root) == before
    assert os.path.exists(root / "manifest.json")


def test_validate_warns_about_last_price_candles_without_volume(tmp_path: Path) -> None:
    """Issue 9: mark candles stored as last left most rows without volume and validate said ok."""
    root = seeded_store(tmp_path)
    path = tmp_path / "BTCUSDT_1h_more.parquet"
    mark_frame(24).with_columns(pl.col("open_time") + pl.duration(hours=48)).write_parquet(path)
    assert data_cli()("import", "--store", root, "--price-type", "last", path).exit_code == 0
    result = data_cli()("validate", "--store", root, "--strict")
    flat = " ".join(result.output.split())
    assert result.exit_code == 1 and "24 of 72 last-price candles have no volume" in flat


def test_rm_refuses_a_reversed_window_and_foreign_symbol_folders_are_strays(tmp_path: Path) -> None:
    root = seeded_store(tmp_path)
    result = data_cli()("rm", "ohlcv", "--store", root, "--exchange", "binanceusdm", "--symbol", SYM,
                        "--start", "2020-03-02", "--end", "2020-03-01", "--yes")
    assert result.exit_code == 2 and "expected start before end" in result.output
    foreign = root / "funding" / "exchange=binanceusdm" / "symbol_key=~ZZ"
    foreign.mkdir(parents=True)
    assert foreign in MarketStore(root).strays()


def test_a_stored_file_lacking_a_nullable_column_still_merges(tmp_path: Path) -> None:
    """Files of older versions may lack a nullable column; the merge conforms them instead of crashing."""
    store = MarketStore(tmp_path)
    written = store.write("ohlcv", candles([0, 1]), source="a").files[0]
    pl.read_parquet(written).drop("volume").write_parquet(written)
    assert store.write("ohlcv", candles([2]), source="b").rows_added == 1
    assert _last(store).height == 3
