"""``margincall venues``: every venue module listed, selectable flags, JSON, sources."""
from __future__ import annotations

import importlib
import json

import pytest
from typer.testing import CliRunner

from backtest.cli import build_app
from backtest.venues.base import VENUES
from backtest.venues.catalog import RULES_ONLY, docstring_sources, venue_catalog

ALL = sorted(VENUES) + sorted(RULES_ONLY)


def _json() -> list[dict]:
    result = CliRunner().invoke(build_app(), ["venues", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_text_lists_every_venue_with_its_status() -> None:
    result = CliRunner().invoke(build_app(), ["venues"])
    assert result.exit_code == 0, result.output
    blocks = {block.split(":", 1)[0]: block for block in result.output.split("\n\n")}
    assert sorted(blocks) == sorted(ALL)
    for name in VENUES:
        assert f"selectable with --venue {name}" in blocks[name]
    for name in RULES_ONLY:
        assert "rules only, not yet selectable" in blocks[name]
    # the data file's dated tier tables appear with their dates
    assert "tiers BTC/USDT:USDT: 2019-09-08" in blocks["binance_usdm"]


def test_json_parses_and_flags_selectable_venues() -> None:
    rows = {row["name"]: row for row in _json()}
    assert sorted(rows) == sorted(ALL)
    assert {n for n, r in rows.items() if r["selectable"]} >= {
        "binance_usdm", "binance_coinm", "bybit_linear", "bybit_inverse", "okx",
        "bitmex_inverse", "hyperliquid", "dydx_v4"}
    assert rows["binance_coinm"]["contract_types"] == ["inverse"]
    assert rows["okx"]["margin_modes"] == ["isolated", "cross"]
    assert rows["bybit_linear"]["coverage"] == ["linear/isolated", "linear/cross"]
    assert rows["bybit_inverse"]["contract_types"] == ["inverse"]
    for row in rows.values():
        assert row["contract_types"] and set(row["contract_types"]) <= {"linear", "inverse"}
        assert row["margin_modes"] and set(row["margin_modes"]) <= {"isolated", "cross"}
        assert row["sources"] and all(s.strip() for s in row["sources"]), row["name"]
        if row["selectable"]:  # an engine venue also names the sources of its formulas
            assert row["engine_rule_versions"], row["name"]


def test_dated_versions_come_from_the_modules_and_data() -> None:
    from backtest.venues.defaults import venue_data
    from backtest.venues.hyperliquid import MARGIN_TABLES

    rows = {row["name"]: row for row in _json()}
    tiers = [v for v in rows["binance_usdm"]["rule_versions"] if v["what"] == "tiers BTC/USDT:USDT"]
    assert len(tiers) == len(venue_data("binance_usdm").tiers["BTC/USDT:USDT"].versions)
    assert [v["effective_from"] for v in tiers] == sorted(v["effective_from"] for v in tiers)
    fees = [v for v in rows["binance_usdm"]["rule_versions"] if v["what"] == "fees maker/taker"]
    assert fees and all(v["source"] for v in fees)
    hyper = [v for v in rows["hyperliquid"]["rule_versions"] if v["what"].startswith("tiers ")]
    assert len(hyper) == sum(len(s.versions) for s in MARGIN_TABLES.values())
    assert rows["bitmex_inverse"]["rule_versions"][0]["effective_from"] == "2020-03-12T00:00:00Z"
    assert rows["dydx_v4"]["rule_versions"][0]["effective_from"] is None


def test_one_venue_and_an_unknown_name() -> None:
    result = CliRunner().invoke(build_app(), ["venues", "hyperliquid", "--json"])
    assert result.exit_code == 0, result.output
    assert [row["name"] for row in json.loads(result.output)] == ["hyperliquid"]
    result = CliRunner().invoke(build_app(), ["venues", "bybitt"])
    assert result.exit_code == 2
    assert "venue 'bybitt'" in result.output and "did you mean 'bybit_linear'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("entry", venue_catalog(), ids=lambda e: e.info.name)
def test_every_module_docstring_yields_its_citations(entry) -> None:
    # each citation is one entry: a bullet's continuation lines are joined, none is split off
    assert entry.sources
    assert all(not s.startswith(("*", " ")) for s in entry.sources)
    # a venue is named after its module, or listed in its module's VENUE_INFOS (bybit: two)
    module = importlib.import_module(entry.module)
    assert entry.info.name in (getattr(module, "VENUE_INFOS", None) or {entry.module.rsplit(".", 1)[1]})


def test_docstring_sources_forms() -> None:
    doc = ("Title.\n\nSources (repo @ abc unless noted):\n\n* [A] first\n  continued\n"
           "* [B] second\n\nUnits: not a source.\n")
    assert docstring_sources(doc) == ("repo @ abc unless noted", "[A] first continued", "[B] second")
    assert docstring_sources("Title.\n\nSources: one, two\nand three.\n\nUnits: x") == (
        "one, two and three.",)
    assert docstring_sources("Title without sources.") == ()
