"""Binance COIN-M (inverse, coin-margined) futures: pure margin and liquidation math.

Units: a position is ``contracts`` of ``contract_size`` USD face value each (100 USD for
BTCUSD, 10 USD for most others), so its face value is ``Q = contracts * contract_size`` USD.
Prices are USD per coin; wallet, PnL, notional, margins and brackets are in **coin**
(notional at price P is ``Q / P``).

Sources:

* [FAQ-CM] Binance FAQ "How to Calculate Liquidation Price of COIN-M Futures Contracts",
  https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46
  (MM = contracts*CS/mark*MMR - cum: 100*100/25,000*0.4 % - 0 = 0.0016 BTC; maintenance
  amount recursion in coin: 50*(5 % - 2.5 %) + 0.56 = 1.81 BTC).
* [FORUM] https://dev.binance.vision/t/coin-margined-futures-liquidation-price-calculation-help-cm-variable/6292
  (Binance calculator: WB 101 BTC, long 100,000 BTCUSD @ 45,000 -> 33,599.40 with the
  level-7 maintenance amount 11.605 BTC).
* margin_rules.md §1 (inverse PnL and LP derivation) and §2.2.

Liquidation: the USDⓈ-M protocol applies ("the IF and ADL logic match USDⓈ-M", margin_rules.md
§2.2; §2.1 "What happens at liquidation": smart liquidation reduces large positions towards
lower brackets, then the takeover at the bankruptcy price), so :func:`tier_down_plan` is the
shared step-down (``backtest.venues.stepdown``) with the COIN-M requirement ``N*MMR - cum`` in
coin and brackets by coin notional.
"""
from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

from backtest.venues.base import LONG, SHORT, Leg, PoolFormulas, Venue, inverse_pool_formulas
from backtest.venues.binance_usdm import (adl_quantiles, adl_score, auto_exchange_amount, check_legs,
                                          initial_margin, maintenance_margin)
from backtest.venues.catalog import VenueInfo
from backtest.venues.errors import VenueError
from backtest.venues.stepdown import TierDownPlan, step_down_plan
from backtest.venues.tiers import TierTable

__all__ = [
    "VENUE",
    "formulas_for",
    "bankruptcy_price_inverse",
    "face_value",
    "funding_payment_inverse",
    "liquidation_price_inverse",
    "liquidation_price_inverse_resolved",
    "maintenance_margin_inverse",
    "notional_inverse",
    "tier_down_plan",
    "unrealized_pnl_inverse",
]


def face_value(contracts: float, contract_size: float) -> float:
    """USD face value ``contracts * contract_size`` of a position."""
    return abs(contracts) * contract_size


def notional_inverse(*, contracts: float, contract_size: float, mark_price: float) -> float:
    """Notional in coin ``contracts * CS / mark`` ([FAQ-CM] "position value")."""
    return face_value(contracts, contract_size) / mark_price


def maintenance_margin_inverse(*, contracts: float, contract_size: float, mark_price: float,
                               mmr: float, cum: float) -> float:
    """Maintenance margin in coin: ``contracts * CS / mark * MMR - cum``.

    Source: [FAQ-CM] "Maintenance Margin Amount" (100 contracts of 100 USD at 25,000 with
    MMR 0.4 % and cum 0 -> 0.0016 BTC).
    """
    return notional_inverse(contracts=contracts, contract_size=contract_size,
                            mark_price=mark_price) * mmr - cum


def unrealized_pnl_inverse(*, signed_contracts: float, contract_size: float, entry_price: float,
                           mark_price: float) -> float:
    """Unrealized PnL in coin: ``s * Q * (1/EP - 1/P)`` (margin_rules.md §1, inverse)."""
    return signed_contracts * contract_size * (1.0 / entry_price - 1.0 / mark_price)


