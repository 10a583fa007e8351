"""``margincall new-strategy NAME``: write a commented strategy template that runs as it is.

``margincall new-strategy my_breakout`` writes ``my_breakout.py`` holding class
``MyBreakout``; run it with ``margincall run --strategy my_breakout.py:MyBreakout``. An
existing file is never replaced (``--out`` picks another path).
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def register(app: typer.Typer) -> None:
    """Attach the ``new-strategy`` command to the root application."""
    app.command("new-strategy")(new_strategy)


def class_name_of(name: str) -> str:
    """``my_breakout`` -> ``MyBreakout`` (``sma2`` -> ``Sma2``)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def write_template(name: str, out: Path | None = None) -> tuple[Path, str]:
    """Write the template for strategy ``name``; return the file and the class name.

    Raises
    ------
    backtest.errors.StrategyError
        For a name that is not an identifier, or when the file exists (nothing is written).
    """
    from backtest.cli.strategy_template import render
    from backtest.errors import StrategyError

    if not _NAME.match(name):
        raise StrategyError(
            f"new-strategy {name!r}: expected a name of letters, digits and underscores starting "
            f"with a letter, e.g. my_breakout")
    target = Path(out) if out is not None else Path(f"{name}.py")
    if target.suffix != ".py":
        raise StrategyError(f"--out {target}: expected a .py file path, e.g. --out {name}.py")
    cls = class_name_of(name)
    text = render(class_name=cls, name=name, file=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            os.link(tmp, target)  # atomic and refuses an existing file (never replaces one)
        except FileExistsError:
            raise StrategyError(
                f"{target}: expected a new file, found one already there; pass --out with another "
                f"path or remove it yourself") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target, cls


def new_strategy(
    name: Annotated[str, typer.Argument(help="Strategy name (letters, digits, _), e.g. my_breakout.",
                                        show_default=False)],
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="File to write (default NAME.py in the current folder); never replaced.")] = None,
) -> None:
    """Write a commented strategy template that runs as it is."""
    from backtest.cli.output import fail
    from backtest.errors import StrategyError

    try:
        target, cls = write_template(name, out)
    except StrategyError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{out or name + '.py'}: expected a writable path, found {exc.strerror or exc}; "
                   f"pass --out with a writable file path") from None
    typer.echo(f"wrote {target} (class {cls})")
    typer.echo(f"run it: margincall run --strategy {target}:{cls} --symbol BTC/USDT:USDT --timeframe 1h")
