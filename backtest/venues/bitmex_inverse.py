"""BitMEX XBTUSD behind the engine's venue protocol (``--venue bitmex_inverse``), 2020 rules.

The formulas are :mod:`backtest.venues.bitmex`'s (the position record's liquidation and
bankruptcy prices, the risk-limit steps, funding); this module binds them to the engine's
call conventions (:class:`backtest.venues.base.Venue`): legs in contracts of the symbol's USD
face value, money in XBT. The dated data (fees, risk-limit table, contract) is
``backtest/venues/data/bitmex_inverse.toml``; BitMEX's XBTUSD is the store's ``BTC/USD:BTC``.

What a run does as BitMEX did on 2020-03-12: maintenance = the risk-limit step's rate on the
whole position value (0.5 % up to 200 XBT); the liquidation mark is where the position
record's margin less its maintenance (on the ENTRY value) is lost; the liquidation engine
takes the position over at the bankruptcy price and what the market gives beyond it goes to
(or is paid by) the Insurance Fund (the engine's default takeover accounting, no clearance
fee); funding every 8 h from the run's data; Fair Price marking is the run's mark series.
The maintenance margin carries the funding term ([SUPPORT], margin_rules.md §5): the next
funding the position would pay, ``posCost x max(0, s*F)``
(:func:`backtest.venues.bitmex.funding_maintenance_rate`), with F the rate of the next
settlement in the run's funding data (BitMEX announces it one interval ahead; a run without
funding data charges none). It moves the liquidation price and every maintenance figure
(all on the ENTRY value). ADL ranks by BitMEX's ``PnL% x effective leverage`` of position
values (:data:`backtest.venues.bitmex.ADL_RULE`).

Sources:

* [LIQ] BitMEX "Liquidation", https://www.bitmex.com/app/liquidation (takeover at the
  bankruptcy price; the maintenance margin is lost to the Insurance Fund).
* [RISK] BitMEX "Risk Limits Examples", https://www.bitmex.com/app/riskLimitsExamples
  (XBTUSD base maintenance 0.50 %, initial 1.00 %, base limit 200 XBT, step 100 XBT).
* [GUIDE] BitMEX "Perpetual Contracts Guide — Examples",
  https://www.bitmex.com/app/perpetualContractsGuideExamples (inverse PnL, funding, fair price).
* [REC] The captured 2018 XBTUSD position record of margin_rules.md §5 (posMaint on posCost).
* [SUPPORT] BitMEX support answer quoted on r/BitMEX (maintenance = base MM + exit fee + funding).
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any

from backtest.venues.base import Leg, PoolFormulas, Venue, inverse_pool_formulas
from backtest.venues.bitmex import (ADL_RULE, SATOSHI_PER_XBT, XBTUSD_2020, bankruptcy_price,
                                    funding_maintenance_rate, funding_payment,
                                    initial_margin_req, liquidation_price)
from backtest.venues.catalog import RuleVersion, VenueInfo, day_ms
from backtest.venues.errors import VenueError

__all__ = ["VENUE", "VENUE_INFO", "formulas_for", "maintenance_margin_whole",
           "pool_liquidation_price", "pool_liquidation_price_resolved"]


def maintenance_margin_whole(notional: float, tier: Any) -> float:
    """Maintenance margin ``|N| * rate of the risk-limit step``, XBT.

    BitMEX raises the maintenance rate of the WHOLE position at each risk-limit step ([RISK]),
    so the table's maintenance amount (``tier.cum``, there only for the table validator) is not
    subtracted. The engine adds the funding term of [SUPPORT] on the entry value
    (``Venue.funding_maintenance_rate``) and passes the entry value here
    (``PoolFormulas.maintenance_at_entry``).
    """
    return abs(notional) * tier.mmr


def _one_leg(both: Leg | None, long: Leg | None, short: Leg | None) -> Leg:
    legs = [leg for leg in (both, long, short) if leg is not None]
    if len(legs) != 1:
        raise VenueError(f"BitMEX: a symbol holds one position (no hedge mode), found {len(legs)} "
                         "legs; run with position_mode='one_way'")
    return legs[0]


def pool_liquidation_price(*, wallet_balance: float, contract_size: float = 1.0,
                           both: Leg | None = None, long: Leg | None = None,
                           short: Leg | None = None, other_maintenance: float = 0.0,
                           other_unrealized: float = 0.0) -> float:
    """The engine's liquidation price of an XBTUSD position (leg ``qty`` in contracts), USD.

    :func:`liquidation_price` with BitMEX's position record: ``posCost = Q/EP`` (XBt), margin =
    the wallet backing the position (plus the other positions' PnL, less their maintenance),
    ``posMaint = posCost x MMR`` (maintenance on the ENTRY value, [REC]). The commission reserve
    of [REC] is in both posMargin and posMaint and cancels, so the engine's margin (notional /
    leverage, fees paid from the wallet) gives BitMEX's price. Unrounded (no tick).
    """
    leg = _one_leg(both, long, short)
    cost = leg.qty * contract_size * SATOSHI_PER_XBT / leg.entry_price
    margin = (wallet_balance + other_unrealized - other_maintenance) * SATOSHI_PER_XBT
    return liquidation_price(side=leg.side, contracts=leg.qty * contract_size, pos_cost=cost,
                             pos_margin=margin, pos_maint=cost * leg.mmr)


def pool_liquidation_price_resolved(*, wallet_balance: float, tiers: Any,
                                    contract_size: float = 1.0, both: Leg | None = None,
                                    long: Leg | None = None, short: Leg | None = None,
                                    other_maintenance: float = 0.0,
                                    other_unrealized: float = 0.0) -> float:
    """:func:`pool_liquidation_price` at the risk-limit step of the position's entry value.

    BitMEX's risk limit is a bound on the position value the account holds (posCost, [RISK]),
    not on the value at the liquidation price, so one step is looked up and nothing iterates.
    """
    leg = _one_leg(both, long, short)
    step = tiers.for_notional(leg.qty * contract_size / leg.entry_price)
    return pool_liquidation_price(wallet_balance=wallet_balance, contract_size=contract_size,
                                  both=Leg(leg.side, leg.qty, leg.entry_price, step.mmr, step.cum),
                                  other_maintenance=other_maintenance,
                                  other_unrealized=other_unrealized)


def _bankruptcy(*, wallet_balance: float, side: int, qty: float, entry_price: float,
                other_unrealized: float = 0.0, contract_size: float = 1.0) -> float:
    """:func:`bankruptcy_price` with ``posInit`` = the wallet backing the position (XBT)."""
    cost = qty * contract_size * SATOSHI_PER_XBT / entry_price
    return bankruptcy_price(side=side, contracts=qty * contract_size, pos_cost=cost,
                            pos_init=(wallet_balance + other_unrealized) * SATOSHI_PER_XBT)


def _funding(*, signed_qty: float, mark_price: float, rate: float,
             contract_size: float = 1.0) -> float:
    return funding_payment(signed_contracts=signed_qty, mark_price=mark_price, rate=rate,
                           contract_usd=contract_size)


def formulas_for(contract: Any) -> PoolFormulas:
    """The pool formulas of an XBTUSD-like inverse contract, bound to its USD face value.

    Raises
    ------
    VenueError
        For a linear contract (BitMEX's XBTUSD is inverse).
    """
    return inverse_pool_formulas(
        contract, venue="bitmex_inverse",
        hint="use a linear venue such as binance_usdm, or the symbol BTC/USD:BTC (XBTUSD)",
        liquidation_price=pool_liquidation_price,
        liquidation_price_resolved=pool_liquidation_price_resolved,
        bankruptcy_price=_bankruptcy, funding_payment=_funding,
        # the risk-limit step is the one of the ENTRY value: always ask the resolver; the
        # maintenance (posMaint) is on the entry value too
        brackets_at_entry=True, maintenance_at_entry=True)


def _initial_margin(notional: float, leverage: float) -> float:
    """``|N| x max(base IM, 1/leverage)`` ([RISK]; :func:`initial_margin_req`), XBT."""
    return abs(notional) * initial_margin_req(leverage=leverage, base_im=XBTUSD_2020.base_im)


def _pnl_needs_contract(*, signed_qty: float, entry_price: float, mark_price: float) -> float:
    raise VenueError("bitmex_inverse: an inverse PnL depends on the contract size; use the "
                     "symbol's contract (backtest.contracts.contract_for(market)).unrealized_pnl")


def _venue() -> Venue:
    return Venue(
        name="bitmex_inverse", exchange="bitmex", contract_type="inverse",
        maintenance_margin=maintenance_margin_whole,
        liquidation_price=pool_liquidation_price,
        liquidation_price_resolved=pool_liquidation_price_resolved,
        bankruptcy_price=_bankruptcy, funding_payment=_funding,
        unrealized_pnl=_pnl_needs_contract, initial_margin=_initial_margin,
        contract_formulas=formulas_for,
        adl_rule=ADL_RULE,  # PnL% x effective leverage of position values ([ADL])
        funding_maintenance_rate=funding_maintenance_rate,
        position_modes=("one_way",),  # one position per symbol: no hedge mode
        label="BitMEX",
        rule_versions=MappingProxyType({
            "liquidation_price": "https://www.bitmex.com/app/liquidation (takeover at bankruptcy)",
            "risk_limits": "https://www.bitmex.com/app/riskLimitsExamples",
            "funding": "https://www.bitmex.com/app/perpetualContractsGuideExamples",
            "tiers": "XBTUSD 2020 risk-limit steps (backtest/venues/data/bitmex_inverse.toml)",
            "maintenance_funding_term": "posCost x max(0, s x next funding rate) (margin_rules.md "
                                        "§5 [SUPPORT]; next rate from the run's funding data)",
            "adl_ranking": "https://www.bitmex.com/app/autoDeleveraging (PnL% x effective "
                           "leverage; bankruptcy price)",
        }),
        max_open_orders=200, max_stop_orders=10)


#: The registered venue ``bitmex_inverse`` (see :func:`backtest.venues.base.get_venue`).
VENUE: Venue = _venue()

#: Coverage for ``margincall venues``: isolated and cross (``initial_margin_req(leverage=None)``).
VENUE_INFO = VenueInfo(
    name="bitmex_inverse", title="BitMEX XBTUSD inverse perpetual",
    modes=(("inverse", "isolated"), ("inverse", "cross")),
    rule_versions=(RuleVersion("XBTUSD_2020 (margins, risk limits, fees, funding)",
                               day_ms(XBTUSD_2020.effective_from), "[GUIDE], [RISK], [CAPS]"),))
