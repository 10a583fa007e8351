"""Binance USDⓈ-M (linear, USDT-margined) futures: pure margin and liquidation math.

Every function is pure (floats in, floats out). Units: prices in USDT per 1 base unit,
quantities in base units (BTC, ETH), money in USDT. Sides are +1 (long) and -1 (short).

Sources (cited per function):

* [FAQ-LP] Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts",
  https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93
* [QENV] The 2019-2020 Binance liquidation text as copied in bradkyle/Qenv @
  bf999d43d5dc3794ead63314f292a40df1120cfe ``logic/binance.md`` (LP1 formula, worked
  examples, liquidation fee 0.3 % BTCUSDT / 0.5 % other perpetuals).
* [FT] freqtrade/freqtrade @ c9ae5e1e9ff25bb55dd61f5e5519f7c479291edb,
  ``freqtrade/exchange/binance.py`` (``dry_run_liquidation_price``) and
  ``tests/exchange/test_binance.py::test_liquidation_price_binance``,
  ``tests/exchange/test_exchange.py::test_calculate_funding_fees``.
* [MA] Binance Multi-Assets Mode FAQ,
  https://www.binance.com/en/support/faq/29b45c485d664028b9ca1cdf90b24f6f and
  https://www.binance.com/en-NG/futures/trading-rules/perpetual/multi-asset-info
* Project summary of all of the above: ../shared/specs/margin_rules.md §2.1, §11.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from backtest.contracts import linear_pnl
from backtest.venues.base import LONG, SHORT, Leg, Venue
from backtest.venues.catalog import VenueInfo
from backtest.venues.errors import TierError
from backtest.venues.stepdown import TierDownPlan, step_down_plan
from backtest.venues.tiers import Tier, TierTable, maintenance_amounts

__all__ = [
    "VENUE",
    "Leg",
    "LiquidationSolution",
    "auto_exchange_amount",
    "bankruptcy_price",
    "check_legs",
    "collateral_value",
    "funding_payment",
    "funding_payments",
    "initial_margin",
    "leg_maintenance_margin",
    "leg_unrealized_pnl",
    "liquidation_price",
    "liquidation_price_resolved",
    "maintenance_amounts",
    "maintenance_margin",
    "margin_ratio",
    "next_maintenance_amount",
    "resolve_liquidation",
    "TierDownPlan",
    "tier_down_plan",
    "unrealized_pnl",
]

def next_maintenance_amount(*, floor: float, mmr: float, previous_mmr: float,
                            previous_cum: float) -> float:
    """One step of the maintenance-amount recursion: ``cum_prev + floor * (mmr - mmr_prev)``.

    Source: [FAQ-LP] "Maintenance Amount" section; the COIN-M FAQ (ceccfcfb...) applies the
    same step in coin (Level 5 of BTCUSD = 50 BTC * (5 % - 2.5 %) + 0.56 BTC = 1.81 BTC).

    Returns
    -------
    float
        The bracket's maintenance amount in the notional's unit (USDT or coin).
    """
    return previous_cum + floor * (mmr - previous_mmr)


def maintenance_margin(notional: float, tier: Tier) -> float:
    """Maintenance margin ``|N| * mmr - cum`` of a position of notional ``N`` (USDT).

    Source: [FAQ-LP] (MM = notional x maintenance margin rate - maintenance amount) and
    margin_rules.md §1. ``N`` is evaluated at the mark price.
    """
    return _maintenance_margin(notional, tier.mmr, tier.cum)


def _maintenance_margin(notional: float, mmr: float, cum: float) -> float:
    """:func:`maintenance_margin` of a bracket's ``mmr`` and ``cum`` (USDT): the one
    definition, positional so the kernel compiles it (``backtest.kernel.compiled``)."""
    return abs(notional) * mmr - cum


def leg_maintenance_margin(leg: Leg, mark_price: float) -> float:
    """Maintenance margin of a leg at ``mark_price`` with the leg's own mmr/cum, USDT."""
    return leg.qty * mark_price * leg.mmr - leg.cum


def unrealized_pnl(*, signed_qty: float, entry_price: float, mark_price: float) -> float:
    """Unrealized PnL ``q * (mark - entry)`` with ``q`` signed (+ long), USDT.

    Source: margin_rules.md §1 ("linear: UPNL = s*Q*(P - EP)"); Binance evaluates it at the
    mark price ([FAQ-LP], mark-price FAQ).
    """
    return linear_pnl(signed_qty, entry_price, mark_price)


