"""Fitted Monte Carlo models are cached under the store and refitted when the data changes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.risk.garch import GarchT
from backtest.risk.model_cache import CACHE_DIR, ModelCache, cache_key
from backtest.risk.models import MODEL_NAMES, fit_model_cached
from backtest.risk.paths import ReturnSample
from data_loaders.store import MarketStore

HOUR = 3_600_000
SYMBOL = "BTC/USDT:USDT"
START_MS = 1_704_067_200_000  # 2024-01-01 UTC


def _bars(n: int = 3_000, seed: int = 5) -> pl.DataFrame:
    """Hourly candles of a GARCH-t path (consistent OHLC: wicks from the simulated extremes)."""
    model = GarchT(mu=0.0, omega=2e-6, alpha=0.08, beta=0.9, nu=5.0, step_ms=HOUR)
    paths = model.simulate(np.random.default_rng(seed), n_paths=1, n_steps=n, s0=40_000.0)
    close = np.round(np.exp(paths.log_close[0][1:]), 1)
    open_ = np.round(np.exp(paths.log_close[0][:-1]), 1)
    high = np.maximum(np.round(np.exp(paths.log_high[0]), 1), np.maximum(open_, close))
    low = np.minimum(np.round(np.exp(paths.log_low[0]), 1), np.minimum(open_, close))
    return pl.DataFrame({"ts": START_MS + np.arange(n, dtype=np.int64) * HOUR, "open": open_, "high": high,
                         "low": low, "close": close, "volume": np.full(n, 10.0)})


def _sample(bars: pl.DataFrame) -> ReturnSample:
    return ReturnSample.from_bars(bars.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC"))))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_cached_fit_is_the_fit(name: str, tmp_path: Path):
    sample = _sample(_bars())
    cache = ModelCache(tmp_path / "models")
    first = fit_model_cached(name, sample, cache=cache, partitions=["p:abc"])
    second = fit_model_cached(name, sample, cache=cache, partitions=["p:abc"])
    assert (first.cached, second.cached) == (False, True)
    assert second.model.describe() == first.model.describe()
    a = first.model.simulate(np.random.default_rng(1), n_paths=20, n_steps=50, s0=100.0)
    b = second.model.simulate(np.random.default_rng(1), n_paths=20, n_steps=50, s0=100.0)
    assert np.array_equal(a.log_close, b.log_close) and np.array_equal(a.log_low, b.log_low)
    assert len(list(cache.root.glob("*.json"))) == 1
    assert not list(cache.root.glob("*.tmp")) and not list(cache.root.glob(".*"))  # written atomically


def test_the_key_follows_the_data_the_window_and_the_model():
    bars = _bars()
    sample = _sample(bars)
    key = cache_key("garch", sample, partitions=["ohlcv:aaa"])
    assert cache_key("garch", sample, partitions=["ohlcv:aaa"]) == key
    assert cache_key("garch", sample, partitions=["ohlcv:bbb"]) != key  # a partition's checksum changed
    assert cache_key("jump", sample, partitions=["ohlcv:aaa"]) != key
    assert cache_key("garch", _sample(bars.head(2_000)), partitions=["ohlcv:aaa"]) != key  # another window
    nudged = bars.with_columns(pl.when(pl.col("ts") == START_MS + 100 * HOUR).then(pl.col("close") + 0.1)
                               .otherwise(pl.col("close")).alias("close"))
    assert cache_key("garch", _sample(nudged), partitions=["ohlcv:aaa"]) != key  # same files, other numbers


def test_a_damaged_entry_is_refitted_and_rewritten(tmp_path: Path):
    sample = _sample(_bars())
    cache = ModelCache(tmp_path)
    first = fit_model_cached("bootstrap", sample, cache=cache)
    (entry,) = tmp_path.glob("*.json")
    entry.write_text('{"key": "trunc')  # a file cut short by hand or a full disk
    again = fit_model_cached("bootstrap", sample, cache=cache)
    assert not again.cached and again.model.describe() == first.model.describe()
    assert json.loads(entry.read_text())["params"]["block_length"] == first.model.block_length


def _store(root: Path, bars: pl.DataFrame, *, replace: bool = False) -> None:
    MarketStore(root).write("ohlcv", bars.with_columns(exchange=pl.lit("binanceusdm"), symbol=pl.lit(SYMBOL),
                                                       timeframe=pl.lit("1h"), price_type=pl.lit("last")),
                            source="test", replace=replace)


def _mc(root: Path, model: str = "garch") -> str:
    result = CliRunner().invoke(build_app(), ["mc", "--timeframe", "1h", "--price", "last", "--model", model,
                                              "--leverage", "5,50", "--horizon", "6", "--paths", "300",
                                              "--store", str(root)], catch_exceptions=False,
                                env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_mc_reuses_the_stored_fit_and_refits_when_a_partition_changes(tmp_path: Path):
    root = tmp_path / "store"
    bars = _bars()
    _store(root, bars)
    first = _mc(root)
    entries = list((root / CACHE_DIR).glob("*.json"))
    assert len(entries) == 1
    # the second run reads the entry: a value planted in it shows up in the printed model
    entry = json.loads(entries[0].read_text())
    assert f"nu={entry['params']['nu']:.6g}" in first
    entry["params"]["nu"] = 7.125
    entries[0].write_text(json.dumps(entry))
    assert "nu=7.125" in _mc(root)
    # the store's walkers own cache/: no stray note, nothing listed as data
    assert MarketStore(root).strays() == []
    listing = CliRunner().invoke(build_app(), ["data", "ls", "--store", str(root)], env={"COLUMNS": "250"})
    assert listing.exit_code == 0 and "not written by margincall" not in listing.output
    # one candle corrected in place (a re-import with --replace): new checksums, a new fit
    changed = bars.with_columns(pl.when(pl.col("ts") == START_MS + 10 * HOUR).then(pl.col("close") * 1.001)
                                .otherwise(pl.col("close")).alias("close"))
    changed = changed.with_columns(pl.max_horizontal("high", "close").alias("high"))
    _store(root, changed, replace=True)
    refit = _mc(root)
    assert len(list((root / CACHE_DIR).glob("*.json"))) == 2
    assert "nu=7.125" not in refit
