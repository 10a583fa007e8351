"""``margincall replay | stress | mc | survive``: the risk lab on the command line (``sweep``: :mod:`backtest.cli.sweep`).

Heavy imports (polars, numpy, scipy, the engine, ray) happen inside the commands.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from backtest.cli.output import console as _console
from backtest.cli.output import fail as _fail
from backtest.cli.output import option_time as _option_time
from backtest.cli.output import labelled, styled
from backtest.cli.output import open_store as _store
from backtest.cli.output import parse_params
from backtest.cli.shared import ExchangeOpt, LeverageOpt, StoreOpt, StrategyOpt
from backtest.cli.shared import (DEFAULT_TIMEFRAME, BalanceOpt, MarginModeOpt, PathPolicyOpt, SlippageOpt,
                                 print_data_warnings, run_config)
from backtest.cli.shared import parse_floats as _floats
from backtest.cli.shared import parse_leverages as _leverages
from backtest.cli.shared import print_frame as _print_frame
from backtest.cli.shared import provenance_section as _provenance
from backtest.cli.shared import risk_errors as _risk_errors

ParamOpt = Annotated[Optional[list[str]], typer.Option("--param", help="Strategy parameter NAME=VALUE (repeat).")]
VenuesOpt = Annotated[Optional[str], typer.Option(
    "--venues", help="Run under each venue's rules on the --exchange prices: 'all' or comma-separated "
                     "names (adds rows per venue; a venue that cannot trade the symbol is a row with the reason).")]
#: Prices a return model can be fitted on.
PRICE_TYPES = ("mark", "last")
SIDES = ("long", "short")


def _params(items: list[str] | None) -> dict[str, Any]:
    from backtest.errors import ConfigError

    try:
        return parse_params(items)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


#: Longest horizon, hours: its milliseconds must fit the int64 time axis of the simulation.
MAX_HORIZON_HOURS = (2 ** 63 - 1) / 3_600_000


def _horizons(values: list[float], text: str) -> list[float]:
    """``--horizon`` hours whose milliseconds fit an int64 (longer ones are refused by name)."""
    long = [v for v in values if v >= MAX_HORIZON_HOURS]
    if long:
        raise _fail(f"--horizon {text!r}: expected hours < {MAX_HORIZON_HOURS:.3g} (the simulation counts "
                    f"time in int64 milliseconds), found {long[0]:g}; e.g. --horizon 1,4,24")
    return values


def _seed(value: int) -> int:
    """``--seed``: numpy's SeedSequence takes whole numbers >= 0."""
    if value < 0:
        raise _fail(f"--seed {value}: expected a whole number >= 0, e.g. --seed 0")
    return value


def _refuse_all_refused(table: Any, leverage: str) -> None:
    """Exit 2 (an input mistake) when the engine refused every row before its run: the ladder measured nothing.

    Rows refused among others are outcomes (docs/risk.md, "A ladder the engine refuses
    entirely is an error").
    """
    reasons = table["rejection"].to_list() if "rejection" in table.columns else []
    if reasons and all(isinstance(r, str) and r.startswith("refused:") for r in reasons):
        raise _fail(f"--leverage {leverage!r}: expected at least one leverage the venue allows, found every "
                    f"run refused before it started; the first refusal: {reasons[0].removeprefix('refused:').strip()}")


def _venues(text: str | None) -> tuple[str, ...] | None:
    """``--venues`` as registered venue names (None: not given, the configured venue only)."""
    if text is None:
        return None
    from backtest.compare import parse_venues

    return parse_venues(text)


def _choice(value: str, option: str, choices: tuple[str, ...]) -> str:
    from backtest.errors import did_you_mean

    if value not in choices:
        raise _fail(f"{option} {value!r}: expected one of {', '.join(choices)}{did_you_mean(value, choices)}")
    return value


def _positive(value: float, option: str, example: str, *, upper: float | None = None) -> float:
    import math

    if not math.isfinite(value) or value <= 0 or (upper is not None and value >= upper):
        bound = f" and < {upper:g}" if upper is not None else ""
        raise _fail(f"{option} {value!r}: expected a finite number > 0{bound}, e.g. {option} {example}")
    return value


