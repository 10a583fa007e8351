"""Comparison report of several runs (a sweep, a leverage ladder, any set of run dirs)."""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from reports import charts
from reports.html import (
    PlotlyJsMode,
    Section,
    esc,
    figure_html,
    fmt_drawdown,
    fmt_leverage,
    fmt_money,
    fmt_pct,
    fmt_ts,
    render_page,
    series_color,
    table_html,
)
from reports.metrics import MS_PER_DAY, HeadlineMetrics
from reports.rundir import RunData, RunDirError, is_run_dir, load_run
from reports.sections import compute_metrics
from reports.single import write_html


def _natural_key(path: Path) -> list[Any]:
    """Sort ``run-2x`` before ``run-10x``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def expand_run_dirs(paths: Sequence[Path]) -> list[Path]:
    """Resolve the arguments of a comparison into run directories.

    A path that is a run directory is taken as is; a directory that is not one but holds run
    directories (a sweep's output) contributes its run sub-directories, in natural name order
    (``x-2`` before ``x-10``).

    Raises
    ------
    reports.rundir.RunDirError
        When a path is neither a run directory nor a folder of run directories.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if is_run_dir(path):
            found.append(path)
            continue
        children = (sorted((p for p in path.iterdir() if p.is_dir() and is_run_dir(p)), key=_natural_key)
                    if path.is_dir() else [])
        if not children:
            raise RunDirError(
                f"{path}: expected a run directory (manifest.json + equity.parquet) or a sweep "
                f"directory holding run directories, found neither; pass the --out folder of "
                f"`margincall run` or `margincall risk sweep`"
            )
        found.extend(children)
    return found


def _leverage(run: RunData) -> float | None:
    value = run.config.get("leverage")
    if isinstance(value, (int, float)):
        return float(value)
    if run.positions.height:
        return float(run.positions.get_column("leverage")[0])
    return None


def _ladder_key(run: RunData) -> str:
    """What must be equal for runs to be rungs of one leverage ladder (all but leverage)."""
    strategy = run.manifest.get("strategy") if isinstance(run.manifest.get("strategy"), dict) else {}
    config = {k: v for k, v in run.config.items() if k not in ("leverage", "name", "out", "tags")}
    data = [d.get("sha256") for d in run.manifest.get("data") or [] if isinstance(d, dict)]
    return json.dumps([strategy.get("name"), strategy.get("params"), config, data],
                      sort_keys=True, default=str)


def leverage_ladders(runs: Sequence[RunData]) -> list[list[RunData]]:
    """Groups of >= 2 runs identical but for leverage, each sorted by leverage."""
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        if _leverage(run) is not None:
            groups.setdefault(_ladder_key(run), []).append(run)
    ladders = []
    for members in groups.values():
        if len({_leverage(r) for r in members}) >= 2:
            ladders.append(sorted(members, key=lambda r: (_leverage(r), r.name)))
    return ladders


def effective_leverage(run: RunData) -> tuple[float | None, float | None]:
    """Median and maximum effective leverage of a run's trades: entry notional / equity at entry.

    The notional is ``qty * entry_price`` of each round trip (``trades.parquet``); the equity
    is the account's equity at the last bar close at or before the entry (the initial
    balance before the first bar). ``(None, None)`` without trades. Unlike the configured
    leverage (the margin a position posts), this says how large the positions were for the
    whole account.
    """
    trades = run.trades
    if trades.height == 0:
        return None, None
    ts = run.ts_ms("equity")
    equity = run.equity.get_column("equity").cast(pl.Float64).to_numpy()
    entry = trades.get_column("entry_ts").dt.epoch("ms").to_numpy()
    pos = np.searchsorted(ts, entry, side="right") - 1
    base = np.where(pos >= 0, equity[np.clip(pos, 0, None)], run.initial_balance)
    notional = (trades.get_column("qty").cast(pl.Float64).abs()
                * trades.get_column("entry_price").cast(pl.Float64)).to_numpy()
    ok = np.isfinite(notional) & (base > 0)
    if not ok.any():
        return None, None
    values = notional[ok] / base[ok]
    return float(np.median(values)), float(values.max())


def _runs_table(runs: Sequence[RunData], metrics: Sequence[HeadlineMetrics]) -> pl.DataFrame:
    effective = [effective_leverage(r) for r in runs]
    return pl.DataFrame({
        "run": [r.name for r in runs],
        "strategy": [r.strategy_name for r in runs],
        "leverage": [_leverage(r) for r in runs],
        "effective leverage (median)": [e[0] for e in effective],
        "effective leverage (max)": [e[1] for e in effective],
        "total return": [m.total_return for m in metrics],
        "max drawdown": [m.max_drawdown.depth for m in metrics],
        "liquidations": [m.n_liquidations for m in metrics],
        "first liquidation (UTC)": [fmt_ts(m.first_liquidation_ts) for m in metrics],
        "liquidation loss": [m.liquidation_loss for m in metrics],
        "bad debt": [m.bad_debt for m in metrics],
        "fees": [m.fees for m in metrics],
        "funding (net received)": [m.funding_received - m.funding_paid for m in metrics],
        "final equity": [m.final_equity for m in metrics],
    }, schema={"run": pl.String, "strategy": pl.String, "leverage": pl.Float64,
               "effective leverage (median)": pl.Float64, "effective leverage (max)": pl.Float64,
               "total return": pl.Float64, "max drawdown": pl.Float64,
               "liquidations": pl.Int64, "first liquidation (UTC)": pl.String,
               "liquidation loss": pl.Float64, "bad debt": pl.Float64, "fees": pl.Float64,
               "funding (net received)": pl.Float64, "final equity": pl.Float64})


def _money(value: float) -> str:
    return fmt_money(value)


def _signed_money(value: float) -> str:
    return fmt_money(value, signed=True)


def _signed_pct(value: float) -> str:
    return fmt_pct(value, signed=True)


TABLE_FORMATS: dict[str, Callable[[Any], str]] = {
    "leverage": fmt_leverage,
    "effective leverage (median)": lambda v: f"{v:.2f}x",
    "effective leverage (max)": lambda v: f"{v:.2f}x",
    "total return": _signed_pct,
    "max drawdown": fmt_drawdown,
    "liquidation loss": _money,
    "bad debt": _money,
    "fees": _money,
    "funding (net received)": _signed_money,
    "final equity": _money,
    "days to first liquidation": lambda v: f"{v:,.1f}",
}
"""How the comparison tables print their columns (backtest.formatting; sort stays numeric)."""


def _swatches(runs: Sequence[RunData]) -> str:
    items = "".join(
        f'<span class="swatch"><i style="background:{series_color(i, len(runs))}"></i>'
        f"{esc(r.name)}</span>" for i, r in enumerate(runs))
    return f'<div class="swatches" id="run-colours">{items}</div>'


def survival_table(ladder: Sequence[RunData], metrics: dict[str, HeadlineMetrics]) -> pl.DataFrame:
    """One row per rung: leverage, survived, first liquidation and how long it took."""
    rows: dict[str, list[Any]] = {k: [] for k in (
        "leverage", "survived", "first liquidation (UTC)", "days to first liquidation",
        "liquidations", "liquidation loss", "bad debt", "total return", "max drawdown", "run")}
    for run in ladder:
        m = metrics[run.name]
        rows["leverage"].append(_leverage(run))
        rows["survived"].append("yes" if m.n_liquidations == 0 else "no")
        rows["first liquidation (UTC)"].append(fmt_ts(m.first_liquidation_ts))
        rows["days to first liquidation"].append(
            None if m.first_liquidation_ts is None
            else (m.first_liquidation_ts - m.start_ts) / MS_PER_DAY)
        rows["liquidations"].append(m.n_liquidations)
        rows["liquidation loss"].append(m.liquidation_loss)
        rows["bad debt"].append(m.bad_debt)
        rows["total return"].append(m.total_return)
        rows["max drawdown"].append(m.max_drawdown.depth)
        rows["run"].append(run.name)
    return pl.DataFrame(rows, schema={
        "leverage": pl.Float64, "survived": pl.String, "first liquidation (UTC)": pl.String,
        "days to first liquidation": pl.Float64, "liquidations": pl.Int64,
        "liquidation loss": pl.Float64, "bad debt": pl.Float64, "total return": pl.Float64,
        "max drawdown": pl.Float64, "run": pl.String})


def comparison_sections(runs: Sequence[RunData]) -> list[Section]:
    """Sections of a comparison: overlaid equity, a table per run, ladder survival tables."""
    metrics = [compute_metrics(r) for r in runs]
    by_name = {r.name: m for r, m in zip(runs, metrics)}
    table = _runs_table(runs, metrics)
    sections = [
        Section("curves", "Equity curves",
                _swatches(runs)
                + figure_html(charts.comparison_equity_figure(runs), div_id="chart-comparison")
                + '<p class="note">Each run has its own colour; its liquidations are crosses in '
                  "that colour.</p>"),
        Section("runs", f"Runs ({len(runs)})",
                table_html(table, table_id="runs-table",
                           row_class=["liq" if m.n_liquidations else "" for m in metrics],
                           formats=TABLE_FORMATS,
                           caption="Money in the margin asset; drawdown is negative; effective "
                                   "leverage = position notional / account equity at entry, "
                                   "beside the configured leverage. Click a column header to "
                                   "sort.")),
    ]
    for i, ladder in enumerate(leverage_ladders(runs)):
        frame = survival_table(ladder, by_name)
        survived = sum(1 for r in ladder if by_name[r.name].n_liquidations == 0)
        head = (f'<p>{esc(ladder[0].strategy_name)} at {len(ladder)} leverage levels: '
                f'<span class="badge ok">{survived} survived</span> '
                f'<span class="badge liq">{len(ladder) - survived} liquidated</span></p>')
        classes = ["liq" if s == "no" else "" for s in frame.get_column("survived").to_list()]
        sections.append(Section(f"survival-{i + 1}", f"Leverage ladder survival — {ladder[0].strategy_name}",
                                head + table_html(frame, table_id=f"survival-table-{i + 1}",
                                                  row_class=classes, formats=TABLE_FORMATS)))
    return sections


def write_comparison(run_dirs: list[Path], *, out: Path, plotlyjs: PlotlyJsMode = "inline") -> Path:
    """Write one HTML report comparing several runs.

    Parameters
    ----------
    run_dirs : list of pathlib.Path
        Run directories, or sweep directories holding run directories.
    out : pathlib.Path
        The HTML file to write.
    plotlyjs : {"inline", "beside"}
        As for :func:`reports.write_report`.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    reports.rundir.RunDirError
        When a path is not a run or sweep directory, or two runs share a directory name.
    """
    paths = expand_run_dirs(run_dirs)
    runs = [load_run(p) for p in paths]
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RunDirError(
            f"runs to compare must have distinct directory names, found {duplicates} more than "
            f"once; rename the run directories"
        )
    sections = comparison_sections(runs)
    title = f"Comparison of {len(runs)} runs"
    subtitle = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    page = render_page(title=title, subtitle=subtitle, sections=sections, out=Path(out),
                       plotlyjs=plotlyjs, footer="margincall report")
    return write_html(Path(out), page)
