"""Recommendations from a platform run: bracket table, position and open-interest caps, fund size.

Maintenance brackets (cascades.md §7.2 "Tiers"). Liquidating a position of notional ``N``
costs the venue, as a fraction of ``N``:

    r(N) = s(N) + f + z_q * sigma_q * sqrt(tau(N))

* ``s(N)`` — average slippage of sweeping ``N`` through the stressed book at once, without
  refill: :meth:`backtest.cascade.liquidity.LiquidityModel.average_distance` at the stress
  multiplier ``m_q`` (the ``1 - q`` quantile over the scenarios of the lowest multiplier
  reached, times the scenario's depth scale);
* ``f`` — the liquidation fee the venue pays or keeps (``PlatformVenue.liquidation_fee``);
* ``z_q sigma_q sqrt(tau)`` — price drift during disposal at confidence ``q``: ``sigma_q`` the
  ``q`` quantile over the scenarios of the last price's 1-s log-return volatility, ``tau(N)``
  the disposal time (one step, or ``ceil(N / disposal_cap)`` steps with a cap), ``z_q`` the
  standard normal quantile.

Binance's format is flat-rate-with-deduction: ``MM(N) = N * mmr_k - cum_k`` in bracket ``k``
with ``cum_k = cum_{k-1} + floor_k (mmr_k - mmr_{k-1})`` (so ``MM`` is continuous and equals
``MM(floor_k) + (N - floor_k) mmr_k``). A bracket covers its positions when
``MM(N) >= N r(N)`` for every ``N`` in ``[floor_k, cap_k]``, hence

    mmr_0 = max r(N) over (0, cap_0],
    mmr_k = max(mmr_{k-1}, max over N in (floor_k, cap_k] of (N r(N) - MM(floor_k)) / (N - floor_k)),

evaluated on a geometric grid and rounded up to a basis point. Brackets start at the venue's
own floors; the largest position is capped where ``r(N)`` reaches ``max_mmr`` (beyond it no
maintenance rate the venue offers covers the disposal), or earlier, where the last bracket's
rate would have to exceed ``max_mmr`` to cover it. Max leverage per bracket is
``floor(1 / (imr_ratio * mmr))`` (Binance's tables keep IMR = 2 x MMR, e.g. 125x at 0.4 %).

Open-interest cap per symbol: with ``phi_q`` the ``q`` quantile over the scenarios of the
liquidated share of open interest, the largest OI for which disposing ``phi_q * OI`` at once
loses no more than the symbol's share of the fund beyond the first bracket's maintenance:
``phi OI (r(phi OI) - mmr_0) <= fund * OI share``. Insurance-fund size for a target ADL
probability ``p``: the ``1 - p`` quantile of ``fund_needed`` (the largest cumulative net draw
of the liquidation fills on the fund; same fills, so a documented approximation: a larger
fund changes which inventory ADL closes, not the book fills before it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from backtest.cascade.liquidity import LiquidityModel
from backtest.platform.distribution import percentile
from backtest.platform.params import PlatformError

__all__ = ["StressedLoss", "check_targets", "compare_brackets", "fund_size", "oi_cap", "position_cap", "recommend_brackets"]

#: Grid points per bracket where coverage is enforced.
GRID_POINTS = 256
#: Rates are rounded up to this step (a basis point), as the venues publish them.
RATE_STEP = 1e-4


@dataclass(frozen=True)
class StressedLoss:
    """``r(N)`` of the module docstring for one symbol.

    Attributes
    ----------
    liquidity : LiquidityModel
        The symbol's book (depth at multiplier 1).
    multiplier : float
        Stressed depth multiplier ``m_q`` in (0, 1].
    fee : float
        Liquidation fee, fraction of notional.
    sigma_1s : float
        Stressed 1-s log-return volatility ``sigma_q``.
    confidence : float
        ``q`` (e.g. 0.99).
    step_s : float
        Cascade step, seconds.
    disposal_cap : float
        Notional per step, quote currency (``inf``: all in one step).
    """

    liquidity: LiquidityModel
    multiplier: float
    fee: float
    sigma_1s: float
    confidence: float
    step_s: float = 1.0
    disposal_cap: float = math.inf

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1:
            raise PlatformError(f"confidence: expected a level in [0.5, 1), found {self.confidence!r} (e.g. 0.99)")
        if not 0 < self.multiplier <= 1:
            raise PlatformError(f"stressed depth multiplier: expected (0, 1], found {self.multiplier!r}")

    @property
    def z(self) -> float:
        """Standard normal quantile of the confidence."""
        return NormalDist().inv_cdf(self.confidence)

    def disposal_seconds(self, notional: float) -> float:
        """``tau(N)``: steps needed to send ``N`` to the book, in seconds."""
        steps = 1.0 if math.isinf(self.disposal_cap) else max(1.0, math.ceil(notional / self.disposal_cap))
        return steps * self.step_s

    def slippage(self, notional: float) -> float:
        """``s(N)``: average relative fill distance of one sweep of ``N`` into the stressed book."""
        return self.liquidity.average_distance(0.0, notional, self.multiplier)

    def rate(self, notional: float) -> float:
        """``r(N)`` as a fraction of ``N``."""
        return (self.slippage(notional) + self.fee
                + self.z * self.sigma_1s * math.sqrt(self.disposal_seconds(notional)))


def check_targets(confidence: float, adl_probability: float, max_mmr: float) -> None:
    """Raise :class:`PlatformError` unless 0.5 <= confidence < 1, 0 < adl_probability < 1, 0 < max_mmr < 1."""
    for name, value, ok, example in (("confidence", confidence, 0.5 <= confidence < 1, "0.99"),
                                     ("target ADL probability", adl_probability, 0 < adl_probability < 1, "0.01"),
                                     ("max_mmr", max_mmr, 0 < max_mmr < 1, "0.5")):
        if not ok:
            raise PlatformError(f"{name}: expected a level in {'[0.5, 1)' if name == 'confidence' else '(0, 1)'}, "
                                f"found {value!r} (e.g. {example})")


def _round_up(rate: float) -> float:
    return math.ceil(rate / RATE_STEP - 1e-9) * RATE_STEP


def position_cap(loss: StressedLoss, max_mmr: float, upper: float = 1e13) -> float:
    """Largest notional with ``r(N) <= max_mmr`` (bisection in log space); 0 if none."""
    if loss.rate(1.0) > max_mmr:
        return 0.0
    if loss.rate(upper) <= max_mmr:
        return upper
    lo, hi = 1.0, upper
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if loss.rate(mid) <= max_mmr else (lo, mid)
        if hi / lo < 1 + 1e-9:
            break
    return lo


def recommend_brackets(floors: list[float], loss: StressedLoss, *, max_mmr: float = 0.5,
                       imr_ratio: float = 2.0, label: str = "recommended"):  # noqa: ANN201 - TierTable
    """The bracket table of the module docstring on ``floors`` (ascending, first 0).

    Returns
    -------
    backtest.venues.tiers.TierTable
        The brackets below the position cap; the last one ends at the cap.

    Raises
    ------
    PlatformError
        Bad floors or limits, or no position size the venue's ``max_mmr`` can cover.
    """
    from backtest.venues.tiers import TierTable

    if not floors or floors[0] != 0 or any(b <= a for a, b in zip(floors, floors[1:])):
        raise PlatformError(f"bracket floors: expected strictly increasing notionals starting at 0, found {floors[:6]}")
    if not 0 < max_mmr < 1 or imr_ratio < 1:
        raise PlatformError(f"bracket limits: expected 0 < max_mmr < 1 and imr_ratio >= 1, found {max_mmr}, {imr_ratio}")
    cap = position_cap(loss, max_mmr)
    kept = [f for f in floors if f < cap]
    if not kept:
        raise PlatformError(f"bracket recommendation: even a 1-unit position costs {loss.rate(1.0):.2%} to dispose "
                            f"under the stressed book, above max_mmr {max_mmr:.0%}; widen the depth or raise max_mmr")
    caps = kept[1:] + [cap]
    rates: list[float] = []
    mm_floor = 0.0
    for floor, top in zip(kept, caps):
        start = floor * (1 + 1e-3) if floor > 0 else top * 1e-6
        grid = np.geomspace(start, top, GRID_POINTS)
        needs = np.maximum.accumulate([(n * loss.rate(n) - mm_floor) / (n - floor) for n in grid.tolist()])
        needs = np.array([_round_up(max(x, rates[-1] if rates else 0.0)) for x in needs])
        if needs[-1] > max_mmr:
            # the deduction of the lower brackets leaves less margin than r(N) N near the cap:
            # end the table at the largest size this bracket still covers within max_mmr
            ok = np.flatnonzero(needs <= max_mmr)
            if len(ok) == 0:
                cap = floor
                break
            cap = float(grid[ok[-1]])
            rates.append(float(needs[ok[-1]]))
            break
        rates.append(float(needs[-1]))
        mm_floor += (top - floor) * rates[-1]  # MM(cap_k) = MM(floor_k) + (cap_k - floor_k) mmr_k
    kept = kept[:len(rates)]
    leverage = [max(1.0, float(math.floor(1.0 / (imr_ratio * r)))) for r in rates]
    return TierTable.from_rates(list(zip(kept, rates, leverage)), last_cap=cap, label=label)


def oi_cap(loss: StressedLoss, liquidated_share: float, fund_share: float, first_mmr: float) -> float:
    """Largest open interest whose stressed liquidated share loses at most ``fund_share``.

    ``inf`` when no scenario liquidated anything (nothing binds) or the loss never exceeds it
    below 1e13.
    """
    if liquidated_share <= 0:
        return math.inf

    def excess(oi: float) -> float:
        n = liquidated_share * oi
        return n * (loss.rate(n) - first_mmr) - fund_share

    if excess(1e13) <= 0:
        return math.inf
    lo, hi = 1.0, 1e13
    if excess(lo) > 0:
        return 0.0
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if excess(mid) <= 0 else (lo, mid)
        if hi / lo < 1 + 1e-9:
            break
    return lo


def fund_size(fund_needed: np.ndarray, adl_probability: float) -> float:
    """Fund that meets every scenario's need but a share ``adl_probability`` (``1 - p`` quantile)."""
    if not 0 < adl_probability < 1:
        raise PlatformError(f"target ADL probability: expected (0, 1), found {adl_probability!r} (e.g. 0.01)")
    return percentile(fund_needed, 1.0 - adl_probability)