def liquidation_price_inverse(*, wallet_balance: float, contract_size: float,
                              both: Leg | None = None, long: Leg | None = None,
                              short: Leg | None = None, other_maintenance: float = 0.0,
                              other_unrealized: float = 0.0) -> float:
    """COIN-M liquidation price of one symbol (legs' ``qty`` in contracts), USD per coin.

    Solving ``WB - TMM + UPNL + sum_i s_i*Q_i*(1/EP_i - 1/P) = sum_i (Q_i*MMR_i/P - cum_i)``
    for ``P`` gives

    ``LP = sum_i Q_i*(MMR_i + s_i) / (WB - TMM + UPNL + sum_i cum_i + sum_i s_i*Q_i/EP_i)``

    with ``Q_i = contracts_i * contract_size``. For one position this is the FAQ's
    ``LP = Q*(MMR + s)/(WB + cum + s*Q/EP)`` (margin_rules.md §2.2; the FAQ shows the
    multi-leg version as an image, the inverse analogue of the USDⓈ-M formula).
    Reproduces [FORUM] 33,599.40.

    Parameters
    ----------
    wallet_balance : float
        Cross wallet (or isolated margin) in coin.
    contract_size : float
        USD face value of one contract.
    both, long, short : Leg, optional
        As for USDⓈ-M, with ``qty`` = number of contracts and ``cum`` in coin.
    other_maintenance, other_unrealized : float
        Cross only: MM and UPNL (coin) of the other positions sharing the margin asset.

    Returns
    -------
    float
        The liquidation mark price. ``inf`` when no finite positive price solves the
        equation: for a short whose margin covers any rise this means "never", for a long
        with a negative wallet it means "already below maintenance". ``nan`` for a book
        whose risk does not depend on the price.
    """
    legs = check_legs(both, long, short)
    numerator = 0.0
    denominator = wallet_balance - other_maintenance + other_unrealized
    for leg in legs:
        q = leg.qty * contract_size
        numerator += q * (leg.mmr + leg.side)
        denominator += leg.cum + leg.side * q / leg.entry_price
    if denominator == 0.0:
        return math.nan if numerator == 0.0 else math.inf
    price = numerator / denominator
    return price if price > 0 else math.inf


def liquidation_price_inverse_resolved(*, wallet_balance: float, contract_size: float,
                                       tiers: TierTable, both: Leg | None = None,
                                       long: Leg | None = None, short: Leg | None = None,
                                       other_maintenance: float = 0.0,
                                       other_unrealized: float = 0.0) -> float:
    """COIN-M LP with each leg's bracket (coin notional ``Q/LP``) re-solved until stable.

    Same procedure as :func:`backtest.venues.binance_usdm.resolve_liquidation` ([FAQ-CM]:
    the bracket is the one of the position value at the liquidation price). Iterates at
    most ``len(tiers) + 2`` times; the notional ``Q/P`` is monotone in ``P`` and MM is
    continuous in it, so the bracket settles.
    """
    legs = check_legs(both, long, short)
    current = [leg if (leg.mmr or leg.cum) else leg.with_tier(tiers.tiers[0]) for leg in legs]
    price = math.nan
    for _ in range(len(tiers) + 2):
        price = _inverse_lp(wallet_balance, contract_size, current, other_maintenance,
                            other_unrealized)
        resolved = [leg.with_tier(tiers.for_notional(_coin_notional(leg, contract_size, price)))
                    for leg in current]
        if resolved == current:
            return price
        current = resolved
    return price


def _inverse_lp(wallet_balance: float, contract_size: float, legs: list[Leg],
                other_maintenance: float, other_unrealized: float) -> float:
    split: dict[str, Leg | None] = {"both": None, "long": None, "short": None}
    if len(legs) == 1:
        split["both"] = legs[0]  # one leg: the same equation whatever its mode
    else:
        for leg in legs:
            split["long" if leg.side == LONG else "short"] = leg
    return liquidation_price_inverse(wallet_balance=wallet_balance, contract_size=contract_size,
                                     other_maintenance=other_maintenance,
                                     other_unrealized=other_unrealized, **split)


