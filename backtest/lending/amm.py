"""A constant-product pool (Uniswap v2 style) where seized collateral is sold.

``x * y = k`` with ``x`` collateral tokens and ``y`` quote (base currency, e.g. USDC); a sale
of ``dx`` pays ``dy = y * dx * (1 - fee) / (x + dx * (1 - fee))``. Source: Uniswap v2 whitepaper
§3.2.1 and ``UniswapV2Library.getAmountOut`` (Uniswap/v2-periphery). Pure: operations return a
new pool.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from backtest.lending.checks import fraction, non_negative, positive

__all__ = ["ConstantProductPool"]


@dataclass(frozen=True, slots=True)
class ConstantProductPool:
    """Reserves ``collateral`` (tokens) and ``quote`` (base currency); ``fee`` fraction."""

    collateral: float
    quote: float
    fee: float = 0.003

    def __post_init__(self) -> None:
        positive("pool collateral reserve", self.collateral)
        positive("pool quote reserve", self.quote)
        fraction("pool fee", self.fee, high_open=True)

    @classmethod
    def at_price(cls, price: float, *, depth_quote: float, fee: float = 0.003) -> ConstantProductPool:
        """A pool at ``price`` holding ``depth_quote`` of quote (and ``depth_quote / price``
        collateral)."""
        return cls(positive("depth_quote", depth_quote) / positive("price", price), depth_quote, fee)

    @property
    def price(self) -> float:
        """Marginal price, quote per collateral token (before fee)."""
        return self.quote / self.collateral

    def amount_out(self, amount_in: ArrayLike) -> NDArray[np.float64]:
        """Quote received for selling ``amount_in`` collateral (each alone against this pool)."""
        dx = np.asarray(amount_in, dtype=np.float64) * (1.0 - self.fee)
        return self.quote * dx / (self.collateral + dx)

    def sell(self, amount_in: float) -> tuple[float, ConstantProductPool]:
        """Sell ``amount_in`` collateral: the quote received and the pool after the trade
        (the fee stays in the pool)."""
        amount = non_negative("amount sold", amount_in)
        out = float(self.amount_out(amount))
        return out, ConstantProductPool(self.collateral + amount, self.quote - out, self.fee)

    def arbitraged(self, target_price: float, share: float = 1.0) -> ConstantProductPool:
        """The pool after arbitrage closes ``share`` of the (log) gap to ``target_price``,
        keeping ``k`` (arbitrage fees ignored)."""
        positive("target price", target_price)
        new_price = self.price * (target_price / self.price) ** fraction("arbitrage share", share)
        k = self.collateral * self.quote
        collateral = float(np.sqrt(k / new_price))
        return ConstantProductPool(collateral, k / collateral, self.fee)
