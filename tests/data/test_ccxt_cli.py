"""``margincall data fetch`` on the command line, replaying recorded Binance responses."""
from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.cli.fetch import register
from data_loaders.store import MarketStore
from tests.data.ccxt_replay import ReplayTransport, replay_fetch_app

BTC = "BTC/USDT:USDT"


def _app(log: list) -> typer.Typer:
    # Binance's leverage brackets need a key: any key, the replay checks no signature
    return replay_fetch_app(log, credentials={"apiKey": "k", "secret": "s"})


def test_fetch_command_stores_candles_funding_tiers_and_markets(tmp_path):
    transports: list[ReplayTransport] = []
    result = CliRunner().invoke(_app(transports), [
        "data", "fetch", "--exchange", "binanceusdm", "--symbol", BTC, "--timeframe", "1h",
        "--since", "2020-03-11", "--until", "2020-03-14", "--what", "ohlcv,mark,funding,tiers,markets",
        "--store", str(tmp_path)])
    assert result.exit_code == 0, result.output
    store = MarketStore(tmp_path)
    assert store.read("ohlcv", exchange="binanceusdm", symbol=BTC, timeframe="1h", price_type="mark").height == 72
    assert store.read("funding", exchange="binanceusdm", symbol=BTC).height == 9
    assert store.read("risk_tiers", exchange="binanceusdm", symbol=BTC).height == 12
    assert "binanceusdm" in result.output and "72" in result.output
    # Default page size is the endpoint's (ccxt features: 500), not the tests' 24.
    assert {r.query["limit"] for r in transports[0].log if r.path == "/fapi/v1/klines"} == {"500"}


def test_fetch_command_reports_a_bad_symbol_and_exits_2(tmp_path):
    result = CliRunner().invoke(_app([]), [
        "data", "fetch", "--symbol", "BTCUSDT", "--timeframe", "1h", "--since", "2020-03-11",
        "--until", "2020-03-14", "--what", "ohlcv", "--store", str(tmp_path)])
    assert result.exit_code == 2
    assert "use the ccxt unified symbol: BTC/USDT:USDT" in result.output


def test_fetch_is_attached_under_data_and_documented():
    runner = CliRunner()
    result = runner.invoke(build_app(), ["data", "fetch", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("--symbol", "--since", "--until", "--what", "--store", "resumes", "MARGINCALL_BINANCEUSDM_API_KEY"):
        assert text in result.output
    app = typer.Typer()
    register(app)  # the root-level hook adds nothing: fetch lives under `data`
    assert app.registered_commands == [] and app.registered_groups == []


@pytest.mark.parametrize("flag", ["--exchange", "--timeframe", "--since", "--what"])
def test_empty_option_values_are_refused(tmp_path, flag) -> None:
    from backtest.cli.data import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """test root"""

    args = {"--exchange": "binanceusdm", "--timeframe": "1h", "--since": "2020-03-11", "--what": "ohlcv"}
    args[flag] = ""
    result = CliRunner().invoke(app, ["data", "fetch", "--symbol", "BTC/USDT:USDT", "--store", str(tmp_path),
                                      *[x for kv in args.items() for x in kv]])
    assert result.exit_code == 2 and "empty string" in result.output and flag in result.output
    assert not (tmp_path / "manifest.json").exists()