def leg_unrealized_pnl(leg: Leg, mark_price: float) -> float:
    """Unrealized PnL of a leg at ``mark_price``, USDT."""
    return leg.side * leg.qty * (mark_price - leg.entry_price)


def initial_margin(notional: float, leverage: float) -> float:
    """Initial margin ``|N| / leverage``, USDT (margin_rules.md §2.1 "Initial margin").

    The allowed leverage is capped by the bracket of the notional
    (:meth:`backtest.venues.tiers.TierTable.max_leverage_for`).
    """
    if not leverage > 0:
        raise ValueError(f"leverage must be > 0, found {leverage}")
    return abs(notional) / leverage


def margin_ratio(*, maintenance: float, margin_balance: float) -> float:
    """Margin ratio = maintenance margin / margin balance; >= 1 means liquidation.

    Source: [FAQ-LP] and margin_rules.md §2.1 "Margin ratio and trigger". Cross: MM and
    margin balance (cross wallet + cross UPNL) over all cross positions of the margin asset;
    isolated: per position (isolated wallet + its UPNL). Returns ``inf`` when the margin
    balance is not positive and some maintenance is required (the account is bankrupt), and
    0 when nothing is required.
    """
    if margin_balance <= 0:
        return math.inf if maintenance > 0 else 0.0
    return maintenance / margin_balance


def check_legs(both: Leg | None, long: Leg | None, short: Leg | None) -> list[Leg]:
    """Validate the legs of one symbol (one-way ``both`` xor hedge ``long``/``short``)."""
    if both is not None and (long is not None or short is not None):
        raise ValueError(
            "liquidation_price: pass either `both` (one-way mode) or `long`/`short` (hedge "
            "mode), not both kinds"
        )
    if long is not None and long.side != LONG:
        raise ValueError(f"liquidation_price: the hedge-mode `long` leg must have side +1, found {long.side}")
    if short is not None and short.side != SHORT:
        raise ValueError(f"liquidation_price: the hedge-mode `short` leg must have side -1, found {short.side}")
    legs = [leg for leg in (both, long, short) if leg is not None]
    if not legs:
        raise ValueError("liquidation_price: expected at least one leg (both, long or short)")
    return legs


def _solve(wallet_balance: float, legs: Sequence[Leg], other_maintenance: float,
           other_unrealized: float) -> float:
    numerator = wallet_balance - other_maintenance + other_unrealized
    denominator = 0.0
    for leg in legs:
        numerator += leg.cum - leg.side * leg.qty * leg.entry_price
        denominator += leg.qty * leg.mmr - leg.side * leg.qty
    if denominator == 0.0:
        # equity - MM does not depend on the price (flat, or long and short cancel out)
        return math.nan
    return numerator / denominator


def liquidation_price(*, wallet_balance: float, both: Leg | None = None, long: Leg | None = None,
                      short: Leg | None = None, other_maintenance: float = 0.0,
                      other_unrealized: float = 0.0) -> float:
    """Binance's official USDⓈ-M liquidation price of one symbol, each leg at its given bracket.

    ``LP = [WB - TMM1 + UPNL1 + cumB + cumL + cumS - sB*QB*EPB - QL*EPL + QS*EPS]
    / [QB*MMRB + QL*MMRL + QS*MMRS - sB*QB - QL + QS]``

    Sources: [FAQ-LP] "Liquidation Price" (formula for one-way BOTH and hedge LONG/SHORT
    legs); [QENV] same formula with worked examples (BTCUSDT short 0.005 @ 9,451.53 ->
    11,383.99; ETHUSDT long 1 @ 199.53 -> 190.29); [FT] ``dry_run_liquidation_price``.

    Parameters
    ----------
    wallet_balance : float
        Cross: the cross wallet balance of the margin asset. Isolated: the isolated wallet
        (margin) of this position; then ``other_*`` must stay 0. USDT.
    both : Leg, optional
        The one-way-mode position.
    long, short : Leg, optional
        The hedge-mode legs. In cross mode both legs share one LP; in isolated mode call the
        function once per leg with that leg's isolated wallet.
    other_maintenance : float
        TMM1: maintenance margin of all *other* cross positions at their marks, USDT.
    other_unrealized : float
        UPNL1: unrealized PnL of all *other* cross positions at their marks, USDT.

    Returns
    -------
    float
        The mark price at which equity equals maintenance margin, USDT. Binance shows a
        non-positive result as "--": for a net long it means no positive price liquidates,
        for a net short that the account is already below maintenance. ``nan`` when
        ``equity - MM`` does not depend on the price (a flat or perfectly hedged book).
        The bracket is the one given on each leg; use :func:`liquidation_price_resolved`
        to pick the bracket of the notional at the liquidation price.
    """
    legs = check_legs(both, long, short)
    return _solve(wallet_balance, legs, other_maintenance, other_unrealized)


