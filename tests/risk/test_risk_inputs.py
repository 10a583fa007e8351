"""Bad scenario and risk-command inputs get a clear error (subject, expected, found, fix), never a
traceback or a silently wrong result; a position that never opened is never reported as survived;
``replay`` takes the balance and sizing options of ``run``."""
from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.risk.errors import RiskError, ScenarioError
from backtest.risk.scenarios import FundingSpike, LiquidityDrought, Shock, VolatilityScale, parse_scenario
from tests.risk.conftest import AUG5_5M, store_shared_window

BTC = "BTC/USDT:USDT"
DAY = 86_400_000


@pytest.fixture(scope="module")
def store_dir(shared_data: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputs") / "store"
    store_shared_window(shared_data, root, BTC, AUG5_5M)
    return root


def _invoke(*args: str):
    return CliRunner().invoke(build_app(), list(args), env={"COLUMNS": "250"})


def _stress(store_dir: Path, *extra: str):
    return _invoke("stress", "--symbol", BTC, "--timeframe", "5m", "--start", "2024-08-04", "--end", "2024-08-07",
                   "--store", str(store_dir), *extra)


def _refused(result, *fragments: str) -> None:
    """Exit 1, a clean ``error:`` line (no traceback) holding every fragment."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "error:" in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


@pytest.mark.parametrize("term, fragments", [
    ("shock:inf@2024-08-05T00:00Z", ["shock:inf", "finite"]),
    ("shock:nan@2024-08-05T00:00Z", ["shock:nan", "finite"]),
    ("funding:nan@2024-08-04..2024-08-05", ["funding:nan", "finite"]),
    ("drought:inf", ["drought:inf", "finite"]),
    ("vol:inf", ["vol:inf", "finite"]),
    ("vol:-1", ["volatility scale factor", "> 0", "-1"]),
    ("drought:0.5", ["drought multiplier", ">= 1", "0.5"]),
    ("drought:5@2024-08-05..2024-08-04", ["liquidity drought", "end must be after start"]),
    ("vol:2@2024-08-05T06:00Z..2024-08-05T01:00Z", ["volatility scale", "end must be after start"]),
    ("funding:0.01@2024-08-05..2024-08-04", ["funding spike", "end must be after start"]),
    ("mark:-0.02@2024-08-05T06:00Z..2024-08-05T01:00Z", ["mark divergence", "end must be after start"]),
    ("shock:-0.2@2024-08-05T00:00", ["naive datetime", "UTC"]),
])
def test_bad_scenarios_are_refused_on_the_command_line(store_dir, term, fragments):
    _refused(_stress(store_dir, "--scenario", f"bad={term}", "--leverage", "3"), *fragments)


@pytest.mark.parametrize("make", [
    lambda: Shock(math.inf, at=0), lambda: Shock(math.nan, at=0), lambda: VolatilityScale(math.inf),
    lambda: VolatilityScale(-1.0), lambda: FundingSpike(math.nan, start=0, end=DAY),
    lambda: FundingSpike(0.01, start=DAY, end=0), lambda: LiquidityDrought(math.inf),
    lambda: VolatilityScale(2.0, start=DAY, end=0),
])
def test_bad_scenarios_are_refused_when_built_in_python(make):
    with pytest.raises(ScenarioError):
        make()


def test_the_documented_scenario_syntax_parses():
    # docs/risk.md and the parse_scenario docstring show date-only windows
    funding = parse_scenario("funding:0.003@2022-11-08..2022-11-10").scenarios[0]
    assert isinstance(funding, FundingSpike) and funding.rate == 0.003
    vol = parse_scenario("vol:3@2022-11-08..2022-11-10").scenarios[0]
    assert isinstance(vol, VolatilityScale) and vol.factor == 3.0
    from backtest.risk.scenarios import _ms
    assert _ms("2022-11-08") == 1_667_865_600_000  # 00:00 UTC of that day


def test_a_documented_funding_window_runs_on_the_command_line(store_dir, shared_data, tmp_path):
    from data_loaders.store import MarketStore

    root = tmp_path / "store"
    store_shared_window(shared_data, root, BTC, AUG5_5M)
    store = MarketStore(root)
    funding = pl.read_parquet(shared_data / "funding/binance_um_BTCUSDT_funding_8h.parquet").select(
        exchange=pl.lit("binanceusdm"), symbol=pl.lit(BTC), ts=pl.col("funding_time_utc"), rate=pl.col("funding_rate"),
        interval_hours=pl.col("funding_interval_hours").cast(pl.Float64), mark_price=pl.lit(None, pl.Float64))
    store.write("funding", funding.filter(pl.col("ts").dt.year() == 2024), source="test")
    result = _stress(root, "--scenario", "hot=funding:0.003@2024-08-04..2024-08-06", "--leverage", "3")
    assert result.exit_code == 0, result.output
    assert "funding (received − paid), USDT" in result.output and "hot" in result.output


def test_a_position_that_never_opened_is_not_a_survivor_in_stress(store_dir):
    from backtest import RunConfig
    from backtest.risk.data import load_window
    from backtest.risk.scenarios import StressMarket
    from backtest.risk.stress import run_stress

    data = load_window(MarketStoreAt(store_dir), exchange="binanceusdm", symbol=BTC, timeframe="5m",
                       start_ms=None, end_ms=None, label="never opened")
    market = StressMarket(bars={BTC: data.bars}, tiers={BTC: data.tiers}, markets={BTC: data.market})
    table = run_stress(market, [], timeframe="5m", strategy="hold", params={"side": "long"}, leverages=(2.0, 1e9),
                       config=RunConfig(slippage="none"))
    normal, huge = table.iter_rows(named=True)
    assert normal["survived"] and normal["entered"] and normal["rejection"] is None
    assert not huge["survived"] and not huge["entered"] and huge["rejection"]


def MarketStoreAt(root: Path):  # noqa: N802 - reads like a constructor
    from data_loaders.store import MarketStore

    return MarketStore(root)


@pytest.mark.parametrize("args, fragments", [
    (["--leverage", "inf"], ["--leverage", "finite"]),
    (["--leverage", "0.5"], ["--leverage", ">= 1", "0.5"]),
    (["--leverage", "1e-12"], ["--leverage", ">= 1"]),
    (["--horizon", "nan"], ["--horizon", "finite"]),
    (["--price", "bid"], ["--price", "'bid'", "mark, last"]),
    (["--side", "sideways"], ["--side", "long, short"]),
    (["--margin", "inf"], ["--margin", "finite"]),
    (["--paths", "0"], ["--paths", ">= 1"]),
    (["--horizon", "1e7"], ["GiB", "--horizon", "available"]),
])
def test_bad_mc_inputs(store_dir, args, fragments):
    base = {"--timeframe": "5m", "--price": "last", "--model": "gbm", "--leverage": "5", "--horizon": "1",
            "--paths": "200"}
    base.update(dict(zip(args[::2], args[1::2])))
    flat = [x for kv in base.items() for x in kv]
    _refused(_invoke("mc", *flat, "--store", str(store_dir)), *fragments)


@pytest.mark.parametrize("args, fragments", [
    (["--horizon", "nan"], ["--horizon", "finite"]),
    (["--target", "2"], ["--target", "< 1"]),
    (["--side", "sideways"], ["--side"]),
    (["--price", "bid"], ["--price"]),
    (["--criterion", "median"], ["--criterion", "estimate, upper"]),
])
def test_bad_survive_inputs(store_dir, args, fragments):
    base = {"--timeframe": "5m", "--price": "last", "--model": "gbm", "--horizon": "1", "--paths": "200"}
    base.update(dict(zip(args[::2], args[1::2])))
    flat = [x for kv in base.items() for x in kv]
    _refused(_invoke("survive", *flat, "--store", str(store_dir)), *fragments)


def test_the_memory_estimate_refuses_before_allocating():
    from backtest.risk.montecarlo import available_memory_bytes, memory_estimate_bytes, simulate_first_passage
    from backtest.risk.paths import GBM

    small = memory_estimate_bytes(n_paths=1_000, n_steps=24, n_barriers=10)
    assert memory_estimate_bytes(n_paths=1_000, n_steps=48, n_barriers=10) > 1.9 * small
    available = available_memory_bytes()
    assert available is None or available > 0
    with pytest.raises(RiskError, match="GiB"):
        simulate_first_passage(GBM(sigma_step=0.01, step_ms=3_600_000), barriers=[1.0], side=1,
                               n_paths=10_000, n_steps=10**9, s0=100.0, seed=0)


@pytest.mark.parametrize("command", ["replay", "stress"])
def test_engine_errors_are_clear_messages_not_tracebacks(store_dir, command):
    common = ["--strategy", "no_such_strategy", "--leverage", "2"]
    if command == "replay":
        result = _invoke("replay", "--crash", "2024-08-05", "--symbol", BTC, "--store", str(store_dir), *common)
    else:
        result = _stress(store_dir, "--scenario", "s=shock:-0.1@2024-08-05T00:00Z", *common)
    _refused(result, "no_such_strategy")


def test_replay_takes_the_balance_and_sizing_options_of_run(store_dir, tmp_path):
    out = tmp_path / "replay.parquet"
    result = _invoke("replay", "--crash", "2024-08-05", "--symbol", BTC, "--leverage", "2,20", "--balance", "1000",
                     "--margin-mode", "cross", "--store", str(store_dir), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "1,000 USDT, cross" in result.output
    table = pl.read_parquet(out)
    for row in table.iter_rows(named=True):
        assert row["final_equity"] + row["loss"] == pytest.approx(1_000.0)
    _refused(_invoke("replay", "--crash", "2024-08-05", "--balance", "-5", "--store", str(store_dir)),
             "initial_balance", "-5")
    _refused(_invoke("replay", "--crash", "2024-08-05", "--margin-mode", "isolatd", "--store", str(store_dir)),
             "margin_mode", "isolated")
    # the options are one definition shared with run
    from backtest.cli import run, risk, shared
    assert run.BalanceOpt is shared.BalanceOpt is risk.BalanceOpt


def test_a_leverage_the_engine_refuses_is_one_row_and_the_ladder_goes_on(store_dir):
    """``ConfigError`` for one leverage (here RunConfig's own refusal of inf; the engine's tier-cap
    check raises the same class) becomes a refused row in replay and stress tables."""
    from backtest import RunConfig
    from backtest.risk.crashes import load_crashes
    from backtest.risk.data import load_window
    from backtest.risk.replay import replay_window
    from backtest.risk.scenarios import StressMarket
    from backtest.risk.stress import run_stress

    data = load_window(MarketStoreAt(store_dir), exchange="binanceusdm", symbol=BTC, timeframe="5m",
                       start_ms=None, end_ms=None, label="ladder")
    config = RunConfig(slippage="none")
    rows = replay_window(load_crashes().get("2024-08-05"), BTC, data, params={"side": "long"},
                         leverages=[2.0, math.inf, 3.0], config=config)
    market = StressMarket(bars={BTC: data.bars}, tiers={BTC: data.tiers}, markets={BTC: data.market})
    table = run_stress(market, [], timeframe="5m", params={"side": "long"}, leverages=(2.0, math.inf, 3.0),
                       config=config)
    for ladder in (rows, list(table.iter_rows(named=True))):
        first, refused, last = ladder
        assert first["entered"] and last["entered"]
        assert not refused["survived"] and not refused["entered"]
        assert refused["rejection"].startswith("refused: ") and "leverage" in refused["rejection"]


def test_reversed_stress_range_and_low_replay_leverage_are_refused(store_dir):
    result = _invoke("stress", "--symbol", BTC, "--timeframe", "5m", "--start", "2024-08-07", "--end", "2024-08-04",
                     "--scenario", "s=drought:2", "--store", str(store_dir))
    _refused(result, "--end", "after --start")
    _refused(_invoke("replay", "--crash", "2024-08-05", "--leverage", "0.5,2", "--store", str(store_dir)),
             "--leverage", ">= 1", "0.5")
