"""Insurance-fund settlement and auto-deleveraging (ADL) rules, vectorized over positions.

Pure functions on numpy arrays (one element per position). Each cites its source; the
scalar venue functions they mirror (``backtest.venues.bitmex``) are checked for equality in
``tests/cascade/test_adl.py``.

Model of an ADL round (cascades.md §C.7, after Chitra 2025, arXiv 2512.01112): a deficit ``D``
(money the liquidation engine lost beyond the insurance fund) is recovered from *winners* —
positions on the opposite side with positive unrealized PnL at the mark. A rule closes a
fraction ``f_i`` of each winner's position and takes the profit attached to the closed part,
``h_i = f_i * PnL_i+``. ``profit taken = sum h``; ``overshoot = profit taken - D`` (>= 0: more
winner profit taken than the deficit required — exchange revenue in Chitra's trilemma, credited
to the fund here); a negative difference is a shortfall that stays as bad debt.

Rules
-----
``queue``
    The venues' rule (BitMEX, Binance, Bybit, Hyperliquid): winners sorted by the venue score,
    closed greedily until the *bankrupt quantity* is matched (BitMEX's allocation). The
    quantity, not the money, decides how much is closed — the source of the overshoot.
``pro_rata``
    Every winner gives the same fraction ``min(1, D / sum PnL+)`` (Chitra; Percolator-style).
``leverage_levelling``
    Minimax leverage ("water-filling", arXiv 2603.15963): close the most-levered winners
    first, equalising leverage downward, until the profit taken equals ``D``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from backtest.cascade.errors import CascadeError

__all__ = ["ADL_RULES", "AdlOutcome", "BybitDrawdown", "allocate", "binance_leverage_pnl",
           "bitmex_score", "bybit_drawdown_adl", "compare_rules", "hyperliquid_score", "insurance_fund_delta",
           "leverage_levelling_fractions", "liquidation_lowers_ltv", "pro_rata_fractions",
           "queue_allocation", "queue_fractions", "toxic_spiral_ltv"]

Array = NDArray[np.float64]

#: ADL allocation rules :func:`allocate` knows.
ADL_RULES = ("queue", "pro_rata", "leverage_levelling")


def _arr(values: ArrayLike) -> Array:
    return np.asarray(values, dtype=np.float64)


# ---- insurance fund -----------------------------------------------------------------------

def insurance_fund_delta(side: ArrayLike, qty: ArrayLike, fill_price: ArrayLike,
                         bankruptcy_price: ArrayLike) -> Array:
    """Fund change when a taken-over position is closed at ``fill_price``, quote currency.

    ``dIF = s * q * (fill - BP)``: a fill better than bankruptcy credits the fund (the trader's
    remaining margin), a worse one debits it. Bybit's worked example: a long liquidated with BP
    6,950 sold at 6,980 gives +30 per unit, sold at 6,930 costs -20 per unit. Source:
    cascades.md §C "Insurance-fund accounting" (Bybit help, Insurance Fund).

    Parameters
    ----------
    side : array
        +1 long, -1 short (of the liquidated position).
    qty : array
        Base units closed (>= 0).
    fill_price, bankruptcy_price : array
        Quote currency per base unit.
    """
    return _arr(side) * _arr(qty) * (_arr(fill_price) - _arr(bankruptcy_price))


@dataclass(frozen=True, slots=True)
class BybitDrawdown:
    """Outcome of Bybit's PnL-drawdown ADL check on a grouped pool (money in USDT).

    Attributes
    ----------
    pnl_ratio : float
        ``(symbol PnL - symbol 8 h max PnL) / pool 8 h max balance``.
    triggered : bool
        ADL starts (balance above the threshold and ``pnl_ratio < insurance_pnl_ratio``).
    pool_absorbs : float
        Loss the pool keeps (its bankruptcy price is recomputed so it absorbs only this).
    to_adl : float
        Loss borne by ADL counterparties.
    """

    pnl_ratio: float
    triggered: bool
    pool_absorbs: float
    to_adl: float


def bybit_drawdown_adl(*, pool_max_balance: float, pool_balance: float, symbol_pnl: float,
                       symbol_max_pnl: float, insurance_pnl_ratio: float = -0.30,
                       adl_trigger_threshold: float = 10_000.0) -> BybitDrawdown:
    """Bybit's PnL-drawdown ADL trigger for symbols sharing a pool.

    Worked example of the API doc: A, B, C share a 1M USDT pool; A loses 350K -> pnlRatio -0.35
    < -0.30 with the balance above the threshold -> ADL; the pool absorbs only 30 % (300K) and
    the remaining 50K is borne by ADL'd counterparties. Source: cascades.md §C.2 (Bybit
    ``/v5/market/adlAlert``; sample live values i_pr -0.3, adl_tt 10,000).
    """
    if not pool_max_balance > 0:
        raise CascadeError(f"Bybit drawdown ADL: pool_max_balance must be > 0 USDT, found "
                           f"{pool_max_balance!r}; pass the pool's 8 h maximum balance")
    ratio = (symbol_pnl - symbol_max_pnl) / pool_max_balance
    loss = max(0.0, symbol_max_pnl - symbol_pnl)
    triggered = pool_balance > adl_trigger_threshold and ratio < insurance_pnl_ratio
    absorbs = min(loss, -insurance_pnl_ratio * pool_max_balance) if triggered else loss
    return BybitDrawdown(ratio, triggered, absorbs, loss - absorbs)


# ---- venue rankings ------------------------------------------------------------------------

def binance_leverage_pnl(upnl: ArrayLike, wallet_balance: ArrayLike, maintenance: ArrayLike) -> Array:
    """Binance's ADL ranking ``LeveragePnL = PnL% x margin ratio`` (dimensionless).

    ``PnL% = max(0, UPNL) / max(1, WB)``; ``margin ratio = MM / (WB + UPNL)``, 0 when equity
    <= 0. Worked example (dev.binance.vision thread 17801): UPNL 40.2, WB 4.27 -> PnL% 9.41,
    margin ratio 13.42 % -> 1.26. Source: cascades.md §C.1 (Binance FAQ 360033525471).
    Mirrors :func:`backtest.venues.binance_usdm.adl_score` on arrays (equality tested).
    """
    upnl, wallet, mm = _arr(upnl), _arr(wallet_balance), _arr(maintenance)
    equity = wallet + upnl
    pnl_pct = np.maximum(0.0, upnl) / np.maximum(1.0, wallet)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(equity > 0, mm / np.where(equity > 0, equity, 1.0), 0.0)
    return pnl_pct * ratio


def bitmex_score(mark_value: ArrayLike, entry_value: ArrayLike, bankrupt_value: ArrayLike) -> Array:
    """BitMEX's ranking, vectorized: ``PnL% x eff. leverage`` if ``PnL% > 0`` else ``PnL% / lev``.

    Mirrors :func:`backtest.venues.bitmex.adl_score` (equality tested); values are signed
    position values in one unit (for a linear contract ``s * q * price``). Bybit ranks by the
    same profit x effective-leverage principle (cascades.md §C.2). Positions with no margin
    left (mark value = bankrupt value) get ``-inf``: they are being liquidated, not ranked.

    Raises
    ------
    CascadeError
        For an entry value of 0 (PnL% is undefined), as the scalar function refuses it.
    """
    mark, entry, bankrupt = _arr(mark_value), _arr(entry_value), _arr(bankrupt_value)
    if np.any(entry == 0):
        raise CascadeError(
            f"BitMEX ADL ranking: entry value 0 at position(s) {np.flatnonzero(entry == 0)[:5].tolist()}; "
            "expected a non-zero signed position value (side x qty x entry price): a position of no "
            "quantity has no PnL% to rank, drop it from the population")
    margin = mark - bankrupt
    safe = np.where(margin == 0, 1.0, margin)
    pnl = (mark - entry) / np.abs(entry)
    leverage = np.abs(mark) / safe
    # each branch only where it is taken: the other one's division would be evaluated for nothing
    score = np.where(pnl > 0, pnl * leverage, pnl / np.where(pnl > 0, 1.0, leverage))
    return np.where(margin == 0, -np.inf, score)


def hyperliquid_score(side: ArrayLike, mark: ArrayLike, entry: ArrayLike, notional: ArrayLike,
                      account_value: ArrayLike) -> Array:
    """Hyperliquid's ranking ``(mark / entry) x (notional / account value)``.

    The doc writes ``mark / entry`` for both sides; for a short the profit factor is taken as
    ``entry / mark`` (our reading: the factor grows with profit on either side). Accounts with
    no positive value rank last. Source: cascades.md §C.5 (hyperliquid.gitbook.io
    trading/auto-deleveraging, current version).
    """
    s, m, e = _arr(side), _arr(mark), _arr(entry)
    value = _arr(account_value)
    factor = np.where(s > 0, m / e, e / m)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(value > 0, factor * _arr(notional) / np.where(value > 0, value, 1.0), -np.inf)


# ---- allocation rules ------------------------------------------------------------------------

def queue_allocation(qty: ArrayLike, score: ArrayLike, matched_qty: float) -> Array:
    """Quantity each position closes in a score queue matching ``matched_qty``, base units.

    Highest score first, ties in input order (stable), greedy until the bankrupt quantity is
    matched — :func:`backtest.venues.bitmex.adl_allocation` on arrays (equality tested;
    BitMEX example: six longs, a short of 20 -> account 2 closes 10 of 10, account 5 10 of 20).
    """
    q = _arr(qty)
    if matched_qty < 0 or not np.isfinite(matched_qty):
        raise CascadeError(f"ADL queue: matched_qty must be a finite quantity >= 0, found {matched_qty!r}")
    order = np.argsort(-_arr(score), kind="stable")
    # the same running remainder as the scalar walk, so the quantities are the same floats
    remaining = matched_qty - np.concatenate([[0.0], np.cumsum(q[order])[:-1]])
    take = np.zeros_like(q)
    take[order] = np.clip(np.minimum(q[order], remaining), 0.0, None)
    return take


def queue_fractions(qty: ArrayLike, score: ArrayLike, matched_qty: float) -> Array:
    """:func:`queue_allocation` as the fraction of each position closed."""
    q = _arr(qty)
    take = queue_allocation(q, score, matched_qty)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(q > 0, take / np.where(q > 0, q, 1.0), 0.0)


def pro_rata_fractions(profit: ArrayLike, deficit: float) -> Array:
    """Same fraction of every winner's positive PnL: ``min(1, D / sum PnL+)``. [Chitra 2025]."""
    p = np.maximum(_arr(profit), 0.0)
    total = float(p.sum())
    if total <= 0 or deficit <= 0:
        return np.zeros_like(p)
    return np.where(p > 0, min(1.0, deficit / total), 0.0)


