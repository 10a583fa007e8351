"""Plotly figures of a run (built from :class:`reports.rundir.RunData`).

Long series are downsampled with :mod:`reports.downsample` (extremes and liquidation bars
kept); x axes are dates given as float milliseconds since the epoch (UTC). plotly is imported
inside the functions so that importing :mod:`reports` stays cheap.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from reports.downsample import DEFAULT_BUCKETS, minmax_downsample, ohlc_downsample
from reports.html import COLORS, esc, fmt_money, fmt_num, fmt_price, ms_axis, series_color
from reports.metrics import run_worst_margin_ratio
from reports.rundir import RunData
from reports.trade_stats import buy_and_hold

MAX_TRADE_MARKERS = 4_000
"""Entry/exit markers drawn at most; beyond this they are thinned evenly (liquidations never)."""

MARKERS_SHOWN_UP_TO = 150
"""With more entries or exits than this, their markers start hidden (a legend click shows
them), so hundreds of trades do not bury the candles; liquidations are always shown."""

TIME_AXIS_TITLE = "time (UTC)"
"""The x-axis title of every time chart."""


def base_layout(*, height: int, title: str | None = None) -> dict[str, Any]:
    """Shared look: white background, light grid, unified hover, legend on top."""
    axis = {"gridcolor": COLORS["grid"], "zeroline": False, "linecolor": "#d1d5db",
            "ticks": "outside", "tickcolor": "#d1d5db", "automargin": True}
    layout: dict[str, Any] = {
        "template": "none",
        "height": height,
        "margin": {"l": 60, "r": 24, "t": 36 if title else 16, "b": 36},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif",
                 "size": 12, "color": COLORS["text"]},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "left", "x": 0},
        "xaxis": {**axis, "type": "date"},
        "yaxis": dict(axis),
    }
    if title:
        layout["title"] = {"text": title, "x": 0, "font": {"size": 13}}
    return layout


def _style_axes(fig: Any, rows: int) -> None:
    axis = {"gridcolor": COLORS["grid"], "zeroline": False, "linecolor": "#d1d5db",
            "automargin": True}
    for row in range(1, rows + 1):
        fig.update_xaxes(type="date", row=row, col=1, **axis)
        fig.update_yaxes(row=row, col=1, **axis)


def _floats(frame: pl.DataFrame, column: str) -> np.ndarray:
    return frame.get_column(column).cast(pl.Float64).fill_null(float("nan")).to_numpy()


def liquidation_bar_indices(run: RunData) -> np.ndarray:
    """Indices of the equity rows at (or just before) each liquidation's fill time."""
    if run.liquidations.height == 0:
        return np.zeros(0, dtype=np.int64)
    ts = run.ts_ms("equity")
    liq = run.ts_ms("liquidations")
    idx = np.searchsorted(ts, liq, side="right") - 1
    return np.clip(idx, 0, ts.size - 1).astype(np.int64)


def _liquidation_hover(run: RunData) -> list[str]:
    rows = []
    tick, unit = run.tick_size, run.margin_asset
    for rec in run.liquidations.iter_rows(named=True):
        rows.append(
            f"LIQUIDATION {esc(rec['side'])} {esc(fmt_num(rec['qty']))} @ "
            f"{fmt_price(rec['fill_price'], tick_size=tick)}<br>"
            f"mark {fmt_price(rec['mark_price'], tick_size=tick)} · "
            f"LP {fmt_price(rec['liquidation_price'], tick_size=tick)}<br>"
            f"margin lost {fmt_money(rec['margin_lost'], unit=unit)} · "
            f"bad debt {fmt_money(rec['bad_debt'], unit=unit)}"
        )
    return rows