def compare_brackets(reference, loss: StressedLoss, *, max_mmr: float = 0.5) -> list[dict]:  # noqa: ANN001
    """A reference table (e.g. Binance's) beside the recommendation on the same floors.

    Per reference bracket: its floor, cap and rate, the recommended rate, the stressed loss rate
    ``r`` at the bracket's cap (at the position cap for an unbounded bracket) and whether the
    reference maintenance margin covers it there (``MM(cap) >= cap * r(cap)``).
    """
    floors = [t.floor for t in reference.tiers]
    cap = position_cap(loss, max_mmr)
    try:
        ours = recommend_brackets(floors, loss, max_mmr=max_mmr)
    except PlatformError:
        ours = None
    rows = []
    for k, tier in enumerate(reference.tiers):
        top = min(tier.cap, cap) if math.isfinite(tier.cap) else cap
        recommended = ours.tiers[k].mmr if ours is not None and k < len(ours.tiers) else None
        need = loss.rate(top) if top > 0 else float("nan")
        rows.append({"bracket": k + 1, "notional_floor": tier.floor, "notional_cap": tier.cap,
                     "reference_mmr": tier.mmr, "recommended_mmr": recommended,
                     "stressed_loss_rate_at_cap": need,
                     "reference_covers": bool(top > tier.floor and tier.maintenance_margin(top) >= top * need)})
    return rows
