"""dYdX v4 perpetuals (USDC subaccounts, oracle-priced): margin, liquidation, funding; pure.

Units: sizes in base units (signed: + long, - short), prices in USDC per base unit (the oracle
price; dYdX has no separate mark price), money in USDC. The protocol computes in integer
quantums (1 quote quantum = 1e-6 USDC) and exact rationals; these functions do the same
internally with :class:`fractions.Fraction` (a float is read as its shortest decimal, so 0.1
is one tenth) and return floats. Margin fractions are fractions (0.05 = 5 %); ``*_ppm``
arguments are parts per million as the chain stores them.

Sources (dydxprotocol/v4-chain @ 84d4664bae71e3a077adaac67fb77ad19cd28d30 unless noted):

* [LT] ``protocol/x/perpetuals/types/liquidity_tier.go`` (``GetMaintenanceMarginPpm``,
  ``GetInitialMarginQuoteQuantums``: open-interest-scaled IMF, IMR rounded up) and
  ``protocol/x/perpetuals/lib/lib.go`` (``GetMarginRequirementsInQuoteQuantums``).
* [LIQ] ``protocol/x/clob/keeper/liquidations.go`` (``GetBankruptcyPriceInQuoteQuantums``
  ``-DNNV - TNC*|DMMR|/TMMR`` rounded toward +inf; ``GetFillablePrice``
  ``(PNNV - ABR*SMMR*PMMR)/PS``; ``GetLiquidationInsuranceFundDelta``) and its tests.
* [DELEV] ``protocol/x/clob/keeper/deleveraging.go`` (``OffsetSubaccountPerpetualPosition``:
  opposite-side subaccounts iterated from a pseudo-random start, at the bankruptcy price).
* [RISK] ``protocol/lib/margin/risk.go`` (liquidatable iff ``MMR > 0 and TNC < MMR``).
* [FUND] ``protocol/x/perpetuals/funding/funding.go`` (``GetFundingIndexDelta``) and
  ``protocol/lib/quantums.go`` (``BaseToQuoteQuantums``, truncation toward zero), funding
  clamp ``|rate| <= 600 % (IMF - MMF)`` in ``liquidity_tier.go`` (``GetMaxAbsFundingClampPpm``).
* [DOCS] dYdX docs "Onboarding FAQs", https://docs.dydx.exchange/introduction-onboarding_faqs
  (blocks proposed every ~1 second: the block time runs map their time steps to).
* [GEN] ``protocol/testing/genesis.sh`` (mainnet-like parameters: liquidity tiers, fillable
  price config BA 1,000,000 ppm / SMMR 1,500,000 ppm, max liquidation fee 15,000 ppm,
  per-block limits).
* Project summary: ../shared/specs/margin_rules.md §7, ../shared/specs/cascades.md §C.6.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from backtest.venues.adl_rules import BANKRUPTCY, AdlRule
from backtest.venues.base import Leg, Venue, root_liquidation_price
from backtest.venues.catalog import RuleVersion, VenueInfo
from backtest.venues.errors import VenueError

__all__ = [
    "ADL_RULE",
    "BLOCK_TIME_S",
    "BlockPlan",
    "OPEN_INTEREST_DEFAULT",
    "VENUE",
    "GENESIS_TIERS",
    "LiquidityTier",
    "Position",
    "QUOTE_QUANTUM",
    "Risk",
    "Subaccount",
    "bankruptcy_quote",
    "block_limited_plan",
    "clamp_funding_rate",
    "fillable_price",
    "funding_index_delta",
    "funding_payment",
    "initial_margin",
    "initial_margin_quantums",
    "insurance_fund_delta",
    "is_liquidatable",
    "liquidatable_notional",
    "partial_liquidation_fee",
    "risk",
]

#: One quote quantum, USDC.
QUOTE_QUANTUM = 1e-6
_PPM = 1_000_000
_QUOTE_ATOMIC_RESOLUTION = -6
_EIGHT_HOURS_S = 8 * 3600


def _exact(value: float | int | str | Fraction) -> Fraction:
    """``value`` as an exact rational; floats through their shortest decimal (0.1 -> 1/10)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise VenueError(f"dYdX v4: expected a finite number, found {value!r}")
        return Fraction(repr(value))
    return Fraction(value)


def _ppm(name: str, value: int) -> int:
    if not isinstance(value, int) or value < 0:
        raise VenueError(f"dYdX v4: {name} must be a non-negative integer (ppm), found {value!r}")
    return value