def price_figure(run: RunData, *, buckets: int = DEFAULT_BUCKETS) -> Any:
    """Price chart: last-price candles (or line), mark price, liquidation price, trades.

    Candles come from the optional ``bars.parquet``; without it ``equity.last_price`` is drawn
    as a line. Entries are green triangles (up = buy, down = sell), exits hollow circles,
    liquidations red crosses at their fill price.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    ts = run.ts_ms("equity")
    keep = liquidation_bar_indices(run)
    symbol = run.symbol
    bars = run.bars
    if bars is not None and bars.height:
        bars = bars.filter(pl.col("symbol") == symbol) if symbol != "?" else bars
    if bars is not None and bars.height:
        candles = ohlc_downsample(bars.get_column("ts").dt.epoch("ms").to_numpy(),
                                  _floats(bars, "open"), _floats(bars, "high"),
                                  _floats(bars, "low"), _floats(bars, "close"), buckets)
        fig.add_trace(go.Candlestick(
            x=ms_axis(candles.ts), open=candles.open, high=candles.high, low=candles.low,
            close=candles.close, name="last price (candles)", increasing={"line": {"color": "#16a34a"}},
            decreasing={"line": {"color": "#64748b"}}, hoverinfo="x+y"))
    else:
        x, y = minmax_downsample(ts, _floats(run.equity, "last_price"), buckets, keep)
        fig.add_trace(go.Scatter(x=ms_axis(x), y=y, name="last price", mode="lines",
                                 line={"color": COLORS["last"], "width": 1.3}))
    x, y = minmax_downsample(ts, _floats(run.equity, "mark_price"), buckets, keep)
    # the mark price (what liquidates) in its own colour and dash, distinct from last-price candles
    fig.add_trace(go.Scatter(x=ms_axis(x), y=y, name="mark price (triggers liquidation)",
                             mode="lines",
                             line={"color": COLORS["mark"], "width": 1.6, "dash": "dot"}))
    lp = _floats(run.equity, "liquidation_price")
    if np.isfinite(lp).any():
        x, y = minmax_downsample(ts, lp, buckets, keep)
        fig.add_trace(go.Scatter(x=ms_axis(x), y=y, name="liquidation price", mode="lines",
                                 connectgaps=False,
                                 line={"color": COLORS["liq_price"], "width": 2.4, "dash": "dash"}))
    _add_trade_markers(fig, run)
    if run.liquidations.height:
        fig.add_trace(go.Scatter(
            x=ms_axis(run.ts_ms("liquidations")), y=_floats(run.liquidations, "fill_price"),
            name="liquidation", mode="markers", hovertext=_liquidation_hover(run),
            hoverinfo="text+x",
            marker={"symbol": "x", "size": 13, "color": COLORS["liquidation"],
                    "line": {"width": 1.5, "color": "#7f1d1d"}}))
    _add_stop_orders(fig, run)
    base, quote, _ = run.assets
    layout = base_layout(height=500)
    layout["xaxis"]["rangeslider"] = {"visible": False}
    layout["xaxis"]["title"] = {"text": TIME_AXIS_TITLE}
    layout["yaxis"]["title"] = {"text": f"price ({quote} per {base})"}
    fig.update_layout(**layout)
    return fig


STOP_TYPES = {"stop_market": ("stop", "#b91c1c"), "stop": ("stop", "#b91c1c"),
              "stop_loss": ("stop", "#b91c1c"), "trailing_stop": ("stop", "#b91c1c"),
              "take_profit": ("take-profit", "#15803d"),
              "take_profit_market": ("take-profit", "#15803d")}
"""Order types drawn as trigger levels on the price chart: (label, colour)."""


def _add_stop_orders(fig: Any, run: RunData) -> None:
    """Stop and take-profit orders as horizontal segments at their trigger price, from
    creation to fill/cancel (or the run's end while still open); one trace per kind."""
    import plotly.graph_objects as go

    orders = run.orders
    if orders.height == 0:
        return
    orders = orders.filter(pl.col("type").is_in(list(STOP_TYPES)) & pl.col("stop_price").is_not_null())
    if orders.height == 0:
        return
    end = int(run.ts_ms("equity")[-1])
    created = orders.get_column("ts_created").dt.epoch("ms").to_numpy()
    done = orders.get_column("ts_done").dt.epoch("ms").fill_null(end).to_numpy()
    stop = _floats(orders, "stop_price")
    kinds = [STOP_TYPES[t][0] for t in orders.get_column("type").to_list()]
    status = orders.get_column("status").to_list()
    for label, color in (("stop", "#b91c1c"), ("take-profit", "#15803d")):
        idx = [i for i, k in enumerate(kinds) if k == label]
        if not idx:
            continue
        xs: list[float | None] = []
        ys: list[float | None] = []
        text: list[str] = []
        for i in idx:
            tip = f"{label} {status[i]} at {fmt_price(stop[i], tick_size=run.tick_size)}"
            xs += [float(created[i]), float(done[i]), None]
            ys += [float(stop[i]), float(stop[i]), None]
            text += [tip, tip, ""]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"{label} orders",
                                 hovertext=text, hoverinfo="text+x",
                                 line={"color": color, "width": 1.6, "dash": "dashdot"}))


