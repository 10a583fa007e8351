"""Population files and seeded populations: the schema, and a clear error for each bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from backtest.lending.errors import LendingParameterError
from backtest.lending.population import (
    COLUMNS,
    generate_population,
    read_population,
    validate_population,
)


def _frame(**changes) -> pl.DataFrame:
    data = {"protocol": ["aave_v3", "maker"], "asset": ["ETH", "ETH"], "collateral": [10.0, 5.0],
            "debt": [15_000.0, 4_000.0], "liquidation_threshold": [0.825, 1 / 1.5],
            "liquidation_bonus": [1.05, 1.13]}
    data.update(changes)
    return pl.DataFrame(data)


def test_csv_and_parquet_files_read_the_same(tmp_path: Path) -> None:
    frame = _frame()
    frame.write_csv(tmp_path / "p.csv")
    frame.write_parquet(tmp_path / "p.parquet")
    a, b = read_population(tmp_path / "p.csv"), read_population(tmp_path / "p.parquet")
    assert a.equals(b)
    assert a.columns == ["position_id", *COLUMNS, "debt_asset"]
    assert a["position_id"].to_list() == ["0", "1"]   # row numbers when the file has no ids


@pytest.mark.parametrize(("changes", "words"), [
    ({"liquidation_threshold": [0.825, 1.2]}, ["'liquidation_threshold' row 1", "(0, 1]", "1.2"]),
    ({"liquidation_bonus": [0.95, 1.13]}, ["'liquidation_bonus' row 0", ">= 1", "0.95"]),
    ({"debt": [float("nan"), 1.0]}, ["'debt' row 0", "finite", "nan"]),
    ({"collateral": [1.0, -2.0]}, ["'collateral' row 1", ">= 0", "-2.0"]),
    ({"debt": ["1,000", "2"]}, ["'debt' must hold numbers", "thousands separators"]),
    ({"protocol": ["aave_v3", "aave-v3"]}, ["aave-v3", "did you mean 'aave_v3'", "aave_v3, compound_v3, maker"]),
    ({"protocol": ["compound_v2", "maker"]}, ["compound_v2", "did you mean 'compound_v3'"]),
])
def test_bad_rows_name_the_column_row_and_fix(changes, words) -> None:
    with pytest.raises(LendingParameterError) as err:
        validate_population(_frame(**changes))
    for word in words:
        assert word in str(err.value)


def test_missing_columns_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(LendingParameterError, match="missing debt, liquidation_bonus"):
        validate_population(_frame().drop("debt", "liquidation_bonus"))
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(LendingParameterError, match=r"expected a \.parquet or \.csv file"):
        read_population(tmp_path / "p.json")
    with pytest.raises(LendingParameterError, match="expected an existing file"):
        read_population(tmp_path / "absent.csv")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(LendingParameterError, match="unreadable file"):
        read_population(tmp_path / "broken.parquet")


def test_generated_populations_follow_the_documented_distributions() -> None:
    a = generate_population(20_000, seed=3, protocol="maker", asset="ETH", price=200.0,
                            median_value=10_000.0, health_factor_range=(1.02, 3.0))
    assert a.equals(generate_population(20_000, seed=3, protocol="maker", asset="ETH", price=200.0,
                                        median_value=10_000.0, health_factor_range=(1.02, 3.0)))
    value = a["collateral"].to_numpy() * 200.0
    assert np.median(value) == pytest.approx(10_000.0, rel=0.05)
    lt = a["liquidation_threshold"].to_numpy()
    hf = value * lt / a["debt"].to_numpy()
    assert hf.min() >= 1.02 and hf.max() <= 3.0
    assert lt[0] == pytest.approx(1 / 1.5) and a["liquidation_bonus"][0] == 1.13   # ETH-A
