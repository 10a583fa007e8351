"""One seeded random-walk candle file for the risk lab's sweep and CLI tests (one home)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

START_MS = 1_672_531_200_000  # 2023-01-01 UTC


def write_walk_bars(path: Path, *, seed: int, n: int, start: float, sigma: float, high_factor: float,
                    low_factor: float, step_ms: int = 3_600_000, volume: float = 1_000.0) -> Path:
    """Write ``n`` candles of a seeded log-normal walk (mark = last) to ``path`` (Parquet).

    ``close`` is ``start * exp(cumsum(N(0, sigma)))``, each open the previous close, the high
    and low the candle's body times ``high_factor`` / ``low_factor``; ``ts`` UTC from 2023-01-01
    every ``step_ms``.
    """
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0, sigma, n)))
    open_ = np.r_[start, close[:-1]]
    high, low = np.maximum(open_, close) * high_factor, np.minimum(open_, close) * low_factor
    ts = pl.Series("ts", np.arange(n, dtype=np.int64) * step_ms + START_MS).cast(pl.Datetime("ms", "UTC"))
    pl.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close,
                  "volume": np.full(n, volume), "mark_open": open_, "mark_high": high, "mark_low": low,
                  "mark_close": close}).write_parquet(path)
    return path