def _closed_fraction(notional: Array, equity: Array, profit: Array, level: float) -> Array:
    # closing f of a position: notional N(1-f), equity E - f P; N(1-f) = L (E - f P) at level L
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (notional - level * equity) / (notional - level * profit)
    return np.clip(np.where(notional > level * equity, f, 0.0), 0.0, 1.0)


def leverage_levelling_fractions(notional: ArrayLike, equity: ArrayLike, profit: ArrayLike,
                                 deficit: float) -> Array:
    """Minimax-leverage ("water-filling") fractions taking exactly ``deficit`` of profit.

    Cut the most-levered winners first so that every cut position ends at one common leverage
    level ``L`` (notional / equity after the haircut); ``L`` is found by bisection so that the
    profit taken equals the deficit. Optimal for one asset, isolated margin, risk-neutral loss
    (Risk-Based Auto-Deleveraging, arXiv 2603.15963; cascades.md §A.3, §C.7).

    Parameters
    ----------
    notional, equity, profit : array
        Winners' notional at mark, equity (margin + PnL) and positive PnL, quote currency.
    deficit : float
        Money to recover, quote currency.
    """
    n, e, p = _arr(notional), _arr(equity), np.maximum(_arr(profit), 0.0)
    winners = (p > 0) & (e > 0)
    if deficit <= 0 or not winners.any():
        return np.zeros_like(n)
    if float(p[winners].sum()) <= deficit:
        return winners.astype(np.float64)
    n_w, e_w, p_w = n[winners], e[winners], p[winners]
    low, high = 0.0, float((n_w / e_w).max())
    for _ in range(200):  # profit taken falls monotonically as the level rises
        mid = 0.5 * (low + high)
        if float((_closed_fraction(n_w, e_w, p_w, mid) * p_w).sum()) > deficit:
            low = mid
        else:
            high = mid
        if high - low <= 1e-13 * max(1.0, high):
            break
    f_w = _closed_fraction(n_w, e_w, p_w, high)
    taken = float((f_w * p_w).sum())
    if taken > 0:  # the bisection leaves a relative gap ~1e-13: close it exactly
        f_w = np.minimum(1.0, f_w * (deficit / taken))
    out = np.zeros_like(n)
    out[winners] = f_w
    return out