def _coin_notional(leg: Leg, contract_size: float, price: float) -> float:
    if math.isnan(price) or price <= 0:
        return 0.0
    if math.isinf(price):
        return 0.0
    return leg.qty * contract_size / price


def bankruptcy_price_inverse(*, wallet_balance: float, side: int, contracts: float,
                             contract_size: float, entry_price: float,
                             other_unrealized: float = 0.0) -> float:
    """Price at which an inverse position's equity (coin) reaches zero, USD per coin.

    Solves ``WB + UPNL1 + s*Q*(1/EP - 1/P) = 0``: ``P = s*Q / (WB + UPNL1 + s*Q/EP)``
    (margin_rules.md §1 bankruptcy definition applied to the inverse PnL of §1).

    Returns
    -------
    float
        ``inf`` for a short whose margin covers any price rise.
    """
    if side not in (LONG, SHORT):
        raise ValueError(f"bankruptcy_price_inverse: side must be +1 or -1, found {side!r}")
    q = face_value(contracts, contract_size)
    if not q > 0:
        raise ValueError(f"bankruptcy_price_inverse: contracts must be non-zero, found {contracts}")
    denominator = wallet_balance + other_unrealized + side * q / entry_price
    if side == SHORT and denominator >= 0:
        return math.inf
    return side * q / denominator


def funding_payment_inverse(*, signed_contracts: float, contract_size: float, mark_price: float,
                            rate: float) -> float:
    """Funding at one settlement in coin, + = received: ``-s * Q / mark * rate``.

    Source: margin_rules.md §1 ("payment = s*N*F paid by the position", N = Q/P in coin for
    inverse contracts).
    """
    return -signed_contracts * contract_size / mark_price * rate


def tier_down_plan(*, qty: float, mark_price: float, margin_balance: float, tiers: TierTable,
                   clearance_rate: float, other_maintenance: float = 0.0, lot_size: float = 0.0,
                   contract: Any = None) -> TierDownPlan:
    """Binance smart liquidation on COIN-M: reduce a breached position bracket by bracket.

    Source: margin_rules.md §2.1 "What happens at liquidation" step 2 (large positions are
    reduced towards lower brackets, a liquidation fee on the liquidated amount only) and §2.2
    ("the IF and ADL logic match USDⓈ-M"); the procedure is
    :func:`backtest.venues.stepdown.step_down_plan`, the requirement the COIN-M maintenance
    margin ``N * MMR - cum`` in coin ([FAQ-CM]) and each step's fee ``clearance_rate *
    contracts * CS / mark`` (coin notional closed).

    Parameters
    ----------
    qty : float
        Position size in contracts (> 0).
    mark_price : float
        Mark at the trigger, USD per coin.
    margin_balance : float
        The pool's wallet plus unrealized PnL at the mark, coin.
    tiers : TierTable
        Brackets by coin notional.
    clearance_rate : float
        Liquidation fee fraction of the coin notional closed.
    other_maintenance : float
        Maintenance (coin) of the pool's other positions.
    lot_size : float
        Contract step (1 contract on Binance COIN-M); 0 = no rounding.
    contract : InverseContract
        The symbol's contract (its size in USD per contract).

    Raises
    ------
    VenueError
        Without an inverse contract (COIN-M quantities are contracts of a USD size).
    """
    if contract is None or not getattr(contract, "inverse", False):
        raise VenueError(f"binance_coinm tier_down_plan: expected the symbol's inverse contract, "
                         f"found {contract!r}; pass contract=contract_for(market)")
    return step_down_plan(qty=qty, mark_price=mark_price, margin_balance=margin_balance,
                          tiers=tiers, clearance_rate=clearance_rate,
                          requirement=maintenance_margin, other_maintenance=other_maintenance,
                          lot_size=lot_size, contract=contract)


