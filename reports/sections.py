"""The sections of a single-run report, each a function returning a :class:`Section`.

A report is a plain list of sections built per report (no registry): :func:`run_sections`
returns the default list, and callers (the risk lab's fan chart, heatmaps ...) append their
own ``Section(id, title, body)`` built with :mod:`reports.html` helpers
(``figure_html``, ``table_html``, ``kv_table_html``, ``esc``) before rendering.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from reports import charts
from reports.html import (
    Section,
    esc,
    figure_html,
    fmt_drawdown,
    fmt_money,
    fmt_num,
    fmt_pct,
    fmt_ts,
    kv_table_html,
    table_html,
)
from reports.metrics import HeadlineMetrics, headline_metrics
from reports.rundir import RunData
from reports.stats_sections import (
    drawdown_periods_section,
    monthly_returns_section,
    trade_stats_section,
)

MAX_TABLE_ROWS = 2_000
"""Rows shown of long tables (trades, rejections); liquidations are always shown in full."""


def compute_metrics(run: RunData) -> HeadlineMetrics:
    """Headline metrics of a run from its tables."""
    return headline_metrics(run.equity, initial_balance=run.initial_balance, fills=run.fills,
                            funding=run.funding, liquidations=run.liquidations,
                            summary=run.summary)


def _card(label: str, value: str, detail: str = "", tone: str = "") -> str:
    cls = f"metric {tone}".strip()
    extra = f'<div class="detail">{esc(detail)}</div>' if detail else ""
    return (f'<div class="{cls}"><div class="label">{esc(label)}</div>'
            f'<div class="value">{esc(value)}</div>{extra}</div>')


def _tone(value: float | None) -> str:
    if value is None:
        return ""
    return "good" if value > 0 else "bad" if value < 0 else ""


def headline_section(run: RunData, m: HeadlineMetrics) -> Section:
    """Headline metric cards (return, risk ratios, drawdown, liquidations, costs)."""
    dd = m.max_drawdown
    dd_detail = (f"{fmt_ts(dd.peak_ts)} → {fmt_ts(dd.trough_ts)}"
                 + ("" if dd.recovery_ts is None else f", recovered {fmt_ts(dd.recovery_ts)}")
                 if dd.depth > 0 else "no drawdown")
    ratio = "—" if m.worst_margin_ratio is None else f"{m.worst_margin_ratio:.3f}x"
    unit = run.margin_asset
    cards = [
        _card("Total return", fmt_pct(m.total_return, signed=True),
              f"{fmt_money(m.initial_balance)} → {fmt_money(m.final_equity, unit=unit)}",
              _tone(m.total_return)),
        _card("CAGR", fmt_pct(m.cagr, signed=True), "365-day years", _tone(m.cagr)),
        _card("Volatility", fmt_pct(m.volatility), "annualized"),
        _card("Sharpe", fmt_num(m.sharpe, 2), "rf = 0, 365-day years"),
        _card("Sortino", fmt_num(m.sortino, 2), "target 0"),
        _card("Max drawdown", fmt_drawdown(dd.depth), dd_detail, "bad" if dd.depth > 0.5 else ""),
        _card("Calmar", fmt_num(m.calmar, 2), "CAGR / max drawdown"),
        _card("Exposure", fmt_pct(m.exposure, digits=1), "bars with a position"),
        _card("Liquidations", f"{m.n_liquidations}",
              f"margin lost {fmt_money(m.liquidation_loss, unit=unit)}" + (
                  f", first {fmt_ts(m.first_liquidation_ts)}" if m.first_liquidation_ts else ""),
              "bad" if m.n_liquidations else ""),
        _card("Fees", fmt_money(m.fees, unit=unit), "trading and liquidation fees"),
        _card("Funding", fmt_money(m.funding_received - m.funding_paid, signed=True, unit=unit),
              f"paid {fmt_money(m.funding_paid)} · received {fmt_money(m.funding_received)}"),
        _card("Slippage cost", fmt_money(m.slippage_cost, unit=unit)),
        _card("Bad debt", fmt_money(m.bad_debt, unit=unit),
              "loss past bankruptcy, absorbed by the insurance fund",
              "bad" if m.bad_debt > 0 else ""),
        _card("Worst margin ratio", ratio,
              f"at {fmt_ts(m.worst_margin_ratio_ts)}" if m.worst_margin_ratio_ts else "never in a position",
              "bad" if (m.worst_margin_ratio or 0) >= 1 else ""),
    ]
    body = f'<div class="cards" id="headline-cards">{"".join(cards)}</div>'
    return Section("headline", "Headline metrics", body)


def _config_value(config: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in config:
            return config[key]
    return None


def manifest_section(run: RunData) -> Section:
    """Run manifest: venue and rule versions, margin settings, strategy, seed, data, warnings."""
    man = run.manifest
    config = run.config
    venue = man.get("venue") if isinstance(man.get("venue"), dict) else {}
    strategy = man.get("strategy") if isinstance(man.get("strategy"), dict) else {}
    params = strategy.get("params") if isinstance(strategy.get("params"), dict) else {}
    rows: list[tuple[str, Any]] = [
        ("run", run.name),
        ("strategy", strategy.get("name")),
        *[(f"  param {k}", v) for k, v in sorted(params.items())],
        ("venue", venue.get("name", _config_value(config, "venue"))),
        *[(f"  rule version {k}", v) for k, v in sorted((venue.get("rule_versions") or {}).items())],
        *([("price source", man["price_source"].get("text"))]
          if isinstance(man.get("price_source"), dict) else []),
        ("symbol(s)", _config_value(config, "symbols", "symbol") or run.symbol),
        ("margin mode", _config_value(config, "margin_mode")),
        ("position mode", _config_value(config, "position_mode")),
        ("leverage", _config_value(config, "leverage")),
        ("initial balance", run.initial_balance),
        ("path policy", _config_value(config, "path_policy")),
        ("slippage model", _config_value(config, "slippage")),
        ("seed", man.get("seed", _config_value(config, "seed"))),
        ("created at", man.get("created_at")),
    ]
    data = man.get("data") if isinstance(man.get("data"), list) else []
    if data:
        frame = pl.DataFrame({
            "path": [str(d.get("path", "")) for d in data],
            "sha256": [str(d.get("sha256", "")) for d in data],
            "rows": [d.get("rows") if isinstance(d.get("rows"), int) else None for d in data],
            "range": [json.dumps(d.get("range"), default=str) if not isinstance(d.get("range"), str)
                      else d["range"] for d in data],
        }, schema={"path": pl.String, "sha256": pl.String, "rows": pl.Int64, "range": pl.String})
        files = table_html(frame, table_id="data-files", sortable=False)
    else:
        files = '<p class="empty">The manifest lists no data files.</p>'
    warnings = man.get("quality_warnings") or []
    if warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in warnings)
        warn = f'<ul class="warnings" id="quality-warnings">{items}</ul>'
    else:
        warn = '<p class="empty" id="quality-warnings">No data-quality warnings.</p>'
    packages = man.get("packages") if isinstance(man.get("packages"), dict) else {}
    inner = (
        f'<div class="grid2"><div>{kv_table_html(rows, table_id="manifest-table")}</div>'
        f"<div><h3>Data-quality warnings ({len(warnings)})</h3>{warn}</div></div>"
        f"<h3>Data files</h3>{files}"
        f"<details><summary>Full run configuration</summary>"
        f"{kv_table_html(sorted(config.items()), table_id='config-table')}</details>"
        f"<details><summary>Package versions</summary>"
        f"{kv_table_html(sorted(packages.items()))}</details>"
    )
    # provenance is for the auditor, not the one-minute reader: collapsed, at the page's end
    summary = (f"Hashes, rule versions, configuration and packages ({len(data)} data file(s), "
               f"{len(warnings)} data-quality warning(s))")
    body = (f'<details class="manifest" id="manifest-details"><summary>{esc(summary)}</summary>'
            f"{inner}</details>")
    return Section("manifest", "Run manifest", body)


def price_section(run: RunData) -> Section:
    """Candles (or last price), mark price, liquidation price, entries/exits, liquidations."""
    source = ("Candles from bars.parquet" if run.bars is not None and run.bars.height
              else "Last price at each bar close (no bars.parquet in the run directory)")
    note = (f'<p class="note">{esc(source)}; long series are downsampled per bucket keeping '
            f"first, last, minimum and maximum, so every extreme and liquidation stays visible."
            f"</p>")
    return Section("price", f"Price — {run.symbol}",
                   figure_html(charts.price_figure(run), div_id="chart-price") + note)


def equity_section(run: RunData) -> Section:
    """Equity, wallet balance and drawdown."""
    return Section("equity", "Equity, buy-and-hold benchmark and underwater drawdown",
                   figure_html(charts.equity_figure(run), div_id="chart-equity"))


def margin_section(run: RunData) -> Section:
    """Margin ratio and distance to liquidation over time."""
    return Section("margin", "Margin ratio and distance to liquidation",
                   figure_html(charts.margin_figure(run), div_id="chart-margin"))


def attribution_values(run: RunData, m: HeadlineMetrics) -> tuple[dict[str, float], str]:
    """PnL attribution: ``manifest.summary.attribution`` when present, else derived here.

    The derived split charges non-liquidation fees to ``fees``, liquidation fills' fees less
    the bad debt the insurance fund absorbed to ``liquidation_penalty`` (the engine's
    convention, ``backtest/metrics.py``: the account's change minus the position's PnL),
    slippage cost to ``slippage``, net funding to ``funding``, and the rest of
    ``final_equity - initial_balance`` to ``price_move``.
    """
    given = run.summary.get("attribution")
    if isinstance(given, dict) and all(k in given for k in charts.ATTRIBUTION_KEYS):
        return {k: float(given[k]) for k in charts.ATTRIBUTION_KEYS}, "manifest summary.attribution"
    fills = run.fills
    liq_fee = float(fills.filter(pl.col("reason") == "liquidation").get_column("fee").sum() or 0.0)
    other_fee = m.fees - liq_fee
    parts = {"fees": -other_fee, "funding": m.funding_received - m.funding_paid,
             "slippage": -m.slippage_cost, "liquidation_penalty": -liq_fee + m.bad_debt}
    parts["price_move"] = (m.final_equity - m.initial_balance) - sum(parts.values())
    return {k: parts[k] for k in charts.ATTRIBUTION_KEYS}, "derived from the run's tables"


def attribution_section(run: RunData, m: HeadlineMetrics) -> Section:
    """PnL attribution waterfall: price move, fees, funding, slippage, liquidation penalty."""
    values, source = attribution_values(run, m)
    covered = m.bad_debt
    note = f'<p class="note">Source: {esc(source)}.'
    if covered > 0:
        note += (f" The liquidations lost {esc(fmt_money(covered, unit=run.margin_asset))} more "
                 f"than the position's margin (past the bankruptcy price). The price move "
                 f"includes that loss; the insurance fund absorbed it (bad debt), so the account "
                 f"did not pay it. It is shown in amber as what it is, not as a gain.")
    note += "</p>"
    fig = charts.attribution_figure(m.initial_balance, values, bad_debt=covered,
                                    unit=run.margin_asset)
    return Section("attribution", "PnL attribution",
                   figure_html(fig, div_id="chart-attribution") + note)


def liquidations_section(run: RunData) -> Section:
    """Every liquidation with every column of liquidations.parquet (sortable)."""
    liq = run.liquidations
    if liq.height == 0:
        body = ('<p class="empty">No liquidations.</p>'
                + table_html(liq, table_id="liquidations-table"))
    else:
        body = table_html(liq, table_id="liquidations-table", row_class=["liq"] * liq.height,
                          caption="Click a column header to sort.")
    return Section("liquidations", f"Liquidations ({liq.height})", body)


def trades_section(run: RunData) -> Section:
    """Round trips; liquidated ones highlighted."""
    trades = run.trades
    classes = ["liq" if r == "liquidation" else "" for r in trades.get_column("exit_reason").to_list()]
    body = table_html(trades, table_id="trades-table", max_rows=MAX_TABLE_ROWS, row_class=classes)
    if trades.height == 0:
        body = '<p class="empty">No trades.</p>' + body
    return Section("trades", f"Trades ({trades.height})", body)


def funding_section(run: RunData) -> Section:
    """Funding payments over time and their running sum."""
    if run.funding.height == 0:
        return Section("funding", "Funding", '<p class="empty">No funding settlements while a '
                                              "position was open.</p>")
    return Section("funding", f"Funding ({run.funding.height} settlements)",
                   figure_html(charts.funding_figure(run), div_id="chart-funding"))


def rejections_section(run: RunData) -> Section:
    """Orders the venue rules rejected, with their reason codes."""
    rej = run.rejections
    if rej.height == 0:
        return Section("rejections", "Rejected orders", '<p class="empty">No rejected orders.</p>')
    return Section("rejections", f"Rejected orders ({rej.height})",
                   table_html(rej, table_id="rejections-table", max_rows=MAX_TABLE_ROWS))


def _optional_table(run: RunData, name: str) -> pl.DataFrame | None:
    """``<name>.parquet`` of the run directory, or None when the run did not write it."""
    path = run.path / f"{name}.parquet"
    return pl.read_parquet(path) if path.is_file() else None


def adl_section(run: RunData) -> Section | None:
    """Auto-deleveraging events (adl.parquet): every position the venue's ADL reduced.

    None when the run wrote no ADL table, or had none and asked for none (no injected
    events, no bounded insurance fund).
    """
    adl = _optional_table(run, "adl")
    if adl is None:
        return None
    asked = bool(run.config.get("adl_events")) or run.config.get("insurance_fund") is not None
    if adl.height == 0 and not asked:
        return None
    s = run.summary
    facts = {"ADL events": str(adl.height),
             "Quantity closed": fmt_num(s.get("adl_qty"), 6),
             "Notional closed": fmt_money(s.get("adl_notional")),
             "PnL realised by ADL": fmt_money(s.get("adl_realized_pnl"), signed=True),
             "First ADL": s.get("first_adl_ts") or "—"}
    body = kv_table_html(list(facts.items()))
    if adl.height == 0:
        body += '<p class="empty">No position was auto-deleveraged.</p>'
    else:
        body += table_html(adl, table_id="adl-table", max_rows=MAX_TABLE_ROWS,
                           caption="Closed at the price of the venue's rule (price_basis: the "
                                   "liquidated counterparty's bankruptcy price, or the previous "
                                   "oracle price), no fee; score = the venue's ranking (rule), "
                                   "quantile = place in the queue (the account's own positions).")
    return Section("adl", f"Auto-deleveraging ({adl.height})", body)


def insurance_fund_section(run: RunData) -> Section | None:
    """The insurance fund's balance series (insurance_fund.parquet) and its drawdown."""
    fund = _optional_table(run, "insurance_fund")
    if fund is None or fund.height <= 1:
        return None
    s = run.summary
    start = s.get("insurance_fund_start")
    facts = {"Starting balance": "unbounded (not modelled)" if start is None else fmt_money(start),
             "Ending balance": fmt_money(s.get("insurance_fund_end")),
             "Lowest balance": fmt_money(s.get("insurance_fund_min")),
             "Max drawdown": fmt_money(s.get("insurance_fund_max_drawdown")),
             "Left to ADL (uncovered)": fmt_money(s.get("insurance_fund_uncovered"))}
    body = kv_table_html(list(facts.items())) + table_html(fund, table_id="insurance-fund-table",
                                             max_rows=MAX_TABLE_ROWS)
    return Section("insurance-fund", f"Insurance fund ({fund.height - 1} bookings)", body)


def run_sections(run: RunData, metrics: HeadlineMetrics | None = None,
                 extra: Sequence[Section] = ()) -> list[Section]:
    """The default sections of a single-run report, in order, followed by ``extra``."""
    m = metrics if metrics is not None else compute_metrics(run)
    # the story first (cards, price with liquidations, margin, equity), provenance last
    return [
        headline_section(run, m),
        price_section(run),
        margin_section(run),
        equity_section(run),
        attribution_section(run, m),
        trade_stats_section(run, m),
        monthly_returns_section(run),
        drawdown_periods_section(run, m),
        liquidations_section(run),
        *[x for x in (insurance_fund_section(run), adl_section(run)) if x is not None],
        trades_section(run),
        funding_section(run),
        rejections_section(run),
        *extra,
        manifest_section(run),
    ]
