"""What the worked-example tests share: the vectors of ../shared/specs/vectors.json as test
parameters (collected at import time from the folder ``shared_dir`` serves), loaded by id, and
one assertion that names the vector, the computed and the expected value."""
from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DIR

VECTORS_PATH = Path("specs") / "vectors.json"


def load_vectors(shared_dir: Path = SHARED_DIR) -> dict[str, dict[str, Any]]:
    """Every vector by id ({} when the file is absent)."""
    path = shared_dir / VECTORS_PATH
    if not path.is_file():
        return {}
    return {v["id"]: v for v in json.loads(path.read_text("utf-8"))}


def vector_params(venues: Collection[str]) -> list[Any]:
    """The ids of the venues' vectors as test parameters; a vector flagged ``known_discrepancy``
    (the venue's published number is not reproduced by its documented rule) is a strict xfail
    with the reason from vectors.json, so it fails loudly the day it starts to pass."""
    params = []
    for vector in load_vectors().values():
        if vector["venue"] not in venues:
            continue
        marks = ()
        if vector.get("known_discrepancy"):
            marks = (pytest.mark.xfail(strict=True, reason=vector.get("discrepancy_reason", "")),)
        params.append(pytest.param(vector["id"], marks=marks, id=vector["id"]))
    if not params and not (SHARED_DIR / VECTORS_PATH).is_file():
        # one placeholder that says why, instead of pytest's "got empty parameter set"
        params.append(pytest.param(None, id="no-vectors", marks=pytest.mark.skip(
            reason=f"../shared is absent: {SHARED_DIR / VECTORS_PATH} holds the worked examples")))
    return params


def assert_vector(vector: dict[str, Any], evaluate: Callable[[dict[str, Any]], Any],
                  matches: Callable[[dict[str, Any], Any], bool]) -> None:
    """Evaluate ``vector`` and assert it matches its expected value within its tolerance."""
    value = evaluate(vector)
    assert matches(vector, value), (
        f"{vector['id']}: computed {value!r}, expected {vector['expected']!r} "
        f"(abs_tol={vector.get('abs_tol')}, rel_tol={vector.get('rel_tol')})"
    )
