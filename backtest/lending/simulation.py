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
sold into a CFMM whose price feeds back into the oracle).

Also modelled: interest (one borrow index for the reserve, :mod:`backtest.lending.interest`:
debts grow between steps; a position pushed under ``HF < 1`` by interest alone is found at the
next oracle update, at most one heartbeat later), liquidator latency (a position is acted on
only ``latency_steps`` steps after it was first seen liquidatable), liquidator capital (at most
``capital`` of debt repaid per step, the most profitable liquidations first; the rest wait) and
a depth curve instead of the pool (:class:`backtest.lending.depth.DepthCurve`). Several
collateral and debt assets per position: :mod:`backtest.lending.multi`.
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
from backtest.lending.depth import DepthCurve
from backtest.lending.errors import LendingParameterError
from backtest.lending.stepping import check_market_config, market_step, record_frames

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
    borrow_rate : float
        Annual variable borrow rate of the debt reserve (0.05 = 5 %), accrued every step.
    latency_steps : int
        Steps between a position first seen liquidatable and the liquidator's transaction.
    capital : float
        Debt (base currency) liquidators can repay per step (``inf``: unlimited, flash loans).
    close_factor : float
        Share of the debt repayable in one liquidation above ``HF 0.95`` (Aave: 0.5; a
        platform-view parameter).
    """

    version: str = "3.3"
    liquidation_protocol_fee: float = 0.1
    heartbeat: float = 3600.0
    deviation: float = 0.005
    gas_cost: float = 0.0
    min_profit: float = 0.0
    arbitrage_share: float = 1.0
    feedback: bool = False
    borrow_rate: float = 0.0
    latency_steps: int = 0
    capital: float = math.inf
    close_factor: float = kernels.DEFAULT_CLOSE_FACTOR

    def __post_init__(self) -> None:
        if self.version not in ("3.0", "3.1", "3.2", "3.3"):
            raise LendingParameterError(
                f"SimulationConfig.version: expected 3.0, 3.1, 3.2 or 3.3, found {self.version!r}")
        fraction("liquidation_protocol_fee", self.liquidation_protocol_fee)
        check_market_config("SimulationConfig", self)
        positive("capital", self.capital, allow_inf=True)
        if not 0 < fraction("close_factor", self.close_factor):
            raise LendingParameterError("SimulationConfig.close_factor: expected a share in "
                                        "(0, 1], found 0; Aave uses 0.5")


@dataclass(frozen=True)
class SimulationResult:
    """``liquidations`` (one row per liquidation), ``steps`` (one row per step), the final
    positions, ``toxic`` (positions whose LTV at the oracle price passed ``1/bonus`` at some
    step), ``summary`` totals (base currency), and per position the step it first turned
    toxic (``toxic_step``, -1 never) and its LTV then (``toxic_ltv``)."""

    liquidations: pl.DataFrame
    steps: pl.DataFrame
    final: PositionBook
    toxic: NDArray[np.bool_]
    summary: dict[str, Any]
    toxic_step: NDArray[np.int64] | None = None
    toxic_ltv: Array | None = None


def _liquidation_amounts(coll: Array, debt: Array, lt: Array, bonus: Array, price: float,
                         v33: bool, fee: float, close_factor: float = kernels.DEFAULT_CLOSE_FACTOR
                         ) -> kernels.SeizureArrays:
    """Largest liquidation of each candidate the protocol allows (debt price 1)."""
    value = coll * price
    repay = kernels.largest_repay(value, debt, debt, value * lt / debt, bonus, v33, close_factor)
    return kernels.seize(repay, 1.0, price, coll, bonus, fee)


Venue = ConstantProductPool | DepthCurve


def simulate(book: PositionBook, times: ArrayLike, market_prices: ArrayLike,
             pool: Venue, config: SimulationConfig = SimulationConfig()) -> SimulationResult:
    """Run ``book`` through the market path ``(times, market_prices)`` (seconds, base
    currency per collateral token); see the module docstring for the step order.

    ``book.debt`` is the debt owed at ``times[0]``; with a ``borrow_rate`` it grows by the
    reserve's borrow index (amounts in the outputs are what is owed at each step).
    """
    t = np.asarray(times, dtype=np.float64)
    market = np.asarray(market_prices, dtype=np.float64)
    if t.ndim != 1 or t.shape != market.shape or t.size == 0 or np.any(np.diff(t) <= 0):
        raise LendingParameterError(
            "simulate: times and market_prices must be 1-D, of equal non-zero length, with "
            "strictly increasing times")
    if not (np.all(np.isfinite(market)) and np.all(market > 0)):
        raise LendingParameterError("simulate: market prices must be finite and > 0")
    state = _State(book, config)
    for i in range(t.size):
        state.index, pool, fresh, state.oracle_price, state.oracle_time = market_step(
            i, t, market, pool, config, state.index, state.oracle_price, state.oracle_time)
        state.fresh = state.fresh or fresh
        counts = (0, 0.0, 0.0, 0.0)
        if state.fresh or state.pending:
            counts, pool = state.liquidate(i, pool)
        state.fresh = False
        for key, value in zip(_STEP_COLUMNS, (t[i], market[i], pool.price, state.oracle_price,
                                              state.index, *counts)):
            state.step_rows[key].append(value)
    return state.result(book)


_STEP_COLUMNS = ("ts", "market_price", "pool_price", "oracle_price", "borrow_index",
                 "liquidations", "debt_repaid", "collateral_sold", "deficit")
_LIQUIDATION_COLUMNS = ("step", "position", "oracle_price", "debt_repaid", "collateral_seized",
                        "collateral_to_liquidator", "protocol_fee", "estimated_proceeds",
                        "realised_proceeds", "gas_cost", "profit", "deficit")


class _State:
    """The mutable state of one run: balances (debt as *scaled* debt: owed = scaled x index),
    the oracle, the latency clocks and the records."""

    def __init__(self, book: PositionBook, config: SimulationConfig) -> None:
        n = len(book)
        self.config, self.v33 = config, config.version == "3.3"
        self.coll, self.debt = book.collateral.copy(), book.debt.copy()
        self.lt, self.bonus = book.liquidation_threshold, book.liquidation_bonus
        self.index = 1.0
        self.first_toxic = np.full(n, -1, dtype=np.int64)
        self.toxic_ltv = np.full(n, math.nan)
        self.first_seen = np.full(n, -1, dtype=np.int64)   # latency clock per candidate
        self.oracle_price, self.oracle_time, self.fresh = math.nan, -math.inf, True
        self.pending = False   # candidates left waiting (unprofitable, latency, capital)
        self.idx = np.zeros(0, dtype=np.int64)   # rows at risk at the last check
        self.total_deficit = 0.0
        self.records: list[dict[str, Array]] = []
        self.step_rows: dict[str, list[float]] = {k: [] for k in _STEP_COLUMNS}

    def _candidates(self, i: int) -> NDArray[np.int64]:
        coll, debt, price = self.coll, self.debt, self.oracle_price / self.index
        # HF < 1 <=> coll * price * LT < owed. A full scan only when the oracle moved:
        # between updates only rows already at risk can be (still) liquidatable.
        previous = self.idx
        if self.fresh:
            active = (debt > 0) & (coll > 0)   # nothing left to seize: not a candidate
            newly = active & (debt * self.bonus > coll * price) & (self.first_toxic < 0)
            if newly.any():
                rows = np.flatnonzero(newly)
                self.first_toxic[rows] = i
                self.toxic_ltv[rows] = debt[rows] / (coll[rows] * price)
            idx = np.flatnonzero(active & (coll * price * self.lt < debt))
        else:
            idx = previous[(coll[previous] > 0)
                           & (coll[previous] * price * self.lt[previous] < debt[previous])]
        if previous.size:   # rows no longer liquidatable restart their latency clock
            self.first_seen[previous[~np.isin(previous, idx)]] = -1
        self.idx = idx
        self.first_seen[idx[self.first_seen[idx] < 0]] = i
        return idx

    def liquidate(self, i: int, pool: Venue) -> tuple[tuple[int, float, float, float], Venue]:
        """Liquidate what is liquidatable, ready and profitable at step ``i``."""
        config, index = self.config, self.index
        idx = self._candidates(i)
        ready = idx[i - self.first_seen[idx] >= config.latency_steps]
        self.pending = ready.size < idx.size
        if not ready.size:
            return (0, 0.0, 0.0, 0.0), pool
        s = _liquidation_amounts(self.coll[ready], self.debt[ready] * index, self.lt[ready],
                                 self.bonus[ready], self.oracle_price, self.v33,
                                 config.liquidation_protocol_fee, config.close_factor)
        estimate = pool.amount_out(s.collateral_to_liquidator)
        profit = estimate - s.debt_repaid - config.gas_cost
        go = (profit > config.min_profit) & (s.debt_repaid > 0)
        if math.isfinite(config.capital) and go.any():
            # limited capital: the most profitable first, while the step's budget lasts
            order = np.flatnonzero(go)[np.argsort(-profit[go], kind="stable")]
            spent = np.cumsum(s.debt_repaid[order])
            go[:] = False
            go[order[spent <= config.capital]] = True
        self.pending = self.pending or bool(np.any(~go))
        if not np.any(go):
            return (0, 0.0, 0.0, 0.0), pool
        rows, sold = ready[go], s.collateral_to_liquidator[go]
        total = float(sold.sum())
        proceeds, pool = pool.sell(total)
        realised = proceeds * (sold / total) if total > 0 else np.zeros_like(sold)
        repaid = s.debt_repaid[go]
        self.coll[rows] = np.where(s.capped[go], 0.0, self.coll[rows] - s.collateral_seized[go])
        left = self.debt[rows] - repaid / index
        # a full repayment through the index can leave a float residue either side of 0
        self.debt[rows] = np.where(left <= 1e-12 * self.debt[rows], 0.0, left)
        deficit = np.zeros(rows.size)
        if self.v33:
            burned = (self.coll[rows] == 0) & (self.debt[rows] > 0)
            deficit = np.where(burned, self.debt[rows] * index, 0.0)
            self.debt[rows] = np.where(burned, 0.0, self.debt[rows])
        self.total_deficit += float(deficit.sum())
        self.pending = True   # partially liquidated rows are re-checked next step
        self.records.append({
            "step": np.full(rows.size, i, dtype=np.float64), "position": rows,
            "oracle_price": np.full(rows.size, self.oracle_price), "debt_repaid": repaid,
            "collateral_seized": s.collateral_seized[go], "collateral_to_liquidator": sold,
            "protocol_fee": s.protocol_fee[go], "estimated_proceeds": estimate[go],
            "realised_proceeds": realised, "gas_cost": np.full(rows.size, config.gas_cost),
            "profit": realised - repaid - config.gas_cost, "deficit": deficit})
        return (int(rows.size), float(repaid.sum()), total, float(deficit.sum())), pool

    def result(self, book: PositionBook) -> SimulationResult:
        liquidations, steps = record_frames(self.records, _LIQUIDATION_COLUMNS, self.step_rows)
        owed = self.debt * self.index
        final = PositionBook(self.coll, owed, book.liquidation_threshold, book.liquidation_bonus)
        underwater = (self.coll == 0) & (owed > 0)
        toxic = self.first_toxic >= 0
        summary = {
            "positions": len(book),
            "liquidations": liquidations.height,
            "positions_liquidated": int(liquidations["position"].n_unique())
            if liquidations.height else 0,
            "debt_repaid": float(liquidations["debt_repaid"].sum()),
            "collateral_sold": float(liquidations["collateral_to_liquidator"].sum()),
            "liquidator_profit": float(liquidations["profit"].sum()),
            "protocol_fees": float(liquidations["protocol_fee"].sum()),
            "deficit": self.total_deficit,
            "underwater_debt": float(owed[underwater].sum()),
            "toxic_positions": int(toxic.sum()),
            "final_oracle_price": float(self.oracle_price),
            "borrow_index": self.index,
        }
        return SimulationResult(liquidations, steps, final, toxic, summary, self.first_toxic,
                                self.toxic_ltv)
