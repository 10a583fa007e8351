"""Vectorized Aave-style lending simulation core: many positions, one oracle, liquidators, a pool.

One row per position (one collateral asset against a stable debt worth 1 base unit). At each
step (a block, or any clock):

1. the DEX pool is arbitraged toward the market price (``arbitrage_share`` of the log gap);
2. the oracle's source is the market price, or the pool price when ``feedback`` is on (the
   cascade: liquidation sales move the pool, the pool moves the oracle);
3. the push oracle publishes under its heartbeat/deviation rule
   (:func:`backtest.lending.oracle.should_publish`);
4. positions with ``HF < 1`` at the oracle price are candidates; the liquidator repays the
   close-factor maximum (:mod:`backtest.lending.aave_kernels`, v3.0 or v3.3 rules; under v3.3
   a partial liquidation is shrunk to leave ``MIN_LEFTOVER_BASE`` of collateral), seizes the
   collateral with the bonus, the treasury takes its fee;
5. a liquidator acts only when it pays: the quote for selling its collateral alone into the
   pool, minus the debt repaid and the gas cost, must exceed ``min_profit``;
6. all profitable liquidations of the step sell into the pool as one batch; each gets its
   pro-rata share of the proceeds (realised profit can fall below the estimate);
7. v3.3: a position whose collateral is exhausted has its remaining debt burned into the
   deficit (bad debt); before v3.3 it stays on the position (``underwater`` at the end).

Sources: the protocol rules of margin_rules.md §8 (Aave v3) as implemented in
:mod:`backtest.lending.aave_kernels`; the agent model of cascades.md §7.3 (oracle update rule,
liquidators with gas cost and a profitability test ``bonus - slippage - gas > 0``, collateral
sold into a CFMM whose price feeds back into the oracle). Not yet modelled: liquidator latency
and capital, interest accrual, several collateral assets per position.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from backtest.lending import aave_kernels as kernels
from backtest.lending.amm import ConstantProductPool
from backtest.lending.checks import fraction, non_negative, positive
from backtest.lending.errors import LendingParameterError
from backtest.lending.oracle import should_publish

__all__ = ["PositionBook", "SimulationConfig", "SimulationResult", "generate_positions",
           "simulate"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class PositionBook:
    """Positions as columns: ``collateral`` tokens, ``debt`` base units, and per position its
    ``liquidation_threshold`` and ``liquidation_bonus`` (arrays or one value for all)."""

    collateral: Array
    debt: Array
    liquidation_threshold: Array
    liquidation_bonus: Array

    def __post_init__(self) -> None:
        coll = np.array(self.collateral, dtype=np.float64)
        n = coll.size
        columns = {"collateral": coll}
        for name in ("debt", "liquidation_threshold", "liquidation_bonus"):
            columns[name] = np.broadcast_to(np.asarray(getattr(self, name), dtype=np.float64),
                                            (n,)).copy()
        for name, col in columns.items():
            if col.ndim != 1 or not np.all(np.isfinite(col)) or np.any(col < 0):
                raise LendingParameterError(
                    f"positions: column {name!r} must be finite and >= 0 for every position; "
                    "fix the rows before simulating")
        lt, bonus = columns["liquidation_threshold"], columns["liquidation_bonus"]
        if np.any(lt > 1) or np.any(bonus < 1) or np.any(lt * bonus > 1 + 1e-12):
            raise LendingParameterError(
                "positions: expected 0 <= liquidation_threshold <= 1, liquidation_bonus >= 1 "
                "and threshold x bonus <= 1 (Aave's configurator rule) for every position")
        for name, col in columns.items():
            col.setflags(write=False)
            object.__setattr__(self, name, col)

    def __len__(self) -> int:
        return int(self.collateral.size)


def generate_positions(n: int, *, seed: int, price: float, liquidation_threshold: float = 0.825,
                       liquidation_bonus: float = 1.05, median_collateral_value: float = 20_000.0,
                       value_sigma: float = 1.5, health_factor_range: tuple[float, float] = (
                           1.05, 2.5)) -> PositionBook:
    """A seeded population: collateral value log-normal (median ``median_collateral_value``,
    log-sd ``value_sigma``), starting health factor uniform in ``health_factor_range``,
    ``debt = value * LT / HF``. Same seed, same book."""
    if n < 0:
        raise LendingParameterError(f"generate_positions: n must be >= 0, found {n}")
    low, high = health_factor_range
    if not 0 < low <= high:
        raise LendingParameterError(
            f"generate_positions: health_factor_range must be 0 < low <= high, found {low, high}")
    rng = np.random.default_rng(seed)
    value = positive("median_collateral_value", median_collateral_value) * np.exp(
        non_negative("value_sigma", value_sigma) * rng.standard_normal(n))
    hf = rng.uniform(low, high, n)
    return PositionBook(value / positive("price", price), value * liquidation_threshold / hf,
                        liquidation_threshold, liquidation_bonus)


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Rules and agents of a run.

    Attributes
    ----------
    version : {"3.0", "3.3"}
        Close-factor, dust and deficit rules (3.1/3.2 behave as 3.0).
    liquidation_protocol_fee : float
        Treasury share of the bonus part.
    heartbeat, deviation : float
        Oracle update rule (seconds, fraction).
    gas_cost : float
        Base currency a liquidator spends per liquidation (gas x gas price x ETH price).
    min_profit : float
        Profit (base currency) below which a liquidator does not act.
    arbitrage_share : float
        Share of the pool-market log price gap arbitrage closes each step (1 = always at market).
    feedback : bool
        The oracle reads the pool price instead of the market price (cascades).
    """

    version: str = "3.3"
    liquidation_protocol_fee: float = 0.1
    heartbeat: float = 3600.0
    deviation: float = 0.005
    gas_cost: float = 0.0
    min_profit: float = 0.0
    arbitrage_share: float = 1.0
    feedback: bool = False

    def __post_init__(self) -> None:
        if self.version not in ("3.0", "3.1", "3.2", "3.3"):
            raise LendingParameterError(
                f"SimulationConfig.version: expected 3.0, 3.1, 3.2 or 3.3, found {self.version!r}")
        fraction("liquidation_protocol_fee", self.liquidation_protocol_fee)
        positive("heartbeat", self.heartbeat, allow_inf=True)
        fraction("deviation", self.deviation)
        non_negative("gas_cost", self.gas_cost)
        non_negative("min_profit", self.min_profit)
        fraction("arbitrage_share", self.arbitrage_share)


