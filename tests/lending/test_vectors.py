"""Every DeFi worked example of ../shared/specs/vectors.json (Aave v3, Compound v3, MakerDAO),
one test case per vector id, evaluated through the lending modules' public functions.

The ids are read at collection time from the folder the ``shared_dir`` fixture serves; each
case loads its vector through that fixture (skipped only when ../shared is absent).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DIR
from tests.lending.vector_eval import DEFI_VENUES, EVALUATORS, evaluate, matches

VECTORS_PATH = Path("specs") / "vectors.json"


def _ids() -> list[str]:
    path = SHARED_DIR / VECTORS_PATH
    if not path.is_file():
        return []
    return [v["id"] for v in json.loads(path.read_text("utf-8")) if v["venue"] in DEFI_VENUES]


@pytest.fixture(scope="module")
def vectors(shared_dir: Path) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in json.loads((shared_dir / VECTORS_PATH).read_text("utf-8"))}


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", _ids())
def test_defi_vector(vector_id: str, vectors: dict[str, dict[str, Any]]) -> None:
    vector = vectors[vector_id]
    value = evaluate(vector)
    assert matches(vector, value), (
        f"{vector_id}: computed {value!r}, expected {vector['expected']!r} "
        f"(abs_tol={vector.get('abs_tol')}, rel_tol={vector.get('rel_tol')})"
    )


@pytest.mark.shared
def test_every_defi_formula_has_an_evaluator(vectors: dict[str, dict[str, Any]]) -> None:
    defi = [v for v in vectors.values() if v["venue"] in DEFI_VENUES]
    assert len(defi) >= 22, f"expected the 22 public DeFi vectors, found {len(defi)}"
    missing = sorted({v["formula"] for v in defi} - set(EVALUATORS))
    assert not missing, f"DeFi formulas without an evaluator: {missing}"


def test_boolean_vectors_compare_exactly() -> None:
    vector = {"expected": False, "abs_tol": 0}
    assert matches(vector, False)
    assert not matches(vector, True)
    assert not matches({"expected": True}, 1.0)  # a number is not a verdict
