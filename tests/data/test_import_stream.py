"""Streamed imports (issue 14): a dump checked and merged block by block stores the same bytes,
reports the same findings and refuses the same things as the file imported whole.

The reference is the whole-file import (``load_dump`` then ``store_checked``: one frame, one
check, one write). Blocks are shrunk to a few lines through ``block_bytes`` so that the cases
that cross a block boundary (a repeated, out-of-order or missing candle, a bad row in a later
block, a year boundary) are exercised on tiny files; each boundary case asserts that some block
size really puts the boundary between the two lines concerned.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import replace as with_fields
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import data_loaders.binance_dump as dump
from data_loaders.errors import DataValidationError, ImportFormatError, ReplaceRefusedError
from data_loaders.quality import check
from data_loaders.quality_stream import ChunkedCheck
from data_loaders.schemas import conform
from data_loaders.store import MarketStore, store_checked
from tests.data.dumps import FUNDING_HEADER, HOUR, KLINE_HEADER, MINUTE, T0, kline_lines, write_csv

CSV_NAME = "futures/um/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2020-03.csv"
NEW_YEAR = int(datetime(2021, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
SIZES = range(150, 700, 23)  # block sizes of 1 to 6 kline lines: many blocks, boundaries everywhere


def whole_import(store: MarketStore, path: Path, *, strict: bool = True, replace: bool = False):
    """The reference: the file parsed, checked and written as one frame (the import before streaming)."""
    spec, frame, first_line = dump.load_dump(path)
    result, warnings = store_checked(store, spec.dataset, frame, path=path, strict=strict, replace=replace,
                                     source=f"binance-dump:{path.name}", first_line=first_line)
    return result, warnings


@contextlib.contextmanager
def whole_imports():
    """Record the files read whole (``load_dump`` calls; the real one runs)."""
    calls: list[Path] = []
    real = dump.load_dump

    def spy(path, *args, **kwargs):
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    dump.load_dump = spy
    try:
        yield calls
    finally:
        dump.load_dump = real


def stored(root: Path) -> dict:
    """Every stored data file's bytes (hashed) and its manifest entry without the write times."""
    manifest = json.loads((root / "manifest.json").read_text()) if (root / "manifest.json").exists() else {"files": {}}
    files = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*.parquet"))}
    entries = {rel: {**{k: v for k, v in e.items() if k != "writes"},
                     "writes": [{k: v for k, v in w.items() if k not in ("written_at", "fetched_at")}
                                for w in e["writes"]]}
               for rel, e in manifest["files"].items()}
    return {"files": files, "manifest": entries}


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmp")] if root.exists() else []


def boundary_sizes(path: Path, row: int) -> list[int]:
    """Block sizes of :data:`SIZES` whose blocks end exactly before data row ``row`` (0-based)."""
    header = not path.read_bytes()[:1].isdigit()
    found = []
    for size in SIZES:
        lines = 0
        for block in dump._blocks(path, size=size):
            lines += block.count(b"\n")
            if lines - header == row:
                found.append(size)
                break
    return found


def both(tmp_path: Path, lines: list[str], size: int, *, strict: bool = True, seed: pl.DataFrame | None = None,
         replace: bool = False, streams: bool = True):
    """Import the same file whole and streamed (``size``-byte blocks) into two equal stores.

    Returns (whole outcome, streamed outcome, whole store, streamed store); an outcome is the
    (write result, warnings) or the refusal's message. ``streams``: whether the streamed import
    is expected to stay streamed (else it falls back to the whole import, out-of-order input).
    """
    path = write_csv(tmp_path / CSV_NAME, lines, KLINE_HEADER)
    outcomes, roots = [], []
    for name in ("whole", f"stream{size}"):
        root = tmp_path / name
        if seed is not None and not root.exists():
            MarketStore(root).write("ohlcv", seed, source="seed")
        try:
            if name == "whole":
                outcome = whole_import(MarketStore(root), path, strict=strict, replace=replace)
            else:
                with whole_imports() as calls:
                    try:
                        got = dump.import_dump(MarketStore(root), path, strict=strict, replace=replace,
                                               block_bytes=size)
                    finally:
                        assert calls == ([] if streams else [path]), "streamed or not, as expected"
                outcome = (got.write, got.warnings)
            outcome = (with_fields(outcome[0], files=tuple(f.relative_to(root) for f in outcome[0].files)), outcome[1])
        except (DataValidationError, ImportFormatError, ReplaceRefusedError) as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        outcomes.append(outcome)
        roots.append(root)
    return outcomes[0], outcomes[1], roots[0], roots[1]


