"""bad_value refusals name the allowed range of each column that broke, and only those."""
from __future__ import annotations

import polars as pl
import pytest

from data_loaders.quality import check
from data_loaders.schemas import conform


def _tiers(**changes: float) -> pl.DataFrame:
    row = {"exchange": "binanceusdm", "symbol": "BTC/USDT:USDT", "effective_from": 1_700_000_000_000, "tier": 1,
           "notional_floor": 0.0, "notional_cap": 50_000.0, "max_leverage": 125.0, "maint_margin_rate": 0.004,
           "maint_amount": 0.0}
    return conform("risk_tiers", pl.DataFrame([{**row, **changes}]))


@pytest.mark.parametrize(("changes", "named", "not_named"), [
    ({"maint_margin_rate": 1.5}, "0 < maint_margin_rate < 1", "max_leverage >= 1"),
    ({"max_leverage": 0.0}, "max_leverage >= 1", "maint_margin_rate"),
    ({"notional_cap": -1.0}, "notional_cap > notional_floor", "max_leverage >= 1"),
])
def test_bad_value_says_what_each_broken_column_expects(changes, named, not_named) -> None:
    report = check("risk_tiers", _tiers(**changes), subject="tiers.json")
    issue, = [i for i in report.issues if i.code == "bad_value"]
    assert issue.message.startswith("expected ")
    assert named in issue.message
    assert not_named not in issue.message


def test_a_valid_tier_row_has_no_bad_value() -> None:
    assert not [i for i in check("risk_tiers", _tiers(), subject="tiers.json").issues if i.code == "bad_value"]
