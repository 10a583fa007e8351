"""OKX (and Gate) isolated perpetual formulas, pure.

Sources: OKX help (margin ratio, tiers; margin_rules.md §4), freqtrade/freqtrade @
c9ae5e1e9ff25bb55dd61f5e5519f7c479291edb ``freqtrade/exchange/exchange.py``
(``dry_run_liquidation_price``, used for OKX and Gate; Gate documents the same form at
https://www.gate.io/help/futures/futures/27724/liquidation-price-bankruptcy-price) and
``tests/exchange/test_okx.py::test_get_maintenance_ratio_and_amt_okx``.

Units: linear contracts, prices in USDT, ``size`` in base units, ``margin`` in USDT.

The engine's venue ``okx`` (USDT-margined swaps, ``VENUE``): the maintenance requirement is
OKX's margin-ratio denominator, ``|N| * (tier MMR + liquidation fee rate)`` with no maintenance
amount (margin_rules.md §4; the fee rate is the venue's taker rate, as in freqtrade's OKX and
Gate form), liquidation at ratio <= 100 %, partial liquidation tier by tier then a takeover at
the bankruptcy price. OKX publishes its tiers by contract count (``minSz``/``maxSz``); a
contract is ``ctVal`` base units (the market spec's ``contract_size``), so a tier of ``n``
contracts holds ``n * ctVal`` base units (:func:`contracts_to_base`). The venue declares that
basis (``tier_basis="contracts"``): its tables, built-in or fetched
(``data_loaders.ccxt_tiers.tier_bound_unit``), are looked up by the position's contract count
(``TierTable.for_position`` with the symbol's contract), so an OKX position's tier does not
move with the price; a notional-keyed table (a user's override) is read by notional.
"""
from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from backtest.venues import binance_usdm
from backtest.venues.adl_rules import (BANKRUPTCY, AdlCandidate, AdlRule, effective_leverage,
                                       pnl_percent, rank_quantiles)
from backtest.venues.base import LONG, Leg, PoolFormulas, Venue
from backtest.venues.binance_usdm import TierDownPlan, check_legs
from backtest.venues.catalog import VenueInfo
from backtest.venues.errors import VenueError
from backtest.venues.stepdown import step_down_plan
from backtest.venues.tiers import CONTRACTS, NOTIONAL, TierTable

__all__ = ["VENUE", "contracts_to_base", "formulas_for", "isolated_liquidation_price",
           "liquidation_price", "liquidation_price_resolved", "maintenance_margin",
           "partial_liquidation_plan", "requirement", "tier_mmr"]


def isolated_liquidation_price(*, side: int, entry_price: float, size: float, margin: float,
                               mmr: float, taker_fee: float) -> float:
    """Isolated linear LP where the margin ratio reaches 100 %, USDT.

    ``(margin + UPL) / (size*P*(MMR + taker)) = 1`` gives
    ``LP(long) = (EP - margin/size)/(1 - (MMR + taker))`` and
    ``LP(short) = (EP + margin/size)/(1 + (MMR + taker))`` (margin_rules.md §4).
    """
    if side not in (1, -1):
        raise ValueError(f"side must be +1 (long) or -1 (short), found {side!r}")
    if not size > 0:
        raise ValueError(f"size must be > 0, found {size}")
    rate = mmr + taker_fee
    return (entry_price - side * margin / size) / (1.0 - side * rate)


def tier_mmr(size: float, tiers: Sequence[tuple[float, float]]) -> float:
    """MMR of the OKX tier containing ``size`` (contracts); a size equal to a tier's lower
    bound belongs to that tier. ``tiers`` = ascending ``(min_size, mmr)``.

    OKX charges the tier's rate on the whole position (no maintenance amount), so MM jumps at
    tier boundaries (freqtrade returns ``maintAmt=None`` for OKX).
    """
    mins = [t[0] for t in tiers]
    if not tiers or mins != sorted(mins) or mins[0] > 0:
        raise ValueError(f"OKX tiers must be ascending by min size from 0, found {list(tiers)}")
    return tiers[max(0, bisect.bisect_right(mins, abs(size)) - 1)][1]


