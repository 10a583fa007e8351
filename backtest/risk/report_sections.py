"""HTML fragments of the risk lab for the report package.

Each builder returns an HTML string: a ``<section>`` with an escaped heading and either a
plotly figure (a chart slot of :func:`reports.html.figure_html`, drawn by the report page's
loader; :func:`write_risk_report` writes such a page) or a plain table. Every piece of text from data or users goes through
:func:`html.escape`. plotly is imported inside the builders (``import backtest`` stays light).

Builders: :func:`fan_chart_section`, :func:`liquidation_heatmap_section`,
:func:`survival_table_section`, :func:`crash_replay_table_section`, :func:`sweep_heatmap_section`,
:func:`fit_table_section`.
"""
from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from backtest.risk.montecarlo import FAN_QUANTILES, LiquidationStudy

__all__ = [
    "crash_replay_table_section",
    "fan_chart_section",
    "fit_table_section",
    "liquidation_heatmap_section",
    "survival_table_section",
    "sweep_heatmap_section",
    "table_html",
    "write_risk_report",
]


def _section(title: str, body: str, *, css_class: str, note: str = "") -> str:
    note_html = f'<p class="note mc-note">{html.escape(note)}</p>' if note else ""
    heading = f"<h2>{html.escape(title)}</h2>" if title else ""
    return f'<section class="mc-risk {css_class}">{heading}{note_html}{body}</section>'


