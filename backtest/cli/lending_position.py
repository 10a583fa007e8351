"""``margincall lending --position LTV``: one looped Aave long through the risk lab.

The crash replay, stress, Monte Carlo and survival solver of the perpetuals
(:mod:`backtest.lending.position`), printed and written as one folder (``position_replay``,
``position_stress``, ``position_mc`` with the perpetual side by side on the same paths,
``position_survival``; docs/lending.md). Heavy imports happen inside the function.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from backtest.cli.output import console as _console
from backtest.cli.output import fail as _fail
from backtest.cli.output import open_store as _store
from backtest.cli.shared import print_data_warnings

__all__ = ["run_position"]


def run_position(ltv: float, loops: int | None, symbol: str, crash: list[str] | None,
                 scenario: list[str] | None, *, paths: int, horizon: float, target: float,
                 model: str, timeframe: str, start: str | None, end: str | None, equity: float,
                 borrow_rate: float, seed: int, store: Path | None, exchange: str, out: Path,
                 overwrite: bool, heartbeat: float, deviation: float,
                 oracle: str = "market") -> None:
    """Run and report the looped position (see the module docstring)."""
    import polars as pl

    from backtest.cli.lending import _errors
    from backtest.cli.risk import _fit, _print_frame
    from backtest.lending.compare import compare_mc
    from backtest.lending.position import (LoopedLong, OracleRule, crash_survival_ltv,
                                           probability_survival_ltv, replay_crashes, stress_loop)
    from backtest.lending.report import write_tables
    from backtest.lending.simulation import SimulationConfig
    from backtest.risk.crashes import load_crashes
    from backtest.risk.montecarlo import simulate_first_passage
    from backtest.risk.replay import load_crash_window
    from backtest.risk.scenarios import parse_scenario

    if paths < 0 or horizon <= 0 or not 0 < target < 1:
        raise _fail(f"--paths {paths}, --horizon {horizon}, --target {target}: expected paths "
                    ">= 0, a horizon > 0 hours and a probability target in (0, 1), e.g. "
                    "--paths 10000 --horizon 24 --target 0.01")
    tables: dict[str, pl.DataFrame] = {}
    survival: list[dict[str, Any]] = []
    outcome = None
    try:
        loop = (LoopedLong.from_loops(loops, ltv, equity=equity, borrow_rate=borrow_rate)
                if loops is not None else LoopedLong(ltv, equity=equity, borrow_rate=borrow_rate))
        config = SimulationConfig(heartbeat=heartbeat, deviation=deviation)
        rule = OracleRule(oracle, heartbeat=heartbeat, deviation=deviation)
        library = load_crashes()
        windows = (library.select(",".join(crash)) if crash else
                   [w for w in library.windows if symbol in w.symbols])
        crash_bars = []
        for window in windows:
            data = load_crash_window(_store(store), window, symbol, exchange=exchange)
            # only the candles concern a loan: not the perpetual's mark, tiers or markets
            print_data_warnings([w for w in data.warnings if not w.startswith(("tiers ", "markets "))
                                 and "mark-price candles" not in w])
            crash_bars.append((window.name, data.bars))
        if crash_bars:
            tables["position_replay"] = replay_crashes(loop, crash_bars, config=config)
            survival.append({"criterion": "survives " + ", ".join(n for n, _ in crash_bars),
                             **_row(crash_survival_ltv(loop, crash_bars, config=config))})
        if scenario:
            if not crash_bars:
                raise _fail("--scenario: expected a crash window to stress (--crash), found none "
                            f"for {symbol}")
            sets = [parse_scenario(s) for s in scenario]
            tables["position_stress"] = stress_loop(loop, symbol, crash_bars[0][1], sets,
                                                    config=config).with_columns(
                window=pl.lit(crash_bars[0][0]))
        if paths:
            outcome, s0, _, tiers = _fit(store, exchange, symbol, timeframe, start, end, "last",
                                         model)
            fitted = outcome.model
            steps = int(horizon * 3_600_000 // fitted.step_ms)
            if steps < 1:
                raise _fail(f"--horizon {horizon:g} h is shorter than one {timeframe} step; "
                            "lengthen it")
            passage = simulate_first_passage(fitted, barriers=[], side=1, n_paths=paths,
                                             n_steps=steps, s0=s0, seed=seed)
            seconds = horizon * 3600.0
            tables["position_mc"] = compare_mc(passage, entry_price=s0, leverages=[loop.leverage],
                                               tiers=tiers, horizon_seconds=seconds,
                                               equity=equity, borrow_rate=borrow_rate)
            survival.append({"criterion": f"P(liquidation in {horizon:g} h) <= {target:g}",
                             **_row(probability_survival_ltv(loop, passage, entry_price=s0,
                                                             horizon_seconds=seconds,
                                                             target=target))})
            if rule.kind != "market":
                tables["position_mc_oracle"] = _oracle_lag(
                    loop, fitted, rule, paths=paths, steps=steps, s0=s0, seed=seed, seconds=seconds, target=target)
        if survival:
            tables["position_survival"] = pl.DataFrame(survival, infer_schema_length=None)
        if not tables:
            raise _fail(f"--position: nothing to run for {symbol}: no crash window lists it and "
                        "--paths is 0; pass --crash NAME or --paths N")
        folder = write_tables(out, tables, overwrite=overwrite, manifest={
            "position": {"ltv": loop.ltv, "leverage": loop.leverage, "equity": equity,
                         "loops": loops, "borrow_rate": borrow_rate},
            "symbol": symbol, "crashes": [n for n, _ in crash_bars], "scenarios": scenario,
            "paths": paths, "horizon_hours": horizon, "target": target, "model": model,
            "oracle": {"kind": oracle, "heartbeat": heartbeat, "deviation": deviation}})
        if outcome is not None:   # the fitted model is cached only once the run succeeded
            outcome.remember()
    except _errors() as exc:
        raise _fail(str(exc)) from None
    title = f"looped long on Aave, LTV {loop.ltv:.1%} ({loop.leverage:.2f}x), {equity:,.0f} USD"
    for name, frame in tables.items():
        _print_frame(frame, f"{name}: {title}")
    _console().print(f"wrote {folder}", highlight=False, soft_wrap=True)


def _row(solved: dict[str, Any]) -> dict[str, Any]:
    """A solver result as a table row (the crash list is in the criterion)."""
    return {"max_ltv": solved["ltv"], "max_leverage": solved["leverage"],
            "feasible_at_reserve_max": solved["feasible_at_max_ltv"],
            "probability": solved.get("probability")}


def _oracle_lag(loop: Any, model: Any, rule: Any, *, paths: int, steps: int, s0: float, seed: int,
                seconds: float, target: float) -> Any:
    """The loop's liquidation probability on the same paths as the market shows them and as
    ``rule`` serves them (:func:`backtest.lending.position.oracle_passages`), with the largest
    LTV meeting ``target`` on each."""
    import polars as pl

    from backtest.lending.position import mc_liquidation, oracle_passages, probability_survival_ltv

    market, served = oracle_passages(model, oracle=rule, n_paths=paths, n_steps=steps, s0=s0,
                                     seed=seed)
    rows = []
    for seen_by, passage in (("market (no lag)", market), (f"{rule.kind} oracle", served)):
        m = mc_liquidation(loop, passage, entry_price=s0, horizon_seconds=seconds)
        solved = probability_survival_ltv(loop, passage, entry_price=s0, horizon_seconds=seconds,
                                          target=target)
        rows.append({"protocol_sees": seen_by, "liquidation_price": m["liquidation_price"],
                     "probability": m["probability"], "ci_low": m["ci_low"],
                     "ci_high": m["ci_high"], "n_paths": m["n_paths"],
                     f"max_ltv_at_p{target:g}": solved["ltv"]})
    return pl.DataFrame(rows, infer_schema_length=None)
