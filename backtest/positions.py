"""A position as the fold of its fills (nautilus style), plus its round-trip bookkeeping."""
from __future__ import annotations

import math
from typing import Any

from backtest.contracts import Contract, LinearContract

__all__ = ["Position"]


class Position:
    """One position: a symbol's net position (one-way) or one leg (hedge mode).

    Attributes
    ----------
    key : int
        Stable index of (symbol, position_side) in the run.
    sym : int
        Symbol index; ``symbol`` its ccxt name.
    position_side : str
        ``both`` (one-way), ``long`` or ``short`` (hedge legs).
    qty : float
        Signed size, base units (linear) or contracts (inverse), + long.
    entry_price : float
        Average entry price, quote currency (nan when flat).
    margin : float
        Isolated wallet of the position (0 in cross mode), margin asset.
    margin_mode : str
        ``isolated`` or ``cross``.
    leverage : float
        Leverage the position was opened with (initial margin = notional / leverage).
    liquidation_price, bankruptcy_price : float
        Cached venue prices, recomputed when the account changes (nan when none).
    contract : Contract
        The symbol's contract arithmetic (average entry, PnL; linear USDT by default).
    """

    __slots__ = ("key", "sym", "symbol", "position_side", "qty", "entry_price", "margin", "pnl",
                 "margin_mode", "leverage", "liquidation_price", "bankruptcy_price",
                 "trade_open_ts", "trade_qty", "trade_entry_notional", "trade_exit_qty",
                 "trade_exit_notional", "trade_pnl", "trade_fees", "trade_funding", "trade_side", "contract")

    def __init__(self, key: int, sym: int, symbol: str, position_side: str, margin_mode: str,
                 leverage: float, pnl: Any) -> None:
        self.key = key
        #: ``unrealized_pnl(*, signed_qty, entry_price, mark_price)``: the contract's, once
        #: :meth:`use_contract` ran (the venue's formula before).
        self.pnl = pnl
        self.contract: Contract = _LINEAR
        self.sym = sym
        self.symbol = symbol
        self.position_side = position_side
        self.margin_mode = margin_mode
        self.leverage = leverage
        self.qty = 0.0
        self.entry_price = math.nan
        self.margin = 0.0
        self.liquidation_price = math.nan
        self.bankruptcy_price = math.nan
        self._reset_trade()

    def _reset_trade(self) -> None:
        self.trade_open_ts = 0
        self.trade_qty = 0.0
        self.trade_entry_notional = 0.0
        self.trade_exit_qty = 0.0
        self.trade_exit_notional = 0.0
        self.trade_pnl = 0.0
        self.trade_fees = 0.0
        self.trade_funding = 0.0
        self.trade_side = 0

    def use_contract(self, contract: Contract) -> None:
        """Price this position with ``contract`` (its PnL, average entry, notional)."""
        self.contract = contract
        self.pnl = contract.unrealized_pnl

    def upnl(self, mark: float) -> float:
        """Unrealized PnL at ``mark`` by the venue's formula (0 when flat)."""
        if self.qty == 0.0:
            return 0.0
        return self.pnl(signed_qty=self.qty, entry_price=self.entry_price, mark_price=mark)

    @property
    def side(self) -> int:
        """+1 long, -1 short, 0 flat."""
        return (self.qty > 0) - (self.qty < 0)

    def apply_fill(self, signed_qty: float, price: float, ts: int) -> float:
        """Fold one fill into the position; return the realized PnL (quote currency).

        The fill must not cross zero (the broker splits a flip into a close and an open).
        Increases move the average entry (the contract's mean: arithmetic for linear,
        harmonic for inverse); reductions realize the contract's PnL of the closed quantity
        from the entry to the fill price (linear: ``s * closed * (price - entry)``).
        """
        qty = self.qty
        if qty == 0.0 or (qty > 0) == (signed_qty > 0):
            new_qty = qty + signed_qty
            if qty == 0.0:
                self.entry_price = price
                self.trade_open_ts = ts
                self.trade_side = 1 if signed_qty > 0 else -1
            else:
                self.entry_price = self.contract.average_entry(qty, self.entry_price,
                                                               signed_qty, price)
            self.qty = new_qty
            size = abs(signed_qty)
            self.trade_qty += size
            self.trade_entry_notional += self.contract.price_weight(size, price)
            return 0.0
        closed = min(abs(signed_qty), abs(qty))
        realized = self.pnl(signed_qty=closed if qty > 0 else -closed,
                            entry_price=self.entry_price, mark_price=price)
        remaining = qty + signed_qty
        if abs(remaining) <= 1e-12 * max(1.0, abs(qty)):
            remaining = 0.0
        self.qty = remaining
        self.trade_exit_qty += closed
        self.trade_exit_notional += self.contract.price_weight(closed, price)
        self.trade_pnl += realized
        return realized

    def trade_row(self, exit_ts: int, exit_price: float, pnl: float, exit_reason: str) -> tuple:
        """The round trip so far as a trades.parquet row tuple (entry = average fill price)."""
        entry = self.contract.mean_price(self.trade_qty, self.trade_entry_notional) \
            if self.trade_qty else math.nan
        return (self.symbol, "long" if self.trade_side > 0 else "short", self.trade_open_ts,
                exit_ts, self.trade_qty, entry, exit_price, pnl, self.trade_fees,
                self.trade_funding, exit_reason)

    def close_trade(self, exit_ts: int, exit_reason: str) -> tuple:
        """The finished round trip as a trades.parquet row tuple; resets the bookkeeping."""
        exit_price = (self.contract.mean_price(self.trade_exit_qty, self.trade_exit_notional)
                      if self.trade_exit_qty else math.nan)
        row = self.trade_row(exit_ts, exit_price, self.trade_pnl, exit_reason)
        self._reset_trade()
        self.entry_price = math.nan
        self.margin = 0.0
        self.liquidation_price = math.nan
        self.bankruptcy_price = math.nan
        return row


_LINEAR = LinearContract("USDT", 1.0)
