"""What ``run`` and the risk commands share: the run-configuration options and the data warnings.

One home for the options that size and configure a run (``--balance``, ``--margin-mode``,
``--path-policy``, ``--slippage``), so ``run``, ``replay`` and ``stress`` accept the same
names with the same help and the same validation (:class:`backtest.config.RunConfig`); and
one place that prints data-quality warnings (mark = last price, built-in tables used, gaps,
no funding ...) on the console, for every command that reads market data.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Optional

import typer

__all__ = ["BalanceOpt", "MarginModeOpt", "PathPolicyOpt", "SlippageOpt", "print_data_warnings",
           "run_config"]

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
