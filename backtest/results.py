"""The result of a run: frames of CONTRACTS §6, the summary, and ``write(out_dir)``."""
from __future__ import annotations

import functools
import json
import math
from datetime import datetime, timezone

from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["OUTPUT_TABLES", "RunResult"]

#: Parquet files a run writes, in order.
OUTPUT_TABLES = ("equity", "positions", "orders", "fills", "rejections", "funding",
                 "liquidations", "trades", "bars")


class RunResult:
    """Frames, summary and provenance of one finished run.

    Attributes
    ----------
    summary : dict
        CONTRACTS §6 summary keys plus ``attribution``.
    equity, fills, orders, rejections, funding, liquidations, positions, trades : DataFrame
        CONTRACTS §6 columns (built on first access, then cached).
    manifest : dict
        Everything ``manifest.json`` holds except ``created_at``.
    """

    def __init__(self, *, summary: dict[str, Any], builders: dict[str, Any],
                 manifest: dict[str, Any]) -> None:
        self.summary = summary
        self.manifest = manifest
        self._builders = builders
        self._frames: dict[str, pl.DataFrame] = {}

    def frame(self, name: str) -> pl.DataFrame:
        """One output table by name (see :data:`OUTPUT_TABLES`)."""
        if name not in self._frames:
            if name not in self._builders:
                raise KeyError(f"RunResult: no table {name!r}; tables are {', '.join(OUTPUT_TABLES)}")
            self._frames[name] = self._builders[name]()
        return self._frames[name]

    equity = property(lambda self: self.frame("equity"))
    positions = property(lambda self: self.frame("positions"))
    orders = property(lambda self: self.frame("orders"))
    fills = property(lambda self: self.frame("fills"))
    rejections = property(lambda self: self.frame("rejections"))
    funding = property(lambda self: self.frame("funding"))
    liquidations = property(lambda self: self.frame("liquidations"))
    trades = property(lambda self: self.frame("trades"))

    def __repr__(self) -> str:
        s = self.summary
        return (f"RunResult(bars={s['bars']}, final_equity={s['final_equity']:.2f}, "
                f"return={s['total_return']:+.2%}, liquidations={s['n_liquidations']})")

    def write(self, out_dir: str | Path) -> Path:
        """Write the Parquet files, ``manifest.json`` and ``results.duckdb`` into ``out_dir``.

        Returns
        -------
        Path
            The output folder (created if needed).
        """
        import duckdb

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name in OUTPUT_TABLES:
            self.frame(name).write_parquet(out / f"{name}.parquet")
        manifest = dict(self.manifest)
        manifest["summary"] = self.summary
        manifest["created_at"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        (out / "manifest.json").write_text(json.dumps(_jsonable(manifest), indent=1, sort_keys=False))
        db_path = out / "results.duckdb"
        if db_path.exists():
            db_path.unlink()
        con = duckdb.connect(str(db_path))
        try:
            for name in OUTPUT_TABLES:
                path = str((out / f"{name}.parquet").resolve()).replace("'", "''")
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
        finally:
            con.close()
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return repr(value)


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape results (a fresh dict per call)."""
    return dict(_package_versions())


@functools.lru_cache(maxsize=1)
def _package_versions() -> tuple[tuple[str, str], ...]:
    # installed versions do not change within a process; metadata lookups cost ~10 ms a run
    from importlib import metadata

    out = {}
    for name in ("margincall", "polars", "numpy", "pyarrow", "duckdb"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return tuple(out.items())
