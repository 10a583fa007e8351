"""MakerDAO / Sky Liquidations 2.0 math: vault safety, ``Dog.bark``, Clipper auctions.

Every function is pure. Units: ``ink`` collateral in whole gems (ETH), ``art`` normalised
debt (DAI before the stability fee), ``rate`` the accumulated fee multiplier (>= 1 in
practice), so a vault owes ``art * rate`` DAI. Prices in DAI per gem. The contracts work in
WAD (1e18), RAY (1e27) and RAD (1e45) fixed point; here those scalings are plain floats (the
Solidity rounding is below float precision for the sizes a simulation uses).

Sources:

* [DSS] makerdao/dss @ fa4f6630afb0624d04a003e920b0d71a00331d98: ``src/vat.sol`` (safety,
  ``spot``), ``src/spot.sol`` (``spot = price / par / mat``), ``src/dog.sol`` (``bark``,
  ``hole``/``Hole``, ``dirt``/``Dirt``, ``chop``), ``src/clip.sol`` (``kick``, ``redo``,
  ``take``, ``status``, ``upchost``), ``src/abaci.sol`` (price curves); tests
  ``src/test/clip.t.sol`` and ``src/test/abaci.t.sol``.
* Project summary: ../shared/specs/margin_rules.md §10.

The old Flipper (Liquidations 1.0, the auctions of 2020-03-12) is
:mod:`backtest.lending.maker_flipper`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from backtest.lending.checks import at_least, fraction, non_negative, positive

__all__ = [
    "Bark",
    "ExponentialDecrease",
    "LinearDecrease",
    "StairstepExponentialDecrease",
    "Take",
    "auction_shortfall",
    "bark",
    "chost",
    "collateralization_ratio",
    "is_unsafe",
    "keeper_incentive",
    "liquidation_room",
    "needs_redo",
    "redo_incentive",
    "spot",
    "take",
    "top",
]


def _vault(ink: float, art: float, rate: float) -> tuple[float, float, float]:
    return (non_negative("vault ink", ink), non_negative("vault art", art),
            positive("ilk rate", rate))


def spot(price: float, mat: float, par: float = 1.0) -> float:
    """Collateral price with the safety margin: ``price / par / mat`` (DAI per gem).

    ``mat`` is the liquidation ratio (1.5 = 150 %), ``par`` the DAI reference price (1).
    Source: [DSS] ``spot.sol`` ``poke``.
    """
    return (positive("oracle price", price) / positive("par", par)
            / at_least("mat", mat, 1e-12, "the liquidation ratio, 1.5 = 150 %"))


def is_unsafe(*, ink: float, art: float, rate: float, price: float, mat: float,
              par: float = 1.0) -> bool:
    """True when ``ink * spot < art * rate`` (strict), i.e. the vault may be barked.

    Source: [DSS] ``dog.sol`` ``bark`` (``Dog/not-unsafe``) and ``vat.sol`` ``frob`` safety;
    vector ``maker-unsafe-check`` (40 gems at 4 DAI, mat 2 -> 80 < 100).
    """
    ink, art, rate = _vault(ink, art, rate)
    return ink * spot(price, mat, par) < art * rate


def collateralization_ratio(*, ink: float, art: float, rate: float, price: float) -> float:
    """Collateral value over debt, ``ink * price / (art * rate)`` (``inf`` without debt).

    The vault is unsafe when this falls below ``mat`` (with ``par`` = 1).
    """
    ink, art, rate = _vault(ink, art, rate)
    debt = art * rate
    return math.inf if debt == 0 else ink * positive("oracle price", price) / debt


def liquidation_room(*, global_limit: float, global_dirt: float, ilk_limit: float,
                     ilk_dirt: float) -> float:
    """DAI that may still be put up for auction: ``min(Hole - Dirt, hole - dirt)`` (may be
    <= 0, then ``bark`` is refused). Source: [DSS] ``dog.sol`` ``bark``."""
    return min(non_negative("Hole", global_limit, allow_inf=True) - non_negative("Dirt", global_dirt),
               non_negative("hole", ilk_limit, allow_inf=True) - non_negative("dirt", ilk_dirt))


def keeper_incentive(tab: float, *, tip: float, chip: float) -> float:
    """DAI minted to the keeper who kicks an auction: ``tip + chip * tab``.
    Source: [DSS] ``clip.sol`` ``kick``; vector ``maker-keeper-incentive``."""
    return non_negative("tip", tip) + fraction("chip", chip) * non_negative("tab", tab)


def chost(dust: float, chop: float) -> float:
    """Smallest tab a partial ``take`` may leave: ``dust * chop``. Source: [DSS] ``upchost``."""
    return non_negative("dust", dust) * at_least("chop", chop, 1.0, "the penalty multiplier")


@dataclass(frozen=True, slots=True)
class Bark:
    """Outcome of ``Dog.bark`` on one vault.

    ``status`` is ``"barked"`` or why the Dog refused: ``"limit_hit"`` (no room under
    hole/Hole), ``"dusty_auction"`` (a partial liquidation whose auction would be below dust),
    ``"null_auction"`` (no collateral to sell). ``dart``/``dink`` leave the vault; ``due`` =
    ``dart * rate`` DAI of debt moves to the Vow as sin; ``tab`` = ``due * chop`` is the DAI
    the auction must raise (add it to Dirt and dirt); ``lot`` = ``dink`` gems go to auction;
    ``incentive`` is the keeper's ``tip + chip * tab``.
    """

    status: str
    dart: float
    dink: float
    due: float
    tab: float
    incentive: float
    ink_left: float
    art_left: float

    @property
    def lot(self) -> float:
        """Collateral put up for auction, gems."""
        return self.dink


def bark(*, ink: float, art: float, rate: float, chop: float, room: float = math.inf,
         dust: float = 0.0, tip: float = 0.0, chip: float = 0.0) -> Bark:
    """Liquidate an unsafe vault: how much debt and collateral go to a Clipper auction.

    ``dart = min(art, room / rate / chop)``; if the vault left behind would owe less than
    ``dust`` the whole vault is taken, otherwise the auction itself must owe at least
    ``dust``; ``dink = ink * dart / art``; ``tab = dart * rate * chop``. Call
    :func:`is_unsafe` first: like the contract's caller, this function assumes the vault is
    unsafe.

    Parameters
    ----------
    room : float
        DAI of room left under the limits, :func:`liquidation_room` (``inf`` = no limit).
    dust : float
        Minimum vault debt, DAI.
    tip, chip : float
        Keeper incentive: flat DAI and share of the tab.

    Source: [DSS] ``dog.sol`` ``bark`` and ``clip.sol`` ``kick``; vectors ``maker-bark-tab``,
    ``maker-partial-bark-*``, ``maker-keeper-incentive``.
    """
    ink, art, rate = _vault(ink, art, rate)
    penalty = at_least("chop", chop, 1.0, "the penalty multiplier, 1.13 = 13 %")
    dust = non_negative("dust", dust)
    keeper_incentive(0.0, tip=tip, chip=chip)  # validate tip/chip before any early return
    if math.isnan(room) or room <= 0:
        return Bark("limit_hit", 0.0, 0.0, 0.0, 0.0, 0.0, ink, art)
    dart = min(art, room / rate / penalty)
    if art > dart:
        if (art - dart) * rate < dust:
            dart = art  # the remnant would be dusty: liquidate the whole vault
        elif dart * rate < dust:
            return Bark("dusty_auction", 0.0, 0.0, 0.0, 0.0, 0.0, ink, art)
    # a whole-vault liquidation takes exactly ink (ink * art / art can round above ink)
    dink = ink if dart == art else ink * dart / art
    if dink <= 0:
        return Bark("null_auction", 0.0, 0.0, 0.0, 0.0, 0.0, ink, art)
    due = dart * rate
    tab = due * penalty
    return Bark("barked", dart, dink, due, tab, keeper_incentive(tab, tip=tip, chip=chip),
                ink - dink, art - dart)


def top(feed_price: float, buf: float) -> float:
    """Auction start price ``feedPrice * buf`` (the feed price, not ``spot``).
    Source: [DSS] ``clip.sol`` ``kick``/``redo``; vector ``maker-bark-top``."""
    return positive("feed price", feed_price) * at_least("buf", buf, 0.0, "a multiplier")


def _elapsed(elapsed: float) -> float:
    return non_negative("elapsed seconds", elapsed)


@dataclass(frozen=True, slots=True)
class LinearDecrease:
    """``price = top * (tau - t) / tau``, 0 from ``t >= tau``. ``tau`` in seconds.
    Source: [DSS] ``abaci.sol`` ``LinearDecrease``; vector ``maker-linear-decrease-10pct``."""

    tau: float

    def __post_init__(self) -> None:
        positive("LinearDecrease.tau", self.tau)

    def price(self, top: float, elapsed: float) -> float:
        """Auction price after ``elapsed`` seconds, DAI per gem."""
        t = _elapsed(elapsed)
        # the factor first, as the contract does (rmul(top, (tau - dur) * RAY / tau)): <= 1
        return 0.0 if t >= self.tau else non_negative("top", top) * ((self.tau - t) / self.tau)


@dataclass(frozen=True, slots=True)
class StairstepExponentialDecrease:
    """``price = top * cut ** floor(t / step)``: a drop by ``1 - cut`` every ``step`` seconds.
    Source: [DSS] ``abaci.sol`` ``StairstepExponentialDecrease``; vector ``maker-stairstep-30s``."""

    cut: float
    step: float

    def __post_init__(self) -> None:
        fraction("StairstepExponentialDecrease.cut", self.cut)
        positive("StairstepExponentialDecrease.step", self.step)

    def price(self, top: float, elapsed: float) -> float:
        """Auction price after ``elapsed`` seconds, DAI per gem."""
        return non_negative("top", top) * self.cut ** math.floor(_elapsed(elapsed) / self.step)


@dataclass(frozen=True, slots=True)
class ExponentialDecrease:
    """``price = top * cut ** t`` (per-second decay).
    Source: [DSS] ``abaci.sol`` ``ExponentialDecrease``; vector ``maker-exponential-halflife``."""

    cut: float

    def __post_init__(self) -> None:
        fraction("ExponentialDecrease.cut", self.cut)

    def price(self, top: float, elapsed: float) -> float:
        """Auction price after ``elapsed`` seconds, DAI per gem."""
        return non_negative("top", top) * self.cut ** _elapsed(elapsed)


def needs_redo(*, elapsed: float, price: float, top: float, tail: float, cusp: float) -> bool:
    """True when the auction must be reset: older than ``tail`` seconds or ``price / top``
    below ``cusp``. Source: [DSS] ``clip.sol`` ``status``."""
    return _elapsed(elapsed) > non_negative("tail", tail, allow_inf=True) or (
        non_negative("price", price) / positive("top", top) < fraction("cusp", cusp))


def redo_incentive(*, tab: float, lot: float, feed_price: float, tip: float, chip: float,
                   chost: float) -> float:
    """Keeper incentive for ``redo``: ``tip + chip * tab`` only when both the tab and the lot's
    value at the feed price are at least ``chost``, else 0. Source: [DSS] ``clip.sol`` ``redo``."""
    incentive = keeper_incentive(tab, tip=tip, chip=chip)
    lot_value = non_negative("lot", lot) * positive("feed price", feed_price)
    return incentive if tab >= chost and lot_value >= chost else 0.0


@dataclass(frozen=True, slots=True)
class Take:
    """Outcome of ``Clipper.take``.

    ``status`` is ``"taken"`` or why it was refused: ``"too_expensive"`` (price above the
    buyer's ``max``), ``"no_partial_purchase"`` (``tab <= chost``: only the whole lot may be
    bought). ``slice`` gems bought for ``owe`` DAI. After the take the auction has ``tab_left``
    and ``lot_left``; when the tab is paid the remaining lot returns to the vault owner
    (``returned_to_owner``); when the lot is exhausted first, ``tab_unpaid`` DAI of the target
    is never raised (``done`` in both cases).
    """

    status: str
    slice: float
    owe: float
    tab_left: float
    lot_left: float
    returned_to_owner: float
    tab_unpaid: float
    done: bool


def take(*, lot: float, tab: float, price: float, amt: float, max_price: float = math.inf,
         chost: float = 0.0) -> Take:
    """Buy up to ``amt`` gems of a Clipper auction at its current ``price``.

    ``slice = min(lot, amt)``, ``owe = slice * price``; if ``owe > tab`` only ``tab / price``
    is sold; a partial purchase that would leave ``0 < tab < chost`` is cut so that exactly
    ``chost`` remains (refused when ``tab <= chost`` already).

    Parameters
    ----------
    lot, tab : float
        The auction's collateral (gems) and DAI target.
    price : float
        Current auction price from the price curve, DAI per gem.
    amt : float
        Most gems the buyer wants.
    max_price : float
        Highest price the buyer accepts.
    chost : float
        ``dust * chop`` (:func:`chost`).

    Source: [DSS] ``clip.sol`` ``take``; vectors ``maker-take-*``.
    """
    lot, tab = non_negative("lot", lot), non_negative("tab", tab)
    price, amt = positive("price", price), non_negative("amt", amt, allow_inf=True)
    floor = non_negative("chost", chost)
    if non_negative("max_price", max_price, allow_inf=True) < price:
        return Take("too_expensive", 0.0, 0.0, tab, lot, 0.0, 0.0, False)
    piece = min(lot, amt)
    owe = piece * price
    if owe > tab:
        owe = tab
        piece = owe / price
    elif owe < tab and piece < lot and tab - owe < floor:
        if tab <= floor:
            return Take("no_partial_purchase", 0.0, 0.0, tab, lot, 0.0, 0.0, False)
        owe = tab - floor
        piece = owe / price
    tab_left, lot_left = tab - owe, max(0.0, lot - piece)
    if lot_left == 0:
        return Take("taken", piece, owe, 0.0, 0.0, 0.0, tab_left, True)
    if tab_left <= 0:
        return Take("taken", piece, owe, 0.0, 0.0, lot_left, 0.0, True)
    return Take("taken", piece, owe, tab_left, lot_left, 0.0, 0.0, False)


def auction_shortfall(*, due: float, raised: float) -> float:
    """Bad debt an auction leaves in the Vow: the sin ``due`` (debt without the penalty) not
    covered by the DAI ``raised``; the penalty part of the tab is surplus, never a deficit.
    Source: [DSS] ``dog.sol`` ``bark`` (``vow.fess(due)``) and ``clip.sol`` ``take``
    (``vat.move(msg.sender, vow, owe)``)."""
    return max(0.0, non_negative("due", due) - non_negative("raised", raised))

