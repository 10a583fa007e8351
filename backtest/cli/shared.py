"""What ``run`` and the risk commands share: the run-configuration options and the data warnings.

Also the options, value parsers and table printing that the risk commands (``replay``,
``stress``, ``mc``, ``survive``: :mod:`backtest.cli.risk`; ``sweep``: :mod:`backtest.cli.sweep`)
and their neighbours (``compare``, ``lending``) share, one home each.

One home for the options that size and configure a run (``--balance``, ``--margin-mode``,
``--path-policy``, ``--slippage``), so ``run``, ``replay`` and ``stress`` accept the same
names with the same help and the same validation (:class:`backtest.config.RunConfig`); and
one place that prints data-quality warnings (mark = last price, built-in tables used, gaps,
no funding ...) on the console, for every command that reads market data.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from backtest.cli.output import console, fail

__all__ = ["HEADERS", "BalanceOpt", "ExchangeOpt", "LeverageOpt", "MarginModeOpt", "McSeedOpt", "McSigmaOpt",
           "PathPolicyOpt", "SlippageOpt",
           "StoreOpt", "StrategyOpt", "parse_floats", "parse_leverages", "print_data_warnings", "print_frame",
           "provenance_section", "risk_errors", "run_config"]

#: The timeframe every command uses when ``--timeframe`` is not given (fetch what run reads).
DEFAULT_TIMEFRAME = "1h"

BalanceOpt = Annotated[Optional[float], typer.Option(
    "--balance", help="Initial wallet balance, USDT (default 10,000).")]
MarginModeOpt = Annotated[Optional[str], typer.Option(
    "--margin-mode", help="isolated or cross (default isolated).")]
PathPolicyOpt = Annotated[Optional[str], typer.Option(
    "--path-policy", help="Intrabar path: worst_case, adaptive, ohlc, olhc (default worst_case).")]
SlippageOpt = Annotated[Optional[str], typer.Option(
    "--slippage", help="Slippage model: none, fixed or sqrt (default sqrt).")]
StoreOpt = Annotated[Optional[Path], typer.Option("--store", help="Store folder (default: $MARGINCALL_HOME/store, else ./.margincall/store).")]
StrategyOpt = Annotated[str, typer.Option("--strategy", help="Built-in strategy name or module:Class.")]
LeverageOpt = Annotated[str, typer.Option("--leverage", help="Comma-separated leverages >= 1, e.g. 2,5,10,20,50.")]
ExchangeOpt = Annotated[str, typer.Option("--exchange", help="ccxt exchange id of the stored data.")]
#: The risk lab's Monte Carlo paths of ``--mc`` (``margincall platform``, ``lending --platform``).
McSigmaOpt = Annotated[float, typer.Option(
    "--mc-sigma", help="Volatility of --mc paths: log-return sd per minute (0.004 = a stressed market).")]
McSeedOpt = Annotated[int, typer.Option("--mc-seed", help="Seed of the --mc (Monte Carlo) paths.")]


def parse_floats(text: str, what: str) -> list[float]:
    """Comma-separated finite numbers > 0 (an option's values), else a clear error exit."""
    import math

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise fail(f"{what} {text!r}: expected comma-separated numbers, e.g. 2,5,10") from None
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        raise fail(f"{what} {text!r}: expected finite numbers > 0, e.g. 2,5,10")
    return values


def parse_leverages(text: str, option: str = "--leverage") -> list[float]:
    """``--leverage`` values: finite and >= 1 (below 1 the margin would exceed the position)."""
    values = parse_floats(text, option)
    low = [v for v in values if v < 1]
    if low:
        raise fail(f"{option} {text!r}: expected leverages >= 1 (notional / margin), found {low[0]:g}; "
                   f"e.g. {option} 1,2,5,10")
    return values


def print_frame(frame: Any, title: str, columns: list[str] | None = None, *,
                tick_size: float | None = None) -> None:
    """Print a result table, each cell by its column's meaning (prices at ``tick_size``)."""
    from rich.table import Table

    from backtest.formatting import fmt_column

    columns = [c for c in (columns or frame.columns) if c in frame.columns]
    table = Table(title=title)
    for column in columns:
        table.add_column(HEADERS.get(column, column), overflow="fold")
    for row in frame.iter_rows(named=True):
        table.add_row(*[fmt_column(c, row[c], tick_size=tick_size) for c in columns])
    console().print(table)


#: Column headers that say what a figure's sign means.
HEADERS = {"net_funding_received": "funding (received − paid), USDT"}


def risk_errors() -> tuple[type[Exception], ...]:
    """The project's error base classes each risk command maps to a clear message."""
    from backtest.errors import EngineError
    from backtest.risk.errors import RiskError
    from backtest.venues.errors import VenueError

    errors: tuple[type[Exception], ...] = (RiskError, EngineError, VenueError)
    try:
        from data_loaders.errors import DataError
        errors += (DataError,)
    except ImportError:
        pass
    return errors


def provenance_section(manifest: Any) -> tuple[str, str, Any]:
    """The page section of an output's manifest (a dict, or the manifest file written)."""
    import json

    from backtest.risk import report_sections as rs

    record = json.loads(Path(manifest).read_text(encoding="utf-8")) if isinstance(manifest, Path) else manifest
    return ("provenance", "Provenance", lambda t: rs.provenance_section(record, title=t))


#: Option name -> RunConfig key.
_KEYS = {"balance": "initial_balance", "margin_mode": "margin_mode", "path_policy": "path_policy",
         "slippage": "slippage"}


def run_config(*, where: str = "flags", **options: Any) -> Any:
    """A validated ``RunConfig`` from the shared options (None = the default).

    Parameters
    ----------
    where : str
        Names the options in errors.
    **options
        ``balance``, ``margin_mode``, ``path_policy``, ``slippage`` (and any other RunConfig
        key under its own name).

    Raises
    ------
    backtest.errors.ConfigError
        For a value RunConfig refuses (the message names the option and what it expects).
    """
    from backtest.config import RunConfig

    values = {_KEYS.get(name, name): value for name, value in options.items() if value is not None}
    return RunConfig.from_mapping(values, where=where)


def print_data_warnings(warnings: Iterable[str], *, console: Any = None) -> None:
    """Print each distinct data-quality warning once, as ``data quality: ...`` (markup-safe)."""
    from backtest.cli.output import console as make_console
    from backtest.cli.output import labelled

    out = console or make_console()
    for warning in dict.fromkeys(w for w in warnings if w):
        out.print(labelled("data quality:", "yellow", warning), highlight=False, soft_wrap=True)