def write_risk_report(out: Any, *, title: str, subtitle: str,
                      sections: Sequence[tuple[str, str, Any]]) -> Any:
    """Write a self-contained offline HTML page (plotly.js inlined once) of risk-lab sections.

    Parameters
    ----------
    out : pathlib.Path
        The page to write (atomically).
    title, subtitle : str
        Page heading (plain text; escaped).
    sections : sequence of (anchor id, heading, builder)
        ``builder(title)`` returns one of this module's fragments; it is called with an empty
        title because the page draws the heading of each card itself.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    from pathlib import Path

    from reports.html import Section, render_page
    from reports.single import write_html

    out = Path(out)
    cards = [Section(id=anchor, title=heading, body=builder("")) for anchor, heading, builder in sections]
    page = render_page(title=title, subtitle=subtitle, sections=cards, out=out,
                       footer="margincall risk lab")
    return write_html(out, page)


def _figure_html(fig: Any) -> str:
    # The report page's own loader draws the chart once plotly.js (loaded once, at the end of
    # the page) is there; the slot id is derived from the figure so pages stay deterministic.
    from reports.html import figure_html

    return figure_html(fig, id_prefix="risk-")


def _format(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.4g}"
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.2f}"
    return str(value)


def table_html(frame: pl.DataFrame, *, columns: Sequence[str] | None = None,
               headers: Sequence[str] | None = None, row_class: str | None = None) -> str:
    """A plain ``<table>`` of ``frame`` (escaped cells, numbers formatted).

    ``row_class`` names a boolean column; rows where it is False get ``class="mc-bad"``.
    The table also carries the report page's ``data`` class (styled and sortable like the run
    report's tables); the page styles ``mc-bad`` rows as it styles liquidation rows.
    """
    columns = list(columns or frame.columns)
    headers = list(headers or columns)
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    rows = []
    for row in frame.iter_rows(named=True):
        attr = ' class="mc-bad"' if row_class is not None and row.get(row_class) is False else ""
        cells = "".join(f"<td>{html.escape(_format(row[c]))}</td>" for c in columns)
        rows.append(f"<tr{attr}>{cells}</tr>")
    return f'<table class="data mc-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def fan_chart_section(study: LiquidationStudy, *, leverage: float | None = None,
                      title: str = "Equity across simulated paths") -> str:
    """Fan chart of the position's isolated equity (quantile bands) over the horizon.

    Parameters
    ----------
    study : LiquidationStudy
        A run study (its kept sample paths are used).
    leverage : float, optional
        Which leverage of the grid; default the highest allowed one.
    """
    import plotly.graph_objects as go

    levs = [b.leverage for b in study.barriers]
    if leverage is None:
        allowed = [b.leverage for b in study.barriers if b.allowed] or levs
        leverage = max(allowed)
    if leverage not in levs:
        raise ValueError(f"fan chart: leverage {leverage} is not in the study's grid {levs}")
    index = levs.index(leverage)
    bands = study.equity_fan(index)
    hours = np.arange(bands.shape[1]) * study.passage.step_ms / 3_600_000
    q = list(FAN_QUANTILES)
    fig = go.Figure()
    for lo_q, hi_q, opacity in ((0.01, 0.99, 0.15), (0.05, 0.95, 0.25), (0.25, 0.75, 0.4)):
        lo, hi = bands[q.index(lo_q)], bands[q.index(hi_q)]
        fig.add_trace(go.Scatter(x=hours, y=hi, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=hours, y=lo, mode="lines", line={"width": 0}, fill="tonexty",
                                 fillcolor=f"rgba(31,119,180,{opacity})", name=f"{lo_q:.0%}–{hi_q:.0%}"))
    fig.add_trace(go.Scatter(x=hours, y=bands[q.index(0.5)], mode="lines", name="median", line={"color": "#1f77b4"}))
    fig.update_layout(xaxis_title="hours", yaxis_title="isolated equity (USDT)", template="plotly_white",
                      height=380, margin={"l": 60, "r": 20, "t": 30, "b": 40})
    model = str(study.model.get("model", "model"))
    note = (f"{leverage:g}x, margin {study.barriers[index].margin:,.0f} USDT, {study.passage.n_paths:,} paths "
            f"({model}); bands from the first {study.passage.sample_close.shape[0]:,} paths; liquidated paths drop to 0.")
    return _section(title, _figure_html(fig), css_class="mc-fan", note=note)


def liquidation_heatmap_section(table: pl.DataFrame, *, title: str = "Liquidation probability") -> str:
    """Heatmap of P(liquidation) by leverage (rows) and horizon (columns) from ``LiquidationStudy.table``."""
    import plotly.graph_objects as go

    levs = sorted(table["leverage"].unique().to_list())
    horizons = sorted(table["horizon_hours"].unique().to_list())
    z = np.full((len(levs), len(horizons)), np.nan)
    text = [["" for _ in horizons] for _ in levs]
    for row in table.iter_rows(named=True):
        i, j = levs.index(row["leverage"]), horizons.index(row["horizon_hours"])
        z[i, j] = row["probability"]
        text[i][j] = f"{row['probability']:.2%} [{row['ci_low']:.2%}, {row['ci_high']:.2%}]"
    fig = go.Figure(go.Heatmap(z=z, x=[f"{h:g} h" for h in horizons], y=[f"{lev:g}x" for lev in levs], text=text,
                               texttemplate="%{text}", colorscale="Reds", zmin=0, zmax=1,
                               colorbar={"title": "P(liq)"}))
    fig.update_layout(xaxis_title="horizon", yaxis_title="leverage", template="plotly_white",
                      height=120 + 40 * len(levs), margin={"l": 60, "r": 20, "t": 30, "b": 40})
    return _section(title, _figure_html(fig), css_class="mc-heatmap",
                    note="Cells: Monte Carlo estimate [95 % Wilson interval].")


def survival_table_section(table: pl.DataFrame, *, title: str = "Survival by leverage") -> str:
    """The survival table (``LiquidationStudy.table`` rows) as HTML; disallowed leverages flagged."""
    columns = [c for c in ("leverage", "horizon_hours", "probability", "ci_low", "ci_high", "median_ttl_hours",
                           "liquidation_price", "expected_loss", "allowed") if c in table.columns]
    headers = {"leverage": "leverage", "horizon_hours": "horizon (h)", "probability": "P(liquidation)",
               "ci_low": "CI low", "ci_high": "CI high", "median_ttl_hours": "median time to liq. (h)",
               "liquidation_price": "liquidation price", "expected_loss": "expected loss (USDT)",
               "allowed": "allowed by tier"}
    body = table_html(table, columns=columns, headers=[headers[c] for c in columns], row_class="allowed")
    return _section(title, body, css_class="mc-survival")


def crash_replay_table_section(frame: pl.DataFrame, *, title: str = "Crash replays") -> str:
    """The crash-replay table (``backtest.risk.replay`` rows) as HTML; liquidated rows flagged."""
    preferred = ("crash", "symbol", "leverage", "survived", "rejection", "first_liquidation", "hours_to_liquidation",
                 "loss", "loss_pct", "worst_margin_ratio", "slippage_cost", "warnings")
    columns = [c for c in preferred if c in frame.columns]
    return _section(title, table_html(frame, columns=columns, row_class="survived"), css_class="mc-crashes")


def sweep_heatmap_section(frame: pl.DataFrame, *, x: str, y: str, value: str = "total_return",
                          title: str | None = None) -> str:
    """Heatmap of a sweep metric over two swept parameters (mean over the other dimensions)."""
    import plotly.graph_objects as go

    for column in (x, y, value):
        if column not in frame.columns:
            raise ValueError(f"sweep heatmap: column {column!r} is not in the sweep results ({frame.columns})")
    grid = frame.group_by([x, y]).agg(pl.col(value).mean()).sort([y, x])
    xs = sorted(grid[x].unique().to_list())
    ys = sorted(grid[y].unique().to_list())
    z = np.full((len(ys), len(xs)), np.nan)
    for row in grid.iter_rows(named=True):
        z[ys.index(row[y]), xs.index(row[x])] = row[value]
    fig = go.Figure(go.Heatmap(z=z, x=[str(v) for v in xs], y=[str(v) for v in ys], colorscale="RdYlGn",
                               colorbar={"title": html.escape(value)}))
    fig.update_layout(xaxis_title=html.escape(x), yaxis_title=html.escape(y), template="plotly_white",
                      height=420, margin={"l": 60, "r": 20, "t": 30, "b": 40})
    return _section(title or f"Sweep: {value} by {x} and {y}", _figure_html(fig), css_class="mc-sweep")


def fit_table_section(fits: Sequence[dict[str, Any]], *, title: str = "Fitted return models") -> str:
    """A table of fitted model parameters (``model.describe()`` dicts), one row per parameter."""
    rows = [{"model": str(f.get("model", "")), "parameter": k, "value": v}
            for f in fits for k, v in f.items() if k != "model"]
    frame = pl.DataFrame(rows, schema={"model": pl.String, "parameter": pl.String, "value": pl.String}) if rows else \
        pl.DataFrame(schema={"model": pl.String, "parameter": pl.String, "value": pl.String})
    frame = frame.with_columns(pl.Series("value", [_format(r["value"]) for r in rows], dtype=pl.String))
    return _section(title, table_html(frame), css_class="mc-fits")
