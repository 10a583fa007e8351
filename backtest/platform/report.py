"""The platform view's HTML page: distributions of bad debt and fund drawdown per scenario,
the tail figures, the recommended brackets beside the venue's own, the caps and fund size.

Built from a :class:`backtest.platform.results.PlatformResult`'s tables only, through the risk
lab's page writer (one offline page, plotly.js inlined once, written atomically), like the
cascade page (:mod:`backtest.cascade.report`).
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["write_platform_report"]


def _section(title: str, body: str) -> str:
    heading = f"<h2>{html.escape(title)}</h2>" if title else ""
    return f'<section class="mc-risk mc-platform">{heading}{body}</section>'


def _figure(fig: Any) -> str:
    from reports.html import figure_html

    fig.update_layout(template="plotly_white", height=400, margin={"l": 60, "r": 20, "t": 30, "b": 40})
    return figure_html(fig, id_prefix="platform-")


def _histograms(runs: pl.DataFrame) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    for column, label in (("bad_debt", "bad debt"), ("fund_drawdown", "insurance-fund drawdown"),
                          ("adl_notional", "ADL notional")):
        fig.add_trace(go.Histogram(x=runs[column].to_numpy(), name=label, opacity=0.6, nbinsx=40))
    fig.update_layout(barmode="overlay", xaxis_title="amount per scenario (USDT)", yaxis_title="scenarios (count)")
    return _figure(fig)


def _brackets(brackets: pl.DataFrame) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    for symbol in sorted(brackets["symbol"].unique().to_list()):
        rows = brackets.filter(pl.col("symbol") == symbol)
        floors = [max(f, 1.0) for f in rows["notional_floor"].to_list()]
        fig.add_trace(go.Scatter(x=floors, y=rows["maint_margin_rate"].to_numpy(), mode="lines+markers",
                                 line_shape="hv", name=f"{symbol} recommended"))
        fig.add_trace(go.Scatter(x=floors, y=rows["current_maint_margin_rate"].to_numpy(), mode="lines+markers",
                                 line_shape="hv", line_dash="dot", name=f"{symbol} venue"))
    fig.update_layout(xaxis_type="log", xaxis_title="bracket floor (USDT)", yaxis_title="maintenance rate (fraction of notional)")
    return _figure(fig)


def write_platform_report(result: Any, out: str | Path, *, title: str = "Platform view",
                          subtitle: str = "") -> Path:
    """Write the platform page of ``result`` to ``out`` (atomically); return the path."""
    from backtest.risk.report_sections import table_html, write_risk_report

    s = result.summary
    t = s["timing"]
    runs = result.tables["scenarios"]
    subtitle = subtitle or (f"{s['scenarios']:,} scenarios x {s['positions']:,} positions; "
                            f"P(ADL) {s['adl_probability']:.1%}, P(bad debt) {s['bad_debt_probability']:.1%}; "
                            f"{t['wall_s']:.1f} s on {t['workers']} worker(s)")
    dist = result.tables["distributions"]
    sections = [("distributions", "Distributions over scenarios (USDT; adl: probability)",
                 lambda h: _section(h, table_html(dist.with_columns(pl.col(pl.Float64).round(2))))),
                ("histograms", "Bad debt, fund drawdown and ADL per scenario", lambda h: _section(h, _histograms(runs)))]
    if "brackets" in result.tables:
        brackets = result.tables["brackets"]
        sections += [("brackets", "Recommended maintenance brackets beside the venue's",
                      lambda h: _section(h, _brackets(brackets) + table_html(brackets))),
                     ("recommendations", "Caps and insurance-fund size",
                      lambda h: _section(h, table_html(result.tables["recommendations"])))]
    if "bracket_comparison" in result.tables:
        sections.append(("comparison", "Recommended vs reference brackets",
                         lambda h: _section(h, table_html(result.tables["bracket_comparison"]))))
    worst = runs.sort("bad_debt", descending=True).head(25).select(
        "scenario_id", "name", "liquidated_value", "bad_debt", "fund_drawdown", "adl_notional", "fee_revenue",
        "amplification")
    sections.append(("worst", "Worst scenarios by bad debt", lambda h: _section(h, table_html(worst))))
    return write_risk_report(Path(out), title=title, subtitle=subtitle, sections=sections)
