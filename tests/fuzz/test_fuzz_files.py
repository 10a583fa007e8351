"""Fuzz: malformed files (every importer, crash files, sweep data) get a clear error naming the
file and leave the store untouched."""
from __future__ import annotations

import pytest

from tests.fuzz.cases_files import cases
from tests.fuzz.harness import Case, params


@pytest.mark.parametrize("case", params(cases()))
def test_bad_file_gets_a_clear_error(case: Case, check_case) -> None:
    check_case(case)
