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
* [RISK-LIMIT] Bybit "Margin Parameters" page (risk-limit tiers, ``MM = PV*MMR - deduction``,
  deduction recurrence), https://www.bybit.com/en/announcement-info/margin-parameters, as
  transcribed in ../shared/data/margin/bybit_linear_risk_limits_BTCUSDT_undated.json.
* [ADL] Bybit help 900000031623 "Auto-Deleveraging" (cascades.md §C.2): ranked by profit
  and effective leverage, closed at the bankruptcy price of the liquidated order.
* margin_rules.md §3.

The engine-facing venues (``VENUE_LINEAR`` = ``bybit_linear``, ``VENUE_INVERSE`` =
``bybit_inverse``) evaluate the maintenance margin of the liquidation price at the position's
*entry* value, as the classic-account pages do ([LP-USDT], §3.3 UTA isolated inverse), and take
its tier (risk limit) at that entry value; the margin ratio, equity tables and multi-symbol
cross pools use the same formula ``PV*MMR - deduction`` at the mark.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from backtest.venues import binance_coinm, binance_usdm, bitmex
from backtest.venues.adl_rules import BANKRUPTCY, AdlCandidate, AdlRule, rank_quantiles
from backtest.venues.base import LONG, Leg, PoolFormulas, Venue, inverse_pool_formulas
from backtest.venues.binance_usdm import TierDownPlan, check_legs
from backtest.venues.catalog import VenueInfo
from backtest.venues.errors import VenueError
from backtest.venues.stepdown import step_down_plan
from backtest.venues.tiers import TierTable, progressive_sum

