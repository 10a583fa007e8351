"""``margincall lending``: a population of borrowing positions through a stored price path.

Aave v3 positions are liquidated by profit-seeking liquidators on a block path with a push
oracle and a pool or depth curve (the cascade when the oracle reads the venue); Maker vaults go
through the OSM to Flipper or Clipper auctions with keepers priced by gas. The tables, a DuckDB
file of views and an HTML report are written as one folder (docs/lending.md). Heavy imports
happen inside the command.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from backtest.cli.output import console as _console
from backtest.cli.output import fail as _fail
from backtest.cli.output import open_store as _store
from backtest.cli.shared import McSeedOpt, McSigmaOpt, print_data_warnings

__all__ = ["lending", "register"]

_DEFAULTS: dict[str, Any] = {
    "timeframe": "1h", "protocol": "aave_v3", "positions": 10_000, "seed": 0,
    "median_value": 20_000.0, "value_sigma": 1.5, "health_factor_range": (1.05, 2.5),
    "gas_cost": 0.0, "latency_steps": 0, "venue": "pool", "depth": 2e8, "feedback": False,
    "arbitrage_share": 1.0, "borrow_rate": 0.0, "keepers": (), "gas_base_gwei": 10.0,
    "gas_spikes": ()}


def _errors() -> tuple[type[Exception], ...]:
    """The error classes a lending run maps to a clean message."""
    from backtest.errors import EngineError
    from backtest.lending.errors import LendingError
    from backtest.risk.errors import RiskError
    from data_loaders.errors import DataError

    return (LendingError, EngineError, RiskError, DataError)


def _keeper(text: str) -> Any:
    """``NAME:KIND:MAX_GWEI:MARGIN`` (KIND value or lowball) as a Keeper."""
    from backtest.lending.auctions import Keeper

    parts = text.split(":")
    try:
        name, kind, gwei, margin = parts[0], parts[1], float(parts[2]), float(parts[3])
    except (IndexError, ValueError):
        raise _fail(f"--keeper {text!r}: expected NAME:KIND:MAX_GWEI:MARGIN, e.g. "
                    "--keeper fast:value:50:0.05 or --keeper vulture:lowball:1000:0") from None
    if len(parts) != 4:
        raise _fail(f"--keeper {text!r}: expected 4 fields NAME:KIND:MAX_GWEI:MARGIN, found "
                    f"{len(parts)}; e.g. --keeper fast:value:50:0.05")
    return Keeper(name, gwei, margin, kind=kind)


def _spike(text: str) -> tuple[float, float, float]:
    """``START..END=GWEI`` (UTC times) as epoch seconds and gwei."""
    from data_loaders.schemas import to_ms

    window, sep, level = text.partition("=")
    start, dots, end = window.partition("..")
    if not sep or not dots:
        raise _fail(f"--gas-spike {text!r}: expected START..END=GWEI, e.g. "
                    "--gas-spike 2020-03-12T10:00..2020-03-12T17:00=150")
    try:
        return to_ms(start) / 1000, to_ms(end) / 1000, float(level)
    except ValueError as exc:
        raise _fail(f"--gas-spike {text!r}: {exc}") from None


def _finite(value: float | None, option: str) -> None:
    if value is not None and math.isnan(value):
        raise _fail(f"{option}: expected a number, found NaN; e.g. {option} 0.05")


def lending(
    out: Annotated[Path, typer.Option("--out", help="Folder to write (tables, lending.duckdb, report.html).")],
    positions: Annotated[Optional[Path], typer.Option("--positions", help="Population file (.parquet or .csv; schema in docs/lending.md).")] = None,
    generate: Annotated[Optional[int], typer.Option("--generate", help="Draw this many positions with --seed (documented distributions).")] = None,
    protocol: Annotated[Optional[str], typer.Option("--protocol", help="Protocol of generated positions: aave_v3, compound_v3 or maker.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of --generate (same seed, same population).")] = None,
    median_value: Annotated[Optional[float], typer.Option("--median-value", help="Median collateral value of generated positions, base currency.")] = None,
    hf_range: Annotated[Optional[str], typer.Option("--hf-range", help="Starting health factors of generated positions, LOW..HIGH, e.g. 1.05..2.5.")] = None,
    preset: Annotated[Optional[str], typer.Option("--preset", help="Documented scenario supplying defaults: black-thursday or 2025-10-10.")] = None,
    symbol: Annotated[Optional[list[str]], typer.Option("--symbol", help="Stored symbol whose base is a collateral asset (repeat); default ETH/USDT:USDT.")] = None,
    timeframe: Annotated[Optional[str], typer.Option("--timeframe", help="Candles the path is built from.")] = None,
    start: Annotated[Optional[str], typer.Option("--start", help="Window start, UTC.")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Window end, UTC, exclusive.")] = None,
    store: Annotated[Optional[Path], typer.Option("--store", help="Store folder (default: $MARGINCALL_HOME/store).")] = None,
    exchange: Annotated[str, typer.Option("--exchange", help="ccxt exchange id of the stored data.")] = "binanceusdm",
    version: Annotated[str, typer.Option("--version", help="Aave rules: 3.0 or 3.3.")] = "3.3",
    heartbeat: Annotated[float, typer.Option("--heartbeat", help="Oracle heartbeat, seconds.")] = 3600.0,
    deviation: Annotated[float, typer.Option("--deviation", help="Oracle deviation threshold (0.005 = 0.5 %).")] = 0.005,
    gas_cost: Annotated[Optional[float], typer.Option("--gas-cost", help="Aave liquidator gas cost per liquidation, base currency.")] = None,
    min_profit: Annotated[float, typer.Option("--min-profit", help="Aave liquidators' minimum profit, base currency.")] = 0.0,
    latency: Annotated[Optional[int], typer.Option("--latency", help="Aave liquidator latency, steps (blocks).")] = None,
    capital: Annotated[float, typer.Option("--capital", help="Debt Aave liquidators can repay per step (inf = flash loans).")] = math.inf,
    borrow_rate: Annotated[Optional[float], typer.Option("--borrow-rate", help="Annual borrow rate (Aave) / stability fee (Maker), 0.05 = 5 %.")] = None,
    venue: Annotated[Optional[str], typer.Option("--venue", help="Where seized collateral is sold: pool (x*y=k) or curve (depth curve).")] = None,
    depth: Annotated[Optional[float], typer.Option("--depth", help="Pool quote reserve, or the curve's bids within 0.1 %, base currency.")] = None,
    feedback: Annotated[Optional[bool], typer.Option("--feedback/--no-feedback", help="The oracle reads the venue price (cascade).")] = None,
    arbitrage_share: Annotated[Optional[float], typer.Option("--arbitrage-share", help="Share of the venue-market gap closed per step.")] = None,
    step: Annotated[float, typer.Option("--step", help="Aave step, seconds (12 = one block).")] = 12.0,
    auction: Annotated[str, typer.Option("--auction", help="Maker liquidation system: flipper or clipper.")] = "flipper",
    keeper: Annotated[Optional[list[str]], typer.Option("--keeper", help="Maker keeper NAME:KIND:MAX_GWEI:MARGIN (repeat); KIND value or lowball.")] = None,
    gas_gwei: Annotated[Optional[float], typer.Option("--gas-gwei", help="Network gas price outside spikes, gwei (Maker keepers).")] = None,
    gas_spike: Annotated[Optional[list[str]], typer.Option("--gas-spike", help="Gas spike START..END=GWEI (repeat).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output folder of a run.")] = False,
    compare_cex: Annotated[Optional[str], typer.Option("--compare-cex", help="Instead: a looped long on Aave vs a perpetual long at equal leverage through this crash window (e.g. 2020-03-12).")] = None,
    leverage: Annotated[str, typer.Option("--leverage", help="Leverages of --compare-cex, comma-separated.")] = "1.5,2,3,5",
    equity: Annotated[float, typer.Option("--equity", help="Equity of --compare-cex, USD.")] = 10_000.0,
    platform: Annotated[Optional[list[str]], typer.Option("--platform", help="Instead: platform view; parameter set NAME:LT:BONUS[:CAP] (repeat) against the population and scenarios.")] = None,
    scenario_depth: Annotated[str, typer.Option("--scenario-depth", help="Platform scenarios: the stored path's log moves scaled by these depths ('' = no stored-window scenario).")] = "1,1.5,2",
    seeds: Annotated[str, typer.Option("--seeds", help="Platform population seeds, comma-separated.")] = "0,1,2",
    grid: Annotated[Optional[list[str]], typer.Option("--grid", help="Instead: platform parameter search; [PROTOCOL.]KEY=V1,V2 (repeat): Aave lt, bonus, close_factor, borrow_cap, supply_cap, debt_cap; comet.borrow_cf, comet.liquidate_cf, comet.liquidation_factor, comet.store_front, comet.target_reserves, comet.reserves; maker.mat, maker.chop, maker.buf, maker.tail, maker.cusp, maker.tip, maker.chip, maker.hole, maker.Hole; every combination within a protocol is a set.")] = None,
    min_efficiency: Annotated[float, typer.Option("--min-efficiency", help="Platform: the recommended set must serve at least this share of the borrowing demand.")] = 0.9,
    shock: Annotated[Optional[str], typer.Option("--shock", help="Platform scenarios: falls as fractions, comma-separated (0.3 = -30 % over an hour, starting an hour in; negative = rally).")] = None,
    mc: Annotated[int, typer.Option("--mc", help="Platform scenarios: this many Monte Carlo paths from the risk lab (GBM, --mc-sigma), as in margincall platform.")] = 0,
    mc_sigma: McSigmaOpt = 0.004,
    mc_seed: McSeedOpt = 0,
    mc_model: Annotated[str, typer.Option("--mc-model", help="Return model of the --mc paths: gbm (--mc-sigma) or bootstrap, garch, jump fitted on the window's candles (risk lab model cache).")] = "gbm",
    mc_hours: Annotated[float, typer.Option("--mc-hours", help="Length of --shock and --mc paths, hours.")] = 24.0,
    depth_scale: Annotated[str, typer.Option("--depth-scale", help="Platform: liquidity multipliers of the pool liquidators sell into, comma-separated; every scenario runs at each (0.5 = half the depth).")] = "1",
    workers: Annotated[Optional[int], typer.Option("--workers", help="Platform: worker processes (default: all cores; 1 = serial).")] = None,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Platform: run the scenarios on this Ray cluster (e.g. auto).")] = None,
    position: Annotated[Optional[float], typer.Option("--position", help="Instead: one looped Aave long at this loan-to-value (or, with --loops, this LTV per loop) through the risk lab: crash replay, stress, Monte Carlo, survival solver.")] = None,
    loops: Annotated[Optional[int], typer.Option("--loops", help="--position: number of borrow-buy-supply loops at the --position LTV each.")] = None,
    crash: Annotated[Optional[list[str]], typer.Option("--crash", help="--position: named crash windows to replay (repeat, or 'all'; default: every crash listing --symbol).")] = None,
    scenario: Annotated[Optional[list[str]], typer.Option("--scenario", help="--position: stress scenario set on the first crash window, the risk lab's syntax, e.g. 'crash=shock:-0.3@2020-03-12T06:00Z' (repeat).")] = None,
    paths: Annotated[int, typer.Option("--paths", help="--position: Monte Carlo paths (0: no Monte Carlo).")] = 10_000,
    horizon: Annotated[float, typer.Option("--horizon", help="--position: Monte Carlo horizon, hours.")] = 24.0,
    target: Annotated[float, typer.Option("--target", help="--position: liquidation probability target of the survival solver.")] = 0.01,
    model: Annotated[str, typer.Option("--model", help="--position: return model fitted on --symbol --timeframe over --start..--end: bootstrap, garch, jump or gbm.")] = "bootstrap",
    oracle: Annotated[str, typer.Option("--oracle", help="--position Monte Carlo: what the protocol sees of each path: market (no lag), chainlink (--heartbeat/--deviation push feed) or osm (Maker's one-hour delayed OSM); not market adds the lagged probability beside the market's.")] = "market",
) -> None:
    """Simulate lending liquidations (Aave v3, Maker) on stored prices: liquidations, auctions, bad debt."""
    import polars as pl

    from backtest.errors import did_you_mean
    from backtest.lending.scenarios import PRESETS

    if preset is not None and preset not in PRESETS:
        raise _fail(f"--preset {preset!r}: expected one of {', '.join(PRESETS)}"
                    f"{did_you_mean(preset, PRESETS)}")
    chosen = {**_DEFAULTS, **(PRESETS[preset] if preset else {})}

    def pick(value: Any, key: str) -> Any:
        return chosen[key] if value is None else value

    for value, option in ((gas_cost, "--gas-cost"), (borrow_rate, "--borrow-rate"), (depth, "--depth"),
                          (median_value, "--median-value"), (heartbeat, "--heartbeat"),
                          (deviation, "--deviation"), (capital, "--capital"), (step, "--step")):
        _finite(value, option)
    if positions is not None and generate is not None:
        raise _fail("--positions and --generate: expected one source of positions, found both; "
                    "drop one")
    symbols = symbol or ["ETH/USDT:USDT"]
    if position is not None:
        from backtest.cli.lending_position import run_position

        run_position(position, loops, symbols[0], crash, scenario, paths=paths, horizon=horizon,
                     target=target, model=model, timeframe=pick(timeframe, "timeframe"),
                     start=start, end=end, equity=equity, borrow_rate=borrow_rate or 0.0,
                     seed=pick(seed, "seed"), store=store, exchange=exchange, out=out,
                     overwrite=overwrite, heartbeat=heartbeat, deviation=deviation,
                     oracle=oracle)
        return
    if compare_cex is not None:
        _compare(compare_cex, symbols[0], leverage, equity, store, exchange, out, overwrite,
                 version=version, heartbeat=heartbeat, deviation=deviation,
                 borrow_rate=borrow_rate or 0.0, step=step)
        return
    assets = {s.split("/")[0]: s for s in symbols}
    if platform or grid:
        from backtest.cli.lending_platform import run_platform_view

        run_platform_view({
            "specs": platform or [], "grid": grid or [], "min_efficiency": min_efficiency,
            "depths": scenario_depth, "seeds": seeds, "positions": pick(generate, "positions"),
            "symbol": symbols[0], "timeframe": pick(timeframe, "timeframe"),
            "window": _window(chosen.get("start") if start is None else start,
                              chosen.get("end") if end is None else end),
            "store": store, "exchange": exchange, "out": out, "overwrite": overwrite,
            "depth": pick(depth, "depth"), "heartbeat": heartbeat, "deviation": deviation,
            "gas_cost": pick(gas_cost, "gas_cost"), "step": step, "shock": shock, "mc": mc,
            "mc_sigma": mc_sigma, "mc_seed": mc_seed, "mc_hours": mc_hours, "mc_model": mc_model,
            "start": chosen.get("start") if start is None else start,
            "end": chosen.get("end") if end is None else end,
            "depth_scale": depth_scale, "workers": workers, "ray_address": ray_address,
            "keepers": keeper, "gas_gwei": pick(gas_gwei, "gas_base_gwei")})
        return
    try:
        window = _window(chosen.get("start") if start is None else start,
                         chosen.get("end") if end is None else end)
        bars, warnings = {}, []
        for asset, sym in assets.items():
            data = _load(store, exchange, sym, pick(timeframe, "timeframe"), window)
            bars[asset], warnings = data.bars, warnings + list(data.warnings)
        # the loader also reports the perpetual's mark, tiers and markets, which a lending
        # path does not use: only the candle warnings (gaps, coverage) concern it
        print_data_warnings(sorted({w for w in warnings if not w.startswith(("tiers ", "markets "))
                                    and "mark-price candles" not in w}))
        population = _population(positions, generate, protocol, seed, median_value, hf_range, pick,
                                 assets, bars)
        setup = _setup(pick, version=version, heartbeat=heartbeat, deviation=deviation,
                       gas_cost=gas_cost, min_profit=min_profit, latency=latency, capital=capital,
                       borrow_rate=borrow_rate, venue=venue, depth=depth, feedback=feedback,
                       arbitrage_share=arbitrage_share, step=step, auction=auction, keeper=keeper,
                       gas_gwei=gas_gwei, gas_spike=gas_spike)
        from backtest.lending.report import write_study
        from backtest.lending.study import run_study

        study = run_study(population, bars, setup)
        folder = write_study(study, out, overwrite=overwrite, title="Lending liquidations",
                             subtitle=f"{', '.join(symbols)} {window[2]}",
                             manifest={"symbols": symbols, "exchange": exchange,
                                       "window": window[2], "preset": preset,
                                       "positions": str(positions) if positions else None,
                                       "generated": generate, "auction": auction})
    except _errors() as exc:
        raise _fail(str(exc)) from None
    _print(study, pl)
    _console().print(f"wrote {folder}", highlight=False, soft_wrap=True)


def _compare(crash: str, symbol: str, leverage: str, equity: float, store: Path | None,
             exchange: str, out: Path, overwrite: bool, *, version: str, heartbeat: float,
             deviation: float, borrow_rate: float, step: float) -> None:
    """``--compare-cex``: the loop and the perpetual, side by side, printed and written."""
    from backtest.cli.risk import _leverages, _print_frame
    from backtest.lending.compare import compare_loop_with_perp
    from backtest.lending.report import write_tables
    from backtest.lending.simulation import SimulationConfig
    from backtest.risk.crashes import load_crashes
    from backtest.risk.replay import load_crash_window

    levels = _leverages(leverage)
    try:
        window = load_crashes().select(crash)[0]
        data = load_crash_window(_store(store), window, symbol, exchange=exchange)
        print_data_warnings(data.warnings)
        config = SimulationConfig(version=version, heartbeat=heartbeat, deviation=deviation,
                                  borrow_rate=borrow_rate)
        table = compare_loop_with_perp(window, symbol, data, leverages=levels, equity=equity,
                                       exchange=exchange, config=config, step=step)
        folder = write_tables(out, {"comparison": table}, overwrite=overwrite, manifest={
            "compare_cex": crash, "symbol": symbol, "leverages": levels, "equity": equity})
    except _errors() as exc:
        raise _fail(str(exc)) from None
    _print_frame(table, f"{crash}: Aave loop vs perpetual long, {equity:,.0f} USD equity")
    _console().print(f"wrote {str(folder)}", highlight=False, soft_wrap=True)


def _window(start: str | None, end: str | None) -> tuple[int | None, int | None, str]:
    from data_loaders.schemas import to_ms

    start_ms = None if start is None else to_ms(start)
    end_ms = None if end is None else to_ms(end)
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise _fail(f"--end {end!r}: expected a time after --start {start!r}; the window is [start, end)")
    return start_ms, end_ms, f"{start or 'first stored bar'} .. {end or 'last stored bar'}"


def _load(store: Path | None, exchange: str, symbol: str, timeframe: str,
          window: tuple[int | None, int | None, str]) -> Any:
    from backtest.risk.data import load_window

    return load_window(_store(store), exchange=exchange, symbol=symbol, timeframe=timeframe,
                       start_ms=window[0], end_ms=window[1],
                       label=f"lending window {symbol} {timeframe} {window[2]}")


def _population(positions: Path | None, generate: int | None, protocol: str | None,
                seed: int | None, median_value: float | None, hf_range: str | None, pick: Any,
                assets: dict[str, str], bars: dict[str, Any]) -> Any:
    import polars as pl

    from backtest.lending.population import generate_population, read_population

    if positions is not None:
        return read_population(positions)
    count = pick(generate, "positions")
    if count < 1:
        raise _fail(f"--generate {count}: expected a whole number of positions >= 1, e.g. --generate 10000")
    low_high = pick(None, "health_factor_range")
    if hf_range is not None:
        low, dots, high = hf_range.partition("..")
        try:
            low_high = (float(low), float(high))
        except ValueError:
            raise _fail(f"--hf-range {hf_range!r}: expected LOW..HIGH, e.g. --hf-range 1.05..2.5") from None
        if not dots:
            raise _fail(f"--hf-range {hf_range!r}: expected LOW..HIGH, e.g. --hf-range 1.05..2.5")
    frames = [generate_population(count, seed=pick(seed, "seed"), protocol=pick(protocol, "protocol"),
                                  asset=asset, price=float(bars[asset]["open"][0]),
                                  median_value=pick(median_value, "median_value"),
                                  value_sigma=pick(None, "value_sigma"), health_factor_range=low_high)
              for asset in assets]
    return pl.concat(frames)


def _setup(pick: Any, *, version: str, heartbeat: float, deviation: float, gas_cost: float | None,
           min_profit: float, latency: int | None, capital: float, borrow_rate: float | None,
           venue: str | None, depth: float | None, feedback: bool | None,
           arbitrage_share: float | None, step: float, auction: str, keeper: list[str] | None,
           gas_gwei: float | None, gas_spike: list[str] | None) -> Any:
    from backtest.lending.auctions import AuctionParams
    from backtest.lending.simulation import SimulationConfig
    from backtest.lending.study import LendingSetup

    rate = pick(borrow_rate, "borrow_rate")
    aave = SimulationConfig(version=version, heartbeat=heartbeat, deviation=deviation,
                            gas_cost=pick(gas_cost, "gas_cost"), min_profit=min_profit,
                            latency_steps=pick(latency, "latency_steps"), capital=capital,
                            borrow_rate=rate, feedback=pick(feedback, "feedback"),
                            arbitrage_share=pick(arbitrage_share, "arbitrage_share"))
    keepers = tuple(_keeper(k) for k in keeper) if keeper else pick(None, "keepers")
    spikes = tuple(_spike(s) for s in gas_spike) if gas_spike else pick(None, "gas_spikes")
    return LendingSetup(aave=aave, venue=pick(venue, "venue"), depth=pick(depth, "depth"), step=step,
                        auction=AuctionParams(mode=auction, stability_fee=rate), keepers=keepers,
                        gas_base_gwei=pick(gas_gwei, "gas_base_gwei"), gas_spikes=spikes)


def _print(study: Any, pl: Any) -> None:
    from rich.table import Table

    bad = study.tables["bad_debt"]
    table = Table(title="bad debt by protocol and asset (base currency)")
    columns = ["protocol", "asset", "positions", "debt_start", "debt_liquidated", "liquidations",
               "deficit", "underwater_debt", "incentives", "bad_debt"]
    for column in columns:
        table.add_column(column)
    for row in bad.iter_rows(named=True):
        table.add_row(*[f"{row[c]:,.0f}" if isinstance(row[c], float) else str(row[c])
                        for c in columns])
    _console().print(table)
    for summary in study.summaries:
        if summary["protocol"] == "maker":
            _console().print(
                f"maker {summary['asset']} ({summary['mode']}): {summary['auctions']:,} auctions, "
                f"{summary['zero_bid_auctions']:,} zero-bid ({summary['zero_bid_share']:.1%}, collateral "
                f"worth {summary['zero_bid_collateral_value']:,.0f}), shortfall {summary['shortfall']:,.0f} DAI, "
                f"keeper incentives {summary['incentives']:,.0f} DAI", highlight=False, soft_wrap=True)
    _console().print(f"toxic-spiral positions: {study.tables['toxic'].height:,}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``lending`` to the ``margincall`` app."""
    app.command("lending")(lending)
