"""Which price a candle file holds (last trades, mark or index), read from the file itself.

Importing mark-price candles as ``last`` once replaced 56,083 stored trade-price candles, so
an import does not default to ``last`` blindly. The evidence, in order:

1. the ``--price-type`` flag (or a ``price_type`` column) - the user's word wins;
2. the file or folder name: ``markPriceKlines`` / ``markprice`` / ``mark_price`` -> mark,
   ``indexPriceKlines`` / ``indexprice`` / ``index_price`` -> index;
3. the volume: Binance's ``markPriceKlines`` / ``indexPriceKlines`` layout is the klines
   layout with every volume field 0, and other mark/index exports have no volume column.
   Candles without any volume are not trade prices, but mark and index cannot be told apart,
   so the import is refused and asks for ``--price-type``.
"""
from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from data_loaders.errors import ImportFormatError

_NAME_HINTS = (("mark", re.compile(r"mark[_\-]?price", re.IGNORECASE)),
               ("index", re.compile(r"index[_\-]?price", re.IGNORECASE)))


def price_type_from_name(path: Path) -> str | None:
    """``"mark"`` or ``"index"`` when the file name or a folder above it says so, else None."""
    for part in reversed(path.parts[-3:]):
        for price_type, pattern in _NAME_HINTS:
            if pattern.search(part):
                return price_type
    return None


def has_no_volume(volume: pl.Series | None) -> bool:
    """True when there is no volume column, or every value is null or 0 (mark/index candles)."""
    if volume is None or volume.len() == 0:
        return volume is None
    values = volume.cast(pl.Float64, strict=False)
    return bool(((values == 0) | values.is_null()).all())


def refuse_volumeless_last(path: Path, how: str) -> None:
    """Raise: candles without volume were about to be stored as last (trade) prices."""
    raise ImportFormatError(
        f"{path}: expected last-price (trade) candles, found candles without any volume (the column is "
        "missing or all 0), which is how mark and index price candles come; nothing was written. "
        f"Pass {how} mark (or index) to store them as mark (or index) prices, or --price-type last "
        "if they really are trade prices without volume"
    )
