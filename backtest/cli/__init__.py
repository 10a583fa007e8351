"""The ``margincall`` command line.

Each command group lives in its own module exposing ``register(app)``; this module only
assembles them, so ``import backtest`` stays light and optional dependencies (ccxt, plotly,
ray) are imported by the commands that need them.

:func:`run_cli` is the one error boundary every command runs inside, so no exception reaches
the user as a traceback:

* the project's bad-input errors (:func:`backtest.errors.user_error_types`) print
  ``error: <message>`` on stderr, exit code 2 (:data:`EXIT_USER_ERROR`);
* typer/click usage errors keep their own formatting and exit code (2);
* Ctrl-C prints one line, exit code 130 (:data:`EXIT_INTERRUPTED`);
* anything else is a bug: a short "internal error" paragraph naming the exception and the
  command line, exit code 70 (:data:`EXIT_INTERNAL`, ``EX_SOFTWARE``). The traceback is
  printed only when ``MARGINCALL_DEBUG=1``.
"""
from __future__ import annotations

import importlib
import os
import shlex
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

import typer

#: Exit code of a bad-input error raised by the project (the same as a click usage error).
EXIT_USER_ERROR = 2
#: Exit code of an unexpected exception (a bug): ``EX_SOFTWARE`` of ``sysexits.h``.
EXIT_INTERNAL = 70
#: Exit code of Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: Environment variable that, set to 1, prints the traceback of any error.
DEBUG_ENV = "MARGINCALL_DEBUG"

_GROUPS = ("demo", "data", "fetch", "run", "report", "risk", "sweep", "runs", "new_strategy", "cascade", "lending", "venues", "platform", "compare")


def build_app() -> typer.Typer:
    """Return the ``margincall`` typer application with every command group registered."""
    app = typer.Typer(
        name="margincall",
        help="Backtest leveraged crypto strategies under exact exchange margin rules.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for group in _GROUPS:
        module_name = f"backtest.cli.{group}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(app)
    return app


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _command_line(args: Sequence[str]) -> str:
    return shlex.join(["margincall", *args])


def _invoke(args: list[str]) -> int:
    """Run the app on ``args`` (click's non-standalone mode) and return its exit code."""
    try:
        returned = build_app()(args=args, prog_name="margincall", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors (typer's vendored click)
        # typer's own rendering, exactly as in standalone mode, plus the value it refused
        from typer import rich_utils

        _add_found_value(exc, args)

        rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
        return exc.exit_code
    except typer.Abort:
        from typer import rich_utils

        rich_utils.rich_abort_error()
        return 1
    # non-standalone click returns the exit code of typer.Exit, or the command's own value
    return returned if isinstance(returned, int) else 0


def _add_found_value(exc: Exception, args: list[str]) -> None:
    """Append ``(found 'VALUE')`` to a bad-option-value error that does not quote the value.

    typer's parse errors say what was expected ("Input should be a valid integer") but not
    what was given; the value is taken from the command line, after the option's name.
    """
    opts = getattr(getattr(exc, "param", None), "opts", None)
    message = getattr(exc, "message", None)
    if not opts or not isinstance(message, str):
        return
    for index, arg in enumerate(args):
        for opt in opts:
            if arg == opt and index + 1 < len(args):
                value = args[index + 1]
            elif arg.startswith(f"{opt}="):
                value = arg[len(opt) + 1:]
            else:
                continue
            if repr(value) not in message:
                exc.message = f"{message} (found {value!r})"  # type: ignore[attr-defined]
            return


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run ``margincall`` with ``argv`` (default ``sys.argv[1:]``) inside the error boundary.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name.

    Returns
    -------
    int
        The exit code: 0 success, 1 a command's own failure, 2 bad input (usage or project
        error), 70 internal error, 130 interrupted.
    """
    from backtest.cli.output import console, print_error

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _invoke(args)
    except SystemExit as exc:  # sys.exit inside a command (or click's broken-pipe exit)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - this is the boundary
        from backtest.errors import user_error_types

        if _debug():
            traceback.print_exception(exc, file=sys.stderr)
        if isinstance(exc, user_error_types()):
            print_error(str(exc) or type(exc).__name__)
            return EXIT_USER_ERROR
        kind = type(exc).__qualname__
        if type(exc).__module__ != "builtins":
            kind = f"{type(exc).__module__}.{kind}"
        message = (f"margincall stopped on an unexpected {kind}: "
                   f"{exc} (command: {_command_line(args)}). This is a bug in margincall (even bad "
                   "input should get a clear error, never this): please report it with this message"
                   + ("." if _debug() else f", and rerun with {DEBUG_ENV}=1 to see the traceback."))
        console(stderr=True).print(_internal_label(), message, highlight=False, soft_wrap=True)
        return EXIT_INTERNAL
    if code == EXIT_INTERRUPTED:
        # typer turns Ctrl-C into Exit(130) silently; say what happened in one line
        console(stderr=True).print("interrupted (Ctrl-C): stopped before the command finished",
                                   highlight=False, soft_wrap=True)
    return code


def _internal_label() -> Any:
    from backtest.cli.output import styled

    return styled("internal error:", "bold red")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point: :func:`run_cli` on ``argv`` and exit with its code."""
    sys.exit(run_cli(argv))
