"""Risk-tier snapshots: ccxt, Binance leverageBracket and freqtrade-history shapes."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from data_loaders.errors import DataValidationError, ImportFormatError
from data_loaders.store import MarketStore
from data_loaders.tiers_import import import_tiers, load_tiers, maintenance_amounts

BINANCE = [{"symbol": "BTCUSDT", "brackets": [
    {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0},
    {"bracket": 2, "initialLeverage": 100, "notionalCap": 250000, "notionalFloor": 50000, "maintMarginRatio": 0.005, "cum": 50.0},
    {"bracket": 3, "initialLeverage": 50, "notionalCap": 9223372036854775807, "notionalFloor": 250000,
     "maintMarginRatio": 0.01, "cum": 1300.0}]}]
CCXT = {"BTC/USDT:USDT": [
    {"tier": 1, "currency": "USDT", "minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004,
     "maxLeverage": 125, "info": {"cum": "0.0"}},
    {"tier": 2, "currency": "USDT", "minNotional": 50000, "maxNotional": 250000, "maintenanceMarginRate": 0.005,
     "maxLeverage": 100, "info": {}}]}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "tiers.json"
    path.write_text(json.dumps(data))
    return path


def test_maintenance_amounts_recursion() -> None:
    # Binance BTCUSDT table of 2022-02: floors 0/50k/250k/1M, rates 0.4%/0.5%/1%/2.5%
    assert maintenance_amounts([0, 50_000, 250_000, 1_000_000], [0.004, 0.005, 0.01, 0.025]) == pytest.approx(
        [0.0, 50.0, 1300.0, 16300.0])


def test_binance_shape(tmp_path: Path) -> None:
    frame = load_tiers(write(tmp_path, BINANCE), effective_from="2022-02-13")
    assert frame["symbol"].unique().to_list() == ["BTC/USDT:USDT"]
    assert frame["maint_amount"].to_list() == [0.0, 50.0, 1300.0]
    assert math.isinf(frame["notional_cap"][-1])
    assert frame["effective_from"][0].isoformat() == "2022-02-13T00:00:00+00:00"


def test_ccxt_shape_derives_missing_cum(tmp_path: Path) -> None:
    frame = load_tiers(write(tmp_path, CCXT), effective_from="2024-01-01")
    assert frame["maint_amount"].to_list() == [0.0, 50.0]
    assert frame["max_leverage"].to_list() == [125.0, 100.0]


def test_snapshot_needs_a_date(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="--effective-from"):
        load_tiers(write(tmp_path, CCXT))


def test_unknown_shape_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="found none of them"):
        load_tiers(write(tmp_path, {"hello": 1}))
    bad = tmp_path / "bad.json"
    bad.write_text('{"versions": [')
    with pytest.raises(ImportFormatError, match="invalid JSON"):
        load_tiers(bad)


def test_impossible_tiers_refused(tmp_path: Path) -> None:
    broken = json.loads(json.dumps(BINANCE))
    broken[0]["brackets"][1]["initialLeverage"] = 0
    with pytest.raises(DataValidationError, match="bad_value"):
        import_tiers(MarketStore(tmp_path / "s"), write(tmp_path, broken), effective_from="2022-01-01")


def test_versions_accumulate_in_the_store(tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "s")
    path = write(tmp_path, BINANCE)
    import_tiers(store, path, effective_from="2022-01-01")
    again = import_tiers(store, path, effective_from="2022-01-01")
    assert (again.write.rows_added, again.write.rows_replaced, again.write.rows_unchanged) == (0, 0, 3)
    import_tiers(store, path, effective_from="2023-01-01")
    frame = store.read("risk_tiers", exchange="binanceusdm", symbol="BTC/USDT:USDT")
    assert frame.height == 6 and frame["effective_from"].n_unique() == 2
