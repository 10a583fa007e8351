"""The CLI's console: rich output that stays readable when written to a file or a pipe."""
from __future__ import annotations

import os
import sys
from typing import Any

#: Width of the output when it is not a terminal (rich would use 80 and wrap wide tables
#: cell by cell); ``COLUMNS`` in the environment still decides when set.
PIPE_WIDTH = 160


def console(*, stderr: bool = False) -> Any:
    """A ``rich.console.Console`` on stdout (or stderr), wide when not writing to a terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    interactive = hasattr(stream, "isatty") and stream.isatty()
    width = None if interactive or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(stderr=stderr, width=width)