def maintenance_margin(*, size: float, mark_price: float, tiers: Sequence[tuple[float, float]],
                       contract_value: float = 1.0) -> float:
    """OKX isolated linear MM ``|size|*contract_value*mark*MMR_tier`` (no deduction), USDT."""
    return abs(size) * contract_value * mark_price * tier_mmr(abs(size), tiers)


# ---------------------------------------------------------------------------------------------
# The engine's venue "okx" (USDT-margined swaps).
# ---------------------------------------------------------------------------------------------
def contracts_to_base(contracts: float, contract_value: float) -> float:
    """Base units of ``contracts`` OKX contracts of ``ctVal`` = ``contract_value`` each."""
    return contracts * contract_value


def requirement(notional: float, tier: Any, *, liquidation_fee_rate: float) -> float:
    """OKX's maintenance requirement ``|N| * (MMR_tier + fee)``, USDT (arrays work too).

    The denominator of OKX's isolated and single-currency cross margin ratio (maintenance
    margin plus the liquidation fee; margin_rules.md §4, https://open-lib.com/11556.html);
    the tier's rate applies to the whole position, its ``cum`` is not used (no maintenance
    amount, freqtrade ``maintAmt=None`` for OKX).
    """
    return abs(notional) * (tier.mmr + liquidation_fee_rate)


def _solve(wallet_balance: float, legs: Sequence[Leg], other_maintenance: float,
           other_unrealized: float, fee: float) -> float:
    numerator = wallet_balance - other_maintenance + other_unrealized
    denominator = 0.0
    for leg in legs:
        numerator -= leg.side * leg.qty * leg.entry_price
        denominator += leg.qty * (leg.mmr + fee) - leg.side * leg.qty
    if denominator == 0.0:
        return math.nan
    return numerator / denominator


def liquidation_price(*, wallet_balance: float, both: Leg | None = None, long: Leg | None = None,
                      short: Leg | None = None, other_maintenance: float = 0.0,
                      other_unrealized: float = 0.0, liquidation_fee_rate: float) -> float:
    """OKX linear liquidation price of one symbol, each leg at its given tier's rate, USDT.

    The margin ratio reaches 100 %: ``WB + UPNL1 - TMM1 + sum s_i*Q_i*(P - EP_i) =
    sum Q_i*P*(MMR_i + fee)``, so ``LP = [WB - TMM1 + UPNL1 - sum s_i*Q_i*EP_i] /
    [sum Q_i*(MMR_i + fee) - sum s_i*Q_i]``. One isolated leg gives margin_rules.md §4's
    ``LP(long) = (EP - margin/size)/(1 - (MMR + fee))`` (:func:`isolated_liquidation_price`).
    The legs' ``cum`` is ignored (OKX has no maintenance amount).
    """
    legs = check_legs(both, long, short)
    return _solve(wallet_balance, legs, other_maintenance, other_unrealized, liquidation_fee_rate)


