"""Interest accrual of a borrow reserve: the variable borrow index.

A borrower's debt is ``scaled debt x index``; the index grows by the compounded borrow rate
between updates, so one scalar per reserve accrues every position at once (Aave's
``variableBorrowIndex``; Compound's ``borrowIndex`` and Maker's ``rate`` accumulator work alike).

Source: [MATH] aave/aave-v3-core @ 782f51917056a53a2c228701058a6c3fb233684a
``contracts/protocol/libraries/math/MathUtils.sol`` ``calculateCompoundedInterest`` (a
three-term binomial expansion of ``(1 + r / SECONDS_PER_YEAR) ** dt``) and
``ReserveLogic._updateIndexes``.
"""
from __future__ import annotations

from backtest.lending.checks import non_negative

__all__ = ["SECONDS_PER_YEAR", "compounded_interest"]

#: [MATH] ``SECONDS_PER_YEAR = 365 days``.
SECONDS_PER_YEAR = 365 * 86_400


def compounded_interest(rate: float, seconds: float) -> float:
    """Growth factor of the borrow index over ``seconds`` at the annual ``rate`` (0.05 = 5 %).

    ``1 + r*dt + dt(dt-1) r^2 / 2 + dt(dt-1)(dt-2) r^3 / 6`` with ``r`` the per-second rate
    (``rate / SECONDS_PER_YEAR``) and ``dt`` in seconds, as [MATH] computes it (the expansion
    stops at the cube: it slightly under-counts against true compounding, as on chain).
    """
    r = non_negative("borrow rate", rate) / SECONDS_PER_YEAR
    dt = non_negative("accrual seconds", seconds)
    if dt == 0 or r == 0:
        return 1.0
    second = dt * (dt - 1) * r * r / 2 if dt > 1 else 0.0
    third = dt * (dt - 1) * (dt - 2) * r ** 3 / 6 if dt > 2 else 0.0
    return 1.0 + r * dt + second + third