@dataclass(frozen=True)
class AdlOutcome:
    """One ADL round over the winners of one symbol and side (money in quote currency).

    Attributes
    ----------
    fractions : ndarray
        Fraction of each winner's position closed.
    haircut : ndarray
        Profit taken from each winner (``fraction x PnL+``).
    deficit, profit_taken, paid, overshoot, shortfall : float
        ``paid = min(profit_taken, deficit)``; ``overshoot = max(0, taken - deficit)``;
        ``shortfall = deficit - paid`` (bad debt).
    closed_qty : float
        Base units of winners' positions closed.
    counterparties : int
        Winners touched.
    max_haircut : float
        Largest fraction of one winner's positive PnL taken.
    max_leverage_after : float
        Highest leverage among winners after the round (notional / equity).
    """

    fractions: Array
    haircut: Array
    deficit: float
    profit_taken: float
    paid: float
    overshoot: float
    shortfall: float
    closed_qty: float
    counterparties: int
    max_haircut: float
    max_leverage_after: float


def allocate(rule: str, *, deficit: float, qty: ArrayLike, notional: ArrayLike, equity: ArrayLike,
             profit: ArrayLike, score: ArrayLike | None = None, matched_qty: float = 0.0) -> AdlOutcome:
    """Run ADL rule ``rule`` for ``deficit`` over the winners given as arrays.

    Parameters
    ----------
    rule : str
        One of :data:`ADL_RULES`.
    deficit : float
        Money to recover (>= 0), quote currency.
    qty, notional, equity, profit : array
        Winners' base units, notional at mark, equity and unrealized PnL (negative = 0).
    score : array, optional
        Venue ranking (``queue`` only; higher first).
    matched_qty : float
        Bankrupt quantity the queue must match, base units (``queue`` only).
    """
    if rule not in ADL_RULES:
        from backtest.errors import did_you_mean

        raise CascadeError(f"ADL rule {rule!r}: expected one of {', '.join(ADL_RULES)}"
                           f"{did_you_mean(rule, ADL_RULES)}")
    if not deficit >= 0:
        raise CascadeError(f"ADL: deficit must be >= 0, found {deficit!r}")
    q, n, e = _arr(qty), _arr(notional), _arr(equity)
    p = np.maximum(_arr(profit), 0.0)
    if rule == "queue":
        if score is None:
            raise CascadeError("ADL rule 'queue': a venue score per winner is needed; pass score=")
        eligible = p > 0
        f = np.where(eligible, queue_fractions(np.where(eligible, q, 0.0), _arr(score), matched_qty), 0.0)
    elif rule == "pro_rata":
        f = pro_rata_fractions(p, deficit)
    else:
        f = leverage_levelling_fractions(n, e, p, deficit)
    haircut = f * p
    taken = float(haircut.sum())
    paid = min(taken, deficit)
    with np.errstate(divide="ignore", invalid="ignore"):
        lev_after = np.where((f > 0) & (e - haircut > 0), n * (1 - f) / (e - haircut), 0.0)
        untouched = np.where((f == 0) & (p > 0) & (e > 0), n / np.where(e > 0, e, 1.0), 0.0)
    touched = f > 0
    return AdlOutcome(
        fractions=f, haircut=haircut, deficit=float(deficit), profit_taken=taken, paid=paid,
        overshoot=max(0.0, taken - deficit), shortfall=float(deficit) - paid,
        closed_qty=float((f * q).sum()), counterparties=int(touched.sum()),
        max_haircut=float(f.max()) if f.size else 0.0,
        max_leverage_after=float(max(lev_after.max(initial=0.0), untouched.max(initial=0.0))))


