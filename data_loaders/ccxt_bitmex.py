"""BitMEX specifics of ``margincall data fetch`` (``--exchange bitmex``, ccxt <= 4.5.83).

Two things ccxt's ``bitmex`` module does not give the store as it needs them:

* **Candles** (:func:`bucketed_candles`). BitMEX serves candles as ``GET /api/v1/trade/bucketed``
  bins stamped at their *close* (a 1 h bin stamped 01:00 covers 00:00-01:00). ccxt's
  ``fetch_ohlcv`` shifts the stamps but reports the bins' ``volume``, a contract count (USD for
  XBTUSD), where the store keeps base units; and it cannot ask for the index's bins (``.BXBT``
  for XBTUSD, the instrument's ``referenceSymbol``), which ccxt does not list as a market. So the
  bins are requested through ccxt's implicit API (``publicGetTradeBucketed``: ccxt's URL
  building, rate limit and error handling) and each bin parsed by ccxt's own ``parse_ohlcv``;
  the volume is the bin's ``homeNotional`` (base units) and the stamp is moved to the open.
* **Contract size** (:func:`bitmex_market`). ccxt reports an inverse contract's size as
  ``abs(multiplier)`` (100000000 for XBTUSD), a count of XBt (satoshi) per price point, where the
  store keeps the face value in the quote currency: ``abs(multiplier) * settle scale`` =
  1e8 * 1e-8 = 1 USD per XBTUSD contract. Quanto contracts (ETHUSD: USD price, XBT margin at a
  fixed multiplier) are neither linear nor inverse and are refused.

Source: BitMEX REST API explorer, https://www.bitmex.com/api/explorer/ (``Trade/Trade_getBucketed``:
``binSize`` 1m/5m/1h/1d, ``partial``, ``count`` at most 1000, ``startTime``/``endTime`` filter on
the bin's timestamp; ``Instrument``: ``multiplier``, ``isInverse``, ``isQuanto``,
``referenceSymbol``) and https://www.bitmex.com/app/contract/XBTUSD (1 USD per contract).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from data_loaders.ccxt_client import FetchError
from data_loaders.schemas import timeframe_ms


def index_symbol(market: Mapping[str, Any]) -> str:
    """BitMEX's index symbol of ``market`` (``.BXBT`` for XBTUSD), its ``referenceSymbol``.

    Raises
    ------
    FetchError
        When the instrument names no index starting with ``.`` (nothing to ask for).
    """
    info = market.get("info") or {}
    reference = str(info.get("referenceSymbol") or "")
    if not reference.startswith("."):
        raise FetchError(
            f"bitmex {market.get('symbol')}: index candles: expected the instrument's referenceSymbol "
            f"to name an index such as .BXBT, found {reference or 'none'}; drop 'index' from --what or "
            "import index candles with `margincall data import FILE --dataset ohlcv --price-type index "
            "--exchange bitmex --symbol SYMBOL --timeframe TF`")
    return reference


def bucketed_candles(client: Any, market: Mapping[str, Any], timeframe: str, lo: int, hi: int,
                     limit: int, price_type: str) -> list[list]:
    """Closed candles ``[open ms, open, high, low, close, volume]`` of ``[lo, hi)``, oldest first.

    Parameters
    ----------
    client : ccxt.bitmex
        The exchange instance (its implicit ``publicGetTradeBucketed`` and ``parse_ohlcv``).
    market : mapping
        The loaded ccxt market.
    timeframe : str
        ccxt timeframe; BitMEX bins only 1m, 5m, 1h and 1d.
    lo, hi : int
        Candle *open* times wanted, epoch ms, half-open; requested as bins closing in
        ``[lo + step, hi]``.
    limit : int
        Bins per request (at most 1000).
    price_type : {"last", "index"}
        ``last``: the market's own bins, volume = ``homeNotional`` (base units); ``index``: the
        bins of :func:`index_symbol`, volume None.
    """
    step = timeframe_ms(timeframe)
    bin_symbol = market["id"] if price_type == "last" else index_symbol(market)
    raw = client.publicGetTradeBucketed({
        "symbol": bin_symbol,
        "binSize": client.timeframes[timeframe],
        "partial": False,  # closed bins only
        "count": limit,
        "startTime": client.iso8601(lo + step),
        "endTime": client.iso8601(hi),
    })
    rows = []
    for entry in raw or []:
        stamp, open_, high, low, close, _contracts = client.parse_ohlcv(
            entry, market if price_type == "last" else None)
        volume = _float(entry.get("homeNotional")) if price_type == "last" else None
        rows.append([int(stamp) - step, open_, high, low, close, volume])
    return rows


def bitmex_market(market: Mapping[str, Any], currencies: Mapping[str, Any] | None) -> dict[str, Any]:
    """``market`` with ``contractSize`` as the store keeps it (see the module docstring).

    Linear contracts keep ccxt's size (base units per contract, ``1 / underlyingToPositionMultiplier``).

    Raises
    ------
    FetchError
        For a quanto contract, or an inverse one whose settle currency's scale is unknown.
    """
    info = market.get("info") or {}
    symbol = market.get("symbol")
    if market.get("quanto") or info.get("isQuanto") is True:
        raise FetchError(
            f"bitmex {symbol}: a quanto contract (price in {market.get('quote')}, margin in "
            f"{market.get('settle')} at a fixed multiplier {info.get('multiplier')}); margincall models "
            "linear and inverse contracts only, so its market row is not stored. Drop it from --symbol "
            "for 'markets' (its candles and funding can be fetched alone)")
    if not market.get("inverse"):
        return dict(market)
    settle = (currencies or {}).get(market.get("settle")) or {}
    scale = settle.get("precision")
    multiplier = info.get("multiplier")
    if scale is None or multiplier is None:
        raise FetchError(
            f"bitmex {symbol}: inverse contract size: expected the instrument's multiplier and the "
            f"settle currency's scale (GET /api/v1/wallet/assets), found multiplier={multiplier!r}, "
            f"scale={scale!r}; re-run the fetch (load_markets reads both)")
    return {**market, "contractSize": abs(float(multiplier)) * float(scale)}


def _float(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None
