"""Liquidity of one symbol's book under forced orders: depth curve, stress, refill, impact.

Cumulative depth on one side within a relative distance ``d`` of the index is
``D(d) = m * D0 * (d / d0) ** a`` (quote currency). Depth already swept and not yet refilled,
``C``, is removed from the near end, so a sweep of notional ``Q`` moves the touch from
``d(C)`` to ``d(C + Q)`` with ``d(x) = d0 * (x / (m D0)) ** (1/a)`` and fills on average at

    dbar = (m D0)^(-1/a) d0 * a/(a+1) * ((C+Q)^((a+1)/a) - C^((a+1)/a)) / Q.

The stress multiplier ``m`` in (0, 1] withdraws depth as realized volatility rises
(Brunnermeier-Pedersen; Kaiko 2025-10-13: books near mid "appeared empty"):
``m = max(m_min, 1 / (1 + beta * max(0, sigma / sigma_ref - 1)))`` with ``sigma`` the
exponentially weighted 1-s log-return volatility of the last price. ``C`` decays with the
refill half-life. A fraction of each sweep's move is permanent: it shifts the index, the rest
is temporary and refills.

Defaults and sources (cascades.md §4 (D), fact 5/6): BTC ``D0 = 3.5M`` USDT within ``d0 = 10``
bp and ``a = 0.674`` (Amberdata BTC/FDUSD Jul-Aug 2025: 3.50M within 10 bp, 16.53M within
100 bp; $10M moves > 50 bp); ETH at 0.4 of BTC (CoinDesk Research: 1 % depth ETH > $8M vs BTC
~$20M). Refill half-life 60 s, permanent fraction 0.25, beta 1, m_min 0.1 (only the 4 %/10 %
bands held bids on 2025-10-10): our assumptions, knobs to sweep (the ETH whale disposal, ~1.3 %
average slippage on $306M over hours, needs refill in minutes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from backtest.cascade.errors import CascadeError

__all__ = ["BookSide", "LiquidityModel", "default_liquidity"]

#: Depth scale of a symbol relative to BTC (cascades.md §4: CoinDesk Research 1 % depth).
DEPTH_SCALE = {"BTC": 1.0, "ETH": 0.4}
#: Scale for a symbol without a published depth figure: a thin book (assumption).
UNKNOWN_DEPTH_SCALE = 0.1


@dataclass(frozen=True)
class LiquidityModel:
    """Depth, stress and resilience of one symbol's book (see the module docstring).

    Attributes
    ----------
    depth_at_ref : float
        ``D0``: cumulative depth per side within ``ref_distance`` at ``m = 1``, quote currency.
    ref_distance : float
        ``d0``, a fraction of the index (0.001 = 10 bp).
    exponent : float
        ``a`` of the depth curve (0 < a).
    refill_half_life_s : float
        Half-life of swept depth, seconds.
    permanent_fraction : float
        Share of a sweep's move that shifts the index, in [0, 1).
    stress_beta : float
        Depth withdrawal per unit of excess volatility ratio.
    min_multiplier : float
        Floor of the stress multiplier, in (0, 1].
    reference_vol : float
        Calm 1-s log-return volatility (BTC ~2.5 %/day -> 8.5e-5 per second).
    vol_half_life_s : float
        Half-life of the volatility estimate, seconds.
    max_distance : float
        Largest relative touch distance a sweep can reach (the book's far end), e.g. 0.95.
    """

    depth_at_ref: float = 3.5e6
    ref_distance: float = 0.001
    exponent: float = 0.674
    refill_half_life_s: float = 60.0
    permanent_fraction: float = 0.25
    stress_beta: float = 1.0
    min_multiplier: float = 0.1
    reference_vol: float = 8.5e-5
    vol_half_life_s: float = 60.0
    max_distance: float = 0.95

    def __post_init__(self) -> None:
        checks = (("depth_at_ref", self.depth_at_ref > 0), ("ref_distance", 0 < self.ref_distance < 1),
                  ("exponent", self.exponent > 0), ("refill_half_life_s", self.refill_half_life_s > 0),
                  ("permanent_fraction", 0 <= self.permanent_fraction < 1),
                  ("stress_beta", self.stress_beta >= 0), ("min_multiplier", 0 < self.min_multiplier <= 1),
                  ("reference_vol", self.reference_vol > 0), ("vol_half_life_s", self.vol_half_life_s > 0),
                  ("max_distance", 0 < self.max_distance < 1))
        for name, ok in checks:
            if not ok:
                raise CascadeError(f"liquidity model: {name} = {getattr(self, name)!r} is out of range; "
                                   "see docs/cascade.md for the meaning and default of each field")

    def multiplier(self, sigma: float) -> float:
        """Stress multiplier ``m`` for a 1-s volatility ``sigma``."""
        excess = max(0.0, sigma / self.reference_vol - 1.0)
        return max(self.min_multiplier, 1.0 / (1.0 + self.stress_beta * excess))

    def touch(self, consumed: float, m: float) -> float:
        """Relative touch distance after ``consumed`` quote currency is swept at stress ``m``."""
        if consumed <= 0:
            return 0.0
        return min(self.max_distance,
                   self.ref_distance * (consumed / (m * self.depth_at_ref)) ** (1.0 / self.exponent))

    def consumed_at(self, distance: float, m: float) -> float:
        """Inverse of :meth:`touch`: swept notional that puts the touch at ``distance``."""
        if distance <= 0:
            return 0.0
        return m * self.depth_at_ref * (distance / self.ref_distance) ** self.exponent

    def average_distance(self, consumed: float, notional: float, m: float) -> float:
        """Average relative fill distance of a sweep of ``notional`` after ``consumed``."""
        if notional <= 0:
            return self.touch(consumed, m)
        a = self.exponent
        k = (m * self.depth_at_ref) ** (-1.0 / a) * self.ref_distance
        power = (a + 1.0) / a
        dbar = k * a / (a + 1.0) * ((consumed + notional) ** power - consumed ** power) / notional
        return min(self.max_distance, dbar)

    def impact_slope(self, consumed: float, m: float) -> float:
        """``d(touch)/d(notional)`` at ``consumed``, per quote unit (for the loop gain)."""
        floor = max(consumed, 1e-6 * m * self.depth_at_ref)
        return self.touch(floor, m) / (self.exponent * floor)


class BookSide:
    """Mutable swept-depth state of one book side (bid or ask) of one symbol.

    Holds only ``consumed`` (quote currency swept and not yet refilled); the curve is the
    symbol's :class:`LiquidityModel`.
    """

    __slots__ = ("consumed", "model")

    def __init__(self, model: LiquidityModel) -> None:
        self.model = model
        self.consumed = 0.0

    def sweep(self, notional: float, m: float) -> tuple[float, float, float]:
        """Sweep ``notional``; return ``(average distance, touch before, touch after)``."""
        before = self.model.touch(self.consumed, m)
        dbar = self.model.average_distance(self.consumed, notional, m)
        self.consumed += notional
        after = self.model.touch(self.consumed, m)
        return dbar, before, after

    def make_permanent(self, moved: float, m: float) -> float:
        """Turn ``permanent_fraction`` of a touch move into an index shift; return the shift.

        The swept depth is reduced so that the touch, measured from the shifted index, keeps
        the last price where the sweep left it.
        """
        shift = self.model.permanent_fraction * moved
        touch = self.model.touch(self.consumed, m)
        self.consumed = self.model.consumed_at(max(0.0, touch - shift), m)
        return shift

    def refill(self, dt: float) -> None:
        """Decay swept depth over ``dt`` seconds with the refill half-life."""
        self.consumed *= math.exp(-math.log(2.0) * dt / self.model.refill_half_life_s)


def default_liquidity(symbol: str, **overrides: float) -> LiquidityModel:
    """The default model of ``symbol`` (depth scaled from BTC, see the module docstring)."""
    base = symbol.split("/")[0].upper()
    scale = DEPTH_SCALE.get(base, UNKNOWN_DEPTH_SCALE)
    model = LiquidityModel(depth_at_ref=LiquidityModel.depth_at_ref * scale)
    return replace(model, **overrides) if overrides else model