def _window_label(start: str | None, end: str | None) -> str:
    return f"{start or 'first stored bar'} .. {end or 'last stored bar'}"


def replay(
    crash: Annotated[str, typer.Option("--crash", help="'all' or comma-separated window names.")] = "all",
    crashes: Annotated[Optional[list[Path]], typer.Option("--crashes", help="Extra crash TOML file (repeat).")] = None,
    strategy: StrategyOpt = "hold",
    param: ParamOpt = None,
    leverage: LeverageOpt = "2,5,10,20,50",
    balance: BalanceOpt = None,
    margin_mode: MarginModeOpt = None,
    path_policy: PathPolicyOpt = None,
    slippage: SlippageOpt = None,
    symbol: Annotated[Optional[list[str]], typer.Option("--symbol", help="Only these symbols (repeat).")] = None,
    store: StoreOpt = None,
    exchange: ExchangeOpt = "binanceusdm",
    venues: VenuesOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the table to this Parquet file.")] = None,
    html: Annotated[Optional[Path], typer.Option("--html", help="Write an offline HTML report of the results to this file.")] = None,
) -> None:
    """Replay named crash windows: survived or liquidated, when, loss, worst margin ratio, slippage."""
    from backtest.risk.crashes import load_crashes
    from backtest.risk.replay import replay_library

    leverages = _leverages(leverage)
    try:
        config = run_config(balance=balance, margin_mode=margin_mode, path_policy=path_policy, slippage=slippage)
        windows = load_crashes(crashes or []).select(crash)
        outcome = replay_library(windows, _store(store), strategy=strategy, params=_params(param),
                                 leverages=leverages, config=config, exchange=exchange, symbols=symbol,
                                 venues=_venues(venues))
    except _risk_errors() as exc:
        raise _fail(str(exc)) from None
    for message in outcome.missing:
        _console().print(labelled("missing data:", "yellow", message), highlight=False, soft_wrap=True)
    if outcome.table.height == 0:
        raise _fail("no crash window could be replayed (see the missing-data messages above)")
    print_data_warnings(outcome.warnings)
    _print_frame(outcome.table, f"crash replays ({config.initial_balance:,.0f} USDT, {config.margin_mode})",
                 ["crash", "symbol", *(["venue"] if venues else []), "leverage", "survived", "first_liquidation", "hours_to_liquidation", "loss",
                  "loss_pct", "worst_margin_ratio", "slippage_cost", "net_funding_received", "rejection"])
    _refuse_all_refused(outcome.table, leverage)
    if not (out or html):
        return
    from backtest.risk.provenance import MANIFEST_SUFFIX, output_manifest, rule_versions, unique_sources
    from backtest.risk.replay import load_crash_window

    replayed = set(zip(outcome.table["crash"].to_list(), outcome.table["symbol"].to_list()))
    market_store = _store(store)
    loaded = {(w.name, s): load_crash_window(market_store, w, s, exchange=exchange)
              for w in windows for s in w.symbols if (w.name, s) in replayed}
    manifest = output_manifest(
        "replay", config=config, seed=config.seed, sources=unique_sources(d.sources for d in loaded.values()),
        inputs={"strategy": strategy, "params": _params(param), "leverages": leverages,
                "crashes": sorted({name for name, _ in loaded}), "symbols": symbol or "all"},
        rules=rule_versions(config.venue, {f"{name} {sym}": d.tiers for (name, sym), d in loaded.items()}),
        warnings=outcome.warnings)
    if out:
        from backtest.risk.provenance import write_output_manifest

        out = Path(out)
        tmp = out.with_name(f".{out.name}.tmp")
        outcome.table.write_parquet(tmp)
        tmp.replace(out)  # whole or not at all
        manifest_path = write_output_manifest(out.with_name(out.stem + MANIFEST_SUFFIX), manifest, {out.name: out})
        _console().print(f"wrote {out} (provenance {manifest_path})", highlight=False, soft_wrap=True)
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if html:
        from backtest.risk import report_sections as rs

        prices = {key: d.bars for key, d in loaded.items()}
        rs.write_risk_report(html, title="Crash replays", subtitle=f"{strategy} at {leverage}x", sections=[
            ("replays", "Crash replays", lambda t: rs.crash_replay_table_section(outcome.table, title=t)),
            ("replay-charts", "Price and liquidation prices per crash",
             lambda t: rs.crash_replay_charts_section(outcome.table, prices, title=t)),
            _provenance(manifest)])
        _console().print(f"wrote {html}")


