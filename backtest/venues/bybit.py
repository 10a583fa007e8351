"""Bybit (classic account) perpetuals: isolated linear and pre-UTA inverse formulas, pure.

Units: linear USDT perpetual — prices in USDT, ``size`` in base units, money in USDT.
Inverse perpetual — ``contracts`` of 1 USD face value, prices in USD, money in coin.

Sources:

* [LP-USDT] Bybit help "Liquidation Price (USDT Contract)",
  https://testnet.bybit.com/en-US/help-center/s/article/Liquidation-Price-USDT-Contract
  (``LP(long) = EP - (IM - MM)/size - extraMargin/size``; example 1 BTC @ 20,000, 50x,
  MMR 0.5 % -> 19,700).
* [BP-USDT] Bybit help "Bankruptcy Price (USDT Contract)" / "Initial Margin (Inverse
  Contract)" snippets (https://www.bybitx.global/fil-PH/help-center/search-result?page=46&pageSize=10&query=trade):
  10,000 at 50x long -> 9,800; 12,000 BTCUSD @ 8,000, 50x -> 0.03 BTC.
* [MM-TIER] Bybit help "Maintenance Margin (USDT Contract)" (excess over a tier is charged at
  the next tier's rate), https://www.bybit-global.com/kk-KZ/help-center/search-result?page=29&pageSize=10&query=Bybit
* [INV-CROSS] Bybit help (2019-2021) "How to calculate Liquidation Price (Inverse
  Contract)", https://help.bybit.com/hc/en-us/articles/360039261334 (cross example: 0.5 BTC,
  long 10,000 @ 8,000 -> bankruptcy 5,718.57, liquidation 5,739.50 on the 0.5 USD tick).
* [FT] freqtrade/freqtrade @ c9ae5e1e9ff25bb55dd61f5e5519f7c479291edb
  ``freqtrade/exchange/bybit.py`` and jesse-ai/jesse @ 682b17148b5e3949e7c850ead207c53968b0ccf2
  ``jesse/models/Position.py`` (simplified ``EP*(1 -/+ 1/lev +/- MMR)``).
* margin_rules.md §3.
"""
from __future__ import annotations

from collections.abc import Sequence

from backtest.venues.tiers import progressive_sum
from backtest.venues.catalog import VenueInfo

__all__ = [
    "inverse_cross_bankruptcy_price",
    "inverse_cross_liquidation_price",
    "inverse_initial_margin",
    "isolated_bankruptcy_price",
    "isolated_liquidation_price",
    "isolated_liquidation_price_rate_form",
    "tiered_maintenance_margin",
]


def _side(side: int) -> int:
    if side not in (1, -1):
        raise ValueError(f"side must be +1 (long) or -1 (short), found {side!r}")
    return side


def _leverage(leverage: float) -> float:
    if not leverage > 0:
        raise ValueError(f"leverage must be > 0, found {leverage}")
    return leverage


def isolated_liquidation_price(*, side: int, size: float, entry_price: float, leverage: float,
                               mmr: float, mm_deduction: float = 0.0,
                               extra_margin: float = 0.0) -> float:
    """Isolated USDT-perpetual liquidation price (classic account), USDT.

    ``PV = size*EP``, ``IM = PV/leverage``, ``MM = PV*MMR - deduction``;
    ``LP = EP - s*(IM - MM)/size - s*extraMargin/size``. Source: [LP-USDT]. Note that Bybit
    evaluates MM at the entry value, unlike Binance (notional at the liquidation price).
    """
    s = _side(side)
    if not size > 0:
        raise ValueError(f"size must be > 0, found {size}")
    position_value = size * entry_price
    im = position_value / _leverage(leverage)
    mm = position_value * mmr - mm_deduction
    return entry_price - s * (im - mm) / size - s * extra_margin / size


def isolated_liquidation_price_rate_form(*, side: int, entry_price: float, leverage: float,
                                         mmr: float) -> float:
    """Simplified isolated LP ``EP*(1 - s/leverage + s*MMR)`` used by freqtrade and jesse, USDT.

    Equals :func:`isolated_liquidation_price` without MM deduction or extra margin. Source:
    [FT] (``bybit.py``, jesse ``Position.py``).
    """
    s = _side(side)
    return entry_price * (1.0 - s / _leverage(leverage) + s * mmr)


def isolated_bankruptcy_price(*, side: int, entry_price: float, leverage: float) -> float:
    """Isolated USDT-perpetual bankruptcy price ``EP*(1 - s/leverage)``, USDT. Source: [BP-USDT]."""
    return entry_price * (1.0 - _side(side) / _leverage(leverage))


def tiered_maintenance_margin(position_value: float,
                              tiers: Sequence[tuple[float, float]]) -> float:
    """Progressive risk-limit maintenance margin: each slice at its tier's MMR, USDT.

    Equal to ``PV*MMR_k - deduction_k``. Source: [MM-TIER]; ``tiers`` = ``(floor, mmr)``.
    """
    return progressive_sum(abs(position_value), tiers)


def inverse_initial_margin(*, contracts: float, price: float, leverage: float,
                           contract_size: float = 1.0) -> float:
    """Inverse initial margin ``contracts*CS/(price*leverage)``, coin. Source: [BP-USDT]."""
    return abs(contracts) * contract_size / (price * _leverage(leverage))


def inverse_cross_bankruptcy_price(*, side: int, contracts: float, entry_price: float,
                                   available_balance: float, taker_fee: float) -> float:
    """Pre-UTA inverse cross bankruptcy price with the exit taker fee reserved, USD.

    Long: ``BP = (1 + fee)*Q / (Q/EP + balance)`` ([INV-CROSS], 1.00075 factor). Short (the
    same zero-equity-after-fee equation with the opposite PnL sign, derived, no worked
    example): ``BP = (1 - fee)*Q / (Q/EP - balance)``.
    """
    s = _side(side)
    q = abs(contracts)
    return (1.0 + s * taker_fee) * q / (q / entry_price + s * available_balance)


def inverse_cross_liquidation_price(*, side: int, contracts: float, entry_price: float,
                                    account_balance: float, order_margin: float,
                                    mmr: float, taker_fee: float) -> float:
    """Pre-UTA inverse cross liquidation price, USD (unrounded).

    Solves ``s*Q*(1/EP - 1/LP) = -(balance - order margin - Q/EP*MMR - Q*fee/BP)`` with BP
    from :func:`inverse_cross_bankruptcy_price` ([INV-CROSS]; the page shows the result
    rounded up to the 0.5 USD tick for a long: 5,739.08 -> 5,739.50).
    """
    s = _side(side)
    q = abs(contracts)
    available = account_balance - order_margin
    bp = inverse_cross_bankruptcy_price(side=s, contracts=q, entry_price=entry_price,
                                        available_balance=available, taker_fee=taker_fee)
    cushion = available - q / entry_price * mmr - q * taker_fee / bp
    return 1.0 / (1.0 / entry_price + s * cushion / q)


#: Coverage for ``margincall venues``: isolated linear ([LP-USDT]) and pre-UTA inverse cross
#: ([INV-CROSS]); the tier tables are passed in by the caller, none is held here.
VENUE_INFO = VenueInfo(name="bybit", title="Bybit classic account perpetuals (USDT linear, inverse)",
                       modes=(("linear", "isolated"), ("inverse", "cross")))