# ---- liquidity tiers and initial margin ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class LiquidityTier:
    """A liquidity tier: initial margin, maintenance fraction and open-interest caps.

    Attributes
    ----------
    initial_margin_ppm : int
        Base IMF, ppm (20,000 = 2 %).
    maintenance_fraction_ppm : int
        MMF as a share of IMF, ppm (600,000 = 60 %: MMF = 1.2 % for a 2 % IMF).
    open_interest_lower_cap, open_interest_upper_cap : int
        OI notional (quote quantums) between which the IMF is scaled up to 1; an upper cap
        of 0 disables the scaling.
    """

    initial_margin_ppm: int
    maintenance_fraction_ppm: int
    open_interest_lower_cap: int = 0
    open_interest_upper_cap: int = 0

    def __post_init__(self) -> None:
        if _ppm("initial_margin_ppm", self.initial_margin_ppm) > _PPM:
            raise VenueError(f"dYdX v4: initial_margin_ppm must be <= 1,000,000, found {self.initial_margin_ppm}")
        if _ppm("maintenance_fraction_ppm", self.maintenance_fraction_ppm) > _PPM:
            raise VenueError("dYdX v4: maintenance_fraction_ppm must be <= 1,000,000, "
                             f"found {self.maintenance_fraction_ppm}")
        if self.open_interest_lower_cap > self.open_interest_upper_cap:
            raise VenueError(f"dYdX v4: open_interest_lower_cap {self.open_interest_lower_cap} "
                             f"exceeds open_interest_upper_cap {self.open_interest_upper_cap}")

    @property
    def imf(self) -> float:
        """Base initial-margin fraction."""
        return self.initial_margin_ppm / _PPM

    @property
    def maintenance_margin_ppm(self) -> int:
        """``IMF*maintenance fraction`` in ppm, rounded down as the chain does ([LT])."""
        return self.initial_margin_ppm * self.maintenance_fraction_ppm // _PPM

    @property
    def mmf(self) -> float:
        """Maintenance-margin fraction ``IMF*maintenance_fraction``."""
        return self.maintenance_margin_ppm / _PPM


#: Liquidity tiers of the genesis script ([GEN]; mainnet values are governed on chain and may
#: differ, margin_rules.md §14 q.7). No open-interest caps are set for these here.
GENESIS_TIERS: MappingProxyType[str, LiquidityTier] = MappingProxyType({
    "large_cap": LiquidityTier(20_000, 600_000),
    "mid_cap": LiquidityTier(100_000, 500_000),
    "long_tail": LiquidityTier(200_000, 500_000),
})


def initial_margin_quantums(*, quote_quantums: int, tier: LiquidityTier,
                            open_interest_quantums: int) -> int:
    """Initial margin of a position with the open-interest-scaled IMF, quote quantums.

    ``IMF_eff = IMF + (1 - IMF)*clip((OI - lower)/(upper - lower), 0, 1)``; the requirement
    is ``ceil(IMF_eff*quote_quantums)`` and never above ``quote_quantums``. Exact port of
    ``GetInitialMarginQuoteQuantums`` ([LT]).

    Parameters
    ----------
    quote_quantums : int
        Absolute position notional at the oracle price, quote quantums (1e-6 USDC).
    open_interest_quantums : int
        The market's open interest notional, quote quantums.
    """
    upper, lower = tier.open_interest_upper_cap, tier.open_interest_lower_cap
    if upper != 0 and open_interest_quantums >= upper:
        return quote_quantums
    base = Fraction(tier.initial_margin_ppm, _PPM)
    if upper == 0 or open_interest_quantums <= lower:
        return math.ceil(base * quote_quantums)
    scaling = Fraction(open_interest_quantums - lower, upper - lower)
    effective = base + scaling * (1 - base)
    return min(math.ceil(effective * quote_quantums), quote_quantums)


# ---- subaccounts and risk -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Position:
    """A perpetual position of a subaccount.

    Attributes
    ----------
    size : float
        Signed size, base units (+ long, - short).
    oracle_price : float
        Oracle price, USDC.
    mmf : float
        Maintenance-margin fraction of the market's liquidity tier (``LiquidityTier.mmf``).
    """

    size: float
    oracle_price: float
    mmf: float

    def net_notional(self, size: Fraction | None = None) -> Fraction:
        """Signed notional ``size*oracle`` (PNNV), USDC, exact."""
        return (_exact(self.size) if size is None else size) * _exact(self.oracle_price)

    def maintenance(self, size: Fraction | None = None) -> Fraction:
        """Maintenance requirement ``|size|*oracle*MMF`` (PMMR), USDC, exact."""
        return abs(self.net_notional(size)) * _exact(self.mmf)


