"""Fixtures shared by the workload tests: bench/run_workload.py and ../shared's generator as modules."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def load_module(name: str, path: Path) -> ModuleType:
    """Import a script by path (the bench and the generator are not packages)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """bench/run_workload.py as a module (its configurations, signal and CLI)."""
    return load_module("run_workload_under_test", PROJECT / "bench" / "run_workload.py")


@pytest.fixture(scope="module")
def generator(shared_dir: Path) -> ModuleType:
    """../shared/bench/gen_workload.py as a module (the reference workload generator)."""
    return load_module("gen_workload_under_test", shared_dir / "bench" / "gen_workload.py")
