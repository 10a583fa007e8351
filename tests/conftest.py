"""Shared fixtures: the path to ../shared (real exchange data), skipped only where it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

try:  # property tests: the same examples on every run (a CI result is reproducible)
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("margincall", derandomize=True, deadline=None)
    _hypothesis_settings.load_profile("margincall")
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass
SHARED_DIR = Path(os.environ.get("MARGINCALL_SHARED", PROJECT_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder with real Binance data and venue specs; skip when it is absent."""
    if not (SHARED_DIR / "data").is_dir():
        pytest.skip(f"../shared is absent (looked for {SHARED_DIR}); real-data tests need it")
    return SHARED_DIR


@pytest.fixture(scope="session")
def shared_data(shared_dir: Path) -> Path:
    return shared_dir / "data"