def _liquidation_price_one_leg(wallet: float, side: int, qty: float, entry: float, mmr: float,
                               cum: float, other_mm: float, other_upnl: float) -> float:
    """:func:`liquidation_price` of one already-valid leg, without building or checking it.

    The engine's hot path (``backtest.margin``): the same operations in the same order as
    :func:`_solve` on ``[Leg(side, qty, entry, mmr, cum)]``, so the result is the same float
    (``tests/venues/test_binance_fast_path.py`` checks ``==`` on random inputs). The caller
    guarantees what ``Leg`` and :func:`check_legs` would validate: ``side`` is +1 or -1 (and
    matches the hedge-mode leg), ``qty >= 0`` and ``entry > 0``.
    """
    numerator = wallet - other_mm + other_upnl
    denominator = 0.0
    numerator += cum - side * qty * entry
    denominator += qty * mmr - side * qty
    if denominator == 0.0:
        return math.nan
    return numerator / denominator


@dataclass(frozen=True, slots=True)
class LiquidationSolution:
    """A liquidation price together with the brackets it was solved with.

    Attributes
    ----------
    price : float
        Liquidation (mark) price, USDT (see :func:`liquidation_price` for non-positive/NaN).
    legs : tuple of Leg
        The legs priced with the bracket of their notional at ``price``.
    tier_indices : tuple of int
        0-based bracket index of each leg.
    iterations : int
        Fixed-point iterations used (0 when the exhaustive search was needed).
    """

    price: float
    legs: tuple[Leg, ...]
    tier_indices: tuple[int, ...]
    iterations: int


def _notional_at(leg: Leg, price: float) -> float:
    return leg.qty * max(price, 0.0) if not math.isnan(price) else 0.0


def resolve_liquidation(*, wallet_balance: float, tiers: TierTable, both: Leg | None = None,
                        long: Leg | None = None, short: Leg | None = None,
                        other_maintenance: float = 0.0, other_unrealized: float = 0.0,
                        max_iterations: int | None = None) -> LiquidationSolution:
    """Solve the liquidation price with each leg's bracket taken at the LP notional.

    The FAQ ([FAQ-LP], [QENV] "Important Note") says: if the notional at the liquidation
    price is not within the bracket used, recompute with the bracket of that notional.
    Procedure: start from the legs' given mmr/cum (or bracket 1 when both are 0), solve
    :func:`liquidation_price`, look up each leg's bracket at ``qty * LP``; repeat until the
    brackets no longer change. Because ``MM(N) = N*mmr_k - cum_k`` is continuous and
    ``mmr < 1``, equity minus MM is strictly monotone in the price for a one-way leg, so the
    self-consistent bracket is unique and the iteration stops within ``len(tiers) + 1``
    steps. If it ever cycles (a hedged book, or floating ties at a floor), every bracket
    combination is tried and the self-consistent one closest to the last iterate is taken.
    A notional exactly on a floor belongs to the upper bracket; both brackets give the same
    LP there by continuity.

    Parameters
    ----------
    wallet_balance, both, long, short, other_maintenance, other_unrealized
        As in :func:`liquidation_price`; the legs' mmr/cum are only the starting guess.
    tiers : TierTable
        The symbol's bracket table in force.
    max_iterations : int, optional
        Fixed-point cap, default ``len(tiers) + 2``.

    Returns
    -------
    LiquidationSolution
    """
    legs = check_legs(both, long, short)
    limit = max_iterations if max_iterations is not None else len(tiers) + 2
    current = [leg if (leg.mmr or leg.cum) else leg.with_tier(tiers.tiers[0]) for leg in legs]
    seen: set[tuple[int, ...]] = set()
    price = math.nan
    for iteration in range(1, limit + 1):
        price = _solve(wallet_balance, current, other_maintenance, other_unrealized)
        indices = tuple(tiers.index_for(_notional_at(leg, price)) for leg in current)
        resolved = [leg.with_tier(tiers.tiers[i]) for leg, i in zip(current, indices)]
        if resolved == current:
            return LiquidationSolution(price, tuple(current), indices, iteration)
        if indices in seen:
            break
        seen.add(indices)
        current = resolved
    return _exhaustive(wallet_balance, legs, tiers, other_maintenance, other_unrealized, price)


