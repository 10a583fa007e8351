"""``margincall run``: one backtest from a TOML run file and/or flags.

Run file layout (every table optional; flags override the file)::

    [data]
    exchange = "binanceusdm"     # prices; must be the venue's own exchange unless ...
    # prices_from = "binanceusdm"  # ... said here: these prices drive another venue's rules
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
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from backtest.cli.output import fail, parse_params
from backtest.cli.shared import (DEFAULT_TIMEFRAME, BalanceOpt, MarginModeOpt, PathPolicyOpt, SlippageOpt,
                                 print_data_warnings)
from backtest.config import RUN_FILE_SCHEMA, checked, default_run_name
from backtest.errors import ConfigError, did_you_mean

_TABLES = ("data", "strategy", "run")

#: RunConfig keys that have a flag of their own: key -> flag.
_RUN_FLAGS = {"initial_balance": "--balance", "leverage": "--leverage", "margin_mode": "--margin-mode",
              "venue": "--venue", "path_policy": "--path-policy", "slippage": "--slippage"}
#: Run-file keys that have a flag of their own: (table, key) -> flag.
_FILE_FLAGS = {("data", "exchange"): "--exchange", ("data", "prices_from"): "--prices-from", ("data", "symbols"): "--symbol",
               ("data", "timeframe"): "--timeframe", ("data", "detail_timeframe"): "--detail-timeframe",
               ("data", "start"): "--start", ("data", "end"): "--end", ("data", "store"): "--store",
               ("strategy", "name"): "--strategy", ("run", "out"): "--out"}


def _fail(message: str) -> typer.Exit:
    return fail(message, stderr=True)


def load_run_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read and check a run file; errors name the key, what was expected and a suggestion.

    ``[data]`` and ``[strategy]`` keys and ``[run].out`` are checked against
    ``backtest.config.RUN_FILE_SCHEMA`` (values returned normalised: times in epoch ms,
    symbols as a list); the other ``[run]`` keys are RunConfig keys, checked when the
    RunConfig is built.
    """
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"run file {path}: not found; pass an existing --config path") from None
    except IsADirectoryError:
        raise ConfigError(f"run file {path}: expected a TOML file, found a folder; pass the "
                          f"run file's path to --config") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"run file {path}: expected UTF-8 TOML text, found undecodable bytes "
                          f"({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"run file {path}: not valid TOML; expected TOML syntax with each key once per "
                          f"table, found {exc}{_quoted_line(path, str(exc))}; fix the line named") from None
    except RecursionError:
        raise ConfigError(f"run file {path}: expected a run file of [data], [strategy] and [run] tables, "
                          "found arrays or tables nested too deeply to read; fix the file") from None
    out: dict[str, dict[str, Any]] = {"data": {}, "strategy": {}, "run": {}}
    for table, values in raw.items():
        if table not in _TABLES:
            if not isinstance(values, dict):
                raise ConfigError(
                    f"run file {path}: key {table!r} is outside a table; expected it under "
                    f"[data], [strategy] or [run] (e.g. [run] then {table} = ...)")
            raise ConfigError(f"run file {path}: unknown table [{table}]{did_you_mean(table, _TABLES)}; "
                              f"expected {', '.join(f'[{t}]' for t in _TABLES)}")
        if not isinstance(values, dict):
            raise ConfigError(f"run file {path}: [{table}] must be a table, found {values!r}; "
                              f"write it as [{table}] followed by key = value lines")
        schema = RUN_FILE_SCHEMA[table]
        for key, value in values.items():
            if table == "run" and key not in schema:
                out["run"][key] = value  # a RunConfig key: checked by RunConfig.from_mapping
            elif key not in schema:
                raise ConfigError(f"run file {path}: unknown key [{table}].{key}"
                                  f"{did_you_mean(key, schema)}; expected one of {', '.join(schema)}")
            else:
                out[table][key] = checked(key, value, where=f"run file {path} [{table}]",
                                          check=schema[key])
    return out


