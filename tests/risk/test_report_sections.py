"""HTML fragments: plotly figures without the library, escaped text, the expected content."""
from __future__ import annotations

import polars as pl

from backtest.risk import report_sections as rs
from backtest.risk.barriers import liquidation_barriers
from backtest.risk.montecarlo import LiquidationStudy
from backtest.risk.paths import GBM


def test_sections_render_and_escape(btc_tiers):
    barriers = liquidation_barriers([5, 50], side=1, entry_price=30_000.0, margin=1_000.0, tiers=btc_tiers)
    study = LiquidationStudy.run(GBM(sigma_step=0.002, step_ms=300_000), barriers, horizon_ms=86_400_000,
                                 n_paths=1_000, seed=0)
    table = study.table([3_600_000, 86_400_000])
    fan = rs.fan_chart_section(study, leverage=50.0)
    heat = rs.liquidation_heatmap_section(table)
    surv = rs.survival_table_section(table)
    for fragment in (fan, heat):
        assert fragment.startswith("<section") and "plotly" in fragment.lower()
        assert "<script src" not in fragment and "<html" not in fragment  # no bundled plotly.js, no page
    assert surv.count("<tr>") + surv.count('<tr class="mc-bad">') == 1 + table.height
    crash = pl.DataFrame({"crash": ["<script>alert(1)</script>"], "symbol": ["BTC/USDT:USDT"], "leverage": [20.0],
                          "survived": [False], "first_liquidation": ["2020-03-12 06:09:52 UTC"], "loss": [500.0]})
    html = rs.crash_replay_table_section(crash, title="Crashes & <b>")
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "Crashes &amp; &lt;b&gt;" in html
    assert 'class="mc-bad"' in html
    sweep = pl.DataFrame({"leverage": [2.0, 2.0, 10.0, 10.0], "p_fast": [10, 20, 10, 20],
                          "total_return": [0.1, -0.1, 0.3, -0.5]})
    assert "<section" in rs.sweep_heatmap_section(sweep, x="p_fast", y="leverage")
    fits = rs.fit_table_section([GBM(sigma_step=0.002).describe()])
    assert "sigma_step" in fits
