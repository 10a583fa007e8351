"""Fitted return models cached on disk, so ``mc`` and ``survive`` fit a window once.

A fit depends only on the data it is fitted to, the model, and the fitting code. The cache
key is the SHA-256 of exactly that:

* the checksums of the data partitions the sample was read from (the per-partition digests
  of the store's files, ``WindowData.sources[*]["sha256"]``; a benchmark reading plain files
  passes their own checksums), so a re-import or a ``data rm`` of the data gives a new key;
* the window (first and last bar, step, price type, number of returns) and a digest of the
  sample's arrays themselves (BLAKE2b of the returns and excursions, ~10 ms for 330k bars),
  so a change in how bars become returns cannot reuse a stale fit either;
* the model name, its fit options and :data:`FIT_VERSIONS` (bumped when a fitter changes),
  plus the version of the library that fits it (``arch`` for GARCH, SciPy for the jumps).

Entries are small JSON files ``<store>/cache/models/<key>.json`` written atomically (temp +
fsync + rename, :func:`data_loaders.store_io.atomic_write_text`), never inside a dataset
folder; the store's walker treats ``cache/`` as its own (not a stray). An unreadable or
mismatching entry is ignored and refitted (and rewritten), never trusted.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backtest.risk.bootstrap import StationaryBootstrap
from backtest.risk.garch import GarchT
from backtest.risk.jumps import MertonJump
from backtest.risk.paths import GBM, ReturnModel, ReturnSample

__all__ = ["CACHE_DIR", "FIT_VERSIONS", "ModelCache", "cache_key", "partition_checksums", "sample_digest"]

#: Folder of the model cache, relative to the store root.
CACHE_DIR = Path("cache") / "models"
#: Version of each fitter; bump it when a fit's result changes for the same data.
FIT_VERSIONS = {"bootstrap": 1, "garch": 2, "jump": 2, "gbm": 1}
_CLASSES = {"garch": GarchT, "jump": MertonJump, "gbm": GBM}


def _library_version(name: str) -> str:
    """Version of the library a fit depends on (a new release may move the optimum).

    Read from the installed distribution's metadata: importing arch to ask costs ~0.5 s, more
    than reading a cached fit.
    """
    from importlib.metadata import PackageNotFoundError, version

    library = {"garch": "arch", "jump": "scipy"}.get(name, "numpy")
    try:
        return f"{library} {version(library)}"
    except PackageNotFoundError:
        return f"{library} (not installed)"


def partition_checksums(sources: Sequence[dict[str, Any]]) -> list[str]:
    """Checksums of the candle partitions in a window's provenance (``WindowData.sources``).

    Each is ``dataset/symbol/timeframe/price_type`` and the partition's digest (the SHA-256 of
    its files' SHA-256, as recorded by the one market loader); a partition whose files could
    not be hashed counts as ``None`` and still enters the key (with the sample digest).
    """
    return [f"{s.get('dataset')}/{s.get('symbol')}/{s.get('timeframe')}/{s.get('price_type')}:{s.get('sha256')}"
            for s in sources if s.get("dataset") == "ohlcv"]


def sample_digest(sample: ReturnSample) -> str:
    """BLAKE2b digest of the sample's returns, excursions and metadata (hex)."""
    h = hashlib.blake2b(digest_size=20)
    for array in (sample.returns, sample.low_excursions, sample.high_excursions):
        h.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    h.update(f"{sample.step_ms}|{sample.price}|{sample.start_ms}|{sample.end_ms}|{sample.n_gaps}".encode())
    return h.hexdigest()


def cache_key(name: str, sample: ReturnSample, *, partitions: Sequence[str | None] = (),
              options: dict[str, Any] | None = None) -> str:
    """Key of the fit of model ``name`` on ``sample`` read from ``partitions`` (their checksums)."""
    payload = {
        "model": name, "fit_version": FIT_VERSIONS.get(name), "library": _library_version(name),
        "options": options or {}, "partitions": sorted(str(p) for p in partitions),
        "window": [sample.start_ms, sample.end_ms, sample.step_ms, sample.price, int(sample.returns.size)],
        "sample": sample_digest(sample),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _params(model: ReturnModel) -> dict[str, Any]:
    """The fitted numbers of ``model`` (JSON-able; the bootstrap keeps only its block length)."""
    if isinstance(model, StationaryBootstrap):
        return {"block_length": model.block_length}
    values = dataclasses.asdict(model)  # type: ignore[call-overload]
    values.pop("name", None)
    return values  # Python's json writes and reads back NaN/Infinity (an unfitted loglik, an integrated GARCH)


def _model(name: str, params: dict[str, Any], sample: ReturnSample) -> ReturnModel:
    if name == "bootstrap":
        return StationaryBootstrap(sample=sample, block_length=float(params["block_length"]))
    cls = _CLASSES[name]
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    return cls(**{k: v for k, v in params.items() if k in fields})


class ModelCache:
    """Fitted models under one folder (usually ``<store>/cache/models``).

    Parameters
    ----------
    root : path
        Folder of the entries; created on the first write.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_store(cls, store_root: str | Path) -> ModelCache:
        """The cache of the store at ``store_root``."""
        return cls(Path(store_root) / CACHE_DIR)

    def path(self, key: str) -> Path:
        """File of the entry ``key``."""
        return self.root / f"{key}.json"

    def get(self, key: str, name: str, sample: ReturnSample) -> ReturnModel | None:
        """The cached fit of ``key``, or None (absent, unreadable or for another model)."""
        try:
            entry = json.loads(self.path(key).read_text(encoding="utf-8"))
            if entry.get("key") != key or entry.get("model") != name:
                return None
            return _model(name, entry["params"], sample)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a missing or damaged entry is a miss: the caller refits and rewrites it

    def put(self, key: str, name: str, model: ReturnModel, *, fit_seconds: float,
            partitions: Sequence[str | None] = ()) -> Path:
        """Write the entry ``key`` atomically; returns its path."""
        from data_loaders.store_io import atomic_write_text

        self.root.mkdir(parents=True, exist_ok=True)
        entry = {"key": key, "model": name, "params": _params(model), "fit_seconds": fit_seconds,
                 "partitions": [str(p) for p in partitions], "describe": model.describe()}
        target = self.path(key)
        atomic_write_text(json.dumps(entry, indent=1, default=str) + "\n", target)
        return target