def liquidation_price_resolved(*, wallet_balance: float, tiers: TierTable, both: Leg | None = None,
                               long: Leg | None = None, short: Leg | None = None,
                               other_maintenance: float = 0.0, other_unrealized: float = 0.0,
                               liquidation_fee_rate: float, contract: Any = None) -> float:
    """:func:`liquidation_price` with each leg at the tier OKX applies to it.

    A contract-count table (OKX's own, ``tiers.basis == "contracts"``): the tier is fixed by
    the leg's size (``contract``'s ``ctVal``), whatever the price, so the LP is the plain
    solution at that tier. A notional table: OKX's requirement jumps at a tier boundary
    (whole-position rate), so a fixed point need not exist. One leg: the first price, moving
    from the entry towards the loss, where equity <= requirement: over each tier's price range
    the gap is linear, so the answer is the best of ``min(LP_k, top of range k)`` (long;
    mirrored for a short) over the tiers whose ``LP_k`` reaches their range. Several legs
    (hedge mode): each leg at the tier of its notional at the first-tier LP (one refinement).
    """
    legs = check_legs(both, long, short)
    fee = liquidation_fee_rate
    if tiers.basis == CONTRACTS:  # the size decides the tier; the price does not move it
        legs = [leg.with_tier(tiers.for_position(leg.qty, leg.entry_price, contract)) for leg in legs]
        return _solve(wallet_balance, legs, other_maintenance, other_unrealized, fee)
    if len(legs) > 1:
        first = [leg.with_tier(tiers.tiers[0]) for leg in legs]
        price = _solve(wallet_balance, first, other_maintenance, other_unrealized, fee)
        at = price if price == price and price > 0 else 0.0
        legs = [leg.with_tier(tiers.for_position(leg.qty, at, contract)) for leg in legs]
        return _solve(wallet_balance, legs, other_maintenance, other_unrealized, fee)
    leg = legs[0]
    if leg.qty == 0.0:
        return math.nan
    best = math.nan
    for tier in tiers.tiers:
        lo, hi = tier.floor / leg.qty, tier.cap / leg.qty  # price range of the tier
        lp = _solve(wallet_balance, [leg.with_tier(tier)], other_maintenance, other_unrealized, fee)
        if lp != lp:
            continue
        if leg.side == LONG:  # breach set in range k: [lo, min(lp, hi)) when lp >= lo
            if lp >= lo:
                candidate = min(lp, hi)
                best = candidate if best != best else max(best, candidate)
        elif lp < hi:  # short: breach set (max(lp, lo), hi)
            candidate = max(lp, lo)
            best = candidate if best != best else min(best, candidate)
    return best


def partial_liquidation_plan(*, qty: float, mark_price: float, margin_balance: float,
                             tiers: TierTable, clearance_rate: float,
                             other_maintenance: float = 0.0, lot_size: float = 0.0,
                             contract: Any = None, liquidation_fee_rate: float) -> TierDownPlan:
    """OKX's partial liquidation: step the position down tier by tier, then take over.

    Source: margin_rules.md §4 "Liquidation" (partial liquidation steps the position down by
    tiers while the margin ratio is <= 100 % and the position is above tier 1; at tier 1 the
    whole position is taken over at the bankruptcy price; the liquidation fee goes to the risk
    reserve). The requirement after each step is :func:`requirement` of the remainder.
    """
    return step_down_plan(
        qty=qty, mark_price=mark_price, margin_balance=margin_balance, tiers=tiers,
        clearance_rate=clearance_rate, other_maintenance=other_maintenance, lot_size=lot_size,
        contract=contract,
        requirement=functools.partial(requirement, liquidation_fee_rate=liquidation_fee_rate))


@functools.cache
def _default_fee_rate() -> float:
    """The liquidation-fee rate of OKX's margin ratio: the latest regular taker rate of the
    venue's data (backtest/venues/data/okx.toml)."""
    from backtest.venues.defaults import default_fees
    return default_fees("okx").taker


def formulas_for(contract: Any) -> PoolFormulas:
    """Pool formulas of an OKX USDT swap (the fee term at the venue's taker rate).

    Raises
    ------
    VenueError
        For an inverse contract (the ``okx`` venue models USDT-margined swaps).
    """
    if contract is not None and getattr(contract, "inverse", False):
        raise VenueError(
            f"venue okx models USDT-margined swaps, the market spec is inverse ({contract!r}); "
            "use a USDT symbol such as 'BTC/USDT:USDT'")
    fee = _default_fee_rate()
    return PoolFormulas(
        liquidation_price=functools.partial(liquidation_price, liquidation_fee_rate=fee),
        liquidation_price_resolved=functools.partial(liquidation_price_resolved,
                                                     liquidation_fee_rate=fee, contract=contract),
        bankruptcy_price=binance_usdm.bankruptcy_price,  # zero equity (margin_rules.md §1)
        funding_payment=binance_usdm.funding_payment,  # position value x rate (§4)
        brackets_at_entry=True)  # the resolver handles OKX's jumps itself


def _maintenance(notional: float, tier: Any) -> float:
    return requirement(notional, tier, liquidation_fee_rate=_default_fee_rate())


