"""Regenerate the recorded Bybit, OKX, Hyperliquid, dYdX and BitMEX responses (tests/data/test_fetch_*.py).

Run from the project root (needs ../shared; never run by the tests):

    .venv/bin/python tests/data/recorded/make_venues.py

Each output file ``<exchange>/<endpoint>.json`` is a JSON list of exchanges ``{"request":
{method, path, query[, body]}, "response": {status, body}}``; ``body`` is the exchange's wire
format as documented (README.md cites the page per file). Market listings come from
``venue_bodies.py``. Prices are stand-ins: the real Binance USD-M BTCUSDT 1 h candles and mark
candles of 2025-10-10..12 in ../shared (every venue listed BTC perpetuals then; the venues' own
prices differ by a few dollars), written in each venue's format; index candles reuse the mark
values (../shared holds no index candles). Funding: Binance's real 8 h rates of the window for
the 8-hourly venues (Bybit, OKX); for the hourly venues (Hyperliquid, dYdX) each hour carries
the rate of the 8 h period it falls in divided by 8 (constructed). Bybit tiers are its real
BTCUSDT risk limits (``margin/bybit_linear_risk_limits_BTCUSDT_undated.json``); the OKX tier
values are illustrative (no OKX table in ../shared).

Pages follow each venue's documented semantics for a since/until window cut at ``limit`` rows:
Bybit, OKX and dYdX answer newest-first (so a window longer than a page returns its newest
rows), Hyperliquid oldest-first (its cap is 500 funding rows / 5000 candles; here pages are cut
at 24 rows, the tests' page size, to exercise paging).
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

import venue_bodies as vb

ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("MARGINCALL_SHARED") or ROOT.parent / "shared") / "data"  # conftest convention
OUT = Path(__file__).resolve().parent
HOUR = 3_600_000
T0 = 1760054400000  # 2025-10-10T00:00Z
END = T0 + 72 * HOUR  # 2025-10-13T00:00Z
PAGE = 24
NOW = 1767225600000  # 2026-01-01T00:00Z, a response's server time


def exchange(path: str, query: dict, body: object, *, method: str = "GET", request_body: object = None) -> dict:
    request = {"method": method, "path": path, "query": {k: str(v) for k, v in query.items()}}
    if request_body is not None:
        request["body"] = request_body
    return {"request": request, "response": {"status": 200, "body": body}}


def num(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    assert float(text) == value, (value, text)
    return text


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def candles(path: str, with_volume: bool) -> list[tuple]:
    frame = pl.read_parquet(SHARED / path)
    lo, hi = (pl.lit(t).cast(pl.Datetime("ms", "UTC")) for t in (T0, END))
    frame = frame.filter((pl.col("open_time") >= lo) & (pl.col("open_time") < hi)).sort("open_time")
    assert frame.height == 72, frame.height
    # mark prices carry more decimals than a 0.1 tick: rounded to the tick, as a venue's mark is
    return [(int(r["open_time"].timestamp() * 1000), *(num(round(r[c], 1), 1) for c in ("open", "high", "low", "close")),
             num(r["volume"], 3) if with_volume else None) for r in frame.iter_rows(named=True)]


LAST = candles("klines/long/binance_um_BTCUSDT_1h_2019-09-08_2026-05-17.parquet", True)
MARK = candles("mark/binance_um_BTCUSDT_markprice_1h_2019-12-23_2026-05-17.parquet", False)


def funding_8h() -> list[tuple[int, str]]:
    frame = pl.read_parquet(SHARED / "funding/binance_um_BTCUSDT_funding_8h.parquet")
    stamps = frame.get_column("funding_time_utc").dt.epoch("ms")
    frame = frame.with_columns(stamps.alias("ms")).filter((pl.col("ms") >= T0) & (pl.col("ms") < END)).sort("ms")
    assert frame.height == 9, frame.height
    return [(int(r["ms"]), r["funding_rate_str"]) for r in frame.iter_rows(named=True)]


FUNDING_8H = funding_8h()


def funding_1h() -> list[tuple[int, str]]:
    """Hourly settlement h carries the rate of the 8 h period it falls in, divided by 8."""
    out = []
    for hour in range(72):
        ts = T0 + hour * HOUR
        period = [rate for start, rate in FUNDING_8H if start <= ts][-1]
        out.append((ts, f"{float(period) / 8:.10f}".rstrip("0").rstrip(".")))
    return out


FUNDING_1H = funding_1h()


def newest_first(rows: list, lo: int, hi: int, limit: int, *, inclusive: bool = True) -> list:
    """Rows with ``lo <= ts <= hi`` (``< hi`` unless inclusive), newest first, the newest ``limit``."""
    inside = [r for r in rows if lo <= r[0] and (r[0] <= hi if inclusive else r[0] < hi)]
    return sorted(inside, key=lambda r: -r[0])[:limit]


def write(exchange_id: str, name: str, items: list[dict]) -> None:
    folder = OUT / exchange_id
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(items, separators=(",", ":")) + "\n")


def backward_windows(lo: int, hi: int) -> list[tuple[int, int]]:
    """The [lo, hi) windows a newest-first venue is asked for: 72 rows in pages of 24."""
    return [(lo, hi), (lo, lo + 48 * HOUR), (lo, lo + 24 * HOUR)]


# --- Bybit v5 ----------------------------------------------------------------------------------
def bybit() -> None:
    def ok(result: dict) -> dict:
        return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": NOW}

    items = []
    for category, listing in vb.BYBIT_INSTRUMENTS.items():
        items.append(exchange("/v5/market/instruments-info", {"category": category, "limit": 1000},
                              ok({"category": category, "list": listing, "nextPageCursor": ""})))
        items.append(exchange("/v5/market/instruments-info", {"category": category, "limit": 1000, "status": "PreLaunch"},
                              ok({"category": category, "list": [], "nextPageCursor": ""})))
    write("bybit", "instruments-info", items)

    for name, path, rows, with_volume in (("kline", "/v5/market/kline", LAST, True),
                                          ("mark-price-kline", "/v5/market/mark-price-kline", MARK, False),
                                          ("index-price-kline", "/v5/market/index-price-kline", MARK, False)):
        items = []
        for lo, hi in backward_windows(T0, END):
            page = newest_first(rows, lo, hi - 1, PAGE)
            body_rows = [[str(r[0]), r[1], r[2], r[3], r[4]] + (
                [r[5], num(round(float(r[5]) * float(r[4]), 4), 4)] if with_volume else []) for r in page]
            items.append(exchange(path, {"symbol": "BTCUSDT", "start": lo, "limit": PAGE, "end": hi - 1,
                                         "interval": "60", "category": "linear"},
                                  ok({"symbol": "BTCUSDT", "category": "linear", "list": body_rows})))
        write("bybit", name, items)

    page = newest_first(FUNDING_8H, T0, END - 1, PAGE)
    write("bybit", "funding-history", [exchange(
        "/v5/market/funding/history",
        {"limit": PAGE, "symbol": "BTCUSDT", "category": "linear", "startTime": T0, "endTime": END - 1},
        ok({"category": "linear", "list": [{"symbol": "BTCUSDT", "fundingRate": rate,
                                            "fundingRateTimestamp": str(ts)} for ts, rate in page]}))])

    table = json.loads((SHARED / "margin/bybit_linear_risk_limits_BTCUSDT_undated.json").read_text())["tiers"]
    tiers = [{"id": t["tier"], "symbol": "BTCUSDT", "riskLimitValue": str(t["risk_limit_usdt"]),
              "maintenanceMargin": str(t["maint_margin_rate"]), "initialMargin": str(round(1 / t["max_leverage"], 6)),
              "isLowestRisk": 1 if t["tier"] == 1 else 0, "maxLeverage": f"{t['max_leverage']:.2f}",
              "mmDeduction": "" if t["mm_deduction_usdt"] == 0 else str(t["mm_deduction_usdt"])} for t in table]
    write("bybit", "risk-limit", [exchange("/v5/market/risk-limit", {"symbol": "BTCUSDT", "category": "linear"},
                                           ok({"category": "linear", "list": tiers, "nextPageCursor": ""}))])


# --- OKX v5 ------------------------------------------------------------------------------------
def okx() -> None:
    def ok(data: list) -> dict:
        return {"code": "0", "msg": "", "data": data}

    write("okx", "instruments", [exchange("/api/v5/public/instruments", {"instType": "SWAP"}, ok(vb.OKX_INSTRUMENTS))])
    for name, path, inst, rows, with_volume in (
            ("history-candles", "/api/v5/market/history-candles", "BTC-USDT-SWAP", LAST, True),
            ("history-mark-price-candles", "/api/v5/market/history-mark-price-candles", "BTC-USDT-SWAP", MARK, False),
            ("history-index-candles", "/api/v5/market/history-index-candles", "BTC-USDT", MARK, False)):
        items = []
        for lo, hi in backward_windows(T0, END):
            # before/after are exclusive bounds: (lo - 1, hi - 1) holds [lo, hi - 1)
            page = newest_first(rows, lo, hi - 1, PAGE, inclusive=False)
            body_rows = []
            for r in page:
                if with_volume:  # vol in contracts (ctVal 0.01 BTC), volCcy in BTC, volCcyQuote in USDT
                    base = float(r[5])
                    body_rows.append([str(r[0]), r[1], r[2], r[3], r[4], num(round(base * 100, 1), 1), r[5],
                                      num(round(base * float(r[4]), 4), 4), "1"])
                else:
                    body_rows.append([str(r[0]), r[1], r[2], r[3], r[4], "1"])
            items.append(exchange(path, {"instId": inst, "bar": "1H", "limit": PAGE, "before": lo - 1, "after": hi - 1},
                                  ok(body_rows)))
        write("okx", name, items)
    items = []
    for limit in (PAGE, 100):  # the tests' page size, and OKX's own (the command test)
        page = newest_first(FUNDING_8H, T0, END - 1, limit)
        items.append(exchange(
            "/api/v5/public/funding-rate-history",
            {"instId": "BTC-USDT-SWAP", "before": T0 - 1, "limit": limit, "after": END},
            ok([{"formulaType": "withRate", "fundingRate": rate, "fundingTime": str(ts), "instId": "BTC-USDT-SWAP",
                 "instType": "SWAP", "method": "current_period", "realizedRate": rate} for ts, rate in page])))
    write("okx", "funding-rate-history", items)
    tiers = [("0", "2000", "0.004", "0.008", "125"), ("2000", "4000", "0.006", "0.01", "100"),
             ("4000", "8000", "0.01", "0.02", "50"), ("8000", "16000", "0.02", "0.04", "25")]
    write("okx", "position-tiers", [exchange(
        # ccxt <= 4.5.83 names the family by `uly` (OKX accepts `uly` or `instFamily`, docs above)
        "/api/v5/public/position-tiers", {"instType": "SWAP", "tdMode": "cross", "uly": "BTC-USDT"},
        ok([{"baseMaxLoan": "", "imr": imr, "instFamily": "BTC-USDT", "instId": "", "maxLever": lever, "maxSz": hi,
             "minSz": lo, "mmr": mmr, "optMgnFactor": "0", "quoteMaxLoan": "", "tier": str(i + 1), "uly": "BTC-USDT"}
            for i, (lo, hi, mmr, imr, lever) in enumerate(tiers)]))])


# --- Hyperliquid -------------------------------------------------------------------------------
def hyperliquid() -> None:
    def post(body: dict, answer: object) -> dict:
        return exchange("/info", {}, answer, method="POST", request_body=body)

    write("hyperliquid", "info-markets", [
        post({"type": "spotMeta"}, {"tokens": [], "universe": []}),
        post({"type": "metaAndAssetCtxs"}, [vb.HYPERLIQUID_META, vb.HYPERLIQUID_CTXS]),
        post({"type": "meta"}, vb.HYPERLIQUID_META),
    ])
    items, cursor = [], T0
    while True:  # oldest-first pages cut at PAGE rows; the next request starts after the last bar
        page = [r for r in LAST if cursor <= r[0] <= END - 1][:PAGE]
        items.append(post({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "1h", "startTime": cursor,
                                                             "endTime": END - 1}},
                          [{"t": r[0], "T": r[0] + HOUR - 1, "s": "BTC", "i": "1h", "o": r[1], "c": r[4], "h": r[2],
                            "l": r[3], "v": r[5], "n": 1000 + i} for i, r in enumerate(page)]))
        if not page or page[-1][0] + HOUR >= END:
            break
        cursor = page[-1][0] + HOUR
    write("hyperliquid", "info-candleSnapshot", items)
    # settlements are stamped a few ms after the hour, as Hyperliquid does
    raw = [(ts + 31 + (i * 7) % 50, rate) for i, (ts, rate) in enumerate(FUNDING_1H)]
    items, cursor = [], T0
    while True:
        page = [r for r in raw if cursor <= r[0] <= END - 1][:PAGE]
        items.append(post({"type": "fundingHistory", "coin": "BTC", "startTime": cursor, "endTime": END - 1},
                          [{"coin": "BTC", "fundingRate": rate, "premium": "0.0001", "time": ts} for ts, rate in page]))
        if not page:
            break
        cursor = page[-1][0] + 1
    write("hyperliquid", "info-fundingHistory", items)


# --- dYdX v4 indexer ---------------------------------------------------------------------------
def dydx() -> None:
    write("dydx", "perpetualMarkets", [exchange("/v4/perpetualMarkets", {}, vb.DYDX_MARKETS)])
    items = []
    for lo, hi in backward_windows(T0, END):
        page = newest_first(LAST, lo, hi - 1, PAGE)
        items.append(exchange("/v4/candles/perpetualMarkets/BTC-USD",
                              {"fromIso": iso(lo), "limit": PAGE, "resolution": "1HOUR", "toIso": iso(hi - 1)},
                              {"candles": [{"startedAt": iso(r[0]), "ticker": "BTC-USD", "resolution": "1HOUR",
                                            "low": r[3], "high": r[2], "open": r[1], "close": r[4],
                                            "baseTokenVolume": r[5], "usdVolume": num(round(float(r[5]) * float(r[4]), 4), 4),
                                            "trades": 1000 + i, "startingOpenInterest": "1200.5",
                                            "id": f"BTC-USD-1HOUR-{r[0]}"} for i, r in enumerate(page)]}))
    write("dydx", "candles", items)
    items = []
    for lo, hi in backward_windows(T0, END):
        page = newest_first(FUNDING_1H, T0 - 100 * HOUR, hi - 1, PAGE)  # the indexer ignores since
        items.append(exchange("/v4/historicalFunding/BTC-USD",
                              {"effectiveBeforeOrAt": iso(hi - 1), "limit": PAGE, "until": hi - 1},
                              {"historicalFunding": [{"ticker": "BTC-USD", "rate": rate, "price": MARK[(ts - T0) // HOUR][4],
                                                      "effectiveAtHeight": str(50_000_000 + (ts - T0) // 1000),
                                                      "effectiveAt": iso(ts)} for ts, rate in page]}))
    write("dydx", "historicalFunding", items)


# --- BitMEX v1 ------------------------------------------------------------------------------------
def forward_windows(lo: int, hi: int) -> list[tuple[int, int]]:
    """The [lo, hi) windows an oldest-first venue is asked for: 72 rows in pages of 24."""
    return [(lo, hi), (lo + 24 * HOUR, hi), (lo + 48 * HOUR, hi)]


def bitmex() -> None:
    """BitMEX stamps a bin at its close; trade/bucketed answers oldest-first (``reverse`` false).

    XBTUSD bins: ``volume``/``foreignNotional`` in contracts (USD), ``homeNotional`` in XBT (the
    Binance base volume), ``turnover`` in XBt. The .BXBT index bins carry no volume. Funding:
    XBTUSD settles at 04:00, 12:00 and 20:00 UTC; the stand-in rates are Binance's real 8 h rates
    of the window moved 4 h later (constructed).
    """
    write("bitmex", "wallet-assets", [exchange("/api/v1/wallet/assets", {}, vb.BITMEX_ASSETS)])
    write("bitmex", "instrument-active", [exchange("/api/v1/instrument/active", {}, vb.BITMEX_INSTRUMENTS)])

    def last_bin(row: tuple) -> dict:
        home = float(row[5])
        contracts = round(home * float(row[4]))
        return {"timestamp": iso(row[0] + HOUR), "symbol": "XBTUSD", "open": float(row[1]), "high": float(row[2]),
                "low": float(row[3]), "close": float(row[4]), "trades": max(1, round(home * 3)), "volume": contracts,
                "vwap": float(row[4]), "lastSize": 100, "turnover": round(home * 1e8), "homeNotional": home,
                "foreignNotional": contracts}

    def index_bin(row: tuple) -> dict:
        return {"timestamp": iso(row[0] + HOUR), "symbol": ".BXBT", "open": float(row[1]), "high": float(row[2]),
                "low": float(row[3]), "close": float(row[4]), "trades": 0, "volume": 0, "vwap": None,
                "lastSize": None, "turnover": 0, "homeNotional": 0, "foreignNotional": 0}

    # pages of 24 (the tests' max_page), and the command's own page of 1000 (the whole window)
    items = []
    for symbol, rows, shape in (("XBTUSD", LAST, last_bin), (".BXBT", MARK, index_bin)):
        for count, windows in ((PAGE, forward_windows(T0, END)), (1000, [(T0, END)])):
            for lo, hi in windows:
                page = sorted((r for r in rows if lo <= r[0] < hi), key=lambda r: r[0])[:count]
                items.append(exchange("/api/v1/trade/bucketed", {
                    "symbol": symbol, "binSize": "1h", "partial": "false", "count": count,
                    "startTime": iso(lo + HOUR), "endTime": iso(hi)}, [shape(r) for r in page]))
    write("bitmex", "trade-bucketed", items)

    settlements = [(ts + 4 * HOUR, rate) for ts, rate in FUNDING_8H if ts + 4 * HOUR < END]
    entries = [{"timestamp": iso(ts), "symbol": "XBTUSD", "fundingInterval": "2000-01-01T08:00:00.000Z",
                "fundingRate": float(rate), "fundingRateDaily": round(float(rate) * 3, 12)} for ts, rate in settlements]
    last = settlements[-1][0]
    write("bitmex", "funding", [
        exchange("/api/v1/funding", {"symbol": "XBTUSD", "startTime": iso(start), "count": count,
                                     "endTime": iso(END - 1)}, answer)
        for count in (PAGE, 1000) for start, answer in ((T0, entries), (last + 1, []))])


if __name__ == "__main__":
    bybit()
    okx()
    hyperliquid()
    dydx()
    bitmex()
