"""Fuzz: malformed command-line arguments get a clear error and leave the store untouched."""
from __future__ import annotations

import pytest

from tests.fuzz.cases_arguments import cases
from tests.fuzz.harness import Case, params


@pytest.mark.parametrize("case", params(cases()))
def test_bad_argument_gets_a_clear_error(case: Case, check_case) -> None:
    check_case(case)


MEMORY_LIMIT = 3 << 30  # bytes of address space for the child: far below the 15 GiB it would ask for


def test_a_horizon_that_needs_more_memory_than_exists_is_refused_before_allocating(sandbox) -> None:
    """``mc --horizon 1e7`` would allocate about 15 GiB: it must be estimated and refused.

    Runs in a child process whose address space is capped, so that a regression fails with a
    MemoryError (an internal error) instead of exhausting the machine.
    """
    import os
    import subprocess
    import sys

    from tests.fuzz.harness import PROJECT_ROOT, assert_clear_error, Outcome

    child = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({0}, {0})); "
             "from backtest.cli import main; main(sys.argv[1:])").format(MEMORY_LIMIT)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "COLUMNS": "1000"}
    env.pop("MARGINCALL_DEBUG", None)
    done = subprocess.run([sys.executable, "-c", child, "mc", "--horizon", "1e7", "--store", str(sandbox / "store")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert_clear_error(Outcome(done.returncode, done.stdout, done.stderr), subject="--horizon", found="1e7")
