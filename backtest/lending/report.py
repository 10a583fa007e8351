"""The lending study on disk: Parquet tables, a DuckDB file of views and an HTML report, as one
folder written whole (:func:`backtest.runfolder.write_run_folder`: a temporary sibling renamed
into place, so a killed or concurrent command leaves the old folder or the new, never a mix).

The page is built from the report package's pieces (:mod:`reports.html`: page shell, tables,
chart slots; :func:`reports.charts.base_layout`; :func:`reports.downsample.minmax_downsample`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from backtest.lending.study import TABLES, LendingStudy

__all__ = ["DUCKDB_NAME", "REPORT_NAME", "render_report", "write_study", "write_tables"]

DUCKDB_NAME = "lending.duckdb"
REPORT_NAME = "report.html"
_SHOWN_ROWS = 200


def write_tables(target: str | Path, tables: dict[str, pl.DataFrame], *,
                 manifest: dict[str, Any], overwrite: bool = False,
                 extra: dict[str, str] | None = None) -> Path:
    """Write ``tables`` as ``<name>.parquet`` with ``lending.duckdb`` (one view per table) and
    the ``extra`` text files (name -> content) into the folder ``target``, whole or not at all;
    ``manifest.json`` records ``manifest`` and every file.

    Raises
    ------
    backtest.runfolder.RunFolderError
        When the folder exists (without ``overwrite``), is not a run folder or cannot be
        written; nothing is written then.
    """
    from backtest.results import _jsonable
    from backtest.runfolder import check_output_folder, file_record, write_run_folder, write_tables

    final = check_output_folder(target, overwrite=overwrite)

    def fill(tmp: Path) -> dict[str, dict[str, Any]]:
        # the views point at the final place, reached when the folder is renamed
        files = write_tables(tmp, tables, final=final, duckdb_name=DUCKDB_NAME)
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
            files[name] = file_record(tmp / name)
        return files

    return write_run_folder(final, fill, _jsonable({"kind": "lending", **manifest}),
                            overwrite=overwrite)


def write_study(study: LendingStudy, target: str | Path, *, manifest: dict[str, Any],
                title: str, subtitle: str, overwrite: bool = False) -> Path:
    """Write ``study`` into the folder ``target``: ``<table>.parquet`` for each of
    :data:`backtest.lending.study.TABLES`, ``lending.duckdb`` and ``report.html``
    (:func:`write_tables`); ``manifest.json`` adds the per-group summaries."""
    from backtest.runfolder import check_output_folder

    final = check_output_folder(target, overwrite=overwrite)
    page = render_report(study, title=title, subtitle=subtitle, out=final / REPORT_NAME)
    return write_tables(final, {name: study.tables[name] for name in TABLES},
                        manifest={**manifest, "summaries": study.summaries}, overwrite=overwrite,
                        extra={REPORT_NAME: page})


# ----------------------------------------------------------------------------- the page
def _price_figure(steps: pl.DataFrame) -> Any:
    import plotly.graph_objects as go

    from reports.charts import base_layout
    from reports.downsample import minmax_downsample
    from reports.html import SERIES_PALETTE, ms_axis

    fig = go.Figure()
    color = 0
    for (protocol, asset), group in steps.group_by(["protocol", "asset"], maintain_order=True):
        x = group["ts"].dt.epoch("ms").to_numpy()
        for column in ("market_price", "oracle_price", "venue_price"):
            if column not in group.columns or group[column].null_count() == group.height:
                continue
            xs, ys = minmax_downsample(x, group[column].cast(pl.Float64).to_numpy(), 800)
            fig.add_trace(go.Scatter(x=ms_axis(xs), y=ys, mode="lines",
                                     name=f"{protocol} {asset} {column.replace('_', ' ')}",
                                     line={"color": SERIES_PALETTE[color % len(SERIES_PALETTE)],
                                           "width": 1.4}))
            color += 1
    fig.update_layout(**base_layout(height=380))
    fig.update_yaxes(title_text="price (base currency)")
    return fig


def _volume_figure(study: LendingStudy) -> Any:
    import plotly.graph_objects as go

    from reports.charts import base_layout
    from reports.html import COLORS, SERIES_PALETTE, ms_axis

    fig = go.Figure()
    liq, auctions = study.tables["liquidations"], study.tables["auctions"]
    series = []
    if liq.height:
        series += [(f"{p} {a} debt repaid", g.select(pl.col("ts").alias("t"),
                                                      pl.col("debt_repaid").alias("v")))
                   for (p, a), g in liq.group_by(["protocol", "asset"], maintain_order=True)]
    if auctions.height:
        series += [(f"{p} {a} debt auctioned", g.select(pl.col("kicked").alias("t"),
                                                         pl.col("due").alias("v")))
                   for (p, a), g in auctions.group_by(["protocol", "asset"], maintain_order=True)]
    for n, (name, frame) in enumerate(series):
        hourly = frame.group_by(pl.col("t").dt.truncate("1h")).agg(pl.col("v").sum()).sort("t")
        fig.add_trace(go.Bar(x=ms_axis(hourly["t"].dt.epoch("ms").to_numpy()),
                             y=hourly["v"].to_numpy(), name=name,
                             marker={"color": COLORS["liquidation"] if n == 0
                                     else SERIES_PALETTE[n % len(SERIES_PALETTE)]}))
    fig.update_layout(**base_layout(height=320), barmode="stack")
    fig.update_yaxes(title_text="per hour (base currency)")
    return fig


def _clearing_figure(auctions: pl.DataFrame) -> Any:
    import plotly.graph_objects as go

    from reports.charts import base_layout
    from reports.html import COLORS, ms_axis

    done = auctions.filter(pl.col("status") != "open")
    x = ms_axis(done["settled"].dt.epoch("ms").to_numpy())
    fig = go.Figure([
        go.Scatter(x=x, y=done["market_at_settle"].to_numpy(), mode="markers",
                   name="market price at settlement", marker={"color": COLORS["last"], "size": 4}),
        go.Scatter(x=x, y=done["clearing_price"].fill_nan(0.0).to_numpy(), mode="markers",
                   name="clearing price (DAI raised / collateral sold)",
                   marker={"color": COLORS["liquidation"], "size": 4})])
    fig.update_layout(**base_layout(height=340))
    fig.update_yaxes(title_text="DAI per token")
    return fig


def render_report(study: LendingStudy, *, title: str, subtitle: str, out: Path) -> str:
    """The self-contained HTML page of ``study`` (plotly.js inlined once)."""
    from reports.html import Section, figure_html, kv_table_html, render_page, table_html

    t = study.tables
    bad = t["bad_debt"]
    totals = [("positions", int(bad["positions"].sum()) if bad.height else 0),
              ("debt at start", float(bad["debt_start"].sum()) if bad.height else 0.0),
              ("debt liquidated (repaid or auctioned)",
               float(bad["debt_liquidated"].sum()) if bad.height else 0.0),
              ("bad debt", float(bad["bad_debt"].sum()) if bad.height else 0.0),
              ("toxic-spiral positions (LTV > 1/bonus)", t["toxic"].height)]
    sections = [
        Section("summary", "Summary", kv_table_html(totals, table_id="lending-totals")
                + table_html(bad, table_id="lending-bad-debt", sortable=False,
                             caption="bad_debt = deficit (Aave v3.3 burned debt; Maker auction "
                                     "shortfall) + underwater debt left on positions + keeper "
                                     "incentives paid by the protocol")),
        Section("prices", "Market, oracle and venue prices", figure_html(
            _price_figure(t["steps"]), id_prefix="lending-")),
        Section("volume", "Liquidated debt per hour", figure_html(
            _volume_figure(study), id_prefix="lending-")),
        Section("keepers", "Liquidators and keepers", table_html(
            t["keepers"], table_id="lending-keepers")),
    ]
    if t["auctions"].height:
        sections.append(Section("auctions", "Auctions and their clearing prices",
                                figure_html(_clearing_figure(t["auctions"]), id_prefix="lending-")
                                + table_html(t["auctions"], table_id="lending-auctions",
                                             max_rows=_SHOWN_ROWS)))
    if t["liquidations"].height:
        sections.append(Section("liquidations", "Liquidations (bonus and slippage)", table_html(
            t["liquidations"].select(
                *[c for c in ("protocol", "asset", "position_id", "ts", "oracle_price",
                              "market_price", "debt_repaid", "collateral_seized", "bonus_value",
                              "slippage", "gas_cost", "profit", "deficit")
                  if c in t["liquidations"].columns]),
            table_id="lending-liquidations", max_rows=_SHOWN_ROWS)))
    sections.append(Section("toxic", "Positions in the toxic-spiral region", table_html(
        t["toxic"], table_id="lending-toxic", max_rows=_SHOWN_ROWS,
        caption="A liquidation with a fixed bonus raises the LTV of a position above "
                "1/bonus (Warmuz, Chaudhary & Pinna, Toxic Liquidation Spirals).")))
    return render_page(title=title, subtitle=subtitle, sections=sections, out=out,
                       footer="margincall lending")
