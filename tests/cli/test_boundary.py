"""The CLI's one error boundary (``backtest.cli.run_cli`` / ``main``): project errors print
``error: <message>`` (exit 2), bugs a short "internal error" paragraph (exit 70) with the
traceback only under MARGINCALL_DEBUG=1, Ctrl-C exits 130, usage errors keep typer's format."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import typer

import backtest.cli as cli
from backtest.cli import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USER_ERROR, run_cli

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRACEBACK = "Traceback (most recent call last)"


def _project_errors() -> dict[str, Exception]:
    from backtest.errors import ConfigError, MarketDataError, StrategyError
    from backtest.risk.errors import ScenarioError
    from backtest.venues.errors import TierError, UnknownVenueError
    from data_loaders.ccxt_retry import RetriesExhaustedError
    from data_loaders.errors import DataNotFoundError, ImportFormatError
    from reports.rundir import RunDirError

    return {
        "config": ConfigError("leverage: expected a number > 0, found [runn]"),
        "market-data": MarketDataError("bars: expected sorted ts, found [[crash]]"),
        "strategy": StrategyError("strategy 'BTC[/]': expected a built-in"),
        "scenario": ScenarioError("scenario 'vol:inf': expected a finite factor"),
        "tier": TierError("tiers: expected increasing floors"),
        "unknown-venue": UnknownVenueError("venue 'x': expected binance_usdm"),
        "data-not-found": DataNotFoundError("ohlcv BTC: nothing stored; expected a fetch first"),
        "import-format": ImportFormatError("x.zip: expected one member, found 2"),
        "run-dir": RunDirError("runs/x: expected a run directory"),
        "retries": RetriesExhaustedError("fetch_ohlcv", 6, TimeoutError("slow")),
    }


@pytest.fixture
def app_raising(monkeypatch: pytest.MonkeyPatch):
    """Point the boundary at a one-command app whose command raises the given exception."""

    def install(exc: BaseException | None = None, *, exit_code: int | None = None) -> None:
        app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

        @app.command()
        def boom(n: int = 1) -> None:
            if exit_code is not None:
                raise typer.Exit(exit_code)
            if exc is not None:
                raise exc

        @app.command()
        def other() -> None:  # two commands: the app is a group, as margincall is
            pass

        monkeypatch.setattr(cli, "build_app", lambda: app)

    return install


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run_cli(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", sorted(_project_errors()))
def test_a_project_error_prints_its_message_on_stderr_and_exits_2(name: str, app_raising,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARGINCALL_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "500")
    exc = _project_errors()[name]
    app_raising(exc)
    code, out, err = _run(["boom"])
    assert code == EXIT_USER_ERROR
    assert err.strip() == f"error: {exc}"  # verbatim: markup-like text such as [runn] survives
    assert out == "" and TRACEBACK not in err and "internal error" not in err


def test_an_unexpected_exception_is_a_short_internal_error_with_exit_70(app_raising,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARGINCALL_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "500")
    app_raising(ZeroDivisionError("float division by zero [runn]"))
    code, out, err = _run(["boom", "--n", "3"])
    assert code == EXIT_INTERNAL
    assert TRACEBACK not in err and out == ""
    assert err.startswith("internal error:")
    for part in ("ZeroDivisionError", "float division by zero [runn]", "margincall boom --n 3",
                 "report", "MARGINCALL_DEBUG=1"):
        assert part in err, part
    assert len(err.strip().splitlines()) == 1  # one paragraph


def test_margincall_debug_prints_the_traceback(app_raising, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARGINCALL_DEBUG", "1")
    app_raising(KeyError("missing"))
    code, _, err = _run(["boom"])
    assert code == EXIT_INTERNAL
    assert TRACEBACK in err and "KeyError" in err and "internal error" in err


def test_ctrl_c_exits_130_with_one_line(app_raising) -> None:
    app_raising(KeyboardInterrupt())
    code, out, err = _run(["boom"])
    assert code == EXIT_INTERRUPTED
    assert TRACEBACK not in err + out
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err


def test_exit_codes_of_commands_pass_through(app_raising) -> None:
    app_raising(exit_code=3)
    assert _run(["boom"])[0] == 3
    app_raising()
    assert _run(["boom"])[0] == 0


def test_usage_errors_keep_typers_format_and_quote_the_value(app_raising, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "500")
    app_raising()
    code, _, err = _run(["boom", "--n", "abc"])
    assert code == 2
    assert "Invalid value for '--n'" in err and "(found 'abc')" in err and "Try '" in err
    code, _, err = _run(["boom", "--n=x[/]"])
    assert code == 2 and "(found 'x[/]')" in err
    code, _, err = _run(["nosuch"])
    assert code == 2 and "No such command 'nosuch'" in err and TRACEBACK not in err


def test_user_error_types_covers_every_package_error_base() -> None:
    from backtest.errors import user_error_types

    errors = _project_errors()  # imports every module that defines a base
    types = user_error_types()
    for name, exc in errors.items():
        assert isinstance(exc, types), name
    assert not issubclass(ValueError, types) and not issubclass(typer.Exit, types)


def _console_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``margincall ARGS`` as the console script runs it: ``main()`` in a fresh interpreter."""
    full_env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "COLUMNS": "500", **(env or {})}
    full_env.pop("MARGINCALL_DEBUG", None)
    return subprocess.run([sys.executable, "-c", "from backtest.cli import main; main()", *args],
                          capture_output=True, text=True, env=full_env, timeout=120)


def test_the_console_script_exits_with_the_boundarys_codes(tmp_path: Path) -> None:
    bad_int = _console_script("mc", "--paths", "abc")
    assert bad_int.returncode == 2 and "--paths" in bad_int.stderr and TRACEBACK not in bad_int.stderr
    missing = _console_script("report", str(tmp_path / "no[/]such [runn]"))
    assert missing.returncode != 0 and TRACEBACK not in missing.stdout + missing.stderr
    assert "no[/]such [runn]" in missing.stdout + missing.stderr  # printed verbatim, not eaten as markup
    assert _console_script("--help").returncode == 0
