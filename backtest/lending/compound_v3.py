"""Compound v3 (Comet) lending math: collateral checks, ``absorb`` and ``buyCollateral``.

Every function is pure. Units: amounts in whole tokens, prices in USD per whole token (the
Chainlink feeds' 8-decimal values as floats), the account's base balance in whole tokens of
the market's base asset (USDC, WETH...) — positive when supplied, negative when borrowed.
Factors are fractions (a collateral factor of 80 % -> 0.8).

Sources:

* [COMET] compound-finance/comet @ d5a30b0aaeff7755f1431e87f818990902237b03
  ``contracts/Comet.sol`` (``isBorrowCollateralized``, ``isLiquidatable``, ``absorbInternal``,
  ``buyCollateral``, ``quoteCollateral``, ``getReserves``) and its tests
  ``test/absorb-test.ts``, ``test/is-liquidatable-test.ts``, ``test/quote-collateral-test.ts``,
  ``test/buy-collateral-test.ts``.
* Project summary: ../shared/specs/margin_rules.md §9.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from backtest.lending.checks import fraction, non_negative, positive
from backtest.lending.comet_simulation import absorbed_balance_v, store_front_discount_v
from backtest.lending.errors import LendingParameterError

__all__ = [
    "Absorption",
    "AssetConfig",
    "Holding",
    "Purchase",
    "absorb",
    "absorbed_base_balance",
    "buy_collateral",
    "collateral_value",
    "is_borrow_collateralized",
    "is_liquidatable",
    "quote_collateral",
    "store_front_discount",
]


@dataclass(frozen=True, slots=True)
class AssetConfig:
    """One Comet collateral asset's factors (``AssetInfo``).

    Attributes
    ----------
    asset : str
        Symbol (``"WETH"``).
    borrow_collateral_factor : float
        Share of the collateral's value that may be borrowed against (fraction).
    liquidate_collateral_factor : float
        Share counted before the account becomes liquidatable (fraction, >= borrow CF).
    liquidation_factor : float
        Share of the collateral's value credited to the borrower on ``absorb`` (fraction).
    """

    asset: str
    borrow_collateral_factor: float
    liquidate_collateral_factor: float
    liquidation_factor: float

    def __post_init__(self) -> None:
        subject = f"Comet asset {self.asset}"
        fraction(f"{subject}: borrow_collateral_factor", self.borrow_collateral_factor)
        fraction(f"{subject}: liquidate_collateral_factor", self.liquidate_collateral_factor)
        fraction(f"{subject}: liquidation_factor", self.liquidation_factor)
        # Configurator: borrowCF must not exceed liquidateCF (BorrowCFTooLarge)
        if self.borrow_collateral_factor > self.liquidate_collateral_factor:
            raise LendingParameterError(
                f"{subject}: expected borrow_collateral_factor <= liquidate_collateral_factor, "
                f"found {self.borrow_collateral_factor} > {self.liquidate_collateral_factor}")


@dataclass(frozen=True, slots=True)
class Holding:
    """An amount (whole tokens) of one collateral asset at its oracle price (USD/token)."""

    config: AssetConfig
    amount: float
    price: float

    def __post_init__(self) -> None:
        non_negative(f"collateral {self.config.asset} amount", self.amount)
        positive(f"price of {self.config.asset}", self.price)

    @property
    def value(self) -> float:
        """USD value at the oracle price."""
        return self.amount * self.price


def collateral_value(holdings: Iterable[Holding], factor: str) -> float:
    """``sum(amount * price * factor)`` in USD for ``factor`` in ``{"borrow", "liquidate",
    "liquidation"}`` (borrow CF, liquidate CF, liquidation factor). Source: [COMET]."""
    attribute = {"borrow": "borrow_collateral_factor",
                 "liquidate": "liquidate_collateral_factor",
                 "liquidation": "liquidation_factor"}.get(factor)
    if attribute is None:
        raise LendingParameterError(
            f"collateral_value: factor expected 'borrow', 'liquidate' or 'liquidation', found "
            f"{factor!r}")
    return math.fsum(h.value * getattr(h.config, attribute) for h in holdings)


def _debt_usd(base_balance: float, base_price: float) -> float:
    positive("base_price", base_price)
    if math.isnan(base_balance) or math.isinf(base_balance):
        raise LendingParameterError(f"base_balance: expected a finite number, found {base_balance}")
    return -base_balance * base_price if base_balance < 0 else 0.0


def is_borrow_collateralized(*, base_balance: float, base_price: float,
                             holdings: Iterable[Holding]) -> bool:
    """True when the borrow is within the borrow collateral factors (or nothing is borrowed):
    ``sum(value * borrowCF) >= debt * basePrice``. Source: [COMET] ``isBorrowCollateralized``."""
    debt = _debt_usd(base_balance, base_price)
    return debt == 0 or collateral_value(holdings, "borrow") >= debt


def is_liquidatable(*, base_balance: float, base_price: float,
                    holdings: Iterable[Holding]) -> bool:
    """True when the account borrows and ``sum(value * liquidateCF) < debt * basePrice``
    (strict: equal values are not liquidatable). Source: [COMET] ``isLiquidatable``;
    vectors ``comet-isliq-*``."""
    debt = _debt_usd(base_balance, base_price)
    return debt > 0 and collateral_value(holdings, "liquidate") < debt


@dataclass(frozen=True)
class Absorption:
    """Outcome of ``absorb`` for one account.

    ``absorbed`` is False (all amounts 0) when the account was not liquidatable (Comet reverts
    ``NotLiquidatable``). Balances in base-asset tokens; ``seized`` maps each collateral asset
    to the amount taken into the protocol's collateral reserves; ``reserves_after`` is the
    protocol's base reserves after paying ``new_base_balance - old_base_balance`` (the debt
    forgiven plus any surplus credited): negative reserves are the shortfall the protocol bears
    until the seized collateral is sold.
    """

    absorbed: bool
    old_base_balance: float
    new_base_balance: float
    value_credited_usd: float
    seized: Mapping[str, float]
    reserves_after: float

    @property
    def base_paid_out(self) -> float:
        """Base tokens the protocol paid for the account (forgiven debt + surplus supplied)."""
        return self.new_base_balance - self.old_base_balance


def absorbed_base_balance(*, base_balance: float, base_price: float,
                          holdings: Iterable[Holding]) -> float:
    """Base balance after ``absorb``: ``max(0, balance + sum(value * liquidationFactor) /
    basePrice)`` (tokens). The formula alone; :func:`absorb` also checks the account is
    liquidatable and does the reserve accounting. Source: [COMET] ``absorbInternal``; vector
    ``comet-absorb-more-than-enough``."""
    _debt_usd(base_balance, base_price)
    return float(absorbed_balance_v(base_balance, collateral_value(holdings, "liquidation"),
                                    base_price))


def absorb(*, base_balance: float, base_price: float, holdings: Iterable[Holding],
           reserves: float) -> Absorption:
    """``absorb`` one account: seize *all* collateral, credit ``sum(value * liquidationFactor)
    / basePrice`` to its base balance (floored at 0: the rest of the debt is forgiven, a
    surplus stays with the user as supplied base) and pay for it out of ``reserves``.

    Parameters
    ----------
    base_balance : float
        The account's present base balance, tokens (negative = borrowed).
    base_price : float
        USD per base token.
    holdings : iterable of Holding
        The account's collateral.
    reserves : float
        Protocol base reserves before the absorb, tokens (may already be negative).

    Source: [COMET] ``absorbInternal`` (``deltaValue``, ``newBalance``, reserve accounting via
    ``getReserves = balance - totalSupply + totalBorrow``); vector ``comet-absorb-*``.
    """
    items = list(holdings)
    if not is_liquidatable(base_balance=base_balance, base_price=base_price, holdings=items):
        return Absorption(False, base_balance, base_balance, 0.0, MappingProxyType({}), reserves)
    credited = collateral_value(items, "liquidation")
    new_balance = absorbed_base_balance(base_balance=base_balance, base_price=base_price,
                                        holdings=items)
    seized: dict[str, float] = {}
    for h in items:
        seized[h.config.asset] = seized.get(h.config.asset, 0.0) + h.amount
    reserves_after = reserves - (new_balance - base_balance)
    return Absorption(True, base_balance, new_balance, credited, MappingProxyType(seized),
                      reserves_after)


def store_front_discount(store_front_price_factor: float, liquidation_factor: float) -> float:
    """Discount on seized collateral: ``storeFrontPriceFactor * (1 - liquidationFactor)``.
    Source: [COMET] ``quoteCollateral`` (margin_rules.md §14 q.9: check older deployments)."""
    return float(store_front_discount_v(
        fraction("store_front_price_factor", store_front_price_factor),
        fraction("liquidation_factor", liquidation_factor)))


def quote_collateral(*, base_amount: float, base_price: float, asset_price: float,
                     store_front_price_factor: float, liquidation_factor: float) -> float:
    """Collateral tokens sold for ``base_amount`` base tokens at the store-front price
    ``assetPrice * (1 - discount)``. Source: [COMET] ``quoteCollateral``; vectors
    ``comet-quote-collateral-*`` (810 USDC at 9 USD, sfpf 0.5, LF 0.8 -> 100 COMP)."""
    discount = store_front_discount(store_front_price_factor, liquidation_factor)
    discounted = positive("asset_price", asset_price) * (1.0 - discount)
    return (non_negative("base_amount", base_amount) * positive("base_price", base_price)
            / discounted)


@dataclass(frozen=True, slots=True)
class Purchase:
    """Outcome of ``buyCollateral``: ``status`` ``"bought"`` or why it was refused
    (``"not_for_sale"``: reserves at or above target; ``"too_much_slippage"``: quote below
    ``min_amount``; ``"insufficient_reserves"``: the protocol holds less of the asset)."""

    status: str
    collateral_out: float
    base_paid: float
    reserves_after: float
    collateral_reserves_after: float


def buy_collateral(*, base_amount: float, min_amount: float, reserves: float,
                   target_reserves: float, collateral_reserves: float, base_price: float,
                   asset_price: float, store_front_price_factor: float,
                   liquidation_factor: float) -> Purchase:
    """Buy seized collateral from the protocol with base tokens.

    Allowed only while ``reserves < target_reserves`` (negative reserves always qualify); the
    buyer receives :func:`quote_collateral` of ``base_amount`` if it is at least
    ``min_amount`` and the protocol holds that much; the base paid goes to reserves.
    Source: [COMET] ``buyCollateral`` (``NotForSale``, ``TooMuchSlippage``,
    ``InsufficientReserves``).
    """
    paid = non_negative("base_amount", base_amount)
    held = non_negative("collateral_reserves", collateral_reserves)
    if reserves >= 0 and reserves >= target_reserves:
        return Purchase("not_for_sale", 0.0, 0.0, reserves, held)
    out = quote_collateral(base_amount=paid, base_price=base_price, asset_price=asset_price,
                           store_front_price_factor=store_front_price_factor,
                           liquidation_factor=liquidation_factor)
    if out < non_negative("min_amount", min_amount):
        return Purchase("too_much_slippage", 0.0, 0.0, reserves, held)
    if out > held:
        return Purchase("insufficient_reserves", 0.0, 0.0, reserves, held)
    return Purchase("bought", out, paid, reserves + paid, held - out)
