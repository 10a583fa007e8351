"""Text that rich would read as markup (``BTC[/]``, ``[runn]``, ``[[crash]]``) is printed as it
is by the project's console helpers: it neither crashes the print nor vanishes from it."""
from __future__ import annotations

import io

import pytest

from backtest.cli.output import console, fail, labelled, print_error, styled

MARKUP_LIKE = ["BTC[/]", "[runn]", "[[crash]]", "a[bold red]x[/]", "[/bold]", "[link=file:///etc]y[/link]", "a\\[b]",
               "[bold]/tmp/a[/]b"]


class _Captured:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def getvalue(self) -> str:
        return self._capsys.readouterr().out


@pytest.fixture
def stdout(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> _Captured:
    """What the test prints on stdout (rich looks ``sys.stdout`` up at each print)."""
    monkeypatch.setenv("COLUMNS", "300")
    return _Captured(capsys)


@pytest.mark.parametrize("text", MARKUP_LIKE)
def test_console_print_shows_markup_like_text_verbatim(text: str, stdout: _Captured) -> None:
    console().print(f"symbol {text} done")
    assert stdout.getvalue().strip() == f"symbol {text} done"


@pytest.mark.parametrize("text", MARKUP_LIKE)
def test_fail_and_labelled_lines_keep_the_message_verbatim(text: str, stdout: _Captured) -> None:
    exit_ = fail(f"window {text!r}: expected a known name")
    assert exit_.exit_code == 2
    console().print(labelled("warning:", "yellow", f"gap at {text}"))
    lines = stdout.getvalue().splitlines()
    assert lines == [f"error: window {text!r}: expected a known name", f"warning: gap at {text}"]


@pytest.mark.parametrize("text", MARKUP_LIKE)
def test_table_cells_and_titles_are_verbatim(text: str, stdout: _Captured) -> None:
    from rich.table import Table

    table = Table(title=f"title {text}")
    table.add_column(f"col {text}")
    table.add_row(f"cell {text}")
    console().print(table)
    out = stdout.getvalue()
    for expected in (f"title {text}", f"col {text}", f"cell {text}"):
        assert expected in out


def test_the_projects_own_styling_still_applies() -> None:
    buffer = io.StringIO()
    from rich.console import Console

    rich_console = Console(file=buffer, force_terminal=True, color_system="standard", width=100)
    rich_console.print(labelled("error:", "bold red", "[runn]"))
    out = buffer.getvalue()
    assert "\x1b[" in out and "[runn]" in out  # the label is coloured, the message literal
    assert styled("[[crash]]", "yellow").plain == "[[crash]]"


def test_print_error_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    print_error("x [[crash]]")
    captured = capsys.readouterr()
    assert captured.err.strip() == "error: x [[crash]]" and captured.out == ""


@pytest.mark.parametrize("argv, text", [
    (["mc", "--symbol", "BTC[/]", "--paths", "10"], "BTC[/]"),
    (["replay", "--crash", "[runn]"], "[runn]"),
    (["run", "--symbol", "[[crash]]"], "[[crash]]"),
    (["report", "runs/[runn]"], "[runn]"),
])
def test_commands_print_markup_like_arguments_verbatim(argv, text, tmp_path, monkeypatch) -> None:
    """The issue's cases end to end, through the boundary: no crash, the text is shown as typed."""
    from tests.fuzz.harness import run_in_process

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "1000")
    outcome = run_in_process([*argv, *(["--store", str(tmp_path / "store")] if argv[0] != "report" else [])])
    assert outcome.code != 0
    assert "internal error" not in outcome.text and "Traceback" not in outcome.text
    assert text in outcome.text


@pytest.mark.parametrize("line", [
    "[green]imported[/] BTC[/].csv",
    "[bold red]error:[/] window '[runn]' [[crash]]",
    "largest: [bold]9.72x[/]",
    "[red]error:[/red] [red]x",
    "report: [bold]/tmp/a[/]b[/bold]",
])
def test_no_string_is_read_as_markup(line, stdout) -> None:
    console().print(line, markup=True)  # an explicit markup=True cannot turn markup back on
    assert stdout.getvalue().strip() == line


def test_the_project_styles_through_text_objects(stdout) -> None:
    from backtest.cli.output import labelled, styled

    line = labelled("imported", "green", "BTC[/].csv")
    assert [span.style for span in line.spans] == ["green"] and line.plain == "imported BTC[/].csv"
    assert styled("[runn]", "bold").plain == "[runn]"
    console().print(line)
    assert stdout.getvalue().strip() == "imported BTC[/].csv"
