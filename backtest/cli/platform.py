"""``margincall platform``: a venue's parameters against a population and a scenario set.

Parses the options, builds the population (file, synthetic, or estimated from open interest),
the venue parameters (defaults + ``--params`` TOML) and the scenarios (stored windows, shocks,
Monte Carlo paths), runs them on the sweep executor, writes the folder, prints the
distributions, the recommendations and, with ``--compare-tiers``, the comparison with a stored
bracket file. The rules live in ``backtest/platform``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from backtest.cli.output import console as _console
from backtest.cli.output import fail as _fail
from backtest.cli.output import open_store as _store
from backtest.cli.shared import DEFAULT_TIMEFRAME, McSeedOpt, McSigmaOpt


def _errors() -> tuple[type[Exception], ...]:
    from backtest.errors import EngineError
    from backtest.risk.errors import RiskError
    from backtest.venues.errors import VenueError
    from data_loaders.errors import DataError

    return (EngineError, RiskError, VenueError, DataError)


def _floats(text: str | None, option: str) -> list[float]:
    if not text:
        return []
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise _fail(f"{option} {text!r}: expected comma-separated numbers, e.g. {option} 0.05,0.1") from None


def _pairs(items: list[str] | None, option: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or not (math.isfinite(number) and number > 0):
            raise _fail(f"{option} {item!r}: expected SYMBOL=NUMBER with a number > 0, e.g. {option} BTC/USDT:USDT=112000")
        out[key.strip()] = number
    return out


def platform(
    population: Annotated[Optional[Path], typer.Option("--population", help="Positions file (Parquet/CSV): symbol, side, qty, entry_price, margin or leverage.")] = None,
    synthetic: Annotated[Optional[int], typer.Option("--synthetic", help="Generate N positions over the --price symbols instead of reading a file.")] = None,
    open_interest: Annotated[Optional[list[str]], typer.Option("--open-interest", help="Estimate the population from open interest, SYMBOL=USDT (repeat), with the --prior leverage mix.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic or estimated population.")] = 0,
    prior: Annotated[str, typer.Option("--prior", help="Leverage prior: hyperliquid_2025_12 or binance_2019.")] = "hyperliquid_2025_12",
    mean_notional: Annotated[float, typer.Option("--mean-notional", help="Mean position notional of generated positions, USDT.")] = 20_000.0,
    cross_share: Annotated[float, typer.Option("--cross-share", help="Share of the positions grouped into cross-margin accounts (0 = all isolated).")] = 0.0,
    cross_legs: Annotated[int, typer.Option("--cross-legs", help="Positions per cross-margin account of --cross-share.")] = 2,
    price: Annotated[Optional[list[str]], typer.Option("--price", help="Start price of generated paths and positions, SYMBOL=PRICE (repeat).")] = None,
    params: Annotated[Optional[Path], typer.Option("--params", help="TOML of venue parameters overriding the defaults (tiers, max_leverage, liquidation_fee, insurance_fund, adl_rule, disposal_cap, venue).")] = None,
    venue: Annotated[Optional[str], typer.Option("--venue", help="Rule set when no --params names one: binance_usdm, bybit, bitmex, hyperliquid.")] = None,
    window: Annotated[Optional[list[str]], typer.Option("--window", help="Stored window scenario START/END, UTC (repeat), e.g. 2025-10-10T21:00/2025-10-10T21:30.")] = None,
    symbol: Annotated[Optional[list[str]], typer.Option("--symbol", help="Symbols of --window scenarios (repeat); default: the population's.")] = None,
    store: Annotated[Optional[Path], typer.Option("--store", help="Store folder of --window (default: $MARGINCALL_HOME/store, else ./.margincall/store).")] = None,
    exchange: Annotated[str, typer.Option("--exchange", help="ccxt exchange id of the stored windows.")] = "binanceusdm",
    timeframe: Annotated[str, typer.Option("--timeframe", help="Candles of the stored windows.")] = DEFAULT_TIMEFRAME,
    shock: Annotated[Optional[str], typer.Option("--shock", help="Stress scenarios: falls as fractions, comma-separated (0.1 = -10 %; negative = rally).")] = None,
    mc: Annotated[int, typer.Option("--mc", help="Monte Carlo scenarios: this many GBM paths from the risk lab.")] = 0,
    mc_sigma: McSigmaOpt = 0.004,
    mc_seed: McSeedOpt = 0,
    depth_scale: Annotated[str, typer.Option("--depth-scale", help="Book-depth multipliers, comma-separated; every scenario runs at each (0.5 = half the depth).")] = "1",
    seconds: Annotated[int, typer.Option("--seconds", help="Length of shock and Monte Carlo paths, seconds.")] = 720,
    at: Annotated[str, typer.Option("--at", help="Start of shock and Monte Carlo paths, UTC (selects the tier tables in force).")] = "2025-10-10T21:00:00Z",
    step: Annotated[float, typer.Option("--step", help="Cascade step, seconds.")] = 1.0,
    confidence: Annotated[float, typer.Option("--confidence", help="Target confidence of the recommended brackets and caps.")] = 0.99,
    adl_target: Annotated[float, typer.Option("--adl-target", help="Target probability of ADL for the recommended insurance fund.")] = 0.01,
    max_mmr: Annotated[float, typer.Option("--max-mmr", help="Highest maintenance rate the venue offers; positions costing more to dispose are capped.")] = 0.5,
    compare_tiers: Annotated[Optional[Path], typer.Option("--compare-tiers", help="Bracket JSON (e.g. shared/data/margin/binance_um_leverage_brackets_*.json): print the recommendation beside its latest table.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Worker processes (default: all cores; 1 = serial).")] = None,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Run the scenarios on this Ray cluster (e.g. auto or ray://host:10001).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output folder (Parquet tables, results.duckdb, manifest.json).")] = Path("runs/platform"),
    html: Annotated[Optional[Path], typer.Option("--html", help="Also write the HTML page (distributions, brackets, fund) to this file.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing platform run folder.")] = False,
) -> None:
    """Stress a venue's parameters: bad debt, fund drawdown, ADL, fee revenue; recommended brackets and caps."""
    from backtest.runfolder import check_output_folder

    sources = sum(x is not None and x != [] for x in (population, synthetic, open_interest))
    if sources != 1:
        raise _fail("expected exactly one population source: --population FILE, --synthetic N or "
                    "--open-interest SYMBOL=USDT")
    try:
        from backtest.platform.recommend import check_targets

        check_output_folder(out, overwrite=overwrite)  # before the run, not after it
        check_targets(confidence, adl_target, max_mmr)
        result, venue_params, setup, extra = _run(locals())
        result.recommend(venue_params, setup, confidence=confidence, adl_probability=adl_target, max_mmr=max_mmr)
        comparison = _compare(compare_tiers, result, venue_params, setup, confidence, max_mmr) if compare_tiers else None
        if comparison is not None:
            import polars as pl

            result.tables["bracket_comparison"] = pl.DataFrame(comparison)
        folder = result.write(out, overwrite=overwrite, extra=extra)
        if html is not None:
            from backtest.platform.report import write_platform_report

            write_platform_report(result, html)
    except _errors() as exc:
        raise _fail(str(exc)) from None
    from backtest.cli.shared import print_data_warnings

    print_data_warnings(extra["data_warnings"])
    _print(result, comparison, folder)
    if html is not None:
        _console().print(f"wrote {html}", highlight=False, soft_wrap=True)