def _exhaustive(wallet_balance: float, legs: Sequence[Leg], tiers: TierTable,
                other_maintenance: float, other_unrealized: float,
                last_price: float) -> LiquidationSolution:
    candidates = []
    for indices in itertools.product(range(len(tiers)), repeat=len(legs)):
        priced = [leg.with_tier(tiers.tiers[i]) for leg, i in zip(legs, indices)]
        price = _solve(wallet_balance, priced, other_maintenance, other_unrealized)
        if math.isnan(price):
            continue
        if all(tiers.index_for(_notional_at(leg, price)) == i for leg, i in zip(priced, indices)):
            candidates.append((price, tuple(priced), indices))
    if not candidates:
        raise TierError(
            f"{tiers.label}: no bracket is self-consistent at the liquidation price "
            f"(last iterate {last_price}); check the tier table"
        )
    anchor = 0.0 if math.isnan(last_price) else last_price
    price, priced, indices = min(candidates, key=lambda c: abs(c[0] - anchor))
    return LiquidationSolution(price, priced, indices, 0)


def liquidation_price_resolved(*, wallet_balance: float, tiers: TierTable, both: Leg | None = None,
                               long: Leg | None = None, short: Leg | None = None,
                               other_maintenance: float = 0.0,
                               other_unrealized: float = 0.0) -> float:
    """Liquidation price with brackets re-solved at the LP notional, USDT.

    See :func:`resolve_liquidation` for the procedure and sources; this returns its price.
    """
    return resolve_liquidation(
        wallet_balance=wallet_balance, tiers=tiers, both=both, long=long, short=short,
        other_maintenance=other_maintenance, other_unrealized=other_unrealized,
    ).price


def bankruptcy_price(*, wallet_balance: float, side: int, qty: float, entry_price: float,
                     other_unrealized: float = 0.0) -> float:
    """Price at which the position's equity reaches zero, USDT.

    Solves ``WB + UPNL1 + s*Q*(P - EP) = 0``: ``P = EP - s * (WB + UPNL1) / Q``.

    Source: margin_rules.md §1 "Bankruptcy price" and §2.1 step 3 (Binance closes a
    still-deficient position at the bankruptcy price and the insurance fund takes it over,
    [QENV] "All orders will be issued at the bankruptcy price"). Binance does not publish a
    separate formula; this is the zero-equity price of the same equity as [FAQ-LP] without
    the maintenance term.

    Parameters
    ----------
    wallet_balance : float
        Isolated wallet of the position, or the cross wallet balance, USDT.
    side : int
        +1 long, -1 short.
    qty : float
        Absolute size, base units (> 0).
    entry_price : float
        Average entry price, USDT.
    other_unrealized : float
        Cross only: UPNL of the other cross positions at their marks, USDT.

    Returns
    -------
    float
        For a long this may be <= 0 (cannot go bankrupt at a positive price); for a short it
        is always above the entry price when equity is positive.
    """
    if side not in (LONG, SHORT):
        raise ValueError(f"bankruptcy_price: side must be +1 or -1, found {side!r}")
    if not qty > 0:
        raise ValueError(f"bankruptcy_price: qty must be > 0, found {qty}")
    return _bankruptcy_price(wallet_balance, side, qty, entry_price, other_unrealized)


def _bankruptcy_price(wallet: float, side: int, qty: float, entry: float,
                      other_unrealized: float) -> float:
    """:func:`bankruptcy_price` without the input checks (USDT): the one definition,
    positional so the kernel compiles it (``backtest.kernel.compiled``)."""
    return entry - side * (wallet + other_unrealized) / qty


def funding_payment(*, signed_qty: float, mark_price: float, rate: float) -> float:
    """Funding exchanged at one settlement, + = received by the account, USDT.

    ``payment = -q * mark * rate`` with ``q`` signed: a positive rate makes longs pay shorts.

    Sources: margin_rules.md §2.1 "Funding" ("Payment = position notional at mark x F");
    [FT] ``test_calculate_funding_fees`` (short 10 @ mark 2.5, rate 0.0002 -> 0.005
    received).
    """
    return _funding_payment(signed_qty, mark_price, rate)


def _funding_payment(signed_qty: float, mark_price: float, rate: float) -> float:
    """:func:`funding_payment` (USDT, + received): the one definition, positional so the
    kernel compiles it (``backtest.kernel.compiled``)."""
    return -signed_qty * mark_price * rate


