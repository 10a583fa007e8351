"""The account: wallet, positions of several symbols, leverage and margin mode per symbol.

Wallet convention: ``wallet`` is the total wallet balance of the margin asset; isolated
positions hold part of it as their isolated wallet (``Position.margin``), the rest is the
cross wallet (``wallet - sum of isolated margins``), as on Binance USDⓈ-M.
"""
from __future__ import annotations

from typing import Any

from backtest.positions import Position

__all__ = ["Account"]


class Account:
    """Wallet, positions and per-symbol settings of one run.

    Parameters
    ----------
    symbols : sequence of str
        The run's symbols (index = symbol id).
    initial_balance : float
        Starting wallet, margin asset.
    leverage : list of float
        Leverage per symbol.
    margin_mode : list of str
        ``isolated`` / ``cross`` per symbol.
    hedge : bool
        Hedge mode (long and short legs) instead of one-way.
    pnl : callable
        The venue's ``unrealized_pnl(*, signed_qty, entry_price, mark_price)``.
    """

    __slots__ = ("symbols", "wallet", "insurance_fund", "bad_debt", "leverage", "margin_mode",
                 "hedge", "positions", "_by_key", "sides", "sym_legs")

    def __init__(self, symbols: tuple[str, ...], initial_balance: float, leverage: list[float],
                 margin_mode: list[str], hedge: bool, pnl: Any) -> None:
        self.symbols = symbols
        self.wallet = float(initial_balance)
        self.insurance_fund = 0.0
        self.bad_debt = 0.0
        self.leverage = list(leverage)
        self.margin_mode = list(margin_mode)
        self.hedge = hedge
        self.positions: list[Position] = []
        self._by_key: dict[tuple[int, str], Position] = {}
        #: Sign of each symbol's net position (+1, -1, 0), kept current by :meth:`changed`.
        self.sides = [0] * len(symbols)
        sides = ("long", "short") if hedge else ("both",)
        legs: list[tuple[Position, ...]] = []
        for sym, symbol in enumerate(symbols):
            own = []
            for side in sides:
                pos = Position(len(self.positions), sym, symbol, side, margin_mode[sym],
                               leverage[sym], pnl)
                self.positions.append(pos)
                self._by_key[(sym, side)] = pos
                own.append(pos)
            legs.append(tuple(own))
        #: Position slots of each symbol (fixed for the run; one-way: one, hedge: long, short).
        self.sym_legs = tuple(legs)

    def position(self, sym: int, position_side: str) -> Position:
        """The position of symbol ``sym`` on ``position_side`` (``both``/``long``/``short``)."""
        return self._by_key[(sym, position_side)]

    def legs(self, sym: int) -> list[Position]:
        """All position slots of a symbol (one in one-way mode, two in hedge mode)."""
        return list(self.sym_legs[sym])

    def net_qty(self, sym: int) -> float:
        """Net signed quantity of a symbol (long legs minus short legs)."""
        return sum(p.qty for p in self.sym_legs[sym])

    @property
    def isolated_margin(self) -> float:
        """Sum of isolated wallets, margin asset."""
        total = 0  # the same sequential sum as sum() (int start, slot order)
        for p in self.positions:
            if p.qty != 0.0 and p.margin_mode == "isolated":
                total += p.margin
        return total

    @property
    def cross_wallet(self) -> float:
        """Wallet minus the isolated wallets, margin asset."""
        return self.wallet - self.isolated_margin

    def unrealized(self, marks: list[float]) -> float:
        """Unrealized PnL of all positions at ``marks`` (per symbol), margin asset."""
        return sum(p.upnl(marks[p.sym]) for p in self.positions if p.qty != 0.0)

    def equity(self, marks: list[float]) -> float:
        """Wallet plus unrealized PnL at ``marks``."""
        return self.wallet + self.unrealized(marks)

    def credit(self, amount: float, pos: Position | None = None) -> float:
        """Add ``amount`` (signed, margin asset) to a pool's wallet; return the shortfall.

        The pool is ``pos``'s isolated wallet when ``pos`` is isolated, else the cross wallet.
        A debit larger than the pool's balance takes the pool to zero, never below: the rest
        is the shortfall, bad debt paid by the insurance fund (Binance: "Negative wallet
        balances are reset to zero by the fund", margin_rules.md §2.1 step 3). This is the
        one wallet floor of the engine: funding, liquidations and fills all settle through it.

        Parameters
        ----------
        amount : float
            Money added to the pool (negative: taken from it), margin asset.
        pos : Position, optional
            The position whose pool pays or receives (None: the cross wallet).

        Returns
        -------
        float
            The part of a debit the pool could not pay (>= 0), margin asset.
        """
        isolated = pos is not None and pos.margin_mode == "isolated"
        balance = pos.margin if isolated else self.wallet - self.isolated_margin
        shortfall = 0.0
        if balance + amount < 0.0:
            shortfall = -(balance + amount)
            amount = -max(balance, 0.0)
        self.wallet += amount
        if isolated:
            pos.margin += amount
        self.cover(shortfall)
        return shortfall

    def cover(self, shortfall: float = 0.0) -> None:
        """Book ``shortfall`` as bad debt paid by the fund, and reset a negative wallet to zero.

        The floor's bookkeeping (see :meth:`credit`): the fund pays what the trader cannot.
        """
        if self.wallet < 0.0:
            shortfall -= self.wallet
            self.wallet = 0.0
        if shortfall > 0.0:
            self.bad_debt += shortfall
            self.insurance_fund -= shortfall

    def changed(self, sym: int | None = None) -> None:
        """Note a state change (net sides updated): of symbol ``sym`` only, or of every one."""
        sides = self.sides
        for s in (sym,) if sym is not None else range(len(sides)):  # a fill moves one symbol
            legs = self.sym_legs[s]
            net = legs[0].qty if len(legs) == 1 else legs[0].qty + legs[1].qty  # long + short
            sides[s] = (net > 0) - (net < 0)
