"""Every CEX/perp-DEX worked example of ../shared/specs/vectors.json, one test case per vector id.

The ids are read at collection time from the same folder the ``shared_dir`` fixture serves;
each case loads its vector through that fixture (skipped when ../shared is absent).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DIR
from tests.venues.vector_eval import EVALUATORS, evaluate, within_tolerance

VECTORS_PATH = Path("specs") / "vectors.json"
BINANCE_VENUES = {"binance"}
OTHER_VENUES = {"bybit", "okx", "gate"}
NEW_VENUES = {"bitmex", "hyperliquid", "dydx_v4"}
#: the DeFi lending vectors belong to the DeFi issue; every other venue's vector has an evaluator
DEFI_VENUES = {"aave_v3", "compound_v3", "makerdao"}


def _ids(venues: set[str]) -> list[str]:
    path = SHARED_DIR / VECTORS_PATH
    if not path.is_file():
        return []
    return [v["id"] for v in json.loads(path.read_text("utf-8")) if v["venue"] in venues]


def _params(venues: set[str]) -> list[Any]:
    """Vector ids as test parameters; a vector flagged ``known_discrepancy`` (the venue's
    published number is not reproduced by its documented rule) is a strict xfail with the
    reason from vectors.json, so it fails loudly the day it starts to pass."""
    path = SHARED_DIR / VECTORS_PATH
    if not path.is_file():
        return []
    params = []
    for v in json.loads(path.read_text("utf-8")):
        if v["venue"] not in venues:
            continue
        marks = ()
        if v.get("known_discrepancy"):
            marks = (pytest.mark.xfail(strict=True, reason=v.get("discrepancy_reason", "")),)
        params.append(pytest.param(v["id"], marks=marks, id=v["id"]))
    return params


@pytest.fixture(scope="module")
def vectors(shared_dir: Path) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in json.loads((shared_dir / VECTORS_PATH).read_text("utf-8"))}


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", _ids(BINANCE_VENUES))
def test_binance_vector(vector_id: str, vectors: dict[str, dict[str, Any]]) -> None:
    vector = vectors[vector_id]
    value = evaluate(vector)
    assert within_tolerance(vector, value), (
        f"{vector_id}: computed {value!r}, expected {vector['expected']!r} "
        f"(abs_tol={vector.get('abs_tol')}, rel_tol={vector.get('rel_tol')})"
    )


@pytest.mark.shared
def test_every_binance_formula_has_an_evaluator(vectors: dict[str, dict[str, Any]]) -> None:
    binance = [v for v in vectors.values() if v["venue"] in BINANCE_VENUES]
    assert binance, "vectors.json holds no Binance vector"
    missing = sorted({v["formula"] for v in binance} - set(EVALUATORS))
    assert not missing, f"Binance formulas without an evaluator: {missing}"


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", _ids(OTHER_VENUES))
def test_bybit_okx_gate_vector(vector_id: str, vectors: dict[str, dict[str, Any]]) -> None:
    vector = vectors[vector_id]
    value = evaluate(vector)
    assert within_tolerance(vector, value), (
        f"{vector_id}: computed {value!r}, expected {vector['expected']!r} "
        f"(abs_tol={vector.get('abs_tol')}, rel_tol={vector.get('rel_tol')})"
    )


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", _params(NEW_VENUES))
def test_bitmex_hyperliquid_dydx_vector(vector_id: str, vectors: dict[str, dict[str, Any]]) -> None:
    vector = vectors[vector_id]
    value = evaluate(vector)
    assert within_tolerance(vector, value), (
        f"{vector_id}: computed {value!r}, expected {vector['expected']!r} "
        f"(abs_tol={vector.get('abs_tol')}, rel_tol={vector.get('rel_tol')})"
    )


@pytest.mark.shared
def test_every_non_defi_formula_has_an_evaluator(vectors: dict[str, dict[str, Any]]) -> None:
    non_defi = [v for v in vectors.values() if v["venue"] not in DEFI_VENUES]
    venues = {v["venue"] for v in non_defi}
    assert NEW_VENUES | OTHER_VENUES | BINANCE_VENUES <= venues, f"vectors.json venues: {venues}"
    missing = sorted({v["formula"] for v in non_defi} - set(EVALUATORS))
    assert not missing, f"non-DeFi formulas without an evaluator: {missing}"


@pytest.mark.shared
def test_every_non_defi_venue_is_parametrized(vectors: dict[str, dict[str, Any]]) -> None:
    covered = BINANCE_VENUES | OTHER_VENUES | NEW_VENUES
    stray = sorted({v["venue"] for v in vectors.values()} - covered - DEFI_VENUES)
    assert not stray, f"venues of vectors.json that no parametrized test runs: {stray}"