# ---------------------------------------------------------------- identical stores
@pytest.mark.parametrize("size", [150, 331, 1 << 20])
def test_streamed_import_across_a_year_stores_the_same_bytes(tmp_path: Path, size: int) -> None:
    lines = kline_lines(40, start=NEW_YEAR - 17 * MINUTE)
    whole, streamed, a, b = both(tmp_path, lines, size)
    assert streamed == whole and whole[0].rows_added == 40
    assert stored(a) == stored(b) and len(stored(a)["files"]) == 2
    assert temp_files(b) == []


def test_streamed_merge_into_stored_years_equals_the_whole_merge(tmp_path: Path) -> None:
    """Stored rows in both years: the counts, the merged files and the manifest agree."""
    lines = kline_lines(60, start=NEW_YEAR - 30 * MINUTE)
    seed = conform("ohlcv", dump.load_dump(write_csv(tmp_path / "seed" / CSV_NAME, lines[10:50:3],
                                                     KLINE_HEADER))[1])
    whole, streamed, a, b = both(tmp_path, lines, 200, seed=seed)
    assert streamed == whole
    assert (whole[0].rows_added, whole[0].rows_unchanged) == (60 - seed.height, seed.height)
    assert stored(a) == stored(b)
    again = dump.import_dump(MarketStore(b), tmp_path / CSV_NAME, block_bytes=200)  # a re-import: no change
    assert again.write.rows_added == 0 and again.write.files == () and stored(a) == stored(b)


def test_changed_stored_rows_are_refused_alike_and_replaced_alike(tmp_path: Path) -> None:
    lines = kline_lines(50, start=NEW_YEAR - 20 * MINUTE)
    seed = conform("ohlcv", dump.load_dump(write_csv(tmp_path / "seed" / CSV_NAME, lines, KLINE_HEADER))[1])
    seed = seed.with_columns(close=pl.when(pl.col("ts").dt.year() == 2021).then(pl.col("close") + 0.1)
                             .otherwise(pl.col("close")))
    whole, streamed, a, b = both(tmp_path, lines, 180, seed=seed)
    assert streamed == whole and "ReplaceRefusedError" in whole and "would change 30 stored" in whole
    assert stored(a) == stored(b) and temp_files(b) == []  # the staged 2020 file is gone too
    whole, streamed, a, b = both(tmp_path, lines, 180, seed=seed, replace=True)
    assert streamed == whole and whole[0].rows_replaced == 30 and stored(a) == stored(b)


# ---------------------------------------------------------------- chunk boundaries
def _duplicate(lines: list[str], row: int) -> list[str]:
    return lines[:row] + [lines[row - 1]] + lines[row:]


def _swap(lines: list[str], row: int) -> list[str]:
    return lines[:row - 1] + [lines[row], lines[row - 1]] + lines[row + 1:]


def _drop(lines: list[str], row: int) -> list[str]:
    return lines[:row] + lines[row + 2:]  # two candles missing between rows row-1 and row


@pytest.mark.parametrize("defect, expected, streams", [
    (_duplicate, "duplicate_ts: expected one row per de-duplication key, found rows that repeat it (lines 23)", True),
    (_swap, "unsorted: timestamps must increase", False),  # out of order: checked whole
    (_drop, "missing_intervals: 2 missing candle intervals", True),
])
def test_a_defect_straddling_a_block_boundary_is_reported_as_in_one_pass(tmp_path: Path, defect,
                                                                          expected: str, streams: bool) -> None:
    lines = defect(kline_lines(40), 21)
    sizes = boundary_sizes(write_csv(tmp_path / "probe.csv", lines, KLINE_HEADER), 21)
    assert sizes, "no block size puts a boundary between the two rows"
    for size in [*sizes, *SIZES[:4]]:
        whole, streamed, a, b = both(tmp_path / str(size), lines, size, streams=streams)
        assert streamed == whole
        assert expected in (whole if isinstance(whole, str) else "\n".join(whole[1]))
        assert stored(a) == stored(b) and temp_files(b) == []