def funding_payments(*, signed_qty: float,
                     settlements: Iterable[tuple[float, float]]) -> float:
    """Sum of :func:`funding_payment` over ``(rate, mark_price)`` settlements, USDT.

    Source: [FT] ``_calculate_funding_fees`` (``sum(rate_i * mark_i * amount)`` over the
    settlements inside the holding window), sign as in :func:`funding_payment`.
    """
    return math.fsum(funding_payment(signed_qty=signed_qty, mark_price=mark, rate=rate)
                     for rate, mark in settlements)


def collateral_value(market_value: float, collateral_value_ratio: float) -> float:
    """Value a Multi-Assets-Mode collateral counts for: market value x (1 - haircut), USD.

    Source: [MA] ("ADA worth $1,000 counts as $900" at a 90 % ratio; 2021 list BTC/ETH/BNB
    95 %, XRP/ADA/DOT/SOL 90 %, USDT 99.99 %, BUSD 100 %).
    """
    if not 0.0 <= collateral_value_ratio <= 1.0:
        raise ValueError(f"collateral_value_ratio must be in [0, 1], found {collateral_value_ratio}")
    return market_value * collateral_value_ratio


def auto_exchange_amount(deficit: float, rate: float) -> float:
    """Amount of other collateral sold to cover a negative margin-asset balance.

    ``deficit / rate``: e.g. -20,000 BUSD is covered by 20,000 / 97.5 % = 20,513 BUSD worth
    of BTC. Source: [MA] multi-asset-info page, auto-exchange example (the 97.5 % factor is
    the page's own number). Triggered when the balance is below -10,000 USD, on
    liquidation, or when LTV >= 1 with no positions (margin_rules.md §11).
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"auto-exchange rate must be in (0, 1], found {rate}")
    return abs(deficit) / rate


def tier_down_plan(*, qty: float, mark_price: float, margin_balance: float, tiers: TierTable,
                   clearance_rate: float, other_maintenance: float = 0.0,
                   lot_size: float = 0.0, contract: object = None) -> TierDownPlan:
    """Binance "smart liquidation": reduce a breached position bracket by bracket.

    Source: margin_rules.md §2.1 "What happens at liquidation" step 2 (Binance FAQ
    "Liquidation Protocol", https://docs.traderwagon.com/faq/futures-trading-introduction/liquidation-protocol):
    the engine first tries to bring the account back into compliance by reducing large
    positions towards lower brackets, charging the liquidation fee on the liquidated amount
    only; step 3: if still deficient, the position is taken over at the bankruptcy price.

    Each step closes, at the trigger mark, what takes the notional just below the floor of
    its bracket (lot-rounded down). Closing at the mark moves PnL from unrealized to the
    wallet, so the margin balance changes only by the step's clearance fee
    (``rate * q * mark``). The plan stops at the first step after which
    ``margin_balance - fees - other_maintenance - MM(remainder)`` is > 0 (compliant); when
    the first bracket is reached without compliance, ``takeover`` is set.

    Parameters
    ----------
    qty : float
        Absolute position size, base units (> 0).
    mark_price : float
        Mark price at the trigger, USDT.
    margin_balance : float
        The pool's margin balance at the trigger mark (wallet + UPNL), USDT.
    tiers : TierTable
        The bracket table in force.
    clearance_rate : float
        Liquidation (clearance) fee fraction of the liquidated notional.
    other_maintenance : float
        Maintenance margin of the pool's other positions at their marks (cross), USDT.
    lot_size : float
        Quantity step (0: no rounding).
    contract : Contract, optional
        The symbol's contract arithmetic; USDⓈ-M contracts are linear (base units x USDT),
        so it is not needed here (the venue's ``formulas`` refuses an inverse spec).

    Returns
    -------
    TierDownPlan
    """
    # The procedure is stepdown's (one loop for Binance, Bybit, OKX); Binance's requirement is
    # its maintenance margin, and its fee is written ``rate * q * mark`` (not
    # ``rate * (q * mark)``) so the floats stay those this engine has always produced.
    return step_down_plan(qty=qty, mark_price=mark_price, margin_balance=margin_balance,
                          tiers=tiers, clearance_rate=clearance_rate,
                          requirement=maintenance_margin, other_maintenance=other_maintenance,
                          lot_size=lot_size, step_fee=lambda q, p: clearance_rate * q * p)


def _venue() -> Venue:
    return Venue(
        name="binance_usdm",
        exchange="binanceusdm",
        contract_type="linear",
        maintenance_margin=maintenance_margin,
        liquidation_price=liquidation_price,
        liquidation_price_resolved=liquidation_price_resolved,
        bankruptcy_price=bankruptcy_price,
        funding_payment=funding_payment,
        unrealized_pnl=unrealized_pnl,
        tier_down_plan=tier_down_plan,
        one_leg_liquidation_price=_liquidation_price_one_leg,
        positional_formulas=MappingProxyType({
            "maintenance_margin": _maintenance_margin, "bankruptcy_price": _bankruptcy_price,
            "funding_payment": _funding_payment}),
        resolve_liquidation=resolve_liquidation,
        adl_score=adl_score,
        adl_quantiles=adl_quantiles,
        auto_exchange_amount=auto_exchange_amount,
        label="Binance",
        rule_versions=MappingProxyType({
            "liquidation_price": "https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93",
            "liquidation_price_reference": "freqtrade/freqtrade@c9ae5e1e9ff25bb55dd61f5e5519f7c479291edb freqtrade/exchange/binance.py",
            "tier_down": "https://docs.traderwagon.com/faq/futures-trading-introduction/liquidation-protocol",
            "liquidation_fee": "bradkyle/Qenv@bf999d43d5dc3794ead63314f292a40df1120cfe logic/binance.md",
            "tiers": "freqtrade/freqtrade freqtrade/exchange/binance_leverage_tiers.json snapshots 2022-02..2024-05",
            "order_limits": "/fapi/v1/exchangeInfo symbol filters MAX_NUM_ORDERS limit 200, "
                            "MAX_NUM_ALGO_ORDERS limit 10 (BTCUSDT, ETHUSDT)",
        }),
        max_open_orders=200,
        max_stop_orders=10,
    )




# ---------------------------------------------------------------------------------------------
# Auto-deleveraging (ADL) ranking. A separate section: the ledger/ADL work (issue 10) adds these
# pure rules; the engine side is backtest/adl.py.
# ---------------------------------------------------------------------------------------------
__all__ += ["adl_quantiles", "adl_score"]


def adl_score(*, unrealized_pnl: float, wallet_balance: float, maintenance_margin: float) -> float:
    """Binance's ADL ranking score ("LeveragePnL"), dimensionless.

    ``PnL% = max(0, UPNL) / max(1, WB)``; ``margin ratio = MM / (WB + UPNL)`` (0 when the
    equity is <= 0); score ``= PnL% x margin ratio``. Higher scores are deleveraged first.

    Source: Binance FAQ "Auto-Deleveraging (ADL)" https://www.binance.com/en/support/faq/360033525471,
    formula as quoted on dev.binance.vision thread 17801 (cascades.md §C.1); worked example:
    UPNL 40.2, WB 4.27 -> PnL% 9.41; margin ratio 13.42 % -> 1.26.

    Parameters
    ----------
    unrealized_pnl : float
        The position's unrealized PnL at the mark, USDT.
    wallet_balance : float
        Its wallet: the isolated wallet, or the cross wallet balance, USDT.
    maintenance_margin : float
        Maintenance margin of the position's pool, USDT.
    """
    pnl_pct = max(0.0, unrealized_pnl) / max(1.0, wallet_balance)
    equity = wallet_balance + unrealized_pnl
    ratio = maintenance_margin / equity if equity > 0.0 else 0.0
    return pnl_pct * ratio


def adl_quantiles(scores: Sequence[float]) -> list[float]:
    """Binance's ADL quantile of each score: ``rank / number of positions``, in (0, 1].

    Ranks ascend with the score (the highest score has quantile 1, the head of the queue);
    equal scores share the highest rank of their group. The app shows it as five lights
    (``ceil(5 * quantile)``). Source: cascades.md §C.1 ("quantile = rank(LeveragePnL) /
    number of users"), Binance FAQ 360033525471.
    """
    import bisect

    n = len(scores)
    order = sorted(scores)
    return [bisect.bisect_right(order, s) / n for s in scores]


#: The registered venue (see :func:`backtest.venues.base.get_venue`).
VENUE: Venue = _venue()

#: Coverage for ``margincall venues`` (the dated tables come from data/binance_usdm.toml).
VENUE_INFO = VenueInfo(
    name=VENUE.name, title="Binance USDⓈ-M perpetuals (USDT-margined)",
    modes=((VENUE.contract_type, "isolated"), (VENUE.contract_type, "cross")))
