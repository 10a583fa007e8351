"""Contract specification of one market (the ``markets`` dataset row of docs/CONTRACTS.md §3)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["MarketSpec"]


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """A market's contract specification and fee levels at ``effective_from``.

    Attributes
    ----------
    exchange : str
        ccxt exchange id (``"binanceusdm"``).
    symbol : str
        ccxt unified symbol (``"BTC/USDT:USDT"``).
    effective_from : int
        UTC ms from which this spec holds.
    base, quote, settle : str
        Assets; ``settle`` is the margin asset.
    contract_type : str
        ``"linear"`` or ``"inverse"``.
    contract_size : float
        Base units per contract (linear) or USD face value per contract (inverse).
    tick_size : float
        Price increment, quote currency.
    lot_size : float
        Quantity increment (base units or contracts).
    min_qty : float
        Smallest order quantity.
    min_notional : float
        Smallest order notional, quote currency.
    maker_fee, taker_fee : float
        Trading fees in force at ``effective_from``, fractions of notional.
    liquidation_fee_rate : float
        Liquidation (clearance) fee in force at ``effective_from``, fraction of notional.
    """

    exchange: str
    symbol: str
    effective_from: int
    base: str
    quote: str
    settle: str
    contract_type: str
    contract_size: float
    tick_size: float
    lot_size: float
    min_qty: float
    min_notional: float
    maker_fee: float
    taker_fee: float
    liquidation_fee_rate: float

    def __post_init__(self) -> None:
        if self.contract_type not in ("linear", "inverse"):
            raise ValueError(
                f"MarketSpec {self.symbol}: contract_type must be 'linear' or 'inverse', "
                f"found {self.contract_type!r}"
            )
        for name in ("contract_size", "tick_size", "lot_size"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"MarketSpec {self.symbol}: {name} must be > 0, found {value}")
        for name in ("min_qty", "min_notional", "liquidation_fee_rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"MarketSpec {self.symbol}: {name} must be >= 0, found {getattr(self, name)}")

    def to_row(self) -> dict[str, Any]:
        """The spec as a ``markets`` row (``effective_from`` as int UTC ms)."""
        return asdict(self)
