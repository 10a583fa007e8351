"""Report sections of trade statistics, monthly returns and drawdown periods.

The numbers come from :mod:`reports.trade_stats` (pure); this module only lays them out.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from backtest.formatting import (
    MISSING,
    fmt_drawdown,
    fmt_duration,
    fmt_money,
    fmt_num,
    fmt_pct,
    fmt_ts,
)
from reports.html import Section, esc, figure_html, table_html
from reports.metrics import HeadlineMetrics
from reports.rundir import RunData
from reports.trade_stats import (
    SideStats,
    drawdown_periods,
    month_label,
    monthly_returns,
    trade_stats,
)

_STAT_ROWS: tuple[tuple[str, str], ...] = (
    ("trades", "trades"),
    ("win rate", "win_rate"),
    ("net result", "net"),
    ("profit factor", "profit_factor"),
    ("expectancy (per trade)", "expectancy"),
    ("average win", "average_win"),
    ("average loss", "average_loss"),
    ("best trade", "best"),
    ("worst trade", "worst"),
    ("mean holding time", "mean_holding_ms"),
    ("median holding time", "median_holding_ms"),
    ("longest holding time", "max_holding_ms"),
)


def _stat_text(stats: SideStats, field: str, unit: str) -> str:
    value = getattr(stats, field)
    if field == "trades":
        return f"{value:,}"
    if stats.trades == 0:
        return MISSING
    if field == "win_rate":
        return fmt_pct(value, digits=1)
    if field == "profit_factor":
        return MISSING if value is None else f"{value:,.2f}"
    if field.endswith("_ms"):
        return fmt_duration(value)
    return MISSING if value is None else fmt_money(value, signed=True, unit=unit)


def _signed_money(value: float) -> str:
    return fmt_money(value, signed=True)


def trade_stats_section(run: RunData, m: HeadlineMetrics) -> Section:
    """Trades, win rate, profit factor, expectancy, best/worst, holding times, exposure, the
    long/short split and the exit reasons, from ``trades.parquet``."""
    stats = trade_stats(run.trades)
    unit = run.margin_asset
    columns: dict[str, list[str]] = {"statistic": [label for label, _ in _STAT_ROWS]}
    for name, group in (("all trades", stats.all), ("long", stats.long), ("short", stats.short)):
        columns[name] = [_stat_text(group, field, unit) for _, field in _STAT_ROWS]
    columns["statistic"].append("exposure (bars in a position)")
    columns["all trades"].append(fmt_pct(m.exposure, digits=1))
    columns["long"].append("")
    columns["short"].append("")
    main = table_html(pl.DataFrame(columns), table_id="trade-stats-table", sortable=False)
    reasons = {
        "exit reason": list(stats.by_exit_reason),
        "trades": [s.trades for s in stats.by_exit_reason.values()],
        "share": [fmt_pct(s.trades / stats.all.trades, digits=1) if stats.all.trades else MISSING
                  for s in stats.by_exit_reason.values()],
        "win rate": [fmt_pct(s.win_rate, digits=1) for s in stats.by_exit_reason.values()],
        f"net result ({unit})": [s.net for s in stats.by_exit_reason.values()],
        f"average ({unit})": [s.expectancy for s in stats.by_exit_reason.values()],
    }
    reason_frame = pl.DataFrame(reasons, schema={
        "exit reason": pl.String, "trades": pl.Int64, "share": pl.String, "win rate": pl.String,
        f"net result ({unit})": pl.Float64, f"average ({unit})": pl.Float64})
    classes = ["liq" if r in ("liquidation", "adl") else "" for r in reasons["exit reason"]]
    signed = {c: _signed_money for c in (f"net result ({unit})", f"average ({unit})")}
    reason_html = (table_html(reason_frame, table_id="exit-reasons-table", row_class=classes,
                              formats=signed)
                   if reason_frame.height else '<p class="empty">No trades.</p>')
    note = ('<p class="note">Net result of a trade = realized PnL − fees + funding received. '
            "A win is a net result above 0; profit factor = gross wins / gross losses; "
            "expectancy = mean net result per trade. Exit reasons: signal, stop, take_profit, "
            "liquidation, adl (auto-deleveraged), end (closed at the end of the data).</p>")
    body = (f'<div class="grid2"><div>{main}</div><div><h3>Exit reasons</h3>{reason_html}'
            f"</div></div>{note}")
    return Section("trade-stats", "Trade statistics", body)


def monthly_returns_figure(table: pl.DataFrame) -> Any:
    """Year x month heatmap of monthly returns (green up, red down, values printed in cells)."""
    import plotly.graph_objects as go

    from reports.charts import base_layout

    years = sorted(table.get_column("year").unique().to_list())
    z = np.full((len(years), 12), np.nan)
    text = [["" for _ in range(12)] for _ in years]
    for row in table.iter_rows(named=True):
        if row["return"] is None:
            continue
        i, j = years.index(row["year"]), int(row["month"]) - 1
        z[i, j] = row["return"] * 100.0
        text[i][j] = f"{row['return'] * 100:+.1f}"
    finite = z[np.isfinite(z)]
    limit = float(np.max(np.abs(finite))) if finite.size else 1.0
    limit = limit or 1.0
    fig = go.Figure(go.Heatmap(
        z=z, x=[month_label(m) for m in range(1, 13)], y=[str(y) for y in years], text=text,
        texttemplate="%{text}", colorscale=[[0.0, "#b91c1c"], [0.5, "#f8fafc"], [1.0, "#15803d"]],
        zmin=-limit, zmax=limit, zmid=0.0, xgap=2, ygap=2, hoverongaps=False,
        colorbar={"title": {"text": "return (%)"}},
        hovertemplate="%{y} %{x}: %{z:+.2f} %<extra></extra>"))
    layout = base_layout(height=140 + 44 * len(years))
    layout["xaxis"] = {"type": "category", "title": {"text": "month (UTC)"}, "automargin": True,
                       "showgrid": False}
    layout["yaxis"] = {"type": "category", "title": {"text": "year (UTC)"}, "autorange": "reversed",
                       "automargin": True, "showgrid": False}
    layout["hovermode"] = "closest"
    fig.update_layout(**layout)
    return fig


def monthly_returns_section(run: RunData) -> Section:
    """Monthly returns heatmap (UTC calendar months, equity at each month's last bar)."""
    table = monthly_returns(run.ts_ms("equity"), run.equity.get_column("equity").cast(pl.Float64)
                            .to_numpy(), run.initial_balance)
    note = ('<p class="note">Return of each UTC calendar month in %: equity at its last bar '
            "over equity at the previous month's last bar (the first month against the initial "
            "balance). Green gained, red lost.</p>")
    return Section("monthly", "Monthly returns",
                   figure_html(monthly_returns_figure(table), div_id="chart-monthly") + note)


def drawdown_periods_section(run: RunData, m: HeadlineMetrics, *, top: int = 10) -> Section:
    """The deepest drawdown periods: peak, trough, recovery, depth, duration."""
    periods = drawdown_periods(run.ts_ms("equity"),
                               run.equity.get_column("equity").cast(pl.Float64).to_numpy(),
                               run.initial_balance, m.start_ts, top=top)
    if periods.height == 0:
        return Section("drawdowns", "Drawdown periods", '<p class="empty">Equity never fell '
                                                        "below its running peak.</p>")
    frame = pl.DataFrame({
        "rank": list(range(1, periods.height + 1)),
        "depth": [fmt_drawdown(d) for d in periods.get_column("depth").to_list()],
        "peak (UTC)": [fmt_ts(t) for t in periods.get_column("peak").to_list()],
        "trough (UTC)": [fmt_ts(t) for t in periods.get_column("trough").to_list()],
        "recovered (UTC)": [fmt_ts(t) if t is not None else "not recovered"
                            for t in periods.get_column("recovery").to_list()],
        "days": periods.get_column("days").to_list(),
    })
    classes = ["liq" if not r else "" for r in periods.get_column("recovered").to_list()]
    note = (f'<p class="note">The {periods.height} deepest falls from a running peak '
            f"(deepest {esc(fmt_drawdown(m.max_drawdown.depth))}); days run from the peak to "
            f"the recovery, or to the last bar when equity never got back. "
            f"{esc(fmt_num(float(periods.get_column('days').sum()), 1))} days underwater "
            f"in these periods.</p>")
    return Section("drawdowns", "Drawdown periods",
                   table_html(frame, table_id="drawdown-periods-table", row_class=classes) + note)
