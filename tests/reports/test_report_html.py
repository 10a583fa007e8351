"""The written HTML: offline, escaped, deterministic, complete, and small enough."""
from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from reports import Section, write_comparison, write_report
from reports.charts import liquidation_bar_indices, price_figure, equity_figure
from reports.compare import expand_run_dirs, leverage_ladders
from reports.html import plotly_js
from reports.rundir import RunDirError, load_run
from reports.sections import attribution_values, compute_metrics
from tests.reports.conftest import XSS
from tests.reports.run_fixture import reseal_run_dir, seal_run_dir


REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _page_without_plotly(page: str) -> str:
    source, _ = plotly_js()
    assert page.count(source) == 1, "plotly.js must be inlined exactly once"
    return page.replace(source, "")


def test_report_is_written_into_the_run_dir_and_offline(demo_run):
    out = write_report(demo_run.path)
    assert out == demo_run.path / "report.html"
    page = out.read_text(encoding="utf-8")
    rest = _page_without_plotly(page)
    assert not REMOTE.search(rest), REMOTE.findall(rest)
    for anchor in ("headline", "manifest", "price", "equity", "margin", "attribution",
                   "liquidations", "trades", "funding", "rejections", "trade-stats", "monthly",
                   "drawdowns"):
        assert f'id="{anchor}"' in page
    assert page.count('class="plotly-figure"') == 6


def test_liquidation_table_has_every_row_and_column(demo_run):
    page = write_report(demo_run.path).read_text(encoding="utf-8")
    table = re.search(r'<table id="liquidations-table".*?</table>', page, re.S).group(0)
    assert table.count('<tr class="liq">') == len(demo_run.liquidation_ts) == 2
    for column in load_run(demo_run.path).liquidations.columns:
        assert f">{column}</th>" in table


def test_manifest_section_shows_versions_checksums_and_warnings(demo_run):
    page = write_report(demo_run.path).read_text(encoding="utf-8")
    run = load_run(demo_run.path)
    sha = run.manifest["data"][0]["sha256"]
    for text in (sha, "risk_tiers", "2024-01-01", "worst_case", "isolated", "sqrt",
                 "gap of 3 bars before 2024-02-01 00:00 UTC filled forward", "param fast"):
        assert text in page, text


def test_same_inputs_give_identical_bytes(demo_run, tmp_path):
    a = write_report(demo_run.path, out=tmp_path / "a.html").read_bytes()
    b = write_report(demo_run.path, out=tmp_path / "b.html").read_bytes()
    assert a == b


def test_hostile_text_is_escaped(hostile_run, tmp_path):
    page = write_report(hostile_run.path, out=tmp_path / "r.html").read_text(encoding="utf-8")
    rest = _page_without_plotly(page)
    assert XSS not in rest
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rest
    assert "<img src=x" not in rest and "alert(3)</script>" not in rest
    assert "<!--" not in page
    assert "gap &amp; &lt;b&gt;bold&lt;/b&gt;" in rest


def test_attribution_falls_back_to_the_tables_and_sums_to_the_pnl(hostile_run, demo_run):
    for fixture, source in ((hostile_run, "derived"), (demo_run, "manifest")):
        run = load_run(fixture.path)
        m = compute_metrics(run)
        values, origin = attribution_values(run, m)
        assert origin.startswith(source)
        assert sum(values.values()) == pytest.approx(m.final_equity - m.initial_balance)


def test_metrics_match_the_tables_written(demo_run):
    m = compute_metrics(load_run(demo_run.path))
    s = demo_run.summary
    assert m.n_liquidations == s["n_liquidations"] == 2
    assert m.fees == pytest.approx(s["fees"]) and m.slippage_cost == pytest.approx(s["slippage_cost"])
    assert m.funding_paid == pytest.approx(s["funding_paid"])
    assert m.bad_debt == pytest.approx(s["bad_debt"])
    assert m.worst_margin_ratio == pytest.approx(s["worst_margin_ratio"])
    assert m.final_equity == pytest.approx(s["final_equity"])


def test_extra_sections_are_appended(demo_run, tmp_path):
    extra = Section("risk-fan", "Fan chart", "<p>fan</p>")
    page = write_report(demo_run.path, out=tmp_path / "r.html",
                        extra_sections=[extra]).read_text(encoding="utf-8")
    assert page.index('id="rejections"') < page.index('id="risk-fan"')
    assert '<a href="#risk-fan">Fan chart</a>' in page


def test_beside_mode_writes_plotly_once_next_to_the_report(demo_run, tmp_path):
    out = write_report(demo_run.path, out=tmp_path / "r.html", plotlyjs="beside")
    source, version = plotly_js()
    beside = tmp_path / f"plotly-{version}.min.js"
    assert beside.read_text(encoding="utf-8") == source
    page = out.read_text(encoding="utf-8")
    assert source not in page and f'<script src="plotly-{version}.min.js">' in page
    assert out.stat().st_size < 1_000_000


