"""The exchange-client boundary of ``margincall data fetch``: protocol, construction, checks.

The fetcher talks to an exchange only through :class:`ExchangeClient`, the small subset of a
ccxt ``Exchange`` it needs. :func:`create_exchange` builds the real ccxt instance (ccxt is
imported here, inside the function, so ``import backtest`` never loads it); tests build the
same instance and replace its low-level HTTP ``fetch`` with a replay transport, so ccxt's own
parsing code runs on recorded exchange responses.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from data_loaders.ccxt_venues import RETIRED, profile
from data_loaders.errors import DataError, DataNotFoundError

#: ``--what`` names -> the ccxt capability (``exchange.has[...]``) each one needs.
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "ohlcv": ("fetchOHLCV",),
    "mark": ("fetchMarkOHLCV",),
    "index": ("fetchIndexOHLCV",),
    "funding": ("fetchFundingRateHistory",),
    "tiers": ("fetchLeverageTiers", "fetchMarketLeverageTiers"),
    "markets": ("fetchMarkets",),
}

_CAPABILITY_TEXT = {
    "ohlcv": "last-price candles",
    "mark": "mark-price candles",
    "index": "index-price candles",
    "funding": "funding-rate history",
    "tiers": "leverage (risk-limit) tiers",
    "markets": "market definitions",
}


class FetchError(DataError):
    """``margincall data fetch`` could not do what was asked (nothing stored was lost)."""


class CapabilityError(FetchError):
    """The exchange does not offer, through ccxt, a dataset that was asked for."""


class UnknownExchangeError(FetchError, LookupError):
    """The exchange id is not one ccxt knows."""


class UnknownSymbolError(FetchError, DataNotFoundError):
    """The symbol is not listed by the exchange."""


@runtime_checkable
class ExchangeClient(Protocol):
    """The part of a ccxt ``Exchange`` the fetcher uses (real ccxt, or a fake in tests).

    Times are epoch milliseconds (UTC); ``parse_timeframe`` returns seconds, as in ccxt.
    """

    id: str
    has: Mapping[str, Any]
    markets: dict[str, dict[str, Any]] | None
    symbols: list[str] | None

    def load_markets(self, reload: bool = False, params: dict = {}) -> dict[str, dict[str, Any]]: ...

    def fetch_ohlcv(self, symbol: str, timeframe: str = "1m", since: int | None = None,
                    limit: int | None = None, params: dict = {}) -> list[list]: ...

    def fetch_funding_rate_history(self, symbol: str | None = None, since: int | None = None,
                                   limit: int | None = None, params: dict = {}) -> list[dict]: ...

    def fetch_leverage_tiers(self, symbols: list[str] | None = None,
                             params: dict = {}) -> dict[str, list[dict]]: ...


def credentials_from_env(exchange_id: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Read optional API credentials for ``exchange_id`` from the environment.

    ``MARGINCALL_<ID>_API_KEY`` and ``MARGINCALL_<ID>_SECRET`` (``<ID>`` upper-cased, e.g.
    ``MARGINCALL_BINANCEUSDM_API_KEY``). Only needed for endpoints an exchange keeps private,
    such as Binance's leverage brackets; a read-only key is enough.

    Returns
    -------
    dict
        ``{"apiKey": ..., "secret": ...}`` with the keys that are set (maybe empty).
    """
    env = os.environ if environ is None else environ
    prefix = f"MARGINCALL_{exchange_id.upper()}_"
    found = {"apiKey": env.get(prefix + "API_KEY", ""), "secret": env.get(prefix + "SECRET", "")}
    return {key: value for key, value in found.items() if value}


def create_exchange(exchange_id: str, *, credentials: Mapping[str, str] | None = None,
                    options: Mapping[str, Any] | None = None) -> Any:
    """Build a rate-limited ccxt exchange instance.

    Parameters
    ----------
    exchange_id : str
        A ccxt exchange id, e.g. ``"binanceusdm"``.
    credentials : mapping, optional
        ``apiKey`` / ``secret`` (see :func:`credentials_from_env`).
    options : mapping, optional
        Extra ccxt ``options`` (merged over ccxt's defaults).

    Raises
    ------
    UnknownExchangeError
        When ccxt has no such exchange; the message lists close matches.
    """
    import ccxt

    if exchange_id in RETIRED and exchange_id not in ccxt.exchanges:
        raise UnknownExchangeError(RETIRED[exchange_id])
    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see `python -c 'import ccxt; print(ccxt.exchanges)'`"
        raise UnknownExchangeError(
            f"exchange {exchange_id!r}: not a ccxt exchange id ({len(ccxt.exchanges)} known); "
            f"{hint} Pass it with --exchange, e.g. --exchange binanceusdm"
        )
    config: dict[str, Any] = {"enableRateLimit": True}
    config.update(credentials or {})
    # Currencies are not needed for market data; with API keys Binance would otherwise call
    # its wallet endpoint (sapi capital/config), which needs more than a read-only futures key.
    # Only perpetual markets are loaded (the store holds derivatives), which also spares the
    # spot and option listings' requests (VenueProfile.market_types).
    market_types = profile(exchange_id).market_types
    defaults: dict[str, Any] = {"fetchCurrencies": False}
    if market_types:
        defaults["fetchMarkets"] = dict(market_types)
    config["options"] = {**defaults, **dict(options or {})}
    return getattr(ccxt, exchange_id)(config)


