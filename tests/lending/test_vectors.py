"""Every DeFi worked example of ../shared/specs/vectors.json (Aave v3, Compound v3, MakerDAO),
one test case per vector id, evaluated through the lending modules' public functions.

The ids are read at collection time from the folder the ``shared_dir`` fixture serves; each
case loads its vector through that fixture (skipped only when ../shared is absent).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.lending.vector_eval import DEFI_VENUES, EVALUATORS, evaluate, matches
from tests.vector_cases import assert_vector, load_vectors, vector_params

@pytest.fixture(scope="module")
def vectors(shared_dir: Path) -> dict[str, dict[str, Any]]:
    return load_vectors(shared_dir)


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", vector_params(DEFI_VENUES))
def test_defi_vector(vector_id: str, vectors: dict[str, dict[str, Any]]) -> None:
    assert_vector(vectors[vector_id], evaluate, matches)


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