def stress(
    symbol: Annotated[str, typer.Option("--symbol", help="ccxt symbol, e.g. BTC/USDT:USDT.")],
    start: Annotated[str, typer.Option("--start", help="Range start, UTC.")],
    end: Annotated[str, typer.Option("--end", help="Range end, UTC, exclusive.")],
    scenario: Annotated[list[str], typer.Option("--scenario", help="Scenario set, e.g. 'crash=shock:-0.3@2022-11-09T14:00Z+drought:5@2022-11-09T13:00Z..2022-11-09T16:00Z' (repeat); terms shock:PCT@T, vol:F[@A..B], funding:RATE@A..B, mark:PCT@A..B, drought:M[@A..B].")],
    timeframe: Annotated[str, typer.Option("--timeframe", help="Candle timeframe: 1m, 5m, 15m, 1h, 4h, 1d ... (default 1h for every command).")] = DEFAULT_TIMEFRAME,
    strategy: StrategyOpt = "hold",
    param: ParamOpt = None,
    leverage: LeverageOpt = "5,10,20",
    balance: BalanceOpt = None,
    margin_mode: MarginModeOpt = None,
    path_policy: PathPolicyOpt = None,
    slippage: SlippageOpt = None,
    store: StoreOpt = None,
    exchange: ExchangeOpt = "binanceusdm",
    venues: VenuesOpt = None,
    html: Annotated[Optional[Path], typer.Option("--html", help="Write an offline HTML report of the results to this file.")] = None,
) -> None:
    """Run a strategy under stress scenarios (shock, vol, funding, mark, drought) and tabulate outcomes."""
    from backtest.risk.data import load_window
    from backtest.risk.scenarios import StressMarket, parse_scenario
    from backtest.risk.stress import run_stress

    leverages = _leverages(leverage)
    try:
        config = run_config(balance=balance, margin_mode=margin_mode, path_policy=path_policy, slippage=slippage)
        sets = [parse_scenario(s) for s in scenario]
        start_ms, end_ms = _option_time("--start", start), _option_time("--end", end)
        if end_ms <= start_ms:
            raise _fail(f"--end {end!r}: expected a time after --start {start!r}; the range is [start, end)")
        data = load_window(_store(store), exchange=exchange, symbol=symbol, timeframe=timeframe, start_ms=start_ms,
                           end_ms=end_ms, label=f"stress range {start}..{end}")
        market = StressMarket(bars={symbol: data.bars}, funding={symbol: data.funding} if data.funding is not None else {},
                              tiers={symbol: data.tiers}, markets={symbol: data.market}, warnings=tuple(data.warnings))
        table = run_stress(market, sets, timeframe=timeframe, strategy=strategy, params=_params(param),
                           leverages=leverages, config=config, exchange=exchange, venues=_venues(venues))
    except _risk_errors() as exc:
        raise _fail(str(exc)) from None
    print_data_warnings(data.warnings)
    _print_frame(table, f"stress scenarios ({config.initial_balance:,.0f} USDT, {config.margin_mode})",
                 ["scenario", *(["venue"] if venues else []), "leverage", "survived", "first_liquidation_ts", "total_return", "max_drawdown",
                  "worst_margin_ratio", "slippage_cost", "net_funding_received", "rejection"])
    _refuse_all_refused(table, leverage)
    if html:
        from backtest.risk import report_sections as rs
        from backtest.risk.provenance import output_manifest, rule_versions

        manifest = output_manifest(
            "stress", config=config, seed=config.seed, sources=data.sources,
            inputs={"strategy": strategy, "params": _params(param), "leverages": leverages, "symbol": symbol,
                    "timeframe": timeframe, "start": start, "end": end, "scenarios": list(scenario)},
            rules=rule_versions(config.venue, {symbol: data.tiers}), warnings=data.warnings)
        rs.write_risk_report(html, title="Stress scenarios", subtitle=f"{strategy} on {symbol}, {start} .. {end}",
                             sections=[("stress", "Outcomes by scenario and leverage",
                                        lambda t: rs._section(t, rs.table_html(table), css_class="mc-stress")),
                                       ("stress-map", "Total return by scenario and leverage",
                                        lambda t: rs.sweep_heatmap_section(table, x="leverage", y="scenario",
                                                                           value="total_return", title=t)),
                                       _provenance(manifest)])
        _console().print(f"wrote {html}")


