"""Errors raised by the market-data layer.

Every error derives from :class:`DataError` and its message names the subject, what was
expected, what was found and how to fix it.
"""
from __future__ import annotations


class DataError(Exception):
    """Base class of every error the data layer raises."""


class DataNotFoundError(DataError, LookupError):
    """The store holds nothing for the requested dataset / exchange / symbol / timeframe."""


class DataValidationError(DataError, ValueError):
    """Input data failed a quality check in strict mode (nothing was written)."""


class SchemaError(DataError, ValueError):
    """A frame or file does not have the columns or types a canonical dataset needs."""


class UnsafeNameError(DataError, ValueError):
    """A symbol, exchange or timeframe string is not acceptable as a store key."""


class ImportFormatError(DataError, ValueError):
    """An input file could not be recognised or parsed (corrupt, truncated, wrong kind)."""
