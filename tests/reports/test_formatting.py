"""One home for number and time formats (backtest.formatting), used by CLI and reports."""
from __future__ import annotations

import math

import pytest

from backtest import formatting as f
from backtest.errors import utc_text
from reports import html


def test_money_has_separators_two_decimals_and_optional_sign_and_unit():
    assert f.fmt_money(1234567.891) == "1,234,567.89"
    assert f.fmt_money(-0.004) == "-0.00"
    assert f.fmt_money(12.5, signed=True, unit="USDT") == "+12.50 USDT"
    assert f.fmt_money(None) == f.fmt_money(math.nan) == f.MISSING


@pytest.mark.parametrize(("tick", "decimals"), [(0.1, 1), (0.01, 2), (1.0, 0), (10.0, 0),
                                                 (0.0001, 4), (0.25, 2), (0.005, 3), (None, 2)])
def test_prices_print_at_the_tick(tick, decimals):
    assert f.tick_decimals(tick) == decimals
    text = f.fmt_price(65432.123456, tick_size=tick)
    assert text.split(".")[1].__len__() == decimals if decimals else "." not in text


def test_probabilities_keep_small_values_visible():
    assert f.fmt_prob(0.5) == "50.0 %"
    assert f.fmt_prob(0.00042) == "0.042 %"
    assert f.fmt_prob(0.0) == "0 %"
    assert f.fmt_prob(0.0000004) != "0.0 %"


def test_drawdown_prints_negative_whatever_the_sign_it_is_given():
    assert f.fmt_drawdown(0.25) == f.fmt_drawdown(-0.25) == "-25.00 %"
    assert f.fmt_drawdown(0.0) == "0.00 %"


def test_times_are_utc_text_and_leverage_prints_as_x():
    assert f.fmt_ts(1_704_067_200_000) == "2024-01-01 00:00"
    assert f.fmt_ts(1_704_067_200_000, suffix=True) == "2024-01-01 00:00 UTC"
    assert utc_text(1_704_067_261_000) == "2024-01-01 00:01:01 UTC"
    assert f.fmt_leverage(2.0) == "2x" and f.fmt_leverage(12.5) == "12.5x"
    assert f.fmt_duration(3 * 86_400_000 + 4 * 3_600_000) == "3 d 4 h"
    assert f.fmt_duration(45 * 60_000) == "45 min"


def test_reports_and_errors_use_the_same_functions():
    # one definition: the report helpers ARE the formatting module's functions
    for name in ("fmt_money", "fmt_pct", "fmt_num", "fmt_ts", "fmt_drawdown", "fmt_leverage"):
        assert getattr(html, name) is getattr(f, name)
    assert utc_text is f.utc_text


def test_columns_print_by_their_meaning_in_every_table():
    assert f.fmt_column("leverage", 5.0) == "5x"
    assert f.fmt_column("max_drawdown", 0.4) == "-40.00 %"
    assert f.fmt_column("probability", 0.0123) == "1.2 %"
    assert f.fmt_column("bad_debt", 1234.5) == "1,234.50"
    assert f.fmt_column("total_return", -0.1) == "-10.00 %"
    assert f.fmt_column("survived", False) == "no"
    assert f.fmt_column("liquidation_price", 57945.7, tick_size=0.1) == "57,945.7"
    assert f.fmt_column("loss", float("nan")) == f.MISSING
