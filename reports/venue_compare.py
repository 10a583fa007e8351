"""The venue comparison page: one strategy under several venues' rules on the same prices.

Built from :class:`backtest.compare.VenueComparison` with the report helpers (``reports.html``
tables and page, ``reports.charts`` layout), offline and self-contained like the run report:
the price source per venue (``prices: X, rules: Y``), the survival table of leverage by venue,
the liquidation price at entry and the loss by venue and leverage, and every row with its
reason (a venue that cannot trade the symbol says why).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from backtest.formatting import fmt_leverage
from reports.charts import base_layout
from reports.html import Section, esc, figure_html, kv_table_html, render_page, series_color, table_html

__all__ = ["render_comparison_page", "write_comparison_page"]

#: Outcome cell of the survival table -> row-independent CSS class (styled by the page).
_OUTCOME_CLASS = {"survived": "mc-ok", "liquidated": "mc-liq", "not opened": "mc-na", "n/a": "mc-na"}
_CSS = ("<style>.mc-grid td.mc-ok{background:#ecfdf5;color:#065f46}"
        ".mc-grid td.mc-liq{background:#fef2f2;color:#991b1b;font-weight:600}"
        ".mc-grid td.mc-na{color:#6b7280}</style>")


def _survival_html(survival: pl.DataFrame) -> str:
    """The survival grid with one colour per outcome (a plain table: cells carry the class)."""
    head = "".join(f'<th scope="col">{esc(c)}</th>' for c in survival.columns)
    rows = []
    for row in survival.iter_rows():
        cells = [f'<td class="num">{esc(fmt_leverage(row[0]))}</td>']
        cells += [f'<td class="{_OUTCOME_CLASS.get(v, "")}">{esc(v)}</td>' for v in row[1:]]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f'{_CSS}<div class="table-wrap"><table id="venue-survival" class="data mc-grid">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
            '<p class="note">survived: held through the window; liquidated: at least one liquidation; '
            "not opened: the venue refused the position (e.g. above its leverage cap); n/a: the venue "
            "cannot trade the symbol (the reason is in the table below).</p>")


def _bar_figure(table: pl.DataFrame, column: str, axis_title: str) -> Any | None:
    """Grouped bars of ``column`` by leverage (category axis), one trace per venue; None when empty."""
    import plotly.graph_objects as go

    rows = table.filter(pl.col(column).is_not_null())
    if rows.height == 0:
        return None
    venues = list(dict.fromkeys(rows["venue"].to_list()))
    colors = [series_color(i, len(venues)) for i in range(len(venues))]
    fig = go.Figure()
    for venue, color in zip(venues, colors):
        part = rows.filter(pl.col("venue") == venue).sort("leverage")
        fig.add_trace(go.Bar(x=[fmt_leverage(v) for v in part["leverage"].to_list()], y=part[column].to_list(),
                             name=venue, marker_color=color))
    layout = base_layout(height=340)
    layout["xaxis"] = {**layout["xaxis"], "type": "category", "title": {"text": "leverage"}}
    layout["yaxis"] = {**layout["yaxis"], "title": {"text": axis_title}}
    layout["barmode"] = "group"
    layout["hovermode"] = "closest"
    fig.update_layout(**layout)
    return fig


def _chart_or_note(fig: Any | None, div_id: str, empty: str) -> str:
    return figure_html(fig, div_id=div_id) if fig is not None else f'<p class="empty">{esc(empty)}</p>'


def render_comparison_page(comparison: Any, *, out: Path) -> str:
    """The HTML page of a :class:`backtest.compare.VenueComparison` (see :func:`write_comparison_page`)."""
    table = comparison.table
    assets = [a for a in dict.fromkeys(table["margin_asset"].to_list()) if a]
    money = f"({'/'.join(assets) or 'margin asset'})"
    quote = comparison.symbol.partition("/")[2].partition(":")[0] or "quote"
    sources = list(dict.fromkeys(table["price_source"].to_list()))
    untradable = table.filter(~pl.col("tradable"))
    summary = kv_table_html([
        ("prices", comparison.prices), ("symbol", comparison.symbol), ("strategy", comparison.strategy),
        ("venues", ", ".join(dict.fromkeys(table["venue"].to_list()))),
        *[("price source", s) for s in sources],
        ("venues that cannot trade the symbol", len(set(untradable["venue"].to_list()))),
    ], table_id="comparison-summary")
    shown = table.select([c for c in table.columns if c not in ("warnings",)])
    classes = ["liq" if r["liquidated"] else "" for r in shown.iter_rows(named=True)]
    warnings = comparison.warnings
    notes = ("".join(f"<li>{esc(w)}</li>" for w in warnings))
    warn_html = (f'<ul class="warnings" id="quality-warnings">{notes}</ul>' if warnings
                 else '<p class="empty" id="quality-warnings">No data-quality warnings.</p>')
    reasons = untradable.unique("venue", keep="first", maintain_order=True)
    reason_html = ("<h3>Venues that cannot trade the symbol</h3><ul id=\"untradable\">"
                   + "".join(f"<li><b>{esc(r['venue'])}</b>: {esc(r['reason'])}</li>"
                             for r in reasons.iter_rows(named=True)) + "</ul>") if reasons.height else ""
    sections = [
        Section("source", "Prices and rules", summary + reason_html + warn_html),
        Section("survival", "Survival by leverage and venue", _survival_html(comparison.survival)),
        Section("liquidation-price", "Liquidation price at entry",
                _chart_or_note(_bar_figure(table, "liquidation_price_at_entry",
                                           f"liquidation price at entry ({quote})"),
                               "venue-liq-price", "No venue opened a position.")),
        Section("loss", "Loss by venue and leverage",
                _chart_or_note(_bar_figure(table, "loss", f"loss {money}"), "venue-loss",
                               "No venue opened a position.")),
        Section("rows", "Every venue and leverage",
                table_html(shown, table_id="venue-comparison", row_class=classes,
                           formats={"leverage": fmt_leverage},
                           caption=f"Money in {money[1:-1]}; funding is received − paid.")),
    ]
    return render_page(title=f"Venue comparison: {comparison.strategy} on {comparison.symbol}",
                       subtitle=" · ".join(sources), sections=sections, out=out,
                       footer="margincall compare")


def write_comparison_page(comparison: Any, out: Path) -> Path:
    """Write the comparison page to ``out`` atomically and return it.

    Parameters
    ----------
    comparison : backtest.compare.VenueComparison
        The comparison to show.
    out : pathlib.Path
        The page (``comparison.html`` in the comparison folder).
    """
    from reports.single import write_html

    out = Path(out)
    return write_html(out, render_comparison_page(comparison, out=out))
