"""Every option of every command has help text, and the timeframe default is one constant.

Walks the click command tree typer builds (``typer.main.get_command``): every parameter of
every command and sub-command, so a new option without help fails here.
"""
from __future__ import annotations

import typer.main

from backtest.cli import build_app
from backtest.cli.shared import DEFAULT_TIMEFRAME


def _commands(command, path: str = "margincall"):  # noqa: ANN001, ANN202 - typer's vendored click
    yield path, command
    if hasattr(command, "commands"):  # a group
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


def _tree() -> list:
    return list(_commands(typer.main.get_command(build_app())))


def test_every_option_has_help_text():
    missing = []
    options = 0
    for path, command in _tree():
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            options += 1
            if not (param.help or "").strip():
                missing.append(f"{path} {param.opts[0]}")
    assert options > 100  # the walk reached the whole tree
    assert not missing, "options without help text:\n" + "\n".join(missing)


def test_every_command_has_help_text():
    bare = [path for path, command in _tree() if not (command.help or command.short_help or "").strip()]
    assert not bare, bare


def test_every_timeframe_option_defaults_to_the_one_constant():
    found = {}
    for path, command in _tree():
        for param in command.params:
            if param.param_type_name == "option" and param.name == "timeframe" and param.default is not None:
                found[path] = param.default
    assert len(found) >= 5, found  # run, fetch, stress, mc, sweep, replay, cascade ...
    assert set(found.values()) == {DEFAULT_TIMEFRAME}, found
