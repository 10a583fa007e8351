"""``margincall run``: one backtest from a TOML run file and/or flags.

Run file layout (every table optional; flags override the file)::

    [data]
    exchange = "binanceusdm"
    symbols = ["BTC/USDT:USDT"]
    timeframe = "1h"
    detail_timeframe = "1m"
    start = "2024-03-01"
    end = "2024-04-01"
    store = ".margincall/store"

    [strategy]
    name = "sma_cross"
    params = { fast = 20, slow = 100 }

    [run]              # any RunConfig key (initial_balance, leverage, margin_mode, ...)
    leverage = 10
    out = "runs/sma"   # output folder
"""
from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from backtest.cli.output import fail, parse_params
from backtest.cli.shared import BalanceOpt, MarginModeOpt, PathPolicyOpt, SlippageOpt, print_data_warnings
from backtest.errors import ConfigError, did_you_mean

_TABLES = {"data": ("exchange", "symbols", "timeframe", "detail_timeframe", "start", "end", "store"),
           "strategy": ("name", "params"),
           "run": None}


def _fail(message: str) -> typer.Exit:
    return fail(message, stderr=True)


def load_run_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read and check a run file; errors name the key, what was expected and a suggestion."""
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"run file {path}: not found; pass an existing --config path") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"run file {path}: not valid TOML ({exc})") from None
    out: dict[str, dict[str, Any]] = {"data": {}, "strategy": {}, "run": {}}
    for table, values in raw.items():
        if table not in _TABLES:
            raise ConfigError(f"run file {path}: unknown table [{table}]{did_you_mean(table, _TABLES)}; "
                              f"expected {', '.join(f'[{t}]' for t in _TABLES)}")
        if not isinstance(values, dict):
            raise ConfigError(f"run file {path}: [{table}] must be a table, found {values!r}")
        allowed = _TABLES[table]
        for key in values:
            if allowed is not None and key not in allowed:
                raise ConfigError(f"run file {path}: unknown key [{table}].{key}"
                                  f"{did_you_mean(key, allowed)}; expected one of {', '.join(allowed)}")
        out[table] = dict(values)
    return out


def _parse_time(value: Any, key: str) -> int | None:
    if value is None:
        return None
    from data_loaders.errors import DataError
    from data_loaders.schemas import to_ms

    try:
        return to_ms(value if isinstance(value, (int, datetime)) else str(value))
    except DataError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def run_command(
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML run file.")] = None,
    exchange: Annotated[Optional[str], typer.Option(help="ccxt exchange id (binanceusdm).")] = None,
    symbol: Annotated[Optional[list[str]], typer.Option("--symbol", help="Symbol, repeatable.")] = None,
    timeframe: Annotated[Optional[str], typer.Option(help="Strategy timeframe (1m, 1h...).")] = None,
    detail_timeframe: Annotated[Optional[str], typer.Option(help="Finer candles for the intrabar path.")] = None,
    start: Annotated[Optional[str], typer.Option(help="Start (UTC ISO date).")] = None,
    end: Annotated[Optional[str], typer.Option(help="End, exclusive (UTC ISO date).")] = None,
    strategy: Annotated[Optional[str], typer.Option(help="Built-in name or module:Class.")] = None,
    param: Annotated[Optional[list[str]], typer.Option("--param", help="Strategy parameter k=v, repeatable.")] = None,
    leverage: Annotated[Optional[float], typer.Option(help="Leverage.")] = None,
    margin_mode: MarginModeOpt = None,
    balance: BalanceOpt = None,
    venue: Annotated[Optional[str], typer.Option(help="Venue rules (binance_usdm).")] = None,
    path_policy: PathPolicyOpt = None,
    slippage: SlippageOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default runs/<name>).")] = None,
    store: Annotated[Optional[Path], typer.Option(help="Market store folder.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    report: Annotated[bool, typer.Option("--report/--no-report",
                                         help="Write report.html into the run folder.")] = True,
) -> None:
    """Run a backtest and write its results (Parquet, manifest.json, results.duckdb)."""
    from backtest import MarketData, RunConfig, run_backtest
    from backtest.errors import EngineError

    try:
        spec = load_run_file(config) if config else {"data": {}, "strategy": {}, "run": {}}
        data_spec, strat_spec, run_spec = spec["data"], spec["strategy"], dict(spec["run"])
        flags = {"initial_balance": balance, "leverage": leverage, "margin_mode": margin_mode,
                 "venue": venue, "path_policy": path_policy, "slippage": slippage}
        run_spec.update({k: v for k, v in flags.items() if v is not None})
        out_dir = out or run_spec.pop("out", None)
        run_spec.pop("out", None)
        run_spec.setdefault("progress", progress)
        run_config = RunConfig.from_mapping(run_spec, where=f"{config or 'flags'} [run]")
        symbols = symbol or data_spec.get("symbols") or ["BTC/USDT:USDT"]
        if isinstance(symbols, str):
            symbols = [s.strip() for s in symbols.split(",")]
        name = strategy or strat_spec.get("name") or "hold"
        params = dict(strat_spec.get("params") or {})
        params.update(parse_params(param))
        from data_loaders.store import MarketStore, default_root

        market_store = MarketStore(store or data_spec.get("store") or default_root())
        data = MarketData.from_store(
            market_store, exchange=exchange or data_spec.get("exchange", "binanceusdm"),
            symbols=symbols, timeframe=timeframe or data_spec.get("timeframe", "1h"),
            start=_parse_time(start or data_spec.get("start"), "start"),
            end=_parse_time(end or data_spec.get("end"), "end"),
            detail_timeframe=detail_timeframe or data_spec.get("detail_timeframe"))
        result = run_backtest(data, name, params=params, config=run_config)
    except (EngineError, ValueError, LookupError) as exc:
        raise _fail(str(exc)) from None
    target = Path(out_dir) if out_dir else Path("runs") / (run_config.name or name.replace(":", "_"))
    written = result.write(target)
    print_data_warnings(result.manifest.get("quality_warnings", ()))
    _print_summary(result.summary, written)
    if report:
        from reports import write_report

        typer.echo(f"report: {write_report(written)}")


def _print_summary(summary: dict[str, Any], folder: Path) -> None:
    from backtest.cli.output import console as output_console
    from rich.table import Table

    table = Table(title=f"run written to {folder}", show_header=False)
    rows = [("return", f"{summary['total_return']:+.2%}"),
            ("final equity", f"{summary['final_equity']:,.2f} USDT"),
            ("max drawdown", f"{summary['max_drawdown']:.2%}"),
            ("liquidations", str(summary["n_liquidations"])),
            ("fees", f"{summary['fees']:,.2f} USDT"),
            ("funding (received - paid)",
             f"{summary['funding_received'] - summary['funding_paid']:+,.2f} USDT"),
            ("slippage", f"{summary['slippage_cost']:,.2f} USDT"),
            ("bad debt", f"{summary['bad_debt']:,.2f} USDT"),
            ("fills / rejections", f"{summary['n_fills']} / {summary['n_rejections']}")]
    for key, value in rows:
        table.add_row(key, value)
    output_console().print(table)


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to the margincall app."""
    app.command("run")(run_command)