def _bankruptcy(*, wallet_balance: float, side: int, qty: float, entry_price: float,
                other_unrealized: float = 0.0, contract_size: float) -> float:
    return bankruptcy_price_inverse(wallet_balance=wallet_balance, side=side, contracts=qty,
                                    contract_size=contract_size, entry_price=entry_price,
                                    other_unrealized=other_unrealized)


def _funding(*, signed_qty: float, mark_price: float, rate: float, contract_size: float) -> float:
    return funding_payment_inverse(signed_contracts=signed_qty, contract_size=contract_size,
                                   mark_price=mark_price, rate=rate)


def formulas_for(contract: Any) -> PoolFormulas:
    """The pool formulas of a COIN-M symbol, bound to its contract size (USD per contract).

    Raises
    ------
    VenueError
        For a linear contract (COIN-M trades inverse contracts only).
    """
    return inverse_pool_formulas(
        contract, venue="binance_coinm",
        hint="use --venue binance_usdm for USDT-margined symbols or a COIN-M symbol such as "
             "'BTC/USD:BTC'",
        liquidation_price=liquidation_price_inverse,
        liquidation_price_resolved=liquidation_price_inverse_resolved,
        bankruptcy_price=_bankruptcy, funding_payment=_funding)


def _pnl_needs_contract(*, signed_qty: float, entry_price: float, mark_price: float) -> float:
    raise VenueError("binance_coinm: an inverse PnL depends on the contract size; use the "
                     "symbol's contract (backtest.contracts.contract_for(market)).unrealized_pnl")


def _venue() -> Venue:
    return Venue(
        name="binance_coinm",
        exchange="binancecoinm",
        contract_type="inverse",
        maintenance_margin=maintenance_margin,  # |N| * mmr - cum, N in coin ([FAQ-CM])
        liquidation_price=liquidation_price_inverse,
        liquidation_price_resolved=liquidation_price_inverse_resolved,
        bankruptcy_price=bankruptcy_price_inverse,
        funding_payment=funding_payment_inverse,
        unrealized_pnl=_pnl_needs_contract,
        initial_margin=initial_margin,
        contract_formulas=formulas_for,
        tier_down_plan=tier_down_plan,  # smart liquidation as on USDⓈ-M (§2.1, §2.2)
        adl_score=adl_score,  # margin_rules.md §2.2: "the IF and ADL logic match USDⓈ-M"
        adl_quantiles=adl_quantiles,
        auto_exchange_amount=auto_exchange_amount,
        label="Binance",
        rule_versions=MappingProxyType({
            "liquidation_price": "https://www.binance.com/en/support/faq/ceccfcfb4e3a45e3b48b0b1bb1a8ae46",
            "liquidation_price_reference": "https://dev.binance.vision/t/coin-margined-futures-liquidation-price-calculation-help-cm-variable/6292",
            "tiers": "built-in BTCUSD/ETHUSD tables partly DERIVED (backtest/venues/data/binance_coinm.toml)",
            "tier_down": "margin_rules.md §2.1 step 2 + §2.2 (smart liquidation as on USDⓈ-M), "
                         "backtest/venues/stepdown.py",
            "fees": "Binance FAQ 360033544231 (COIN-M commission on the coin notional; regular "
                    "0.015 %/0.040 %), from 2023-09-26 ccxt's regular 0.010 %/0.050 % (dates ASSUMED)",
            "clearance_fee": "ASSUMPTION 0.5 % (USDⓈ-M 2019-2020 rule text; no COIN-M source found)",
        }),
        max_open_orders=200,
        max_stop_orders=10,
    )


#: The registered venue (see :func:`backtest.venues.base.get_venue`).
VENUE: Venue = _venue()

#: Coverage for ``margincall venues`` (the dated tables come from data/binance_coinm.toml).
VENUE_INFO = VenueInfo(name=VENUE.name, title="Binance COIN-M perpetuals (coin-margined)",
                       modes=((VENUE.contract_type, "isolated"), (VENUE.contract_type, "cross")))