def test_lenient_streamed_import_drops_and_deduplicates_as_the_whole_one(tmp_path: Path) -> None:
    lines = kline_lines(60, start=NEW_YEAR - 25 * MINUTE)
    lines = _duplicate(lines, 21)
    lines[5] = lines[5].replace(",8505.0,", ",-1.0,", 1)  # bad price (open) in the first block
    fields = lines[44].split(",")
    fields[2] = str(float(fields[3]) - 5)  # high below low in a later block, in 2021
    lines[44] = ",".join(fields)
    lines = _drop(lines, 50)
    whole, streamed, a, b = both(tmp_path, lines, 170, strict=False)
    assert streamed == whole
    assert whole[0].rows_dropped == 3 and whole[0].rows_added == len(lines) - 3
    assert any("bad_price" in w for w in whole[1]) and any("missing_intervals" in w for w in whole[1])
    assert stored(a) == stored(b) and len(stored(a)["files"]) == 2


def test_a_lenient_import_may_drop_every_row_of_a_block(tmp_path: Path) -> None:
    lines = kline_lines(30)
    for row in range(8, 20):
        lines[row] = lines[row].replace(f",{8500 + row}.0,", ",0,", 1)  # open 0: a bad price
    whole, streamed, a, b = both(tmp_path, lines, 160, strict=False)
    assert streamed == whole and whole[0].rows_dropped == 12 and stored(a) == stored(b)


def test_a_strict_error_in_a_later_block_writes_nothing_and_names_its_line(tmp_path: Path) -> None:
    lines = kline_lines(50, start=NEW_YEAR - 40 * MINUTE)  # the 2020 file is staged before the error
    fields = lines[45].split(",")
    fields[1] = "0"
    lines[45] = ",".join(fields)
    whole, streamed, a, b = both(tmp_path, lines, 160)
    assert streamed == whole and "bad_price" in whole and "(lines 47)" in whole
    assert not (b / "ohlcv").exists() and temp_files(b) == []


def test_a_truncated_line_in_a_later_block_leaves_no_staged_file(tmp_path: Path) -> None:
    lines = kline_lines(50, start=NEW_YEAR - 40 * MINUTE)
    lines[47] = lines[47][:25]
    whole, streamed, a, b = both(tmp_path, lines, 160)
    assert streamed == whole and "have missing fields (lines 49)" in whole
    assert not (b / "ohlcv").exists() and temp_files(b) == []


def test_non_finite_volume_is_refused_naming_the_same_row(tmp_path: Path) -> None:
    lines = kline_lines(40)
    for row in (30, 33):
        fields = lines[row].split(",")
        fields[5] = "inf"
        lines[row] = ",".join(fields)
    whole, streamed, a, b = both(tmp_path, lines, 200)
    assert streamed == whole and "found inf in 2 row(s) (first: row 31" in whole


def test_volumeless_candles_are_refused_after_every_block(tmp_path: Path) -> None:
    lines = [",".join(f if i not in (5, 7, 9, 10) else "0" for i, f in enumerate(line.split(",")))
             for line in kline_lines(30)]
    whole, streamed, a, b = both(tmp_path, lines, 200)
    assert streamed == whole and "without any volume" in whole and not (b / "ohlcv").exists()
    lines[25] = lines[25].split(",", 6)[0] + "," + ",".join(kline_lines(30)[25].split(",")[1:])  # one has volume
    whole, streamed, a, b = both(tmp_path / "one", lines, 200)
    assert streamed == whole and whole[0].rows_added == 30


def test_funding_streams_as_it_imports_whole(tmp_path: Path) -> None:
    lines = [f"{NEW_YEAR + (k - 6) * 8 * HOUR + 7},8,{0.0001 * (k % 5 - 2):.6f}" for k in range(30) if k != 17]
    path = write_csv(tmp_path / "futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2020-12.csv",
                     lines, FUNDING_HEADER)
    whole = whole_import(MarketStore(tmp_path / "a"), path)
    streamed = dump.import_dump(MarketStore(tmp_path / "b"), path, block_bytes=64)
    files = tuple(f.relative_to(tmp_path / "b") for f in streamed.write.files)
    assert (with_fields(streamed.write, files=files), streamed.warnings) == (
        with_fields(whole[0], files=tuple(f.relative_to(tmp_path / "a") for f in whole[0].files)), whole[1])
    assert any("1 missing funding" in w for w in whole[1])
    assert stored(tmp_path / "a") == stored(tmp_path / "b") and len(stored(tmp_path / "a")["files"]) == 2