@dataclass(frozen=True, slots=True)
class Subaccount:
    """USDC balance and perpetual positions of one subaccount.

    ``isolated=True`` is a subaccount holding an isolated-market position: it may hold only
    that one position, and its risk is computed on its own ([RISK]; isolated markets live in
    their own subaccount). A cross subaccount nets every position it holds.
    """

    usdc: float
    positions: tuple[Position, ...]
    isolated: bool = False

    def __post_init__(self) -> None:
        if self.isolated and len(self.positions) > 1:
            raise VenueError(f"dYdX v4: an isolated subaccount holds one position, found "
                             f"{len(self.positions)}; put each isolated market in its own subaccount")


@dataclass(frozen=True, slots=True)
class Risk:
    """Total net collateral and maintenance requirement of a subaccount, USDC."""

    tnc: float
    mmr: float


def _totals(account: Subaccount) -> tuple[Fraction, Fraction]:
    tnc = _exact(account.usdc) + sum((p.net_notional() for p in account.positions), Fraction(0))
    mmr = sum((p.maintenance() for p in account.positions), Fraction(0))
    return tnc, mmr


def risk(account: Subaccount) -> Risk:
    """``TNC = USDC + sum(size*oracle)``, ``MMR = sum(|size|*oracle*MMF)``, USDC. [RISK]."""
    tnc, mmr = _totals(account)
    return Risk(float(tnc), float(mmr))


def is_liquidatable(account: Subaccount) -> bool:
    """Liquidatable iff ``MMR > 0 and TNC < MMR`` ([RISK])."""
    tnc, mmr = _totals(account)
    return mmr > 0 and tnc < mmr


def _target(account: Subaccount, target: int) -> Position:
    if not 0 <= target < len(account.positions):
        raise VenueError(f"dYdX v4: position index {target} is out of range; the subaccount "
                         f"holds {len(account.positions)} position(s)")
    return account.positions[target]


def bankruptcy_quote(account: Subaccount, *, target: int, delta_size: float,
                     quantum: float = QUOTE_QUANTUM) -> float:
    """Quote amount at which closing ``delta_size`` of a position leaves TNC's share at zero, USDC.

    ``-DNNV - TNC*|DMMR|/TMMR`` where DNNV/DMMR are the changes of the position's net notional
    and maintenance requirement; the division is floored to the quantum so the result rounds
    toward +inf (closing at it never needs the insurance fund). Positive: the seller of a long
    must receive at least this; negative: the buyer-back of a short may pay at most its
    magnitude. Source: [LIQ] ``GetBankruptcyPriceInQuoteQuantums``.
    """
    position = _target(account, target)
    size, delta = _exact(position.size), _exact(delta_size)
    if size * delta >= 0 or abs(delta) > abs(size):
        raise VenueError(f"dYdX v4: delta_size {delta_size} must reduce the position of size "
                         f"{position.size} (opposite sign, at most its size)")
    tnc, tmmr = _totals(account)
    dnnv = position.net_notional(size + delta) - position.net_notional(size)
    dmmr = position.maintenance(size + delta) - position.maintenance(size)
    q = _exact(quantum)
    share = math.floor(tnc * abs(dmmr) / tmmr / q) * q if tmmr else Fraction(0)
    return float(-dnnv - share)


