"""The library of named crash windows (packaged ``crashes.toml`` plus the user's own files).

A :class:`CrashWindow` names a UTC range, the symbols to replay and the candle interval.
:func:`load_crashes` parses and validates the TOML files; every problem raises
:class:`~backtest.risk.errors.CrashLibraryError` with the file, the entry and the key at fault,
what was expected and what was found.
"""
from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from backtest.risk.errors import CrashLibraryError

__all__ = ["CrashLibrary", "CrashWindow", "TIMEFRAME_MS", "load_crashes", "timeframe_ms"]

PACKAGED = "crashes.toml"
_REQUIRED = ("name", "start", "end", "symbols")
_OPTIONAL = ("title", "timeframe", "description")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

#: Candle intervals the risk lab understands, in milliseconds.
TIMEFRAME_MS: Mapping[str, int] = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
    "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
}


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds of a candle interval such as ``"5m"``; unknown names raise with suggestions."""
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        close = difflib.get_close_matches(timeframe, TIMEFRAME_MS, n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise CrashLibraryError(f"timeframe {timeframe!r} is not supported; use one of "
                                f"{', '.join(TIMEFRAME_MS)}{hint}") from None


@dataclass(frozen=True)
class CrashWindow:
    """A named historical crash window.

    Attributes
    ----------
    name : str
        Unique id (command-line name).
    title : str
        Human title.
    start_ms, end_ms : int
        UTC milliseconds; the window is ``[start_ms, end_ms)``.
    symbols : tuple of str
        ccxt unified symbols replayed.
    timeframe : str
        Candle interval replayed (e.g. ``"5m"``).
    description : str
        What happened.
    source : str
        File the entry came from.
    """

    name: str
    title: str
    start_ms: int
    end_ms: int
    symbols: tuple[str, ...]
    timeframe: str
    description: str
    source: str

    @property
    def start(self) -> datetime:
        """Window start as an aware UTC datetime."""
        return datetime.fromtimestamp(self.start_ms / 1000, tz=timezone.utc)

    @property
    def end(self) -> datetime:
        """Window end (exclusive) as an aware UTC datetime."""
        return datetime.fromtimestamp(self.end_ms / 1000, tz=timezone.utc)


def _instant(value: Any, *, where: str, key: str) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise CrashLibraryError(f"{where}: {key} = {value.isoformat()} has no time zone; "
                                    f"expected a UTC instant such as {value.isoformat()}Z")
        return int(value.timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp() * 1000)
    raise CrashLibraryError(f"{where}: {key} must be a TOML datetime like 2020-03-12T00:00:00Z, "
                            f"found {type(value).__name__} {value!r} (remove the quotes)")


def _window(entry: Any, *, index: int, source: str) -> CrashWindow:
    where = f"{source}: [[crash]] #{index + 1}"
    if not isinstance(entry, dict):
        raise CrashLibraryError(f"{where}: expected a table of keys, found {type(entry).__name__}")
    if isinstance(entry.get("name"), str):
        where += f" ({entry['name']!r})"
    unknown = [k for k in entry if k not in _REQUIRED + _OPTIONAL]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, _REQUIRED + _OPTIONAL, n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise CrashLibraryError(f"{where}: unknown key {key!r}{hint}; allowed keys: "
                                f"{', '.join(_REQUIRED + _OPTIONAL)}")
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        raise CrashLibraryError(f"{where}: missing required key(s) {', '.join(missing)}; every window needs "
                                f"{', '.join(_REQUIRED)}")
    name = entry["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise CrashLibraryError(f"{where}: name must be lowercase letters, digits, '.', '_' or '-' "
                                f"(e.g. '2020-03-12'), found {name!r}")
    start = _instant(entry["start"], where=where, key="start")
    end = _instant(entry["end"], where=where, key="end")
    if end <= start:
        raise CrashLibraryError(f"{where}: end must be after start, found start={entry['start']} end={entry['end']}")
    symbols = entry["symbols"]
    if isinstance(symbols, str):
        symbols = [symbols]
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) and s for s in symbols):
        raise CrashLibraryError(f"{where}: symbols must be a non-empty list of ccxt symbols such as "
                                f"[\"BTC/USDT:USDT\"], found {symbols!r}")
    timeframe = entry.get("timeframe", "1h")
    if not isinstance(timeframe, str):
        raise CrashLibraryError(f"{where}: timeframe must be a string such as \"5m\", found {timeframe!r}")
    try:
        timeframe_ms(timeframe)
    except CrashLibraryError as exc:
        raise CrashLibraryError(f"{where}: {exc}") from None
    return CrashWindow(name=name, title=str(entry.get("title", name)), start_ms=start, end_ms=end,
                       symbols=tuple(symbols), timeframe=timeframe,
                       description=str(entry.get("description", "")), source=source)


def parse_crashes(text: str, *, source: str) -> list[CrashWindow]:
    """Parse the TOML text of a crash file into windows (validated, names unique)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CrashLibraryError(f"{source}: not valid TOML ({exc}); see backtest/risk/crashes.toml for the format") from None
    extra = [k for k in raw if k != "crash"]
    if extra:
        raise CrashLibraryError(f"{source}: unexpected top-level key(s) {extra}; windows go in [[crash]] tables")
    entries = raw.get("crash")
    if not isinstance(entries, list) or not entries:
        raise CrashLibraryError(f"{source}: expected at least one [[crash]] table, found none; add a window "
                                "(name, start, end, symbols)")
    windows = [_window(e, index=i, source=source) for i, e in enumerate(entries)]
    seen: set[str] = set()
    for w in windows:
        if w.name in seen:
            raise CrashLibraryError(f"{source}: window name {w.name!r} appears more than once; names must be unique")
        seen.add(w.name)
    return windows


