"""Aave v3 positions with several collaterals and several debts, vectorized (arrays per position).

A :class:`MultiBook` holds, per position, an amount of each collateral asset (``(n, K)``
tokens) and of each debt asset (``(n, M)`` tokens); the liquidation threshold and bonus are the
*reserve's* (one per collateral asset, as on Aave). At each step every asset's push oracle
applies its heartbeat/deviation rule (:func:`backtest.lending.oracle.should_publish`), and

* the health factor is taken over everything the position holds:
  ``HF = Σ_k coll_k·P_k·LT_k / Σ_m debt_m·P_m`` (:func:`health_factors`; margin_rules.md §8);
* a liquidator picks one collateral/debt pair per call (:func:`pick_pairs`, documented rule):
  the **debt** reserve with the largest value (the close factor applies per reserve, so the
  largest debt allows the largest repayment), and the **collateral** that pays it the most bonus,
  ``min(coll_value_k, repay_k·bonus_k)·(1 − 1/bonus_k)`` (ties: the first asset), with
  ``repay_k`` the largest repayment the rules allow on that pair
  (:func:`backtest.lending.aave_kernels.largest_repay`: close factor, v3.3 thresholds on that
  collateral reserve and dust); the seizure is :func:`backtest.lending.aave_kernels.seize`;
* the liquidator acts when what its seized collateral fetches, minus the debt repaid (at the
  market price) and ``gas_cost``, beats ``min_profit``; one call per position and step, a
  still-unhealthy position is liquidated again at the next step. What the collateral fetches:
  without ``venues``, its value at the market price; with a venue per collateral asset (a
  constant-product pool or a depth curve, as in the single-collateral simulation
  :mod:`backtest.lending.simulation`), each venue is arbitraged toward its market each step
  (``arbitrage_share``), a liquidation is judged on the quote for selling its collateral alone,
  and the step's profitable liquidations of one asset sell into its venue as one batch, each
  getting its pro-rata share of the proceeds (``realised_proceeds``; ``profit`` is realised).
  The oracle reads the market, not the venue (no ``feedback`` in the multi-asset path);
* v3.3: when a position has no collateral left in any reserve, all its remaining debt is burned
  into the deficit (bad debt); before v3.3 it stays (``underwater``).

Debts grow by one borrow index (``borrow_rate``) for all debt reserves. Sources: [LL30]
aave/aave-v3-core @ 782f5191, [LL33] aave-dao/aave-v3-origin @ fd1fbd91
(``LiquidationLogic.sol``, ``GenericLogic.calculateUserAccountData``); margin_rules.md §8.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from backtest.lending import aave_kernels as kernels
from backtest.lending.errors import LendingParameterError
from backtest.lending.interest import compounded_interest
from backtest.lending.oracle import should_publish
from backtest.lending.simulation import SimulationConfig
from backtest.lending.stepping import record_frames

__all__ = ["MultiBook", "MultiResult", "book_from_rows", "health_factors", "pick_pairs",
           "simulate_multi"]

Array = NDArray[np.float64]


@dataclass(frozen=True)
class MultiBook:
    """Positions as ``(n, K)`` collateral and ``(n, M)`` debt token arrays, the asset names of
    their columns, and per collateral asset its liquidation threshold and bonus."""

    collateral: Array
    debt: Array
    collateral_assets: tuple[str, ...]
    debt_assets: tuple[str, ...]
    liquidation_threshold: Array
    liquidation_bonus: Array

    def __post_init__(self) -> None:
        coll = np.array(self.collateral, dtype=np.float64, ndmin=2)
        debt = np.array(self.debt, dtype=np.float64, ndmin=2)
        lt = np.array(self.liquidation_threshold, dtype=np.float64, ndmin=1)
        bonus = np.array(self.liquidation_bonus, dtype=np.float64, ndmin=1)
        k, m = len(self.collateral_assets), len(self.debt_assets)
        if coll.shape[1:] != (k,) or debt.shape != (coll.shape[0], m) or lt.shape != (k,) \
                or bonus.shape != (k,):
            raise LendingParameterError(
                f"multi-asset positions: expected collateral (n, {k}), debt (n, {m}) and one "
                f"threshold and bonus per collateral asset, found {coll.shape}, {debt.shape}, "
                f"{lt.shape}, {bonus.shape}")
        for name, col in (("collateral", coll), ("debt", debt)):
            if not np.all(np.isfinite(col)) or np.any(col < 0):
                raise LendingParameterError(f"multi-asset positions: every {name} amount must "
                                            "be finite and >= 0; fix the rows")
        if np.any(lt <= 0) or np.any(lt > 1) or np.any(bonus < 1) or np.any(lt * bonus > 1 + 1e-12):
            raise LendingParameterError(
                "multi-asset positions: expected 0 < liquidation_threshold <= 1, bonus >= 1 and "
                "threshold x bonus <= 1 (Aave's configurator rule) for every collateral asset")
        for name, value in (("collateral", coll), ("debt", debt),
                            ("liquidation_threshold", lt), ("liquidation_bonus", bonus)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return int(self.collateral.shape[0])


def book_from_rows(rows: pl.DataFrame, start_prices: dict[str, float]
                   ) -> tuple[MultiBook, pl.Series]:
    """A :class:`MultiBook` from population rows (:mod:`backtest.lending.population` schema:
    rows sharing ``position_id`` form one position) and the position ids in book order.
    ``debt`` is converted to tokens at ``start_prices[debt_asset]`` (stables at 1).

    Raises
    ------
    LendingParameterError
        When one collateral asset has different thresholds or bonuses across rows (they are
        the reserve's), or a start price is missing.
    """
    ids = rows["position_id"].unique(maintain_order=True)
    row_pos = rows["position_id"].replace_strict(ids, pl.Series(range(ids.len())),
                                                 return_dtype=pl.Int64).to_numpy()
    coll_assets = tuple(rows.filter(pl.col("collateral") > 0)["asset"].unique(maintain_order=True)
                        ) or tuple(rows["asset"].unique(maintain_order=True))
    debt_assets = tuple(rows.filter(pl.col("debt") > 0)["debt_asset"].unique(maintain_order=True)
                        ) or ("USDC",)
    params = rows.filter(pl.col("asset").is_in(coll_assets)).group_by(
        "asset", maintain_order=True).agg(pl.col("liquidation_threshold", "liquidation_bonus")
                                          .unique())
    for record in params.iter_rows(named=True):
        if len(record["liquidation_threshold"]) > 1 or len(record["liquidation_bonus"]) > 1:
            raise LendingParameterError(
                f"multi-asset positions: collateral {record['asset']} has several thresholds or "
                f"bonuses ({record['liquidation_threshold']}, {record['liquidation_bonus']}); "
                "expected the reserve's one value; make the rows agree")
    lookup = {r["asset"]: (r["liquidation_threshold"][0], r["liquidation_bonus"][0])
              for r in params.iter_rows(named=True)}
    missing = [a for a in debt_assets if a not in start_prices]
    if missing:
        raise LendingParameterError(f"multi-asset positions: no start price for debt asset(s) "
                                    f"{', '.join(missing)}; pass their candles")
    coll = np.zeros((ids.len(), len(coll_assets)))
    debt = np.zeros((ids.len(), len(debt_assets)))
    c_col = rows["asset"].to_numpy()
    d_col = rows["debt_asset"].to_numpy()
    for k, a in enumerate(coll_assets):
        mask = c_col == a
        np.add.at(coll[:, k], row_pos[mask], rows["collateral"].to_numpy()[mask])
    for m, a in enumerate(debt_assets):
        mask = d_col == a
        np.add.at(debt[:, m], row_pos[mask], rows["debt"].to_numpy()[mask] / start_prices[a])
    book = MultiBook(coll, debt, coll_assets, debt_assets,
                     np.array([lookup[a][0] for a in coll_assets]),
                     np.array([lookup[a][1] for a in coll_assets]))
    return book, ids


def health_factors(collateral_value: Array, debt_value: Array, liquidation_threshold: Array
                   ) -> Array:
    """``Σ_k value_k·LT_k / Σ_m debt_m`` per row (base currency; ``inf`` without debt).
    Source: [LL30] ``GenericLogic.calculateUserAccountData``."""
    debt = debt_value.sum(axis=1)
    weighted = collateral_value @ liquidation_threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(debt > 0, weighted / np.where(debt > 0, debt, 1.0), math.inf)


def pick_pairs(collateral_value: Array, debt_value: Array, health_factor: Array, bonus: Array,
               v33: bool, close_factor: float = kernels.DEFAULT_CLOSE_FACTOR
               ) -> tuple[NDArray[np.int64], NDArray[np.int64], Array]:
    """Per row: the debt column, the collateral column and the repayment (base currency) of
    the liquidator's pair (module docstring's rule)."""
    rows = np.arange(debt_value.shape[0])
    debt_col = np.argmax(debt_value, axis=1)
    reserve_debt = debt_value[rows, debt_col]
    total = debt_value.sum(axis=1)
    repay = np.broadcast_to(kernels.largest_repay(
        collateral_value, reserve_debt[:, None], total[:, None], health_factor[:, None],
        bonus[None, :], v33, close_factor), collateral_value.shape)
    gain = np.minimum(collateral_value, repay * bonus) * (1.0 - 1.0 / bonus)
    gain = np.where(collateral_value > 0, gain, -1.0)   # an empty reserve is never picked
    coll_col = np.argmax(gain, axis=1)
    return debt_col, coll_col, repay[rows, coll_col]


@dataclass(frozen=True)
class MultiResult:
    """``liquidations`` (one row per call), ``steps``, final ``collateral``/``debt`` arrays
    (tokens; debt owed), ``summary`` (base currency) and per position the step it first turned
    toxic (total LTV above ``1/bonus`` of its largest collateral; -1 never) and that LTV."""

    liquidations: pl.DataFrame
    steps: pl.DataFrame
    collateral: Array
    debt: Array
    summary: dict[str, Any]
    toxic_step: NDArray[np.int64]
    toxic_ltv: Array


_LIQ = ("step", "position", "collateral_column", "debt_column", "oracle_collateral_price",
        "oracle_debt_price", "debt_repaid", "debt_repaid_value", "collateral_seized",
        "collateral_to_liquidator", "protocol_fee", "estimated_proceeds", "realised_proceeds",
        "gas_cost", "profit", "deficit")


def _quotes(pools: list[Any] | None, k: NDArray[np.int64], amounts: Array,
            market: Array) -> Array:
    """What each liquidation's collateral fetches alone: ``amount x market price`` without
    venues, else the quote of its asset's venue (``market`` holds each row's market price)."""
    if pools is None:
        return amounts * market
    out = np.empty(amounts.size)
    for col in np.unique(k):
        rows = k == col
        out[rows] = pools[col].amount_out(amounts[rows])
    return out


def _sell(pools: list[Any] | None, k: NDArray[np.int64], amounts: Array, market: Array) -> Array:
    """Sell the step's collateral: per asset one batch into its venue, pro-rata proceeds
    (``pools`` updated in place); at the market price without venues."""
    if pools is None:
        return amounts * market
    out = np.zeros(amounts.size)
    for col in np.unique(k):
        rows = k == col
        total = float(amounts[rows].sum())
        if total > 0:
            proceeds, pools[col] = pools[col].sell(total)
            out[rows] = proceeds * amounts[rows] / total
    return out


def _paths(book: MultiBook, times: ArrayLike, prices: dict[str, ArrayLike]
           ) -> tuple[Array, Array]:
    t = np.asarray(times, dtype=np.float64)
    names = list(dict.fromkeys(book.collateral_assets + book.debt_assets))
    missing = [a for a in names if a not in prices]
    if missing:
        raise LendingParameterError(
            f"multi-asset positions: expected a price path for every asset, found none for "
            f"{', '.join(missing)}; pass candles for it (stable debts: price 1)")
    matrix = np.vstack([np.broadcast_to(np.asarray(prices[a], dtype=np.float64), t.shape)
                        for a in names])
    if t.ndim != 1 or t.size == 0 or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(matrix)) \
            or np.any(matrix <= 0):
        raise LendingParameterError("simulate_multi: times must be 1-D and strictly increasing "
                                    "and every price path finite, > 0 and as long as times")
    return t, matrix


def simulate_multi(book: MultiBook, times: ArrayLike, prices: dict[str, ArrayLike],
                   config: SimulationConfig = SimulationConfig(),
                   venues: dict[str, Any] | None = None) -> MultiResult:
    """Run ``book`` through market ``prices`` (asset -> path aligned with ``times``, seconds);
    rules in the module docstring. ``book.debt`` is owed at ``times[0]``. ``venues``
    (collateral asset -> :class:`~backtest.lending.amm.ConstantProductPool` or
    :class:`~backtest.lending.depth.DepthCurve`) prices the liquidators' sales; None sells at
    the market price."""
    t, market = _paths(book, times, prices)
    pools = None
    if venues is not None:
        missing = [a for a in book.collateral_assets if a not in venues]
        if missing:
            raise LendingParameterError(
                f"simulate_multi: expected a venue for every collateral asset, found none for "
                f"{', '.join(missing)}; pass venues for all of them or none")
        pools = [venues[a] for a in book.collateral_assets]
    names = list(dict.fromkeys(book.collateral_assets + book.debt_assets))
    c_idx = np.array([names.index(a) for a in book.collateral_assets])
    d_idx = np.array([names.index(a) for a in book.debt_assets])
    v33, fee = config.version == "3.3", config.liquidation_protocol_fee
    lt, bonus = book.liquidation_threshold, book.liquidation_bonus
    coll, scaled = book.collateral.copy(), book.debt.copy()
    n = len(book)
    oracle, oracle_t = np.full(len(names), math.nan), np.full(len(names), -math.inf)
    index, pending, total_deficit = 1.0, False, 0.0
    candidates = np.zeros(0, dtype=np.int64)
    first_toxic, toxic_ltv = np.full(n, -1, dtype=np.int64), np.full(n, math.nan)
    records: list[dict[str, Array]] = []
    step_rows: dict[str, list[float]] = {"ts": [], "liquidations": [], "debt_repaid": [],
                                         "deficit": [], "borrow_index": []}
    for i in range(t.size):
        if i and config.borrow_rate:
            index *= compounded_interest(config.borrow_rate, t[i] - t[i - 1])
        if pools is not None:   # arbitrage pulls each venue toward its market
            for col, a in enumerate(c_idx):
                pools[col] = pools[col].arbitraged(market[a, i], config.arbitrage_share)
        fresh = False
        for a in range(len(names)):
            if math.isnan(oracle[a]) or should_publish(
                    last_price=oracle[a], last_time=oracle_t[a], price=market[a, i], time=t[i],
                    heartbeat=config.heartbeat, deviation=config.deviation):
                oracle[a], oracle_t[a], fresh = market[a, i], t[i], True
        count, repaid_step, deficit_step = 0, 0.0, 0.0
        if fresh or pending:
            pc, pd = oracle[c_idx], oracle[d_idx]
            # a full scan when an oracle moved; between updates only the rows at risk at the
            # last scan are re-checked (a row pushed under by interest alone waits for the
            # next update, at most one heartbeat)
            scan = candidates
            if fresh:   # matrix-vector products over the whole book: the fast full scan
                weighted, total_coll = coll @ (pc * lt), coll @ pc
                total_debt = (scaled @ pd) * index
                # toxic region: LTV above 1/bonus of the largest collateral (a liquidation
                # lowers the HF); the largest bonus screens, the row's own bonus decides
                maybe = np.flatnonzero((first_toxic < 0) & (total_coll > 0)
                                       & (total_debt * bonus.max() > total_coll))
                if maybe.size:
                    own = bonus[np.argmax(coll[maybe] * pc, axis=1)]
                    newly = maybe[total_debt[maybe] * own > total_coll[maybe]]
                    first_toxic[newly] = i
                    toxic_ltv[newly] = total_debt[newly] / total_coll[newly]
                scan = np.flatnonzero((weighted < total_debt) & (total_coll > 0))
            coll_value, debt_value = coll[scan] * pc, scaled[scan] * index * pd
            hf = health_factors(coll_value, debt_value, lt)
            at_risk = (hf < 1) & (coll_value.sum(axis=1) > 0) & (debt_value.sum(axis=1) > 0)
            rows, candidates = scan[at_risk], scan[at_risk]
            coll_value, debt_value, hf = coll_value[at_risk], debt_value[at_risk], hf[at_risk]
            pending = False
            if rows.size:
                j, k, repay_value = pick_pairs(coll_value, debt_value, hf, bonus, v33,
                                               config.close_factor)
                s = kernels.seize(repay_value / pd[j], pd[j], pc[k], coll[rows, k], bonus[k], fee)
                estimate = _quotes(pools, k, s.collateral_to_liquidator, market[c_idx[k], i])
                cost = s.debt_repaid * market[d_idx[j], i]
                profit = estimate - cost - config.gas_cost
                go = (profit > config.min_profit) & (s.debt_repaid > 0)
                pending = bool(rows.size)   # unprofitable or partial: look again next step
                if go.any():
                    r, j, k = rows[go], j[go], k[go]
                    coll[r, k] = np.where(s.capped[go], 0.0, coll[r, k] - s.collateral_seized[go])
                    left = scaled[r, j] - s.debt_repaid[go] / index
                    scaled[r, j] = np.where(left <= 1e-12 * scaled[r, j], 0.0, left)
                    deficit = np.zeros(r.size)
                    if v33:
                        empty = coll[r].sum(axis=1) == 0
                        deficit = np.where(empty, (scaled[r] * index * pd).sum(axis=1), 0.0)
                        scaled[r[empty]] = 0.0
                    repaid_value = s.debt_repaid[go] * pd[j]
                    realised = _sell(pools, k, s.collateral_to_liquidator[go],
                                     market[c_idx[k], i])
                    records.append({
                        "step": np.full(r.size, float(i)), "position": r.astype(np.float64),
                        "collateral_column": k.astype(np.float64),
                        "debt_column": j.astype(np.float64), "oracle_collateral_price": pc[k],
                        "oracle_debt_price": pd[j], "debt_repaid": s.debt_repaid[go],
                        "debt_repaid_value": repaid_value,
                        "collateral_seized": s.collateral_seized[go],
                        "collateral_to_liquidator": s.collateral_to_liquidator[go],
                        "protocol_fee": s.protocol_fee[go],
                        "estimated_proceeds": estimate[go], "realised_proceeds": realised,
                        "gas_cost": np.full(r.size, config.gas_cost),
                        "profit": realised - cost[go] - config.gas_cost, "deficit": deficit})
                    count, repaid_step = r.size, float(repaid_value.sum())
                    deficit_step = float(deficit.sum())
                    total_deficit += deficit_step
        for key, value in zip(step_rows, (t[i], count, repaid_step, deficit_step, index)):
            step_rows[key].append(value)
    return _result(book, coll, scaled * index, oracle[d_idx], records, step_rows, total_deficit,
                   first_toxic, toxic_ltv)


def _result(book: MultiBook, coll: Array, owed: Array, debt_prices: Array,
            records: list[dict[str, Array]], step_rows: dict[str, list[float]],
            total_deficit: float, first_toxic: NDArray[np.int64], toxic_ltv: Array) -> MultiResult:
    liquidations, steps = record_frames(
        records, _LIQ, step_rows, ("step", "position", "collateral_column", "debt_column"))
    liquidations = liquidations.with_columns(
        collateral_asset=pl.col("collateral_column").replace_strict(
            dict(enumerate(book.collateral_assets)), return_dtype=pl.Utf8),
        debt_asset=pl.col("debt_column").replace_strict(
            dict(enumerate(book.debt_assets)), return_dtype=pl.Utf8))
    underwater = (coll.sum(axis=1) == 0) & (owed.sum(axis=1) > 0)
    summary = {
        "positions": len(book), "liquidations": liquidations.height,
        "positions_liquidated": int(liquidations["position"].n_unique()) if liquidations.height else 0,
        "debt_repaid": float(liquidations["debt_repaid_value"].sum()),
        "liquidator_profit": float(liquidations["profit"].sum()),
        "deficit": total_deficit,
        "underwater_debt": float((owed[underwater] * debt_prices).sum()),
        "toxic_positions": int((first_toxic >= 0).sum()),
    }
    return MultiResult(liquidations, steps, coll, owed, summary, first_toxic, toxic_ltv)
