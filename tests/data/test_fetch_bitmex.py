"""``data fetch --exchange bitmex``: the installed ccxt ships no BitMEX; the refusal says what to
import instead, from Python and on the command line (no traceback, nothing written)."""
from __future__ import annotations

import ccxt
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from data_loaders.ccxt_client import UnknownExchangeError, create_exchange


def test_ccxt_has_no_bitmex_here():
    # the message below is only true while the installed ccxt lacks the exchange
    assert "bitmex" not in ccxt.exchanges


def test_bitmex_is_refused_with_what_to_import():
    with pytest.raises(UnknownExchangeError) as caught:
        create_exchange("bitmex")
    message = str(caught.value)
    assert "ships no 'bitmex'" in message and "public.bitmex.com" in message
    assert "margincall data import" in message and "--exchange bitmex" in message


def test_the_command_prints_the_refusal_and_writes_nothing(tmp_path):
    result = CliRunner().invoke(build_app(), [
        "data", "fetch", "--exchange", "bitmex", "--symbol", "BTC/USD:BTC", "--timeframe", "1h",
        "--since", "2020-03-11", "--until", "2020-03-14", "--what", "ohlcv,funding",
        "--store", str(tmp_path / "store")])
    assert result.exit_code == 1
    assert "public.bitmex.com" in result.output and "Traceback" not in result.output
    assert not any((tmp_path / "store").rglob("*.parquet"))
