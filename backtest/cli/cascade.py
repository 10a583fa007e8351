"""``margincall cascade``: a market-level liquidation cascade on a population of positions.

Parses the options, builds the inputs (population file or synthetic; stored window or shock
scenario), calls :func:`backtest.cascade.engine.run_cascade`, writes the folder, prints the
summary. The rules live in ``backtest/cascade``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from backtest.cli.output import console as _console
from backtest.cli.output import fail as _fail
from backtest.cli.output import open_store as _store
from backtest.cli.shared import DEFAULT_TIMEFRAME


def _errors() -> tuple[type[Exception], ...]:
    from backtest.errors import EngineError
    from backtest.risk.errors import RiskError
    from backtest.venues.errors import VenueError
    from data_loaders.errors import DataError

    return (EngineError, RiskError, VenueError, DataError)


def _ms(text: str, option: str) -> int:
    from data_loaders.errors import DataError
    from data_loaders.schemas import to_ms

    try:
        return to_ms(text)
    except DataError as exc:
        raise _fail(f"{option}: {exc}") from None


def cascade(
    symbol: Annotated[list[str], typer.Option("--symbol", help="ccxt symbol (repeat), e.g. BTC/USDT:USDT; "
                                              "default: the population's symbols, or BTC/USDT:USDT.")] = [],  # noqa: B006
    population: Annotated[Optional[Path], typer.Option("--population", help="Positions file (Parquet/CSV): symbol, side, qty, entry_price, margin or leverage.")] = None,
    synthetic: Annotated[Optional[int], typer.Option("--synthetic", help="Generate N positions instead of reading a file.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic population.")] = 0,
    prior: Annotated[str, typer.Option("--prior", help="Leverage prior of --synthetic: hyperliquid_2025_12 or binance_2019.")] = "hyperliquid_2025_12",
    mean_notional: Annotated[float, typer.Option("--mean-notional", help="Mean entry notional of --synthetic positions, USDT.")] = 20_000.0,
    start: Annotated[Optional[str], typer.Option("--start", help="Stored window start, UTC (with --end).")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Stored window end, UTC, exclusive.")] = None,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Candles of the stored window.")] = DEFAULT_TIMEFRAME,
    store: Annotated[Optional[Path], typer.Option("--store", help="Store folder (default: $MARGINCALL_HOME/store, else ./.margincall/store).")] = None,
    exchange: Annotated[str, typer.Option("--exchange", help="ccxt exchange id of the stored data.")] = "binanceusdm",
    shock: Annotated[Optional[float], typer.Option("--shock", help="Scenario instead of a window: a fall of this fraction (0.1 = -10 %; negative = rally).")] = None,
    price: Annotated[Optional[list[str]], typer.Option("--price", help="Start price of a --shock path, SYMBOL=PRICE (repeat).")] = None,
    seconds: Annotated[int, typer.Option("--seconds", help="Length of a --shock scenario, seconds.")] = 720,
    at: Annotated[str, typer.Option("--at", help="Start time of a --shock scenario, UTC (selects the tier tables in force).")] = "2025-10-10T21:00:00Z",
    venue: Annotated[str, typer.Option("--venue", help="Rule set: binance_usdm, bybit, bitmex, hyperliquid.")] = "binance_usdm",
    adl_rule: Annotated[str, typer.Option("--adl-rule", help="queue (the venue's ranking), pro_rata or leverage_levelling.")] = "queue",
    insurance_fund: Annotated[Optional[float], typer.Option("--insurance-fund", help="Starting fund, USDT (default: Binance's BTC/ETH pool, 793.9M).")] = None,
    depth_scale: Annotated[float, typer.Option("--depth-scale", help="Multiply every symbol's default book depth.")] = 1.0,
    disposal_cap: Annotated[Optional[float], typer.Option("--disposal-cap", help="Largest notional sent to one book side per step, USDT (default: all at once).")] = None,
    compare_adl: Annotated[bool, typer.Option("--compare-adl", help="Also evaluate every ADL rule on each round's deficit (table adl_comparison).")] = False,
    step: Annotated[float, typer.Option("--step", help="Step length, seconds.")] = 1.0,
    out: Annotated[Path, typer.Option("--out", help="Output folder (Parquet tables, results.duckdb, manifest.json).")] = Path("runs/cascade"),
    html: Annotated[Optional[Path], typer.Option("--html", help="Also write the HTML page (waterfall, prices, ladder, fund, ADL) to this file.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing cascade/run folder.")] = False,
) -> None:
    """Run a liquidation cascade: forced orders move the price, the fund pays, ADL, bad debt."""
    from dataclasses import replace

    from backtest.cascade.engine import CascadeConfig, run_cascade
    from backtest.cascade.liquidity import default_liquidity
    from backtest.cascade.venue import venue_rules
    from backtest.runfolder import check_output_folder

    if (population is None) == (synthetic is None):
        raise _fail("expected exactly one population source: --population FILE or --synthetic N")
    if (shock is None) == (start is None):
        raise _fail("expected exactly one price path: a stored window (--start/--end) or a scenario (--shock 0.1)")
    if start is not None and end is None:
        raise _fail("--start given without --end; the window is [start, end), e.g. --end 2025-10-11")
    try:
        check_output_folder(out, overwrite=overwrite)  # before the run, not after it
        positions, paths, warnings, tiers, sources = _inputs(symbol, population, synthetic, seed, prior, mean_notional,
                                                             start, end, timeframe, store, exchange, shock, price,
                                                             seconds, at, step)
        liquidity = {s: replace(default_liquidity(s), depth_at_ref=default_liquidity(s).depth_at_ref * depth_scale)
                     for s in paths}
        config = CascadeConfig(venue=venue, adl_rule=adl_rule, liquidity=liquidity, seed=seed,
                               compare_adl_rules=compare_adl,
                               # a window's stored tiers serve the rule sets that use that exchange's brackets
                               tiers=tiers if venue_rules(venue).tier_exchange == exchange else {},
                               disposal_cap=float("inf") if disposal_cap is None else disposal_cap,
                               **({} if insurance_fund is None else {"insurance_fund": insurance_fund}))
        result = run_cascade(positions, paths, config)
        result.manifest["data_warnings"] = warnings
        from backtest.risk.provenance import output_manifest, rule_versions

        # the risk lab's provenance record; the cascade keeps its own config and kind
        provenance = output_manifest("cascade", seed=seed, sources=sources, warnings=warnings,
                                     inputs={"population": str(population) if population else f"synthetic {synthetic}",
                                             "window": [start, end] if start else None, "timeframe": timeframe,
                                             "shock": shock, "exchange": exchange},
                                     rules=rule_versions(venue, tiers))
        result.manifest.update({k: v for k, v in provenance.items() if k not in ("kind", "config")})
        folder = result.write(out, overwrite=overwrite)
        if html is not None:
            from backtest.cascade.report import write_cascade_report

            write_cascade_report(result, html, subtitle=f"{venue}, ADL rule {adl_rule}, {len(positions):,} positions")
    except _errors() as exc:
        raise _fail(str(exc)) from None
    from backtest.cli.shared import print_data_warnings

    print_data_warnings(warnings)
    _print_summary(result.summary, folder)
    if html is not None:
        _console().print(f"wrote {html}", highlight=False, soft_wrap=True)


def _inputs(symbols: list[str], population: Path | None, synthetic: int | None, seed: int, prior: str,
            mean_notional: float, start: str | None, end: str | None, timeframe: str, store: Path | None,
            exchange: str, shock: float | None, prices: list[str] | None, seconds: int, at: str,
            step: float) -> tuple[Any, dict[str, Any], list[str], dict[str, Any], list[dict]]:
    from backtest.cascade.paths import shock_path, window_paths
    from backtest.cascade.population import read_population, synthetic_population

    pop = read_population(population) if population is not None else None
    names = list(symbols) or (pop.symbols() if pop is not None else ["BTC/USDT:USDT"])
    warnings: list[str] = []
    tiers: dict[str, Any] = {}
    sources: list[dict] = []
    if start is not None:
        start_ms, end_ms = _ms(start, "--start"), _ms(end or "", "--end")
        if end_ms <= start_ms:
            raise _fail(f"--end {end!r}: expected a time after --start {start!r}; the window is [start, end)")
        loaded = window_paths(_store(store), exchange=exchange, symbols=names, timeframe=timeframe,
                              start_ms=start_ms, end_ms=end_ms, step_s=step)
        paths, warnings, tiers, sources = loaded.paths, loaded.warnings, loaded.tiers, loaded.sources
    else:
        starts = _prices(prices, names)
        at_ms = _ms(at, "--at")
        paths = {s: shock_path(start_price=starts[s], seconds=seconds, drop=float(shock), step_s=step,
                               start_ms=at_ms) for s in names}
    if pop is None:
        pop = synthetic_population(int(synthetic), seed=seed, prior=prior, mean_notional=mean_notional,
                                   prices={s: float(p.price[0]) for s, p in paths.items()})
    return pop, paths, warnings, tiers, sources


def _prices(items: list[str] | None, names: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise _fail(f"--price {item!r}: expected SYMBOL=PRICE, e.g. --price BTC/USDT:USDT=112000") from None
        if not sep or not out[key.strip()] > 0:
            raise _fail(f"--price {item!r}: expected SYMBOL=PRICE with a price > 0")
    missing = [s for s in names if s not in out]
    if missing:
        raise _fail(f"--shock needs a start price for {', '.join(missing)}: pass --price {missing[0]}=PRICE")
    return out


def _print_summary(s: dict[str, Any], folder: Path) -> None:
    from rich.table import Table

    table = Table(title="cascade")
    table.add_column("figure")
    table.add_column("value", justify="right")

    def money(v: float) -> str:
        return f"{v:,.2f}"

    rows = [("liquidated positions", f"{s['liquidated_positions']:,}"),
            ("liquidated notional, USDT", money(s["liquidated_notional"])),
            ("margin lost, USDT", money(s["margin_lost"])),
            ("insurance fund start -> end, USDT", f"{money(s['insurance_fund_start'])} -> {money(s['insurance_fund_end'])}"),
            ("deficit sent to ADL, USDT", money(s["deficit"])),
            ("ADL notional, USDT", money(s["adl_notional"])),
            ("ADL counterparties", f"{s['adl_counterparties']:,}"),
            ("ADL overshoot, USDT", money(s["adl_overshoot"])),
            ("bad debt, USDT", money(s["bad_debt"])),
            ("negative-equity positions", f"{s['negative_equity_positions']:,} ({money(s['negative_equity_total'])})"),
            ("time to first ADL, s", "-" if s["time_to_first_adl_s"] is None else f"{s['time_to_first_adl_s']:g}"),
            ("max loop gain", f"{s['max_loop_gain']:.3g}" + ("  RUNAWAY" if s["runaway"] else ""))]
    for rule, totals in (s.get("adl_rule_comparison") or {}).items():
        rows.append((f"ADL {rule}: profit taken / overshoot, USDT",
                     f"{money(totals['profit_taken'])} / {money(totals['overshoot'])}"))
    rows += [(f"amplification {k}", "-" if v is None else f"{v:.3f}") for k, v in s["amplification"].items()]
    for name, value in rows:
        table.add_row(name, value)
    out = _console()
    out.print(table)
    out.print(f"wrote {folder}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``cascade`` to the ``margincall`` app."""
    app.command("cascade")(cascade)
