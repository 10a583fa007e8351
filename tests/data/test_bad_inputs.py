"""Malformed files get a clear error and leave the store byte-for-byte unchanged (issue 9).

Each case is a small generated file imported through `margincall data import`; every case
must exit 1 with no traceback, name the file, and not change the store. A few cases are
accepted instead (BOM / UTF-16 CSVs are decoded) and checked for their rows.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from data_loaders.store import MarketStore
from tests.data.dumps import FUNDING_HEADER, HOUR, KLINE_HEADER, T0, kline_lines, write_zip
from tests.data.trust_helpers import SYM, data_cli, folder_hash, seeded_store


def _csv_text(n: int = 24) -> str:
    return "\n".join([KLINE_HEADER, *kline_lines(n, step=HOUR, start=T0 + 48 * HOUR)]) + "\n"


def _encrypted_zip(path: Path) -> Path:
    """A zip whose member has the 'encrypted' flag set (as written by zip -e; content irrelevant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(path.name[:-4] + ".csv", _csv_text())
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers
        at = data.find(signature)
        data[at + offset] |= 0x1
    path.write_bytes(bytes(data))
    return path


def _unsupported_zip(path: Path) -> Path:
    """A zip whose member claims compression method 9 (deflate64), which zipfile cannot read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(path.name[:-4] + ".csv", _csv_text())
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = data.find(signature)
        data[at + offset] = 9
    path.write_bytes(bytes(data))
    return path


def _with_checksum(content: bytes):
    def make(path: Path) -> Path:
        write_zip(path, kline_lines(24, step=HOUR, start=T0 + 48 * HOUR), KLINE_HEADER)
        path.with_name(path.name + ".CHECKSUM").write_bytes(content)
        return path
    return make


def _text(name: str, content: str | bytes):
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path
    return make


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _funding_inf(tmp: Path) -> Path:
    path = tmp / "fundingRate" / "BTCUSDT-fundingRate-2020-03.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{FUNDING_HEADER}\n{T0 + 48 * HOUR},8,0.0001\n{T0 + 56 * HOUR},inf,0.0001\n")
    return path


def _volume(value: str):
    def make(tmp: Path) -> Path:
        lines = kline_lines(3, step=HOUR, start=T0 + 48 * HOUR)
        fields = lines[1].split(",")
        fields[5] = value
        lines[1] = ",".join(fields)
        path = tmp / "klines" / "BTCUSDT-1h-2020-03.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([KLINE_HEADER, *lines]) + "\n")
        return path
    return make


# (id, file maker, extra CLI args, a fragment the message must contain)
REFUSED = [
    ("encrypted-zip", lambda t: _encrypted_zip(t / "klines" / "BTCUSDT-1h-2020-03.zip"), [], "encrypted"),
    ("unsupported-zip", lambda t: _unsupported_zip(t / "klines" / "BTCUSDT-1h-2020-03.zip"), [], "compression"),
    ("empty-checksum", lambda t: _with_checksum(b"")(t / "klines" / "BTCUSDT-1h-2020-03.zip"), [], "empty file"),
    ("binary-checksum", lambda t: _with_checksum(b"\xff\xfe\x00\x81" * 20)(t / "klines" / "BTCUSDT-1h-2020-03.zip"),
     [], "64 hex digits"),
    ("truncated-zip", _text("klines/BTCUSDT-1h-2020-03.zip", b"PK\x03\x04garbage"), [], "not readable"),
    ("binary-csv", _text("klines/BTCUSDT-1h-2020-03.csv", b"\x00\x9f\x92\x96" * 50), [], "expected"),
    ("funding-inf", _funding_inf, [], "interval_hours"),
    ("volume-inf", _volume("inf"), [], "volume"),
    ("volume-nan", _volume("NaN"), [], "volume"),
    ("deep-json-tiers", _text("tiers.json", _nested(100_000)), ["--effective-from", "2022-01-01"], "nested too deeply"),
    ("deep-json-markets", _text("markets.json", '{"symbols": ' + _nested(100_000) + "}"), [], "nested too deeply"),
    ("invalid-json", _text("tiers.json", '{"versions": [1, 2'), [], "invalid JSON"),
    ("tiers-wrong-types", _text("tiers.json", json.dumps([{"symbol": "BTCUSDT", "brackets": [{"bracket": "x"}]}])),
     ["--effective-from", "2022-01-01"], "tiers.json"),
    ("tiers-brackets-not-list", _text("tiers.json", json.dumps({"versions": [{"snapshot_commit_date": "nope",
                                                                             "symbols": 5}]})), [], "tiers.json"),
    ("markets-bad-values", _text("markets.json", json.dumps({"serverTime": 1, "symbols": [
        {"symbol": "BTCUSDT", "filters": "abc", "contractType": "PERPETUAL"}]})), [], "markets.json"),
    ("generic-parquet-garbage", _text("BTCUSDT_1h.parquet", b"PAR1" + b"\x00" * 40 + b"PAR1"), [], "Parquet"),
    ("generic-csv-text-prices", _text("BTCUSDT_x.csv", "open_time,open,high,low,close,volume\n"
                                      f"{T0},a,b,c,d,e\n{T0 + HOUR},a,b,c,d,e\n"), ["--dataset", "ohlcv"], "BTCUSDT_x.csv"),
    ("empty-csv", _text("klines/BTCUSDT-1h-2020-03.csv", ""), [], "empty"),
]
EMPTY_NAMES = [("--timeframe", ""), ("--symbol", ""), ("--exchange", " "), ("--price-type", ""), ("--kind", ""),
               ("--dataset", ""), ("--effective-from", "")]


@pytest.mark.parametrize("case_id,make,args,fragment", REFUSED, ids=[c[0] for c in REFUSED])
def test_malformed_file_is_refused_cleanly(tmp_path: Path, case_id: str, make, args: list[str], fragment: str) -> None:
    root = seeded_store(tmp_path)
    before = folder_hash(root)
    path = make(tmp_path / "in")
    result = data_cli()("import", "--store", root, *args, path)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    flat = " ".join(result.output.split())
    assert path.name in flat and "expected" in flat and fragment in flat, flat
    assert folder_hash(root) == before


@pytest.mark.parametrize("flag,value", EMPTY_NAMES, ids=[f for f, _ in EMPTY_NAMES])
def test_empty_names_are_refused(tmp_path: Path, flag: str, value: str) -> None:
    root = seeded_store(tmp_path)
    before = folder_hash(root)
    path = write_zip(tmp_path / "in" / "klines" / "BTCUSDT-1h-2020-03.zip",
                     kline_lines(3, step=HOUR, start=T0 + 48 * HOUR), KLINE_HEADER)
    result = data_cli()("import", "--store", root, flag, value, path)
    assert result.exit_code == 2 and "empty string" in result.output and flag in result.output
    assert folder_hash(root) == before


@pytest.mark.parametrize("encoding,bom", [("utf-8", b"\xef\xbb\xbf"), ("utf-16-le", b"\xff\xfe"),
                                          ("utf-16-be", b"\xfe\xff")])
@pytest.mark.parametrize("kind", ["dump", "generic"])
def test_bom_and_utf16_csv_are_decoded(tmp_path: Path, encoding: str, bom: bytes, kind: str) -> None:
    root = seeded_store(tmp_path)
    if kind == "dump":
        path = tmp_path / "in" / "klines" / "BTCUSDT-1h-2020-03.csv"
        text = _csv_text()
    else:
        path = tmp_path / "in" / "BTCUSDT_export.csv"
        text = "open_time,open,high,low,close,volume\n" + "".join(
            f"{T0 + (48 + i) * HOUR},{100 + i},{102 + i},{99 + i},{101 + i},{5 + i}\n" for i in range(24))
    path.parent.mkdir(parents=True)
    path.write_bytes(bom + text.encode(encoding))
    result = data_cli()("import", "--store", root, *(["--dataset", "ohlcv"] if kind == "generic" else []), path)
    assert result.exit_code == 0, result.output
    frame = MarketStore(root).read("ohlcv", exchange="binanceusdm", symbol=SYM, timeframe="1h")
    assert frame.height == 72  # 48 seeded + 24 decoded rows


def test_binary_checksum_does_not_stop_the_zip_from_being_named(tmp_path: Path) -> None:
    """The refusal names the .CHECKSUM file (the actual culprit), not only the zip."""
    root = seeded_store(tmp_path)
    path = _with_checksum(b"")(tmp_path / "in" / "klines" / "BTCUSDT-1h-2020-03.zip")
    result = data_cli()("import", "--store", root, path)
    assert "BTCUSDT-1h-2020-03.zip.CHECKSUM" in " ".join(result.output.split())