def _quoted_line(path: Path, message: str) -> str:
    """`` (line 13: `leverage = 6`)`` for a TOML error that names a line, else ``""``."""
    import re

    match = re.search(r"at line (\d+)", message)
    try:
        line = path.read_text("utf-8").splitlines()[int(match.group(1)) - 1] if match else ""
    except (OSError, UnicodeDecodeError, IndexError):
        return ""
    return f" (line {match.group(1)}: `{line.strip()[:120]}`)" if line.strip() else ""


def _flag(table: str, key: str, value: Any) -> Any:
    """A flag's value checked by the same schema entry as the run file's key."""
    return checked(key, value, where="flags", check=RUN_FILE_SCHEMA[table][key],
                   subject=_FILE_FLAGS[(table, key)])


def run_command(
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML run file.")] = None,
    exchange: Annotated[Optional[str], typer.Option(
        help="ccxt exchange id of the prices (default: the venue's own, e.g. binanceusdm).")] = None,
    prices_from: Annotated[Optional[str], typer.Option(
        "--prices-from", help="Drive the venue's rules with this exchange's prices (e.g. binanceusdm "
                              "prices under --venue bybit_linear); stated in the manifest.")] = None,
    symbol: Annotated[Optional[list[str]], typer.Option("--symbol", help="Symbol, repeatable.")] = None,
    timeframe: Annotated[Optional[str], typer.Option(help="Strategy timeframe: 1m, 5m, 1h ... (default 1h for every command).")] = None,
    detail_timeframe: Annotated[Optional[str], typer.Option(help="Finer candles for the intrabar path.")] = None,
    start: Annotated[Optional[str], typer.Option(help="Start (UTC ISO date).")] = None,
    end: Annotated[Optional[str], typer.Option(help="End, exclusive (UTC ISO date).")] = None,
    strategy: Annotated[Optional[str], typer.Option(help="Built-in name or module:Class.")] = None,
    param: Annotated[Optional[list[str]], typer.Option("--param", help="Strategy parameter k=v, repeatable.")] = None,
    leverage: Annotated[Optional[float], typer.Option(help="Leverage (>= 1).")] = None,
    margin_mode: MarginModeOpt = None,
    balance: BalanceOpt = None,
    venue: Annotated[Optional[str], typer.Option(
        help="Venue rules, a registered name (`margincall venues`): binance_usdm (default), binance_coinm "
             "(inverse, symbols like BTC/USD:BTC), ...; its own exchange's prices unless --prices-from.")] = None,
    path_policy: PathPolicyOpt = None,
    slippage: SlippageOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default runs/<name>).")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace the run already in the output folder (only a run folder).")] = False,
    store: Annotated[Optional[Path], typer.Option(help="Market store folder.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    report: Annotated[bool, typer.Option("--report/--no-report",
                                         help="Write report.html into the run folder.")] = True,
) -> None:
    """Run a backtest and write its results (Parquet, manifest.json, results.duckdb).

    The run folder appears only when complete; an existing one is refused unless
    ``--overwrite`` is given. The folder is checked before the backtest starts.
    """
    from backtest import RunConfig
    from backtest.errors import EngineError
    from backtest.fastpath import run_strategy
    from backtest.runfolder import check_output_folder
    from data_loaders.errors import DataError

    try:
        spec = load_run_file(config) if config else {"data": {}, "strategy": {}, "run": {}}
        data_spec, strat_spec, run_spec = spec["data"], spec["strategy"], dict(spec["run"])
        flags = {"initial_balance": balance, "leverage": leverage, "margin_mode": margin_mode,
                 "venue": venue, "path_policy": path_policy, "slippage": slippage}
        for key, value in flags.items():
            if value is not None:
                run_spec[key] = checked(key, value, where="flags", subject=_RUN_FLAGS[key])
        given = {("data", "exchange"): exchange, ("data", "prices_from"): prices_from, ("data", "timeframe"): timeframe,
                 ("data", "detail_timeframe"): detail_timeframe, ("data", "start"): start,
                 ("data", "end"): end, ("data", "store"): None if store is None else str(store),
                 ("strategy", "name"): strategy,
                 ("data", "symbols"): list(symbol) if symbol else None}
        for (table, key), value in given.items():
            if value is not None:
                spec[table][key] = _flag(table, key, value)
        out_dir = _flag("run", "out", str(out)) if out is not None else run_spec.pop("out", None)
        run_spec.pop("out", None)
        run_spec.setdefault("progress", progress)
        run_config = RunConfig.from_mapping(run_spec, where=f"{f'run file {config}' if config else 'flags'} [run]")
        from backtest.compare import load_for_venue, price_source
        from backtest.venues.defaults import known_symbols

        # the venue's own exchange's prices unless the user says which others drive its rules
        source = price_source(run_config.venue, exchange=data_spec.get("exchange"),
                              prices_from=data_spec.get("prices_from"),
                              where=f"run file {config}" if config else "flags")
        symbols = data_spec.get("symbols") or [known_symbols(source.prices)[0]]
        name = strat_spec.get("name") or "hold"
        params = dict(strat_spec.get("params") or {})
        params.update(parse_params(param))
        window = (data_spec.get("start"), data_spec.get("end"))
        if None not in window and window[0] >= window[1]:
            raise ConfigError(f"data window: expected start before end, found start "
                              f"{data_spec.get('start')} >= end {data_spec.get('end')} (epoch ms); "
                              f"swap them or widen the window")
        # the output folder and the store are checked before the backtest runs, not after
        target = check_output_folder(
            Path(out_dir) if out_dir else Path("runs") / (run_config.name or default_run_name(name)),
            overwrite=overwrite)
        from data_loaders.store import MarketStore, default_root

        store_root = Path(data_spec.get("store") or default_root())
        if store_root.exists() and not store_root.is_dir():
            raise ConfigError(f"store {store_root}: expected a market store folder, found a file; "
                              f"pass the store folder with --store")
        # the venue's own prices, or the stated exchange's with the venue's tables
        data = load_for_venue(MarketStore(store_root), source, symbols=symbols,
                              timeframe=data_spec.get("timeframe", DEFAULT_TIMEFRAME), start=window[0],
                              end=window[1], detail_timeframe=data_spec.get("detail_timeframe"))
        # a pure signal strategy runs through the array path (same outputs, fewer bars visited)
        result = run_strategy(data, name, params=params, config=run_config)
        result.manifest["price_source"] = source.record()
        written = result.write(target, overwrite=overwrite)
    except (EngineError, DataError, ValueError, LookupError) as exc:
        raise _fail(str(exc)) from None
    print_data_warnings(result.manifest.get("quality_warnings", ()))
    _print_summary(result.summary, written,
                   data.markets[data.symbols[0]].settle)
    if report:
        from reports import write_report

        typer.echo(f"report: {write_report(written)}")


def _print_summary(summary: dict[str, Any], folder: Path, asset: str = "USDT") -> None:
    from backtest.cli.output import console as output_console
    from rich.table import Table

    from backtest.formatting import fmt_drawdown, fmt_money, fmt_pct

    unit = asset  # the margin asset of the run (USDT, or the coin of a COIN-M run)
    table = Table(title=f"run written to {folder}", show_header=False)
    rows = [("return", fmt_pct(summary["total_return"], signed=True)),
            ("final equity", fmt_money(summary["final_equity"], unit=unit)),
            ("max drawdown", fmt_drawdown(summary["max_drawdown"])),
            ("liquidations", str(summary["n_liquidations"])),
            ("fees", fmt_money(summary["fees"], unit=unit)),
            ("funding (received - paid)",
             fmt_money(summary["funding_received"] - summary["funding_paid"], signed=True, unit=unit)),
            ("slippage", fmt_money(summary["slippage_cost"], unit=unit)),
            ("bad debt", fmt_money(summary["bad_debt"], unit=unit)),
            ("fills / rejections", f"{summary['n_fills']} / {summary['n_rejections']}")]
    for key, value in rows:
        table.add_row(key, value)
    output_console().print(table)


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to the margincall app."""
    app.command("run")(run_command)
