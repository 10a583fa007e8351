"""HTML fragments of the risk lab for the report package.

Each builder returns an HTML string: a ``<section>`` with an escaped heading and either a
plotly figure (a chart slot of :func:`reports.html.figure_html`, drawn by the report page's
loader; :func:`write_risk_report` writes such a page) or a plain table. Every piece of text from data or users goes through
:func:`html.escape`. plotly is imported inside the builders (``import backtest`` stays light).

Builders: :func:`fan_chart_section`, :func:`liquidation_heatmap_section`,
:func:`survival_table_section`, :func:`crash_replay_table_section`,
:func:`crash_replay_charts_section`, :func:`sweep_heatmap_section`, :func:`fit_table_section`,
:func:`provenance_section` (the output's manifest, collapsed, for the page's end).
Numbers print through :mod:`backtest.formatting` (leverage ``5x``, probabilities in %, money
with separators).
"""
from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from backtest.formatting import FRACTION_COLUMNS, MONEY_COLUMNS, PROBABILITY_COLUMNS, fmt_leverage, fmt_prob
from backtest.risk.montecarlo import FAN_QUANTILES, LiquidationStudy

__all__ = [
    "crash_replay_charts_section",
    "crash_replay_table_section",
    "fan_chart_section",
    "fit_table_section",
    "liquidation_heatmap_section",
    "provenance_section",
    "survival_table_section",
    "sweep_heatmap_section",
    "table_html",
    "write_risk_report",
]


def _section(title: str, body: str, *, css_class: str, note: str = "") -> str:
    note_html = f'<p class="note mc-note">{html.escape(note)}</p>' if note else ""
    heading = f"<h2>{html.escape(title)}</h2>" if title else ""
    return f'<section class="mc-risk {css_class}">{heading}{note_html}{body}</section>'


def provenance_section(manifest: Mapping[str, Any], *, title: str = "") -> str:
    """The output's manifest (:mod:`backtest.risk.provenance`) collapsed in a ``<details>``:
    inputs and seed, rule versions, data partitions with their sha256, written files,
    warnings, the run configuration and package versions."""
    import json

    from reports.html import kv_table_html

    def cell(value: Any) -> Any:
        return value if isinstance(value, (int, float, str)) or value is None else json.dumps(value, default=str)

    data = [d for d in manifest.get("data") or [] if isinstance(d, Mapping)]
    files = manifest.get("files") if isinstance(manifest.get("files"), Mapping) else {}
    rules = manifest.get("rules") if isinstance(manifest.get("rules"), Mapping) else {}
    warnings = list(manifest.get("quality_warnings") or [])
    rows = [("kind", manifest.get("kind")), ("seed", manifest.get("seed")),
            ("created at", manifest.get("created_at")),
            *[(f"input {k}", cell(v)) for k, v in sorted((manifest.get("inputs") or {}).items())],
            *[(f"rules {k}", cell(v)) for k, v in sorted(rules.items())]]
    partitions = pl.DataFrame({
        "partition": ["/".join(str(d.get(k, "")) for k in ("dataset", "symbol", "timeframe", "price_type"))
                      for d in data],
        "sha256": [str(d.get("sha256", "")) for d in data],
    }, schema={"partition": pl.String, "sha256": pl.String})
    written = pl.DataFrame({"file": list(files), "sha256": [str(f.get("sha256", "")) for f in files.values()],
                            "bytes": [f.get("bytes") for f in files.values()]},
                           schema={"file": pl.String, "sha256": pl.String, "bytes": pl.Int64})
    warn = "".join(f"<li>{html.escape(str(w))}</li>" for w in warnings)
    inner = (kv_table_html(rows, table_id="provenance-table")
             + f"<h3>Data partitions ({len(data)})</h3>"
             + (table_html(partitions) if data else '<p class="empty">No stored data was read.</p>')
             + f"<h3>Files written ({len(files)})</h3>" + (table_html(written) if files else "")
             + (f'<h3>Data-quality warnings ({len(warnings)})</h3><ul class="warnings">{warn}</ul>' if warnings else "")
             + "<details><summary>Run configuration</summary>"
             + kv_table_html(sorted((k, cell(v)) for k, v in (manifest.get("config") or {}).items())) + "</details>"
             + "<details><summary>Package versions</summary>"
             + kv_table_html(sorted((manifest.get("packages") or {}).items())) + "</details>")
    summary = (f"Data partitions with checksums, rule versions, configuration, seed and packages "
               f"({len(data)} partition(s), {len(files)} file(s))")
    body = (f'<details class="manifest" id="provenance-details"><summary>{html.escape(summary)}</summary>'
            f"{inner}</details>")
    return _section(title, body, css_class="mc-provenance")


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


