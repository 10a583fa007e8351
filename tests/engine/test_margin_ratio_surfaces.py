"""One worst margin ratio on every surface: summary, manifest, report card and chart.

A liquidated run peaks at its trigger, between two bar closes: the bar-close series alone
never reaches 1. The engine computes the figure once (``backtest.metrics.summarize``); the
manifest, the report card and the margin chart show that figure.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from backtest import run_backtest
from tests.engine.scenario import Script, config, market

FLAT = (100.0, 100.0, 100.0, 100.0)


def test_a_liquidated_run_shows_its_trigger_ratio_everywhere(tmp_path):
    from reports.charts import margin_figure
    from reports.rundir import load_run
    from reports.sections import compute_metrics

    rows = [FLAT, FLAT, (100, 100.5, 88, 95, 100, 100.2, 90.3, 96), (95, 96, 94, 95)]
    result = run_backtest(market(rows), Script({0: lambda ctx: ctx.target_exposure(1.0)}),
                          config=config())
    assert result.liquidations.height == 1
    worst = result.summary["worst_margin_ratio"]
    assert worst == pytest.approx(1.0, rel=1e-9)  # the mark crossing: MM = margin balance
    # the bar closes never see the breached pool (it is closed by then)
    assert float(np.nanmax(result.equity["margin_ratio"].to_numpy())) < 0.9
    run_dir = result.write(tmp_path / "liquidated")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["summary"]["worst_margin_ratio"] == worst
    run = load_run(run_dir)
    card = compute_metrics(run)
    assert card.worst_margin_ratio == worst
    trigger_ms = int(result.liquidations["trigger_ts"][0].timestamp() * 1000)
    assert card.worst_margin_ratio_ts == trigger_ms
    fig = margin_figure(run)
    line = next(t for t in fig.data if t.name == "margin ratio")
    assert max(v for v in line.y if v is not None and math.isfinite(v)) == pytest.approx(worst)
    assert float(trigger_ms) in [float(v) for v in line.x]
