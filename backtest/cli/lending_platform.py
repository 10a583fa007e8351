"""``margincall lending --platform/--grid``: protocol parameter sets against a population and a
scenario set (the stored window at several move depths, shocks, Monte Carlo paths), on the
sweep executor; tables, DuckDB views, manifest and page in one folder. The rules live in
:mod:`backtest.lending.platform`, :mod:`backtest.lending.platform_sets` and
:mod:`backtest.lending.platform_run`. Heavy imports happen inside the function.
"""
from __future__ import annotations

import math
from typing import Any

from backtest.cli.output import console as _console
from backtest.cli.output import fail as _fail
from backtest.cli.shared import parse_floats as _floats
from backtest.cli.shared import print_frame as _print_frame

__all__ = ["DEFAULT_KEEPER", "run_platform_view"]

#: The Maker keeper of a platform run without ``--keeper``: one value keeper, any gas price,
#: 5 % below market (liquid, competitive liquidation markets).
DEFAULT_KEEPER = "keeper:value:inf:0.05"

def _numbers(text: str | None, option: str) -> list[float]:
    """Comma-separated finite numbers of ``option`` (any sign; empty or None -> [])."""
    if not text:
        return []
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = [math.nan]
    if not all(math.isfinite(v) for v in values):
        raise _fail(f"{option} {text!r}: expected comma-separated numbers, e.g. {option} 0.2,0.4")
    return values


def _mc_model(o: dict[str, Any]) -> tuple[Any, Any]:
    """The Monte Carlo return model: GBM at ``--mc-sigma`` per minute (the perpetuals' platform
    default), or a risk-lab model fitted on the window's candles through the model cache
    (returns the fit outcome to remember once the run succeeded)."""
    from backtest.cli.risk import _fit
    from backtest.risk.paths import GBM

    if o["mc_model"] == "gbm":
        return GBM(o["mc_sigma"], step_ms=60_000), None
    outcome = _fit(o["store"], o["exchange"], o["symbol"], o["timeframe"], o["start"], o["end"],
                   "last", o["mc_model"])[0]
    return outcome.model, outcome


_SHOWN = ["protocol", "parameter_set", "capital_efficiency", "mean", "p95", "p99", "es95",
          "es99", "worst", "recommended"]


