"""A depth curve (order-book market) where seized collateral can be sold instead of a pool.

Cumulative bid depth ``D(d) = depth * (d / ref_move) ** alpha`` (quote currency within a
relative move ``d`` below the touch). Selling notional ``Q`` (at the pre-trade price) moves the
touch by ``d(Q) = ref_move * (Q / depth) ** (1 / alpha)`` and fills on average
``d(Q) * alpha / (1 + alpha)`` below the pre-trade price. The move is permanent until arbitrage
(book refill) closes part of the gap to the market each step (:meth:`arbitraged`, the same
interface as :class:`backtest.lending.amm.ConstantProductPool`, so the simulation takes either).

Source: ../shared/specs/cascades.md §4 (D), "Derived calibration": Binance BTC/FDUSD
``D(d) ~ 3.5M * (d / 10 bp) ** 0.674`` (Amberdata), average fill ``a / (1 + a) ~ 0.40`` of the
final level; the defaults below are that calibration. Moves are capped at 99 % (the book never
pays a negative price).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from backtest.lending.checks import fraction, non_negative, positive

__all__ = ["DepthCurve"]

_MAX_MOVE = 0.99


@dataclass(frozen=True, slots=True)
class DepthCurve:
    """``price`` (quote per collateral token), ``depth`` quote within ``ref_move`` (fraction)
    of the touch, power ``alpha`` of the cumulative depth."""

    price: float
    depth: float = 3.5e6
    ref_move: float = 0.001
    alpha: float = 0.674

    def __post_init__(self) -> None:
        positive("depth curve price", self.price)
        positive("depth curve depth", self.depth)
        fraction("depth curve ref_move", self.ref_move, high_open=True)
        positive("depth curve alpha", self.alpha)
        if self.ref_move == 0:
            positive("depth curve ref_move", self.ref_move)

    def _move(self, notional: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.minimum(self.ref_move * (notional / self.depth) ** (1.0 / self.alpha), _MAX_MOVE)

    def amount_out(self, amount_in: ArrayLike) -> NDArray[np.float64]:
        """Quote received for selling ``amount_in`` tokens (each alone against this book)."""
        qty = np.asarray(amount_in, dtype=np.float64)
        notional = qty * self.price
        return notional * (1.0 - self._move(notional) * self.alpha / (1.0 + self.alpha))

    def sell(self, amount_in: float) -> tuple[float, DepthCurve]:
        """Sell ``amount_in`` tokens: the quote received and the book after the sweep."""
        qty = non_negative("amount sold", amount_in)
        notional = np.float64(qty * self.price)
        out = float(self.amount_out(qty))
        moved = float(self._move(notional))
        return out, DepthCurve(self.price * (1.0 - moved), self.depth, self.ref_move, self.alpha)

    def arbitraged(self, target_price: float, share: float = 1.0) -> DepthCurve:
        """The book after refill closes ``share`` of the (log) gap to ``target_price``."""
        positive("target price", target_price)
        new = self.price * (target_price / self.price) ** fraction("arbitrage share", share)
        return DepthCurve(new, self.depth, self.ref_move, self.alpha)