def _plan(**kwargs: Any) -> TierDownPlan:
    return partial_liquidation_plan(liquidation_fee_rate=_default_fee_rate(), **kwargs)


# ---- auto-deleveraging (its own section, apart from the tier rules) -------------------------
__all__ += ["ADL_RULE", "adl_score"]


def adl_score(c: AdlCandidate) -> float:
    """OKX's ADL ranking "leverage PnL% = position's PnL% x effective leverage", dimensionless.

    Positions with the highest positive leverage PnL% are offset first. ``PnL% = (mark value -
    entry value) / |entry value|``, ``effective leverage = position value / its margin
    balance`` (:func:`backtest.venues.adl_rules.pnl_percent`, :func:`effective_leverage`).
    Deleveraged positions close at the mark normally, at the bankruptcy price when the fund
    is nearly depleted; a run deleverages only once its fund cannot pay, so at the
    bankruptcy price. Source: OKX help "Introduction to Auto-deleveraging (ADL)",
    https://www.okx.com/help/iv-introduction-to-auto-deleveraging-adl (version of
    2025-10-28); margin_rules.md §4.
    """
    if not c.equity > 0.0:
        return 0.0  # nothing backs it: it is being liquidated, not ranked
    return pnl_percent(c) * effective_leverage(c)


#: OKX's ADL rule in runs (see :func:`adl_score`); the quantile is the queue position.
ADL_RULE = AdlRule("okx_pnl_x_effective_leverage", adl_score, rank_quantiles, BANKRUPTCY,
                   "https://www.okx.com/help/iv-introduction-to-auto-deleveraging-adl")


def _venue() -> Venue:
    rate = _default_fee_rate()  # the plain fields bind the same fee rate as formulas_for
    return Venue(
        name="okx",
        exchange="okx",
        contract_type="linear",
        maintenance_margin=_maintenance,
        liquidation_price=functools.partial(liquidation_price, liquidation_fee_rate=rate),
        liquidation_price_resolved=functools.partial(liquidation_price_resolved,
                                                     liquidation_fee_rate=rate),
        bankruptcy_price=binance_usdm.bankruptcy_price,
        funding_payment=binance_usdm.funding_payment,
        unrealized_pnl=binance_usdm.unrealized_pnl,
        initial_margin=binance_usdm.initial_margin,  # |N| / leverage
        contract_formulas=formulas_for,
        tier_down_plan=_plan,
        adl_rule=ADL_RULE,
        label="OKX",
        rule_versions=MappingProxyType({
            "liquidation_price": "margin_rules.md §4 (OKX margin ratio, https://open-lib.com/11556.html); "
                                 "freqtrade/freqtrade@c9ae5e1e9ff25bb55dd61f5e5519f7c479291edb exchange.py",
            "tiers": "by contract count (margin_rules.md §4; "
                     "https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers): "
                     "fetched tiers as OKX gives them; built-in ASSUMPTION one tier per symbol "
                     "(no OKX position tiers in ../shared; backtest/venues/data/okx.toml)",
            "partial_liquidation": "margin_rules.md §4 (https://www.prjmp.com/9076.html summary)",
            "adl": "https://www.okx.com/help/iv-introduction-to-auto-deleveraging-adl "
                   "(PnL% x effective leverage; bankruptcy price once the fund is depleted)",
            "order_limits": "ASSUMPTION 500 pending orders, 100 algo orders per instrument",
        }),
        max_open_orders=500,
        max_stop_orders=100,
        tier_basis=CONTRACTS,  # OKX position tiers count contracts (minSz/maxSz)
        tier_bases=(CONTRACTS, NOTIONAL),  # a user's notional table is read by notional
    )


#: The registered venue ``okx`` (see :func:`backtest.venues.base.get_venue`).
VENUE: Venue = _venue()

#: Coverage for ``margincall venues`` (the dated tables come from data/okx.toml).
VENUE_INFO = VenueInfo(name="okx", title="OKX USDT-margined perpetual swaps",
                       modes=(("linear", "isolated"), ("linear", "cross")))
