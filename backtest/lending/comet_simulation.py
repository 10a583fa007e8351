"""Vectorized Compound v3 (Comet) liquidations: ``absorb`` then ``buyCollateral``, reserves
bearing the shortfall.

One row per account (one collateral asset against a base-asset debt worth 1 base unit, USDC).
At each step:

1. the venue is arbitraged toward the market; the push oracle (Comet reads Chainlink feeds)
   publishes under :func:`backtest.lending.oracle.should_publish`;
2. accounts with ``collateral·price·liquidateCF < debt`` (:func:`is_liquidatable_v`, strict)
   are candidates (a full scan at each oracle update; between updates only the candidates are
   re-checked, so an account pushed under by interest alone is found at the next update, at
   most one heartbeat later); after ``latency_steps`` an absorber-buyer (the usual bot: ``absorb`` and
   ``buyCollateral`` in one transaction) acts when buying the whole seized collateral at the
   store-front price and selling it into the venue beats gas plus ``min_profit``;
3. ``absorb``: the protocol seizes *all* the collateral, credits ``value·liquidationFactor``
   to the account (:func:`absorbed_balance_v`, floored at 0: the rest of the debt is forgiven,
   a surplus stays with the user as supplied base) and pays ``new − old`` out of its reserves;
4. ``buyCollateral`` (only while ``reserves < target_reserves``): the buyer pays
   ``collateral·price·(1 − storeFrontPriceFactor·(1 − liquidationFactor))``
   (:func:`store_front_discount_v`) into the reserves and sells the collateral into the venue
   (all the step's purchases as one batch, pro-rata proceeds). With reserves at or above the
   target the collateral stays with the protocol (``not_for_sale``) and is valued at the final
   oracle price.

The protocol's bad debt is the base it paid out in absorbs minus what the collateral brought
back (sales, plus unsold collateral at the final price), floored at 0: reserves absorb it
(``reserves_end`` may go negative). The ``liquidation_bonus`` column of a population holds
``2 − liquidationFactor`` for Comet (liquidation factor 0.95 -> 1.05: the penalty as a
multiplier, like Aave's bonus) and ``liquidation_threshold`` the liquidate collateral factor.

Sources: [COMET] compound-finance/comet @ d5a30b0aaeff7755f1431e87f818990902237b03
``contracts/Comet.sol`` (``isLiquidatable``, ``absorbInternal``, ``buyCollateral``,
``quoteCollateral``); margin_rules.md §9; the agent model of cascades.md §7.3.
Not modelled: liquidator points (the absorber's reward), the kinked rate curve (one
``borrow_rate``), several collaterals per account.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from backtest.lending.amm import ConstantProductPool
from backtest.lending.checks import fraction
from backtest.lending.depth import DepthCurve
from backtest.lending.errors import LendingParameterError
from backtest.lending.simulation import PositionBook
from backtest.lending.stepping import check_market_config, market_step, record_frames

__all__ = ["CometConfig", "CometResult", "absorbed_balance_v", "is_liquidatable_v",
           "liquidation_factor_from_bonus", "simulate_comet", "store_front_discount_v"]

Array = NDArray[np.float64]
Venue = ConstantProductPool | DepthCurve


def is_liquidatable_v(collateral: ArrayLike, price: float, liquidate_cf: ArrayLike,
                      debt: ArrayLike) -> NDArray[np.bool_]:
    """``debt > 0`` and ``collateral·price·liquidateCF < debt`` (strict; base price 1).
    Source: [COMET] ``isLiquidatable``."""
    debt = np.asarray(debt, dtype=np.float64)
    return (debt > 0) & (np.asarray(collateral) * price * np.asarray(liquidate_cf) < debt)


def absorbed_balance_v(base_balance: ArrayLike, credited_value: ArrayLike,
                       base_price: float = 1.0) -> Array:
    """``max(0, balance + Σ value·liquidationFactor / basePrice)`` (base tokens; balance < 0
    when borrowed). Source: [COMET] ``absorbInternal``; the one definition
    :func:`backtest.lending.compound_v3.absorbed_base_balance` uses."""
    return np.maximum(0.0, np.asarray(base_balance, dtype=np.float64)
                      + np.asarray(credited_value, dtype=np.float64) / base_price)


def store_front_discount_v(store_front_price_factor: ArrayLike,
                           liquidation_factor: ArrayLike) -> Array:
    """``storeFrontPriceFactor·(1 − liquidationFactor)``. Source: [COMET] ``quoteCollateral``;
    the one definition :func:`backtest.lending.compound_v3.store_front_discount` uses."""
    return np.asarray(store_front_price_factor, dtype=np.float64) * (
        1.0 - np.asarray(liquidation_factor, dtype=np.float64))


def liquidation_factor_from_bonus(bonus: ArrayLike) -> Array:
    """The population column ``liquidation_bonus`` (``2 − liquidationFactor``) as Comet's
    liquidation factor."""
    return 2.0 - np.asarray(bonus, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class CometConfig:
    """Market and agents of a Comet run.

    Attributes
    ----------
    store_front_price_factor : float
        Share of the liquidation penalty given to buyers as a discount (cUSDCv3: 0.5-0.6).
    reserves : float
        Protocol base reserves at the start, base tokens.
    target_reserves : float
        ``buyCollateral`` is allowed only while reserves are below this, base tokens.
    heartbeat, deviation : float
        Oracle update rule (seconds, fraction).
    gas_cost, min_profit : float
        Base currency per absorb+buy transaction, and the buyer's minimum profit.
    latency_steps : int
        Steps between an account first seen liquidatable and the transaction.
    arbitrage_share : float
        Share of the venue-market log gap closed per step.
    feedback : bool
        The oracle reads the venue price (cascades).
    borrow_rate : float
        Annual borrow rate accrued on debts (one index).
    """

    store_front_price_factor: float = 0.6
    reserves: float = 0.0
    target_reserves: float = math.inf
    heartbeat: float = 3600.0
    deviation: float = 0.005
    gas_cost: float = 0.0
    min_profit: float = 0.0
    latency_steps: int = 0
    arbitrage_share: float = 1.0
    feedback: bool = False
    borrow_rate: float = 0.0

    def __post_init__(self) -> None:
        fraction("store_front_price_factor", self.store_front_price_factor)
        if math.isnan(self.reserves) or math.isinf(self.reserves):
            raise LendingParameterError(f"CometConfig.reserves: expected a finite number of base "
                                        f"tokens, found {self.reserves!r}")
        if math.isnan(self.target_reserves):
            raise LendingParameterError("CometConfig.target_reserves: expected a number (inf: "
                                        "always for sale), found NaN")
        check_market_config("CometConfig", self)


@dataclass(frozen=True)
class CometResult:
    """``liquidations`` (one row per absorb, with its purchase), ``steps``, final balances
    (``collateral``, ``debt`` owed, ``supplied`` base credited back), the protocol's
    ``reserves`` path and ``summary`` (base currency)."""

    liquidations: pl.DataFrame
    steps: pl.DataFrame
    collateral: Array
    debt: Array
    supplied: Array
    summary: dict[str, Any]
    toxic_step: NDArray[np.int64]
    toxic_ltv: Array


_LIQ = ("step", "position", "oracle_price", "debt_absorbed", "collateral_seized",
        "value_credited", "base_paid_out", "surplus_to_user", "collateral_bought", "base_paid",
        "estimated_proceeds", "realised_proceeds", "gas_cost", "profit")
_STEPS = ("ts", "market_price", "pool_price", "oracle_price", "borrow_index", "liquidations",
          "debt_repaid", "collateral_sold", "reserves")


def simulate_comet(book: PositionBook, times: ArrayLike, market_prices: ArrayLike, venue: Venue,
                   config: CometConfig = CometConfig()) -> CometResult:
    """Run ``book`` (``liquidation_threshold`` = liquidateCF, ``liquidation_bonus`` =
    ``2 − liquidationFactor``) through ``(times, market_prices)``; step order in the module
    docstring. Amounts in base tokens (price 1) and collateral tokens."""
    t = np.asarray(times, dtype=np.float64)
    market = np.asarray(market_prices, dtype=np.float64)
    if t.ndim != 1 or t.shape != market.shape or t.size == 0 or np.any(np.diff(t) <= 0) \
            or not (np.all(np.isfinite(market)) and np.all(market > 0)):
        raise LendingParameterError(
            "simulate_comet: times and market_prices must be 1-D, of equal non-zero length, "
            "times strictly increasing, prices finite and > 0")
    lf = liquidation_factor_from_bonus(book.liquidation_bonus)
    if np.any(lf <= 0) or np.any(lf > 1):
        raise LendingParameterError(
            "compound_v3 positions: liquidation_bonus holds 2 - liquidationFactor and must be in "
            "[1, 2); fix the rows")
    discount = store_front_discount_v(config.store_front_price_factor, lf)
    n = len(book)
    coll, scaled = book.collateral.copy(), book.debt.copy()
    supplied = np.zeros(n)
    cf = book.liquidation_threshold
    first_seen = np.full(n, -1, dtype=np.int64)
    candidates = np.zeros(0, dtype=np.int64)
    first_toxic, toxic_ltv = np.full(n, -1, dtype=np.int64), np.full(n, math.nan)
    index, reserves, reserves0 = 1.0, config.reserves, config.reserves
    oracle, oracle_t = math.nan, -math.inf
    held = 0.0   # collateral the protocol keeps unsold (not_for_sale)
    paid_out = sold_for = 0.0
    records: list[dict[str, Array]] = []
    rows_steps: dict[str, list[float]] = {k: [] for k in _STEPS}
    for i in range(t.size):
        index, venue, fresh, oracle, oracle_t = market_step(i, t, market, venue, config, index,
                                                            oracle, oracle_t)
        # a full scan only when the oracle moved; between updates only the accounts already
        # liquidatable (waiting on latency or profit) can be absorbed (interest only adds debt)
        if fresh:
            owed = scaled * index
            # toxic region: the liquidation penalty exceeds the equity (LTV > 1/bonus)
            newly = (first_toxic < 0) & (coll > 0) & (owed * book.liquidation_bonus > coll * oracle)
            if newly.any():
                first_toxic[newly] = i
                toxic_ltv[newly] = owed[newly] / (coll[newly] * oracle)
            now = np.flatnonzero(is_liquidatable_v(coll, oracle, cf, owed) & (coll > 0))
            first_seen[candidates[~np.isin(candidates, now)]] = -1
            candidates = now
        else:
            candidates = candidates[coll[candidates] > 0]
        first_seen[candidates[first_seen[candidates] < 0]] = i
        ready = candidates[i - first_seen[candidates] >= config.latency_steps]
        count, repaid_step, sold_step = 0, 0.0, 0.0
        if ready.size:
            for_sale = reserves < 0 or reserves < config.target_reserves
            c, d = coll[ready], scaled[ready] * index
            price_paid = c * oracle * (1.0 - discount[ready])
            estimate = venue.amount_out(c) if for_sale else np.zeros(ready.size)
            profit = estimate - price_paid - config.gas_cost
            # without a sale nobody profits: absorbers still act (gas paid by points), at once
            go = (profit > config.min_profit) if for_sale else np.ones(ready.size, dtype=bool)
            if go.any():
                rows, c, d = ready[go], c[go], d[go]
                credited = c * oracle * lf[rows]
                new_balance = absorbed_balance_v(-d, credited)
                base_out = new_balance + d
                reserves -= float(base_out.sum())
                paid_out += float(base_out.sum())
                coll[rows], scaled[rows], supplied[rows] = 0.0, 0.0, new_balance
                first_seen[rows] = -1
                if for_sale:
                    paid = price_paid[go]
                    total = float(c.sum())
                    proceeds, venue = venue.sell(total)
                    realised = proceeds * (c / total) if total > 0 else np.zeros_like(c)
                    reserves += float(paid.sum())
                    sold_for += float(paid.sum())
                    bought, est = c, estimate[go]
                else:
                    held += float(c.sum())
                    paid = bought = est = realised = np.zeros(rows.size)
                gas = np.full(rows.size, config.gas_cost)
                records.append({
                    "step": np.full(rows.size, float(i)), "position": rows.astype(np.float64),
                    "oracle_price": np.full(rows.size, oracle), "debt_absorbed": d,
                    "collateral_seized": c, "value_credited": credited,
                    "base_paid_out": base_out, "surplus_to_user": new_balance,
                    "collateral_bought": bought, "base_paid": paid, "estimated_proceeds": est,
                    "realised_proceeds": realised, "gas_cost": gas,
                    "profit": realised - paid - gas})
                count, repaid_step, sold_step = rows.size, float(d.sum()), float(bought.sum())
        for key, value in zip(_STEPS, (t[i], market[i], venue.price, oracle, index, count,
                                       repaid_step, sold_step, reserves)):
            rows_steps[key].append(value)
    liquidations, steps = record_frames(records, _LIQ, rows_steps)
    owed = scaled * index
    unsold_value = held * oracle
    shortfall = max(0.0, paid_out - sold_for - unsold_value)
    summary = {
        "positions": n, "liquidations": liquidations.height,
        "positions_liquidated": liquidations.height,
        "debt_repaid": float(liquidations["debt_absorbed"].sum()),
        "collateral_sold": float(liquidations["collateral_bought"].sum()),
        "liquidator_profit": float(liquidations["profit"].sum()),
        "base_paid_out": paid_out, "collateral_sales": sold_for,
        "collateral_unsold": held, "reserves_start": reserves0, "reserves_end": reserves,
        "deficit": shortfall, "underwater_debt": 0.0,
        "toxic_positions": int((first_toxic >= 0).sum()),
        "final_oracle_price": float(oracle), "borrow_index": index,
    }
    return CometResult(liquidations, steps, coll, owed, supplied, summary, first_toxic,
                       toxic_ltv)
