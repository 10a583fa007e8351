"""Symbol and exchange names, and their safe, reversible directory keys.

A ccxt unified symbol such as ``BTC/USDT:USDT`` contains ``/`` and ``:``, so it cannot be a
directory name as is. :func:`symbol_key` maps any symbol to a key made only of
``[A-Za-z0-9-_~]``: ``/`` becomes ``_`` and every other character outside ``[A-Za-z0-9-]``
(``_``, ``~``, ``.``, ``:``, unicode ...) becomes ``~XX`` per UTF-8 byte (upper-case hex).
The mapping is injective and :func:`symbol_from_key` reverses it, so no symbol string can
escape the store directory (``..``, ``/``, NUL and unicode all encode to plain characters).

Examples
--------
>>> symbol_key("BTC/USDT:USDT")
'BTC_USDT~3AUSDT'
>>> symbol_from_key("BTC_USDT~3AUSDT")
'BTC/USDT:USDT'
"""
from __future__ import annotations

import re

from data_loaders.errors import UnsafeNameError

_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_KEY_RE = re.compile(r"^(?:[A-Za-z0-9\-_]|~[0-9A-F]{2})+$")
_SEGMENT_RE = re.compile(r"^[^\W_][\w.\-]*$")
_EXCHANGE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_SYMBOL_LEN = 128

# Quote assets recognised when splitting an exchange-native id such as ``BTCUSDT``;
# longest first so ``FDUSD`` wins over ``USD``.
_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR", "TRY")


def symbol_key(symbol: str) -> str:
    """Return the directory key of ``symbol`` (reversible, path-safe).

    Parameters
    ----------
    symbol : str
        Any non-empty string (normally a ccxt unified symbol).

    Returns
    -------
    str
        A key of ``[A-Za-z0-9-_~]`` characters; never ``.`` or ``..``.
    """
    if not isinstance(symbol, str) or symbol == "":
        raise UnsafeNameError(
            f"symbol {symbol!r}: expected a non-empty string such as 'BTC/USDT:USDT'"
        )
    out: list[str] = []
    for char in symbol:
        if char in _PLAIN:
            out.append(char)
        elif char == "/":
            out.append("_")
        else:
            out.extend(f"~{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def symbol_from_key(key: str) -> str:
    """Reverse :func:`symbol_key`.

    Raises
    ------
    UnsafeNameError
        If ``key`` is not a key :func:`symbol_key` could have produced.
    """
    if not _KEY_RE.match(key):
        raise UnsafeNameError(
            f"directory key {key!r}: expected characters [A-Za-z0-9-_] and ~XX escapes; "
            "this folder was not written by margincall's store"
        )
    raw = bytearray()
    i = 0
    while i < len(key):
        char = key[i]
        if char == "~":
            raw.append(int(key[i + 1 : i + 3], 16))
            i += 3
            continue
        raw.extend(b"/" if char == "_" else char.encode("ascii"))
        i += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeNameError(f"directory key {key!r} does not decode to UTF-8: {exc}") from exc


def validate_symbol(symbol: str) -> str:
    """Check that ``symbol`` looks like a ccxt unified symbol and return it.

    A symbol is one to three segments ``BASE[/QUOTE][:SETTLE[-EXPIRY...]]``; each segment
    starts with a letter or digit and holds only word characters, ``.`` and ``-``
    (unicode letters allowed, since some venues list non-ASCII tokens). ``..``, control
    characters, whitespace and empty segments are rejected.

    Raises
    ------
    UnsafeNameError
        Naming the symbol, the expected form and the fix.
    """
    problem = _symbol_problem(symbol)
    if problem:
        raise UnsafeNameError(
            f"symbol {symbol!r}: {problem}; expected a ccxt unified symbol such as "
            "'BTC/USDT:USDT' (perpetual) or 'BTC/USDT' (spot); pass --symbol to set it"
        )
    return symbol


def _symbol_problem(symbol: object) -> str | None:
    if not isinstance(symbol, str) or not symbol:
        return "empty or not a string"
    if len(symbol) > _MAX_SYMBOL_LEN:
        return f"longer than {_MAX_SYMBOL_LEN} characters"
    if any(ord(c) < 32 or c.isspace() or ord(c) == 127 for c in symbol):
        return "contains a control or whitespace character"
    if ".." in symbol:
        return "contains '..'"
    base_quote, _, settle = symbol.partition(":")
    segments = base_quote.split("/")
    if len(segments) > 2 or (settle and ":" in settle):
        return "has more than one '/' or ':'"
    if settle:
        segments.append(settle)
    for segment in segments:
        if not _SEGMENT_RE.match(segment):
            return f"segment {segment!r} must start with a letter or digit and hold only letters, digits, '.', '-', '_'"
    return None


def validate_exchange(exchange: str) -> str:
    """Check that ``exchange`` is a ccxt-style id (lower-case letters, digits, ``_``)."""
    if not isinstance(exchange, str) or not _EXCHANGE_RE.match(exchange):
        raise UnsafeNameError(
            f"exchange {exchange!r}: expected a ccxt exchange id of lower-case letters, digits "
            "and '_' such as 'binanceusdm'; pass --exchange to set it"
        )
    return exchange


def unified_symbol(native: str, *, exchange: str) -> str:
    """Map an exchange-native id (``BTCUSDT``) to a ccxt unified symbol.

    Parameters
    ----------
    native : str
        Binance-style id: ``BTCUSDT`` (spot or USDT-M), ``BTCUSD_PERP`` (COIN-M).
    exchange : str
        ``binanceusdm`` -> ``BTC/USDT:USDT``; ``binance`` -> ``BTC/USDT``;
        ``binancecoinm`` -> ``BTC/USD:BTC``. Other exchanges: linear perpetual form.

    Raises
    ------
    UnsafeNameError
        When the quote asset cannot be recognised (the fix is ``--symbol``).
    """
    if "/" in native:
        return validate_symbol(native)
    text = native.upper()
    suffix = ""
    if "_" in text:
        text, _, suffix = text.partition("_")
    for quote in _QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            base = text[: -len(quote)]
            break
    else:
        raise UnsafeNameError(
            f"symbol {native!r}: cannot split it into base and quote (known quotes: "
            f"{', '.join(_QUOTES)}); pass --symbol BASE/QUOTE:SETTLE, e.g. --symbol BTC/USDT:USDT"
        )
    if exchange == "binance":
        symbol = f"{base}/{quote}"
    elif exchange == "binancecoinm":
        symbol = f"{base}/{quote}:{base}"
        if suffix and suffix != "PERP":
            symbol += f"-{suffix}"
    else:
        symbol = f"{base}/{quote}:{quote}"
        if suffix and suffix != "PERP":
            symbol += f"-{suffix}"
    return validate_symbol(symbol)