def fillable_price(account: Subaccount, *, target: int,
                   bankruptcy_adjustment_ppm: int = 1_000_000,
                   spread_to_mmr_ppm: int = 1_500_000) -> float:
    """Worst price of the protocol's liquidation order, USDC per base unit.

    ``(PNNV - ABR*SMMR*PMMR)/PS`` with ``ABR = clamp(BA*(1 - TNC/TMMR), 0, 1)``. Defaults are
    the genesis script's BA 100 % and SMMR 150 % ([GEN]; the unit tests use SMMR 10 %).
    Source: [LIQ] ``GetFillablePrice``.
    """
    position = _target(account, target)
    if _exact(position.size) == 0:
        raise VenueError("dYdX v4: the target position has size 0; nothing to liquidate")
    tnc, tmmr = _totals(account)
    if tmmr == 0:
        raise VenueError("dYdX v4: the subaccount's maintenance requirement is 0, so it is not "
                         "liquidatable and has no fillable price; check the positions' mmf")
    ba = Fraction(_ppm("bankruptcy_adjustment_ppm", bankruptcy_adjustment_ppm), _PPM)
    smmr = Fraction(_ppm("spread_to_mmr_ppm", spread_to_mmr_ppm), _PPM)
    abr = min(max(ba * (1 - tnc / tmmr), Fraction(0)), Fraction(1))
    price = (position.net_notional() - abr * smmr * position.maintenance()) / _exact(position.size)
    return float(price)


def insurance_fund_delta(*, quote_received: float, bankruptcy: float, fill_notional: float,
                         max_liquidation_fee_ppm: int = 15_000) -> float:
    """Payment between the liquidated subaccount and the insurance fund, USDC.

    ``delta = quote_received - bankruptcy``; negative: the fund covers it; positive: the
    subaccount pays ``min(max fee x |fill notional|, delta)`` (1.5 % in [GEN]).
    Source: [LIQ] ``GetLiquidationInsuranceFundDelta``.
    """
    delta = _exact(quote_received) - _exact(bankruptcy)
    if delta <= 0:
        return float(delta)
    fee = abs(_exact(fill_notional)) * Fraction(_ppm("max_liquidation_fee_ppm", max_liquidation_fee_ppm), _PPM)
    return float(min(fee, delta))


def liquidatable_notional(*, position_notional: float, subaccount_liquidated: float = 0.0,
                          min_position_notional: float = 1_000.0,
                          max_position_portion: float = 0.1,
                          subaccount_block_limit: float = 100_000.0) -> float:
    """Largest notional of a position one block may liquidate, USDC.

    ``min(max(min notional, portion x |notional|), block limit - already liquidated)``, and the
    whole position when that covers it. Defaults are the genesis script's per-block limits
    ([GEN]; margin_rules.md §7); the step-size rounding of the chain is left to the caller.
    """
    notional = abs(position_notional)
    per_position = max(min_position_notional, max_position_portion * notional)
    limit = min(per_position, max(0.0, subaccount_block_limit - subaccount_liquidated))
    return notional if notional <= limit else limit


#: Per-block liquidation limits of the genesis script ([GEN]; margin_rules.md §7), USDC.
MIN_POSITION_NOTIONAL_LIQUIDATED = 1_000.0
MAX_POSITION_PORTION_LIQUIDATED = 0.1
MAX_NOTIONAL_LIQUIDATED_PER_BLOCK = 100_000.0
MAX_INSURANCE_LOST_PER_BLOCK = 1_000_000.0
#: The block time a run maps its time steps to, seconds ([DOCS] "validators ... take turns
#: proposing blocks of trades every ~1 second"; governance later shortened the block delay).
BLOCK_TIME_S = 1.0
_SMMR = 1.5  # spread to maintenance margin ratio of the fillable price ([GEN] 1,500,000 ppm)


@dataclass(frozen=True)
class BlockPlan:
    """dYdX's liquidation of one position over the blocks of a time step (read by
    ``Venue.liquidation_procedure``): ``steps`` one liquidation order per block (base units);
    ``deferred``: size is left, for the blocks of the next trigger, never taken over at once."""

    steps: tuple[float, ...]
    remainder: float
    takeover: bool = False
    kind: str = "partial"
    deferred: bool = False


