"""Per-exchange facts ``margincall data fetch`` needs beyond what ccxt's ``exchange.has`` says.

One :class:`VenueProfile` per exchange id: which market types to load, which datasets the
exchange really lacks (ccxt's ``has`` can claim a method whose endpoint does not serve what the
store needs) and what to import instead, the funding interval to assume when the data cannot
tell, how the maintenance amount of a tier table is obtained, and how tiers are requested.
Exchanges without a profile (e.g. ``binanceusdm``) get :data:`DEFAULT_PROFILE`, which is
Binance's behaviour.

Sources (each exchange's public API documentation, as cited per recording in
``tests/data/recorded/README.md``):

* Bybit v5: https://bybit-exchange.github.io/docs/v5/market/risk-limit (``mmDeduction``)
* OKX v5: https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers (tiers by
  contract count ``minSz``/``maxSz``; the tier MMR applies to the whole position, no
  deduction); https://www.okx.com/docs-v5/en/#public-data-rest-api-get-funding-rate-history
  (``after``: records earlier than the given ``fundingTime``)
* Hyperliquid: https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers and
  .../trading/funding (hourly funding; no mark or index candles in the API)
* dYdX v4 indexer: https://docs.dydx.xyz/indexer-client/http (hourly funding; per-market
  margin fractions, no notional tiers)
* BitMEX v1 REST: https://www.bitmex.com/api/explorer/ (``/trade/bucketed``: bins stamped at
  their *close*, ``binSize`` 1m/5m/1h/1d, ``count`` at most 1000; ``/funding``; ``/instrument``:
  ``referenceSymbol`` names the index, e.g. ``.BXBT`` for XBTUSD, ``riskLimit``/``riskStep``
  give only the base limit and step of the risk limits). ccxt shipped its ``bitmex`` module up to
  4.5.83 (pinned in pyproject.toml); BitMEX announced it ceases operations on 2026-09-23 04:00
  UTC, and its public dumps are at https://public.bitmex.com/
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

#: How ``maint_amount`` of a tier table is obtained: the exchange's own field in the raw tier
#: (``raw:<key>``, falling back to the recursion when empty) or Binance's recursion
#: ``cum_i = cum_{i-1} + floor_i * (mmr_i - mmr_{i-1})`` (``recursion``). The store refuses a
#: table whose amounts break the recursion (data_loaders/tier_rules.py), so OKX, which charges
#: its tier rate on the whole position without a deduction, is stored with the recursion too;
#: margincall's okx venue reads only its bounds and rates.
MaintAmountRule = str

#: Import command a "what to import instead" hint names.
IMPORT_HINT = "`margincall data import FILE --dataset {dataset} --exchange {exchange} --symbol SYMBOL`"


@dataclass(frozen=True)
class VenueProfile:
    """What ``data fetch`` must know about one exchange (see the module docstring).

    Attributes
    ----------
    market_types : mapping
        ccxt ``options['fetchMarkets']`` override, so only perpetual markets are loaded.
    missing : mapping of str to str
        ``--what`` name -> why the exchange cannot provide it and what to import instead.
    funding_interval_h : float
        Hours between settlements assumed when the data cannot tell (a single settlement).
    maint_amount : str
        :data:`MaintAmountRule` for the tier table.
    tiers_per_market : bool
        Request tiers market by market (``fetch_market_leverage_tiers``) even where ccxt
        offers ``fetch_leverage_tiers`` (Bybit's answers for the first symbol only).
    tier_bounds : {"notional", "contracts"}
        Unit of the tier bounds stored in ``notional_floor``/``notional_cap``.
    newest_first : bool
        The exchange answers a since/until window with its *newest* ``limit`` rows (Bybit, OKX,
        dYdX), so pages are walked backwards from the window's end; otherwise with its oldest
        (Binance, Hyperliquid), walked forwards.
    page_limits : mapping of str to int
        Rows per request by ccxt method, where ccxt's ``features`` overstate what the endpoint
        serves (OKX history candles: 100, not 300).
    funding_until_param : str, optional
        Exchange parameter that bounds a funding page from above, for exchanges where ccxt
        does not map ``until`` (OKX ``after``: rows strictly earlier than it).
    funding_mark_key : str
        Key of a settlement's mark price in the raw funding entry.
    tiers_from_meta : bool
        ccxt has no tier method, but the exchange's raw ``meta`` answer holds its margin
        tables (Hyperliquid ``marginTables``), read through ccxt's implicit API.
    bitmex_api : bool
        BitMEX's v1 API (``data_loaders.ccxt_bitmex``): candles come from its raw
        ``/trade/bucketed`` bins through ccxt's implicit API (ccxt's ``fetch_ohlcv`` counts volume
        in contracts, USD for XBTUSD, where the store keeps base units, the bins'
        ``homeNotional``; index candles are the bins of the market's index symbol, which ccxt
        does not list as a market), and an inverse contract's size is its face value
        ``abs(multiplier)`` x the settle currency's scale (ccxt: the raw multiplier).
    """

    market_types: Mapping[str, Any] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)
    funding_interval_h: float = 8.0
    maint_amount: MaintAmountRule = "raw:cum"
    tiers_per_market: bool = False
    tier_bounds: Literal["notional", "contracts"] = "notional"
    newest_first: bool = False
    page_limits: Mapping[str, int] = field(default_factory=dict)
    funding_until_param: str | None = None
    funding_mark_key: str = "markPrice"
    tiers_from_meta: bool = False
    bitmex_api: bool = False

    def serves_outside_ccxt(self, what: str) -> bool:
        """Whether ``what`` is fetched although ccxt's ``exchange.has`` denies it (raw endpoint)."""
        return (what == "tiers" and self.tiers_from_meta) or (what == "index" and self.bitmex_api)