def run_platform_view(o: dict[str, Any]) -> None:
    """Run, print and write the platform view from the parsed options ``o`` (keys: specs,
    grid, min_efficiency, depths, seeds, positions, symbol, timeframe, window, store, exchange,
    out, overwrite, depth, heartbeat, deviation, gas_cost, step, shock, mc, mc_sigma, mc_seed,
    mc_hours, mc_model, start, end, depth_scale, workers, ray_address, keepers, gas_gwei)."""
    from backtest.cli.lending import _errors, _keeper, _load
    from backtest.lending.paths import candle_path
    from backtest.lending.platform import parse_grid, parse_parameter_set
    from backtest.lending.platform_report import render_platform_page
    from backtest.lending.platform_run import PlatformSetup, lending_scenarios, run_lending_platform
    from backtest.lending.platform_sets import RunContext
    from backtest.lending.report import REPORT_NAME, write_tables
    from backtest.lending.simulation import SimulationConfig
    from backtest.platform.scenarios import ScenarioSetup
    from backtest.runfolder import check_output_folder

    depths = _floats(o["depths"], "--scenario-depth") if o["depths"] else []
    shocks = _numbers(o["shock"], "--shock")
    scales = _floats(o["depth_scale"], "--depth-scale") if o["depth_scale"] else [1.0]
    try:
        seeds = [int(s) for s in o["seeds"].split(",") if s.strip()]
    except ValueError:
        raise _fail(f"--seeds {o['seeds']!r}: expected comma-separated whole numbers, e.g. 0,1,2") from None
    if o["mc"] < 0 or not (math.isfinite(o["mc_sigma"]) and o["mc_sigma"] > 0) or not o["mc_hours"] > 0:
        raise _fail(f"--mc {o['mc']}, --mc-sigma {o['mc_sigma']}, --mc-hours {o['mc_hours']}: expected "
                    "paths >= 0, a log-return sd per minute > 0 and a length > 0 hours, e.g. --mc 200 "
                    "--mc-sigma 0.004 --mc-hours 24")
    keepers = tuple(_keeper(k) for k in (o["keepers"] or [DEFAULT_KEEPER]))
    try:
        sets = [parse_parameter_set(s) for s in o["specs"]] + (parse_grid(o["grid"]) if o["grid"] else [])
        final = check_output_folder(o["out"], overwrite=o["overwrite"])   # before the run, not after
        window = o["window"]
        data = _load(o["store"], o["exchange"], o["symbol"], o["timeframe"], window)
        times, prices = candle_path(data.bars, step=o["step"])
        scenarios, moves = lending_scenarios(
            symbol=o["symbol"], times=times if depths else None, prices=prices,
            move_depths=depths, shocks=shocks, montecarlo=o["mc"], mc_seed=o["mc_seed"],
            depth_scales=scales)
        seconds = int(round(o["mc_hours"] * 3600))
        model, outcome = _mc_model(o) if o["mc"] else (None, None)
        generated = ScenarioSetup(
            {o["symbol"]: float(prices[0])}, seconds=seconds, start_ms=int(round(times[0] * 1000)),
            step_s=o["step"], shock_start_s=min(3600, seconds // 4),
            shock_seconds=max(1, min(3600, seconds // 4)),
            model=model)
        config = SimulationConfig(heartbeat=o["heartbeat"], deviation=o["deviation"],
                                  gas_cost=o["gas_cost"])
        setup = PlatformSetup(o["symbol"], RunContext(config, depth_quote=o["depth"], keepers=keepers,
                                                      gas_gwei=o["gas_gwei"]),
                              positions=o["positions"], seeds=tuple(seeds), scenario=generated,
                              move_depths=moves)
        result = run_lending_platform(sets, scenarios, setup, workers=o["workers"],
                                      ray_address=o["ray_address"],
                                      min_efficiency=o["min_efficiency"])
        t = result.timing
        subtitle = (f"{result.scenarios.height} scenarios x {len(seeds)} populations of "
                    f"{o['positions']:,} x {len(sets)} sets, {o['symbol']} {window[2]}")
        page = render_platform_page(result, title="Lending platform view", subtitle=subtitle,
                                    out=final / REPORT_NAME)
        folder = write_tables(final, result.tables(), overwrite=o["overwrite"], extra={REPORT_NAME: page},
                              manifest={"platform": o["specs"], "grid": o["grid"],
                                        "min_efficiency": o["min_efficiency"], "symbol": o["symbol"],
                                        "window": window[2], "move_depths": depths, "shocks": shocks,
                                        "montecarlo": {"paths": o["mc"], "model": o["mc_model"],
                                                       "sigma_per_minute": o["mc_sigma"],
                                                       "seed": o["mc_seed"], "hours": o["mc_hours"]},
                                        "depth_scales": scales, "seeds": seeds,
                                        "positions": o["positions"], "timing": t,
                                        "keepers": [k.name for k in keepers]})
        if outcome is not None:   # the fitted model is cached only once the run succeeded
            outcome.remember()
    except _errors() as exc:
        raise _fail(str(exc)) from None
    _print_frame(result.summary, f"bad debt by parameter set ({subtitle})", _SHOWN)
    for row in result.summary.filter("recommended").iter_rows(named=True):
        _console().print(f"recommended {row['protocol']}: {row['parameter_set']} (p95 bad debt "
                         f"{row['p95']:,.0f}, serves {row['capital_efficiency']:.1%} of demand)",
                         highlight=False, soft_wrap=True)
    _console().print(f"{t['runs']:,} runs in {t['wall_s']:.1f} s wall, {t['run_cpu_s']:.1f} s CPU in "
                     f"runs on {t['workers']} {t['backend']} worker(s)", highlight=False, soft_wrap=True)
    _console().print(f"wrote {str(folder)}", highlight=False, soft_wrap=True)
