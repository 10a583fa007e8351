"""The result of a run: frames of CONTRACTS §6, the summary, and ``write(out_dir)``."""
from __future__ import annotations

import functools
import math
import os
from datetime import datetime, timezone

from pathlib import Path
from typing import Any

import polars as pl

from backtest.metrics import CHUNK_BARS

__all__ = ["OUTPUT_TABLES", "RunResult"]

#: Parquet files a run writes, in order.
OUTPUT_TABLES = ("equity", "positions", "orders", "fills", "rejections", "funding",
                 "liquidations", "trades", "bars", "insurance_fund", "adl")


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
                 manifest: dict[str, Any], streams: dict[str, Any] | None = None,
                 bars: int = 0) -> None:
        self.summary = summary
        self.manifest = manifest
        self._builders = builders
        #: Per tuple of table names, ``stream(size)``: their rows as consecutive chunks (a
        #: tuple of frames, one per table) of at most ``size`` bars each, which :meth:`write`
        #: writes chunk by chunk, one pass per table, when the run is longer than a chunk.
        self._streams = streams or {}
        self._bars = bars
        #: Bars per chunk of a streamed table, and the length from which :meth:`write`
        #: streams: a quarter of the loop's chunk (``backtest.metrics.CHUNK_BARS``), as a
        #: chunk's tables hold ~4x its columns. The files' bytes do not depend on it
        #: (``backtest.runfolder.write_parquet``: fixed row groups).
        self.chunk_bars = CHUNK_BARS // 4
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
    insurance_fund = property(lambda self: self.frame("insurance_fund"))
    adl = property(lambda self: self.frame("adl"))

    def __repr__(self) -> str:
        s = self.summary
        return (f"RunResult(bars={s['bars']}, final_equity={s['final_equity']:.2f}, "
                f"return={s['total_return']:+.2%}, liquidations={s['n_liquidations']})")

    def write(self, out_dir: str | Path, *, overwrite: bool = False) -> Path:
        """Write the Parquet files, ``results.duckdb`` and ``manifest.json`` as one folder.

        The folder appears complete or not at all (``backtest.runfolder``): it is written
        into a temporary sibling and renamed into place; ``manifest.json`` records every
        table's rows, size and sha256 so a reader can tell a complete run.

        Parameters
        ----------
        out_dir : path
            The run folder; it must not exist yet (an empty folder is fine).
        overwrite : bool
            Replace an existing run folder (only a run folder; atomically on Linux).

        Returns
        -------
        Path
            The run folder (absolute).

        Raises
        ------
        backtest.runfolder.RunFolderError
            When the folder exists (without ``overwrite``), is not a run folder, or its
            location is not writable; nothing is written then.
        """
        from backtest.runfolder import write_run_folder

        target = Path(os.path.abspath(Path(out_dir).expanduser()))
        manifest = dict(self.manifest)
        manifest["summary"] = self.summary
        manifest["created_at"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        return write_run_folder(target, lambda tmp: self._write_tables(tmp, target),
                                _jsonable(manifest), overwrite=overwrite)

    def _write_tables(self, tmp: Path, final: Path) -> dict[str, dict[str, Any]]:
        """Write the tables into ``tmp``; the DuckDB views point at their ``final`` place."""
        import duckdb

        from backtest.runfolder import file_record, write_parquet

        files: dict[str, dict[str, Any]] = {}
        for names, stream in self._streams.items():
            # a long run's per-bar tables are built and written chunk by chunk (memory bounded
            # by a chunk); the same writer gives the bytes of the tables built whole
            if self._bars > self.chunk_bars and not any(name in self._frames for name in names):
                for k, name in enumerate(names):  # one pass per table: one file written at a time
                    path = tmp / f"{name}.parquet"
                    rows = write_parquet(path, (chunk[k] for chunk in stream(self.chunk_bars)), views=True)
                    files[path.name] = file_record(path, rows=rows)
        for name in OUTPUT_TABLES:
            path = tmp / f"{name}.parquet"
            if path.name in files:
                continue
            # one table in memory at a time: a table built only to be written is dropped once
            # written (reading it later builds it again, the same values)
            kept = name in self._frames
            frame = self.frame(name)
            files[path.name] = file_record(path, rows=write_parquet(path, [frame]))
            if not kept:
                del self._frames[name]
            del frame
        files = {f"{name}.parquet": files[f"{name}.parquet"] for name in OUTPUT_TABLES}
        con = duckdb.connect(str(tmp / "results.duckdb"))
        try:
            for name in OUTPUT_TABLES:
                # relative to the run folder, so a copied or moved run still opens
                # (backtest.runfolder.open_results sets DuckDB's file_search_path to it)
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{name}.parquet', "
                            f"allow_empty=true)")
        finally:
            con.close()
        return files


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
