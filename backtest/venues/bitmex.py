"""BitMEX XBTUSD (inverse perpetual) as on 2020-03-12: margin, liquidation, funding, ADL; pure.

The engine selects these rules as ``--venue bitmex_inverse`` (:mod:`backtest.venues.bitmex_inverse`).

Units: ``contracts`` of 1 USD face value each (``contract_usd``), prices in USD per XBT,
money in XBt (satoshi, 1 XBT = 1e8 XBt) for the position-record arithmetic of
:class:`PositionMargins`, and in XBT for :func:`inverse_pnl` and the funding amount. Sides
are +1 (long) and -1 (short). Rates are fractions (0.005 = 0.5 %).

Sources (cited per function):

* [GUIDE] BitMEX "Perpetual Contracts Guide — Examples",
  https://www.bitmex.com/app/perpetualContractsGuideExamples (inverse PnL 15,000 contracts
  750 -> 800 = 1.25 XBT; interest rate (1.00 % - 0.25 %)/3; funding 20 XBT x 0.25 % = 0.05 XBT;
  fair-price marking; premium index).
* [LIQ] BitMEX "Liquidation", https://www.bitmex.com/app/liquidation (takeover at the
  bankruptcy price at the lowest risk limit; the maintenance margin is lost).
* [RISK] BitMEX "Risk Limits Examples", https://www.bitmex.com/app/riskLimitsExamples
  ("at each step, the maintenance and initial margin are raised by the base maintenance
  margin"; XBTUSD base 0.50 %/1.00 %, base limit 200 XBT, step 100 XBT until 2020-04-17).
* [ADL] BitMEX "Auto-Deleveraging", https://www.bitmex.com/app/autoDeleveraging and
  https://www.bitmex.com/app/autoDeleveragingExamples (ranking formula, six-long example).
* [CAPS] BitMEX blog notice of 2020-04-17 (funding caps ``|F| <= 75 % (IM - MM)``, change per
  interval ``<= 75 % MM``), https://blog.bitmex.com/site_announcement/reduction-in-base-maintenance-margin-xbt-and-eth-series-17-april-2020-2/
* [REC] A captured 2018 XBTUSD position record (short 500 @ 6,725, 25x), quoted in a public
  C# websocket client (margin_rules.md §5, vectors ``bitmex-live-2018-*``): posCost 7,435,000,
  posInit 297,400, posComm 5,800, posMaint 42,975, liquidation 6,968.5, bankruptcy 7,004.5.
* [SUPPORT] BitMEX support answer quoted on r/BitMEX: maintenance = base MM + exit taker fee +
  funding rate (margin_rules.md §5; the sign of the funding term for shorts is open question 4).
* [NT] nautechsystems/nautilus_trader @ 02d60014f5fdd226b7a3c5cee2414f87118b7bae
  ``tests/unit_tests/accounting/test_margin.py`` (framework convention ``notional*rate/leverage``).
* Project summary: ../shared/specs/margin_rules.md §5, ../shared/specs/cascades.md §C.4.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from backtest.venues.adl_rules import BANKRUPTCY, AdlCandidate, AdlRule
from backtest.venues.errors import VenueError
from backtest.venues.rounding import round_price

__all__ = [
    "ADL_RULE",
    "AdlPosition",
    "PositionMargins",
    "SATOSHI_PER_XBT",
    "XBTUSD_2020",
    "XbtusdRules",
    "adl_allocation",
    "adl_candidate_score",
    "adl_indicator_percentiles",
    "adl_queue_quantiles",
    "adl_score",
    "bankruptcy_price",
    "capped_funding_rate",
    "contract_value_xbt",
    "fair_price",
    "funding_amount",
    "funding_maintenance_rate",
    "funding_payment",
    "funding_rate",
    "initial_margin_req",
    "interest_rate",
    "inverse_pnl",
    "leveraged_margin",
    "liquidation_price",
    "position_margins",
    "premium_index",
    "risk_limit_margins",
    "takeover_insurance_delta",
]

SATOSHI_PER_XBT = 100_000_000
_EIGHT_HOURS_S = 8 * 3600


@dataclass(frozen=True, slots=True)
class XbtusdRules:
    """XBTUSD parameters in force over a period (fractions; XBT; USD).

    Attributes
    ----------
    effective_from : str
        First UTC day the values are known to hold (ISO date).
    base_im, base_mm : float
        Base initial / maintenance margin rate at the lowest risk limit.
    base_risk_limit_xbt, risk_step_xbt : float
        Base risk limit and risk-limit step, XBT of position value.
    taker_fee, maker_fee : float
        Trading fees (maker negative = rebate).
    tick : float
        Price tick, USD.
    funding_interval_hours : float
        Funding interval (exchanged at 04:00, 12:00, 20:00 UTC).
    interest_quote_daily, interest_base_daily : float
        Daily quote (USD) and base (XBT) interest rates of the funding formula.
    premium_clamp : float
        Clamp of ``I - P`` in :func:`funding_rate`.
    """

    effective_from: str
    base_im: float
    base_mm: float
    base_risk_limit_xbt: float
    risk_step_xbt: float
    taker_fee: float
    maker_fee: float
    tick: float
    funding_interval_hours: float
    interest_quote_daily: float
    interest_base_daily: float
    premium_clamp: float


#: XBTUSD on 2020-03-12 ([RISK], [GUIDE], margin_rules.md §5; base MM cut to 0.45 % on
#: 2020-04-17, which a later version of these rules would carry).
XBTUSD_2020 = XbtusdRules(effective_from="2020-03-12", base_im=0.01, base_mm=0.005,
                          base_risk_limit_xbt=200.0, risk_step_xbt=100.0, taker_fee=0.00075,
                          maker_fee=-0.00025, tick=0.5, funding_interval_hours=8.0,
                          interest_quote_daily=0.0006, interest_base_daily=0.0003,
                          premium_clamp=0.0005)


def _side(side: int) -> int:
    if side not in (1, -1):
        raise VenueError(f"BitMEX: side must be +1 (long) or -1 (short), found {side!r}")
    return side


def _positive(name: str, value: float) -> float:
    if not value > 0 or math.isinf(value):
        raise VenueError(f"BitMEX: {name} must be a finite number > 0, found {value!r}")
    return value


def _rate(name: str, value: float) -> float:
    if not 0 <= value <= 1:
        raise VenueError(f"BitMEX: {name} must be a fraction in [0, 1], found {value!r} "
                         "(write 0.5 % as 0.005)")
    return value


# ---- inverse contract arithmetic ----------------------------------------------------------

def contract_value_xbt(price: float, *, contract_usd: float = 1.0) -> int:
    """Value of one contract at ``price``, XBt: ``round(contract_usd*1e8/price)``.

    Source: margin_rules.md §5 (multiplier -100,000,000 XBt; [REC] posCost = contracts x
    round(1e8/avgEntry)). Half-way cases round to even (Python ``round``) — none occurs at a
    0.5 USD tick for the 1 USD contract.
    """
    return round(contract_usd * SATOSHI_PER_XBT / _positive("price", price))


def inverse_pnl(*, side: int, contracts: float, entry_price: float, exit_price: float,
                contract_usd: float = 1.0) -> float:
    """PnL of an inverse position, XBT: ``s*Q*(1/EP - 1/exit)`` with ``Q = contracts*USD``.

    Source: [GUIDE] (15,000 contracts long 750 -> 800 gives 1.25 XBT).
    """
    q = abs(contracts) * contract_usd
    return _side(side) * q * (1.0 / _positive("entry_price", entry_price)
                              - 1.0 / _positive("exit_price", exit_price))


# ---- risk limits and margin requirements --------------------------------------------------

def risk_limit_margins(position_xbt: float, *, base_limit_xbt: float = 200.0,
                       step_xbt: float = 100.0, base_mm: float = 0.005,
                       base_im: float = 0.01) -> tuple[float, float]:
    """``(initial, maintenance)`` margin rates required at a position value, fractions.

    Each started ``step_xbt`` above ``base_limit_xbt`` raises both rates by ``base_mm``
    (a 250 XBT position on XBTUSD 2020: MM 1.0 %, IM 1.5 %). Source: [RISK].

    Parameters
    ----------
    position_xbt : float
        Position value, XBT (its absolute value is used).
    """
    _positive("step_xbt", step_xbt)
    excess = abs(position_xbt) - base_limit_xbt
    steps = math.ceil(excess / step_xbt) if excess > 0 else 0
    return base_im + steps * base_mm, base_mm + steps * base_mm


def initial_margin_req(*, leverage: float | None, base_im: float) -> float:
    """Isolated ``initMarginReq = max(base IM at the risk limit, 1/leverage)``, fraction.

    ``leverage=None`` is cross margin: the base IM applies and the whole free balance backs the
    position. Source: margin_rules.md §5 ([RISK], exchangeGuide).
    """
    if leverage is None:
        return base_im
    return max(base_im, 1.0 / _positive("leverage", leverage))


def leveraged_margin(*, quantity: float, price: float, rate: float, leverage: float = 1.0,
                     inverse: bool = True) -> float:
    """nautilus_trader's margin convention ``notional*rate/leverage`` (XBT for inverse).

    ``notional = quantity/price`` for inverse, ``quantity*price`` for linear. This is a framework
    convention, NOT BitMEX's rule (BitMEX's IM never falls below the base IM, see
    :func:`initial_margin_req`); kept to check against nautilus's XBTUSD tests. Source: [NT].
    """
    _positive("price", price)
    notional = abs(quantity) / price if inverse else abs(quantity) * price
    return notional * rate / _positive("leverage", leverage)


@dataclass(frozen=True, slots=True)
class PositionMargins:
    """A BitMEX position's margin fields, XBt (names of the BitMEX position object).

    Attributes
    ----------
    pos_cost : int
        ``contracts * round(1e8/avg_entry)``.
    pos_init : float
        ``pos_cost * init_margin_req``.
    pos_comm : int
        Reserved entry+exit commission ``ceil((pos_cost + pos_init) * taker)``.
    pos_margin : float
        ``pos_init + pos_comm + margin_added``.
    pos_maint : float
        ``pos_cost * maint_margin_req + pos_comm + adverse funding``.
    funding_reserve : float
        The adverse-funding part of ``pos_maint`` (0 when the next funding is received).
    """

    pos_cost: int
    pos_init: float
    pos_comm: int
    pos_margin: float
    pos_maint: float
    funding_reserve: float


def position_margins(*, side: int, contracts: float, avg_entry_price: float,
                     init_margin_req: float, maint_margin_req: float, commission: float,
                     funding_rate: float = 0.0, margin_added: float = 0.0) -> PositionMargins:
    """posCost, posInit, posComm, posMargin, posMaint of a position, XBt.

    The funding term of the maintenance margin is the next funding the position would *pay*:
    ``pos_cost * max(0, s*funding_rate)`` ([SUPPORT]: maintenance = base MM + exit taker fee +
    funding rate; charging it only when adverse is our reading — BitMEX's sign convention for
    shorts is disputed, margin_rules.md §14 q.4). Reproduces [REC] exactly (funding 0).
    """
    q = abs(contracts)
    _rate("init_margin_req", init_margin_req)
    _rate("maint_margin_req", maint_margin_req)
    _rate("commission", commission)
    cost = int(q * contract_value_xbt(avg_entry_price))
    init = cost * init_margin_req
    # the commission reserve is rounded up to the satoshi ([REC]: 5,799.3 -> 5,800)
    comm = math.ceil(round((cost + init) * commission, 6))
    reserve = cost * funding_maintenance_rate(side, funding_rate)
    return PositionMargins(pos_cost=cost, pos_init=init, pos_comm=comm,
                           pos_margin=init + comm + margin_added,
                           pos_maint=cost * maint_margin_req + comm + reserve,
                           funding_reserve=reserve)


def funding_maintenance_rate(side: int, next_rate: float) -> float:
    """The funding term of the maintenance margin, a rate on the position value (posCost).

    ``max(0, s*F)``: the next funding the position would pay (F > 0: longs pay), announced one
    interval ahead ([GUIDE]); charged only when adverse ([SUPPORT]: maintenance = base MM +
    exit taker fee + funding rate; BitMEX's sign for shorts is disputed, margin_rules.md §14
    q.4: a short paying when F < 0 is our reading). Source: margin_rules.md §5.
    """
    return max(0.0, _side(side) * next_rate)


def _price_where_loss(side: int, contracts: float, pos_cost: float, loss: float) -> float:
    """Price at which the position has lost ``loss`` XBt against ``pos_cost``.

    Value at price P is ``Q*1e8/P``; a long loses ``value - pos_cost`` (its coin value rises as
    the price falls), a short ``pos_cost - value``, so ``value = pos_cost + s*loss``.
    """
    value = pos_cost + side * loss
    if not value > 0:
        # a short that cannot lose that much is never reached (LP = +inf); a long whose loss
        # budget is below -cost is past it at every price (a long triggers at P <= +inf)
        return math.inf
    return abs(contracts) * SATOSHI_PER_XBT / value


def liquidation_price(*, side: int, contracts: float, pos_cost: float, pos_margin: float,
                      pos_maint: float, tick: float | None = None) -> float:
    """Mark ("Fair") price at which ``pos_margin + UPNL = pos_maint``, USD.

    Isolated: ``pos_margin`` is the position's margin; cross: pass the free wallet balance
    backing it. With ``tick`` the price is rounded conservatively (a long's up, a short's
    down; [REC]: 6,968.86 shown as 6,968.5). Source: [LIQ], margin_rules.md §5.
    """
    s = _side(side)
    price = _price_where_loss(s, contracts, pos_cost, pos_margin - pos_maint)
    if tick is None or not math.isfinite(price):
        return price
    return round_price(price, tick=tick, mode="up" if s == 1 else "down")


def bankruptcy_price(*, side: int, contracts: float, pos_cost: float, pos_init: float,
                     tick: float | None = None) -> float:
    """Price at which the loss equals the initial margin (``pos_init``), USD.

    The liquidation engine takes the position over at this price ([LIQ]). With ``tick`` the
    price is rounded like :func:`liquidation_price`. Known gap: [REC] prints 7,004.5 where
    this gives 7,005.16 (7,005.0 on the tick), ~668 XBt of unexplained reserve (margin_rules.md
    §13, vector ``bitmex-live-2018-bankruptPrice``).
    """
    s = _side(side)
    price = _price_where_loss(s, contracts, pos_cost, pos_init)
    if tick is None or not math.isfinite(price):
        return price
    return round_price(price, tick=tick, mode="up" if s == 1 else "down")


def takeover_insurance_delta(*, side: int, contracts: float, bankruptcy_price: float,
                             fill_price: float, contract_usd: float = 1.0) -> float:
    """Insurance-fund result of closing a taken-over position, XBT (+ = the fund gains).

    The liquidation engine takes the position over at the bankruptcy price and works it in the
    market: a fill better than bankruptcy goes to the Insurance Fund, a worse one is paid by
    it (then ADL if the fund cannot). Equals the position's PnL from the bankruptcy price to
    the fill. Source: [LIQ].
    """
    return inverse_pnl(side=side, contracts=contracts, entry_price=bankruptcy_price,
                       exit_price=fill_price, contract_usd=contract_usd)


# ---- funding and fair price ---------------------------------------------------------------

def interest_rate(*, quote_rate_daily: float, base_rate_daily: float,
                  intervals_per_day: int = 3) -> float:
    """Interest component per funding interval ``(quote - base)/intervals``, fraction.

    XBTUSD: (0.06 % - 0.03 %)/3 = 0.01 %. Source: [GUIDE].
    """
    if intervals_per_day < 1:
        raise VenueError(f"BitMEX: intervals_per_day must be >= 1, found {intervals_per_day!r}")
    return (quote_rate_daily - base_rate_daily) / intervals_per_day


def premium_index(*, impact_bid: float, impact_ask: float, mark_price: float,
                  index_price: float, fair_basis: float = 0.0) -> float:
    """One premium-index sample ``[max(0, bid - mark) - max(0, mark - ask)]/index + basis``.

    Impact prices for 0.1 XBT of initial margin; the rate uses the interval's time average.
    Source: [GUIDE], margin_rules.md §5.
    """
    _positive("index_price", index_price)
    return ((max(0.0, impact_bid - mark_price) - max(0.0, mark_price - impact_ask))
            / index_price + fair_basis)


def funding_rate(*, premium: float, interest: float, clamp: float = 0.0005) -> float:
    """``F = P + clamp(I - P, -clamp, +clamp)``, fraction per interval (+ = longs pay).

    Source: [GUIDE]; margin_rules.md §1 (the template every venue copied).
    """
    return premium + min(max(interest - premium, -clamp), clamp)


def capped_funding_rate(rate: float, *, previous_rate: float | None, im: float,
                        mm: float) -> float:
    """Apply the 2020 caps: ``|F| <= 75 % (IM - MM)`` and ``|F - F_prev| <= 75 % MM``.

    With XBTUSD's 1 %/0.5 % both caps are 0.375 %. Source: [CAPS].
    """
    cap = 0.75 * (im - mm)
    capped = min(max(rate, -cap), cap)
    if previous_rate is not None:
        step = 0.75 * mm
        capped = min(max(capped, previous_rate - step), previous_rate + step)
    return capped


def funding_amount(*, contracts: float, mark_price: float, rate: float,
                   contract_usd: float = 1.0) -> float:
    """Funding exchanged at a settlement: position mark value x rate, XBT (+ = long pays).

    Mark value = ``contracts*USD/mark``: 15,000 contracts at 750 = 20 XBT, x 0.25 % = 0.05 XBT.
    Source: [GUIDE]. No trading fee is charged on funding.
    """
    return abs(contracts) * contract_usd / _positive("mark_price", mark_price) * rate


def funding_payment(*, signed_contracts: float, mark_price: float, rate: float,
                    contract_usd: float = 1.0) -> float:
    """Signed funding of a position, XBT, + = received by the account (positive rate: longs pay).

    Source: [GUIDE]; the sign convention is the project's (docs/CONTRACTS.md §6).
    """
    side = 1 if signed_contracts >= 0 else -1
    return -side * funding_amount(contracts=signed_contracts, mark_price=mark_price, rate=rate,
                                  contract_usd=contract_usd)


def fair_price(*, index_price: float, funding_rate: float, seconds_to_funding: float,
               interval_seconds: float = _EIGHT_HOURS_S) -> float:
    """Fair Price Marking ``index*(1 + rate*time_to_next_funding/interval)``, USD.

    Source: [GUIDE] (fair basis decays linearly to zero at the settlement).
    """
    if not 0 <= seconds_to_funding <= interval_seconds:
        raise VenueError(f"BitMEX: seconds_to_funding must be in [0, {interval_seconds}], "
                         f"found {seconds_to_funding!r}")
    return index_price * (1.0 + funding_rate * seconds_to_funding / interval_seconds)


# ---- auto-deleveraging --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AdlPosition:
    """A position waiting in the ADL queue of one side.

    Attributes
    ----------
    account : int | str
        Account identifier.
    qty : float
        Contracts held (> 0).
    score : float
        Ranking from :func:`adl_score` (higher is deleveraged first).
    """

    account: int | str
    qty: float
    score: float


def adl_score(*, mark_value: float, entry_value: float, bankrupt_value: float) -> float:
    """ADL ranking: ``PnL% x effective leverage`` if ``PnL% > 0`` else ``PnL% / leverage``.

    ``PnL% = (mark - entry)/|entry|`` and ``effective leverage = |mark|/(mark - bankrupt)``,
    all values in the same unit (XBt, BitMEX's signed position values). Source: [ADL].
    """
    if entry_value == 0:
        raise VenueError("BitMEX ADL: entry_value must be non-zero, found 0")
    margin = mark_value - bankrupt_value
    if margin == 0:
        raise VenueError("BitMEX ADL: mark_value equals bankrupt_value (no margin left); "
                         "such a position is being liquidated, not ranked")
    pnl = (mark_value - entry_value) / abs(entry_value)
    leverage = abs(mark_value) / margin
    return pnl * leverage if pnl > 0 else pnl / leverage


def _ranked(positions: Sequence[AdlPosition]) -> list[AdlPosition]:
    for p in positions:
        if not p.qty > 0:
            raise VenueError(f"BitMEX ADL: account {p.account!r} has qty {p.qty!r}; expected > 0")
    # highest score first; ties keep the input order (sorted is stable) for determinism
    return sorted(positions, key=lambda p: -p.score)


def adl_allocation(positions: Sequence[AdlPosition], liquidated_qty: float) -> dict[int | str, float]:
    """Contracts each opposite-side account closes, highest score first, contracts.

    Greedy down the queue until ``liquidated_qty`` is matched; every close is at the liquidated
    order's bankruptcy price. Example: six longs, a short of 20 -> account 2 closes 10, account
    5 closes 10. Source: [ADL] (autoDeleveragingExamples).
    """
    if liquidated_qty < 0:
        raise VenueError(f"BitMEX ADL: liquidated_qty must be >= 0, found {liquidated_qty!r}")
    remaining = liquidated_qty
    allocation: dict[int | str, float] = {}
    for position in _ranked(positions):
        if remaining <= 0:
            break
        take = min(position.qty, remaining)
        allocation[position.account] = take
        remaining -= take
    return allocation


def adl_indicator_percentiles(positions: Sequence[AdlPosition]) -> dict[int | str, int]:
    """The UI indicator bucket (20, 40, ... 100 %) of each account.

    Cumulative quantity share down the ranked queue rounded up to 20 % buckets — an
    inference that reproduces the example table ([ADL]; vectors.json note), not a stated rule.
    Exact rational arithmetic so that 60 % stays in the 60 bucket.
    """
    ranked = _ranked(positions)
    total = sum(Fraction(p.qty) for p in ranked)
    buckets: dict[int | str, int] = {}
    cumulative = Fraction(0)
    for position in ranked:
        cumulative += Fraction(position.qty)
        buckets[position.account] = 20 * math.ceil(cumulative * 5 / total)
    return buckets


def adl_candidate_score(c: AdlCandidate) -> float:
    """:func:`adl_score` of a queued position: ``markValue``, ``entryValue`` and
    ``bankruptValue`` are its signed values at the mark, the entry and the bankruptcy price.

    ``mark - bankrupt`` is the margin balance backing the position (its isolated margin plus
    PnL, or the cross balance); a position with none left is being liquidated itself and is
    not ranked (0). Source: [ADL].
    """
    if not c.equity > 0.0 or c.entry_value == 0.0:
        return 0.0
    return adl_score(mark_value=c.mark_value, entry_value=c.entry_value,
                     bankrupt_value=c.bankrupt_value)


def adl_queue_quantiles(scores: Sequence[float], qtys: Sequence[float]) -> list[float]:
    """The UI indicator of each queued position as lights / 5, in (0, 1].

    :func:`adl_indicator_percentiles` gives the bucket (20 % for a head holding under a fifth
    of the queue's quantity ... 100 % for the tail); the indicator lights all five for the
    20 % bucket, so the quantile is ``(120 - bucket) / 100``. A lone position holds the whole
    queue: bucket 100, one light. Source: [ADL] (autoDeleveragingExamples), as
    :func:`adl_indicator_percentiles`.
    """
    buckets = adl_indicator_percentiles([AdlPosition(k, q, s) for k, (s, q)
                                         in enumerate(zip(scores, qtys))])
    return [(120 - buckets[k]) / 100 for k in range(len(scores))]


#: BitMEX's ADL rule in runs: ranked by PnL% x effective leverage of position values, the
#: quantity-weighted indicator, closed at the bankruptcy price of the liquidated order ([ADL]).
ADL_RULE = AdlRule("bitmex_pnl_x_effective_leverage", adl_candidate_score, adl_queue_quantiles,
                   BANKRUPTCY, "https://www.bitmex.com/app/autoDeleveraging")