def block_limited_plan(*, qty: float, mark_price: float, margin_balance: float, tiers: Any,
                       clearance_rate: float, other_maintenance: float = 0.0,
                       lot_size: float = 0.0, blocks: int = 1, **_: Any) -> BlockPlan:
    """The protocol's liquidation orders for a breached position over ``blocks`` blocks.

    Each block while the pool is liquidatable (``TNC < MMR``, [RISK]; ``<=`` here, the run's
    trigger, so that the trigger's own block acts) liquidates
    :func:`liquidatable_notional` of what is left (>= 1,000 USDC, <= 10 % of the position,
    <= 100,000 USDC per subaccount; the whole position once that covers it), and no more than
    keeps the insurance fund's loss in the block <= 1,000,000 USDC ([GEN]). The pool is
    followed at the trigger mark: a block's order fills at the fillable price (``(PNNV -
    ABR*SMMR*PMMR)/PS``, [LIQ]) but the subaccount never receives less than the bankruptcy
    price (the insurance fund pays the rest); the fee is ``min(rate x notional, what is left
    above bankruptcy)``. It stops once the pool is no longer liquidatable. Sizes are rounded
    down to ``lot_size``. Source: [LIQ] (``GetLiquidatablePositionSizeDelta`` and the block
    limits), margin_rules.md §7.
    """
    steps: list[float] = []
    left = qty
    tnc = margin_balance
    for _block in range(max(0, blocks)):
        notional = left * mark_price
        own = tiers.maintenance_margin(notional)
        tmmr = own + other_maintenance
        if left <= 0.0 or tnc > tmmr:  # healthy again (the run triggers at TNC <= MMR)
            break
        per_unit = own / left  # this position's maintenance per unit (PMMR / PS)
        abr = min(max(1.0 - tnc / tmmr, 0.0), 1.0)
        discount = abr * _SMMR * per_unit  # fill below (long) / above (short) the oracle
        bankrupt_gap = tnc * per_unit / tmmr  # oracle minus bankruptcy price per unit (long)
        if_per_unit = bankrupt_gap - discount  # the fund's result per unit (+ = the trader's)
        size = liquidatable_notional(position_notional=notional) / mark_price
        if if_per_unit < 0.0:
            size = min(size, MAX_INSURANCE_LOST_PER_BLOCK / -if_per_unit)
        if lot_size > 0.0 and size < left:
            size = math.floor(size / lot_size + 1e-9) * lot_size
        size = min(size, left)
        if not size > 0.0:
            break
        fee = min(clearance_rate * mark_price, max(if_per_unit, 0.0))
        tnc -= size * (min(discount, bankrupt_gap) + fee)
        left -= size
        steps.append(size)
    liquidatable = left > 0.0 and not tnc > (tiers.maintenance_margin(left * mark_price)
                                             + other_maintenance)
    return BlockPlan(tuple(steps), left, False, "partial", liquidatable)


def partial_liquidation_fee(*, fee_due: float, piece_above_bankruptcy: float,
                            pool_left: float) -> float:
    """Fee of one block's liquidation, USDC: ``min(max fee x notional, quote - bankruptcy
    quote)`` of the closed piece, none when it fills beyond bankruptcy (the fund pays then).
    Source: [LIQ] ``GetLiquidationInsuranceFundDelta`` (:func:`insurance_fund_delta`)."""
    return min(fee_due, max(piece_above_bankruptcy, 0.0))


#: Open interest a run scales the initial margin with ([LT] ``GetInitialMarginQuoteQuantums``):
#: no store holds dYdX's open interest, so a run passes none and the scaling is off (the
#: genesis tiers set no open-interest caps either): IMF = the tier's base IMF. Stated in the
#: run manifest (``rule_versions["open_interest_scaling"]``).
OPEN_INTEREST_DEFAULT: float | None = None


def initial_margin(notional: float, leverage: float, *, tier: LiquidityTier | None = None,
                   open_interest: float | None = OPEN_INTEREST_DEFAULT) -> float:
    """The run's initial margin, USDC: ``max(|N| / leverage, IMF_eff x |N|)``.

    ``IMF_eff`` is :func:`initial_margin_quantums`'s open-interest-scaled fraction when an
    open interest (USDC notional) and a tier with caps are given; otherwise the leverage
    alone (the table's max leverage, 1 / IMF, already bounds it). Source: [LT].
    """
    base = abs(notional) / leverage
    if tier is None or open_interest is None:
        return base
    quantums = round(abs(notional) / QUOTE_QUANTUM)
    scaled = initial_margin_quantums(quote_quantums=quantums, tier=tier,
                                     open_interest_quantums=round(open_interest / QUOTE_QUANTUM))
    return max(base, scaled * QUOTE_QUANTUM)


# ---- funding --------------------------------------------------------------------------------

def clamp_funding_rate(rate_8h: float, *, tier: LiquidityTier, clamp_factor: float = 6.0) -> float:
    """Clamp an 8-hour rate to ``±clamp_factor*(IMF - MMF)`` (600 %), fraction. Source: [FUND]."""
    cap = clamp_factor * (tier.initial_margin_ppm - tier.maintenance_margin_ppm) / _PPM
    return min(max(rate_8h, -cap), cap)


