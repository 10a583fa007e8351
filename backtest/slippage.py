"""Slippage models: one method each (zipline style).

A model answers one question: by what fraction of the reference price is a taker or forced
fill moved against the order? ``impact(...)`` returns that fraction (>= 0); the engine applies
it against the order's side (a sell fills lower, a buy higher) and reports the difference as
``slippage_bps`` / ``slippage_cost`` in fills.parquet and liquidations.parquet.

Defaults and why
----------------
:class:`SqrtImpact` uses the square-root law of market impact,
``impact = k * sigma_bar * sqrt(qty / volume_bar)`` with ``k = 1``: Almgren, Thum, Hauptmann
& Li (2005, "Direct estimation of equity market impact") and Kissell's and Torre's (Barra)
models find impact proportional to volatility times the square root of the order's share of
volume with a coefficient of order one. With per-bar volatility and per-bar volume the
formula is scale invariant: for bars of length ``dt``, ``sigma_bar = sigma_day*sqrt(dt)`` and
``volume_bar = volume_day*dt`` give the same number as daily figures. ``sigma_bar`` is the
Parkinson range estimate ``ln(high/low) / (2*sqrt(ln 2))`` of the bar containing the fill.
Forced (liquidation) orders are multiplied by ``forced_factor = 2``: they are IOC orders that
must execute now, at the moment the book is thinnest (the move that liquidated them), so they
pay more than an orderly exit of the same size in the same bar; the factor is a judgement,
not a measured constant, and is a parameter.
"""
from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from backtest.errors import ConfigError, did_you_mean

__all__ = ["FixedBps", "NoSlippage", "SlippageModel", "SqrtImpact", "make_slippage"]

_PARKINSON = 2.0 * math.sqrt(math.log(2.0))


@runtime_checkable
class SlippageModel(Protocol):
    """What a slippage model provides."""

    def impact(self, *, qty: float, price: float, bar_high: float, bar_low: float,
               bar_volume: float, forced: bool) -> float:
        """Adverse price move as a fraction of ``price`` (>= 0).

        Parameters
        ----------
        qty : float
            Absolute order size, base units.
        price : float
            Reference (book) price before slippage, quote currency.
        bar_high, bar_low : float
            Last-price range of the bar containing the fill.
        bar_volume : float
            Traded volume of that bar, base units (nan when unknown).
        forced : bool
            True for a liquidation order.
        """
        ...


class NoSlippage:
    """Fills at the reference price."""

    def impact(self, *, qty: float, price: float, bar_high: float, bar_low: float,
               bar_volume: float, forced: bool) -> float:
        """Always 0."""
        return 0.0

    def __repr__(self) -> str:
        return "NoSlippage()"


class FixedBps:
    """A fixed fraction: ``bps`` for orderly taker fills, ``forced_bps`` for liquidations.

    Parameters
    ----------
    bps : float
        Basis points (1 bp = 0.01 %) for strategy market/stop fills.
    forced_bps : float, optional
        Basis points for liquidation fills; defaults to ``bps``.
    """

    def __init__(self, bps: float = 1.0, forced_bps: float | None = None) -> None:
        if bps < 0 or (forced_bps is not None and forced_bps < 0):
            raise ConfigError(f"FixedBps: expected bps >= 0, found bps={bps} forced_bps={forced_bps}")
        self.bps = float(bps)
        self.forced_bps = float(bps if forced_bps is None else forced_bps)

    def impact(self, *, qty: float, price: float, bar_high: float, bar_low: float,
               bar_volume: float, forced: bool) -> float:
        """``forced_bps`` or ``bps`` as a fraction."""
        return (self.forced_bps if forced else self.bps) * 1e-4

    def __repr__(self) -> str:
        return f"FixedBps(bps={self.bps}, forced_bps={self.forced_bps})"


class SqrtImpact:
    """Square-root impact ``k * sigma_bar * sqrt(qty / volume_bar)``, forced x ``forced_factor``.

    Parameters
    ----------
    k : float
        Coefficient of the square-root law (default 1, see the module docstring).
    forced_factor : float
        Multiplier for liquidation orders (default 2).
    min_sigma : float
        Floor of the per-bar volatility (fraction), so a flat bar still costs something.
    max_impact : float
        Cap of the impact fraction (a fill never moves more than this).
    """

    def __init__(self, k: float = 1.0, forced_factor: float = 2.0, min_sigma: float = 1e-4,
                 max_impact: float = 0.5) -> None:
        if k < 0 or forced_factor < 1 or min_sigma < 0 or not 0 < max_impact <= 1:
            raise ConfigError(
                "SqrtImpact: expected k >= 0, forced_factor >= 1, min_sigma >= 0, "
                f"0 < max_impact <= 1; found k={k}, forced_factor={forced_factor}, "
                f"min_sigma={min_sigma}, max_impact={max_impact}")
        self.k = float(k)
        self.forced_factor = float(forced_factor)
        self.min_sigma = float(min_sigma)
        self.max_impact = float(max_impact)

    def impact(self, *, qty: float, price: float, bar_high: float, bar_low: float,
               bar_volume: float, forced: bool) -> float:
        """Square-root impact fraction; a missing or zero volume counts as participation 1."""
        sigma = self.min_sigma
        if bar_low > 0 and bar_high > bar_low:
            sigma = max(sigma, math.log(bar_high / bar_low) / _PARKINSON)
        participation = 1.0
        if bar_volume == bar_volume and bar_volume > 0:
            participation = min(1.0, qty / bar_volume)
        value = self.k * sigma * math.sqrt(participation)
        if forced:
            value *= self.forced_factor
        return min(value, self.max_impact)

    def __repr__(self) -> str:
        return (f"SqrtImpact(k={self.k}, forced_factor={self.forced_factor}, "
                f"min_sigma={self.min_sigma}, max_impact={self.max_impact})")


_MODELS = {"none": NoSlippage, "fixed": FixedBps, "sqrt": SqrtImpact}


def make_slippage(spec: str | SlippageModel, params: dict | None = None) -> SlippageModel:
    """Build a model from a name (``none``, ``fixed``, ``sqrt``) and keyword arguments.

    Raises
    ------
    ConfigError
        Unknown name or parameter.
    """
    if not isinstance(spec, str):
        return spec
    if spec not in _MODELS:
        raise ConfigError(f"slippage: unknown model {spec!r}{did_you_mean(spec, _MODELS)}; "
                          f"expected one of {', '.join(_MODELS)}")
    import inspect

    accepted = [name for name in inspect.signature(_MODELS[spec]).parameters if name != "self"]
    for name in params or {}:
        if name not in accepted:
            raise ConfigError(f"slippage_params of slippage {spec!r}: unknown parameter {name!r}"
                              f"{did_you_mean(name, accepted)}; expected some of "
                              f"{', '.join(accepted) or '(none: this model takes no parameters)'}")
    try:
        return _MODELS[spec](**(params or {}))
    except TypeError as exc:
        raise ConfigError(f"slippage_params of slippage {spec!r}: expected keyword parameters of the model "
                          f"({', '.join(accepted)}), found {params!r} ({exc})") from None
