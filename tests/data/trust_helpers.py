"""Helpers for the data-trust tests: a CLI runner, a folder hash, and small generated files."""
from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import typer
from typer.testing import CliRunner

from backtest.cli.data import register
from tests.data.dumps import HOUR, KLINE_HEADER, T0, kline_lines, write_zip

SYM = "BTC/USDT:USDT"


def folder_hash(root: Path) -> str:
    """SHA-256 over every file's relative path and bytes (the store byte for byte)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def data_cli():
    """``run(*args)`` invoking ``margincall data ...`` in process (exceptions are kept, not raised)."""
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """test root"""

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["data", *map(str, args)], env={"COLUMNS": "250"})


def seeded_store(tmp_path: Path) -> Path:
    """A store holding 48 hourly last-price BTC candles (2020-03-01 .. 03-02), via the CLI path."""
    from data_loaders.binance_dump import import_dump
    from data_loaders.store import MarketStore

    root = tmp_path / "store"
    dump = write_zip(tmp_path / "seed" / "klines" / "BTCUSDT-1h-2020-03.zip", kline_lines(48, step=HOUR), KLINE_HEADER)
    import_dump(MarketStore(root), dump)
    return root


def mark_frame(n: int = 48) -> pl.DataFrame:
    """Mark-price candles in the shape of /work/shared/data/mark (no volume column)."""
    return pl.DataFrame({
        "open_time": pl.Series([T0 + i * HOUR for i in range(n)]).cast(pl.Datetime("ms", "UTC")),
        "open": [8400.0 + i for i in range(n)], "high": [8405.0 + i for i in range(n)],
        "low": [8395.0 + i for i in range(n)], "close": [8401.0 + i for i in range(n)],
    })
