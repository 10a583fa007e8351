"""Regenerate the recorded Binance USD-M responses replayed by tests/data/test_ccxt_fetch.py.

Run from the project root (needs ../shared; never run by the tests):

    .venv/bin/python tests/data/recorded/make_binanceusdm.py

Each output file is a JSON list of exchanges ``{"request": {method, path, query},
"response": {status, body}}``. ``body`` is exactly what Binance sends on that endpoint (its
wire format: candle arrays with prices as strings, funding objects, leverage brackets), built
from real values in ../shared/data:

* ``/fapi/v1/klines`` BTCUSDT 1h 2020-03-11..2020-03-14: ``klines/long/binance_um_BTCUSDT_1h_...``;
  BTCUSDT and ETHUSDT 1h 2020-03-11 (24 h window): ``klines/long/binance_um_ETHUSDT_1h_...``
* ``/fapi/v1/markPriceKlines``: ``mark/binance_um_BTCUSDT_markprice_1h_...``
* ``/fapi/v1/indexPriceKlines`` 2020-03-11 (24 h): ../shared holds no index candles, so these
  are Binance *spot* BTCUSDT 5m candles (``klines/crash_2020-03-12``) aggregated to 1 h, a
  stand-in for the index (which is a spot composite); only the wire format is the point.
* ``/fapi/v1/fundingRate`` 2020-03-11..2020-03-14: ``funding/binance_um_BTCUSDT_funding_8h``
  (real ``fundingTime`` including Binance's few-ms stamping jitter, rate strings verbatim,
  ``markPrice`` empty as Binance returns it for 2020).
* ``/fapi/v1/leverageBracket``: the newest BTCUSDT/ETHUSDT tables of
  ``margin/binance_um_leverage_brackets_...json`` (2024-05-30 snapshot).
* ``/fapi/v1/exchangeInfo``: trimmed to two symbols; the BTCUSDT entry is a live capture
  verbatim, ETHUSDT follows the same shape with ETHUSDT's filters.

Candle fields ccxt does not read and the sources do not hold (close time is computed; quote
volume, trade count, taker volumes) are sent as ``"0"``/``0``.
"""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "data"
OUT = Path(__file__).resolve().parent / "binanceusdm"
HOUR = 3_600_000
T0 = 1583884800000  # 2020-03-11T00:00Z
END = T0 + 72 * HOUR  # 2020-03-14T00:00Z
PAGE = 24  # most tests run with max_page=24; the CLI test with the endpoints' own sizes


def exchange(path: str, query: dict, body: object, status: int = 200) -> dict:
    return {"request": {"method": "GET", "path": path, "query": {k: str(v) for k, v in query.items()}},
            "response": {"status": status, "body": body}}


