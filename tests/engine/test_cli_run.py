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
    assert result.exit_code == 2
    assert "levrage" in result.output and "did you mean 'leverage'" in result.output
    run_file.write_text("[dta]\nsymbols = []\n")
    result = CliRunner().invoke(build_app(), ["run", "--config", str(run_file)])
    assert result.exit_code == 2 and "did you mean 'data'" in result.output


def test_run_unknown_symbol_is_a_clear_error(store, tmp_path):
    result = CliRunner().invoke(build_app(), ["run", "--store", str(store), "--symbol", "DOGE/USDT:USDT",
                                              "--out", str(tmp_path / "x"), "--no-progress"])
    assert result.exit_code == 2
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
    assert result.exit_code == 2 and "expected NAME=VALUE" in result.output


def _run(*args: str):
    return CliRunner().invoke(build_app(), ["run", *args])


def test_existing_run_folder_is_refused_and_overwrite_replaces_it(store, tmp_path):
    out = tmp_path / "out"
    base = ("--store", str(store), "--timeframe", "1h", "--out", str(out), "--no-progress", "--no-report")
    assert _run(*base, "--leverage", "2").exit_code == 0
    first = (out / "manifest.json").read_bytes()
    result = _run(*base, "--leverage", "3")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--overwrite" in result.output and "holding a run" in result.output
    assert (out / "manifest.json").read_bytes() == first
    result = _run(*base, "--leverage", "3", "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["config"]["leverage"] == 3.0


def test_unwritable_out_is_found_before_the_backtest(store, tmp_path):
    """The store holds no DOGE data: had the run started first, that error would show."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = _run("--store", str(store), "--symbol", "DOGE/USDT:USDT", "--out", str(blocker / "run"),
                  "--no-progress")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "is a file, not a folder" in result.output and "DOGE" not in result.output
    result = _run("--store", str(blocker), "--out", str(tmp_path / "x"), "--no-progress")
    assert result.exit_code == 2 and "expected a market store folder, found a file" in result.output


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "", "a/b", "a\\b", "..", ".hidden", "x\x00y",
                                  "x" * 300])
def test_path_like_run_names_are_refused(store, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    run_file = tmp_path / "run.toml"
    run_file.write_text(f"[run]\nname = {json.dumps(name)}\n", encoding="utf-8")
    result = _run("--config", str(run_file), "--store", str(store), "--no-progress")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "name: expected a plain folder name" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.toml"]


def test_default_run_folder_stays_inside_runs(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mystrats.py").write_text("from strategies.hold import Hold\nclass Mine(Hold):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = _run("--store", str(store), "--strategy", "mystrats:Mine", "--no-progress", "--no-report")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["mystrats_Mine"]


BAD_RUN_FILES = {
    "symbols = 5\n": "outside a table",
    "[data]\nsymbols = 5\n": "symbols: expected a non-empty list of symbols",
    "[data]\nsymbols = [1]\n": "each symbol must be",
    "[run]\ntiers = \"abc\"\n": "tiers: expected a TierTable",
    "[run]\nleverage = \"ten\"\n": "leverage: expected a finite number >= 1",
    "[run]\nleverage = 0.5\n": "found 0.5",
    "[run]\nleverage = 1e-12\n": "found 1e-12",
    "[run]\nleverage = inf\n": "found inf",
    "[run]\ninitial_balance = nan\n": "initial_balance: expected a finite number > 0, found nan",
    "[run]\ninterval_hours = inf\n": "unknown key 'interval_hours'",
    "[run]\nmargn_mode = \"cross\"\n": "did you mean 'margin_mode'",
    "[data]\ntimefrme = \"1h\"\n": "did you mean 'timeframe'",
    "[data]\nstart = \"yesterday\"\n": "start: expected a UTC date",
    "[data]\nstart = 999999999999999999\n": "start: expected a UTC date or time from 1970 to 2099",
    "[data]\nend = \"0001-01-01\"\n": "end: expected a UTC date or time from 1970 to 2099",
    "[data]\nstart = 12:00:00\n": "found datetime.time(12, 0)",
    "[data]\nstart = 2024-03-01\nend = 2024-02-01\n": "expected start before end",
    "[run.leverage]\nx = { y = 1 }\n": "entry 'x' must be a finite number",
    "[run]\nseed = 1.5\n": "seed: expected an integer >= 0, found 1.5",
    "[data]\ntimeframe = \"\"\n": "timeframe: expected a timeframe",
    "[strategy]\nparams = 5\n": "params: expected a table of strategy parameters",
    "[run]\nfees = { maker = 0.1 }\n": "fees: expected",
    "[run]\nout = [\"a\"]\n": "out: expected an output folder path",
    "[run]\nprogress = \"yes\"\n": "progress: expected true or false",
    "[run]\nslippage_params = { bps = nan }\n": "entry 'bps' must be a finite number",
    "[run]\nmargin_mode = { \"BTC/USDT:USDT\" = \"crss\" }\n": "did you mean 'cross'",
    "run = 3\n": "must be a table, found 3",
    "[run]\nleverage = [10]\n": "found [10] (a list)",
    "\xff\xfe[run]\n": "UTF-8",
    "[run\n": "not valid TOML",
}


@pytest.mark.parametrize("text", list(BAD_RUN_FILES))
def test_bad_run_files_give_one_clear_error(store, tmp_path, text):
    run_file = tmp_path / "run.toml"
    run_file.write_bytes(text.encode("latin-1"))
    result = _run("--config", str(run_file), "--store", str(store), "--out", str(tmp_path / "o"),
                  "--no-progress")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert BAD_RUN_FILES[text] in result.output.replace("\n", " "), result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, expected", [
    (("--leverage", "inf"), "--leverage: expected a finite number >= 1"),
    (("--leverage", "0.5"), "found 0.5"),
    (("--balance", "nan"), "--balance: expected a finite number > 0"),
    (("--timeframe", ""), "--timeframe: expected a timeframe"),
    (("--symbol", ""), "--symbol: expected a non-empty list of symbols"),
    (("--start", "nope"), "--start: expected a UTC date"),
    (("--strategy", ""), "--strategy: expected a built-in strategy"),
    (("--margin-mode", "crss"), "did you mean 'cross'"),
    (("--path-policy", "worst"), "did you mean 'worst_case'"),
])
def test_bad_flags_give_one_clear_error(store, tmp_path, args, expected):
    result = _run(*args, "--store", str(store), "--out", str(tmp_path / "o"), "--no-progress")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert expected in result.output.replace("\n", " "), result.output
    assert not (tmp_path / "o").exists()