DEFAULT_PROFILE = VenueProfile()

_NO_CANDLES = ("{venue} publishes no {kind}-price candles (its API serves last-trade candles only); "
               "drop '{what}' from --what, or import {kind} candles from another source with "
               "`margincall data import FILE --dataset ohlcv --price-type {kind} --exchange {exchange} "
               "--symbol SYMBOL --timeframe TF`")

PROFILES: Mapping[str, VenueProfile] = MappingProxyType({
    "bybit": VenueProfile(
        market_types={"types": ["linear", "inverse"]},
        maint_amount="raw:mmDeduction",
        tiers_per_market=True,
        newest_first=True,
    ),
    "okx": VenueProfile(
        market_types={"types": ["swap"]},
        maint_amount="recursion",
        tiers_per_market=True,
        tier_bounds="contracts",
        newest_first=True,
        page_limits={"fetchOHLCV": 100},  # history-candles: "maximum is 100" (OKX v5 docs)
        funding_until_param="after",
    ),
    "hyperliquid": VenueProfile(
        market_types={"types": ["swap"]},
        missing={
            "mark": _NO_CANDLES.format(venue="Hyperliquid", kind="mark", what="mark", exchange="hyperliquid"),
            "index": _NO_CANDLES.format(venue="Hyperliquid", kind="index", what="index", exchange="hyperliquid"),
        },
        funding_interval_h=1.0,
        maint_amount="recursion",
        tiers_from_meta=True,
    ),
    "dydx": VenueProfile(
        missing={
            "mark": _NO_CANDLES.format(venue="dYdX v4", kind="mark", what="mark", exchange="dydx"),
            "index": _NO_CANDLES.format(venue="dYdX v4", kind="index", what="index", exchange="dydx"),
            "tiers": ("dYdX v4 has no leverage-tier endpoint: margin is a per-market initial and "
                      "maintenance fraction (liquidity tiers of the chain), not notional brackets; drop "
                      "'tiers' from --what (margincall's dydx_v4 venue holds the liquidity tiers), or "
                      "import a table with " + IMPORT_HINT.format(dataset="risk_tiers", exchange="dydx")),
        },
        funding_interval_h=1.0,
        newest_first=True,
        funding_mark_key="price",  # the oracle price dYdX v4 marks positions at
    ),
    "bitmex": VenueProfile(
        missing={
            "mark": ("BitMEX publishes no mark-price candles: XBTUSD is marked at its Fair Price "
                     "(the .BXBT index plus the funding basis), which no endpoint serves as bins; "
                     "drop 'mark' from --what (fetch 'index' for the .BXBT bins), or import mark "
                     "candles with `margincall data import FILE --dataset ohlcv --price-type mark "
                     "--exchange bitmex --symbol SYMBOL --timeframe TF`"),
            "tiers": ("BitMEX has no risk-limit table endpoint (ccxt's bitmex has no leverage-tier "
                      "method; /instrument gives only the base riskLimit and riskStep, not each "
                      "step's margins); drop 'tiers' from --what (margincall's bitmex_inverse venue "
                      "holds the dated XBTUSD risk-limit steps), or import a table with "
                      + IMPORT_HINT.format(dataset="risk_tiers", exchange="bitmex")),
        },
        # /trade/bucketed and /funding: `count` at most 1000 (BitMEX API explorer); ccxt's
        # features say 10000 candles. /funding carries no mark price (stored null).
        page_limits={"fetchOHLCV": 1000, "fetchFundingRateHistory": 1000},
        bitmex_api=True,
    ),
})

#: Exchanges the installed ccxt does not ship, with what to import instead.
RETIRED: Mapping[str, str] = MappingProxyType({
    "bitmex": (
        "BitMEX: the installed ccxt ships no 'bitmex' exchange (ccxt removed it after 4.5.83; "
        "margincall pins ccxt<4.5.84, so reinstall with `pip install 'ccxt>=4.5.0,<4.5.84'`). "
        "Or import BitMEX data from files instead: its public trade and quote dumps "
        "(https://public.bitmex.com/?prefix=data/trade/) or a CSV/Parquet export of XBTUSD candles "
        "or funding, with `margincall data import FILE --dataset ohlcv|funding|trades --exchange "
        "bitmex --symbol BTC/USD:BTC` (see docs/fetch.md)."
    ),
})


def profile(exchange_id: str) -> VenueProfile:
    """The :class:`VenueProfile` of ``exchange_id`` (Binance's defaults when none is defined)."""
    return PROFILES.get(exchange_id, DEFAULT_PROFILE)