@dataclass(frozen=True)
class SimulationResult:
    """``liquidations`` (one row per liquidation), ``steps`` (one row per step), the final
    positions, ``toxic`` (positions whose LTV at the oracle price passed ``1/bonus`` at some
    step) and ``summary`` totals (base currency)."""

    liquidations: pl.DataFrame
    steps: pl.DataFrame
    final: PositionBook
    toxic: NDArray[np.bool_]
    summary: dict[str, Any]


def _liquidation_amounts(coll: Array, debt: Array, lt: Array, bonus: Array, price: float,
                         v33: bool, fee: float) -> kernels.SeizureArrays:
    """Largest liquidation of each candidate the protocol allows (debt price 1)."""
    value = coll * price
    hf = value * lt / debt
    if v33:
        repay = kernels.max_liquidatable_debt_v33(value, debt, debt, hf)
        seized_value = repay * bonus
        partial = (repay < debt) & (seized_value < value)
        dusty = partial & ((debt - repay < kernels.MIN_LEFTOVER_BASE)
                           | (value - seized_value < kernels.MIN_LEFTOVER_BASE))
        # the liquidator shrinks a dusty partial to leave MIN_LEFTOVER_BASE of collateral
        repay = np.where(dusty, np.maximum(0.0, (value - kernels.MIN_LEFTOVER_BASE) / bonus),
                         repay)
    else:
        repay = kernels.close_factor_v30(hf) * debt
    return kernels.seize(repay, 1.0, price, coll, bonus, fee)


