"""CLI tables stay whole when the output is a file or a pipe (rich would use 80 columns)."""
from __future__ import annotations

import io
import sys

import pytest

from backtest.cli.output import PIPE_WIDTH, console


def test_a_pipe_gets_the_wide_width_and_columns_still_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert console().width == PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "100")
    assert console().width == 100


def test_a_wide_table_printed_to_a_pipe_keeps_each_row_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.table import Table

    monkeypatch.delenv("COLUMNS", raising=False)
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buffer)
    table = Table(*[f"column {k}" for k in range(11)])
    table.add_row(*["2024-08-04T14:35:59Z"] + ["12345.678"] * 10)
    console().print(table)
    lines = [line for line in buffer.getvalue().splitlines() if "2024-08-04T14:35:59Z" in line]
    assert len(lines) == 1 and "12345.678" in lines[0]
