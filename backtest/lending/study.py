"""A lending study: a population through stored price paths, as the tables ``margincall
lending`` writes.

Positions are grouped by ``(protocol, asset)``; each group runs on its asset's path:

* ``aave_v3`` through :func:`backtest.lending.simulation.simulate` on a block path
  (:func:`backtest.lending.paths.candle_path`, ``step`` seconds) with a push oracle, a pool or a
  depth curve (``venue``) and the liquidator agents of :class:`SimulationConfig`;
* ``compound_v3`` through :func:`backtest.lending.comet_simulation.simulate_comet` (absorb and
  buyCollateral at the store-front discount, reserves bearing the shortfall) on the same block
  path, oracle rule and venue as Aave;
* Aave positions with several collaterals or debts (rows sharing a ``position_id``, or a
  non-stable ``debt_asset``) through :func:`backtest.lending.multi.simulate_multi` on the paths
  of all their assets (one group, ``asset`` = the assets joined by ``+``), the seized
  collateral sold into one ``venue`` per collateral asset (same kind and depth as the
  one-asset runs);
* ``maker`` through :func:`backtest.lending.auctions.run_auctions` (OSM, Flipper or Clipper,
  keepers and a gas path) on a ``maker_step`` path.

Tables (:data:`TABLES`; money in the base currency, USD or DAI; times UTC):
``liquidations`` (Aave: bonus, slippage against the market, profit), ``keepers`` (profit per
keeper), ``auctions`` (Maker: clearing prices, zero bids, shortfall), ``bad_debt`` (per protocol
and asset), ``toxic`` (positions whose LTV passed ``1/bonus``: the toxic-spiral region),
``steps`` (market, oracle, venue price and gas per step), ``positions`` (start and end).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from backtest.lending.amm import ConstantProductPool
from backtest.lending.auctions import AuctionParams, Keeper, run_auctions
from backtest.lending.checks import positive
from backtest.lending.comet_simulation import CometConfig, simulate_comet
from backtest.lending.depth import DepthCurve
from backtest.lending.errors import LendingParameterError
from backtest.lending.paths import candle_path, gas_path
from backtest.lending.multi import book_from_rows, simulate_multi
from backtest.lending.population import STABLE_ASSETS, multi_asset_rows, validate_population
from backtest.lending.simulation import PositionBook, SimulationConfig, simulate

__all__ = ["TABLES", "VENUES", "LendingSetup", "LendingStudy", "run_study"]

TABLES = ("liquidations", "keepers", "auctions", "bad_debt", "toxic", "steps", "positions")
VENUES = ("pool", "curve")


@dataclass(frozen=True)
class LendingSetup:
    """Everything but the population and the paths.

    Attributes
    ----------
    aave : SimulationConfig
        Aave rules, oracle update rule and liquidator agents.
    venue : {"pool", "curve"}
        Where seized collateral is sold: a constant-product pool holding ``depth`` of quote, or
        a depth curve with ``depth`` of bids within 0.1 % of the touch.
    depth : float
        Base currency (see ``venue``).
    pool_fee : float
        Pool fee (``venue="pool"``).
    step : float
        Seconds between Aave steps (12 = one block).
    auction : AuctionParams
        Maker ilk and liquidation system.
    keepers : tuple of Keeper
        Maker keepers.
    gas_base_gwei, gas_spikes : float, tuple
        Network gas price for Maker keepers: the base level and ``(start, end, gwei)`` spikes
        (epoch seconds).
    maker_step : float
        Seconds between Maker steps.
    comet : CometConfig
        Compound v3 store-front factor and reserves; its oracle rule, gas, latency, venue
        refill, feedback and borrow rate are taken from ``aave`` (one set of agents).
    """

    aave: SimulationConfig = field(default_factory=SimulationConfig)
    venue: str = "pool"
    depth: float = 2e8
    pool_fee: float = 0.003
    step: float = 12.0
    auction: AuctionParams = field(default_factory=AuctionParams)
    keepers: tuple[Keeper, ...] = ()
    gas_base_gwei: float = 10.0
    gas_spikes: tuple[tuple[float, float, float], ...] = ()
    maker_step: float = 60.0
    comet: CometConfig = field(default_factory=CometConfig)

    def __post_init__(self) -> None:
        if self.venue not in VENUES:
            raise LendingParameterError(
                f"venue: expected one of {', '.join(VENUES)}, found {self.venue!r}; pool is a "
                "constant-product DEX pool, curve an order-book depth curve")
        positive("depth", self.depth)
        positive("step", self.step)
        positive("maker_step", self.maker_step)


@dataclass(frozen=True)
class LendingStudy:
    """The tables (:data:`TABLES`) and per-group summaries of a study."""

    tables: dict[str, pl.DataFrame]
    summaries: list[dict[str, Any]]


def _datetime(seconds: pl.Expr) -> pl.Expr:
    return (seconds * 1000).round().cast(pl.Int64).cast(pl.Datetime("ms", "UTC"))


def _aave(group: pl.DataFrame, asset: str, bars: pl.DataFrame, setup: LendingSetup
          ) -> dict[str, pl.DataFrame | dict[str, Any]]:
    times, prices = candle_path(bars, step=setup.step)
    book = PositionBook(group["collateral"].to_numpy(), group["debt"].to_numpy(),
                        group["liquidation_threshold"].to_numpy(),
                        group["liquidation_bonus"].to_numpy())
    result = simulate(book, times, prices, _venue(prices, setup), setup.aave)
    ids = group["position_id"]
    liq = result.liquidations
    market_at = prices[liq["step"].to_numpy()] if liq.height else np.zeros(0)
    liquidations = liq.with_columns(
        ts=pl.Series(times[liq["step"].to_numpy()] if liq.height else np.zeros(0)),
        market_price=pl.Series(market_at, dtype=pl.Float64),
        position_id=ids.gather(liq["position"]) if liq.height else pl.Series([], dtype=pl.Utf8),
    ).with_columns(
        ts=_datetime(pl.col("ts")),
        # the bonus at the oracle price (after the treasury's fee) and the sale's cost against
        # the market price of the step
        bonus_value=pl.col("collateral_to_liquidator") * pl.col("oracle_price") - pl.col("debt_repaid"),
        slippage=pl.col("collateral_to_liquidator") * pl.col("market_price") - pl.col("realised_proceeds"),
    )
    s = result.summary
    keepers = _keepers("liquidators", "aave-liquidator", liq, s)
    bad = s["deficit"] + s["underwater_debt"]
    bad_debt = {"positions": s["positions"], "debt_start": float(book.debt.sum()),
                "debt_liquidated": s["debt_repaid"], "liquidations": s["liquidations"],
                "deficit": s["deficit"], "underwater_debt": s["underwater_debt"],
                "incentives": 0.0, "bad_debt": bad}
    steps = _steps(result.steps)
    return {"liquidations": liquidations, "keepers": keepers, "steps": steps,
            "bad_debt": bad_debt, "final": (result.final.collateral, result.final.debt),
            "toxic": (result.toxic_step, result.toxic_ltv, times), "summary": s}


def _keepers(keeper: str, kind: str, liq: pl.DataFrame, s: dict[str, Any]) -> pl.DataFrame:
    """The one-row keeper table of a single-keeper run (amounts in base currency)."""
    return pl.DataFrame({"keeper": [keeper], "kind": [kind],
                         "liquidations": [liq.height], "debt_repaid": [s["debt_repaid"]],
                         "collateral_bought": [s["collateral_sold"]],
                         "gas_spent": [float(liq["gas_cost"].sum())],
                         "profit": [s["liquidator_profit"]]})


def _steps(steps: pl.DataFrame) -> pl.DataFrame:
    """A simulation's step table with the venue column named as the study's and UTC times."""
    return steps.rename({"pool_price": "venue_price"}).with_columns(ts=_datetime(pl.col("ts")))


def _venue(prices: np.ndarray, setup: LendingSetup) -> ConstantProductPool | DepthCurve:
    return (ConstantProductPool.at_price(prices[0], depth_quote=setup.depth, fee=setup.pool_fee)
            if setup.venue == "pool" else DepthCurve(prices[0], depth=setup.depth))


def _comet(group: pl.DataFrame, asset: str, bars: pl.DataFrame, setup: LendingSetup
           ) -> dict[str, pl.DataFrame | dict[str, Any]]:
    times, prices = candle_path(bars, step=setup.step)
    book = PositionBook(group["collateral"].to_numpy(), group["debt"].to_numpy(),
                        group["liquidation_threshold"].to_numpy(),
                        group["liquidation_bonus"].to_numpy())
    a = setup.aave
    config = replace(setup.comet, heartbeat=a.heartbeat, deviation=a.deviation,
                     gas_cost=a.gas_cost, min_profit=a.min_profit,
                     latency_steps=a.latency_steps, arbitrage_share=a.arbitrage_share,
                     feedback=a.feedback, borrow_rate=a.borrow_rate)
    result = simulate_comet(book, times, prices, _venue(prices, setup), config)
    liq = result.liquidations
    steps_at = liq["step"].to_numpy() if liq.height else np.zeros(0, dtype=np.int64)
    liquidations = liq.rename({"debt_absorbed": "debt_repaid"}).with_columns(
        ts=_datetime(pl.Series(times[steps_at])),
        market_price=pl.Series(prices[steps_at], dtype=pl.Float64),
        position_id=group["position_id"].gather(liq["position"]) if liq.height
        else pl.Series([], dtype=pl.Utf8),
    ).with_columns(
        # the buyer's discount at the oracle price, and the sale's cost against the market
        bonus_value=pl.col("collateral_bought") * pl.col("oracle_price") - pl.col("base_paid"),
        slippage=pl.col("collateral_bought") * pl.col("market_price") - pl.col("realised_proceeds"),
    )
    s = result.summary
    keepers = _keepers("absorbers", "comet-absorb-buy", liq, s)
    bad_debt = {"positions": s["positions"], "debt_start": float(book.debt.sum()),
                "debt_liquidated": s["debt_repaid"], "liquidations": s["liquidations"],
                "deficit": s["deficit"], "underwater_debt": 0.0, "incentives": 0.0,
                "bad_debt": s["deficit"], "reserves_start": s["reserves_start"],
                "reserves_end": s["reserves_end"]}
    steps = _steps(result.steps)
    return {"liquidations": liquidations, "keepers": keepers, "steps": steps,
            "bad_debt": bad_debt, "final": (result.collateral, result.debt),
            "toxic": (result.toxic_step, result.toxic_ltv, times), "summary": s}


def _maker(group: pl.DataFrame, asset: str, bars: pl.DataFrame, setup: LendingSetup
           ) -> dict[str, pl.DataFrame | dict[str, Any]]:
    if not setup.keepers:
        raise LendingParameterError(
            "maker positions: expected at least one keeper, found none; pass --keeper "
            "NAME:KIND:MAX_GWEI:MARGIN (or --preset black-thursday)")
    times, prices = candle_path(bars, step=setup.maker_step)
    gas = gas_path(times, base_gwei=setup.gas_base_gwei, spikes=setup.gas_spikes)
    result = run_auctions(group, times, prices, gas, list(setup.keepers), setup.auction)
    ids = group["position_id"]
    auctions = result.auctions.with_columns(
        position_id=ids.gather(result.auctions["vault"]) if result.auctions.height
        else pl.Series([], dtype=pl.Utf8),
        kicked=_datetime(pl.col("kicked")), settled=_datetime(pl.col("settled").fill_nan(None)))
    s = result.summary
    keepers = result.keepers.select(
        "keeper", "kind", pl.col("won").alias("liquidations"),
        pl.col("dai_paid").alias("debt_repaid"), pl.col("gems_won").alias("collateral_bought"),
        "gas_spent", "profit")
    underwater = float(result.debt[(result.ink == 0) & (result.debt > 0)].sum())
    bad_debt = {"positions": s["vaults"], "debt_start": s["debt_start"],
                "debt_liquidated": s["debt_liquidated"], "liquidations": s["auctions"],
                "deficit": s["shortfall"], "underwater_debt": underwater,
                "incentives": s["incentives"], "bad_debt": s["deficit"] + underwater}
    steps = result.steps.with_columns(ts=_datetime(pl.col("ts")))
    return {"auctions": auctions, "keepers": keepers, "steps": steps, "bad_debt": bad_debt,
            "final": (result.ink, result.debt),
            "toxic": (result.toxic_step, result.toxic_ltv, times), "summary": s}


def _aave_multi(group: pl.DataFrame, bars: dict[str, pl.DataFrame], setup: LendingSetup
                ) -> dict[str, Any]:
    names = sorted(set(group["asset"]) | (set(group["debt_asset"]) - set(STABLE_ASSETS)))
    paths = {a: candle_path(bars[a], step=setup.step) for a in names}
    length = min(p[0].size for p in paths.values())
    times = paths[names[0]][0][:length]
    for a in names:
        if not np.array_equal(paths[a][0][:length], times):
            raise LendingParameterError(
                f"multi-asset positions: the candles of {a} and {names[0]} start at different "
                "times; expected one window for every asset; pass candles of the same window")
    prices = {a: paths[a][1][:length] for a in names}
    prices.update({a: np.ones(length) for a in STABLE_ASSETS})
    book, ids = book_from_rows(group, {a: float(p[0]) for a, p in prices.items()})
    # seized collateral is sold into a venue per collateral asset, as in the one-asset runs
    venues = {a: _venue(prices[a], setup) for a in book.collateral_assets}
    result = simulate_multi(book, times, prices, setup.aave, venues)
    liq, s = result.liquidations, result.summary
    at = liq["step"].to_numpy() if liq.height else np.zeros(0, dtype=np.int64)
    cols = liq["collateral_column"].to_numpy() if liq.height else np.zeros(0, dtype=np.int64)
    market_at = np.array([prices[book.collateral_assets[c]][i] for c, i in zip(cols, at)],
                         dtype=np.float64)
    liquidations = liq.with_columns(ts=_datetime(pl.Series(times[at])),
                                    position_id=ids.gather(liq["position"]) if liq.height
                                    else pl.Series([], dtype=pl.Utf8),
                                    market_price=pl.Series(market_at, dtype=pl.Float64)
                                    ).with_columns(
        # the sale's cost against the collateral's market price at the step
        slippage=pl.col("collateral_to_liquidator") * pl.col("market_price")
        - pl.col("realised_proceeds"))
    keepers = pl.DataFrame({"keeper": ["liquidators"], "kind": ["aave-liquidator"],
                            "liquidations": [liq.height], "debt_repaid": [s["debt_repaid"]],
                            "collateral_bought": [float(liq["collateral_to_liquidator"].sum())],
                            "gas_spent": [float(liq["gas_cost"].sum())],
                            "profit": [s["liquidator_profit"]]})
    start = float((book.debt * np.array([prices[a][0] for a in book.debt_assets])).sum())
    bad_debt = {"positions": s["positions"], "debt_start": start,
                "debt_liquidated": s["debt_repaid"], "liquidations": s["liquidations"],
                "deficit": s["deficit"], "underwater_debt": s["underwater_debt"],
                "incentives": 0.0, "bad_debt": s["deficit"] + s["underwater_debt"]}
    positions = pl.DataFrame({"position_id": ids, "collateral_end": result.collateral.sum(axis=1),
                              "debt_end": result.debt.sum(axis=1)})
    return {"liquidations": liquidations, "keepers": keepers, "bad_debt": bad_debt,
            "toxic": (result.toxic_step, result.toxic_ltv, times), "summary": s,
            "positions": positions, "label": "+".join(book.collateral_assets)}


_RUNNERS = {"aave_v3": _aave, "compound_v3": _comet, "maker": _maker}


def run_study(population: pl.DataFrame, bars: dict[str, pl.DataFrame],
              setup: LendingSetup = LendingSetup()) -> LendingStudy:
    """Run ``population`` (schema of :mod:`backtest.lending.population`) on ``bars`` (candles
    per asset: ``ts, open, high, low, close``) under ``setup``.

    Raises
    ------
    LendingParameterError
        For an invalid population or an asset without candles.
    """
    population = validate_population(population)
    needed = set(population["asset"]) | (set(population["debt_asset"]) - set(STABLE_ASSETS))
    missing = sorted(needed - set(bars))
    if missing:
        raise LendingParameterError(
            f"positions: expected candles for every asset of the population, found none for "
            f"{', '.join(missing)} (candles for: {', '.join(sorted(bars)) or 'none'}); pass a "
            "--symbol whose base is that asset, or drop those positions")
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in TABLES}
    summaries: list[dict[str, Any]] = []
    multi = multi_asset_rows(population)
    if multi.any():
        group = population.filter(multi)
        out = _aave_multi(group, bars, setup)
        label = [pl.lit("aave_v3").alias("protocol"), pl.lit(out["label"]).alias("asset")]
        parts["liquidations"].append(out["liquidations"].with_columns(*label))
        parts["keepers"].append(out["keepers"].with_columns(*label))
        parts["bad_debt"].append(pl.DataFrame([{"protocol": "aave_v3", "asset": out["label"],
                                                **out["bad_debt"]}]))
        first, ltv, times = out["toxic"]
        rows = np.flatnonzero(first >= 0)
        parts["toxic"].append(pl.DataFrame({
            "position_id": out["positions"]["position_id"].gather(rows),
            "ts": times[first[rows]], "ltv": ltv[rows]}).with_columns(
                *label, ts=_datetime(pl.col("ts"))))
        parts["positions"].append(out["positions"].with_columns(*label))
        summaries.append({"protocol": "aave_v3", "asset": out["label"], **out["summary"]})
        population = population.filter(~multi)
    for (protocol, asset), group in population.group_by(["protocol", "asset"],
                                                        maintain_order=True):
        out = _RUNNERS[protocol](group, asset, bars[asset], setup)
        label = [pl.lit(protocol).alias("protocol"), pl.lit(asset).alias("asset")]
        for name in ("liquidations", "keepers", "auctions", "steps"):
            if name in out:
                parts[name].append(out[name].with_columns(*label))
        parts["bad_debt"].append(pl.DataFrame([{"protocol": protocol, "asset": asset,
                                                **out["bad_debt"]}]))
        first, ltv, times = out["toxic"]
        rows = np.flatnonzero(first >= 0)
        parts["toxic"].append(pl.DataFrame({
            "position_id": group["position_id"].gather(rows),
            "ts": times[first[rows]], "ltv": ltv[rows],
            "toxic_ltv": 1.0 / group["liquidation_bonus"].to_numpy()[rows],
        }).with_columns(*label, ts=_datetime(pl.col("ts"))))
        ink, debt = out["final"]
        parts["positions"].append(group.with_columns(collateral_end=pl.Series(ink),
                                                     debt_end=pl.Series(debt)))
        summaries.append({"protocol": protocol, "asset": asset, **out["summary"]})
    tables = {}
    for name, frames in parts.items():
        frames = [f for f in frames if f.height] or frames[:1]
        # a table no group produced (no Maker vault: no auctions) is empty but keeps key
        # columns, so its Parquet file and DuckDB view stay queryable
        tables[name] = _first(pl.concat(frames, how="diagonal_relaxed")) if frames else \
            pl.DataFrame(schema={"protocol": pl.Utf8, "asset": pl.Utf8, "position_id": pl.Utf8})
    return LendingStudy(tables, summaries)


def _first(frame: pl.DataFrame) -> pl.DataFrame:
    """``protocol`` and ``asset`` first (where present)."""
    lead = [c for c in ("protocol", "asset", "position_id") if c in frame.columns]
    return frame.select(*lead, *[c for c in frame.columns if c not in lead])