def check_capabilities(client: ExchangeClient, what: Sequence[str]) -> None:
    """Raise :class:`CapabilityError` if ``client`` lacks something one of ``what`` needs.

    Missing means ccxt's ``exchange.has`` lacks every method the dataset needs, or the
    exchange's :class:`~data_loaders.ccxt_venues.VenueProfile` says its endpoint does not serve
    it (e.g. Hyperliquid has no mark candles). The message names the exchange, each missing
    dataset, why, and what to import instead with ``margincall data import``.
    """
    venue = profile(client.id)
    missing = [name for name in what
               if name in venue.missing or not (any(client.has.get(cap) for cap in CAPABILITIES[name])
                                                 or venue.serves_outside_ccxt(name))]
    if not missing:
        return
    lines = []
    for name in missing:
        reason = venue.missing.get(name) or (
            f"ccxt exchange.has[{CAPABILITIES[name][0]!r}] is {client.has.get(CAPABILITIES[name][0])!r}")
        lines.append(f"  - {name}: {_CAPABILITY_TEXT[name]}: {reason}")
    raise CapabilityError(
        f"exchange {client.id!r} does not provide through ccxt:\n" + "\n".join(lines) + "\n"
        f"Drop {', '.join(missing)} from --what, or get the data elsewhere and load it with "
        "`margincall data import` (e.g. a data.binance.vision dump or a CSV/Parquet export)."
    )


def resolve_symbol(client: ExchangeClient, symbol: str) -> dict[str, Any]:
    """Return the loaded ccxt market of ``symbol`` or raise with close matches.

    Exchange-native ids (``BTCUSDT``) are matched too, and the error then names the unified
    symbol to use instead.
    """
    markets = client.markets or {}
    if symbol in markets:
        return markets[symbol]
    by_id = [m["symbol"] for m in markets.values() if m.get("id") == symbol]
    if by_id:
        hint = f"that is the exchange's own id; use the ccxt unified symbol: {', '.join(sorted(by_id))}"
    else:
        close = difflib.get_close_matches(symbol, list(markets), n=5, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else \
            "perpetuals are written BASE/QUOTE:SETTLE, e.g. BTC/USDT:USDT"
    raise UnknownSymbolError(
        f"symbol {symbol!r}: not listed by {client.id} ({len(markets)} markets loaded); {hint}"
    )


def page_limit(client: Any, method: str, market: Mapping[str, Any], *, price_type: str = "last") -> int:
    """Largest page size to request from ``method`` for ``market`` (rows per request).

    The exchange profile's ``page_limits`` first (where ccxt's features overstate the endpoint),
    then ccxt's ``exchange.features[type][subType][method]['limit']`` (and its ``mark``/
    ``index`` variants), else a conservative per-method default. Binance USD-M candles: 500
    (ccxt's feature value; the cheapest request weight per candle), funding: 1000.
    """
    override = profile(str(getattr(client, "id", ""))).page_limits.get(method)
    if override:
        return override
    market_type = market.get("type") or "swap"
    sub_type = market.get("subType") or ("linear" if market.get("linear") else "inverse")
    features = getattr(client, "features", None) or {}
    node = features.get(market_type) or {}
    if isinstance(node, Mapping) and sub_type in node and isinstance(node[sub_type], Mapping):
        node = node[sub_type]
    spec = node.get(method) if isinstance(node, Mapping) else None
    if isinstance(spec, Mapping):
        value = spec.get(price_type) if price_type in ("mark", "index") else None
        value = value or spec.get("limit")
        if isinstance(value, int) and value > 0:
            return value
    return _DEFAULT_LIMITS.get((str(getattr(client, "id", "")), method)) or _DEFAULT_LIMITS[("", method)]


_DEFAULT_LIMITS: dict[tuple[str, str], int] = {
    ("", "fetchOHLCV"): 500,
    ("", "fetchFundingRateHistory"): 100,
    ("binanceusdm", "fetchFundingRateHistory"): 1000,
    ("binancecoinm", "fetchFundingRateHistory"): 1000,
    ("binance", "fetchFundingRateHistory"): 1000,
    ("bybit", "fetchFundingRateHistory"): 200,
    ("okx", "fetchFundingRateHistory"): 100,
    ("hyperliquid", "fetchFundingRateHistory"): 500,
    ("dydx", "fetchFundingRateHistory"): 100,
}
