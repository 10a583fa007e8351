"""Contract arithmetic per symbol: linear and inverse perpetuals, built from the market spec.

Every place of the engine that turns a quantity and a price into money (notional, PnL, fees,
initial margin, an order's size for a notional, the average entry) asks the symbol's
:class:`Contract`; nothing else multiplies a quantity by a price. Money is in the contract's
**margin asset** (``settle`` of the market spec): USDT for Binance USDⓈ-M, the coin for COIN-M.

Source: margin_rules.md §1 ("linear: notional = Q*P, UPNL = s*Q*(P - EP); inverse: notional
= Q/P in coin with Q = contracts * contract size in USD, UPNL = s*Q*(1/EP - 1/P)") and §2.2
(Binance COIN-M: contract size 100 USD for BTCUSD, 10 USD for the others; notional in coin =
contracts*CS/mark). The harmonic average entry of an inverse position is the entry that keeps
``sum s*Q_i/EP_i`` (the coin cost of the fills), BitMEX "Perpetual Contracts Guide" examples
and Binance COIN-M "average entry price".

Worked example (inverse, BTCUSD, CS = 100 USD): 100 contracts long at 25,000 are worth
``100*100/25,000 = 0.4 BTC``; at 20,000 their PnL is ``100*100*(1/25,000 - 1/20,000) =
-0.1 BTC``; adding 100 contracts at 20,000 gives an average entry of
``200 / (100/25,000 + 100/20,000) = 22,222.22`` (not the arithmetic 22,500).
"""
from __future__ import annotations

import math
from typing import Any

__all__ = ["Contract", "InverseContract", "LinearContract", "contract_for", "linear_average_entry",
           "linear_notional", "linear_pnl", "linear_price_move_value"]


def linear_pnl(signed_qty: float, entry_price: float, mark_price: float) -> float:
    """PnL ``q * (mark - entry)`` of a linear contract, ``q`` signed (+ long), margin asset.

    Source: margin_rules.md §1 ("linear: UPNL = s*Q*(P - EP)"). The one definition:
    :meth:`LinearContract.unrealized_pnl` is this function, ``binance_usdm.unrealized_pnl``
    calls it and the kernel compiles it (``backtest.kernel.compiled``; positional-or-keyword,
    as numba compiles no keyword-only function).
    """
    return signed_qty * (mark_price - entry_price)


def linear_notional(qty: float, price: float) -> float:
    """Absolute notional ``|qty| * price`` of a linear contract, margin asset (margin_rules.md
    §1); :meth:`LinearContract.notional`, compiled by the kernel too."""
    return abs(qty) * price


def linear_average_entry(qty: float, entry_price: float, add_qty: float, price: float) -> float:
    """Entry after adding ``add_qty`` (same sign as ``qty``) at ``price``: the arithmetic mean
    (USDT); :meth:`LinearContract.average_entry`, compiled by the kernel too."""
    return (qty * entry_price + add_qty * price) / (qty + add_qty)


def linear_price_move_value(qty: float, price_from: float, price_to: float) -> float:
    """Value (margin asset, >= 0) of moving ``qty`` from one price to another (slippage);
    :meth:`LinearContract.price_move_value`, compiled by the kernel too."""
    return qty * abs(price_to - price_from)


class Contract:
    """Arithmetic of one symbol's contract (base class; see the two kinds below).

    Attributes
    ----------
    margin_asset : str
        Asset of the wallet, PnL, fees and margins (the spec's ``settle``).
    contract_size : float
        Base units per contract (linear) or USD face value per contract (inverse).
    inverse : bool
        True for a coin-margined inverse contract.
    """

    __slots__ = ("margin_asset", "contract_size")
    inverse = False

    def __init__(self, margin_asset: str, contract_size: float) -> None:
        if not (contract_size > 0 and math.isfinite(contract_size)):
            raise ValueError(f"contract size must be a finite number > 0, found {contract_size!r}")
        self.margin_asset = margin_asset
        self.contract_size = float(contract_size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.margin_asset!r}, {self.contract_size:g})"

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and other.margin_asset == self.margin_asset  # type: ignore[attr-defined]
                and other.contract_size == self.contract_size)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.margin_asset, self.contract_size))