def _fit(store: Path | None, exchange: str, symbol: str, timeframe: str, start: str | None, end: str | None,
         price: str, model: str):
    """Fit ``model`` on the stored candles; returns (fit outcome, entry price, window data, tier
    table at entry).

    The fit goes through the store's model cache (``<store>/cache/models``): a window whose
    partitions are unchanged is read back instead of refitted. A new fit is written to the
    cache by the caller (``outcome.remember()``) once the command has succeeded, so a command
    refused after fitting leaves the store unchanged.
    """
    from backtest.risk.data import load_window
    from backtest.risk.model_cache import ModelCache, partition_checksums
    from backtest.risk.models import fit_model_cached
    from backtest.risk.paths import ReturnSample

    market_store = _store(store)
    data = load_window(market_store, exchange=exchange, symbol=symbol, timeframe=timeframe,
                       start_ms=_option_time("--start", start), end_ms=_option_time("--end", end),
                       label=f"fit data {symbol} {timeframe} {_window_label(start, end)}")
    print_data_warnings(data.warnings)
    sample = ReturnSample.from_bars(data.bars, price=price)
    # the simulated position opens at the close of the last fitted bar: the tier table in force
    # then (stored where it covers the date, built-in otherwise), not the newest one
    entry_ms = data.last_ms + sample.step_ms
    outcome = fit_model_cached(model, sample, cache=ModelCache.for_store(market_store.root),
                               partitions=partition_checksums(data.sources), defer=True)
    return outcome, float(data.bars["mark_close" if price == "mark" else "close"][-1]), data, data.tiers.at(entry_ms)


