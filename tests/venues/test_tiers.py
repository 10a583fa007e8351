"""Tier tables: lookups, the maintenance-amount recursion, validation and dated schedules."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import polars as pl
import pytest

from backtest.venues.errors import TierError
from backtest.venues.tiers import Tier, TierSchedule, TierTable, maintenance_amounts, progressive_sum

# Binance BTCUSDT brackets of the FAQ / freqtrade fixture: (floor, mmr, max leverage).
BTCUSDT = [
    (0, 0.004, 125), (50_000, 0.005, 100), (250_000, 0.01, 50), (1_000_000, 0.025, 20),
    (7_500_000, 0.05, 10), (40_000_000, 0.1, 5), (100_000_000, 0.125, 4),
    (200_000_000, 0.15, 3), (400_000_000, 0.25, 2), (600_000_000, 0.5, 1),
]
# freqtrade tests/conftest.py leverage_tiers ADA/USDT:USDT (floor, mmr).
ADAUSDT = [(0, 0.025), (100_000, 0.05), (500_000, 0.1), (1_000_000, 0.15),
           (2_000_000, 0.25), (5_000_000, 0.5)]


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


# (table, notional, expected mmr, expected cum): freqtrade test_get_maintenance_ratio_and_amt
# and the Binance FAQ "Maintenance Amount" / "Maintenance Margin Rate" sections.
BRACKET_CASES = [
    (ADAUSDT, 500, 0.025, 0.0),
    (ADAUSDT, 20_000_000, 0.5, 1_527_500.0),
    (BTCUSDT, 264_000, 0.01, 1_300.0),
    (BTCUSDT, 500_000, 0.01, 1_300.0),
    (BTCUSDT, 50_000, 0.005, 50.0),          # a floor belongs to the upper bracket
    (BTCUSDT, 49_999.99, 0.004, 0.0),
    (BTCUSDT, 5_000_000, 0.025, 16_300.0),
    (BTCUSDT, 700_000_000, 0.5, 199_703_800.0),
]


@pytest.mark.parametrize(("rows", "notional", "mmr", "cum"), BRACKET_CASES)
def test_bracket_lookup(rows, notional, mmr, cum) -> None:
    tier = TierTable.from_rates(rows).for_notional(notional)
    assert tier.mmr == mmr
    assert tier.cum == pytest.approx(cum, abs=1e-6)


def test_negative_notional_uses_its_size() -> None:
    table = TierTable.from_rates(BTCUSDT)
    assert table.for_notional(-264_000) == table.for_notional(264_000)


def test_maintenance_amounts_recursion_matches_binance_level_5() -> None:
    # FAQ (2020 text): Level 5 = 5,000,000 * (5% - 2.5%) + 16,300 = 141,300 (older table)
    amounts = maintenance_amounts([(0, 0.004), (50_000, 0.005), (250_000, 0.01),
                                   (1_000_000, 0.025), (5_000_000, 0.05)])
    assert amounts == pytest.approx([0.0, 50.0, 1_300.0, 16_300.0, 141_300.0])


def test_mm_is_continuous_at_every_floor() -> None:
    table = TierTable.from_rates(BTCUSDT)
    for tier in table.tiers[1:]:
        below = table.maintenance_margin(tier.floor * (1 - 1e-12))
        assert table.maintenance_margin(tier.floor) == pytest.approx(below, rel=1e-9)


def test_flat_with_deduction_equals_progressive_sum() -> None:
    table = TierTable.from_rates(BTCUSDT)
    rates = [(floor, mmr) for floor, mmr, _ in BTCUSDT]
    for notional in (1.0, 49_000, 50_000, 264_000, 3_000_000, 123_456_789, 650_000_000):
        assert table.maintenance_margin(notional) == pytest.approx(progressive_sum(notional, rates), rel=1e-12)


def test_max_leverage_for() -> None:
    table = TierTable.from_rates(BTCUSDT, last_cap=1_000_000_000)
    assert table.max_leverage_for(10_000) == 125
    assert table.max_leverage_for(300_000) == 50
    with pytest.raises(TierError, match="at or above the largest bracket cap"):
        table.max_leverage_for(1_000_000_000)


def test_rate_only_table_has_no_leverage_cap() -> None:
    assert TierTable.from_rates(ADAUSDT).max_leverage_for(1_000) == math.inf


def tier(floor, cap, lev, mmr, cum) -> Tier:
    return Tier(floor, cap, lev, mmr, cum)


@pytest.mark.parametrize(("tiers", "message"), [
    ([], "at least one tier"),
    ([tier(10, 100, 10, 0.01, 0)], "must start at notional 0"),
    ([tier(0, 100, 10, 0.01, 0), tier(200, math.inf, 5, 0.02, 2)], "contiguous"),
    ([tier(0, 100, 10, 0.02, 0), tier(100, math.inf, 5, 0.01, -1)], "must not decrease"),
    ([tier(0, 100, 10, 0.01, 0), tier(100, math.inf, 20, 0.02, 1)], "must not increase"),
    ([tier(0, 100, 10, 0.01, 0), tier(100, math.inf, 5, 0.02, 5)], "disagrees with the recursion"),
    ([tier(0, 100, 10, 1.2, 0)], "0 <= mmr < 1"),
    ([tier(0, 0, 10, 0.01, 0)], "cap > floor"),
    ([tier(0, 100, 0, 0.01, 0)], "max_leverage > 0"),
    ([tier(0, 100, 10, math.nan, 0)], "NaN"),
])
def test_table_validation_errors(tiers, message) -> None:
    with pytest.raises(TierError, match=message):
        TierTable(tiers, label="test table")


def test_validation_error_names_the_table_and_tier() -> None:
    with pytest.raises(TierError, match=r"binanceusdm X/USDT:USDT: tier 2"):
        TierTable([tier(0, 100, 10, 0.01, 0), tier(100, math.inf, 5, 0.02, 5)],
                  label="binanceusdm X/USDT:USDT")


def test_nan_notional_is_rejected() -> None:
    with pytest.raises(TierError, match="NaN"):
        TierTable.from_rates(BTCUSDT).for_notional(math.nan)


def test_progressive_sum_rejects_negative_value() -> None:
    with pytest.raises(TierError, match=">= 0"):
        progressive_sum(-1.0, ADAUSDT)


# ---- schedules -------------------------------------------------------------------------
OLD = TierTable.from_rates([(0, 0.004, 125), (50_000, 0.005, 100)], label="old")
NEW = TierTable.from_rates([(0, 0.004, 125), (100_000, 0.006, 75)], label="new")


def test_schedule_returns_the_table_in_force() -> None:
    schedule = TierSchedule([(ms("2023-01-01"), NEW), (ms("2022-01-01"), OLD)], label="BTC")
    assert schedule.at(ms("2022-06-01")) is OLD
    assert schedule.at(ms("2023-01-01")) is NEW  # the start instant belongs to the new table
    assert schedule.at(ms("2023-01-01") - 1) is OLD
    assert schedule.at(datetime(2024, 1, 1, tzinfo=timezone.utc)) is NEW
    assert schedule.effective_from_at(ms("2023-05-01")) == ms("2023-01-01")


def test_schedule_before_first_version_is_a_clear_error() -> None:
    schedule = TierSchedule([(ms("2022-01-01"), OLD)], label="binanceusdm BTC/USDT:USDT")
    with pytest.raises(TierError, match=r"no tier table is known at 2021-12-31 .*2022-01-01 .*margincall data import"):
        schedule.at(ms("2021-12-31"))
    assert schedule.at(ms("2021-12-31"), allow_before_first=True) is OLD


def test_schedule_rejects_duplicates_and_naive_datetimes() -> None:
    with pytest.raises(TierError, match="same instant"):
        TierSchedule([(ms("2022-01-01"), OLD), (ms("2022-01-01"), NEW)])
    with pytest.raises(TierError, match="at least one"):
        TierSchedule([])
    schedule = TierSchedule([(ms("2022-01-01"), OLD)])
    with pytest.raises(TierError, match="naive"):
        schedule.at(datetime(2022, 5, 1))


def _risk_tiers_frame() -> pl.DataFrame:
    rows = []
    for start, table in ((datetime(2022, 1, 1, tzinfo=timezone.utc), OLD),
                         (datetime(2023, 1, 1, tzinfo=timezone.utc), NEW)):
        for row in table.to_rows():
            rows.append({"exchange": "binanceusdm", "symbol": "BTC/USDT:USDT",
                         "effective_from": start, **row})
    return pl.DataFrame(rows).with_columns(
        pl.col("effective_from").dt.cast_time_unit("ms"), pl.col("tier").cast(pl.Int32))


def test_schedule_from_canonical_risk_tiers_frame() -> None:
    frame = _risk_tiers_frame()
    assert frame.columns == ["exchange", "symbol", "effective_from", "tier", "notional_floor",
                             "notional_cap", "max_leverage", "maint_margin_rate", "maint_amount"]
    schedule = TierSchedule.from_frame(frame, exchange="binanceusdm", symbol="BTC/USDT:USDT")
    assert schedule.at(ms("2022-06-01")) == OLD
    assert schedule.at(ms("2023-06-01")) == NEW
    assert math.isinf(schedule.at(ms("2023-06-01")).max_notional)
    back = TierSchedule.from_rows(schedule.to_rows(exchange="binanceusdm", symbol="BTC/USDT:USDT"))
    assert [t for _, t in back.versions] == [OLD, NEW]


def test_schedule_from_frame_errors() -> None:
    frame = _risk_tiers_frame()
    with pytest.raises(TierError, match="no rows for exchange='okx'"):
        TierSchedule.from_frame(frame, exchange="okx", symbol="BTC/USDT:USDT")
    two_markets = pl.concat([frame, frame.with_columns(pl.lit("ETH/USDT:USDT").alias("symbol"))])
    with pytest.raises(TierError, match="several markets"):
        TierSchedule.from_frame(two_markets)
    gap = frame.filter(~((pl.col("tier") == 1) & (pl.col("effective_from").dt.year() == 2023)))
    with pytest.raises(TierError, match=r"1..n without gaps"):
        TierSchedule.from_frame(gap)
