"""HTML building blocks: escaping, number formats, tables, figure slots and the page shell.

Everything a report shows that came from data, config or a strategy passes through
:func:`esc` (text) or :func:`script_json` (JSON inside ``<script>``), so a strategy named
``<script>alert(1)</script>`` renders as text. Pages load nothing remote: plotly.js is
inlined once (or written once beside the report and referenced relatively), the styles and
the small table sorter are inline.
"""
from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

PlotlyJsMode = Literal["inline", "beside"]

COLORS = {
    "equity": "#2563eb",
    "drawdown": "#e11d48",
    "last": "#334155",
    "mark": "#7c3aed",
    "liquidation": "#dc2626",
    "liq_price": "#f97316",
    "buy": "#16a34a",
    "sell": "#0891b2",
    "margin": "#ca8a04",
    "distance": "#0d9488",
    "funding_pos": "#16a34a",
    "funding_neg": "#dc2626",
    "grid": "#e5e7eb",
    "text": "#111827",
    "muted": "#6b7280",
}
"""The report palette; liquidations are always red."""

SERIES_PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#ca8a04", "#db2777",
                  "#4b5563", "#65a30d", "#7c2d12")
"""Colours of compared runs (no pure red: that is the liquidation colour of single reports)."""


def series_color(index: int, count: int) -> str:
    """A distinct colour for run ``index`` of ``count``: the palette up to its size, else
    evenly spaced hues (so no two runs of a large sweep share a colour)."""
    if count <= len(SERIES_PALETTE):
        return SERIES_PALETTE[index]
    return f"hsl({round(360 * index / count)}, 70%, 42%)"


