"""The venue side of auto-deleveraging: what a venue's ADL queue needs, venue-neutral.

A venue answers three ADL questions (margin_rules.md §2.1 step 5, §3.4, §4, §5, §6, §7):

* **who is first**: a ranking score of each opposite position (higher = deleveraged first;
  a score <= 0 is never reached), or no ranking at all (dYdX v4 offsets from a
  pseudo-random starting subaccount);
* **what the queue shows**: the quantile each position holds (1 = the head of the queue);
* **at what price**: the bankruptcy price of the liquidated order (Binance, Bybit, OKX when
  its fund is exhausted, BitMEX, dYdX) or the previous oracle price (Hyperliquid).

:class:`AdlRule` is that answer as data; :class:`AdlCandidate` is one position as every
ranking formula sees it (the engine, ``backtest/adl.py``, builds it; the venue modules hold
the formulas and cite them). A venue that publishes only the older two-callable form
(``Venue.adl_score`` / ``Venue.adl_quantiles``, Binance) is wrapped by
:func:`legacy_rule` unchanged.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["BANKRUPTCY", "PREVIOUS_ORACLE", "PRICE_BASES", "AdlCandidate", "AdlRule",
           "legacy_rule", "pnl_percent", "effective_leverage", "rank_quantiles"]

#: Close price bases (the ``adl`` table's ``price_basis`` column).
BANKRUPTCY = "bankruptcy"
PREVIOUS_ORACLE = "previous_oracle"
PRICE_BASES = (BANKRUPTCY, PREVIOUS_ORACLE)


@dataclass(frozen=True, slots=True)
class AdlCandidate:
    """One position waiting in an ADL queue, in the units of its margin asset.

    Position values follow BitMEX's sign convention, so that ``mark_value - entry_value`` is
    the unrealized PnL for linear and inverse contracts alike: a linear position's value is
    ``s*Q*P`` (quote), an inverse one's ``-s*Q/P`` (coin).

    Attributes
    ----------
    side : int
        +1 long, -1 short.
    qty : float
        Absolute size, base units or contracts.
    entry_price, mark_price : float
        Average entry and current mark, quote per base unit.
    entry_value, mark_value : float
        Signed position values at the entry and at the mark, margin asset.
    unrealized_pnl : float
        ``mark_value - entry_value``, margin asset.
    wallet_balance : float
        The wallet backing it: its isolated margin, or the cross wallet, margin asset.
    maintenance_margin : float
        Maintenance margin of its pool (the position, or every cross position), margin asset.
    equity : float
        Its pool's margin balance (wallet plus the pool's unrealized PnL) = what is lost at
        its bankruptcy price, i.e. ``mark_value - bankrupt_value``, margin asset.
    """

    side: int
    qty: float
    entry_price: float
    mark_price: float
    entry_value: float
    mark_value: float
    unrealized_pnl: float
    wallet_balance: float
    maintenance_margin: float
    equity: float

    @property
    def bankrupt_value(self) -> float:
        """Signed position value at the bankruptcy price, margin asset."""
        return self.mark_value - self.equity


@dataclass(frozen=True)
class AdlRule:
    """A venue's auto-deleveraging rule.

    Attributes
    ----------
    name : str
        The rule's name, written to each ``adl`` row (``"bitmex_pnl_x_effective_leverage"``).
    score : callable or None
        ``(AdlCandidate) -> float``, higher = deleveraged first, <= 0 never reached; None when
        the venue does not rank (the queue starts at a pseudo-random position, seeded by the
        run, and reaches every opposite position in turn).
    quantiles : callable or None
        ``(scores, qtys) -> quantiles`` in (0, 1], 1 = the head of the queue; None when there
        is no ranking (the rows carry NaN).
    price_basis : str
        ``"bankruptcy"`` or ``"previous_oracle"``.
    source : str
        Where the rule is documented.
    """

    name: str
    score: Callable[[AdlCandidate], float] | None
    quantiles: Callable[[Sequence[float], Sequence[float]], list[float]] | None
    price_basis: str = BANKRUPTCY
    source: str = ""

    def __post_init__(self) -> None:
        if self.price_basis not in PRICE_BASES:
            raise ValueError(f"AdlRule {self.name}: price_basis must be one of "
                             f"{', '.join(PRICE_BASES)}, found {self.price_basis!r}")


def legacy_rule(name: str, adl_score: Callable[..., float],
                adl_quantiles: Callable[[Sequence[float]], list[float]] | None,
                source: str = "") -> AdlRule:
    """An :class:`AdlRule` from a venue's ``adl_score(*, unrealized_pnl, wallet_balance,
    maintenance_margin)`` and ``adl_quantiles(scores)`` (Binance's form), same numbers."""

    def score(c: AdlCandidate) -> float:
        return adl_score(unrealized_pnl=c.unrealized_pnl, wallet_balance=c.wallet_balance,
                         maintenance_margin=c.maintenance_margin)

    quantiles = None if adl_quantiles is None else (lambda scores, _qtys: adl_quantiles(scores))
    return AdlRule(name, score, quantiles, BANKRUPTCY, source)


def pnl_percent(c: AdlCandidate) -> float:
    """``(mark value - entry value) / |entry value|`` (BitMEX, Bybit, OKX "PnL%"), fraction."""
    return (c.mark_value - c.entry_value) / abs(c.entry_value) if c.entry_value else 0.0


def effective_leverage(c: AdlCandidate) -> float:
    """``|mark value| / (mark value - bankrupt value)`` = position value / its margin balance.

    ``inf`` when nothing backs the position (such a position is being liquidated itself).
    """
    return abs(c.mark_value) / c.equity if c.equity > 0.0 else math.inf


def rank_quantiles(scores: Sequence[float], _qtys: Sequence[float] = ()) -> list[float]:
    """Queue position of each score as ``rank / number of positions``, in (0, 1].

    The same measure as Binance's ADL quantile (one definition:
    :func:`backtest.venues.binance_usdm.adl_quantiles`); used by venues that rank but whose
    indicator rule is not published (Bybit, OKX, Hyperliquid): it is the queue position, not
    the venue's UI lights.
    """
    from backtest.venues.binance_usdm import adl_quantiles

    return adl_quantiles(scores)
