"""Every CEX/perp-DEX worked example of ../shared/specs/vectors.json, one test case per vector id.

The ids are read at collection time from the same folder the ``shared_dir`` fixture serves;
each case loads its vector through that fixture (skipped when ../shared is absent).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.vector_cases import assert_vector, load_vectors, vector_params
from tests.venues.vector_eval import EVALUATORS, evaluate, within_tolerance

BINANCE_VENUES = {"binance"}
OTHER_VENUES = {"bybit", "okx", "gate"}
NEW_VENUES = {"bitmex", "hyperliquid", "dydx_v4"}
#: the DeFi lending vectors belong to the DeFi issue; every other venue's vector has an evaluator
DEFI_VENUES = {"aave_v3", "compound_v3", "makerdao"}


@pytest.fixture(scope="module")
def vectors(shared_dir: Path) -> dict[str, dict[str, Any]]:
    return load_vectors(shared_dir)


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", vector_params(BINANCE_VENUES))
def test_binance_vector(vector_id: str, vectors: dict[str, dict[str, Any]]) -> None:
    assert_vector(vectors[vector_id], evaluate, within_tolerance)


@pytest.mark.shared
def test_every_binance_formula_has_an_evaluator(vectors: dict[str, dict[str, Any]]) -> None:
    binance = [v for v in vectors.values() if v["venue"] in BINANCE_VENUES]
    assert binance, "vectors.json holds no Binance vector"
    missing = sorted({v["formula"] for v in binance} - set(EVALUATORS))
    assert not missing, f"Binance formulas without an evaluator: {missing}"


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", vector_params(OTHER_VENUES))
def test_bybit_okx_gate_vector(vector_id: str, vectors: dict[str, dict[str, Any]]) -> None:
    assert_vector(vectors[vector_id], evaluate, within_tolerance)


@pytest.mark.shared
@pytest.mark.parametrize("vector_id", vector_params(NEW_VENUES))
def test_bitmex_hyperliquid_dydx_vector(vector_id: str, vectors: dict[str, dict[str, Any]]) -> None:
    assert_vector(vectors[vector_id], evaluate, within_tolerance)


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
