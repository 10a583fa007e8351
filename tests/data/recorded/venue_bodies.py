"""Raw bodies of the non-Binance recordings, in each exchange's documented wire format.

Imported by ``make_venues.py`` only (never by the tests, which read the JSON files it writes).
Market listings are trimmed to BTC and ETH perpetuals; field sets and value shapes follow the
documentation examples cited in ``README.md``; BTC/ETH specifications are the venues' published
ones (tick, lot, contract value, leverage).
"""
from __future__ import annotations

BYBIT_INSTRUMENTS = {
    "linear": [
        {"symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "BTC",
         "quoteCoin": "USDT", "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "",
         "priceScale": "2", "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
         "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
         "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                           "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "119.000", "minNotionalValue": "5"},
         "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": "USDT", "copyTrading": "both",
         "upperFundingRate": "0.005", "lowerFundingRate": "-0.005", "isPreListing": False,
         "preListingInfo": None, "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
         "displayName": ""},
        {"symbol": "ETHUSDT", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "ETH",
         "quoteCoin": "USDT", "launchTime": "1615766400000", "deliveryTime": "0", "deliveryFeeRate": "",
         "priceScale": "2", "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
         "priceFilter": {"minPrice": "0.01", "maxPrice": "199999.98", "tickSize": "0.01"},
         "lotSizeFilter": {"maxOrderQty": "7240.00", "minOrderQty": "0.01", "qtyStep": "0.01",
                           "postOnlyMaxOrderQty": "7240.00", "maxMktOrderQty": "724.00", "minNotionalValue": "5"},
         "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": "USDT", "copyTrading": "both",
         "upperFundingRate": "0.005", "lowerFundingRate": "-0.005", "isPreListing": False,
         "preListingInfo": None, "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
         "displayName": ""},
    ],
    "inverse": [
        {"symbol": "BTCUSD", "contractType": "InversePerpetual", "status": "Trading", "baseCoin": "BTC",
         "quoteCoin": "USD", "launchTime": "1542211200000", "deliveryTime": "0", "deliveryFeeRate": "",
         "priceScale": "2", "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
         "priceFilter": {"minPrice": "0.50", "maxPrice": "1999999.00", "tickSize": "0.50"},
         "lotSizeFilter": {"maxOrderQty": "1000000", "minOrderQty": "1", "qtyStep": "1",
                           "postOnlyMaxOrderQty": "1000000", "maxMktOrderQty": "150000", "minNotionalValue": ""},
         "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": "BTC", "copyTrading": "none",
         "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375", "isPreListing": False,
         "preListingInfo": None, "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
         "displayName": ""},
    ],
}


def _okx_swap(inst: str, ct_val: str, ct_ccy: str, settle: str, tick: str, lot: str, ct_type: str,
              lever: str) -> dict:
    family = inst.rsplit("-", 1)[0]
    return {"alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": ct_type, "ctVal": ct_val,
            "ctValCcy": ct_ccy, "expTime": "", "instFamily": family, "instId": inst, "instType": "SWAP",
            "lever": lever, "listTime": "1573557408000", "lotSz": lot, "maxIcebergSz": "100000000.0000000000000000",
            "maxLmtAmt": "20000000", "maxLmtSz": "100000000", "maxMktAmt": "", "maxMktSz": "12000",
            "maxStopSz": "12000", "maxTriggerSz": "100000000.0000000000000000", "maxTwapSz": "100000000.0000000000000000",
            "minSz": lot, "optType": "", "quoteCcy": "", "ruleType": "normal", "settleCcy": settle, "state": "live",
            "stk": "", "tickSz": tick, "uly": family}


OKX_INSTRUMENTS = [
    _okx_swap("BTC-USDT-SWAP", "0.01", "BTC", "USDT", "0.1", "0.01", "linear", "100"),
    _okx_swap("ETH-USDT-SWAP", "0.1", "ETH", "USDT", "0.01", "0.01", "linear", "100"),
    _okx_swap("BTC-USD-SWAP", "100", "USD", "BTC", "0.1", "1", "inverse", "100"),
]