def _run(o: dict[str, Any]) -> tuple[Any, Any, Any, dict[str, Any]]:
    from backtest.cascade.paths import window_paths
    from backtest.cascade.population import (population_from_open_interest, read_population,
                                             synthetic_population)
    from backtest.platform.params import default_venue, load_venue
    from backtest.platform.run import run_platform
    from backtest.platform.scenarios import ScenarioSetup, build_scenarios
    from backtest.risk.paths import GBM
    from data_loaders.schemas import to_ms

    at_ms = to_ms(o["at"])
    prices = _pairs(o["price"], "--price")
    ois = _pairs(o["open_interest"], "--open-interest")
    venue_params = load_venue(o["params"], at_ms=at_ms) if o["params"] else default_venue(o["venue"] or "binance_usdm", at_ms=at_ms)
    if o["venue"] and o["params"] and o["venue"] != venue_params.venue:
        raise _fail(f"--venue {o['venue']!r} and --params {o['params']} (venue {venue_params.venue!r}) disagree; "
                    "give the venue in one place")
    pop = read_population(o["population"]) if o["population"] is not None else None
    names = list(o["symbol"] or []) or (pop.symbols() if pop is not None else sorted(set(prices) | set(ois)))
    windows: dict[str, Any] = {}
    warnings: list[str] = []
    sources: list[dict] = []
    for text in o["window"] or []:
        start, sep, end = text.partition("/")
        if not sep:
            raise _fail(f"--window {text!r}: expected START/END, e.g. --window 2025-10-10T21:00/2025-10-10T21:30")
        start_ms, end_ms = to_ms(start), to_ms(end)
        if end_ms <= start_ms:
            raise _fail(f"--window {text!r}: expected END after START; the window is [start, end)")
        loaded = window_paths(_store(o["store"]), exchange=o["exchange"], symbols=names or ["BTC/USDT:USDT"],
                              timeframe=o["timeframe"], start_ms=start_ms, end_ms=end_ms, step_s=o["step"])
        windows[f"window {start}/{end}"] = loaded.paths
        warnings += loaded.warnings
        sources += loaded.sources
        for s, path in loaded.paths.items():
            prices.setdefault(s, float(path.price[0]))  # generated scenarios start where the first window does
    generated = bool(o["shock"]) or o["mc"] > 0
    needed = names if pop is None else pop.symbols()
    missing = [s for s in needed if s not in prices] if (generated or pop is None) else []
    if missing or (pop is None and not needed):
        first = missing[0] if missing else "BTC/USDT:USDT"
        raise _fail(f"no start price for {', '.join(missing) or 'any symbol'}: pass --price {first}=PRICE "
                    "(or a --window, whose first price is used)")
    if pop is None:
        if ois:
            pop = population_from_open_interest(ois, seed=o["seed"], prices=prices, prior=o["prior"],
                                                mean_notional=o["mean_notional"])
        else:
            pop = synthetic_population(int(o["synthetic"]), seed=o["seed"], prior=o["prior"],
                                       mean_notional=o["mean_notional"], prices={s: prices[s] for s in needed})
    if o["cross_share"]:
        from backtest.cascade.population import with_cross_accounts

        pop = with_cross_accounts(pop, share=o["cross_share"], legs=o["cross_legs"], seed=o["seed"])
    if not o["mc_sigma"] > 0:
        raise _fail(f"--mc-sigma {o['mc_sigma']!r}: expected a log-return sd per minute > 0, e.g. 0.004")
    setup = ScenarioSetup({s: prices[s] for s in pop.symbols() if s in prices}, seconds=o["seconds"], start_ms=at_ms,
                          step_s=o["step"], model=GBM(o["mc_sigma"], step_ms=60_000) if o["mc"] else None)
    scenarios = build_scenarios(windows=windows, shocks=_floats(o["shock"], "--shock"), montecarlo=o["mc"],
                                mc_seed=o["mc_seed"], depth_scales=_floats(o["depth_scale"], "--depth-scale"))
    result = run_platform(pop, venue_params, scenarios, setup, workers=o["workers"],
                          ray_address=o["ray_address"], progress=True)
    extra = {"seed": o["seed"], "mc_seed": o["mc_seed"], "data": sources, "data_warnings": warnings,
             "population_source": ("file " + str(o["population"])) if o["population"] else
             ("open interest " + str(ois)) if ois else f"synthetic {o['synthetic']} ({o['prior']})",
             "cross": {"share": o["cross_share"], "legs": o["cross_legs"], "accounts": 0 if pop.account is None else
                       len(set(pop.account[pop.cross].tolist()))}}
    return result, venue_params, setup, extra


