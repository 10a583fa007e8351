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
    SchemaError,
    UnsafeNameError,
)
from data_loaders.quality import QualityIssue, QualityReport
from data_loaders.schemas import DATASETS, SCHEMAS
from data_loaders.store import ImportResult, MarketStore, WriteResult, default_root

__all__ = [
    "DATASETS", "SCHEMAS", "DataError", "DataNotFoundError", "DataValidationError", "ImportFormatError",
    "ImportResult", "MarketStore", "QualityIssue", "QualityReport", "SchemaError", "UnsafeNameError",
    "WriteResult", "default_root",
]
