"""margincall's market-data layer: canonical datasets, the Parquet store, its DuckDB catalog,
data-quality checks and importers (Binance dumps, generic CSV/Parquet, risk-tier snapshots).

The public surface::

    from data_loaders import MarketStore, default_root
    store = MarketStore(default_root())
    store.write("ohlcv", frame, source="...")          # validate, merge (changing rows needs replace=True), atomic
    store.read("ohlcv", exchange="binanceusdm", symbol="BTC/USDT:USDT", timeframe="1h")
    store.listing(); store.coverage(...); store.connect()   # DuckDB views per dataset

ccxt is never imported here (``ccxt_fetch`` imports it inside its functions).
"""
from __future__ import annotations

from data_loaders.errors import (
    DataError,
    DataNotFoundError,
    DataValidationError,
    ImportFormatError,
    ReplaceRefusedError,
    SchemaError,
    UnsafeNameError,
)

# The store, schemas and checks need polars; they are imported on first use (PEP 562) so that
# the engine can import the polars-free rules (``data_loaders.tier_rules``) without them.
_LAZY = {"QualityIssue": "data_loaders.quality", "QualityReport": "data_loaders.quality",
         "DATASETS": "data_loaders.schemas", "SCHEMAS": "data_loaders.schemas",
         "ImportResult": "data_loaders.store", "MarketStore": "data_loaders.store",
         "WriteResult": "data_loaders.store", "default_root": "data_loaders.store"}

__all__ = [
    "DATASETS", "SCHEMAS", "DataError", "DataNotFoundError", "DataValidationError", "ImportFormatError",
    "ImportResult", "MarketStore", "QualityIssue", "QualityReport", "ReplaceRefusedError", "SchemaError",
    "UnsafeNameError", "WriteResult", "default_root",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'data_loaders' has no attribute {name!r}")
