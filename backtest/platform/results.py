"""Tables, distributions and recommendations of a platform run, and its folder.

Tables (money in quote currency):

``scenarios``          one row per scenario (figures of :mod:`backtest.platform.run`)
``scenario_symbols``   scenario_id, symbol, exogenous_low, last_low, sigma_1s,
                       min_depth_multiplier, liquidated_value, open_interest
``distributions``      metric, mean, p95, p99, es95, es99, max (:mod:`backtest.platform.distribution`)
``brackets``           symbol, bracket, notional_floor, notional_cap, max_leverage,
                       maint_margin_rate, maint_amount, current_maint_margin_rate (the
                       recommended table in Binance's format beside the venue's own rate)
``recommendations``    symbol, item, value, unit, note (position cap, OI cap, fund size, ...)

The folder (``write``) holds each table as Parquet, ``results.duckdb`` with one view per
table and ``manifest.json`` (config, scenarios, seed, data partitions with checksums, rule
versions, packages), written whole or not at all (``backtest.runfolder``).
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from backtest.platform.distribution import percentile, tail_summary

__all__ = ["METRICS", "PlatformResult"]

#: Per-scenario figures whose distribution is reported.
METRICS = ("bad_debt", "fund_drawdown", "fund_needed", "adl", "adl_notional", "liquidated_value", "fee_revenue",
           "liquidation_loss")


class PlatformResult:
    """Tables and summary of a platform run; :meth:`recommend` adds brackets and caps."""

    def __init__(self, tables: dict[str, pl.DataFrame], summary: dict[str, Any], manifest: dict[str, Any]) -> None:
        self.tables = tables
        self.summary = summary
        self.manifest = manifest

    @classmethod
    def build(cls, rows, symbol_rows, population, venue, scenarios, setup, timing) -> PlatformResult:  # noqa: ANN001, PLR0913
        """Tables and summary from the per-scenario rows (in scenario order)."""
        runs = pl.DataFrame(rows, infer_schema_length=None).sort("scenario_id")
        per_symbol = pl.DataFrame(symbol_rows, infer_schema_length=None).sort("scenario_id", "symbol")
        dist = pl.DataFrame([{"metric": m, **tail_summary(runs[m].cast(pl.Float64).to_numpy())} for m in METRICS])
        summary = {"scenarios": runs.height, "positions": len(population),
                   "adl_probability": float(runs["adl"].mean()),
                   "bad_debt_probability": float((runs["bad_debt"] > 0).mean()),
                   "runaway_scenarios": int(runs["runaway"].sum()),
                   "max_relative_residual": float((runs["conservation_residual"].abs()
                                                   / runs["liquidation_loss"].abs().clip(lower_bound=1.0)).max()),
                   "timing": timing}
        manifest = {"kind": "platform", "venue": venue.describe(),
                    "population": {"positions": len(population), "symbols": population.symbols(),
                                   "open_interest_at_entry": float((population.qty * population.entry).sum())},
                    "setup": {"start_prices": setup.start_prices, "seconds": setup.seconds,
                              "start_ms": setup.start_ms, "step_s": setup.step_s,
                              "model": None if setup.model is None else setup.model.describe()},
                    "scenarios": [{"scenario_id": s.scenario_id, "kind": s.kind, "name": s.name,
                                   "depth_scale": s.depth_scale, "drop": s.drop, "seed": s.seed} for s in scenarios]}
        tables = {"scenarios": runs, "scenario_symbols": per_symbol, "distributions": dist}
        return cls(tables, summary, manifest)

    # ---- recommendations -----------------------------------------------------------------
    def recommend(self, venue, setup, *, confidence: float = 0.99, adl_probability: float = 0.01,  # noqa: ANN001
                  max_mmr: float = 0.5) -> None:
        """Add the ``brackets`` and ``recommendations`` tables (see :mod:`backtest.platform.recommend`)."""
        from backtest.platform.recommend import check_targets, fund_size, oi_cap, recommend_brackets

        check_targets(confidence, adl_probability, max_mmr)

        runs, per_symbol = self.tables["scenarios"], self.tables["scenario_symbols"]
        brackets, items = [], []
        total_oi = float(per_symbol.group_by("symbol").agg(pl.col("open_interest").first())["open_interest"].sum())
        for symbol in sorted(per_symbol["symbol"].unique().to_list()):
            loss = self.stressed_loss(symbol, venue, setup, confidence=confidence)
            current = venue.tier_table(symbol, setup.start_ms)
            table = recommend_brackets([t.floor for t in current.tiers], loss, max_mmr=max_mmr,
                                       label=f"recommended {symbol}")
            for k, tier in enumerate(table.tiers):
                brackets.append({"symbol": symbol, "bracket": k + 1, "notional_floor": tier.floor,
                                 "notional_cap": tier.cap, "max_leverage": tier.max_leverage,
                                 "maint_margin_rate": tier.mmr, "maint_amount": tier.cum,
                                 "current_maint_margin_rate": current.tiers[k].mmr,
                                 "stressed_loss_rate_at_cap": loss.rate(tier.cap)})
            rows = per_symbol.filter(pl.col("symbol") == symbol)
            oi = float(rows["open_interest"][0])
            share = percentile((rows["liquidated_value"] / rows["open_interest"]).to_numpy(), confidence)
            items += [
                (symbol, "stressed_depth_multiplier", loss.multiplier, "", f"{1 - confidence:.0%} quantile of the lowest multiplier"),
                (symbol, "stressed_sigma_1s", loss.sigma_1s, "1/sqrt(s)", f"{confidence:.0%} quantile over scenarios"),
                (symbol, "position_cap", table.tiers[-1].cap, "quote",
                 f"largest notional the brackets cover within max_mmr {max_mmr:g}"),
                (symbol, "open_interest", oi, "quote", "population at the start price"),
                (symbol, "liquidated_share", share, "", f"{confidence:.0%} quantile of liquidated / OI"),
                (symbol, "open_interest_cap", oi_cap(loss, share, venue.insurance_fund * oi / max(total_oi, 1e-9),
                                                      current.tiers[0].mmr), "quote",
                 "largest OI whose stressed liquidated share stays within its share of the fund")]
        need = runs["fund_needed"].to_numpy()
        items += [("all", "insurance_fund_current", venue.insurance_fund, "quote", "venue parameter"),
                  ("all", "adl_probability_current", float(runs["adl"].mean()), "", "share of scenarios with ADL"),
                  ("all", "insurance_fund_recommended", fund_size(need, adl_probability), "quote",
                   f"{1 - adl_probability:.0%} quantile of fund_needed (target P(ADL) {adl_probability:g})"),
                  ("all", "adl_probability_at_recommended", float((need > fund_size(need, adl_probability)).mean()), "",
                   "share of scenarios whose need exceeds it")]
        self.tables["brackets"] = pl.DataFrame(brackets)
        self.tables["recommendations"] = pl.DataFrame(
            [dict(zip(("symbol", "item", "value", "unit", "note"), (s, i, float(v), u, n))) for s, i, v, u, n in items])
        self.summary["recommendation"] = {"confidence": confidence, "adl_probability": adl_probability,
                                          "max_mmr": max_mmr}

    def stressed_loss(self, symbol: str, venue, setup, *, confidence: float):  # noqa: ANN001, ANN201
        """The :class:`StressedLoss` of ``symbol`` from this run's scenarios."""
        from backtest.cascade.liquidity import default_liquidity
        from backtest.platform.recommend import StressedLoss

        rows = self.tables["scenario_symbols"].filter(pl.col("symbol") == symbol)
        m = percentile(rows["min_depth_multiplier"].to_numpy(), 1.0 - confidence)
        sigma = percentile(rows["sigma_1s"].to_numpy(), confidence)
        return StressedLoss(default_liquidity(symbol), min(1.0, max(m, 1e-6)), venue.liquidation_fee, sigma,
                            confidence, setup.step_s, venue.disposal_cap)

    # ---- writing -------------------------------------------------------------------------
    def write(self, out_dir: str | Path, *, overwrite: bool = False, extra: dict[str, Any] | None = None) -> Path:
        """Write the tables, ``results.duckdb`` (a view per table) and ``manifest.json`` atomically."""
        from backtest.results import _jsonable, package_versions
        from backtest.runfolder import write_run_folder

        target = Path(os.path.abspath(Path(out_dir).expanduser()))
        manifest = dict(self.manifest) | (extra or {})
        manifest["summary"] = self.summary
        manifest["packages"] = package_versions()
        manifest["rule_versions"] = _rule_versions(manifest["venue"]["venue"])
        manifest["created_at"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        return write_run_folder(target, lambda tmp: self._write_tables(tmp, target), _jsonable(manifest),
                                overwrite=overwrite)

    def _write_tables(self, tmp: Path, final: Path) -> dict[str, dict[str, Any]]:
        from backtest.runfolder import write_tables

        return write_tables(tmp, self.tables, final=final)


def _rule_versions(rule_set: str) -> dict[str, Any]:
    """The venue's rule versions (backtest.venues registry) behind the cascade rule set."""
    from backtest.cascade.venue import venue_rules

    exchange = venue_rules(rule_set).tier_exchange
    try:
        from backtest.venues.base import get_venue

        return {"rule_set": rule_set, "exchange": exchange, **get_venue(exchange).describe()}
    except Exception:  # noqa: BLE001 - a rule set without a registered venue still records its name
        return {"rule_set": rule_set, "exchange": exchange}