HYPERLIQUID_META = {
    "universe": [
        {"szDecimals": 5, "name": "BTC", "maxLeverage": 40, "marginTableId": 56},
        {"szDecimals": 4, "name": "ETH", "maxLeverage": 25, "marginTableId": 55},
    ],
    "marginTables": [
        [55, {"description": "tiered 25x", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 25},
                                                          {"lowerBound": "100000000.0", "maxLeverage": 15}]}],
        [56, {"description": "tiered 40x", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 40},
                                                          {"lowerBound": "150000000.0", "maxLeverage": 20}]}],
    ],
}
HYPERLIQUID_CTXS = [
    {"funding": "0.0000125", "openInterest": "31234.56789", "prevDayPx": "121500.0", "dayNtlVlm": "5432109876.54",
     "premium": "0.0002", "oraclePx": "121450.0", "markPx": "121460.0", "midPx": "121459.5",
     "impactPxs": ["121459.0", "121460.0"], "dayBaseVlm": "44800.12345"},
    {"funding": "0.0000125", "openInterest": "612345.6789", "prevDayPx": "4350.1", "dayNtlVlm": "2109876543.21",
     "premium": "0.0001", "oraclePx": "4348.2", "markPx": "4348.5", "midPx": "4348.45",
     "impactPxs": ["4348.4", "4348.5"], "dayBaseVlm": "485000.1234"},
]


def _dydx_market(ticker: str, clob: str, oracle: str, tick: str, step: str, imf: str, mmf: str,
                 atomic: int, qce: int, step_quantums: int, subticks: int) -> dict:
    return {"clobPairId": clob, "ticker": ticker, "status": "ACTIVE", "oraclePrice": oracle,
            "priceChange24H": "-1234.5", "volume24H": "123456789.0123", "trades24H": 54321,
            "nextFundingRate": "0.0000125", "initialMarginFraction": imf, "maintenanceMarginFraction": mmf,
            "openInterest": "1234.5678", "atomicResolution": atomic, "quantumConversionExponent": qce,
            "tickSize": tick, "stepSize": step, "stepBaseQuantums": step_quantums,
            "subticksPerTick": subticks, "marketType": "CROSS", "openInterestLowerCap": "0",
            "openInterestUpperCap": "0", "baseOpenInterest": "1200.0", "defaultFundingRate1H": "0"}


DYDX_MARKETS = {"markets": {
    "BTC-USD": _dydx_market("BTC-USD", "0", "121450.12", "1", "0.0001", "0.02", "0.012", -10, -9, 1000000, 100000),
    "ETH-USD": _dydx_market("ETH-USD", "1", "4348.25", "0.1", "0.001", "0.02", "0.012", -9, -9, 1000000, 100000),
}}


# BitMEX v1: GET /api/v1/wallet/assets (ccxt's fetch_currencies; `scale` 8 for XBt = satoshi,
# 6 for USDt) and GET /api/v1/instrument/active (XBTUSD inverse, XBTUSDT linear, ETHUSD quanto).
def _bitmex_asset(currency: str, asset: str, name: str, scale: str, network: str) -> dict:
    return {"asset": asset, "currency": currency, "majorCurrency": asset, "name": name, "currencyType": "Crypto",
            "scale": scale, "enabled": True, "isMarginCurrency": True, "minDepositAmount": "10000",
            "minWithdrawalAmount": "1000", "maxWithdrawalAmount": "100000000000000",
            "networks": [{"asset": network, "tokenAddress": "", "depositEnabled": True, "withdrawalEnabled": True,
                          "withdrawalFee": "20000", "minFee": "20000", "maxFee": "10000000"}]}