def compare_rules(*, deficit: float, qty: ArrayLike, notional: ArrayLike, equity: ArrayLike, profit: ArrayLike,
                  score: ArrayLike, matched_qty: float) -> dict[str, AdlOutcome]:
    """Every rule of :data:`ADL_RULES` on the same deficit and winners (cascades.md §C.7 metrics)."""
    return {rule: allocate(rule, deficit=deficit, qty=qty, notional=notional, equity=equity, profit=profit,
                           score=score, matched_qty=matched_qty) for rule in ADL_RULES}


# ---- lending: the toxic-spiral frontier ----------------------------------------------------

def toxic_spiral_ltv(bonus_rate: float) -> float:
    """LTV at and above which a fixed-bonus liquidation raises the borrower's LTV: ``1/(1+i)``.

    0.952 at a 5 % bonus, 0.909 at 10 % (Warmuz, Chaudhary & Pinna, arXiv 2212.07306;
    cascades.md §A.2, fact 9). One definition: delegates to
    :func:`backtest.lending.aave_v3.toxic_loan_to_value` (bonus as a multiplier).
    """
    from backtest.lending.aave_v3 import toxic_loan_to_value

    return toxic_loan_to_value(1.0 + bonus_rate)


def liquidation_lowers_ltv(collateral: float, debt: float, repay: float, bonus_rate: float) -> bool:
    """Whether repaying ``repay`` of debt (seizing ``repay (1+i)``) lowers LTV (cascades.md §A.2)."""
    seized = repay * (1.0 + bonus_rate)
    if seized >= collateral:
        return False
    return (debt - repay) / (collateral - seized) < debt / collateral