def _compare(path: Path, result, venue_params, setup, confidence: float, max_mmr: float) -> list[dict]:  # noqa: ANN001
    from backtest.platform.recommend import compare_brackets
    from backtest.venues.tiers import TierSchedule
    from data_loaders.tiers_import import load_tiers

    frame = load_tiers(path)
    rows = []
    for symbol in sorted(result.tables["scenario_symbols"]["symbol"].unique().to_list()):
        mine = frame.filter(frame["symbol"] == symbol)
        if mine.height == 0:
            continue
        schedule = TierSchedule.from_frame(mine, exchange=mine["exchange"][0], symbol=symbol)
        latest = schedule.at(10**15)
        loss = result.stressed_loss(symbol, venue_params, setup, confidence=confidence)
        rows += [{"symbol": symbol, **row} for row in compare_brackets(latest, loss, max_mmr=max_mmr)]
    return rows


def _print(result, comparison, folder: Path) -> None:  # noqa: ANN001
    from rich.table import Table

    out = _console()
    s = result.summary
    t = s["timing"]
    out.print(f"{s['scenarios']:,} scenarios x {s['positions']:,} positions: P(ADL) {s['adl_probability']:.1%}, "
              f"P(bad debt) {s['bad_debt_probability']:.1%}; {t['wall_s']:.1f} s wall, "
              f"{t['scenario_cpu_s']:.1f} s CPU in scenarios on {t['workers']} {t['backend']} worker(s)",
              highlight=False, soft_wrap=True)
    dist = Table(title="distributions over scenarios, USDT (adl: probability)")
    for col in ("metric", "mean", "p95", "p99", "es95", "es99", "max"):
        dist.add_column(col, justify="left" if col == "metric" else "right")
    for row in result.tables["distributions"].iter_rows(named=True):
        dist.add_row(row["metric"], *(f"{row[c]:,.4g}" if row["metric"] == "adl" else f"{row[c]:,.0f}"
                                      for c in ("mean", "p95", "p99", "es95", "es99", "max")))
    out.print(dist)
    brackets = Table(title="recommended maintenance brackets (Binance format)")
    for col in ("symbol", "bracket", "floor", "cap", "max lev", "mmr", "cum", "current mmr"):
        brackets.add_column(col, justify="right")
    for r in result.tables["brackets"].iter_rows(named=True):
        brackets.add_row(r["symbol"], str(r["bracket"]), f"{r['notional_floor']:,.0f}", f"{r['notional_cap']:,.0f}",
                         f"{r['max_leverage']:g}", f"{r['maint_margin_rate']:.4f}", f"{r['maint_amount']:,.0f}",
                         f"{r['current_maint_margin_rate']:.4f}")
    out.print(brackets)
    recs = Table(title="recommendations")
    for col in ("symbol", "item", "value", "note"):
        recs.add_column(col)
    for r in result.tables["recommendations"].iter_rows(named=True):
        recs.add_row(r["symbol"], r["item"], f"{r['value']:,.6g}", r["note"])
    out.print(recs)
    if comparison:
        cmp = Table(title="recommended vs reference brackets (latest table of --compare-tiers)")
        for col in ("symbol", "bracket", "floor", "ref mmr", "recommended", "stressed loss at cap", "ref covers"):
            cmp.add_column(col, justify="right")
        for r in comparison:
            cmp.add_row(r["symbol"], str(r["bracket"]), f"{r['notional_floor']:,.0f}", f"{r['reference_mmr']:.4f}",
                        "-" if r["recommended_mmr"] is None else f"{r['recommended_mmr']:.4f}",
                        f"{r['stressed_loss_rate_at_cap']:.4f}", "yes" if r["reference_covers"] else "NO")
        out.print(cmp)
    out.print(f"wrote {folder}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``platform`` to the ``margincall`` app."""
    app.command("platform")(platform)
