"""Aave v3 liquidation rules as numpy kernels: the one definition both the scalar functions of
:mod:`backtest.lending.aave_v3` and the vectorized simulation use.

Inputs are floats or arrays (broadcast together); outputs are arrays (0-d for scalars). No
validation here: the scalar API validates, the simulation validates its arrays once.
Units as in :mod:`backtest.lending.aave_v3` (whole tokens, base-currency prices).

Sources: [LL30] aave/aave-v3-core @ 782f51917056a53a2c228701058a6c3fb233684a and [LL33]
aave-dao/aave-v3-origin @ fd1fbd9150426ca8ace9cee45b4acf912ae84f5b,
``contracts/protocol/libraries/logic/LiquidationLogic.sol``; margin_rules.md §8.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CLOSE_FACTOR_HF_THRESHOLD",
    "DEFAULT_CLOSE_FACTOR",
    "MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD",
    "MIN_LEFTOVER_BASE",
    "SeizureArrays",
    "close_factor_v30",
    "largest_repay",
    "max_liquidatable_debt_v33",
    "seize",
]

#: HF at or below which 100 % of the debt may be repaid ([LL30], [LL33]: 0.95e18).
CLOSE_FACTOR_HF_THRESHOLD = 0.95
#: Share of the debt repayable above that HF ([LL30]/[LL33]: 0.5e4 bps).
DEFAULT_CLOSE_FACTOR = 0.5
#: v3.3: below this collateral or debt (base currency; 2,000e8 USD) 100 % is repayable ([LL33]).
MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2000.0
#: v3.3: a partial liquidation must leave this much of debt and collateral ([LL33]: threshold/2).
MIN_LEFTOVER_BASE = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD / 2

Array = NDArray[np.float64]


def close_factor_v30(health_factor: ArrayLike,
                     close_factor: float = DEFAULT_CLOSE_FACTOR) -> Array:
    """v3.0-v3.2: 0.5 (``close_factor``, a platform-view parameter), or 1.0 where
    ``HF <= 0.95``. Source: [LL30]."""
    return np.where(np.asarray(health_factor) <= CLOSE_FACTOR_HF_THRESHOLD, 1.0, close_factor)


def max_liquidatable_debt_v33(reserve_collateral_base: ArrayLike, reserve_debt_base: ArrayLike,
                              total_debt_base: ArrayLike, health_factor: ArrayLike,
                              threshold_base: float = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD,
                              close_factor: float = DEFAULT_CLOSE_FACTOR) -> Array:
    """v3.3: the whole reserve debt, or ``min(reserve debt, 50 % of total debt)`` (50 % =
    ``close_factor``) where both reserves are worth >= ``threshold_base`` and ``HF > 0.95``
    (base currency). Source: [LL33]."""
    reserve_debt = np.asarray(reserve_debt_base, dtype=np.float64)
    limited = ((np.asarray(reserve_collateral_base) >= threshold_base)
               & (reserve_debt >= threshold_base)
               & (np.asarray(health_factor) > CLOSE_FACTOR_HF_THRESHOLD))
    capped = np.minimum(reserve_debt, np.asarray(total_debt_base) * close_factor)
    return np.where(limited, capped, reserve_debt)


def largest_repay(reserve_collateral_base: ArrayLike, reserve_debt_base: ArrayLike,
                  total_debt_base: ArrayLike, health_factor: ArrayLike, bonus: ArrayLike,
                  v33: bool, close_factor: float = DEFAULT_CLOSE_FACTOR) -> Array:
    """The largest debt (base currency) a liquidator may repay on one collateral/debt pair.

    v3.0-v3.2: the close factor times the reserve debt. v3.3: :func:`max_liquidatable_debt_v33`;
    a partial liquidation that would leave less than ``MIN_LEFTOVER_BASE`` of debt or of the
    collateral (``must_not_leave_dust``) is shrunk to leave ``MIN_LEFTOVER_BASE`` of collateral,
    as a liquidator does to get through. Source: [LL30]/[LL33] ``executeLiquidationCall``."""
    coll = np.asarray(reserve_collateral_base, dtype=np.float64)
    debt = np.asarray(reserve_debt_base, dtype=np.float64)
    bonus = np.asarray(bonus, dtype=np.float64)
    if not v33:
        return close_factor_v30(health_factor, close_factor) * debt
    repay = max_liquidatable_debt_v33(coll, debt, total_debt_base, health_factor,
                                      close_factor=close_factor)
    seized_value = repay * bonus
    partial = (repay < debt) & (seized_value < coll)
    dusty = partial & ((debt - repay < MIN_LEFTOVER_BASE) | (coll - seized_value < MIN_LEFTOVER_BASE))
    return np.where(dusty, np.maximum(0.0, (coll - MIN_LEFTOVER_BASE) / bonus), repay)


class SeizureArrays(NamedTuple):
    """Per liquidation: debt repaid, collateral seized (to liquidator + fee), the liquidator's
    part, the protocol fee (collateral tokens) and whether the balance capped the seizure."""

    debt_repaid: Array
    collateral_seized: Array
    collateral_to_liquidator: Array
    protocol_fee: Array
    capped: NDArray[np.bool_]


def seize(debt_to_cover: ArrayLike, debt_price: ArrayLike, collateral_price: ArrayLike,
          collateral_balance: ArrayLike, liquidation_bonus: ArrayLike,
          liquidation_protocol_fee: ArrayLike) -> SeizureArrays:
    """``seized = debt * P_debt / P_coll * bonus`` capped at the balance (then the debt repaid
    is ``balance * P_coll / P_debt / bonus``); fee ``(seized - seized/bonus) * fee``.
    Source: [LL30]/[LL33] ``_calculateAvailableCollateralToLiquidate``."""
    debt = np.asarray(debt_to_cover, dtype=np.float64)
    p_debt = np.asarray(debt_price, dtype=np.float64)
    p_coll = np.asarray(collateral_price, dtype=np.float64)
    balance = np.asarray(collateral_balance, dtype=np.float64)
    bonus = np.asarray(liquidation_bonus, dtype=np.float64)
    wanted = debt * p_debt / p_coll * bonus
    capped = wanted > balance
    seized = np.where(capped, balance, wanted)
    repaid = np.where(capped, balance * p_coll / p_debt / bonus, debt)
    fee = (seized - seized / bonus) * np.asarray(liquidation_protocol_fee, dtype=np.float64)
    return SeizureArrays(repaid, seized, seized - fee, fee, capped)
