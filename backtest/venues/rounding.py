"""Rounding prices to a venue's tick or to a number of decimals, as venues display them.

Venues publish liquidation prices rounded to the tick, sometimes in the conservative direction
(margin_rules.md §13: Bybit's inverse example 5,739.08 is shown as 5,739.50, i.e. rounded up
to the 0.5 USD tick; BitMEX floors a short's LP to the tick). Rounding is done in decimal
arithmetic so that 0.1-ticks do not pick up binary noise.
"""
from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Literal

__all__ = ["round_price"]

_MODES = {"nearest": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "up": ROUND_CEILING,
          "down": ROUND_FLOOR}


def round_price(price: float, *, tick: float | None = None, decimals: int | None = None,
                mode: Literal["nearest", "half_even", "up", "down"] = "nearest") -> float:
    """Round ``price`` to a multiple of ``tick`` or to ``decimals`` decimal places.

    Parameters
    ----------
    price : float
        Price in quote currency.
    tick : float, optional
        Price increment (e.g. 0.1); exclusive with ``decimals``.
    decimals : int, optional
        Number of decimals (e.g. 2); exclusive with ``tick``.
    mode : {"nearest", "half_even", "up", "down"}
        ``up``/``down`` round towards +inf/-inf.

    Returns
    -------
    float
    """
    if (tick is None) == (decimals is None):
        raise ValueError("round_price: pass exactly one of tick= or decimals=")
    if mode not in _MODES:
        raise ValueError(f"round_price: mode must be one of {sorted(_MODES)}, found {mode!r}")
    step = Decimal(str(tick)) if tick is not None else Decimal(1).scaleb(-int(decimals))
    if step <= 0:
        raise ValueError(f"round_price: tick must be > 0, found {tick}")
    units = (Decimal(repr(price)) / step).quantize(Decimal(1), rounding=_MODES[mode])
    return float(units * step)
