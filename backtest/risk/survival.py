"""Survival solvers: the largest leverage (or smallest margin) that keeps a risk target.

Every solver is a monotone bisection. With common random numbers — one set of simulated
paths reused for every candidate leverage — the estimated liquidation probability is a
non-decreasing step function of leverage (a higher leverage moves the venue liquidation price
towards the entry, so every path liquidated at a lower leverage is liquidated again), which
makes bisection exact up to its tolerance instead of chasing Monte Carlo noise.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


from backtest.risk.barriers import position_barrier
from backtest.risk.errors import RiskError
from backtest.risk.montecarlo import FirstPassage
from backtest.risk.stats import wilson_interval
from backtest.venues.tiers import TierTable

__all__ = [
    "SolverResult",
    "bisect_largest",
    "crash_survival_leverage",
    "max_leverage_for_probability",
    "max_leverage_mc",
    "mc_probability",
    "min_margin_for_probability",
    "path_probability",
]


@dataclass(frozen=True)
class SolverResult:
    """Outcome of a bisection.

    Attributes
    ----------
    value : float or None
        The largest admissible point found (leverage, or margin for margin solvers); None when
        even the most conservative end of the bracket fails the target.
    feasible_at_bound : bool
        True when the whole bracket is admissible (``value`` is then the upper bound itself).
    iterations : int
        Bisection steps taken.
    evaluations : list of (float, bool)
        Every point tried and whether it met the target, in order.
    detail : dict
        Solver-specific figures at ``value`` (probability, interval ...).
    """

    value: float | None
    feasible_at_bound: bool
    iterations: int
    evaluations: list[tuple[float, bool]] = field(default_factory=list)
    detail: dict = field(default_factory=dict)


def bisect_largest(ok: Callable[[float], bool], lo: float, hi: float, *, rel_tol: float = 1e-3,
                   max_iter: int = 100) -> SolverResult:
    """Largest ``x`` in ``[lo, hi]`` with ``ok(x)``, for ``ok`` true below a threshold and false above.

    Parameters
    ----------
    ok : callable
        Monotone predicate (True, ..., True, False, ..., False over increasing ``x``).
    lo, hi : float
        Bracket, ``0 < lo <= hi``.
    rel_tol : float, default 1e-3
        Stop when ``hi - lo <= rel_tol * lo``; the answer is the admissible end.
    """
    if not 0 < lo <= hi:
        raise RiskError(f"bisection bracket must satisfy 0 < lo <= hi, found lo={lo}, hi={hi}")
    trail: list[tuple[float, bool]] = []

    def check(x: float) -> bool:
        result = bool(ok(x))
        trail.append((x, result))
        return result

    if check(hi):
        return SolverResult(value=hi, feasible_at_bound=True, iterations=0, evaluations=trail)
    if not check(lo):
        return SolverResult(value=None, feasible_at_bound=False, iterations=0, evaluations=trail)
    iterations = 0
    while hi - lo > rel_tol * lo and iterations < max_iter:
        mid = math.sqrt(lo * hi)  # leverages span orders of magnitude: bisect in log space
        if check(mid):
            lo = mid
        else:
            hi = mid
        iterations += 1
    return SolverResult(value=lo, feasible_at_bound=False, iterations=iterations, evaluations=trail)


def path_probability(passage: FirstPassage, barrier_price: float, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """(estimate, Wilson low, Wilson high) of P(path extreme crosses ``barrier_price``)."""
    p = passage.probability_for_barrier(barrier_price)
    k = round(p * passage.n_paths)
    low, high = wilson_interval(k, passage.n_paths, confidence=confidence)
    return p, float(low), float(high)


def max_leverage_for_probability(
    probability: Callable[[float], float], *, target: float, lo: float = 1.0, hi: float = 125.0,
    rel_tol: float = 1e-3,
) -> SolverResult:
    """Largest leverage whose liquidation probability is ``<= target``.

    Parameters
    ----------
    probability : callable
        Leverage -> P(liquidation within the horizon); must be non-decreasing (use common
        random numbers, e.g. :func:`mc_probability`, or a closed form).
    target : float
        Highest acceptable probability, in (0, 1).
    lo, hi : float
        Leverage bracket (``hi`` is usually the venue's maximum for the notional).
    """
    if not 0 < target < 1:
        raise RiskError(f"survival target must be a probability in (0, 1), found {target}")
    result = bisect_largest(lambda lev: probability(lev) <= target, lo, hi, rel_tol=rel_tol)
    detail = {"target": target}
    if result.value is not None:
        detail["probability"] = probability(result.value)
    return SolverResult(result.value, result.feasible_at_bound, result.iterations, result.evaluations, detail)


def mc_probability(passage: FirstPassage, *, margin: float, tiers: TierTable, entry_price: float,
                   criterion: str = "estimate", confidence: float = 0.95) -> Callable[[float], float]:
    """Leverage -> liquidation probability on one fixed set of paths (common random numbers).

    ``criterion="estimate"`` uses the Monte Carlo estimate; ``"upper"`` the Wilson upper
    bound (a conservative answer: the target holds with the stated confidence).
    """
    if criterion not in ("estimate", "upper"):
        raise RiskError(f"criterion must be 'estimate' or 'upper', found {criterion!r}")
    index = 0 if criterion == "estimate" else 2

    def probability(leverage: float) -> float:
        barrier = position_barrier(leverage=leverage, side=passage.side, entry_price=entry_price, margin=margin,
                                   tiers=tiers)
        return path_probability(passage, barrier.liquidation_price, confidence=confidence)[index]

    return probability


def max_leverage_mc(passage: FirstPassage, *, target: float, margin: float, tiers: TierTable, entry_price: float,
                    criterion: str = "estimate", lo: float = 1.0, hi: float | None = None,
                    rel_tol: float = 1e-3) -> SolverResult:
    """:func:`max_leverage_for_probability` on simulated paths; ``hi`` defaults to the tier cap."""
    if hi is None:
        hi = _leverage_cap(tiers, margin)
    probability = mc_probability(passage, margin=margin, tiers=tiers, entry_price=entry_price, criterion=criterion)
    result = max_leverage_for_probability(probability, target=target, lo=lo, hi=hi, rel_tol=rel_tol)
    if result.value is not None:
        estimate, low, high = path_probability(passage, position_barrier(
            leverage=result.value, side=passage.side, entry_price=entry_price, margin=margin,
            tiers=tiers).liquidation_price)
        result.detail.update({"estimate": estimate, "ci_low": low, "ci_high": high, "criterion": criterion,
                              "n_paths": passage.n_paths})
    return result


def _leverage_cap(tiers: TierTable, margin: float) -> float:
    """Largest leverage L with L <= max_leverage of the bracket of notional margin * L."""
    caps = sorted({t.max_leverage for t in tiers.tiers}, reverse=True)
    for cap in caps:
        if tiers.max_leverage_for(margin * cap) >= cap:
            return float(cap)
    return float(min(caps))


def min_margin_for_probability(
    probability_at_margin: Callable[[float], float], *, target: float, notional: float, max_leverage: float,
    rel_tol: float = 1e-3,
) -> SolverResult:
    """Smallest isolated margin for a fixed notional whose liquidation probability is ``<= target``.

    ``probability_at_margin`` maps a margin (USDT) to P(liquidation); it must be
    non-increasing in the margin. The bracket is ``[notional / max_leverage, notional]``
    (1x). Bisection runs on the implied leverage ``notional / margin``; the result's
    ``value`` is the margin, USDT.
    """
    if not notional > 0 or not max_leverage >= 1:
        raise RiskError(f"min margin: need notional > 0 and max_leverage >= 1, found {notional}, {max_leverage}")
    lev = bisect_largest(lambda lev: probability_at_margin(notional / lev) <= target, 1.0, max_leverage,
                         rel_tol=rel_tol)
    margin = None if lev.value is None else notional / lev.value
    detail = {"target": target, "notional": notional, "leverage": lev.value}
    if margin is not None:
        detail["probability"] = probability_at_margin(margin)
    return SolverResult(margin, lev.feasible_at_bound, lev.iterations,
                        [(notional / x, okay) for x, okay in lev.evaluations], detail)


def crash_survival_leverage(survives: Callable[[float], bool], *, lo: float = 1.0, hi: float = 125.0,
                            rel_tol: float = 1e-2) -> SolverResult:
    """Largest leverage for which ``survives(leverage)`` holds (e.g. every named crash replayed).

    ``survives`` usually runs the crash replays through the engine
    (:func:`backtest.risk.replay.survives_all`); it must be monotone in the leverage.
    """
    return bisect_largest(survives, lo, hi, rel_tol=rel_tol)


