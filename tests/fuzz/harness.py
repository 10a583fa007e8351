"""The fuzz suite's machinery: cases, the in-process runner and the one "clear error" check.

Every case runs ``margincall`` in-process through :func:`backtest.cli.run_cli` (the same error
boundary as the console script), against its own copy of a store built once per session,
and must end with: a non-zero exit, no traceback and no "internal error", a message naming
the subject (option, key or file) with what was expected (and, when the case knows it, the
value that was found), and a store whose every file is byte-identical to before.
"""
from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTC/USDT:USDT"
TRACEBACK = "Traceback (most recent call last)"
#: Words that say what was expected ("expected 'isolated' or 'cross'", "must be > 0", "choose
#: one of ...", "need >= 100 ..."); typer's usage errors say "Input should be a valid ...".
EXPECTATION_WORDS = ("expected", "expects", "expecting", "must", "should", "need", "requires",
                     "one of", "is not a valid", "available", "known", "choose", "built-ins are")
#: Border characters of typer's error panel, removed before matching (the panel wraps lines).
_PANEL = re.compile(r"[│╭╮╰╯─]+")

#: Areas that own the mechanism a case exercises (the place to fix when the case fails).
STORE = "store/import (data_loaders, cli/data.py)"
RUN = "run config and run folders (config.py, cli/run.py, cli/report.py)"
STRATEGY = "strategies and sweep (strategies/, strategy.py, risk/sweep.py)"
RISK = "risk commands (cli/risk.py, backtest/risk/)"
ENGINE = "engine"


@dataclass(frozen=True)
class Outcome:
    """What one command did: exit code and the text on stdout and stderr."""

    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


@dataclass(frozen=True)
class Case:
    """One malformed input.

    ``argv`` may hold ``{store}`` (the case's store copy), ``{tmp}`` (its scratch folder) and
    ``{file}`` (the file ``make`` wrote into the scratch folder). ``subject`` is the name the
    message must contain (case-insensitive); ``found``, when given, the offending value it must
    quote. ``area`` owns the mechanism to fix should the case fail.
    """

    id: str
    argv: tuple[str, ...]
    subject: str
    area: str
    found: str | None = None
    make: Callable[[Path], Path] | None = field(default=None, compare=False)
    env: tuple[tuple[str, str], ...] = ()


def run_in_process(argv: Iterable[str]) -> Outcome:
    """``margincall ARGV`` in this process, through the CLI's error boundary."""
    from backtest.cli import run_cli

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run_cli(list(argv))
    return Outcome(code, out.getvalue(), err.getvalue())


def _flat(text: str) -> str:
    return " ".join(_PANEL.sub(" ", text).split()).casefold()


def subject_spellings(subject: str) -> set[str]:
    """The ways a message may name ``subject``: ``--margin-mode`` is also ``margin-mode``,
    ``margin_mode`` and ``margin mode`` (a RunConfig key, a TOML key, a phrase)."""
    bare = subject.lstrip("-")
    return {subject, bare, bare.replace("-", "_"), bare.replace("-", " "), bare.replace("_", " ")}


def found_spellings(found: str) -> set[str]:
    """The ways a message may quote a value: as typed, and for a number its usual renderings
    (``-1`` as ``-1.0``, ``1e308`` as ``1e+308``, ``1e9`` as ``1000000000`` or ``1,000,000,000``)."""
    out = {found}
    try:
        number = float(found)
    except ValueError:
        return out
    out |= {repr(number), f"{number:g}", str(number)}
    if number == number and abs(number) != float("inf") and number.is_integer():
        out |= {str(int(number)), f"{int(number):,}"}
    return out


def clear_error_problems(outcome: Outcome, *, subject: str, found: str | None = None) -> list[str]:
    """Why ``outcome`` is not a clear error about ``subject`` (empty list: it is one)."""
    problems = []
    if outcome.code == 0:
        problems.append("exit code 0 (the bad input was accepted)")
    if TRACEBACK in outcome.text:
        problems.append("printed a traceback")
    flat = _flat(outcome.text)
    if "internal error" in flat:
        problems.append("an internal error (an exception escaped the command)")
    if not any(_flat(name) in flat for name in subject_spellings(subject)):
        problems.append(f"the message does not name the subject {subject!r}")
    if not any(word in flat for word in EXPECTATION_WORDS):
        problems.append("the message does not say what was expected")
    if found and not any(_flat(value) in flat for value in found_spellings(found)):
        problems.append(f"the message does not quote the value found, {found!r}")
    return problems


def assert_clear_error(outcome: Outcome, *, subject: str, found: str | None = None) -> None:
    """Fail with the reasons and the output unless ``outcome`` is a clear error about ``subject``."""
    problems = clear_error_problems(outcome, subject=subject, found=found)
    assert not problems, (f"{'; '.join(problems)}\nexit {outcome.code}\n--- stdout\n{outcome.stdout[-3000:]}"
                          f"\n--- stderr\n{outcome.stderr[-3000:]}")


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, keyed by its relative path."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def params(cases: Iterable[Case]) -> list:
    """pytest params of ``cases``, one per case id (ids are unique)."""
    out = []
    ids = set()
    for case in cases:
        assert case.id not in ids, f"duplicate fuzz case id {case.id}"
        ids.add(case.id)
        out.append(pytest.param(case, id=case.id))
    return out
