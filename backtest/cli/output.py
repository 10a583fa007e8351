"""What the CLI commands share: the console, error exits, the store and ``--param`` values."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

#: Width of the output when it is not a terminal (rich would use 80 and wrap wide tables
#: cell by cell); ``COLUMNS`` in the environment still decides when set.
PIPE_WIDTH = 160


def console(*, stderr: bool = False) -> Any:
    """A ``rich.console.Console`` on stdout (or stderr), wide when not writing to a terminal.

    Markup is off: a string is printed as it is, so user text such as ``BTC[/]`` or
    ``[[crash]]`` can neither crash the print nor vanish from it (rich would read it as
    markup, even when a caller passes ``markup=True``). Style comes only from the project's
    own code, through :func:`styled`, :func:`labelled` or a ``style=`` argument.
    """
    from rich.console import Console

    class _ProjectConsole(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: A003 - rich's name
            kwargs.pop("markup", None)
            super().print(*objects, **kwargs)

    stream = sys.stderr if stderr else sys.stdout
    interactive = hasattr(stream, "isatty") and stream.isatty()
    width = None if interactive or os.environ.get("COLUMNS") else PIPE_WIDTH
    return _ProjectConsole(stderr=stderr, width=width, markup=False)


def styled(text: str, style: str) -> Any:
    """``text`` (taken literally, never as markup) drawn in ``style`` (e.g. ``"bold red"``)."""
    from rich.text import Text

    return Text(str(text), style=style)


def labelled(label: str, style: str, message: str) -> Any:
    """One line: ``label`` in ``style``, a space, then ``message`` as plain literal text.

    ``labelled("warning:", "yellow", text)`` replaces ``f"[yellow]warning:[/] {text}"``,
    which rich would parse as markup, user text included.
    """
    from rich.text import Text

    return Text.assemble((label, style), " ", str(message))


def print_error(message: str, *, stderr: bool = True) -> None:
    """Print ``error: message`` (the label in bold red, the message literal), soft-wrapped."""
    console(stderr=stderr).print(labelled("error:", "bold red", message), highlight=False, soft_wrap=True)


def fail(message: str, *, stderr: bool = False) -> typer.Exit:
    """Print ``error: message`` and return the exit for the caller to raise.

    The exit code is :data:`backtest.cli.EXIT_USER_ERROR` (2): a bad option value or input a
    command refuses is the same kind of mistake as a project error reaching the error boundary
    or a click usage error, so all three exit alike (1 stays a command's own failed outcome,
    e.g. ``data check`` finding errors).
    """
    from backtest.cli import EXIT_USER_ERROR

    print_error(message, stderr=stderr)
    return typer.Exit(EXIT_USER_ERROR)


def open_store(path: Path | None) -> Any:
    """The ``MarketStore`` at ``path``, else the default one."""
    from data_loaders.store import MarketStore, default_root

    return MarketStore(path or default_root())


def option_value(text: str) -> Any:
    """A command-line value as int, float, bool (``true``/``false``) or the text itself."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``--param NAME=VALUE`` options as a dict (values through :func:`option_value`).

    Raises
    ------
    backtest.errors.ConfigError
        For a pair without ``=`` or without a name.
    """
    from backtest.errors import ConfigError

    out: dict[str, Any] = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r}: expected NAME=VALUE, e.g. --param side=long")
        out[key.strip()] = option_value(value.strip())
    return out


def option_time(flag: str, text: str | None) -> int | None:
    """A time option (``--start``, ``--end``) as epoch ms (UTC), or None when not given.

    The one place a command-line time is read, so every refusal names the flag:
    ``--start 'abc': expected an ISO date such as ...`` (the rule itself is
    :func:`data_loaders.schemas.to_ms`).

    Raises
    ------
    typer.Exit
        After printing the error, for text that is not a date.
    """
    if text is None:
        return None
    from data_loaders.errors import DataError
    from data_loaders.schemas import to_ms

    try:
        return to_ms(text)
    except DataError as exc:
        raise fail(f"{flag}: {exc}; fix the option's value") from None


def option_timeframe(flag: str, text: str | None) -> str | None:
    """A timeframe option checked by :func:`data_loaders.schemas.timeframe_ms` (None passes)."""
    if text is None:
        return None
    from data_loaders.errors import DataError
    from data_loaders.schemas import timeframe_ms

    try:
        timeframe_ms(text)
    except DataError as exc:
        raise fail(f"{flag}: {exc}; fix the option's value") from None
    return text


def option_choice(flag: str, text: str | None, choices: tuple[str, ...]) -> str | None:
    """``text`` when it is one of ``choices`` (None passes), else a clear error naming ``flag``."""
    if text is None or text in choices:
        return text
    from backtest.errors import did_you_mean

    raise fail(f"{flag} {text!r}: expected one of {', '.join(choices)}{did_you_mean(text, choices)}")
