"""Tiny Binance-format dump fixtures written into tmp_path (no files committed)."""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                "taker_buy_volume,taker_buy_quote_volume,ignore")
FUNDING_HEADER = "calc_time,funding_interval_hours,last_funding_rate"
AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"

T0 = 1_583_020_800_000  # 2020-03-01 00:00 UTC
MINUTE = 60_000
HOUR = 3_600_000


def kline_lines(n: int, *, start: int = T0, step: int = MINUTE, price: float = 8500.0,
                unit: str = "ms") -> list[str]:
    """``n`` kline CSV lines in Binance's 12-column format (sane OHLC, rising price)."""
    scale = 1000 if unit == "us" else 1
    lines = []
    for i in range(n):
        o = price + i
        c = o + 0.5
        ts = start + i * step
        lines.append(f"{ts * scale},{o:.1f},{c + 2:.1f},{o - 2:.1f},{c:.1f},{10 + i:.3f},"
                     f"{(ts + step - 1) * scale},{(10 + i) * o:.4f},{100 + i},5.000,{5 * o:.4f},0")
    return lines


def write_csv(path: Path, lines: list[str], header: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(([header] if header else []) + lines) + "\n"
    path.write_text(text)
    return path


def write_zip(path: Path, lines: list[str], header: str | None = None, *, member: str | None = None,
              checksum: bool = False) -> Path:
    """A zip holding one CSV named like the zip (or ``member``), optionally with a .CHECKSUM."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(([header] if header else []) + lines) + "\n"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member or path.name[:-4] + ".csv", text)
    if checksum:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        path.with_name(path.name + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
    return path