# ---------------------------------------------------------------- the chunked check itself
_DEFECTS = st.lists(st.tuples(st.integers(0, 59), st.sampled_from(["dup", "gap", "bad", "null_volume", "misaligned"])),
                    max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(defects=_DEFECTS, cuts=st.lists(st.integers(1, 59), max_size=8))
def test_chunked_check_reports_what_one_check_reports(defects, cuts) -> None:
    """Any in-order candles with any defects, cut anywhere: the same report (rules, counts, rows)."""
    times = [T0 + k * MINUTE for k in range(60)]
    close = [100.0 + k for k in range(60)]
    volume: list[float | None] = [1.0] * 60
    for row, kind in sorted(defects, reverse=True):
        if kind == "dup":
            times.insert(row, times[row])
            close.insert(row, close[row])
            volume.insert(row, 1.0)
        elif kind == "gap":
            times = times[:row] + [t + 3 * MINUTE for t in times[row:]]
        elif kind == "bad":
            close[row] = -1.0
        elif kind == "null_volume":
            volume[row] = None
        else:
            times = times[:row] + [t + 7 for t in times[row:]]
    n = len(times)
    frame = conform("ohlcv", pl.DataFrame({
        "exchange": ["binanceusdm"] * n, "symbol": ["BTC/USDT:USDT"] * n, "timeframe": ["1m"] * n,
        "price_type": ["last"] * n, "ts": times, "open": [100.0] * n, "high": [200.0] * n, "low": [50.0] * n,
        "close": close, "volume": volume}))
    expected = check("ohlcv", frame, subject="f", first_line=2)
    chunked = ChunkedCheck("ohlcv", subject="f", first_line=2)
    bounds = sorted({0, *[c for c in cuts if c < n], n})
    for start, end in zip(bounds[:-1], bounds[1:]):
        chunked.feed(frame.slice(start, end - start))
    assert chunked.streamable
    assert chunked.report() == expected


def test_chunked_check_gives_up_on_what_needs_the_whole_input() -> None:
    frame = conform("ohlcv", pl.DataFrame({
        "exchange": ["binanceusdm"] * 4, "symbol": ["BTC/USDT:USDT"] * 4, "timeframe": ["1m"] * 4,
        "price_type": ["last"] * 4, "ts": [T0, T0 + MINUTE, T0 + 2 * MINUTE, T0 + MINUTE],
        "open": [1.0] * 4, "high": [2.0] * 4, "low": [0.5] * 4, "close": [1.0] * 4, "volume": [1.0] * 4}))
    stepping_back = ChunkedCheck("ohlcv", subject="f")
    assert stepping_back.feed(frame.head(3)) is not None and stepping_back.feed(frame.tail(1)) is None
    other_market = ChunkedCheck("ohlcv", subject="f")
    other_market.feed(frame.head(2))
    assert other_market.feed(frame.slice(2, 1).with_columns(symbol=pl.lit("ETH/USDT:USDT"))) is None
    assert not stepping_back.streamable and not other_market.streamable
    assert ChunkedCheck("trades", subject="f").streamable is False


# ---------------------------------------------------------------- the merge with a stored file
def _hours(hours: list[int], close: dict[int, float], *, funding: bool = False) -> pl.DataFrame:
    n = len(hours)
    if funding:
        return conform("funding", pl.DataFrame({
            "exchange": ["binanceusdm"] * n, "symbol": ["BTC/USDT:USDT"] * n, "ts": [T0 + h * 8 * HOUR for h in hours],
            "rate": [close.get(h, 1.0) * 1e-4 for h in hours], "interval_hours": [8.0] * n}))
    return conform("ohlcv", pl.DataFrame({
        "exchange": ["binanceusdm"] * n, "symbol": ["BTC/USDT:USDT"] * n, "timeframe": ["1h"] * n,
        "price_type": ["last"] * n, "ts": [T0 + h * HOUR for h in hours], "open": [100.0] * n,
        "high": [200.0] * n, "low": [50.0] * n, "close": [close.get(h, 101.0) for h in hours],
        "volume": [None if h % 7 == 0 else float(h) for h in hours]}))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored_hours=st.sets(st.integers(0, 40), min_size=1), new_hours=st.sets(st.integers(0, 40), min_size=1),
       changes=st.dictionaries(st.integers(0, 40), st.floats(90, 110, allow_nan=False)),
       funding=st.booleans(), repeat=st.booleans())
