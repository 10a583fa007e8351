"""Fixtures of the fuzz suite: one small synthetic store per session, copied per case."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fuzz.harness import Case, Outcome, assert_clear_error, run_in_process, tree_hashes

#: A crash window on the synthetic market's own crash day, so ``replay`` has data to replay.
CRASH_FILE = """
[[crash]]
name = "synthetic-crash"
title = "The synthetic store's crash day"
start = 2024-03-04T00:00:00Z
end = 2024-03-05T00:00:00Z
symbols = ["BTC/USDT:USDT"]
timeframe = "1h"
description = "The generator's crash on its fourth day."
"""


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A store with five days of synthetic BTC (1m and 1h candles of every price type, funding)."""
    from data_loaders.store import MarketStore
    from data_loaders.synthetic import generate_perpetual, write_to_store

    root = tmp_path_factory.mktemp("fuzz-template") / "store"
    write_to_store(MarketStore(root), [generate_perpetual(days=5, crash_day=3, seed=3)],
                   timeframes=("1m", "1h"))
    return root, tree_hashes(root)


@pytest.fixture
def sandbox(template_store: tuple[Path, dict[str, str]], tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch folder (the working directory) holding ``store/``, a copy of the template."""
    root, _ = template_store
    shutil.copytree(root, tmp_path / "store")
    (tmp_path / "crashes.toml").write_text(CRASH_FILE, encoding="utf-8")
    # two levels down, so a run named "../../x" that escapes runs/ still lands inside tmp_path
    workdir = tmp_path / "work" / "here"
    workdir.mkdir(parents=True)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MARGINCALL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "1000")  # one message per line: no wrapping inside a subject
    monkeypatch.delenv("MARGINCALL_DEBUG", raising=False)
    return tmp_path


@pytest.fixture
def check_case(sandbox: Path, template_store: tuple[Path, dict[str, str]],
               monkeypatch: pytest.MonkeyPatch):
    """Run a :class:`Case` in the sandbox and assert the clear-error contract and an unchanged store."""

    def check(case: Case) -> Outcome:
        _, before = template_store
        file = case.make(sandbox) if case.make is not None else None
        values = {"store": str(sandbox / "store"), "tmp": str(sandbox), "file": str(file or "")}
        argv = [fill(arg, values) for arg in case.argv]
        for key, value in case.env:
            monkeypatch.setenv(key, value)
        outcome = run_in_process(argv)
        assert_clear_error(outcome, subject=fill(case.subject, values), found=case.found)
        assert tree_hashes(sandbox / "store") == before, "the store changed"
        return outcome

    return check


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with ``{store}``, ``{tmp}`` and ``{file}`` replaced (no other brace is touched)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text