BITMEX_ASSETS = {"XBt": _bitmex_asset("XBt", "XBT", "Bitcoin", "8", "btc"),
                 "USDt": _bitmex_asset("USDt", "USDT", "Tether", "6", "eth")}


def _bitmex_instrument(symbol: str, underlying: str, quote: str, settle: str, reference: str, *,
                       inverse: bool, quanto: bool, multiplier: int, lot: int, tick: float,
                       to_position: int | None, to_settle: int | None, quote_to_settle: int | None,
                       position: str, maker: float, taker: float, init: float, maint: float,
                       risk_limit: int, risk_step: int, last: float) -> dict:
    return {
        "symbol": symbol, "rootSymbol": underlying, "state": "Open", "typ": "FFWCSX",
        "listing": "2016-05-13T12:00:00.000Z", "front": "2016-05-13T12:00:00.000Z", "expiry": None, "settle": None,
        "listedSettle": None, "positionCurrency": position, "underlying": underlying, "quoteCurrency": quote,
        "underlyingSymbol": f"{underlying}=", "reference": "BMEX", "referenceSymbol": reference,
        "maxOrderQty": 10000000, "maxPrice": 10000000, "lotSize": lot, "tickSize": tick, "multiplier": multiplier,
        "settlCurrency": settle, "underlyingToPositionMultiplier": to_position,
        "underlyingToSettleMultiplier": to_settle, "quoteToSettleMultiplier": quote_to_settle,
        "isQuanto": quanto, "isInverse": inverse, "initMargin": init, "maintMargin": maint,
        "riskLimit": risk_limit, "riskStep": risk_step, "taxed": True, "deleverage": True,
        "makerFee": maker, "takerFee": taker, "settlementFee": 0, "fundingBaseSymbol": f".{underlying}BON8H",
        "fundingQuoteSymbol": f".{quote}BON8H", "fundingPremiumSymbol": f".{symbol}PI8H",
        "fundingTimestamp": "2025-10-10T04:00:00.000Z", "fundingInterval": "2000-01-01T08:00:00.000Z",
        "fundingRate": 0.0001, "indicativeFundingRate": 0.0001, "lastPrice": last, "markMethod": "FairPrice",
        "fairMethod": "FundingRate", "markPrice": last, "timestamp": "2025-10-09T23:59:55.000Z",
    }


BITMEX_INSTRUMENTS = [
    # XBTUSD: 1 USD per contract (multiplier -1e8 XBt per price point), tick 0.1, lot 100
    _bitmex_instrument("XBTUSD", "XBT", "USD", "XBt", ".BXBT", inverse=True, quanto=False, multiplier=-100000000,
                       lot=100, tick=0.1, to_position=None, to_settle=-100000000, quote_to_settle=None,
                       position="USD", maker=-0.0001, taker=0.00075, init=0.01, maint=0.0035,
                       risk_limit=20000000000, risk_step=15000000000, last=121450.5),
    # XBTUSDT: 1e-6 XBT per contract, settled in USDt
    _bitmex_instrument("XBTUSDT", "XBT", "USDT", "USDt", ".BXBTT", inverse=False, quanto=False, multiplier=1,
                       lot=1000, tick=0.5, to_position=1000000, to_settle=None, quote_to_settle=1000000,
                       position="XBT", maker=-0.0001, taker=0.00075, init=0.01, maint=0.005,
                       risk_limit=1000000000000, risk_step=1000000000000, last=121460.0),
    # ETHUSD: quanto, 100 XBt per USD price point
    _bitmex_instrument("ETHUSD", "ETH", "USD", "XBt", ".BETH", inverse=False, quanto=True, multiplier=100,
                       lot=1, tick=0.05, to_position=None, to_settle=None, quote_to_settle=None,
                       position="USD", maker=-0.0001, taker=0.00075, init=0.02, maint=0.01,
                       risk_limit=5000000000, risk_step=5000000000, last=4348.25),
]
