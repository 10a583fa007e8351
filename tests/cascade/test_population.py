"""Populations: files, the seeded generator and its leverage priors, bad rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from backtest.cascade.errors import PopulationError
from backtest.cascade.population import LEVERAGE_PRIORS, Population, read_population, synthetic_population

BTC = "BTC/USDT:USDT"


def test_parquet_file_round_trip_with_margin(tmp_path: Path):
    path = tmp_path / "pop.parquet"
    pl.DataFrame({"symbol": [BTC, BTC], "side": ["short", "long"], "qty": [0.5, 2.0],
                  "entry_price": [100.0, 110.0], "margin": [5.0, 22.0]}).write_parquet(path)
    pop = read_population(path)
    assert pop.side.tolist() == [-1, 1]
    assert pop.leverage.tolist() == pytest.approx([10.0, 10.0])


@pytest.mark.parametrize(("column", "value", "message"), [
    ("qty", 0.0, "row 1: qty must be a finite number > 0, found 0.0"),
    ("entry_price", float("nan"), "row 1: entry_price"),
    ("side", "flat", "side 'flat'"),
])
def test_bad_rows_are_named(tmp_path: Path, column, value, message):
    frame = {"symbol": [BTC, BTC], "side": ["long", "long"], "qty": [1.0, 1.0], "entry_price": [100.0, 100.0],
             "margin": [10.0, 10.0]}
    frame[column] = [frame[column][0], value]
    path = tmp_path / "pop.csv"
    pl.DataFrame(frame).write_csv(path)
    with pytest.raises(PopulationError, match=message.replace("(", r"\(")):
        read_population(path)


def test_missing_columns_are_listed(tmp_path: Path):
    path = tmp_path / "pop.csv"
    pl.DataFrame({"symbol": [BTC], "qty": [1.0], "entry_price": [1.0]}).write_csv(path)
    with pytest.raises(PopulationError, match="missing column\\(s\\) side, margin or leverage"):
        read_population(path)


def test_synthetic_is_deterministic_exact_in_size_and_follows_its_prior():
    a = synthetic_population(50_000, seed=5, prices={BTC: 100_000.0}, prior="binance_2019")
    b = synthetic_population(50_000, seed=5, prices={BTC: 100_000.0}, prior="binance_2019")
    assert len(a) == 50_000
    assert all(np.array_equal(getattr(a, c), getattr(b, c)) for c in ("side", "qty", "entry", "margin"))
    prior = LEVERAGE_PRIORS["binance_2019"]
    leverage = np.round(a.leverage, 6)
    # screening drops some high-leverage draws, so the share at 125x is at most the prior's
    share_125 = float((leverage == 125.0).mean())
    assert 0.5 * prior[125.0] < share_125 <= prior[125.0] + 0.01
    # ... and low leverage survives the screening, so its share can only grow
    assert float((leverage <= 3.0).mean()) >= prior[2.0] + prior[3.0] - 0.01
    # nobody starts below maintenance
    equity = a.margin + a.side * a.qty * (100_000.0 - a.entry)
    assert (equity > 0.005 * a.qty * 100_000.0).all()


def test_synthetic_argument_errors():
    with pytest.raises(PopulationError, match="did you mean 'binance_2019'"):
        synthetic_population(10, seed=0, prices={BTC: 1.0}, prior="binance2019")
    with pytest.raises(PopulationError, match="N must be >= 1"):
        synthetic_population(0, seed=0, prices={BTC: 1.0})


def test_concat_keeps_rows_in_order():
    a = synthetic_population(3, seed=0, prices={BTC: 10.0})
    b = synthetic_population(2, seed=1, prices={"ETH/USDT:USDT": 5.0})
    both = Population.concat([a, b])
    assert both.symbol.tolist() == [BTC] * 3 + ["ETH/USDT:USDT"] * 2