def mc(
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol (ccxt unified name).")] = "BTC/USDT:USDT",
    timeframe: Annotated[str, typer.Option("--timeframe", help="Candles the model is fitted on (= simulation step).")] = DEFAULT_TIMEFRAME,
    start: Annotated[Optional[str], typer.Option("--start", help="Window start, UTC date or time (default: the first stored candle).")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Window end, UTC date or time, exclusive (default: the last stored candle).")] = None,
    price: Annotated[str, typer.Option("--price", help="Fit on 'mark' or 'last' candles.")] = "mark",
    model: Annotated[str, typer.Option("--model", help="bootstrap, garch, jump or gbm.")] = "bootstrap",
    leverage: LeverageOpt = "2,3,5,10,20,25,50,75,100,125",
    side: Annotated[str, typer.Option("--side", help="long or short.")] = "long",
    margin: Annotated[float, typer.Option("--margin", help="Isolated margin, USDT.")] = 10_000.0,
    horizon: Annotated[str, typer.Option("--horizon", help="Horizons in hours, comma-separated.")] = "1,4,24",
    paths: Annotated[int, typer.Option("--paths", help="Number of simulated price paths.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same paths).")] = 0,
    workers: Annotated[int, typer.Option("--workers", help="Threads.")] = 2,
    store: StoreOpt = None,
    exchange: ExchangeOpt = "binanceusdm",
    html: Annotated[Optional[Path], typer.Option("--html", help="Write an offline HTML report of the results to this file.")] = None,
) -> None:
    """Monte Carlo liquidation probability by leverage and horizon, with Wilson intervals."""
    from backtest.risk.barriers import liquidation_barriers
    from backtest.risk.montecarlo import LiquidationStudy

    _choice(side, "--side", SIDES)
    _choice(price, "--price", PRICE_TYPES)
    leverages, hours = _leverages(leverage), _horizons(_floats(horizon, "--horizon"), horizon)
    _seed(seed)
    _positive(margin, "--margin", "10000")
    _count(paths, "--paths", "10000")
    _count(workers, "--workers", "2")
    try:
        outcome, s0, data, tiers = _fit(store, exchange, symbol, timeframe, start, end, price, model)
        fitted = outcome.model
        barriers = liquidation_barriers(leverages, side=1 if side == "long" else -1, entry_price=s0, margin=margin,
                                        tiers=tiers, clearance_fee_rate=data.market.liquidation_fee_rate)
        horizon_ms = [int(h * 3_600_000) for h in hours]
        study = LiquidationStudy.run(fitted, barriers, horizon_ms=max(horizon_ms), n_paths=paths, seed=seed,
                                     workers=workers)
        table = study.table(horizon_ms)
    except _risk_errors() as exc:
        raise _fail(str(exc)) from None
    outcome.remember()
    _console().print((f"model {model}: " + ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                                                          for k, v in fitted.describe().items())), highlight=False)
    _console().print(f"tiers: {tiers.label}", highlight=False)
    from backtest.formatting import fmt_price

    tick = data.market.tick_size if data.market is not None else None
    _print_frame(table, f"P(liquidation) {symbol} {side}, entry {fmt_price(s0, tick_size=tick)}, "
                 f"margin {margin:,.0f} USDT",
                 ["leverage", "horizon_hours", "probability", "ci_low", "ci_high", "median_ttl_hours",
                  "liquidation_price", "allowed"], tick_size=tick)
    if html:
        from backtest.risk import report_sections as rs
        from backtest.risk.provenance import output_manifest, rule_versions

        manifest = output_manifest(
            "mc", seed=seed, sources=data.sources,
            inputs={"symbol": symbol, "timeframe": timeframe, "start": start, "end": end, "price": price,
                    "model": model, "fitted": fitted.describe(), "leverages": leverages, "side": side,
                    "margin": margin, "horizon_hours": hours, "paths": paths, "entry_price": s0},
            rules=rule_versions("binance_usdm", {symbol: tiers}), warnings=data.warnings)
        rs.write_risk_report(html, title=f"Liquidation probability: {symbol} {side}",
                             subtitle=f"model {model}, {paths:,} paths, entry {s0:,.2f}, margin {margin:,.0f} USDT",
                             sections=[("fit", "Fitted return model", lambda t: rs.fit_table_section([fitted.describe()], title=t)),
                                       ("heatmap", "P(liquidation) by leverage and horizon", lambda t: rs.liquidation_heatmap_section(table, title=t)),
                                       ("survival", "Survival table", lambda t: rs.survival_table_section(table, title=t)),
                                       ("fan", "Equity across simulated paths", lambda t: rs.fan_chart_section(study, title=t)),
                                       _provenance(manifest)])
        _console().print(f"wrote {html}")


def _count(value: int, option: str, example: str) -> int:
    if value < 1:
        raise _fail(f"{option} {value}: expected a whole number >= 1, e.g. {option} {example}")
    return value