def test_year_of_minute_bars_keeps_extremes_and_stays_small(year_run):
    run = load_run(year_run.path)
    price = price_figure(run)
    candles = next(t for t in price.data if t.type == "candlestick")
    bars = run.bars
    assert len(candles.x) <= 2_000
    assert np.min(candles.low) == bars.get_column("low").min()
    assert np.max(candles.high) == bars.get_column("high").max()
    equity = run.equity.get_column("equity").to_numpy()
    eq_trace = equity_figure(run).data[0]
    assert len(eq_trace.y) < 13_000
    assert equity.min() in eq_trace.y and equity.max() in eq_trace.y
    kept = set(np.asarray(eq_trace.x).astype(np.int64).tolist())
    ts = run.ts_ms("equity")
    for i in liquidation_bar_indices(run):
        assert int(ts[i]) in kept
    out = write_report(year_run.path)
    assert out.stat().st_size <= 10_000_000


def test_comparison_of_a_leverage_ladder(ladder, tmp_path):
    runs = [load_run(p) for p in expand_run_dirs([ladder])]
    assert [r.name for r in runs] == ["hold-2x", "hold-5x", "hold-10x", "hold-20x", "hold-50x"]
    (group,) = leverage_ladders(runs)
    assert [r.config["leverage"] for r in group] == [2.0, 5.0, 10.0, 20.0, 50.0]
    page = write_comparison([ladder], out=tmp_path / "cmp.html").read_text(encoding="utf-8")
    table = re.search(r'<table id="survival-table-1".*?</table>', page, re.S).group(0)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    assert len(rows) == 5
    survived = [re.findall(r"<td[^>]*>(.*?)</td>", r)[1] for r in rows]
    assert survived == ["yes", "no", "no", "no", "no"]
    assert page.count('class="plotly-figure"') == 1
    assert re.search(r'<table id="runs-table".*?</table>', page, re.S).group(0).count("<tr") == 6


def test_comparison_rejects_what_is_not_a_run(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="sweep directory"):
        write_comparison([tmp_path / "empty"], out=tmp_path / "x.html")


def test_runs_of_different_strategies_are_no_ladder(demo_run, ladder):
    runs = [load_run(demo_run.path), load_run(ladder / "hold-2x")]
    assert leverage_ladders(runs) == []


def test_equity_table_with_ms_integers_is_accepted(demo_run, tmp_path):
    import shutil

    path = tmp_path / "ints"
    shutil.copytree(demo_run.path, path)
    eq = pl.read_parquet(path / "equity.parquet")
    eq.with_columns(pl.col("ts").dt.epoch("ms")).write_parquet(path / "equity.parquet")
    reseal_run_dir(path)  # a writer that wrote integer times (recorded as such in its manifest)
    assert write_report(path).is_file()


def test_minimal_run_dir_with_only_equity_and_manifest(demo_run, tmp_path):
    path = tmp_path / "flat"
    path.mkdir()
    eq = pl.read_parquet(demo_run.path / "equity.parquet").head(50).with_columns(
        equity=pl.lit(10_000.0), wallet_balance=pl.lit(10_000.0), unrealized_pnl=pl.lit(0.0),
        gross_notional=pl.lit(0.0), margin_ratio=pl.lit(0.0), position_qty=pl.lit(0.0),
        liquidation_price=pl.lit(None, pl.Float64), distance_to_liquidation=pl.lit(None, pl.Float64))
    eq.write_parquet(path / "equity.parquet")
    seal_run_dir(path, {"config": {"initial_balance": 10_000.0}})
    page = write_report(path).read_text(encoding="utf-8")
    assert "No liquidations." in page and "No trades." in page and "No rejected orders." in page
    assert page.count('class="plotly-figure"') == 5  # no funding chart (monthly returns added)
    m = compute_metrics(load_run(path))
    assert (m.total_return, m.max_drawdown.depth, m.sharpe, m.exposure) == (0.0, 0.0, None, 0.0)


def test_many_entries_and_exits_start_hidden_but_liquidations_never(demo_run, monkeypatch):
    from reports import charts

    run = load_run(demo_run.path)
    shown = {t.name: t.visible for t in charts.price_figure(run).data}
    assert shown["entry"] in (None, True) and shown["exit"] in (None, True)
    # the threshold is the only switch: with more markers than it, they start hidden
    monkeypatch.setattr(charts, "MARKERS_SHOWN_UP_TO", 1)
    traces = {t.name: t for t in charts.price_figure(run).data}
    hidden = [t for name, t in traces.items() if name.startswith(("entry (", "exit ("))]
    assert hidden and all(t.visible == "legendonly" and "click to show" in t.name for t in hidden)
    assert traces["liquidation"].visible in (None, True)
