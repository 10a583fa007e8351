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
