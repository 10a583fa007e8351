"""Market data under stress (:class:`StressMarket`) and a slippage model scaled by a factor
(:class:`ScaledSlippage`): what every stress scenario of :mod:`backtest.risk.scenarios`
takes and returns, and how a whole-run liquidity drought reaches the engine."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from backtest.risk.errors import ScenarioError

__all__ = ["ScaledSlippage", "StressMarket"]


@dataclass(frozen=True)
class StressMarket:
    """Market data under stress: frames in the engine's format and a slippage multiplier.

    Attributes
    ----------
    bars : dict of str to DataFrame
        Per symbol: ``ts, open, high, low, close, volume[, mark_open, mark_high, mark_low, mark_close]``.
    funding : dict of str to DataFrame
        Per symbol: ``ts, rate, interval_hours, mark_price``.
    slippage_multiplier : float
        Factor applied to every slippage impact (1 = unchanged).
    applied : tuple of str
        Descriptions of the transforms applied, in order.
    tiers, markets : dict, optional
        Per symbol tier schedule and market spec (e.g. from the store loader); None: the
        venue's built-in tables.
    warnings : tuple of str
        Data-quality warnings of the unstressed data (kept in every run's manifest).
    """

    bars: dict[str, pl.DataFrame]
    funding: dict[str, pl.DataFrame] = field(default_factory=dict)
    slippage_multiplier: float = 1.0
    applied: tuple[str, ...] = ()
    tiers: dict[str, Any] | None = None
    markets: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()
    #: Injected ADL events (``backtest.adl.AdlEvent``), added to the run's config.
    adl_events: tuple[Any, ...] = ()

    def with_bars(self, bars: dict[str, pl.DataFrame], note: str) -> StressMarket:
        """A copy with other bars and one more note."""
        return replace(self, bars=bars, applied=self.applied + (note,))

    def market_data(self, *, timeframe: str, **kwargs: Any) -> Any:
        """``backtest.MarketData.from_frames`` of the stressed frames (kwargs passed through)."""
        from backtest.market_data import MarketData

        warnings = [*self.warnings, *kwargs.pop("quality_warnings", ()), *(f"stress: {n}" for n in self.applied)]
        kwargs.setdefault("tiers", self.tiers)
        kwargs.setdefault("markets", self.markets)
        return MarketData.from_frames(self.bars, self.funding or None, timeframe=timeframe,
                                      quality_warnings=warnings, **kwargs)

    def config(self, base: Any) -> Any:
        """``base`` (a RunConfig) with its slippage model scaled by ``slippage_multiplier`` and
        the injected ADL events added."""
        if self.adl_events:
            base = base.replace(adl_events=tuple(base.adl_events) + tuple(self.adl_events))
        if self.slippage_multiplier == 1.0:
            return base
        from backtest.slippage import make_slippage

        model = make_slippage(base.slippage, base.slippage_params)
        return base.replace(slippage=ScaledSlippage(model, self.slippage_multiplier), slippage_params={})


class ScaledSlippage:
    """A slippage model whose impact is another model's times ``multiplier`` (capped at 1)."""

    def __init__(self, base: Any, multiplier: float) -> None:
        if not multiplier > 0:
            raise ScenarioError(f"slippage multiplier must be > 0, found {multiplier}")
        self.base = base
        self.multiplier = float(multiplier)

    def impact(self, *, qty: float, price: float, bar_high: float, bar_low: float, bar_volume: float,
               forced: bool) -> float:
        """The base model's impact times the multiplier, never above 100 %."""
        value = self.base.impact(qty=qty, price=price, bar_high=bar_high, bar_low=bar_low,
                                 bar_volume=bar_volume, forced=forced)
        return min(1.0, value * self.multiplier)

    def __repr__(self) -> str:
        return f"ScaledSlippage({self.base!r}, multiplier={self.multiplier})"