@dataclass(frozen=True)
class CrashLibrary:
    """An ordered, immutable collection of crash windows."""

    windows: tuple[CrashWindow, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Window names in library order."""
        return tuple(w.name for w in self.windows)

    def get(self, name: str) -> CrashWindow:
        """The window called ``name``; unknown names raise with a suggestion."""
        for w in self.windows:
            if w.name == name:
                return w
        close = difflib.get_close_matches(name, self.names, n=1, cutoff=0.4)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise CrashLibraryError(f"crash window {name!r} is not in the library{hint}; known windows: "
                                f"{', '.join(self.names)} (or 'all'; add windows with --crashes FILE)")

    def select(self, spec: str | Sequence[str]) -> list[CrashWindow]:
        """Windows named in ``spec`` (``"all"``, a comma list or a sequence of names)."""
        names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
        names = [n for n in names if n]
        if not names:
            raise CrashLibraryError(f"--crash {spec!r}: expected 'all' or a comma list of window names, found no "
                                    "name; pass --crash all or e.g. --crash 2020-03-12")
        if names == ["all"]:
            return list(self.windows)
        return [self.get(n) for n in names]


def load_crashes(extra_files: Iterable[str | Path] = (), *, packaged: bool = True) -> CrashLibrary:
    """The packaged windows, then each user file's (same name replaces a packaged window).

    Parameters
    ----------
    extra_files : iterable of path
        User TOML files in the ``crashes.toml`` format.
    packaged : bool, default True
        Include the windows shipped with margincall.
    """
    merged: dict[str, CrashWindow] = {}
    if packaged:
        text = resources.files("backtest.risk").joinpath(PACKAGED).read_text(encoding="utf-8")
        for w in parse_crashes(text, source=f"backtest/risk/{PACKAGED}"):
            merged[w.name] = w
    for file in extra_files:
        path = Path(file)
        if not path.is_file():
            raise CrashLibraryError(f"crash file {str(path)!r} does not exist; pass the path of a TOML file "
                                    "with [[crash]] tables (see backtest/risk/crashes.toml)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CrashLibraryError(f"crash file {str(path)!r}: expected UTF-8 TOML text, found bytes that are not "
                                    "UTF-8; save it as UTF-8 TOML") from None
        for w in parse_crashes(text, source=str(path)):
            merged[w.name] = w
    if not merged:
        raise CrashLibraryError("the crash library is empty; pass --crashes FILE or keep the packaged windows")
    return CrashLibrary(tuple(merged.values()))
