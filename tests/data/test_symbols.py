"""Symbol keys: safe, reversible directory names; symbol and exchange validation."""
from __future__ import annotations

import pytest

from data_loaders.errors import UnsafeNameError
from data_loaders.symbols import (
    symbol_from_key,
    symbol_key,
    unified_symbol,
    validate_exchange,
    validate_symbol,
)

HOSTILE = ["../", "/", "..", "../../etc/passwd", "a\x00b", "\x00", ".", "BTC/../..", "币安人生/USDT:USDT",
           "BTC/USDT:USDT", "BTC_USDT", "BTC~2FUSDT", "C:\\Windows", " ", "é/ü", "a/b/c:d", "%2e%2e"]


@pytest.mark.parametrize("symbol", HOSTILE)
def test_key_is_path_safe_and_reversible(symbol: str) -> None:
    key = symbol_key(symbol)
    assert key not in (".", "..")
    assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~")
    assert symbol_from_key(key) == symbol


def test_keys_are_injective() -> None:
    keys = [symbol_key(s) for s in HOSTILE]
    assert len(set(keys)) == len(HOSTILE)


def test_readable_key_for_perpetual() -> None:
    assert symbol_key("BTC/USDT:USDT") == "BTC_USDT~3AUSDT"


@pytest.mark.parametrize("bad", ["", "../BTC", "BTC/../USDT", "a\x00b", "BTC /USDT", "/USDT", "BTC/",
                                 "BTC/USDT:USDT:X", "a/b/c", "..", "x" * 200])
def test_validate_symbol_rejects(bad: str) -> None:
    with pytest.raises(UnsafeNameError, match="expected a ccxt unified symbol"):
        validate_symbol(bad)


@pytest.mark.parametrize("good", ["BTC/USDT:USDT", "BTC/USDT", "BTC/USD:BTC-241227", "1000PEPE/USDT:USDT",
                                  "币安人生/USDT:USDT", "ETH/BTC"])
def test_validate_symbol_accepts(good: str) -> None:
    assert validate_symbol(good) == good


@pytest.mark.parametrize("native,exchange,unified", [
    ("BTCUSDT", "binanceusdm", "BTC/USDT:USDT"),
    ("ETHUSDC", "binanceusdm", "ETH/USDC:USDC"),
    ("BTCUSDT", "binance", "BTC/USDT"),
    ("BTCFDUSD", "binance", "BTC/FDUSD"),
    ("BTCUSD_PERP", "binancecoinm", "BTC/USD:BTC"),
    ("BTCUSDT_240628", "binanceusdm", "BTC/USDT:USDT-240628"),
])
def test_unified_symbol(native: str, exchange: str, unified: str) -> None:
    assert unified_symbol(native, exchange=exchange) == unified


def test_unified_symbol_unknown_quote_names_the_fix() -> None:
    with pytest.raises(UnsafeNameError, match="--symbol"):
        unified_symbol("FOOBAR", exchange="binanceusdm")


@pytest.mark.parametrize("bad", ["Binance", "../x", "", "a b", "x/y"])
def test_validate_exchange_rejects(bad: str) -> None:
    with pytest.raises(UnsafeNameError, match="ccxt exchange id"):
        validate_exchange(bad)


def test_corrupt_key_is_refused() -> None:
    with pytest.raises(UnsafeNameError):
        symbol_from_key("../x")