def num(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    assert float(text) == value, (value, text)
    return text


def kline_rows(frame: pl.DataFrame, price_decimals: int, with_volume: bool) -> list[list]:
    rows = []
    for r in frame.iter_rows(named=True):
        ts = int(r["open_time"].timestamp() * 1000)
        volume = num(r["volume"], 3) if with_volume else "0"
        rows.append([ts, num(r["open"], price_decimals), num(r["high"], price_decimals),
                     num(r["low"], price_decimals), num(r["close"], price_decimals), volume,
                     ts + HOUR - 1, "0", 0, "0", "0", "0"])
    return rows


def window(path: str, start: int, end: int) -> pl.DataFrame:
    frame = pl.read_parquet(SHARED / path)
    lo = pl.lit(start).cast(pl.Datetime("ms", "UTC"))
    hi = pl.lit(end).cast(pl.Datetime("ms", "UTC"))
    return frame.filter((pl.col("open_time") >= lo) & (pl.col("open_time") < hi)).sort("open_time")


def paged(path: str, rows: list[list], extra: dict, start: int, end: int, size: int = PAGE) -> list[dict]:
    out = []
    cursor = start
    while cursor < end:
        page = [r for r in rows if r[0] >= cursor][:size]
        out.append(exchange(path, {**extra, "interval": "1h", "limit": size, "startTime": cursor,
                                   "endTime": end - 1}, page))
        if not page:
            break
        cursor = page[-1][0] + HOUR
    return out


def klines() -> None:
    last = kline_rows(window("klines/long/binance_um_BTCUSDT_1h_2019-09-08_2026-05-17.parquet", T0, END), 2, True)
    mark = kline_rows(window("mark/binance_um_BTCUSDT_markprice_1h_2019-12-23_2026-05-17.parquet", T0, END), 8, False)
    spot = window("klines/crash_2020-03-12/binance_spot_BTCUSDT_5m_2020-03-10_2020-03-12.parquet", T0, T0 + 24 * HOUR)
    hourly = (spot.group_by_dynamic("open_time", every="1h")
              .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
                   pl.col("close").last(), pl.col("volume").sum()))
    index = kline_rows(hourly, 2, False)
    assert len(last) == 72 and len(mark) == 72 and len(index) == 24
    eth = kline_rows(window("klines/long/binance_um_ETHUSDT_1h_2019-11-27_2026-05-17.parquet", T0, T0 + 24 * HOUR), 2, True)
    assert len(eth) == 24
    write("klines.json", paged("/fapi/v1/klines", last, {"symbol": "BTCUSDT"}, T0, END)
          + paged("/fapi/v1/klines", last, {"symbol": "BTCUSDT"}, T0, T0 + 24 * HOUR)
          + paged("/fapi/v1/klines", eth, {"symbol": "ETHUSDT"}, T0, T0 + 24 * HOUR)
          + paged("/fapi/v1/klines", last, {"symbol": "BTCUSDT"}, T0, END, size=500))
    write("markPriceKlines.json", paged("/fapi/v1/markPriceKlines", mark, {"symbol": "BTCUSDT"}, T0, END)
          + paged("/fapi/v1/markPriceKlines", mark, {"symbol": "BTCUSDT"}, T0, END, size=500))
    write("indexPriceKlines.json", paged("/fapi/v1/indexPriceKlines", index, {"pair": "BTCUSDT"},
                                         T0, T0 + 24 * HOUR))


def funding() -> None:
    frame = pl.read_parquet(SHARED / "funding/binance_um_BTCUSDT_funding_8h.parquet")
    frame = frame.filter((pl.col("calc_time_ms") >= T0) & (pl.col("calc_time_ms") < END)).sort("calc_time_ms")
    entries = [{"symbol": "BTCUSDT", "fundingTime": int(r["calc_time_ms"]),
                "fundingRate": r["funding_rate_str"] or num(r["funding_rate"], 8), "markPrice": ""}
               for r in frame.iter_rows(named=True)]
    assert len(entries) == 9
    out = []
    for limit in (PAGE, 1000):  # the tests' max_page, and the endpoint's own page size
        out.extend(_funding_pages(entries, limit))
    write("fundingRate.json", out)


def _funding_pages(entries: list[dict], limit: int) -> list[dict]:
    """A full window fits one page; the next page (1 ms after the last stamp) is empty."""
    out, cursor = [], T0
    while True:
        page = [e for e in entries if e["fundingTime"] >= cursor][:limit]
        out.append(exchange("/fapi/v1/fundingRate", {"symbol": "BTCUSDT", "startTime": cursor,
                                                     "endTime": END - 1, "limit": limit}, page))
        if not page:
            break
        cursor = page[-1]["fundingTime"] + 1
    return out


def brackets() -> None:
    doc = json.loads((SHARED / "margin/binance_um_leverage_brackets_BTCUSDT_ETHUSDT_2021-2024.json").read_text())
    newest = doc["versions"][-1]["symbols"]
    body = []
    for native in ("ETHUSDT", "BTCUSDT"):
        body.append({"symbol": native, "notionalCoef": 1.0, "brackets": [
            {"bracket": b["bracket"], "initialLeverage": b["max_initial_leverage"],
             "notionalCap": _int_if_whole(b["notional_cap_usdt"]),
             "notionalFloor": _int_if_whole(b["notional_floor_usdt"]),
             "maintMarginRatio": b["maint_margin_rate"], "cum": b["maint_amount_usdt"]}
            for b in newest[native]["brackets"]]})
    write("leverageBracket.json", [exchange("/fapi/v1/leverageBracket", {}, body)])


