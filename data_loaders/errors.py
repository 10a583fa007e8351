"""Errors raised by the market-data layer.

Every error derives from :class:`DataError` and its message names the subject, what was
expected, what was found and how to fix it.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


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


class ReplaceRefusedError(DataError):
    """A write would change stored rows and ``replace`` was not given (nothing was written)."""


def _raw_errors() -> tuple[type[BaseException], ...]:
    """Exception classes a malformed file makes the parsers raise (imported lazily)."""
    import json
    import zipfile
    import zlib

    import polars as pl

    classes: list[type[BaseException]] = [
        KeyError, IndexError, TypeError, ValueError, UnicodeError, json.JSONDecodeError, RecursionError,
        zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError,
        OverflowError, pl.exceptions.PolarsError]
    try:
        import pyarrow as pa

        classes.append(pa.ArrowException)
    except ImportError:  # pyarrow is optional
        pass
    return tuple(classes)


@contextlib.contextmanager
def import_errors(path: object, expected: str) -> Iterator[None]:
    """Turn any raw parser exception raised while importing ``path`` into :class:`ImportFormatError`.

    The one place where a malformed file's ``KeyError``, ``ValueError``, ``UnicodeDecodeError``,
    ``BadZipFile``, ``ArrowInvalid``, polars error, ``JSONDecodeError`` or ``RecursionError``
    becomes a message naming the file, what was expected, what was found and the fix.
    :class:`DataError` passes through unchanged (it already says all that).
    """
    try:
        yield
    except DataError:
        raise
    except RecursionError as exc:
        raise ImportFormatError(
            f"{path}: expected {expected}, found data nested too deeply to parse; the file is not "
            "what it claims to be: check it or export it again"
        ) from exc
    except _raw_errors() as exc:
        if isinstance(exc, FileNotFoundError):
            raise ImportFormatError(f"{path}: no such file; check the path") from exc
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise ImportFormatError(
            f"{path}: expected {expected}, found content that cannot be parsed "
            f"({type(exc).__name__}{': ' + detail[:200] if detail else ''}); the file is malformed, "
            "truncated or of another kind: check it, export it again, or pass --kind/--map"
        ) from exc


def reads_file(expected: str) -> Callable[[F], F]:
    """Decorate a reader whose first argument is the file path with :func:`import_errors`."""
    def decorate(function: F) -> F:
        @functools.wraps(function)
        def guarded(path: Any, *args: Any, **kwargs: Any) -> Any:
            with import_errors(path, expected):
                return function(path, *args, **kwargs)
        return guarded  # type: ignore[return-value]
    return decorate
