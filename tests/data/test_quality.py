"""Data-quality rules on tiny inline frames."""
from __future__ import annotations

import polars as pl
import pytest

from data_loaders.errors import DataValidationError
from data_loaders.quality import check, check_coverage, missing_intervals, repair
from data_loaders.schemas import conform

T0 = 1_583_020_800_000
MIN = 60_000


def bars(rows: list[tuple[int, float, float, float, float]], tf: str = "1m") -> pl.DataFrame:
    return conform("ohlcv", pl.DataFrame(
        [("binanceusdm", "BTC/USDT:USDT", tf, "last", T0 + m * MIN, o, h, l, c, 1.0) for m, o, h, l, c in rows],
        schema=["exchange", "symbol", "timeframe", "price_type", "ts", "open", "high", "low", "close", "volume"],
        orient="row"))


def codes(report) -> set[str]:
    return {i.code for i in report.issues}


def test_clean_frame_is_ok() -> None:
    report = check("ohlcv", bars([(0, 10, 11, 9, 10.5), (1, 10.5, 11, 10, 10.8)]), subject="t")
    assert report.ok and report.issues == () and report.warnings == []


@pytest.mark.parametrize("row,code", [
    ((1, 10, 10.2, 9, 10.5), "ohlc_sanity"),     # high < close
    ((1, 10, 11, 10.2, 10.1), "ohlc_sanity"),    # low > close
    ((1, 10, 9, 11, 10), "ohlc_sanity"),         # high < low
    ((1, float("nan"), 11, 9, 10), "bad_price"),
    ((1, 10, 11, 9, 0.0), "bad_price"),
    ((1, 10, 11, -1, 10), "bad_price"),
])
def test_row_rules(row, code: str) -> None:
    report = check("ohlcv", bars([(0, 10, 11, 9, 10.5), row]), subject="f.csv", first_line=2)
    assert code in codes(report)
    issue = next(i for i in report.issues if i.code == code)
    assert issue.rows == (3,) and issue.severity == "error"
    with pytest.raises(DataValidationError, match=rf"(?s)f\.csv.*{code}.*lines 3"):
        report.raise_if_errors()


def test_unsorted_duplicates_and_repair() -> None:
    frame = bars([(2, 10, 11, 9, 10), (0, 10, 11, 9, 10), (1, 10, 11, 9, 10), (1, 10, 12, 9, 11)])
    assert {"unsorted", "duplicate_ts"} <= codes(check("ohlcv", frame, subject="t"))
    fixed = repair("ohlcv", frame)
    assert fixed["ts"].dt.epoch("ms").to_list() == [T0, T0 + MIN, T0 + 2 * MIN]
    assert fixed["high"].to_list() == [11, 12, 11]  # the later duplicate wins
    assert check("ohlcv", fixed, subject="t").ok


def test_misaligned_timestamp() -> None:
    frame = bars([(0, 10, 11, 9, 10)]).with_columns(pl.col("ts") + pl.duration(seconds=7))
    assert "misaligned_ts" in codes(check("ohlcv", frame, subject="t"))


def test_gaps_are_counted_per_partition() -> None:
    frame = pl.concat([bars([(0, 10, 11, 9, 10), (3, 10, 11, 9, 10), (4, 10, 11, 9, 10)]),
                       bars([(0, 10, 11, 9, 10), (10, 10, 11, 9, 10)], tf="5m")])
    counts = missing_intervals("ohlcv", frame).sort("timeframe")
    assert counts["missing"].to_list() == [2, 1]
    report = check("ohlcv", frame, subject="t")
    assert report.ok and [i.count for i in report.issues if i.code == "missing_intervals"] == [3]


def test_funding_gaps_follow_interval_changes() -> None:
    h = 3_600_000
    frame = conform("funding", pl.DataFrame({
        "exchange": "x", "symbol": "BTC/USDT:USDT", "ts": [T0, T0 + 8 * h, T0 + 24 * h, T0 + 28 * h, T0 + 36 * h],
        "rate": 0.0001, "interval_hours": [8.0, 8.0, 8.0, 4.0, 4.0]}))
    assert missing_intervals("funding", frame)["missing"].to_list() == [1 + 1]


def test_coverage() -> None:
    frame = bars([(m, 10, 11, 9, 10) for m in range(0, 30)])
    full = check_coverage(frame, dataset="ohlcv", start_ms=T0, end_ms=T0 + 30 * MIN, interval_ms=MIN, subject="m")
    assert full.issues == ()
    half = check_coverage(frame, dataset="ohlcv", start_ms=T0, end_ms=T0 + 60 * MIN, interval_ms=MIN, subject="m")
    assert half.issues[0].count == 30 and "50.0% covered" in half.warnings[0]