class LinearContract(Contract):
    """A linear (quote-margined) contract: quantity in base units, money in the quote.

    The expressions are written exactly as the engine wrote them inline before (``abs(q) *
    price``, ``q * (price - entry)``), so every float is the same.
    """

    __slots__ = ()

    # The money formulas are the module's functions themselves (static methods: one
    # definition, shared with the compiled kernel, and no extra call on the event path).
    notional = staticmethod(linear_notional)

    def qty_for_notional(self, notional: float, price: float) -> float:
        """Quantity (base units) whose notional at ``price`` is ``notional``."""
        return notional / price

    unrealized_pnl = staticmethod(linear_pnl)  # called unrealized_pnl(signed_qty=, entry_price=, mark_price=)
    average_entry = staticmethod(linear_average_entry)
    price_move_value = staticmethod(linear_price_move_value)

    def price_weight(self, qty: float, price: float) -> float:
        """A fill's weight in an average price: ``qty * price`` (arithmetic mean)."""
        return qty * price

    def mean_price(self, qty: float, weight: float) -> float:
        """Average price of fills totalling ``qty`` with summed :meth:`price_weight`."""
        return weight / qty

    def to_usd(self, amount: float, price: float) -> float:
        """An amount of the margin asset in USD (a USD-pegged quote: itself)."""
        return amount


class InverseContract(Contract):
    """An inverse (coin-margined) contract: quantity in contracts of ``contract_size`` USD.

    Money is in the coin: notional ``|n| * CS / price``, PnL ``s * n * CS * (1/EP - 1/P)``
    (margin_rules.md §1, §2.2; Binance COIN-M FAQ ceccfcfb...).
    """

    __slots__ = ()
    inverse = True

    def notional(self, qty: float, price: float) -> float:
        """Absolute notional in coin ``|contracts| * CS / price``."""
        return abs(qty) * self.contract_size / price

    def qty_for_notional(self, notional: float, price: float) -> float:
        """Contracts whose coin notional at ``price`` is ``notional``."""
        return notional * price / self.contract_size

    def unrealized_pnl(self, *, signed_qty: float, entry_price: float, mark_price: float) -> float:
        """``s * contracts * CS * (1/EP - 1/P)``, coin."""
        return signed_qty * self.contract_size * (1.0 / entry_price - 1.0 / mark_price)

    def average_entry(self, qty: float, entry_price: float, add_qty: float, price: float) -> float:
        """Harmonic mean: the entry that keeps the coin cost ``sum n_i*CS/EP_i`` of the fills."""
        return (qty + add_qty) / (qty / entry_price + add_qty / price)

    def price_move_value(self, qty: float, price_from: float, price_to: float) -> float:
        """Coin value (>= 0) of moving ``qty`` contracts from one price to another."""
        return abs(qty) * self.contract_size * abs(1.0 / price_from - 1.0 / price_to)

    def price_weight(self, qty: float, price: float) -> float:
        """A fill's weight in an average price: ``qty / price`` (harmonic mean)."""
        return qty / price

    def mean_price(self, qty: float, weight: float) -> float:
        """Harmonic average price of fills totalling ``qty`` with summed :meth:`price_weight`."""
        return qty / weight

    def to_usd(self, amount: float, price: float) -> float:
        """A coin amount in USD at ``price`` (USD per coin)."""
        return amount * price


def contract_for(market: Any) -> Contract:
    """The :class:`Contract` of a market spec (``contract_type``, ``contract_size``, ``settle``).

    Raises
    ------
    ValueError
        For a contract type other than ``linear`` / ``inverse``.
    """
    kind = getattr(market, "contract_type", "linear")
    settle = getattr(market, "settle", "USDT")
    if kind == "linear":
        # a linear contract's quantity is in base units throughout the engine (CONTRACTS.md
        # §2): the size is kept for display only and never scales the arithmetic
        return LinearContract(settle, float(getattr(market, "contract_size", 1.0) or 1.0))
    if kind == "inverse":
        return InverseContract(settle, float(market.contract_size))
    raise ValueError(f"{getattr(market, 'symbol', '?')}: contract_type must be 'linear' or "
                     f"'inverse', found {kind!r}; fix the market spec")