def _int_if_whole(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


BTC_INFO = json.loads(
    '{"symbol":"BTCUSDT","pair":"BTCUSDT","contractType":"PERPETUAL","deliveryDate":4133404800000,'
    '"onboardDate":1567965300000,"status":"TRADING","maintMarginPercent":"2.5000",'
    '"requiredMarginPercent":"5.0000","baseAsset":"BTC","quoteAsset":"USDT","marginAsset":"USDT",'
    '"pricePrecision":2,"quantityPrecision":3,"baseAssetPrecision":8,"quotePrecision":8,'
    '"underlyingType":"COIN","underlyingSubType":["PoW","Crypto"],"triggerProtect":"0.0500",'
    '"liquidationFee":"0.012500","marketTakeBound":"0.05","maxMoveOrderLimit":10000,"filters":['
    '{"filterType":"PRICE_FILTER","minPrice":"556.80","maxPrice":"4529764","tickSize":"0.10"},'
    '{"filterType":"LOT_SIZE","minQty":"0.001","stepSize":"0.001","maxQty":"1000"},'
    '{"stepSize":"0.001","filterType":"MARKET_LOT_SIZE","minQty":"0.001","maxQty":"120"},'
    '{"limit":200,"filterType":"MAX_NUM_ORDERS"},{"filterType":"MIN_NOTIONAL","notional":"50"},'
    '{"multiplierUp":"1.0500","multiplierDecimal":"4","filterType":"PERCENT_PRICE","multiplierDown":"0.9500"},'
    '{"positionControlSide":"NONE","filterType":"POSITION_RISK_CONTROL"}],'
    '"orderTypes":["LIMIT","MARKET","STOP","STOP_MARKET","TAKE_PROFIT","TAKE_PROFIT_MARKET","TRAILING_STOP_MARKET"],'
    '"timeInForce":["GTC","IOC","FOK","GTX","GTD"],"permissionSets":["GRID","COPY","DCA","PSB"]}')


def exchange_info() -> None:
    eth = json.loads(json.dumps(BTC_INFO).replace("BTCUSDT", "ETHUSDT").replace('"BTC"', '"ETH"'))
    eth.update({"onboardDate": 1569398400000, "underlyingSubType": ["Layer-1"]})
    eth["filters"] = [
        {"filterType": "PRICE_FILTER", "minPrice": "39.86", "maxPrice": "306177", "tickSize": "0.01"},
        {"filterType": "LOT_SIZE", "minQty": "0.001", "stepSize": "0.001", "maxQty": "10000"},
        {"stepSize": "0.001", "filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "2000"},
        {"limit": 200, "filterType": "MAX_NUM_ORDERS"}, {"filterType": "MIN_NOTIONAL", "notional": "20"},
        {"multiplierUp": "1.0500", "multiplierDecimal": "4", "filterType": "PERCENT_PRICE", "multiplierDown": "0.9500"},
        {"positionControlSide": "NONE", "filterType": "POSITION_RISK_CONTROL"}]
    body = {"timezone": "UTC", "serverTime": 1789478299014, "futuresType": "U_MARGINED",
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                           {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                           {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300}],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"},
                       {"asset": "BTC", "marginAvailable": True, "autoAssetExchange": "0"}],
            "symbols": [BTC_INFO, eth]}
    write("exchangeInfo.json", [exchange("/fapi/v1/exchangeInfo", {}, body)])


def write(name: str, exchanges: list[dict]) -> None:
    text = json.dumps(exchanges, separators=(",", ":"))
    (OUT / name).write_text(text + "\n")
    print(f"{name}: {len(exchanges)} responses, {len(text)} bytes")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    klines()
    funding()
    brackets()
    exchange_info()