def funding_index_delta(*, rate_ppm_8h: int, seconds: int, price_value: int,
                        price_exponent: int, atomic_resolution: int) -> int:
    """Change of the funding index, ppm of quote quantums per base quantum.

    ``trunc(trunc(seconds*rate_ppm*price*10^(exp + atomic_res + 6)) / 28800)``: the 8-hour
    rate pro-rated by the elapsed seconds, both divisions truncated toward zero. Exact port of
    ``GetFundingIndexDelta`` ([FUND]).
    """
    value = Fraction(seconds * rate_ppm_8h * price_value) * Fraction(10) ** (
        price_exponent + atomic_resolution - _QUOTE_ATOMIC_RESOLUTION)
    scaled = int(value)  # int() truncates toward zero like big.Int.Quo
    return int(Fraction(scaled, _EIGHT_HOURS_S))


def funding_payment(*, signed_size: float, oracle_price: float, rate_8h: float,
                    seconds: float) -> float:
    """Funding of a position over ``seconds``, USDC, + = received (positive rate: longs pay).

    ``-size*oracle*rate_8h*seconds/28800`` (the index delta in USDC units). Source: [FUND].
    """
    return -signed_size * oracle_price * rate_8h * seconds / _EIGHT_HOURS_S


# ---- the venue behind the engine's protocol (``--venue dydx_v4``) ---------------------------

def maintenance_margin_of_tier(notional: float, tier: Any) -> float:
    """PMMR ``|size x oracle| x MMF``, USDC: the tier's rate is the market's MMF ([RISK])."""
    return abs(notional) * tier.mmr


def _legs(both: Leg | None, long: Leg | None, short: Leg | None) -> list[Leg]:
    legs = [leg for leg in (both, long, short) if leg is not None]
    if len(legs) != 1:
        raise VenueError(f"dYdX v4: a subaccount holds one position per market, found "
                         f"{len(legs)} legs; run with position_mode='one_way'")
    return legs


def pool_liquidation_price(*, wallet_balance: float, both: Leg | None = None,
                           long: Leg | None = None, short: Leg | None = None,
                           other_maintenance: float = 0.0, other_unrealized: float = 0.0,
                           tiers: Any = None) -> float:
    """The oracle price where ``TNC = MMR`` ([RISK]), USDC: dYdX publishes no closed form, so
    :func:`backtest.venues.base.root_liquidation_price` finds it.

    ``TNC - MMR = wallet + other PnL - other MMR + s*q*(P - EP) - q*P*MMF`` (the subaccount's
    USDC plus its positions' notional, :func:`risk`, in floats for the root-find).
    """
    (leg,) = _legs(both, long, short)
    mmf = leg.mmr if tiers is None else tiers.tiers[0].mmr
    base = wallet_balance + other_unrealized - other_maintenance
    s, q, entry = leg.side, leg.qty, leg.entry_price

    def gap(price: float) -> float:
        return base + s * q * (price - entry) - q * price * mmf

    return root_liquidation_price(gap, side=s, entry_price=entry)


def _bankruptcy(*, wallet_balance: float, side: int, qty: float, entry_price: float,
                other_unrealized: float = 0.0) -> float:
    """Per-unit price of a full close that leaves TNC at zero, USDC: ``EP - s*TNC/q``.

    :func:`bankruptcy_quote` of a full close (``|DMMR| = TMMR``, so the share is TNC) divided
    by the size, in floats for the engine's refresh (the exact port rounds the quote to the
    1e-6 USDC quantum; a test checks the two agree to it).
    """
    return entry_price - side * (wallet_balance + other_unrealized) / qty


def _funding(*, signed_qty: float, mark_price: float, rate: float) -> float:
    """:func:`funding_payment` of one settlement: the run's rate is that settlement's fraction."""
    return funding_payment(signed_size=signed_qty, oracle_price=mark_price, rate_8h=rate,
                           seconds=_EIGHT_HOURS_S)