def simulate(book: PositionBook, times: ArrayLike, market_prices: ArrayLike,
             pool: ConstantProductPool, config: SimulationConfig = SimulationConfig()
             ) -> SimulationResult:
    """Run ``book`` through the market path ``(times, market_prices)`` (seconds, base
    currency per collateral token); see the module docstring for the step order."""
    t = np.asarray(times, dtype=np.float64)
    market = np.asarray(market_prices, dtype=np.float64)
    if t.ndim != 1 or t.shape != market.shape or t.size == 0 or np.any(np.diff(t) <= 0):
        raise LendingParameterError(
            "simulate: times and market_prices must be 1-D, of equal non-zero length, with "
            "strictly increasing times")
    if not (np.all(np.isfinite(market)) and np.all(market > 0)):
        raise LendingParameterError("simulate: market prices must be finite and > 0")
    v33 = config.version == "3.3"
    fee = config.liquidation_protocol_fee
    coll, debt = book.collateral.copy(), book.debt.copy()
    lt, bonus = book.liquidation_threshold, book.liquidation_bonus
    toxic = np.zeros(len(book), dtype=bool)
    records: list[dict[str, Array]] = []
    step_rows: dict[str, list[float]] = {k: [] for k in (
        "ts", "market_price", "pool_price", "oracle_price", "liquidations", "debt_repaid",
        "collateral_sold", "deficit")}
    oracle_price, oracle_time, fresh = math.nan, -math.inf, True
    pending = False   # liquidatable positions left unliquidated (unprofitable) last step
    idx = np.zeros(0, dtype=np.int64)   # rows at risk at the last check
    total_deficit = 0.0
    for i in range(t.size):
        pool = pool.arbitraged(market[i], config.arbitrage_share)
        source = pool.price if config.feedback else market[i]
        if math.isnan(oracle_price) or should_publish(
                last_price=oracle_price, last_time=oracle_time, price=source, time=t[i],
                heartbeat=config.heartbeat, deviation=config.deviation):
            oracle_price, oracle_time, fresh = source, t[i], True
        n_liq, repaid_sum, sold_sum, deficit_step = 0, 0.0, 0.0, 0.0
        if fresh or pending:
            # HF < 1 <=> coll * price * LT < debt. A full scan only when the oracle moved:
            # between updates only rows already at risk can be (still) liquidatable.
            if fresh:
                active = (debt > 0) & (coll > 0)   # nothing left to seize: not a candidate
                toxic |= active & (debt * bonus > coll * oracle_price)
                idx = np.flatnonzero(active & (coll * oracle_price * lt < debt))
            else:
                idx = idx[(coll[idx] > 0) & (coll[idx] * oracle_price * lt[idx] < debt[idx])]
            pending = False
            if idx.size:
                s = _liquidation_amounts(coll[idx], debt[idx], lt[idx], bonus[idx],
                                         oracle_price, v33, fee)
                estimate = pool.amount_out(s.collateral_to_liquidator)
                profit = estimate - s.debt_repaid - config.gas_cost
                go = (profit > config.min_profit) & (s.debt_repaid > 0)
                pending = bool(np.any(~go))
                if np.any(go):
                    rows, sold = idx[go], s.collateral_to_liquidator[go]
                    proceeds, pool = pool.sell(float(sold.sum()))
                    share = sold / sold.sum() if sold.sum() > 0 else np.zeros_like(sold)
                    realised = proceeds * share
                    coll[rows] = np.where(s.capped[go], 0.0, coll[rows] - s.collateral_seized[go])
                    debt[rows] -= s.debt_repaid[go]
                    deficit = np.zeros(rows.size)
                    if v33:
                        burned = (coll[rows] == 0) & (debt[rows] > 0)
                        deficit = np.where(burned, debt[rows], 0.0)
                        debt[rows] = np.where(burned, 0.0, debt[rows])
                    n_liq, repaid_sum = int(rows.size), float(s.debt_repaid[go].sum())
                    sold_sum, deficit_step = float(sold.sum()), float(deficit.sum())
                    total_deficit += deficit_step
                    pending = True   # partially liquidated rows are re-checked next step
                    records.append({
                        "step": np.full(rows.size, i, dtype=np.float64), "position": rows,
                        "oracle_price": np.full(rows.size, oracle_price),
                        "debt_repaid": s.debt_repaid[go],
                        "collateral_seized": s.collateral_seized[go],
                        "collateral_to_liquidator": sold, "protocol_fee": s.protocol_fee[go],
                        "estimated_proceeds": estimate[go], "realised_proceeds": realised,
                        "gas_cost": np.full(rows.size, config.gas_cost),
                        "profit": realised - s.debt_repaid[go] - config.gas_cost,
                        "deficit": deficit})
        fresh = False
        for key, value in (("ts", t[i]), ("market_price", market[i]), ("pool_price", pool.price),
                           ("oracle_price", oracle_price), ("liquidations", n_liq),
                           ("debt_repaid", repaid_sum), ("collateral_sold", sold_sum),
                           ("deficit", deficit_step)):
            step_rows[key].append(value)
    return _result(book, coll, debt, toxic, records, step_rows, total_deficit, oracle_price)


_LIQUIDATION_COLUMNS = ("step", "position", "oracle_price", "debt_repaid", "collateral_seized",
                        "collateral_to_liquidator", "protocol_fee", "estimated_proceeds",
                        "realised_proceeds", "gas_cost", "profit", "deficit")


def _result(book: PositionBook, coll: Array, debt: Array, toxic: NDArray[np.bool_],
            records: list[dict[str, Array]], step_rows: dict[str, list[float]],
            total_deficit: float, last_oracle: float) -> SimulationResult:
    if records:
        data = {k: np.concatenate([r[k] for r in records]) for k in _LIQUIDATION_COLUMNS}
    else:
        data = {k: np.zeros(0) for k in _LIQUIDATION_COLUMNS}
    liquidations = pl.DataFrame(data).with_columns(pl.col("step", "position").cast(pl.Int64))
    steps = pl.DataFrame(step_rows).with_columns(pl.col("liquidations").cast(pl.Int64))
    final = PositionBook(coll, debt, book.liquidation_threshold, book.liquidation_bonus)
    underwater = (coll == 0) & (debt > 0)
    summary = {
        "positions": len(book),
        "liquidations": liquidations.height,
        "positions_liquidated": int(liquidations["position"].n_unique()) if liquidations.height else 0,
        "debt_repaid": float(liquidations["debt_repaid"].sum()),
        "collateral_sold": float(liquidations["collateral_to_liquidator"].sum()),
        "liquidator_profit": float(liquidations["profit"].sum()),
        "protocol_fees": float(liquidations["protocol_fee"].sum()),
        "deficit": total_deficit,
        "underwater_debt": float(debt[underwater].sum()),
        "toxic_positions": int(toxic.sum()),
        "final_oracle_price": last_oracle,
    }
    return SimulationResult(liquidations, steps, final, toxic, summary)
