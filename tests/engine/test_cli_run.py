"""``margincall run`` end to end: a real MarketStore, a TOML run file, flags, outputs."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from data_loaders.store import MarketStore
from data_loaders.synthetic import generate_perpetual, write_to_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    market_store = MarketStore(root)
    write_to_store(market_store, [generate_perpetual(days=4, crash_day=2, seed=5)],
                   timeframes=("1m", "1h"))
    return root


def test_run_from_toml_with_flag_overrides(store, tmp_path):
    run_file = tmp_path / "run.toml"
    run_file.write_text(f"""
[data]
exchange = "binanceusdm"
symbols = ["BTC/USDT:USDT"]
timeframe = "1h"
detail_timeframe = "1m"
store = "{store}"

[strategy]
name = "hold"
params = {{ side = "long" }}

[run]
leverage = 5
margin_mode = "isolated"
""")
    out = tmp_path / "out"
    result = CliRunner().invoke(build_app(), ["run", "--config", str(run_file), "--leverage", "30",
                                              "--param", "reenter=true", "--out", str(out),
                                              "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "liquidations" in result.output and "bad debt" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["leverage"] == 30.0
    assert manifest["strategy"]["params"]["reenter"] is True
    assert manifest["detail_timeframe"] == "1m"
    assert manifest["data"] and all(f["sha256"] for d in manifest["data"] for f in d["files"])
    assert manifest["summary"]["n_liquidations"] >= 1


def test_run_file_errors_name_the_key_and_suggest(store, tmp_path):
    run_file = tmp_path / "bad.toml"
    run_file.write_text("[run]\nlevrage = 5\n")
    result = CliRunner().invoke(build_app(), ["run", "--config", str(run_file), "--store", str(store)])
    assert result.exit_code == 1
    assert "levrage" in result.output and "did you mean 'leverage'" in result.output
    run_file.write_text("[dta]\nsymbols = []\n")
    result = CliRunner().invoke(build_app(), ["run", "--config", str(run_file)])
    assert result.exit_code == 1 and "did you mean 'data'" in result.output


def test_run_unknown_symbol_is_a_clear_error(store, tmp_path):
    result = CliRunner().invoke(build_app(), ["run", "--store", str(store), "--symbol", "DOGE/USDT:USDT",
                                              "--out", str(tmp_path / "x"), "--no-progress"])
    assert result.exit_code == 1
    assert "DOGE/USDT:USDT" in result.output


def test_numeric_param_flags_reach_the_strategy_as_numbers(store, tmp_path):
    """``--param exposure=2``: the same parsing as the risk commands (was a str, and hold's
    ``exposure > 0`` raised a TypeError traceback)."""
    out = tmp_path / "out"
    result = CliRunner().invoke(build_app(), ["run", "--store", str(store), "--timeframe", "1h",
                                              "--param", "exposure=2", "--param", "side=short",
                                              "--out", str(out), "--no-progress", "--no-report"])
    assert result.exit_code == 0, result.output
    params = json.loads((out / "manifest.json").read_text())["strategy"]["params"]
    assert params["exposure"] == 2 and params["side"] == "short"
    result = CliRunner().invoke(build_app(), ["run", "--store", str(store), "--param", "exposure",
                                              "--out", str(tmp_path / "y"), "--no-progress"])
    assert result.exit_code == 1 and "expected NAME=VALUE" in result.output