def test_the_merge_on_time_equals_the_merge_on_every_key(tmp_path: Path, stored_hours, new_hours, changes,
                                                         funding: bool, repeat: bool) -> None:
    """Candles and funding are merged on the time alone, without reading the stored file's market
    columns: the merged rows, the counts and the written bytes equal the merge on the whole key."""
    from data_loaders.schemas import get_schema
    from data_loaders.store_io import stage_parquet
    from data_loaders.store_merge import plan_file

    schema = get_schema("funding" if funding else "ohlcv")
    old = _hours(sorted(stored_hours), {}, funding=funding)
    new = _hours(sorted(new_hours), changes, funding=funding)
    if repeat:  # a lenient input with a repeated key: the later row wins
        new = pl.concat([new, new.tail(1).with_columns(pl.col("rate") * 2 if funding else pl.col("close") + 1)])
    target = tmp_path / f"case{len(list(tmp_path.iterdir()))}" / "part-2020.parquet"
    target.parent.mkdir()
    old.write_parquet(target)
    plan = plan_file(new, target, schema)
    keys = list(schema.keys)
    deduped = new.unique(subset=keys, keep="last", maintain_order=True)
    expected = pl.concat([old, deduped]).unique(subset=keys, keep="last", maintain_order=True).sort("ts")
    common = deduped.join(old, on=keys, how="inner", suffix="__old")
    same = sum(all(r[c] == r[c + "__old"] or (r[c] is None and r[c + "__old"] is None)
                   for c in deduped.columns if c not in keys) for r in common.iter_rows(named=True))
    assert (plan.added, plan.changed, plan.unchanged) == (deduped.height - common.height, common.height - same, same)
    if not plan.writes:
        assert plan.merged is None and expected.equals(old)
        return
    assert plan.merged.equals(expected)
    ours, reference = stage_parquet(plan.merged, target)[0], stage_parquet(expected, target)[0]
    assert ours.read_bytes() == reference.read_bytes()


def test_a_stored_file_holding_another_market_is_merged_on_the_whole_key(tmp_path: Path) -> None:
    """A file copied into the wrong folder by hand: its rows keep their own key (nothing matched)."""
    from data_loaders.schemas import get_schema
    from data_loaders.store_merge import plan_file

    target = tmp_path / "part-2020.parquet"
    _hours([0, 1, 2], {}).with_columns(symbol=pl.lit("ETH/USDT:USDT")).write_parquet(target)
    plan = plan_file(_hours([1, 2, 3], {2: 99.0}), target, get_schema("ohlcv"))
    assert (plan.added, plan.changed, plan.unchanged) == (3, 0, 0) and plan.merged.height == 6


# ---------------------------------------------------------------- generic CSV files
def _generic_both(tmp_path: Path, frame: pl.DataFrame, name: str, *, streams: bool, **options):
    """Import one generic CSV whole (the reference) and streamed in small blocks; both outcomes."""
    import data_loaders.generic as generic

    path = tmp_path / name
    frame.write_csv(path)
    outcomes = []
    for kind in ("whole", "stream"):
        root = tmp_path / kind
        calls: list[Path] = []
        real = generic.load_generic

        def spy(p, *args, **kwargs):
            calls.append(Path(p))
            return real(p, *args, **kwargs)

        generic.load_generic = spy
        try:
            if kind == "whole":
                frame_ = real(path, **{k: v for k, v in options.items() if k not in ("strict", "dataset")},
                              exchange="binanceusdm", dataset=options.get("dataset", "ohlcv"))
                got = store_checked(MarketStore(root), options.get("dataset", "ohlcv"), frame_, path=path,
                                    source=f"file:{path.name}", strict=options.get("strict", True), first_line=2)
                outcome = (got[0], got[1])
            else:
                result = generic.import_generic(MarketStore(root), path, block_bytes=90, **options)
                outcome = (result.write, result.warnings)
                if streams and options.get("dataset") != "funding":
                    assert (result.symbol, result.timeframe, result.price_type) == ("BTC/USDT:USDT", "1m", "last")
            outcome = (with_fields(outcome[0], files=tuple(f.relative_to(root) for f in outcome[0].files)), outcome[1])
        except (DataValidationError, ImportFormatError) as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            generic.load_generic = real
        if kind == "stream":
            assert calls == ([] if streams else [path])
        outcomes.append(outcome)
    return outcomes[0], outcomes[1], tmp_path / "whole", tmp_path / "stream"


