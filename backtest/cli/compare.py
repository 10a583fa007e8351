"""``margincall compare``: one strategy and configuration under several venues' rules.

The prices are one exchange's (``--prices-from``, default ``binanceusdm``), stated in the
output as ``prices: <exchange>, rules: <venue>`` per venue; each venue runs with its own
built-in tiers, contract spec, fees and liquidation fee (:mod:`backtest.compare`). The output
folder holds ``venue_comparison.parquet``, ``venue_survival.parquet``, ``results.duckdb``
(views of both), ``manifest.json`` and ``comparison.html``, written whole or not at all.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from backtest.cli.output import console as _console
from backtest.cli.output import fail as _fail
from backtest.cli.output import labelled
from backtest.cli.output import open_store as _store
from backtest.cli.output import option_time as _option_time
from backtest.cli.output import option_timeframe as _option_timeframe
from backtest.cli.output import parse_params
from backtest.cli.shared import BalanceOpt, MarginModeOpt, PathPolicyOpt, SlippageOpt, print_data_warnings, run_config

#: The page written into the comparison folder.
PAGE = "comparison.html"
#: Columns shown on the console (the Parquet table holds them all).
_SHOWN = ["venue", "leverage", "symbol", "liquidation_price_at_entry", "liquidated", "first_liquidation", "loss",
          "fees", "net_funding_received", "bad_debt", "insurance_fund_events", "adl_events", "reason"]


def compare_command(
    venues: Annotated[str, typer.Option(
        "--venues", help="'all' (every registered venue) or comma-separated venue names.")] = "all",
    leverages: Annotated[str, typer.Option(
        "--leverages",
        help="Comma-separated leverages >= 1 for the survival table, e.g. 2,5,10,20,50.")] = "2,5,10,20,50",
    strategy: Annotated[str, typer.Option("--strategy", help="Built-in strategy name or module:Class.")] = "hold",
    param: Annotated[Optional[list[str]], typer.Option(
        "--param", help="Strategy parameter NAME=VALUE (repeat).")] = None,
    symbol: Annotated[Optional[str], typer.Option(
        "--symbol", help="ccxt symbol of the prices (default: the price exchange's first built-in one, "
                         "e.g. BTC/USDT:USDT).")] = None,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Strategy timeframe (1m, 5m, 1h ...).")] = "1h",
    start: Annotated[Optional[str], typer.Option("--start", help="Window start (UTC ISO date).")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Window end, exclusive (UTC ISO date).")] = None,
    prices_from: Annotated[str, typer.Option(
        "--prices-from", help="ccxt exchange id whose stored prices drive every venue's rules "
                              "(stated in the output as 'prices: X, rules: Y').")] = "binanceusdm",
    balance: BalanceOpt = None,
    margin_mode: MarginModeOpt = None,
    path_policy: PathPolicyOpt = None,
    slippage: SlippageOpt = None,
    store: Annotated[Optional[Path], typer.Option(
        "--store", help="Store folder (default: $MARGINCALL_HOME/store, else ./.margincall/store).")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Output folder (default runs/compare-<strategy>).")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace the comparison already in the output folder.")] = False,
) -> None:
    """Run one strategy under every listed venue's rules on the same prices and compare them.

    Per venue and leverage: liquidation price at entry, whether and when liquidated, loss, fees,
    funding, bad debt, insurance-fund and ADL events; and a survival table of leverage by venue.
    A venue that cannot trade the symbol (e.g. an inverse venue for a USDT symbol) is a row with
    the reason.
    """
    from backtest.compare import compare_venues, parse_venues, write_comparison
    from backtest.config import default_run_name
    from backtest.market_data import MarketData
    from backtest.cli.risk import _leverages
    from backtest.runfolder import check_output_folder

    grid = _leverages(leverages, "--leverages")
    try:
        names = parse_venues(venues)
        config = run_config(balance=balance, margin_mode=margin_mode, path_policy=path_policy, slippage=slippage)
        params = parse_params(param)
        _option_timeframe("--timeframe", timeframe)
        start_ms, end_ms = _option_time("--start", start), _option_time("--end", end)
        if start_ms is not None and end_ms is not None and end_ms <= start_ms:
            raise _fail(f"--end {end!r}: expected a time after --start {start!r}; the window is [start, end)")
        target = check_output_folder(out or Path("runs") / default_run_name(f"compare-{strategy}"),
                                     overwrite=overwrite)
        price_symbol = symbol or _default_symbol(prices_from)
        data = MarketData.from_store(_store(store), exchange=prices_from, symbols=[price_symbol],
                                     timeframe=timeframe, start=start_ms, end=end_ms)
        comparison = compare_venues(data, strategy, venues=names, leverages=grid, params=params, config=config,
                                    progress=lambda v: _console(stderr=True).print(f"running {v} ...",
                                                                                   highlight=False))
        manifest = {"strategy": {"name": comparison.strategy, "params": params}, "config": config.to_dict(),
                    "leverages": grid, "timeframe": timeframe, "window": {"start": start, "end": end},
                    "data": data.sources}

        def page(folder: Path) -> Path:
            from reports.venue_compare import write_comparison_page

            return write_comparison_page(comparison, folder / PAGE)

        written = write_comparison(comparison, target, manifest=manifest, overwrite=overwrite, page=page)
    except _errors() as exc:
        raise _fail(str(exc)) from None
    print_data_warnings(comparison.warnings)
    _print(comparison)
    _console().print(f"wrote {written} (tables venue_comparison, venue_survival; page {PAGE})", highlight=False)


def _default_symbol(exchange: str) -> str:
    from backtest.errors import ConfigError
    from backtest.venues.defaults import known_symbols
    from backtest.venues.errors import VenueError

    try:
        return known_symbols(exchange)[0]
    except VenueError:
        raise ConfigError(f"--symbol: no default symbol for prices of {exchange!r} (no built-in tables); "
                          f"pass the stored symbol, e.g. --symbol BTC/USDT:USDT") from None


def _errors() -> tuple[type[Exception], ...]:
    from backtest.errors import EngineError
    from backtest.venues.errors import VenueError
    from data_loaders.errors import DataError

    return (EngineError, VenueError, DataError)


def _print(comparison: Any) -> None:
    from rich.table import Table

    from backtest.formatting import fmt_column

    out = _console()
    sources = ", ".join(dict.fromkeys(comparison.table["price_source"].to_list()))
    out.print(labelled("price source:", "cyan", sources), highlight=False, soft_wrap=True)
    table = Table(title=f"{comparison.strategy} on {comparison.symbol} under each venue's rules")
    for column in _SHOWN:
        table.add_column(column, overflow="fold")
    for row in comparison.table.iter_rows(named=True):
        table.add_row(*[fmt_column(c, row[c]) for c in _SHOWN])
    out.print(table)
    survival = comparison.survival
    grid = Table(title="survival by leverage and venue")
    for column in survival.columns:
        grid.add_column(column)
    for row in survival.iter_rows():
        grid.add_row(f"{row[0]:g}x", *row[1:])
    out.print(grid)


def register(app: typer.Typer) -> None:
    """Add the ``compare`` command to the margincall app."""
    app.command("compare")(compare_command)
