"""The cascade's HTML page: the waterfall of who paid, prices, the liquidation ladder against
price, the insurance-fund path and the ADL tables.

Built from a :class:`backtest.cascade.results.CascadeResult`'s tables only, through the risk
lab's page writer (``backtest.risk.report_sections.write_risk_report``: one offline page,
plotly.js inlined once, written atomically). plotly is imported inside the builders.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

__all__ = ["write_cascade_report"]

#: Price bins of the liquidation ladder.
LADDER_BINS = 60
#: Largest number of ADL rounds listed (the largest deficits).
ADL_ROWS = 50


def _section(title: str, body: str) -> str:
    heading = f"<h2>{html.escape(title)}</h2>" if title else ""
    return f'<section class="mc-risk mc-cascade">{heading}{body}</section>'


def _figure(fig: Any) -> str:
    from reports.html import figure_html

    return figure_html(fig, id_prefix="cascade-")


def _layout(fig: Any, **extra: Any) -> Any:
    fig.update_layout(template="plotly_white", height=420, margin={"l": 60, "r": 20, "t": 30, "b": 40}, **extra)
    return fig


def _waterfall(summary: dict[str, Any]) -> str:
    import plotly.graph_objects as go

    parts = [("margin of the liquidated", summary["margin_lost"]),
             ("insurance fund", summary["insurance_fund_paid"]),
             ("ADL counterparties", summary["adl_paid"]), ("bad debt", summary["bad_debt"])]
    fig = go.Figure(go.Waterfall(x=[p[0] for p in parts] + ["liquidation loss"],
                                 y=[p[1] for p in parts] + [summary["liquidation_loss"]],
                                 measure=["relative"] * len(parts) + ["total"]))
    return _figure(_layout(fig, yaxis_title="USDT"))


def _prices(prices: pl.DataFrame) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    for symbol in sorted(prices["symbol"].unique().to_list()):
        rows = prices.filter(pl.col("symbol") == symbol)
        ts = rows["ts"].to_list()
        for column in ("exogenous", "mark", "last"):
            fig.add_trace(go.Scattergl(x=ts, y=rows[column].to_numpy(), mode="lines",
                                       name=f"{symbol} {column}"))
    return _figure(_layout(fig, yaxis_title="price", yaxis_type="log"))


def _ladder(positions: pl.DataFrame) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    for (symbol, side), rows in sorted(positions.group_by(["symbol", "side"]), key=lambda kv: kv[0]):
        price = rows["mark_price"].to_numpy()
        notional = (rows["qty"] * rows["mark_price"]).to_numpy()
        edges = np.linspace(price.min(), price.max() * (1 + 1e-12), LADDER_BINS + 1)
        sums, _ = np.histogram(price, bins=edges, weights=notional)
        fig.add_trace(go.Bar(y=(edges[:-1] + edges[1:]) / 2, x=sums, orientation="h", name=f"{symbol} {side}"))
    return _figure(_layout(fig, xaxis_title="liquidated notional, USDT", yaxis_title="mark at take-over",
                           barmode="overlay"))


def _fund(fund: pl.DataFrame) -> str:
    import plotly.graph_objects as go

    fig = go.Figure(go.Scattergl(x=fund["ts"].to_list(), y=fund["balance"].to_numpy(), mode="lines",
                                 name="balance"))
    return _figure(_layout(fig, yaxis_title="USDT"))


def write_cascade_report(result: Any, out: str | Path, *, title: str = "Liquidation cascade",
                         subtitle: str = "") -> Path:
    """Write the cascade page of ``result`` to ``out`` (atomically); return the path."""
    from backtest.risk.report_sections import table_html, write_risk_report

    s = result.summary
    figures = pl.DataFrame({"figure": ["liquidated positions", "liquidated notional", "margin lost",
                                       "insurance fund start", "insurance fund end", "deficit sent to ADL",
                                       "ADL notional", "ADL counterparties", "ADL overshoot", "bad debt",
                                       "negative-equity positions", "time to first ADL, s", "max loop gain",
                                       "runaway"],
                            "value": [str(v) for v in (
                                s["liquidated_positions"], round(s["liquidated_notional"], 2),
                                round(s["margin_lost"], 2), s["insurance_fund_start"],
                                round(s["insurance_fund_end"], 2), round(s["deficit"], 2),
                                round(s["adl_notional"], 2), s["adl_counterparties"], round(s["adl_overshoot"], 2),
                                round(s["bad_debt"], 2), s["negative_equity_positions"], s["time_to_first_adl_s"],
                                round(s["max_loop_gain"], 4), s["runaway"])]})
    amplification = pl.DataFrame({"symbol": list(s["amplification"]),
                                  "amplification": [v for v in s["amplification"].values()]})
    sections = [("summary", "Summary", lambda t: _section(t, table_html(figures) + table_html(amplification))),
                ("waterfall", "Who paid the liquidation loss", lambda t: _section(t, _waterfall(s))),
                ("prices", "Exogenous, mark and last price", lambda t: _section(t, _prices(result.prices)))]
    if result.liquidated_positions.height:
        sections.append(("ladder", "Liquidation ladder against price",
                         lambda t: _section(t, _ladder(result.liquidated_positions))))
    sections.append(("fund", "Insurance fund", lambda t: _section(t, _fund(result.insurance_fund))))
    if result.adl.height:
        top = result.adl.sort("deficit", descending=True).head(ADL_ROWS)
        sections.append(("adl", f"ADL rounds (largest {min(ADL_ROWS, result.adl.height)} deficits)",
                         lambda t: _section(t, table_html(top))))
    if s.get("adl_rule_comparison"):
        table = pl.DataFrame([{"rule": rule, **totals} for rule, totals in s["adl_rule_comparison"].items()])
        sections.append(("adl-rules", "ADL rules on the same deficits", lambda t: _section(t, table_html(table))))
    return write_risk_report(Path(out), title=title, subtitle=subtitle, sections=sections)
