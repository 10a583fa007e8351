"""Leverage tiers of ``margincall data fetch``: which request each exchange needs for them.

Three ways, chosen by the exchange's :class:`~data_loaders.ccxt_venues.VenueProfile` and ccxt's
``exchange.has``: one ``fetch_leverage_tiers(symbols)`` call (Binance), one
``fetch_market_leverage_tiers(symbol)`` per symbol (Bybit, whose bulk call answers for the first
symbol only; OKX), or the raw ``meta`` answer through ccxt's implicit API (Hyperliquid, whose
margin tables ccxt does not parse; :func:`data_loaders.ccxt_parse.hyperliquid_margin_tiers`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from data_loaders.ccxt_client import ExchangeClient, FetchError
from data_loaders.ccxt_parse import hyperliquid_margin_tiers
from data_loaders.ccxt_venues import profile

#: ``call(what, func)``: run one exchange request with the fetcher's retries.
Call = Callable[[str, Callable[[], Any]], Any]


def tier_bound_unit(exchange: str) -> str:
    """Unit of the bounds stored in ``notional_floor``/``notional_cap`` of ``exchange``'s tiers.

    The one place a reader of the store learns it: the stored ``risk_tiers`` rows carry no unit
    column, the exchange id of their partition decides (its
    :attr:`~data_loaders.ccxt_venues.VenueProfile.tier_bounds`). ``"notional"`` (settle currency,
    Binance, Bybit, Hyperliquid and any exchange without a profile) or ``"contracts"`` (OKX,
    whose position tiers count contracts ``minSz``/``maxSz``, source:
    https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers).

    Parameters
    ----------
    exchange : str
        ccxt exchange id (or venue name) of the stored partition.
    """
    return profile(exchange).tier_bounds


def fetch_tier_lists(client: ExchangeClient, symbols: tuple[str, ...], call: Call) -> dict[str, list[dict]]:
    """ccxt-shaped leverage tiers per symbol (``[]`` where the exchange answered nothing).

    Raises
    ------
    FetchError
        When the endpoint needs an API key that is not set (Binance's leverage brackets).
    """
    import ccxt

    venue = profile(client.id)
    tiers: dict[str, list[dict]] = {}
    try:
        if venue.tiers_from_meta:
            meta = call("info meta", lambda: client.publicPostInfo({"type": "meta"}))  # type: ignore[attr-defined]
            for symbol in symbols:
                info = (client.markets or {})[symbol].get("info") or {}
                tiers[symbol] = hyperliquid_margin_tiers(meta, str(info.get("name")))
        elif client.has.get("fetchLeverageTiers") and not venue.tiers_per_market:
            tiers.update(call("fetch_leverage_tiers", lambda: client.fetch_leverage_tiers(list(symbols))))
        else:
            for symbol in symbols:
                tiers[symbol] = call(f"fetch_market_leverage_tiers {symbol}",
                                     lambda: client.fetch_market_leverage_tiers(symbol))  # type: ignore[attr-defined]
    except (ccxt.AuthenticationError, ccxt.PermissionDenied) as exc:
        key = client.id.upper()
        raise FetchError(
            f"{client.id} leverage tiers: the endpoint needs an API key "
            f"({type(exc).__name__}: {exc}). Set MARGINCALL_{key}_API_KEY and "
            f"MARGINCALL_{key}_SECRET (a read-only key is enough), or drop 'tiers' "
            "from --what and load a tiers file with `margincall data import`.") from exc
    return tiers