def liquidation_fill_price(*, side: int, mark_price: float, mmr: float, margin_ratio: float,
                           market_price: float,
                           bankruptcy_adjustment_ppm: int = 1_000_000,
                           spread_to_mmr_ppm: int = 1_500_000) -> float:
    """The protocol's liquidation fill: :func:`fillable_price` of the breached pool, USDC.

    A one-unit subaccount with the pool's ``TNC/TMMR`` (``1/margin_ratio``; 0 when the margin
    balance is gone) and the position's oracle price and MMF gives the pool's fillable price
    (``(PNNV - ABR*SMMR*PMMR)/PS`` is per unit). The order is assumed filled at that price
    (the market price is not used: the protocol's order is a limit at the fillable price).
    Genesis parameters by default ([GEN]).
    """
    if not mmr > 0:
        return market_price  # no maintenance: not liquidatable, nothing protocol-specific
    tmmr = mark_price * mmr
    ratio = 0.0 if not (margin_ratio > 0 and math.isfinite(margin_ratio)) else 1.0 / margin_ratio
    account = Subaccount(usdc=tmmr * ratio - side * mark_price,
                         positions=(Position(float(side), mark_price, mmr),))
    return fillable_price(account, target=0, bankruptcy_adjustment_ppm=bankruptcy_adjustment_ppm,
                          spread_to_mmr_ppm=spread_to_mmr_ppm)


#: dYdX v4's deleveraging in runs: NO ranking. The liquidated position is offset against
#: subaccounts holding the opposite side, iterating from a pseudo-random starting subaccount
#: (the run draws it from its seed), at the bankruptcy price ([DELEV]; margin_rules.md §7).
ADL_RULE = AdlRule("dydx_v4_offset_from_random_start", None, None, BANKRUPTCY,
                   "dydxprotocol/v4-chain@84d4664b protocol/x/clob/keeper/deleveraging.go")


def _venue() -> Venue:
    return Venue(
        name="dydx_v4", exchange="dydx", contract_type="linear",
        maintenance_margin=maintenance_margin_of_tier,
        liquidation_price=pool_liquidation_price,
        liquidation_price_resolved=pool_liquidation_price,
        bankruptcy_price=_bankruptcy, funding_payment=_funding,
        unrealized_pnl=lambda *, signed_qty, entry_price, mark_price:
            signed_qty * (mark_price - entry_price),
        liquidation_fill_price=liquidation_fill_price,
        initial_margin=initial_margin,  # open-interest scaling off (OPEN_INTEREST_DEFAULT)
        tier_down_plan=block_limited_plan,  # liquidation_mode="tier_down": per-block limits
        liquidation_block_s=BLOCK_TIME_S, partial_liquidation_fee=partial_liquidation_fee,
        adl_rule=ADL_RULE,
        position_modes=("one_way",),  # one position per symbol: no hedge mode
        label="dYdX",
        rule_versions=MappingProxyType({
            "risk": "dydxprotocol/v4-chain@84d4664b protocol/lib/margin/risk.go",
            "liquidation": "dydxprotocol/v4-chain@84d4664b protocol/x/clob/keeper/liquidations.go",
            "funding": "dydxprotocol/v4-chain@84d4664b protocol/x/perpetuals/funding/funding.go",
            "tiers": "genesis large_cap tier (backtest/venues/data/dydx_v4.toml)",
            "adl_ranking": "dydxprotocol/v4-chain@84d4664b protocol/x/clob/keeper/deleveraging.go "
                           "(no ranking: offset from a pseudo-random start, seeded by the run)",
            "block_limits": "liquidation_mode=tier_down: >= 1,000 USDC per liquidation, <= 10 % of "
                            "a position, <= 100,000 USDC and <= 1,000,000 USDC insurance loss "
                            "per subaccount per block ([GEN]); block time 1 s "
                            "(https://docs.dydx.exchange/introduction-onboarding_faqs)",
            "open_interest_scaling": "OFF: no open-interest data in the store (default "
                                     "OPEN_INTEREST_DEFAULT = None; genesis tiers set no caps)",
        }))


#: The registered venue ``dydx_v4`` (see :func:`backtest.venues.base.get_venue`).
VENUE: Venue = _venue()

#: Coverage for ``margincall venues``: cross and isolated subaccounts (:class:`Subaccount`);
#: the genesis liquidity tiers carry no date (mainnet values are governed on chain).
VENUE_INFO = VenueInfo(
    name="dydx_v4", title="dYdX v4 perpetuals (USDC subaccounts)",
    modes=(("linear", "isolated"), ("linear", "cross")),
    rule_versions=(RuleVersion(f"GENESIS_TIERS liquidity tiers ({', '.join(GENESIS_TIERS)})", None,
                               "[GEN]", date_known=False),))