def survive(
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol (ccxt unified name).")] = "BTC/USDT:USDT",
    timeframe: Annotated[str, typer.Option("--timeframe", help="Candle timeframe: 1m, 5m, 15m, 1h, 4h, 1d ... (default 1h for every command).")] = DEFAULT_TIMEFRAME,
    start: Annotated[Optional[str], typer.Option("--start", help="Window start, UTC date or time (default: the first stored candle).")] = None,
    end: Annotated[Optional[str], typer.Option("--end", help="Window end, UTC date or time, exclusive (default: the last stored candle).")] = None,
    price: Annotated[str, typer.Option("--price", help="Fit on 'mark' or 'last' candles.")] = "mark",
    model: Annotated[str, typer.Option("--model", help="Price model: bootstrap, garch, jump or gbm.")] = "bootstrap",
    target: Annotated[float, typer.Option("--target", help="Highest acceptable P(liquidation within the horizon).")] = 0.01,
    horizon: Annotated[float, typer.Option("--horizon", help="Horizon in hours.")] = 24.0,
    side: Annotated[str, typer.Option("--side", help="long or short.")] = "long",
    margin: Annotated[float, typer.Option("--margin", help="Isolated margin, USDT.")] = 10_000.0,
    criterion: Annotated[str, typer.Option("--criterion", help="'estimate' or 'upper' (Wilson upper bound).")] = "estimate",
    paths: Annotated[int, typer.Option("--paths", help="Number of simulated price paths.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same paths).")] = 0,
    crash: Annotated[Optional[str], typer.Option("--crash", help="Also solve the largest leverage surviving these crash windows ('all' or names).")] = None,
    crashes: Annotated[Optional[list[Path]], typer.Option("--crashes", help="Crash catalog TOML file(s) instead of the built-in one (repeat).")] = None,
    store: StoreOpt = None,
    exchange: ExchangeOpt = "binanceusdm",
) -> None:
    """Largest leverage with P(liquidation within the horizon) <= target (and surviving named crashes)."""
    from backtest.risk.montecarlo import simulate_first_passage
    from backtest.risk.survival import crash_survival_leverage, max_leverage_mc

    _choice(side, "--side", SIDES)
    _choice(price, "--price", PRICE_TYPES)
    _choice(criterion, "--criterion", ("estimate", "upper"))
    _positive(target, "--target", "0.01", upper=1.0)
    _positive(horizon, "--horizon", "24", upper=MAX_HORIZON_HOURS)
    _positive(margin, "--margin", "10000")
    _count(paths, "--paths", "10000")
    _seed(seed)
    sign = 1 if side == "long" else -1
    try:
        outcome, s0, data, tiers = _fit(store, exchange, symbol, timeframe, start, end, price, model)
        fitted = outcome.model
        steps = int(horizon * 3_600_000 // fitted.step_ms)
        if steps < 1:
            raise _fail(f"--horizon {horizon} h is shorter than one {timeframe} step")
        passage = simulate_first_passage(fitted, barriers=[], side=sign, n_paths=paths, n_steps=steps, s0=s0,
                                         seed=seed, workers=2)
        result = max_leverage_mc(passage, target=target, margin=margin, tiers=tiers, entry_price=s0,
                                 criterion=criterion)
    except _risk_errors() as exc:
        raise _fail(str(exc)) from None
    outcome.remember()
    if result.value is None:
        _console().print(f"even 1x exceeds P = {target:.2%} over {horizon:g} h")
    else:
        d = result.detail
        _console().print(f"largest leverage with P(liquidation within {horizon:g} h) <= {target:.2%} ({model}, "
                         f"{criterion}):", styled(f"{result.value:.2f}x", "bold"),
                         f" (P = {d['estimate']:.3%}, 95 % CI [{d['ci_low']:.3%}, {d['ci_high']:.3%}], "
                         f"{d['n_paths']:,} paths)", highlight=False)
    if crash:
        from backtest.risk.crashes import load_crashes
        from backtest.risk.replay import load_crash_window, survives_all

        try:
            market_store = _store(store)
            inputs = [(window, symbol, load_crash_window(market_store, window, symbol, exchange=exchange))
                      for window in load_crashes(crashes or []).select(crash) if symbol in window.symbols]
            for _, _, window_data in inputs:
                print_data_warnings(window_data.warnings)
            survives = survives_all(inputs, strategy="hold", params={"side": side}, config=run_config(),
                                    exchange=exchange)
            crash_result = crash_survival_leverage(survives, lo=1.0, hi=125.0)
        except _risk_errors() as exc:
            raise _fail(str(exc)) from None
        names = ", ".join(w.name for w, _, _ in inputs)
        value = "none (even 1x is liquidated)" if crash_result.value is None else f"{crash_result.value:.2f}x"
        _console().print(f"largest leverage surviving every crash ({names}):", styled(value, "bold"), highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``replay``, ``stress``, ``mc`` and ``survive`` to the ``margincall`` app."""
    app.command("replay")(replay)
    app.command("stress")(stress)
    app.command("mc")(mc)
    app.command("survive")(survive)
