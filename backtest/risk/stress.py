"""Stress runs: a strategy under a baseline and each scenario set, one row per (scenario, leverage).

The scenarios themselves (shock, volatility, funding, mark, drought) and their command-line
mini-language live in :mod:`backtest.risk.scenarios`; the row outcome rules (a position that
never opened is not a survivor; net funding received - paid) are the crash replays' own
(:mod:`backtest.risk.replay`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from backtest.risk.scenarios import ScenarioSet, StressMarket

__all__ = ["STRESS_SCHEMA", "run_stress"]


def run_stress(market: StressMarket, scenario_sets: Sequence[ScenarioSet], *, timeframe: str, strategy: Any = "hold",
               params: dict[str, Any] | None = None, leverages: Sequence[float] = (10.0,), config: Any = None,
               exchange: str = "binanceusdm", venues: Sequence[str] | None = None) -> pl.DataFrame:
    """Run a strategy under a baseline and each scenario set; one row per (scenario, leverage).

    Columns: ``scenario, description, venue, leverage, survived, entered, rejection, n_liquidations,
    first_liquidation_ts, total_return, max_drawdown, worst_margin_ratio, slippage_cost,
    net_funding_received`` (received - paid, USDT), ``bad_debt, n_adl, adl_qty, adl_notional,
    final_equity``. The ADL columns are the run's ``adl`` table summed like the liquidation ones
    (``backtest.adl.Deleverager.summary``): positions reduced by auto-deleveraging (an injected
    ``adl@TIME`` term or a liquidation loss the configured fund could not pay), their quantity
    (base units) and notional at the ADL price (USDT). A run whose
    position never opened is ``survived = False`` with the reason in ``rejection``; a leverage
    the engine refuses before the run (``ConfigError``, e.g. above the venue's cap) is such a
    row, and the other leverages still run. ``venue`` names the rules of each row: ``venues``
    runs every scenario under each of these venues' rules on ``exchange``'s prices
    (:func:`backtest.risk.replay.venue_rows`); default ``config.venue`` only.
    """
    from backtest import RunConfig, run_backtest
    from backtest.errors import ConfigError
    from backtest.risk.replay import (FUNDING_COLUMN, net_funding_received, position_outcome, refused_row,
                                      venue_rows)

    base = config or RunConfig()
    rows: list[dict[str, Any]] = []

    def scenario_rows(data: Any, run_config: Any, head: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        head = {**head, "venue": run_config.venue}
        for leverage in leverages:
            try:
                result = run_backtest(data, strategy, params=params, config=run_config.replace(leverage=float(leverage)))
            except ConfigError as exc:
                out.append({**head, **refused_row(leverage, exc)})
                continue
            s = result.summary
            entered, rejection = position_outcome(result)
            out.append({**head, "leverage": float(leverage),
                         "survived": entered and s["n_liquidations"] == 0, "entered": entered, "rejection": rejection,
                         "n_liquidations": s["n_liquidations"],
                         "first_liquidation_ts": s.get("first_liquidation_ts"), "total_return": s["total_return"],
                         "max_drawdown": s["max_drawdown"], "worst_margin_ratio": s.get("worst_margin_ratio"),
                         "slippage_cost": s.get("slippage_cost", 0.0), FUNDING_COLUMN: net_funding_received(s),
                         "bad_debt": s.get("bad_debt", 0.0), "n_adl": s.get("n_adl", 0),
                         "adl_qty": s.get("adl_qty", 0.0), "adl_notional": s.get("adl_notional", 0.0),
                         "final_equity": s["final_equity"]})
        return out

    for scenario in [ScenarioSet("baseline"), *scenario_sets]:
        stressed = scenario.apply(market)
        data = stressed.market_data(timeframe=timeframe, exchange=exchange)
        run_config = stressed.config(base)
        head = {"scenario": scenario.name, "description": scenario.describe()}
        if venues is None:
            rows.extend(scenario_rows(data, run_config, head))
        else:
            rows.extend(venue_rows(data, venues, leverages, head,
                                   lambda m, c, h=head: scenario_rows(m, c, h), run_config))
    return pl.DataFrame(rows, schema=STRESS_SCHEMA)


#: Columns of the stress table and their types.
STRESS_SCHEMA: dict[str, Any] = {
    "scenario": pl.String, "description": pl.String, "venue": pl.String, "leverage": pl.Float64, "survived": pl.Boolean,
    "entered": pl.Boolean, "rejection": pl.String, "n_liquidations": pl.Int64, "first_liquidation_ts": pl.String,
    "total_return": pl.Float64, "max_drawdown": pl.Float64, "worst_margin_ratio": pl.Float64,
    "slippage_cost": pl.Float64, "net_funding_received": pl.Float64, "bad_debt": pl.Float64,
    "n_adl": pl.Int64, "adl_qty": pl.Float64, "adl_notional": pl.Float64, "final_equity": pl.Float64}