def _add_trade_markers(fig: Any, run: RunData) -> None:
    import plotly.graph_objects as go

    fills = run.fills.filter(pl.col("reason") != "liquidation")
    if fills.height == 0:
        return
    side = np.where(fills.get_column("side").to_numpy() == "buy", 1.0, -1.0)
    after = _floats(fills, "position_qty_after")
    before = after - side * _floats(fills, "qty")
    entry = np.abs(after) > np.abs(before) + 1e-12
    ts = fills.get_column("ts").dt.epoch("ms").to_numpy()
    price = _floats(fills, "price")
    for label, mask, marker in (
        ("entry", entry, {"size": 10, "color": COLORS["buy"],
                          "symbol": np.where(side > 0, "triangle-up", "triangle-down").tolist(),
                          "line": {"width": 1, "color": "#14532d"}}),
        ("exit", ~entry, {"size": 9, "color": "rgba(0,0,0,0)", "symbol": "circle",
                          "line": {"width": 2, "color": COLORS["sell"]}}),
    ):
        idx = np.nonzero(mask)[0]
        if idx.size == 0:
            continue
        if idx.size > MAX_TRADE_MARKERS:
            idx = idx[np.linspace(0, idx.size - 1, MAX_TRADE_MARKERS).astype(np.int64)]
        if isinstance(marker["symbol"], list):
            marker = {**marker, "symbol": [marker["symbol"][i] for i in idx]}
        text = [f"{label} {'buy' if side[i] > 0 else 'sell'} {abs(after[i] - before[i]):g} "
                f"@ {fmt_price(price[i], tick_size=run.tick_size)}" for i in idx]
        hidden = idx.size > MARKERS_SHOWN_UP_TO
        name = f"{label} ({idx.size:,}, click to show)" if hidden else label
        fig.add_trace(go.Scatter(x=ms_axis(ts[idx]), y=price[idx], mode="markers", name=name,
                                 marker=marker, hovertext=text, hoverinfo="text+x",
                                 visible="legendonly" if hidden else True))