__all__ = [
    "VENUE_INVERSE",
    "VENUE_LINEAR",
    "ADL_RULE",
    "adl_score",
    "bankruptcy_price_inverse",
    "inverse_formulas",
    "linear_formulas",
    "liquidation_price_inverse",
    "liquidation_price_inverse_resolved",
    "liquidation_price_linear",
    "liquidation_price_linear_resolved",
    "maintenance_margin",
    "risk_limit_down_plan",
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


# ---------------------------------------------------------------------------------------------
# The engine's venues: bybit_linear (USDT perpetuals) and bybit_inverse (BTCUSD/ETHUSD).
# ---------------------------------------------------------------------------------------------
def maintenance_margin(notional: float, tier: Any) -> float:
    """Risk-limit maintenance margin ``|PV| * MMR - deduction`` (margin asset).

    Source: [MM-TIER], [RISK-LIMIT] ("maintenance margin = position value x maint. margin rate
    - MM deduction"); equal to :func:`tiered_maintenance_margin` (the progressive form).
    ``tier`` carries ``mmr`` and ``cum`` (the deduction); arrays work too.
    """
    return abs(notional) * tier.mmr - tier.cum


def _entry_maintenance_linear(legs: Sequence[Leg]) -> float:
    return math.fsum(leg.qty * leg.entry_price * leg.mmr - leg.cum for leg in legs)


def liquidation_price_linear(*, wallet_balance: float, both: Leg | None = None,
                             long: Leg | None = None, short: Leg | None = None,
                             other_maintenance: float = 0.0,
                             other_unrealized: float = 0.0) -> float:
    """Bybit USDT-perpetual liquidation price of one symbol, each leg at its given tier, USDT.

    Equity reaches the maintenance margin evaluated at the entry value:
    ``WB + UPNL1 - TMM1 + sum s_i*Q_i*(P - EP_i) = sum (Q_i*EP_i*MMR_i - ded_i)``, so

    ``LP = [sum MM_i + TMM1 - WB - UPNL1 + sum s_i*Q_i*EP_i] / sum s_i*Q_i``.

    For one isolated leg with ``WB = IM + extraMargin`` this is [LP-USDT]'s
    ``LP = EP - s*(IM - MM)/size - s*extraMargin/size`` (1 BTC @ 20,000, 50x, MMR 0.5 % ->
    19,700). The cross form (other positions' MM and PnL) is DERIVED from the same equation.

    Returns
    -------
    float
        ``nan`` when the legs' sizes cancel (equity minus MM does not depend on the price); a
        non-positive value for a long means no positive price liquidates it.
    """
    legs = check_legs(both, long, short)
    denominator = math.fsum(leg.side * leg.qty for leg in legs)
    if denominator == 0.0:
        return math.nan
    numerator = (_entry_maintenance_linear(legs) + other_maintenance - wallet_balance
                 - other_unrealized + math.fsum(leg.side * leg.qty * leg.entry_price for leg in legs))
    return numerator / denominator


def _at_entry_tier(legs: Sequence[Leg], tiers: TierTable, value: Any) -> dict[str, Leg]:
    split: dict[str, Leg] = {}
    for leg in legs:
        key = "both" if len(legs) == 1 else ("long" if leg.side == LONG else "short")
        split[key] = leg.with_tier(tiers.for_notional(value(leg)))
    return split


def liquidation_price_linear_resolved(*, wallet_balance: float, tiers: TierTable,
                                      both: Leg | None = None, long: Leg | None = None,
                                      short: Leg | None = None, other_maintenance: float = 0.0,
                                      other_unrealized: float = 0.0) -> float:
    """:func:`liquidation_price_linear` with each leg at the risk-limit tier of its entry value
    ``Q*EP`` ([LP-USDT]: position value = size x entry price; [RISK-LIMIT])."""
    if both is not None and long is None and short is None and both.qty > 0.0:
        # one leg (the engine's usual call): the same operations as the general path,
        # without re-validating a copy of the leg
        value = both.qty * both.entry_price
        tier = tiers.for_notional(value)
        numerator = (value * tier.mmr - tier.cum + other_maintenance - wallet_balance
                     - other_unrealized + both.side * both.qty * both.entry_price)
        return numerator / (both.side * both.qty)
    legs = check_legs(both, long, short)
    return liquidation_price_linear(
        wallet_balance=wallet_balance, other_maintenance=other_maintenance,
        other_unrealized=other_unrealized,
        **_at_entry_tier(legs, tiers, lambda leg: leg.qty * leg.entry_price))


def liquidation_price_inverse(*, wallet_balance: float, contract_size: float,
                              both: Leg | None = None, long: Leg | None = None,
                              short: Leg | None = None, other_maintenance: float = 0.0,
                              other_unrealized: float = 0.0, fee_to_close: float = 0.0) -> float:
    """Bybit inverse liquidation price of one symbol (legs' ``qty`` in contracts), USD.

    Equity in coin reaches the maintenance margin at the entry value (``Q/EP*MMR - ded``,
    Q = contracts x contract size in USD), plus, when ``fee_to_close`` is given, the taker fee
    to close at the bankruptcy price ``Q*fee/BP`` ([INV-CROSS], pre-UTA cross):

    ``LP = sum s_i*Q_i / (WB + UPNL1 - TMM1 + sum s_i*Q_i/EP_i - sum MM_i - Q*fee/BP)``.

    One isolated leg without the fee term is the UTA isolated form
    ``LP(long) = Q/[PV + (IM - MM)]``, ``LP(short) = Q/[PV - (IM - MM)]`` (§3.3). With the fee
    it reproduces [INV-CROSS]: 0.5 BTC, long 10,000 @ 8,000 -> 5,739.08 (5,739.50 on the tick).

    Parameters
    ----------
    fee_to_close : float
        Taker fee fraction reserved at the bankruptcy price (one leg only); the engine passes
        none (it charges the venue's liquidation fee on the liquidated notional instead).

    Returns
    -------
    float
        ``inf`` when no finite positive price solves it (a long already below maintenance, or
        a short whose margin covers any rise); ``nan`` for sizes that cancel.
    """
    legs = check_legs(both, long, short)
    numerator = 0.0
    denominator = wallet_balance + other_unrealized - other_maintenance
    for leg in legs:
        q = leg.qty * contract_size
        numerator += leg.side * q
        denominator += leg.side * q / leg.entry_price - (q / leg.entry_price * leg.mmr - leg.cum)
    if fee_to_close:
        if len(legs) != 1:
            raise ValueError("liquidation_price_inverse: fee_to_close is defined for one leg")
        leg = legs[0]
        bp = bankruptcy_price_inverse(wallet_balance=wallet_balance + other_unrealized,
                                      side=leg.side, qty=leg.qty, entry_price=leg.entry_price,
                                      contract_size=contract_size, fee_to_close=fee_to_close)
        denominator -= leg.qty * contract_size * fee_to_close / bp
    if denominator == 0.0:
        return math.nan if numerator == 0.0 else math.inf
    price = numerator / denominator
    return price if price > 0 else math.inf


def liquidation_price_inverse_resolved(*, wallet_balance: float, contract_size: float,
                                       tiers: TierTable, both: Leg | None = None,
                                       long: Leg | None = None, short: Leg | None = None,
                                       other_maintenance: float = 0.0,
                                       other_unrealized: float = 0.0) -> float:
    """:func:`liquidation_price_inverse` with each leg at the tier of its entry value in coin
    ``Q/EP`` (§3.3: ``PV = contracts/price``)."""
    legs = check_legs(both, long, short)
    return liquidation_price_inverse(
        wallet_balance=wallet_balance, contract_size=contract_size,
        other_maintenance=other_maintenance, other_unrealized=other_unrealized,
        **_at_entry_tier(legs, tiers, lambda leg: leg.qty * contract_size / leg.entry_price))


def bankruptcy_price_inverse(*, wallet_balance: float, side: int, qty: float, entry_price: float,
                             contract_size: float, other_unrealized: float = 0.0,
                             fee_to_close: float = 0.0) -> float:
    """Inverse bankruptcy price, USD: zero equity in coin, optionally after the taker fee to
    close: ``BP = (1 + s*fee) * s*Q / (WB + UPNL1 + s*Q/EP)``.

    Without the fee this is the generic zero-equity price (margin_rules.md §1,
    :func:`backtest.venues.binance_coinm.bankruptcy_price_inverse`); with it, [INV-CROSS]'s
    ``BP(long) = 1.00075*Q/(Q/EP + balance)`` (-> 5,718.57) and its short analogue
    (:func:`inverse_cross_bankruptcy_price`).
    """
    price = binance_coinm.bankruptcy_price_inverse(
        wallet_balance=wallet_balance, side=side, contracts=qty, contract_size=contract_size,
        entry_price=entry_price, other_unrealized=other_unrealized)
    return price * (1.0 + side * fee_to_close)


def risk_limit_down_plan(*, qty: float, mark_price: float, margin_balance: float,
                         tiers: TierTable, clearance_rate: float, other_maintenance: float = 0.0,
                         lot_size: float = 0.0, contract: Any = None) -> TierDownPlan:
    """Bybit's liquidation process: lower the risk limit step by step, then take over.

    Source: margin_rules.md §3.4 ("if the position is above the lowest risk-limit tier, Bybit
    first reduces it to bring MM down to a lower tier; at the lowest tier the position is taken
    over by the liquidation engine at the bankruptcy price"). Each step closes at the trigger
    mark what takes the position value just below its tier's floor; the requirement is
    :func:`maintenance_margin` of the remainder at the mark (the procedure of
    :func:`backtest.venues.stepdown.step_down_plan`).
    """
    return step_down_plan(qty=qty, mark_price=mark_price, margin_balance=margin_balance,
                          tiers=tiers, clearance_rate=clearance_rate,
                          requirement=maintenance_margin, other_maintenance=other_maintenance,
                          lot_size=lot_size, contract=contract)


def adl_score(c: AdlCandidate) -> float:
    """Bybit's ADL ranking: ``PnL% x effective leverage`` if PnL% > 0, else
    ``PnL% / effective leverage`` (higher = deleveraged first), dimensionless.

    Source: [ADL] https://help.bybit.com/hc/en-us/articles/900000031623 ("the auto
    deleveraging ranking is derived in order of highest profit and effective leverage use";
    opposing positions closed at the bankruptcy price of the liquidated order). DERIVED: the
    page names the two factors; their definitions, ``PnL% = (mark value - entry value) /
    |entry value|`` and ``effective leverage = |mark value| / (mark value - bankrupt
    value)``, are BitMEX's published ones (margin_rules.md §5), the contract Bybit's classic
    inverse perpetual copied; one definition: :func:`backtest.venues.bitmex.adl_candidate_score`.
    """
    return bitmex.adl_candidate_score(c)


#: Bybit's ADL rule in runs (see :func:`adl_score`); the quantile is the queue position.
ADL_RULE = AdlRule("bybit_pnl_x_effective_leverage", adl_score, rank_quantiles, BANKRUPTCY,
                   "https://help.bybit.com/hc/en-us/articles/900000031623")


def linear_formulas(contract: Any) -> PoolFormulas:
    """Pool formulas of a Bybit USDT perpetual (brackets at the entry value).

    Raises
    ------
    VenueError
        For an inverse contract (``bybit_linear`` trades USDT-margined contracts).
    """
    if contract is not None and getattr(contract, "inverse", False):
        raise VenueError(
            f"venue bybit_linear trades linear USDT-margined contracts, the market spec is "
            f"inverse ({contract!r}); use --venue bybit_inverse for BTCUSD/ETHUSD")
    return PoolFormulas(
        liquidation_price=liquidation_price_linear,
        liquidation_price_resolved=liquidation_price_linear_resolved,
        bankruptcy_price=binance_usdm.bankruptcy_price,  # zero equity ([BP-USDT]: EP*(1 - 1/lev))
        funding_payment=binance_usdm.funding_payment,  # s*N*F at the mark (§1, §3.5)
        brackets_at_entry=True, maintenance_at_entry=True)  # MM = PV x MMR, PV at entry (§3.2)


def inverse_formulas(contract: Any) -> PoolFormulas:
    """Pool formulas of a Bybit inverse perpetual, bound to its contract size (USD).

    Raises
    ------
    VenueError
        For a linear contract.
    """
    return inverse_pool_formulas(
        contract, venue="bybit_inverse",
        hint="use --venue bybit_linear for USDT perpetuals or an inverse symbol such as "
             "'BTC/USD:BTC'",
        liquidation_price=liquidation_price_inverse,
        liquidation_price_resolved=liquidation_price_inverse_resolved,
        bankruptcy_price=bankruptcy_price_inverse, funding_payment=_inverse_funding,
        brackets_at_entry=True, maintenance_at_entry=True)  # PV = contracts / entry (§3.3)


def _inverse_funding(*, signed_qty: float, mark_price: float, rate: float,
                     contract_size: float) -> float:
    """Funding in coin, + = received: ``-s*Q/mark*rate`` (§1 ``s*N*F``, N = Q/P)."""
    return binance_coinm.funding_payment_inverse(signed_contracts=signed_qty,
                                                 contract_size=contract_size,
                                                 mark_price=mark_price, rate=rate)


_RULES = {
    "liquidation_price": "https://testnet.bybit.com/en-US/help-center/s/article/Liquidation-Price-USDT-Contract",
    "bankruptcy_price": "https://www.bybitx.global/fil-PH/help-center/search-result?page=46&pageSize=10&query=trade",
    "risk_limit_down": "margin_rules.md §3.4 (Bybit liquidation process)",
    "adl": "https://help.bybit.com/hc/en-us/articles/900000031623 (profit x effective "
           "leverage, closed at the bankruptcy price; DERIVED: BitMEX's value form of the two "
           "factors)",
    "order_limits": "ASSUMPTION Bybit v5 limits: 500 active orders, 10 conditional orders "
                    "per symbol",
}


def _venue(name: str, contract_type: str) -> Venue:
    linear = contract_type == "linear"
    extra = ({"tiers": "https://www.bybit.com/en/announcement-info/margin-parameters "
                       "(BTCUSDT; ETHUSDT ASSUMPTION, backtest/venues/data/bybit_linear.toml)"}
             if linear else
             {"liquidation_price_inverse": "https://help.bybit.com/hc/en-us/articles/360039261334",
              "tiers": "ASSUMPTION (backtest/venues/data/bybit_inverse.toml)"})
    return Venue(
        name=name,
        exchange="bybit",
        contract_type=contract_type,
        maintenance_margin=maintenance_margin,
        liquidation_price=liquidation_price_linear if linear else liquidation_price_inverse,
        liquidation_price_resolved=(liquidation_price_linear_resolved if linear
                                    else liquidation_price_inverse_resolved),
        bankruptcy_price=binance_usdm.bankruptcy_price if linear else bankruptcy_price_inverse,
        funding_payment=(binance_usdm.funding_payment if linear
                         else binance_coinm.funding_payment_inverse),
        unrealized_pnl=binance_usdm.unrealized_pnl,
        initial_margin=binance_usdm.initial_margin,  # IM = PV / leverage ([LP-USDT], §3.3)
        contract_formulas=linear_formulas if linear else inverse_formulas,
        tier_down_plan=risk_limit_down_plan,
        adl_rule=ADL_RULE,
        label="Bybit",
        rule_versions=MappingProxyType({**_RULES, **extra}),
        max_open_orders=500,
        max_stop_orders=10,
    )


#: ``bybit_linear``: USDT perpetuals (see :func:`backtest.venues.base.get_venue`).
VENUE_LINEAR: Venue = _venue("bybit_linear", "linear")
#: ``bybit_inverse``: inverse BTCUSD / ETHUSD perpetuals, coin-margined.
VENUE_INVERSE: Venue = _venue("bybit_inverse", "inverse")

#: Coverage for ``margincall venues`` per registered name (dated tables from the data files).
VENUE_INFOS = MappingProxyType({
    "bybit_linear": VenueInfo(name="bybit_linear", title="Bybit USDT perpetuals (classic account)",
                              modes=(("linear", "isolated"), ("linear", "cross"))),
    "bybit_inverse": VenueInfo(name="bybit_inverse",
                               title="Bybit inverse perpetuals BTCUSD/ETHUSD (coin-margined)",
                               modes=(("inverse", "isolated"), ("inverse", "cross"))),
})
VENUE_INFO = VENUE_INFOS["bybit_linear"]
