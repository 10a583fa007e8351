"""The ``margincall`` command line.

Each command group lives in its own module exposing ``register(app)``; this module only
assembles them, so ``import backtest`` stays light and optional dependencies (ccxt, plotly,
ray) are imported by the commands that need them.
"""
from __future__ import annotations

import importlib

import typer

_GROUPS = ("demo", "data", "fetch", "run", "report", "risk", "lending")


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


def main() -> None:
    """Console-script entry point."""
    build_app()()