def esc(value: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def script_json(value: Any) -> str:
    """Serialize ``value`` as JSON that is safe inside a ``<script>`` element.

    ``<``, ``>`` and ``&`` become ``\\u003c`` ``\\u003e`` ``\\u0026`` (so neither ``</script>``
    nor ``<!--`` can appear), as do the JS line separators U+2028/U+2029.
    """
    text = value if isinstance(value, str) else json.dumps(value, allow_nan=False, default=str)
    return _escape_json_text(text)


def _escape_json_text(text: str) -> str:
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# ----------------------------------------------------------------------------- formatting
# One home for number and time formats: backtest.formatting (CLI, reports and risk lab).
from backtest.formatting import (  # noqa: E402  (re-exported for report sections)
    fmt_drawdown,
    fmt_leverage,
    fmt_money,
    fmt_num,
    fmt_pct,
    fmt_price,
    fmt_prob,
    fmt_ts,
)


# ----------------------------------------------------------------------------- tables
def _cell(value: Any, dtype: pl.DataType) -> tuple[str, str | None]:
    """Display text and numeric sort key of one cell."""
    if value is None:
        return "—", None
    if isinstance(dtype, pl.Datetime):
        ms = int(value.timestamp() * 1000)
        return fmt_ts(ms, seconds=True), str(ms)
    if isinstance(value, bool):
        return str(value).lower(), None
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return fmt_num(value), None
        return fmt_num(value), repr(float(value))
    return str(value), None


def table_html(frame: pl.DataFrame, *, table_id: str, sortable: bool = True,
               max_rows: int | None = None, caption: str | None = None,
               row_class: Iterable[str] | None = None,
               formats: Mapping[str, Callable[[Any], str]] | None = None) -> str:
    """Render a DataFrame as an HTML table with every column, escaped.

    Parameters
    ----------
    frame : polars.DataFrame
        The rows; datetimes show as UTC, numbers with separators.
    table_id : str
        The element id (also used by tests).
    sortable : bool
        Clicking a header sorts by that column (numeric-aware; inline JS).
    max_rows : int, optional
        Show only the first ``max_rows`` rows and say how many were left out.
    caption : str, optional
        Text under the table (escaped).
    row_class : iterable of str, optional
        A CSS class per row (e.g. ``"liq"`` for liquidation rows).
    formats : mapping of column name to callable, optional
        Display text of a column's values (e.g. ``fmt_leverage`` prints ``2x``); a numeric
        column keeps its numeric sort key.
    """
    shown = frame if max_rows is None else frame.head(max_rows)
    classes = list(row_class) if row_class is not None else None
    focus = ' tabindex="0"' if sortable else ""
    head = "".join(f'<th scope="col"{focus}>{esc(c)}</th>' for c in frame.columns)
    dtypes = shown.dtypes
    shown_formats = [(formats or {}).get(c) for c in shown.columns]
    body: list[str] = []
    for i, row in enumerate(shown.iter_rows()):
        cells = []
        for value, dtype, form in zip(row, dtypes, shown_formats):
            text, key = _cell(value, dtype)
            if form is not None and value is not None:
                text = form(value)
            numeric = key is not None
            attrs = f' data-sort="{esc(key)}"' if numeric else ""
            num_cls = ' class="num"' if numeric else ""
            cells.append(f"<td{attrs}{num_cls}>{esc(text)}</td>")
        cls = f' class="{esc(classes[i])}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    notes = []
    if max_rows is not None and frame.height > max_rows:
        notes.append(f"Showing the first {max_rows:,} of {frame.height:,} rows; "
                     f"the full table is in the run directory.")
    if caption:
        notes.append(caption)
    note = "".join(f'<p class="note">{esc(n)}</p>' for n in notes)
    sort_cls = " sortable" if sortable else ""
    return (f'<div class="table-wrap"><table id="{esc(table_id)}" class="data{sort_cls}">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>{note}")


def kv_table_html(rows: Sequence[tuple[str, Any]], *, table_id: str | None = None) -> str:
    """A two-column key/value table; values are escaped text (dicts/lists as JSON)."""
    cells = []
    for key, value in rows:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            shown = ", ".join(value)
        elif isinstance(value, (dict, list)):
            shown = json.dumps(value, sort_keys=True, default=str)
        elif isinstance(value, float):
            shown = fmt_num(value, 6)
        else:
            shown = "—" if value is None else str(value)
        cells.append(f'<tr><th scope="row">{esc(key)}</th><td>{esc(shown)}</td></tr>')
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return f'<table class="kv"{ident}><tbody>{"".join(cells)}</tbody></table>'


# ----------------------------------------------------------------------------- figures
def figure_html(figure: Any, *, div_id: str | None = None, height: int | None = None,
                id_prefix: str = "chart-") -> str:
    """A chart slot: an empty ``div`` and the figure's JSON in a non-executed script tag.

    Parameters
    ----------
    figure : plotly.graph_objects.Figure
        The chart; numpy arrays are serialized as compact typed arrays.
    div_id : str, optional
        The target element id. When omitted it is ``id_prefix`` followed by the first 12 hex
        digits of the SHA-1 of the figure's JSON, so pages stay deterministic.
    height : int, optional
        Pixel height of the slot (the figure's layout height is used otherwise).
    id_prefix : str, default "chart-"
        Prefix of the derived id; ignored when ``div_id`` is given.
    """
    import plotly.io as pio

    payload = pio.to_json(figure, validate=False, remove_uids=True)
    if div_id is None:
        # derived from the payload already serialized here, so the figure is serialized once
        div_id = f"{id_prefix}{hashlib.sha1(payload.encode()).hexdigest()[:12]}"
    style = f' style="height:{int(height)}px"' if height else ""
    return (f'<div class="chart" id="{esc(div_id)}"{style}></div>'
            f'<script type="application/json" class="plotly-figure" data-target="{esc(div_id)}">'
            f"{_escape_json_text(payload)}</script>")


def ms_axis(values: np.ndarray) -> np.ndarray:
    """Timestamps (int64 ms) as float64 for a plotly date axis (exact below 2**53)."""
    return np.asarray(values, dtype=np.int64).astype(np.float64)


# ----------------------------------------------------------------------------- page
@dataclass(frozen=True)
class Section:
    """One block of a report.

    Attributes
    ----------
    id : str
        Anchor id (letters, digits, dashes).
    title : str
        Heading (escaped when rendered).
    body : str
        Trusted HTML fragment built with this module's helpers (all data inside escaped).
    """

    id: str
    title: str
    body: str


def plotly_js() -> tuple[str, str]:
    """plotly.js source and its version."""
    import plotly.offline

    source = plotly.offline.get_plotlyjs()
    if "</script" in source.lower():  # cannot happen with the official bundle; guard anyway
        source = source.replace("</script", "<\\/script")
    import plotly

    version = getattr(plotly, "__version__", "unknown")
    return source, version


def _plotly_tag(mode: PlotlyJsMode, out: Path) -> str:
    source, version = plotly_js()
    if mode == "inline":
        return f"<script>{source}</script>"
    if mode != "beside":
        raise ValueError(f"plotlyjs must be 'inline' or 'beside', found {mode!r}")
    name = f"plotly-{version}.min.js"
    target = out.parent / name
    if not target.is_file() or target.stat().st_size != len(source.encode("utf-8")):
        target.write_text(source, encoding="utf-8")
    return f'<script src="{esc(name)}"></script>'


_CSS = """
:root{--bg:#f4f5f7;--card:#fff;--text:#111827;--muted:#6b7280;--line:#e5e7eb;--accent:#2563eb;
--red:#dc2626;--green:#16a34a}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header.top{background:#0f172a;color:#f8fafc;padding:20px 32px}
header.top h1{margin:0;font-size:22px;font-weight:600;word-break:break-word}
header.top .sub{color:#cbd5e1;margin-top:4px}
nav.toc{background:#1e293b;padding:8px 32px;position:sticky;top:0;z-index:10;white-space:nowrap;
overflow-x:auto}
nav.toc a{color:#e2e8f0;text-decoration:none;margin-right:18px;font-size:13px}
nav.toc a:hover{color:#fff;text-decoration:underline}
main{max-width:1400px;margin:0 auto;padding:20px 32px 48px}
section.card{background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:18px 22px;margin:0 0 20px;box-shadow:0 1px 2px rgba(15,23,42,.04)}
section.card h2{margin:0 0 12px;font-size:17px;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px}
.metric{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fafbfc}
.metric .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.metric .value{font-size:20px;font-weight:600;margin-top:2px;font-variant-numeric:tabular-nums}
.metric .detail{color:var(--muted);font-size:12px;margin-top:2px}
.metric.bad .value{color:var(--red)}.metric.good .value{color:var(--green)}
.metric.bad{border-color:#fecaca;background:#fef2f2}
.chart{width:100%;min-height:200px}
.table-wrap{overflow:auto;max-height:520px;border:1px solid var(--line);border-radius:8px}
table.data{border-collapse:collapse;width:100%;font-size:12.5px;font-variant-numeric:tabular-nums}
table.data th{position:sticky;top:0;background:#f8fafc;text-align:left;padding:7px 10px;
border-bottom:1px solid var(--line);font-weight:600;vertical-align:bottom;min-width:4.5em}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th:hover{background:#eef2ff}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
table.sortable th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
table.data td{padding:6px 10px;border-bottom:1px solid #f1f5f9;white-space:nowrap}
table.data td.num{text-align:right}
table.data tbody tr:nth-child(even){background:#fcfcfd}
table.data tbody tr:hover{background:#f1f5f9}
table.data tr.liq td,table.data tr.mc-bad td{color:#991b1b}
table.data tr.liq,table.data tr.mc-bad{background:#fef2f2}
table.kv{border-collapse:collapse;font-size:13px;width:100%}
table.kv th{text-align:left;color:var(--muted);font-weight:500;padding:5px 16px 5px 0;
vertical-align:top;white-space:nowrap;width:1%}
table.kv td{padding:5px 0;word-break:break-word;font-family:ui-monospace,SFMono-Regular,Menlo,
Consolas,monospace;font-size:12.5px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:24px}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}
h3{font-size:14px;margin:4px 0 8px;color:#374151}
ul.warnings{margin:0;padding-left:18px;color:#92400e}
ul.warnings li{margin:2px 0}
.note{color:var(--muted);font-size:12px;margin:6px 0 0}
.empty{color:var(--muted);font-style:italic}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600}
.badge.ok{background:#dcfce7;color:#166534}.badge.liq{background:#fee2e2;color:#991b1b}
details summary{cursor:pointer;color:var(--accent);margin:8px 0}
.swatches{display:flex;flex-wrap:wrap;gap:6px 16px;margin:0 0 8px;font-size:12.5px}
.swatch i{display:inline-block;width:14px;height:10px;border-radius:2px;margin-right:6px;
vertical-align:middle}
footer{color:var(--muted);font-size:12px;text-align:center;padding:0 0 24px}
"""

_JS = """
(function(){
 window.__plotlyReady=performance.now();
 function key(td){var v=td.getAttribute('data-sort');return v===null?null:parseFloat(v);}
 document.querySelectorAll('table.sortable').forEach(function(table){
  table.querySelectorAll('thead th').forEach(function(th,col){
   function sort(){
    var asc=th.getAttribute('aria-sort')!=='ascending';
    table.querySelectorAll('thead th').forEach(function(o){o.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort',asc?'ascending':'descending');
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
     var x=a.cells[col],y=b.cells[col],kx=key(x),ky=key(y),r;
     if(kx!==null&&ky!==null){r=kx-ky;}
     else if(kx===null&&ky===null){r=x.textContent.localeCompare(y.textContent);}
     else{r=kx===null?1:-1;return r;}
     return asc?r:-r;});
    rows.forEach(function(r){body.appendChild(r);});
   }
   th.addEventListener('click',sort);
   th.addEventListener('keydown',function(e){if(e.key==='Enter'){sort();}});
  });
 });
 var slots=document.querySelectorAll('script.plotly-figure'),jobs=[];
 var cfg={responsive:true,displaylogo:false,
  modeBarButtonsToRemove:['select2d','lasso2d','autoScale2d']};
 slots.forEach(function(s){
  var fig=JSON.parse(s.textContent),el=document.getElementById(s.getAttribute('data-target'));
  jobs.push(Plotly.newPlot(el,fig.data,fig.layout||{},cfg));
 });
 Promise.all(jobs).then(function(){
  window.__reportRendered=performance.now();document.body.setAttribute('data-rendered','true');
 });
})();
"""


def render_page(*, title: str, subtitle: str, sections: Sequence[Section], out: Path,
                plotlyjs: PlotlyJsMode = "inline", footer: str = "") -> str:
    """Assemble a full, offline HTML page from sections.

    Parameters
    ----------
    title, subtitle : str
        Page heading (plain text; escaped here).
    sections : sequence of Section
        Rendered in order, each as a card with an anchor in the navigation bar.
    out : pathlib.Path
        Where the page will be written (``beside`` mode writes plotly.js next to it).
    plotlyjs : {"inline", "beside"}
        Inline plotly.js once in the page, or write it once beside the page and load it by a
        relative path.
    footer : str
        Plain-text footer line (escaped).
    """
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    cards = "".join(
        f'<section class="card" id="{esc(s.id)}"><h2>{esc(s.title)}</h2>{s.body}</section>'
        for s in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'self' file: 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<header class="top"><h1>{esc(title)}</h1><div class="sub">{esc(subtitle)}</div></header>'
        f'<nav class="toc">{nav}</nav><main>{cards}</main>'
        f"<footer>{esc(footer)}</footer>"
        f"{_plotly_tag(plotlyjs, out)}<script>{_JS}</script></body></html>"
    )
