"""Malformed files for every importer (Binance dumps as CSV and zip with their .CHECKSUM,
generic CSV/Parquet, tier and market JSON), for ``--crashes`` and for ``sweep --data``.

Each importer gets the same systematic damage (empty, truncated, binary garbage, wrong
columns, UTF-16, UTF-8 BOM, non-finite numbers) plus the zip and JSON specific cases the issue
names (encrypted or unsupported members, empty or binary .CHECKSUM, deeply nested JSON).
"""
from __future__ import annotations

import io
import json
import random
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl

from tests.fuzz.harness import RISK, STORE, STRATEGY, Case

T0 = 1_710_028_800_000  # 2024-03-10 00:00 UTC: after the template store's data
HOUR = 3_600_000


def kline_rows(n: int = 24, *, volume: str = "12.5", close: str | None = None) -> list[list[str]]:
    rows = []
    for i in range(n):
        ts = T0 + i * HOUR
        c = close if close is not None and i == n // 2 else "60100.0"
        rows.append([str(ts), "60000.0", "60500.0", "59500.0", c, volume if i == n // 2 else "12.5",
                     str(ts + HOUR - 1), "750000.0", "100", "6.0", "360000.0", "0"])
    return rows


KLINE_HEADER = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
                "taker_buy_volume", "taker_buy_quote_volume", "ignore"]
FUNDING_HEADER = ["calc_time", "funding_interval_hours", "last_funding_rate"]
AGG_HEADER = ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
              "is_buyer_maker"]


