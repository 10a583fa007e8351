"""The account: wallet, positions of several symbols, leverage and margin mode per symbol.

Wallet convention: ``wallet`` is the total wallet balance of the margin asset; isolated
positions hold part of it as their isolated wallet (``Position.margin``), the rest is the
cross wallet (``wallet - sum of isolated margins``), as on Binance USDⓈ-M.

With collateral (Multi-Assets Mode, ``backtest.ledger``) the cross wallet also holds the
collateral's haircut value, the wallet may be negative while collateral covers it, and the
wallet floor auto-exchanges collateral before the insurance fund pays. The insurance fund's
balance series lives in ``backtest.insurance_fund``; ``insurance_fund`` here is the run's own
contribution to it.
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

    __slots__ = ("symbols", "wallet", "bad_debt", "leverage", "margin_mode",
                 "hedge", "positions", "_by_key", "sides", "sym_legs", "fund", "ledger", "clock")

    def __init__(self, symbols: tuple[str, ...], initial_balance: float, leverage: list[float],
                 margin_mode: list[str], hedge: bool, pnl: Any) -> None:
        self.symbols = symbols
        self.wallet = float(initial_balance)
        from backtest.insurance_fund import InsuranceFund

        #: The venue's insurance fund (replaced by the run state with the configured one).
        self.fund = InsuranceFund(None, 0)
        #: Collateral besides the wallet (``backtest.ledger.Ledger``), or None.
        self.ledger: Any = None
        #: ``now``/``bar`` of the run (``backtest.ledger.StateClock``), for the fund's series.
        self.clock: Any = None
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
        """Wallet minus the isolated wallets, plus the collateral's haircut value, margin asset."""
        if self.ledger is None:
            return self.wallet - self.isolated_margin
        return self.wallet - self.isolated_margin + self.ledger.value

    @property
    def collateral(self) -> float:
        """Haircut value of the collateral at its last repricing (0 without), margin asset."""
        return 0.0 if self.ledger is None else self.ledger.value

    @property
    def insurance_fund(self) -> float:
        """The run's own contribution to the insurance fund so far (+ = the fund gained), USDT."""
        return self.fund.own

    @insurance_fund.setter
    def insurance_fund(self, value: float) -> None:
        # the liquidation engine assigns its running total; the fund books the difference as
        # one row of its series (at the run's current time)
        self.fund.set_own(value, "liquidation", self.clock.now if self.clock is not None else 0)

    def unrealized(self, marks: list[float]) -> float:
        """Unrealized PnL of all positions at ``marks`` (per symbol), margin asset."""
        return sum(p.upnl(marks[p.sym]) for p in self.positions if p.qty != 0.0)

    def equity(self, marks: list[float]) -> float:
        """Wallet plus collateral value plus unrealized PnL at ``marks``."""
        if self.ledger is None:
            return self.wallet + self.unrealized(marks)
        return self.wallet + self.ledger.value + self.unrealized(marks)

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
        balance = pos.margin if isolated else self.cross_wallet
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
        With collateral a negative wallet is first auto-exchanged from it, as the venue does
        (margin_rules.md §11: when the balance is below -10,000 USD, on liquidation, i.e.
        when nothing is left of the cross pool, or with no position open); while collateral
        covers it otherwise, a negative wallet stands.
        """
        if self.wallet < 0.0 and self.ledger is not None and self.ledger.held:
            ledger = self.ledger
            no_position = not any(p.qty != 0.0 for p in self.positions)
            if self.wallet < -ledger.threshold or self.cross_wallet <= 1e-9 or no_position \
                    or shortfall > 0.0:
                self.wallet += ledger.auto_exchange(-self.wallet, self.clock.now, self.clock.bar)
            if self.wallet < 0.0 and ledger.held:
                if shortfall > 0.0:
                    self._pay_bad_debt(shortfall)
                return
        if self.wallet < 0.0:
            shortfall -= self.wallet
            self.wallet = 0.0
        if shortfall > 0.0:
            self._pay_bad_debt(shortfall)

    def _pay_bad_debt(self, shortfall: float) -> None:
        self.bad_debt += shortfall
        self.fund.set_own(self.fund.own - shortfall, "bad_debt",
                          self.clock.now if self.clock is not None else 0)

    def changed(self, sym: int | None = None) -> None:
        """Note a state change (net sides updated): of symbol ``sym`` only, or of every one."""
        sides = self.sides
        for s in (sym,) if sym is not None else range(len(sides)):  # a fill moves one symbol
            legs = self.sym_legs[s]
            net = legs[0].qty if len(legs) == 1 else legs[0].qty + legs[1].qty  # long + short
            sides[s] = (net > 0) - (net < 0)
