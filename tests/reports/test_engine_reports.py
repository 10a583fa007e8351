"""Reports on real backtests: the engine (CONTRACTS §8) on the synthetic crash market.

The report is also covered on §6 fixture run directories; these tests close the loop on run
directories the engine itself wrote.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from reports import write_comparison, write_report
from reports.rundir import load_run
from reports.sections import compute_metrics

SYMBOL = "BTC/USDT:USDT"


def _engine():
    backtest = importlib.import_module("backtest")
    return backtest.run_backtest, backtest.RunConfig, backtest.MarketData


@pytest.fixture(scope="module")
def engine_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    run_backtest, RunConfig, MarketData = _engine()
    from data_loaders.synthetic import engine_frames, generate_perpetual

    market = generate_perpetual(symbol=SYMBOL, days=3, crash_day=1, seed=11, timeframe="5m")
    bars, funding = engine_frames(market)
    data = MarketData.from_frames(bars={SYMBOL: bars}, funding={SYMBOL: funding}, timeframe="5m")
    root = tmp_path_factory.mktemp("engine-runs")
    dirs = []
    for leverage in (2.0, 50.0):
        config = RunConfig(initial_balance=10_000.0, leverage=leverage, margin_mode="isolated", seed=0)
        result = run_backtest(data, strategy="hold", params={"side": "long"}, config=config)
        dirs.append(result.write(root / f"hold-{leverage:g}x"))
    return dirs


def test_report_of_a_real_backtest(engine_runs):
    for run_dir in engine_runs:
        out = write_report(run_dir)
        run = load_run(run_dir)
        m = compute_metrics(run)
        summary = run.summary
        assert m.n_liquidations == summary["n_liquidations"]
        assert m.final_equity == pytest.approx(summary["final_equity"])
        assert m.total_return == pytest.approx(summary["total_return"])
        page = out.read_text(encoding="utf-8")
        assert page.count('class="plotly-figure"') >= 4


def test_real_ladder_comparison_in_the_browser(engine_runs, tmp_path):
    from tests.reports.browser import chart_trace_counts, open_report, require_chromium, screenshot

    require_chromium()
    out = write_comparison(engine_runs, out=tmp_path / "cmp.html")
    with open_report(out) as visit:
        assert visit.console_errors == [] and visit.page_errors == []
        assert visit.remote_requests() == []
        assert chart_trace_counts(visit.page)["chart-comparison"] >= 2
        screenshot(visit.page, "report-engine-comparison.png")
    single = write_report(engine_runs[-1])
    with open_report(single) as visit:
        assert visit.console_errors == [] and visit.page_errors == []
        assert all(n > 0 for n in chart_trace_counts(visit.page).values())
        liq = load_run(engine_runs[-1]).liquidations.height
        assert visit.page.evaluate(
            "() => document.querySelectorAll('#liquidations-table tbody tr').length") == liq
        screenshot(visit.page, "report-engine-50x.png")