def _generic_candles(n: int, *, start: int = NEW_YEAR - 30 * MINUTE) -> pl.DataFrame:
    return pl.DataFrame({"t": [start + k * MINUTE for k in range(n)], "o": [10.0 + k for k in range(n)],
                         "h": [12.0 + k for k in range(n)], "l": [9.0 + k for k in range(n)],
                         "c": [11.0 + k for k in range(n)], "v": [float(k % 3) for k in range(n)]})


GENERIC_MAP = {"ts": "t", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}


@pytest.mark.parametrize("timeframe", [None, "1m"])
def test_a_generic_csv_streams_to_the_same_store(tmp_path: Path, timeframe: str | None) -> None:
    """Across a year boundary, with a gap and a repeated row; the timeframe given or inferred."""
    frame = _generic_candles(80)
    frame = pl.concat([frame.head(40), frame.slice(39, 1), frame.slice(43, 37)])
    options = {"mapping": GENERIC_MAP, "timeframe": timeframe} if timeframe else {"mapping": GENERIC_MAP}
    whole, streamed, a, b = _generic_both(tmp_path, frame, "binance_um_BTCUSDT_x.csv", streams=True,
                                          strict=False, **options)
    assert streamed == whole and whole[0].rows_dropped == 1
    assert any("3 missing candle intervals" in w for w in whole[1])
    assert stored(a) == stored(b) and len(stored(a)["files"]) == 2


def test_a_generic_csv_with_text_times_streams(tmp_path: Path) -> None:
    frame = _generic_candles(50).with_columns(
        pl.col("t").cast(pl.Datetime("ms", "UTC")).dt.strftime("%Y-%m-%d %H:%M:%S").alias("t"))
    whole, streamed, a, b = _generic_both(tmp_path, frame, "BTCUSDT.csv", streams=True, mapping=GENERIC_MAP)
    assert streamed == whole and whole[0].rows_added == 50 and stored(a) == stored(b)


@pytest.mark.parametrize("case", ["quoted", "unsorted", "volumeless", "no_volume_column", "two_symbols"])
def test_what_a_generic_stream_cannot_judge_is_imported_whole(tmp_path: Path, case: str) -> None:
    frame = _generic_candles(40)
    if case == "quoted":
        frame = frame.with_columns(note=pl.lit("a, b"))  # written quoted
    elif case == "unsorted":
        frame = pl.concat([frame.slice(20, 20), frame.head(20)])
    elif case == "volumeless":
        frame = frame.with_columns(v=pl.lit(0.0))
    elif case == "no_volume_column":
        frame = frame.drop("v")
    else:
        frame = frame.with_columns(symbol=pl.Series(["BTCUSDT", "ETHUSDT"] * 20))
    mapping = {k: v for k, v in GENERIC_MAP.items() if v in frame.columns}
    whole, streamed, a, b = _generic_both(tmp_path, frame, "BTCUSDT.csv", mapping=mapping, timeframe="1m",
                                          streams=case == "volumeless", strict=False)
    assert streamed == whole and stored(a) == stored(b)
    if case.endswith("volume") or case.endswith("column"):
        assert "without any volume" in whole


def test_a_generic_funding_csv_streams_to_the_same_store(tmp_path: Path) -> None:
    frame = pl.DataFrame({"funding_time": [NEW_YEAR + (k - 5) * 8 * HOUR + 3 for k in range(30) if k != 12],
                          "rate": [0.0001 * (k % 4) for k in range(29)], "interval_hours": [8.0] * 29})
    whole, streamed, a, b = _generic_both(tmp_path, frame, "BTCUSDT_funding.csv", streams=True, dataset="funding",
                                          mapping={"ts": "funding_time"})
    assert streamed == whole and whole[0].rows_added == 29 and any("1 missing funding" in w for w in whole[1])
    assert stored(a) == stored(b) and len(stored(a)["files"]) == 2


@pytest.mark.parametrize("timeframe", [None, "1m"])
def test_a_generic_csv_in_the_wrong_time_unit_is_refused_as_whole(tmp_path: Path, timeframe: str | None) -> None:
    """Milliseconds read as seconds: times out of range are refused by the check (naming --ts-unit),
    never turned into Python datetimes on the way (which overflowed)."""
    options = {"mapping": GENERIC_MAP, "ts_unit": "s", **({"timeframe": timeframe} if timeframe else {})}
    whole, streamed, a, b = _generic_both(tmp_path, _generic_candles(30), "BTCUSDT.csv", streams=True, **options)
    assert streamed == whole and "ts_out_of_range" in whole and "--ts-unit" in whole
    assert not (b / "ohlcv").exists()
