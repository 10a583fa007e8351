"""The crash library: packaged windows, user files, and clear parse errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from backtest.risk.crashes import load_crashes, parse_crashes
from backtest.risk.errors import CrashLibraryError

REQUIRED = {"2020-03-12", "2021-05-19", "2022-06-3ac-luna", "2022-11-08-ftx", "2024-08-05", "2025-10-10"}


def test_packaged_library_has_the_named_crashes():
    library = load_crashes()
    assert REQUIRED <= set(library.names)
    black_thursday = library.get("2020-03-12")
    assert black_thursday.start.isoformat() == "2020-03-12T00:00:00+00:00"
    assert black_thursday.end_ms > black_thursday.start_ms
    assert "BTC/USDT:USDT" in black_thursday.symbols and black_thursday.timeframe == "1h"
    assert [w.name for w in library.select("all")] == list(library.names)
    assert [w.name for w in library.select("2024-08-05, 2020-03-12")] == ["2024-08-05", "2020-03-12"]


def test_user_file_adds_and_replaces(tmp_path: Path):
    path = tmp_path / "mine.toml"
    path.write_text('[[crash]]\nname = "luna"\nstart = 2022-05-09T00:00:00Z\nend = 2022-05-13T00:00:00Z\n'
                    'symbols = ["BTC/USDT:USDT"]\ntimeframe = "1h"\n\n'
                    '[[crash]]\nname = "2024-08-05"\ntitle = "mine"\nstart = 2024-08-05\nend = 2024-08-06\n'
                    'symbols = "ETH/USDT:USDT"\n')
    library = load_crashes([path])
    assert "luna" in library.names
    replaced = library.get("2024-08-05")
    assert replaced.title == "mine" and replaced.symbols == ("ETH/USDT:USDT",) and replaced.source == str(path)


@pytest.mark.parametrize("text, message", [
    ("[[crash]]\nname = 'x'\nstart = '2020-03-12'\nend = 2020-03-13T00:00:00Z\nsymbols = ['BTC/USDT:USDT']\n",
     r"\(remove the quotes\)"),
    ("[[crash]]\nname = 'x'\nstart = 2020-03-13T00:00:00Z\nend = 2020-03-12T00:00:00Z\nsymbols = ['BTC/USDT:USDT']\n",
     "end must be after start"),
    ("[[crash]]\nname = 'x'\nstart = 2020-03-12T00:00:00Z\nend = 2020-03-13T00:00:00Z\n", "missing required key"),
    ("[[crash]]\nname = 'x'\nstrat = 2020-03-12T00:00:00Z\nend = 2020-03-13T00:00:00Z\nsymbols = ['A']\n",
     "did you mean 'start'"),
    ("[[crash]]\nname = 'x'\nstart = 2020-03-12T00:00:00Z\nend = 2020-03-13T00:00:00Z\nsymbols = []\n",
     "non-empty list"),
    ("[[crash]]\nname = 'x'\nstart = 2020-03-12T00:00:00Z\nend = 2020-03-13T00:00:00Z\nsymbols = ['A']\n"
     "timeframe = '5min'\n", "did you mean '5m'"),
    ("[[crash]]\nname = 'Bad Name'\nstart = 2020-03-12T00:00:00Z\nend = 2020-03-13T00:00:00Z\nsymbols = ['A']\n",
     "lowercase"),
    ("[[crash]]\nname = 'x'\nstart = 2020-03-12T00:00:00\nend = 2020-03-13T00:00:00Z\nsymbols = ['A']\n",
     "no time zone"),
    ("[[crash]\nname = 'x'\n", "not valid TOML"),
    ("title = 'no tables'\n", "unexpected top-level"),
    ("[[crash]]\nname = 'x'\nstart = 2020-03-12T00:00:00Z\nend = 2020-03-13T00:00:00Z\nsymbols = ['A']\n"
     "[[crash]]\nname = 'x'\nstart = 2020-03-12T00:00:00Z\nend = 2020-03-13T00:00:00Z\nsymbols = ['A']\n",
     "more than once"),
])
def test_parse_errors_name_file_entry_and_fix(text, message):
    with pytest.raises(CrashLibraryError, match=message) as info:
        parse_crashes(text, source="my.toml")
    assert str(info.value).startswith("my.toml")


def test_missing_file_and_unknown_window(tmp_path: Path):
    with pytest.raises(CrashLibraryError, match="does not exist"):
        load_crashes([tmp_path / "nope.toml"])
    with pytest.raises(CrashLibraryError, match="did you mean '2020-03-12'"):
        load_crashes().get("2020-03-21")
