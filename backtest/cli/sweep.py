"""``margincall sweep``: leverage x strategy-parameter sweeps on all cores (or Ray).

Heavy imports (polars, the engine, ray) happen inside the command.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from backtest.cli.output import console as _console
from backtest.cli.output import fail as _fail
from backtest.cli.output import labelled
from backtest.cli.output import option_time as _option_time
from backtest.cli.output import option_value as _value
from backtest.cli.shared import DEFAULT_TIMEFRAME, ExchangeOpt, LeverageOpt, StoreOpt, StrategyOpt
from backtest.cli.shared import parse_leverages as _leverages
from backtest.cli.shared import print_frame as _print_frame
from backtest.cli.shared import provenance_section as _provenance
from backtest.cli.shared import risk_errors as _risk_errors


def sweep(
    data: Annotated[Optional[Path], typer.Option("--data", help="Bars Parquet file (engine bar format).")] = None,
    funding: Annotated[Optional[Path], typer.Option("--funding", help="Funding Parquet file for --data.")] = None,
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol (ccxt unified name).")] = "BTC/USDT:USDT",
    timeframe: Annotated[str, typer.Option("--timeframe", help="Candle timeframe: 1m, 5m, 15m, 1h, 4h, 1d ... (default 1h for every command).")] = DEFAULT_TIMEFRAME,
    start: Annotated[Optional[str], typer.Option("--start", help="Store range start (without --data).")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Window end, UTC date or time, exclusive (default: the last stored candle).")] = None,
    strategy: StrategyOpt = "sma_cross",
    leverage: LeverageOpt = "2,5,10",
    grid: Annotated[Optional[list[str]], typer.Option("--grid", help="Parameter values NAME=V1,V2,... (repeat).")] = None,
    runner: Annotated[str, typer.Option("--runner", help="auto, engine or fastpath.")] = "auto",
    workers: Annotated[Optional[int], typer.Option("--workers", help="Processes (default: all cores).")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Run on a local Ray instance.")] = False,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Address of an existing Ray cluster.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder for sweep.parquet and sweep.duckdb.")] = Path("runs/sweep"),
    store: StoreOpt = None,
    exchange: ExchangeOpt = "binanceusdm",
    html: Annotated[Optional[Path], typer.Option("--html", help="Write an offline HTML report of the results to this file.")] = None,
    keep_runs: Annotated[bool, typer.Option("--keep-runs", help="Also keep each configuration's run folder (OUT/run_0001 ...; engine runs, written atomically) so `margincall report OUT` compares them.")] = False,
) -> None:
    """Sweep leverage x strategy parameters on all cores (or Ray); results in Parquet + DuckDB."""
    from backtest.errors import EngineError
    from backtest.risk.sweep import DataSpec, make_grid, run_sweep

    param_grid = _grid(grid)
    if data is not None:
        spec = DataSpec(symbol=symbol, timeframe=timeframe, bars_path=str(data),
                        funding_path=str(funding) if funding else None, exchange=exchange)
    else:
        from data_loaders.store import default_root

        spec = DataSpec(symbol=symbol, timeframe=timeframe, store_root=str(store or default_root()), exchange=exchange,
                        start_ms=_option_time("--start", start), end_ms=_option_time("--end", end))
    try:
        from backtest.runfolder import check_writable_location

        check_writable_location(out)  # before the runs, not after them
        configs = make_grid(_leverages(leverage), param_grid)
        if keep_runs:
            from backtest.risk.sweep_runs import check_kept_runs

            check_kept_runs(out, [c.run_id for c in configs])
        result = run_sweep(spec, strategy, configs, runner=runner, workers=workers,
                           backend="ray" if (ray or ray_address) else "local", ray_address=ray_address, out_dir=out)
        market = spec.load()
        kept = []
        if keep_runs:
            from backtest.risk.sweep_runs import keep_runs as keep

            kept = keep(market, strategy, result.table, out)
        from backtest.config import RunConfig
        from backtest.risk.provenance import MANIFEST_SUFFIX, output_manifest, rule_versions, write_output_manifest

        base = RunConfig()
        manifest = output_manifest(
            "sweep", config=base, seed=base.seed, sources=market.sources,
            inputs={"strategy": strategy, "leverages": _leverages(leverage), "grid": param_grid,
                    "runner": result.runner, "backend": result.backend, "symbol": symbol,
                    "timeframe": timeframe, "kept_runs": [p.name for p in kept]},
            rules=rule_versions(base.venue, getattr(market, "tiers", None)),
            warnings=market.quality_warnings)
        manifest = write_output_manifest(Path(out) / f"sweep{MANIFEST_SUFFIX}", manifest,
                                         {"sweep.parquet": result.parquet_path})
    except (*_risk_errors(), EngineError) as exc:
        raise _fail(str(exc)) from None
    for note in result.extra.get("notes", []):
        _console().print(labelled("note:", "yellow", note), highlight=False, soft_wrap=True)
    columns = ["run_id", "leverage", *[f"p_{k}" for k in sorted(param_grid)], "total_return", "max_drawdown",
               "n_liquidations", "final_equity"]
    best = result.table.sort("total_return", descending=True).head(10)
    _print_frame(best, f"top 10 of {result.table.height} runs ({result.seconds:.1f} s, {result.backend}, "
                       f"{result.runner})", columns)
    _console().print(f"wrote {result.parquet_path} and {result.duckdb_path} (view: sweep), provenance {manifest}")
    if kept:
        _console().print(f"kept {len(kept)} run folder(s) under {out}: compare them with "
                         f"`margincall report {out}`", highlight=False, soft_wrap=True)
    if html:
        from backtest.risk import report_sections as rs

        table = result.table
        y = f"p_{sorted(param_grid)[0]}" if param_grid else "leverage"
        sections = [("top", "Best runs", lambda t: rs._section(t, rs.table_html(best.select(
            [c for c in columns if c in best.columns])), css_class="mc-sweep"))]
        for metric, label in (("total_return", "Total return"), ("n_liquidations", "Liquidations"),
                              ("max_drawdown", "Max drawdown")):
            sections.append((f"map-{metric}", f"{label} by leverage and {y}",
                             lambda t, m=metric: rs.sweep_heatmap_section(table, x="leverage", y=y, value=m, title=t)))
        sections.append(_provenance(manifest))
        rs.write_risk_report(html, title=f"Sweep: {strategy}", subtitle=f"{table.height} runs on {symbol}",
                             sections=sections)
        _console().print(f"wrote {html}")


def _grid(items: list[str] | None) -> dict[str, list[Any]]:
    """``--grid NAME=V1,V2`` options as {name: values}; the strategy checks names and values."""
    param_grid: dict[str, list[Any]] = {}
    for item in items or []:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise _fail(f"--grid {item!r}: expected NAME=V1,V2,..., e.g. --grid fast=20,50")
        parsed = [_value(v.strip()) for v in values.split(",") if v.strip()]
        if not parsed:
            raise _fail(f"--grid {item!r}: parameter {key!r} has no values; expected NAME=V1,V2,..., "
                        f"e.g. --grid {key}=20,50")
        if key in param_grid:
            raise _fail(f"--grid {item!r}: parameter {key!r} is given twice; put all its values in one "
                        f"option, e.g. --grid {key}=20,50")
        param_grid[key] = parsed
    return param_grid


def register(app: typer.Typer) -> None:
    """Add ``sweep`` to the ``margincall`` app."""
    app.command("sweep")(sweep)