def _format(value: Any, column: str | None = None) -> str:
    from backtest.formatting import fmt_column, fmt_num

    if value is None:
        return "–"
    if column is None:
        return "yes" if value is True else "no" if value is False else (
            fmt_num(value) if isinstance(value, float) else str(value))
    return fmt_column(column, value)


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
        cells = "".join(f"<td>{html.escape(_format(row[c], c))}</td>" for c in columns)
        rows.append(f"<tr{attr}>{cells}</tr>")
    # inside a scrolling frame: a wide table scrolls within its card, never past the page
    return (f'<div class="table-wrap"><table class="data mc-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


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
    fig.update_layout(xaxis_title="time since entry (hours)", yaxis_title="isolated equity (USDT)",
                      template="plotly_white",
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
        text[i][j] = (f"{fmt_prob(row['probability'])}<br>"
                      f"[{fmt_prob(row['ci_low'])}, {fmt_prob(row['ci_high'])}]")
    # higher is worse: white (0) to dark red (1)
    fig = go.Figure(go.Heatmap(z=z, x=[f"{h:g} h" for h in horizons], y=[fmt_leverage(v) for v in levs],
                               text=text, texttemplate="%{text}", colorscale="Reds", zmin=0, zmax=1,
                               xgap=2, ygap=2, colorbar={"title": {"text": "P(liq.)"}, "tickformat": ".0%"},
                               hovertemplate="%{y}, %{x}: %{text}<extra></extra>"))
    fig.update_layout(xaxis={"title": {"text": "horizon (hours)"}, "type": "category"},
                      yaxis={"title": {"text": "leverage (x)"}, "type": "category"}, template="plotly_white",
                      height=140 + 48 * len(levs), margin={"l": 70, "r": 20, "t": 20, "b": 50})
    return _section(title, _figure_html(fig), css_class="mc-heatmap",
                    note="Each cell: the Monte Carlo probability that the position at that leverage is "
                         "liquidated within that horizon, over all simulated paths [95 % Wilson interval]. "
                         "Darker red is worse.")


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


REPLAY_TABLE_COLUMNS = ("crash", "symbol", "leverage", "survived", "rejection", "entry_price",
                        "liquidation_price", "first_liquidation", "hours_to_liquidation", "loss", "loss_pct",
                        "bad_debt", "worst_margin_ratio", "slippage_cost", "warnings")
"""Columns of the crash-replay table a reader needs, in order (those the replay has)."""


def crash_replay_table_section(frame: pl.DataFrame, *, title: str = "Crash replays") -> str:
    """The crash-replay table (``backtest.risk.replay`` rows) as HTML; liquidated rows flagged.

    Entry and liquidation price, bad debt and warnings are shown; a window's data-quality
    warnings are long and shared by its rows, so the table numbers them and lists each once
    below (no table wider than the page).
    """
    columns = [c for c in REPLAY_TABLE_COLUMNS if c in frame.columns]
    notes: list[str] = []
    if "warnings" in frame.columns:
        refs = []
        for text in frame.get_column("warnings").to_list():
            items = [w.strip() for w in (text or "").split(";") if w.strip()]
            marks = []
            for item in items:
                if item not in notes:
                    notes.append(item)
                marks.append(f"[{notes.index(item) + 1}]")
            refs.append(" ".join(marks) if marks else "none")
        frame = frame.with_columns(pl.Series("warnings", refs, dtype=pl.String))
    body = table_html(frame, columns=columns, row_class="survived")
    if notes:
        items = "".join(f"<li>[{i + 1}] {html.escape(n)}</li>" for i, n in enumerate(notes))
        body += f'<h3>Data-quality warnings</h3><ul class="warnings mc-warnings">{items}</ul>'
    return _section(title, body, css_class="mc-crashes",
                    note="Prices in the quote currency, money in USDT; loss_pct is the share of the initial "
                         "balance lost; bad debt is the loss past bankruptcy the insurance fund absorbed.")


def crash_replay_charts_section(frame: pl.DataFrame, prices: Mapping[tuple[str, str], pl.DataFrame], *,
                                title: str = "Crash replays: price and liquidation prices") -> str:
    """Per crash and symbol: the price, each leverage's liquidation price and the moment it was hit.

    Parameters
    ----------
    frame : polars.DataFrame
        Replay rows (``crash``, ``symbol``, ``leverage``, ``entry_price``,
        ``liquidation_price``, ``first_liquidation`` as UTC text, ``survived``).
    prices : mapping of (crash, symbol) to polars.DataFrame
        The window's bars (``ts`` and ``close``, optionally ``mark_close``), as the replay read them.

    Liquidation prices are drawn for the leverages that were liquidated (the replay records
    the price at which each was); a survivor is named in the legend only.
    """
    import plotly.graph_objects as go

    from backtest.formatting import fmt_leverage
    from reports.html import series_color

    parts = []
    for (crash, symbol), group in frame.group_by(["crash", "symbol"], maintain_order=True):
        bars = prices.get((str(crash), str(symbol)))
        if bars is None or bars.height == 0:
            continue
        ts = _ms_column(bars, "ts")
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=ts, y=bars.get_column("close").to_numpy(), mode="lines", name="last price",
                                 line={"color": "#334155", "width": 1.4}))
        if "mark_close" in bars.columns:
            fig.add_trace(go.Scatter(x=ts, y=bars.get_column("mark_close").to_numpy(), mode="lines",
                                     name="mark price", line={"color": "#7c3aed", "width": 1.2, "dash": "dot"}))
        rows = group.sort("leverage").to_dicts()
        entry = next((r.get("entry_price") for r in rows if r.get("entry_price") is not None), None)
        if entry is not None:
            fig.add_trace(go.Scatter(x=[ts[0], ts[-1]], y=[entry, entry], mode="lines", name="entry price",
                                     line={"color": "#94a3b8", "width": 1, "dash": "dash"}))
        for k, row in enumerate(rows):
            color = series_color(k, len(rows))
            label = fmt_leverage(row["leverage"])
            lp, hit = row.get("liquidation_price"), _text_ms(row.get("first_liquidation"))
            if lp is None or hit is None:
                fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line={"color": color},
                                         name=f"{label}: {'survived' if row.get('survived') else 'not entered'}"))
                continue
            fig.add_trace(go.Scatter(x=[ts[0], hit], y=[lp, lp], mode="lines", name=f"{label} liquidation price",
                                     legendgroup=label, line={"color": color, "width": 2, "dash": "dash"}))
            fig.add_trace(go.Scatter(x=[hit], y=[lp], mode="markers", name=f"{label} liquidated",
                                     legendgroup=label, showlegend=False,
                                     hovertext=[f"{label} liquidated at {lp:,.2f}"], hoverinfo="text+x",
                                     marker={"symbol": "x", "size": 13, "color": color,
                                             "line": {"width": 1.5, "color": "#111827"}}))
        quote = str(symbol).split("/")[-1].split(":")[0] if "/" in str(symbol) else "quote"
        base = str(symbol).split("/")[0]
        fig.update_layout(xaxis={"title": {"text": "time (UTC)"}, "type": "date"},
                          yaxis={"title": {"text": f"price ({quote} per {base})"}},
                          template="plotly_white", height=420, margin={"l": 70, "r": 20, "t": 20, "b": 50},
                          legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
        parts.append(f"<h3>{html.escape(str(crash))} · {html.escape(str(symbol))}</h3>{_figure_html(fig)}")
    body = "".join(parts) or '<p class="empty">No price data to draw.</p>'
    return _section(title, body, css_class="mc-replay-charts",
                    note="Dashed lines: each leverage's liquidation price until the mark price reached it; "
                         "a cross marks the moment it was hit.")


def _ms_column(frame: pl.DataFrame, column: str) -> np.ndarray:
    series = frame.get_column(column)
    if isinstance(series.dtype, pl.Datetime):
        series = series.dt.epoch("ms")
    return series.cast(pl.Int64).to_numpy().astype(np.float64)


def _text_ms(text: Any) -> float | None:
    """``2020-03-12 06:09:52 UTC`` (the replay's UTC text) as float ms for a date axis."""
    if text is None:
        return None
    from datetime import datetime, timezone

    raw = str(text).replace(" UTC", "").replace("Z", "")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp() * 1000.0


HIGHER_IS_WORSE = frozenset({
    "max_drawdown", "n_liquidations", "liquidations", "bad_debt", "loss", "loss_pct", "fees",
    "probability", "worst_margin_ratio", "liquidation_loss", "slippage_cost", "margin_lost",
    "funding_paid", "p_liquidation"})
"""Metrics where a larger value is a worse outcome (their heatmaps put red at the top)."""


def _cell_text(value: float, metric: str) -> str:
    if metric == "max_drawdown":  # a positive depth, printed negative as everywhere
        return f"{-abs(value) * 100:.1f} %"
    if metric in FRACTION_COLUMNS or metric in PROBABILITY_COLUMNS:
        return f"{value * 100:+.1f} %" if metric in ("total_return", "return") else f"{value * 100:.1f} %"
    if metric in MONEY_COLUMNS:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _axis_label(value: Any, column: str) -> str:
    from backtest.formatting import fmt_leverage

    if column == "leverage" and isinstance(value, (int, float)):
        return fmt_leverage(float(value))
    return str(value)


def sweep_heatmap_section(frame: pl.DataFrame, *, x: str, y: str, value: str = "total_return",
                          title: str | None = None) -> str:
    """Heatmap of a sweep metric over two swept parameters, averaged over the other ones.

    Colour follows the metric's direction: green is better, red worse (a return is better
    higher, a drawdown or a count of liquidations worse higher; :data:`HIGHER_IS_WORSE`).
    Each cell prints its value; the note says over what and how many runs a cell averages.
    """
    import plotly.graph_objects as go

    for column in (x, y, value):
        if column not in frame.columns:
            raise ValueError(f"sweep heatmap: column {column!r} is not in the sweep results ({frame.columns})")
    grid = frame.group_by([x, y]).agg(pl.col(value).cast(pl.Float64).mean(), pl.len().alias("_n")).sort([y, x])
    xs = sorted(grid[x].unique().to_list())
    ys = sorted(grid[y].unique().to_list())
    z = np.full((len(ys), len(xs)), np.nan)
    text = [["" for _ in xs] for _ in ys]
    for row in grid.iter_rows(named=True):
        i, j = ys.index(row[y]), xs.index(row[x])
        z[i, j] = row[value]
        if row[value] is not None and row[value] == row[value]:
            text[i][j] = _cell_text(float(row[value]), value)
    worse_high = value in HIGHER_IS_WORSE
    scale = "RdYlGn_r" if worse_high else "RdYlGn"
    fig = go.Figure(go.Heatmap(z=z, x=[_axis_label(v, x) for v in xs], y=[_axis_label(v, y) for v in ys],
                               text=text, texttemplate="%{text}", colorscale=scale, xgap=2, ygap=2,
                               colorbar={"title": {"text": html.escape(value)}},
                               hovertemplate="%{y}, %{x}: %{text}<extra></extra>"))
    fig.update_layout(xaxis={"title": {"text": html.escape(x)}, "type": "category"},
                      yaxis={"title": {"text": html.escape(y)}, "type": "category"}, template="plotly_white",
                      height=160 + 44 * len(ys), margin={"l": 70, "r": 20, "t": 20, "b": 50})
    others = [c for c in frame.columns if c.startswith("p_") and c not in (x, y)]
    if x != "leverage" and y != "leverage" and "leverage" in frame.columns:
        others.insert(0, "leverage")
    counts = grid.get_column("_n")
    per_cell = (f"{int(counts.min())}" if counts.min() == counts.max()
                else f"{int(counts.min())} to {int(counts.max())}")
    over = f"the other swept dimensions ({', '.join(others)})" if others else "the runs of that cell"
    note = (f"Each cell: mean {value} over {over}; {per_cell} run(s) per cell. "
            f"{'Red is worse: a higher ' + value + ' is worse.' if worse_high else 'Green is better: a higher ' + value + ' is better.'}")
    # an empty title (a page card already titles it) stays empty: one title per chart
    heading = f"Sweep: {value} by {x} and {y}" if title is None else title
    return _section(heading, _figure_html(fig), css_class="mc-sweep",
                    note=note)


def fit_table_section(fits: Sequence[dict[str, Any]], *, title: str = "Fitted return models") -> str:
    """A table of fitted model parameters (``model.describe()`` dicts), one row per parameter."""
    rows = [{"model": str(f.get("model", "")), "parameter": k, "value": v}
            for f in fits for k, v in f.items() if k != "model"]
    frame = pl.DataFrame(rows, schema={"model": pl.String, "parameter": pl.String, "value": pl.String}) if rows else \
        pl.DataFrame(schema={"model": pl.String, "parameter": pl.String, "value": pl.String})
    frame = frame.with_columns(pl.Series("value", [_format(r["value"]) for r in rows], dtype=pl.String))
    return _section(title, table_html(frame), css_class="mc-fits")