def equity_figure(run: RunData, *, buckets: int = DEFAULT_BUCKETS) -> Any:
    """Equity over time (top) and drawdown from the running peak in percent (bottom)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from reports.metrics import drawdown_series

    ts = run.ts_ms("equity")
    keep = liquidation_bar_indices(run)
    equity = _floats(run.equity, "equity")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.68, 0.32])
    x, y = minmax_downsample(ts, equity, buckets, keep)
    fig.add_trace(go.Scatter(x=ms_axis(x), y=y, name="equity", mode="lines",
                             line={"color": COLORS["equity"], "width": 1.5}), row=1, col=1)
    x, y = minmax_downsample(ts, _floats(run.equity, "wallet_balance"), buckets, keep)
    fig.add_trace(go.Scatter(x=ms_axis(x), y=y, name="wallet balance", mode="lines",
                             line={"color": "#94a3b8", "width": 1, "dash": "dot"}), row=1, col=1)
    hold = buy_and_hold(_floats(run.equity, "last_price"), run.initial_balance)
    if np.isfinite(hold).any():
        x, y = minmax_downsample(ts, hold, buckets, keep)
        fig.add_trace(go.Scatter(x=ms_axis(x), y=y, name="buy and hold (1x, benchmark)",
                                 mode="lines", line={"color": "#a3a3a3", "width": 1.2}),
                      row=1, col=1)
    if keep.size:
        fig.add_trace(go.Scatter(x=ms_axis(ts[keep]), y=equity[keep], name="liquidation",
                                 mode="markers", hovertext=_liquidation_hover(run),
                                 hoverinfo="text+x",
                                 marker={"symbol": "x", "size": 12, "color": COLORS["liquidation"]}),
                      row=1, col=1)
    dd = drawdown_series(equity, run.initial_balance) * 100.0
    x, y = minmax_downsample(ts, dd, buckets, keep)
    fig.add_trace(go.Scatter(x=ms_axis(x), y=y, name="underwater (drawdown %)", mode="lines",
                             fill="tozeroy",
                             line={"color": COLORS["drawdown"], "width": 1},
                             fillcolor="rgba(225,29,72,0.15)"), row=2, col=1)
    fig.update_layout(**{k: v for k, v in base_layout(height=520).items()
                         if k not in ("xaxis", "yaxis")})
    _style_axes(fig, 2)
    fig.update_yaxes(title_text=f"equity ({run.margin_asset})", row=1, col=1)
    fig.update_yaxes(title_text="drawdown from peak (%)", row=2, col=1)
    fig.update_xaxes(title_text=TIME_AXIS_TITLE, row=2, col=1)
    return fig


def margin_figure(run: RunData, *, buckets: int = DEFAULT_BUCKETS) -> Any:
    """Margin ratio (1 liquidates) and distance to liquidation in percent of mark."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ts = run.ts_ms("equity")
    keep = liquidation_bar_indices(run)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    ratios = _floats(run.equity, "margin_ratio")
    x, y = minmax_downsample(ts, ratios, buckets, keep)
    # the run's worst ratio (a liquidation trigger lies between bar closes): the same figure
    # as the report card, drawn on the line so that it reaches the liquidation line
    worst, worst_ts = run_worst_margin_ratio(run.summary, ratios, ts)
    if worst is not None and worst_ts is not None:
        finite = y[np.isfinite(y)] if len(y) else y
        shown = worst if math.isfinite(worst) else max(2.0, float(finite.max()) if len(finite) else 2.0)
        at = int(np.searchsorted(x, worst_ts))
        x = np.insert(np.asarray(x, dtype=np.int64), at, int(worst_ts))
        y = np.insert(np.asarray(y, dtype=np.float64), at, shown)
        fig.add_trace(go.Scatter(
            x=ms_axis(np.asarray([worst_ts], dtype=np.int64)), y=[shown], mode="markers",
            name="worst margin ratio", marker={"color": COLORS["liquidation"], "size": 8},
            hovertext=[f"worst margin ratio {worst:.3f}" if math.isfinite(worst)
                       else "margin balance gone (ratio unbounded)"], hoverinfo="text+x"),
            row=1, col=1)
    fig.add_trace(go.Scatter(x=ms_axis(x), y=y, name="margin ratio", mode="lines",
                             line={"color": COLORS["margin"], "width": 1.3}), row=1, col=1)
    fig.add_hline(y=1.0, line={"color": COLORS["liquidation"], "dash": "dash", "width": 1},
                  annotation_text="liquidation (ratio 1)", annotation_position="top left",
                  row=1, col=1)
    dist = _floats(run.equity, "distance_to_liquidation") * 100.0
    x, y = minmax_downsample(ts, dist, buckets, keep)
    fig.add_trace(go.Scatter(x=ms_axis(x), y=y, name="distance to liquidation %", mode="lines",
                             connectgaps=False, fill="tozeroy", fillcolor="rgba(13,148,136,0.12)",
                             line={"color": COLORS["distance"], "width": 1.2}), row=2, col=1)
    fig.update_layout(**{k: v for k, v in base_layout(height=440).items()
                         if k not in ("xaxis", "yaxis")})
    _style_axes(fig, 2)
    fig.update_yaxes(title_text="margin ratio (x, MM / margin balance)", row=1, col=1)
    fig.update_yaxes(title_text="distance to liq. (% of mark)", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(title_text=TIME_AXIS_TITLE, row=2, col=1)
    return fig


ATTRIBUTION_KEYS = ("price_move", "fees", "funding", "slippage", "liquidation_penalty")

ATTRIBUTION_LABELS = {
    "price_move": "price move",
    "fees": "fees",
    "funding": "funding",
    "slippage": "slippage",
    "liquidation_penalty": "liquidation<br>penalty",
    "bad_debt_covered": "bad debt absorbed<br>by insurance fund",
}
"""Bar labels of the attribution waterfall."""


def attribution_steps(attribution: dict[str, float], bad_debt: float) -> list[tuple[str, float]]:
    """The waterfall steps: the summary's parts with the insurance-fund-covered bad debt split
    out of ``liquidation_penalty``.

    The engine's ``liquidation_penalty`` is the account's change minus the position's PnL at
    the liquidation fill (``backtest/liquidation.py``): the clearance fee and worse-than-mark
    fill make it negative, while a loss past the bankruptcy price that the insurance fund
    absorbed (``bad_debt``) makes it positive. That positive part is not a gain of the
    strategy; it is shown as its own step, named for what it is.
    """
    steps = [(k, float(attribution.get(k, 0.0))) for k in ATTRIBUTION_KEYS]
    covered = float(bad_debt or 0.0)
    if covered > 0:
        steps = [(k, v - covered) if k == "liquidation_penalty" else (k, v) for k, v in steps]
        steps.append(("bad_debt_covered", covered))
    return steps


def attribution_figure(initial: float, attribution: dict[str, float], *, bad_debt: float = 0.0,
                       unit: str = "USDT") -> Any:
    """Waterfall from the initial balance through each PnL source to the final equity.

    Gains are green, costs red, and bad debt the insurance fund absorbed amber (a loss the
    account did not have to pay, never a green gain). Drawn as bars on a base so each step
    has its own colour.
    """
    import plotly.graph_objects as go

    steps = attribution_steps(attribution, bad_debt)
    labels = ["initial balance", *[ATTRIBUTION_LABELS[k] for k, _ in steps], "final equity"]
    plain = [label.replace("<br>", " ") for label in labels]
    final = initial + sum(v for _, v in steps)
    bases, heights, colors, text = [0.0], [initial], [COLORS["equity"]], [fmt_money(initial)]
    level = initial
    for key, value in steps:
        bases.append(min(level, level + value))
        heights.append(abs(value))
        colors.append("#d97706" if key == "bad_debt_covered"
                      else "#16a34a" if value > 0 else "#dc2626" if value < 0 else "#94a3b8")
        text.append(fmt_money(value, signed=True))
        level += value
    bases.append(0.0)
    heights.append(final)
    colors.append(COLORS["equity"])
    text.append(fmt_money(final))
    fig = go.Figure(go.Bar(x=labels, y=heights, base=bases, marker={"color": colors},
                           text=text, textposition="outside", cliponaxis=False,
                           hovertext=[f"{lab}: {t} {unit}" for lab, t in zip(plain, text)],
                           hoverinfo="text", name="PnL attribution"))
    layout = base_layout(height=400)
    layout["xaxis"] = {"type": "category", "gridcolor": COLORS["grid"], "tickangle": 0,
                       "automargin": True, "title": {"text": "PnL source", "standoff": 12}}
    layout["yaxis"]["title"] = {"text": f"equity ({unit})"}
    layout["hovermode"] = "closest"
    layout["showlegend"] = False
    fig.update_layout(**layout)
    return fig


def funding_figure(run: RunData) -> Any:
    """Funding payments per settlement (bars, + received) and their running sum (line)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ts = ms_axis(run.ts_ms("funding"))
    pay = _floats(run.funding, "payment")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=ts, y=pay, name="payment",
                         marker={"color": np.where(pay >= 0, COLORS["funding_pos"],
                                                   COLORS["funding_neg"]).tolist(),
                                 "line": {"width": 0}}), secondary_y=False)
    fig.add_trace(go.Scatter(x=ts, y=np.nancumsum(pay), name="cumulative", mode="lines",
                             line={"color": COLORS["equity"], "width": 1.5}), secondary_y=True)
    fig.update_layout(**{k: v for k, v in base_layout(height=320).items()
                         if k not in ("xaxis", "yaxis")}, bargap=0)
    fig.update_xaxes(type="date", gridcolor=COLORS["grid"])
    unit = run.margin_asset
    fig.update_xaxes(title_text=TIME_AXIS_TITLE)
    fig.update_yaxes(title_text=f"payment ({unit}, + received)", gridcolor=COLORS["grid"],
                     secondary_y=False)
    fig.update_yaxes(title_text=f"cumulative ({unit})", showgrid=False, secondary_y=True)
    return fig


def comparison_equity_figure(runs: Sequence[RunData], *, buckets: int = 1_000) -> Any:
    """Equity curves of several runs overlaid, liquidations marked red."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, run in enumerate(runs):
        color = series_color(i, len(runs))
        ts = run.ts_ms("equity")
        keep = liquidation_bar_indices(run)
        equity = _floats(run.equity, "equity")
        x, y = minmax_downsample(ts, equity, buckets, keep)
        fig.add_trace(go.Scatter(x=ms_axis(x), y=y, mode="lines", name=esc(run.name),
                                 legendgroup=str(i), line={"color": color, "width": 1.4}))
        if keep.size:
            fig.add_trace(go.Scatter(x=ms_axis(ts[keep]), y=equity[keep], mode="markers",
                                     name=f"{esc(run.name)} liquidation", legendgroup=str(i),
                                     showlegend=False, hovertext=_liquidation_hover(run),
                                     hoverinfo="text+x",
                                     # the run's own colour: which run was liquidated is visible
                                     marker={"symbol": "x", "size": 12, "color": color,
                                             "line": {"width": 1.5, "color": "#111827"}}))
    layout = base_layout(height=480)
    layout["xaxis"]["title"] = {"text": TIME_AXIS_TITLE}
    unit = runs[0].margin_asset if runs else "USDT"
    layout["yaxis"]["title"] = {"text": f"equity ({unit})"}
    fig.update_layout(**layout)
    return fig
