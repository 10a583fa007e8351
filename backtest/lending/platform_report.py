"""The lending platform view's HTML page: the recommended set per protocol, the bad-debt
distribution of every parameter set (box per set over scenarios and seeds), the tail table,
the same figures per scenario kind and the scenario list.

Built from a :class:`backtest.lending.platform_run.LendingPlatformResult`'s tables only, with
the report package's pieces (:mod:`reports.html`: page shell, tables, figures;
:func:`reports.charts.base_layout`), like the lending study's page
(:mod:`backtest.lending.report`); written inside the run folder by
:func:`backtest.lending.report.write_tables` (atomic with the tables).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["render_platform_page"]

_TAIL_COLUMNS = ("mean", "p95", "p99", "es95", "es99", "worst")


def _boxes(runs: pl.DataFrame) -> Any:
    import plotly.graph_objects as go

    from reports.charts import base_layout
    from reports.html import SERIES_PALETTE

    fig = go.Figure()
    protocols = runs["protocol"].unique(maintain_order=True).to_list()
    for (protocol, name), group in runs.group_by(["protocol", "parameter_set"],
                                                 maintain_order=True):
        color = SERIES_PALETTE[protocols.index(protocol) % len(SERIES_PALETTE)]
        fig.add_trace(go.Box(y=group["bad_debt"].to_numpy(), name=str(name), boxpoints="outliers",
                             marker={"color": color}, legendgroup=str(protocol),
                             showlegend=False))
    fig.update_layout(**base_layout(height=420))
    fig.update_yaxes(title_text="bad debt per scenario and seed (base currency)")
    return fig


def _rounded(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Float64).round(4))


def render_platform_page(result: Any, *, title: str, subtitle: str, out: Path) -> str:
    """The self-contained HTML page of ``result`` (plotly.js inlined once)."""
    from reports.html import Section, figure_html, kv_table_html, render_page, table_html

    summary, t = result.summary, result.timing
    best = summary.filter("recommended")
    picks = [(f"{r['protocol']} recommended", f"{r['parameter_set']} (p95 {r['p95']:,.0f}, "
              f"efficiency {r['capital_efficiency']:.1%})") for r in best.iter_rows(named=True)]
    left = sorted(set(summary["protocol"]) - set(best["protocol"]))
    picks += [(f"{p} recommended", "none: no set serves the required share of demand")
              for p in left]
    facts = [("scenarios", result.scenarios.height), ("parameter sets", summary.height),
             ("runs (set x scenario x seed)", t["runs"]),
             ("wall / CPU in runs", f"{t['wall_s']:.1f} s / {t['run_cpu_s']:.1f} s on "
                                    f"{t['workers']} {t['backend']} worker(s)"), *picks]
    shown = ["protocol", "parameter_set", "capital_efficiency", "meets_efficiency",
             "recommended", *_TAIL_COLUMNS]
    params = [c for c in summary.columns if c not in shown and not c.startswith("mean_")]
    sections = [
        Section("summary", "Recommended sets", kv_table_html(facts, table_id="platform-facts")),
        Section("distribution", "Bad debt per parameter set", figure_html(
            _boxes(result.runs), id_prefix="lending-platform-")),
        Section("tails", "Tail figures per parameter set", table_html(
            _rounded(summary.select(*shown, *params)), table_id="platform-summary",
            caption="over every scenario and population seed; p95/p99 linear percentiles, "
                    "es95/es99 the mean of the worst 5 % / 1 % (backtest.platform.distribution)")),
        Section("kinds", "By scenario kind", table_html(
            _rounded(result.by_kind), table_id="platform-by-kind")),
        Section("scenarios", "Scenarios", table_html(
            result.scenarios, table_id="platform-scenarios", max_rows=200)),
    ]
    return render_page(title=title, subtitle=subtitle, sections=sections, out=out,
                       footer="margincall lending --platform")