def funding_rows(n: int = 9, *, interval: str = "8", rate: str = "0.0001") -> list[list[str]]:
    return [[str(T0 + i * 8 * HOUR), interval if i == n // 2 else "8", rate if i == n // 2 else "0.0001"]
            for i in range(n)]


def agg_rows(n: int = 20, *, qty: str = "0.5") -> list[list[str]]:
    return [[str(1000 + i), "60000.0", qty if i == n // 2 else "0.5", str(2000 + i), str(2000 + i),
             str(T0 + i * 1000), "true" if i % 2 else "false"] for i in range(n)]


def csv_text(header: list[str] | None, rows: list[list[str]]) -> str:
    lines = ([",".join(header)] if header else []) + [",".join(r) for r in rows]
    return "\n".join(lines) + "\n"


#: name -> (file name, header, rows builder, extra import flags)
DUMPS: dict[str, tuple[str, list[str], Callable[..., list[list[str]]]]] = {
    "klines": ("BTCUSDT-1h-2024-03-10", KLINE_HEADER, kline_rows),
    "funding": ("BTCUSDT-fundingRate-2024-03", FUNDING_HEADER, funding_rows),
    "aggtrades": ("BTCUSDT-aggTrades-2024-03-10", AGG_HEADER, agg_rows),
}
GENERIC_FLAGS = ("--dataset", "ohlcv", "--symbol", "BTC/USDT:USDT", "--timeframe", "1h")


def writer(name: str, data: bytes | str | Callable[[Path], None]) -> Callable[[Path], Path]:
    """A ``make`` that writes ``data`` (bytes, text or a function of the path) to ``tmp/in/name``."""
    def make(tmp: Path) -> Path:
        folder = tmp / "in"
        folder.mkdir(exist_ok=True)
        path = folder / name
        if callable(data):
            data(path)
        elif isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        return path
    return make


def garbage(n: int = 4096, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def encodings(header: list[str], rows: list[list[str]]) -> dict[str, bytes]:
    """A valid CSV text in encodings an importer may either read correctly or refuse clearly."""
    good = csv_text(header, rows)
    return {"bom": b"\xef\xbb\xbf" + good.encode(), "utf16": good.encode("utf-16"),
            "utf16-be": good.encode("utf-16-be"), "latin1-crlf": good.replace("\n", "\r\n").encode("latin-1")}


def damaged_texts(header: list[str], rows: list[list[str]], *, fixed_columns: bool = True) -> dict[str, bytes]:
    """The systematic damage to one valid CSV text (``fixed_columns``: an extra column is an error)."""
    good = csv_text(header, rows)
    other_header = FUNDING_HEADER if header != FUNDING_HEADER else KLINE_HEADER
    damage = {
        "empty": b"",
        "header-only": csv_text(header, []).encode(),
        "truncated": good.encode()[: len(good) // 2],
        "binary": garbage(),
        "nul-bytes": good.encode().replace(b",", b"\x00", 5),
        "wrong-columns": csv_text(other_header, [["1"] * len(other_header)] * 3).encode(),
        "missing-column": csv_text(header[:-2], [r[:-2] for r in rows]).encode(),
        # the first three values of the second column (a number in every format) become text
        "text-in-numbers": csv_text(header, [[*r[:1], "abc", *r[2:]] if i < 3 else r
                                             for i, r in enumerate(rows)]).encode(),
        "seconds-timestamps": csv_text(header, [[str(int(r[0]) // 1000 if r[0].isdigit() else r[0]), *r[1:]]
                                                for r in rows]).encode(),
    }
    if fixed_columns:
        damage["extra-column"] = csv_text([*header, "extra"], [[*r, "1"] for r in rows]).encode()
    return damage


def zipped(member: str, data: bytes, *, encrypted: bool = False, method: int | None = None,
           extra_member: bool = False) -> bytes:
    """A zip of ``data`` named ``member``; optionally flagged encrypted or with an unsupported
    compression method (patched into the headers: zipfile cannot write either)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, data)
        if extra_member:
            archive.writestr("README.txt", b"hello")
    raw = bytearray(buffer.getvalue())
    if encrypted or method is not None:
        for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
            at = raw.find(signature)
            while at != -1:
                if encrypted:
                    flags = struct.unpack_from("<H", raw, at + flag_at)[0] | 0x1
                    struct.pack_into("<H", raw, at + flag_at, flags)
                if method is not None:
                    struct.pack_into("<H", raw, at + method_at, method)
                at = raw.find(signature, at + 4)
    return bytes(raw)


def dump_cases() -> list[Case]:
    cases = []
    for kind, (stem, header, rows) in DUMPS.items():
        for damage, data in damaged_texts(header, rows()).items():
            name = f"{stem}.csv"
            cases.append(Case(f"import-{kind}-csv-{damage}", ("data", "import", "{file}", "--store", "{store}"),
                              name, STORE, make=writer(name, data)))
            if damage in ("truncated", "binary", "wrong-columns", "empty"):
                zname = f"{stem}.zip"
                cases.append(Case(f"import-{kind}-zip-of-{damage}", ("data", "import", "{file}", "--store", "{store}"),
                                  zname, STORE, make=writer(zname, zipped(f"{stem}.csv", data))))
        good = csv_text(header, rows()).encode()
        zname = f"{stem}.zip"
        zip_bytes = zipped(f"{stem}.csv", good)
        variants = {
            "encrypted-member": zipped(f"{stem}.csv", good, encrypted=True),
            "unsupported-compression": zipped(f"{stem}.csv", good, method=99),
            "lzma-unknown-method": zipped(f"{stem}.csv", good, method=97),
            "wrong-member-name": zipped("data.csv", good),
            "two-members": zipped(f"{stem}.csv", good, extra_member=True),
            "truncated-zip": zip_bytes[: len(zip_bytes) // 2],
            "garbage-zip": garbage(seed=1),
            "empty-zip": b"",
            "corrupt-deflate": zip_bytes[:40] + garbage(60, seed=2) + zip_bytes[100:],
        }
        for variant, data in variants.items():
            cases.append(Case(f"import-{kind}-{variant}", ("data", "import", "{file}", "--store", "{store}"),
                              zname, STORE, make=writer(zname, data)))
        for variant, checksum in {"empty": b"", "binary": garbage(64, seed=3), "whitespace": b"  \n\n",
                                  "utf16": "0" * 64 + "  " + zname + "\n"}.items():
            data = checksum.encode("utf-16") if isinstance(checksum, str) else checksum

            def make(tmp: Path, zip_bytes=zip_bytes, data=data, zname=zname) -> Path:
                path = writer(zname, zip_bytes)(tmp)
                path.with_name(zname + ".CHECKSUM").write_bytes(data)
                return path

            cases.append(Case(f"import-{kind}-checksum-{variant}", ("data", "import", "{file}", "--store", "{store}"),
                              "CHECKSUM", STORE, make=make))
    # non-finite and impossible numbers (silently stored today)
    numbers = {
        "klines-volume-inf": ("klines", kline_rows(volume="inf")),
        "klines-volume-nan": ("klines", kline_rows(volume="NaN")),
        "klines-volume-negative": ("klines", kline_rows(volume="-5")),
        "klines-close-inf": ("klines", kline_rows(close="inf")),
        "funding-interval-inf": ("funding", funding_rows(interval="inf")),
        "funding-interval-zero": ("funding", funding_rows(interval="0")),
        "funding-rate-nan": ("funding", funding_rows(rate="nan")),
        "aggtrades-qty-inf": ("aggtrades", agg_rows(qty="inf")),
    }
    for case_id, (kind, rows_) in numbers.items():
        stem, header, _ = DUMPS[kind]
        name = f"{stem}.csv"
        cases.append(Case(f"import-{case_id}", ("data", "import", "{file}", "--store", "{store}"), name, STORE,
                          make=writer(name, csv_text(header, rows_))))
    return cases


def generic_frame() -> pl.DataFrame:
    return pl.DataFrame({"ts": [T0 + i * HOUR for i in range(24)], "open": [60000.0] * 24, "high": [60500.0] * 24,
                         "low": [59500.0] * 24, "close": [60100.0] * 24, "volume": [12.5] * 24})


def generic_cases() -> list[Case]:
    cases = []
    frame = generic_frame()
    header = frame.columns
    rows = [[str(v) for v in row] for row in frame.iter_rows()]
    argv = ("data", "import", "{file}", "--store", "{store}", *GENERIC_FLAGS)
    for damage, data in damaged_texts(header, rows, fixed_columns=False).items():
        cases.append(Case(f"import-generic-csv-{damage}", argv, "generic.csv", STORE, make=writer("generic.csv", data)))
    for column, value in (("volume", float("inf")), ("volume", float("nan")), ("close", float("inf")),
                          ("close", float("nan")), ("close", -1.0)):
        bad = frame.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(value).otherwise(pl.col(column))
                                 .alias(column))
        label = f"{column}-{value}".replace(".0", "")
        cases.append(Case(f"import-generic-parquet-{label}", argv, "generic.parquet", STORE,
                          make=writer("generic.parquet", lambda p, bad=bad: bad.write_parquet(p))))
        cases.append(Case(f"import-generic-csv-{label}", argv, "generic.csv", STORE,
                          make=writer("generic.csv", lambda p, bad=bad: bad.write_csv(p))))
    good_parquet = io.BytesIO()
    frame.write_parquet(good_parquet)
    parquet = good_parquet.getvalue()
    for damage, data in {"empty": b"", "truncated": parquet[: len(parquet) // 2], "binary": garbage(seed=4),
                         "csv-named-parquet": csv_text(header, rows).encode()}.items():
        cases.append(Case(f"import-generic-parquet-{damage}", argv, "generic.parquet", STORE,
                          make=writer("generic.parquet", data)))
    wrong_types = frame.with_columns(pl.col("close").cast(pl.String) + "x")
    cases.append(Case("import-generic-parquet-text-close", argv, "generic.parquet", STORE,
                      make=writer("generic.parquet", lambda p: wrong_types.write_parquet(p))))
    cases.append(Case("import-generic-parquet-no-ts", argv, "generic.parquet", STORE,
                      make=writer("generic.parquet", lambda p: frame.drop("ts").write_parquet(p))))
    return cases


def _tiers_ccxt() -> dict:
    return {"BTC/USDT:USDT": [
        {"tier": 1, "currency": "USDT", "minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004,
         "maxLeverage": 125, "info": {"cum": "0"}},
        {"tier": 2, "currency": "USDT", "minNotional": 50000, "maxNotional": 250000,
         "maintenanceMarginRate": 0.005, "maxLeverage": 100, "info": {"cum": "50"}}]}


def json_cases() -> list[Case]:
    cases = []
    tiers_argv = ("data", "import", "{file}", "--store", "{store}", "--kind", "tiers", "--effective-from", "2024-03-10")
    markets_argv = ("data", "import", "{file}", "--store", "{store}", "--kind", "markets",
                    "--effective-from", "2024-03-10")
    nested = "[" * 100_000 + "]" * 100_000
    generic_damage = {
        "empty": b"", "binary": garbage(seed=5), "truncated": json.dumps(_tiers_ccxt()).encode()[:60],
        "deeply-nested": nested.encode(), "deeply-nested-objects": ('{"a":' * 50_000 + "1" + "}" * 50_000).encode(),
        "utf16": json.dumps(_tiers_ccxt()).encode("utf-16"), "bom": b"\xef\xbb\xbf" + json.dumps(_tiers_ccxt()).encode(),
        "a-number": b"5", "a-string": b'"abc"', "null": b"null", "empty-object": b"{}", "empty-list": b"[]",
    }
    for damage, data in generic_damage.items():
        cases.append(Case(f"import-tiers-{damage}", tiers_argv, "tiers.json", STORE, make=writer("tiers.json", data)))
        cases.append(Case(f"import-markets-{damage}", markets_argv, "markets.json", STORE,
                          make=writer("markets.json", data)))

    def tiers_with(**changes) -> bytes:
        data = _tiers_ccxt()
        data["BTC/USDT:USDT"][1].update(changes)
        return json.dumps(data).encode()

    for label, data in {
        "overlapping-brackets": tiers_with(minNotional=10_000),
        "leverage-abc": tiers_with(maxLeverage="abc"),
        "leverage-zero": tiers_with(maxLeverage=0),
        "mmr-negative": tiers_with(maintenanceMarginRate=-0.1),
        "mmr-above-one": tiers_with(maintenanceMarginRate=1.5),
        "cap-below-floor": tiers_with(maxNotional=1000),
        "tier-missing-field": json.dumps({"BTC/USDT:USDT": [{"tier": 1, "minNotional": 0}]}).encode(),
    }.items():
        cases.append(Case(f"import-tiers-{label}", tiers_argv, "tiers.json", STORE, make=writer("tiers.json", data)))
    # tiers without the date a snapshot needs, and a ccxt snapshot with an unreal date
    cases.append(Case("import-tiers-effective-from-abc", (*tiers_argv[:-1], "abc"), "--effective-from", STORE,
                      found="abc", make=writer("tiers.json", json.dumps(_tiers_ccxt()).encode())))
    return cases


def other_file_cases() -> list[Case]:
    """Files other commands read: ``replay --crashes`` and ``sweep --data``."""
    cases = []
    replay = ("replay", "--store", "{store}", "--crashes", "{file}", "--crash", "all", "--leverage", "5")
    crash = ('[[crash]]\nname = "x"\ntitle = "x"\nstart = 2024-03-04T00:00:00Z\nend = 2024-03-05T00:00:00Z\n'
             'symbols = ["BTC/USDT:USDT"]\ntimeframe = "1h"\ndescription = "x"\n')
    for label, text in {
        "empty": "", "binary": garbage(seed=6), "not-toml": "[[crash]\nname=",
        "reversed-window": crash.replace("2024-03-04T", "2024-03-09T"),
        "symbols-number": crash.replace('["BTC/USDT:USDT"]', "5"),
        "timeframe-empty": crash.replace('"1h"', '""'),
        "name-empty": crash.replace('name = "x"', 'name = ""'),
        "start-string": crash.replace("start = 2024-03-04T00:00:00Z", 'start = "yesterday"'),
    }.items():
        cases.append(Case(f"replay-crashes-{label}", replay, "crashes-fuzz.toml", RISK,
                          make=writer("crashes-fuzz.toml", text)))
    sweep = ("sweep", "--data", "{file}", "--symbol", "BTC/USDT:USDT", "--timeframe", "1h", "--strategy", "hold",
             "--leverage", "2", "--workers", "1", "--out", "{tmp}/sweep")
    for label, data in {"empty": b"", "binary": garbage(seed=7), "csv": b"ts,close\n1,2\n"}.items():
        cases.append(Case(f"sweep-data-{label}", sweep, "bars.parquet", STRATEGY, make=writer("bars.parquet", data)))
    cases.append(Case("sweep-data-wrong-columns", sweep, "bars.parquet", STRATEGY,
                      make=writer("bars.parquet", lambda p: generic_frame().drop("high").write_parquet(p))))
    return cases


def cases() -> list[Case]:
    return [*dump_cases(), *generic_cases(), *json_cases(), *other_file_cases()]


#: Importers for the encoding cases: (label, file name, header, rows, extra flags, what to read back)
ENCODED_IMPORTS = [
    ("klines", "BTCUSDT-1h-2024-03-10.csv", KLINE_HEADER, kline_rows(), (),
     {"dataset": "ohlcv", "timeframe": "1h", "price_type": "last"}),
    ("funding", "BTCUSDT-fundingRate-2024-03.csv", FUNDING_HEADER, funding_rows(), (), {"dataset": "funding"}),
    ("aggtrades", "BTCUSDT-aggTrades-2024-03-10.csv", AGG_HEADER, agg_rows(), (), {"dataset": "trades"}),
    ("generic", "generic.csv", generic_frame().columns,
     [[str(v) for v in row] for row in generic_frame().iter_rows()], GENERIC_FLAGS,
     {"dataset": "ohlcv", "timeframe": "1h", "price_type": "last"}),
]
