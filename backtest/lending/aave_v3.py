"""Aave v3 (v3.0-v3.3) lending math: health factor, borrowing power, close factor, liquidation.

Every function is pure. Units: amounts in whole tokens (1.5 WETH, not wei), prices in the
market's base currency per whole token (USD for the Ethereum market), values in base currency.
The on-chain formulas carry ``10**decimals`` factors to turn raw integer balances into whole
tokens; in whole-token units they cancel, so :func:`amount_from_raw` is the only place
decimals enter. Fractions are plain fractions (LT 80 % -> 0.8) and the liquidation bonus is
the multiplier stored on chain (10500 bps -> 1.05, i.e. +5 %).

Sources (cited per function):

* [LL30] aave/aave-v3-core @ 782f51917056a53a2c228701058a6c3fb233684a
  ``contracts/protocol/libraries/logic/LiquidationLogic.sol`` (v3.0 close factor,
  ``_calculateAvailableCollateralToLiquidate``) and ``GenericLogic.sol``
  (``calculateUserAccountData``, ``calculateAvailableBorrows``).
* [LL33] aave-dao/aave-v3-origin @ fd1fbd9150426ca8ace9cee45b4acf912ae84f5b
  ``src/contracts/protocol/libraries/logic/LiquidationLogic.sol`` (``executeLiquidationCall``,
  ``MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD``, ``MIN_LEFTOVER_BASE``, ``_burnDebtTokens``,
  ``_burnBadDebt``) and ``docs/3.3/Aave-v3.3-features.md`` §2 (close factor re-design,
  dust rules, deficit).
* [HELP] https://aave.com/help/borrowing/liquidations (health factor example).
* Project summary: ../shared/specs/margin_rules.md §8.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from backtest.errors import did_you_mean
from backtest.lending import aave_kernels as kernels
from backtest.lending.aave_kernels import (
    CLOSE_FACTOR_HF_THRESHOLD,
    DEFAULT_CLOSE_FACTOR,
    MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD,
    MIN_LEFTOVER_BASE,
)
from backtest.lending.checks import at_least, fraction, lookup, non_negative, positive
from backtest.lending.errors import LendingParameterError

__all__ = [
    "CLOSE_FACTOR_HF_THRESHOLD",
    "DEFAULT_CLOSE_FACTOR",
    "MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD",
    "MIN_LEFTOVER_BASE",
    "AccountData",
    "EModeCategory",
    "Liquidation",
    "Market",
    "Position",
    "ReserveConfig",
    "Seizure",
    "account_data",
    "amount_from_raw",
    "borrow_refusal",
    "close_factor_v30",
    "collateral_to_seize",
    "debt_value",
    "health_factor",
    "isolation_debt_after_liquidation",
    "liquidation_call",
    "loan_to_value",
    "max_liquidatable_debt_v30",
    "max_liquidatable_debt_v33",
    "max_partial_leaving_dust_floor",
    "toxic_loan_to_value",
]

VERSIONS = ("3.0", "3.1", "3.2", "3.3")


def amount_from_raw(raw: int, decimals: int) -> float:
    """Whole tokens from a raw on-chain integer balance: ``raw / 10**decimals``."""
    if decimals < 0:
        raise LendingParameterError(f"decimals: expected an integer >= 0, found {decimals}")
    return non_negative("raw balance", raw) / 10**decimals


@dataclass(frozen=True, slots=True)
class ReserveConfig:
    """Risk parameters of one Aave v3 reserve (``ReserveConfigurationMap``).

    Attributes
    ----------
    asset : str
        Symbol of the reserve (e.g. ``"WETH"``).
    ltv : float
        Loan-to-value: share of the collateral's value that may be borrowed against (fraction).
    liquidation_threshold : float
        LT: share of the collateral's value counted in the health factor (fraction, >= ltv).
    liquidation_bonus : float
        Multiplier of the collateral paid per unit of debt repaid (>= 1; 1.05 = +5 %).
    liquidation_protocol_fee : float
        Share of the bonus part sent to the treasury (fraction).
    decimals : int
        Token decimals (only for :func:`amount_from_raw`).
    debt_ceiling : float
        Isolation-mode debt ceiling in base currency; 0 means the asset is not isolated.
    borrowable_in_isolation : bool
        Whether an isolated-mode user may borrow this asset.
    """

    asset: str
    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float = 1.0
    liquidation_protocol_fee: float = 0.0
    decimals: int = 18
    debt_ceiling: float = 0.0
    borrowable_in_isolation: bool = False

    def __post_init__(self) -> None:
        _check_risk_params(f"reserve {self.asset}", self.ltv, self.liquidation_threshold,
                           self.liquidation_bonus)
        fraction(f"reserve {self.asset}: liquidation_protocol_fee", self.liquidation_protocol_fee)
        non_negative(f"reserve {self.asset}: debt_ceiling", self.debt_ceiling)


@dataclass(frozen=True, slots=True)
class EModeCategory:
    """An efficiency-mode category: its LTV, LT and bonus replace the reserves' own values
    for the assets of ``collateral_assets`` when the user is in the category.

    ``borrowable_assets`` lists what a user in the category may borrow (v3.2 bitmaps); empty
    means no restriction (v3.0/v3.1 had none). Source: [LL33] ``EModeLogic``/``GenericLogic``
    and margin_rules.md §8 "E-mode".
    """

    category_id: int
    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float
    collateral_assets: frozenset[str]
    borrowable_assets: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.category_id <= 0:
            raise LendingParameterError(
                f"e-mode category id: expected an integer >= 1 (0 means 'no e-mode'), found "
                f"{self.category_id}")
        _check_risk_params(f"e-mode category {self.category_id}", self.ltv,
                           self.liquidation_threshold, self.liquidation_bonus)
        object.__setattr__(self, "collateral_assets", frozenset(self.collateral_assets))
        object.__setattr__(self, "borrowable_assets", frozenset(self.borrowable_assets))


def _check_risk_params(subject: str, ltv: float, lt: float, bonus: float) -> None:
    fraction(f"{subject}: ltv", ltv)
    fraction(f"{subject}: liquidation_threshold", lt)
    if ltv > lt:
        raise LendingParameterError(
            f"{subject}: expected ltv <= liquidation_threshold, found ltv {ltv} > LT {lt}; "
            "the borrow limit must sit below the liquidation line")
    at_least(f"{subject}: liquidation_bonus", bonus, 1.0, "a multiplier: 1.05 means +5 %")
    # PoolConfigurator: LT x bonus <= 100 %, otherwise a liquidation at HF 1 seizes more
    # collateral than the position holds.
    if lt * bonus > 1.0 + 1e-12:
        raise LendingParameterError(
            f"{subject}: expected liquidation_threshold x liquidation_bonus <= 1, found "
            f"{lt} x {bonus} = {lt * bonus:.6f}; lower the LT or the bonus")


@dataclass(frozen=True)
class Market:
    """The reserves and e-mode categories of one Aave v3 market (one base currency)."""

    reserves: Mapping[str, ReserveConfig]
    emode_categories: Mapping[int, EModeCategory] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, reserve in self.reserves.items():
            if name != reserve.asset:
                raise LendingParameterError(
                    f"market: reserve keyed {name!r} describes asset {reserve.asset!r}; key each "
                    "reserve by its own asset")
        object.__setattr__(self, "reserves", MappingProxyType(dict(self.reserves)))
        object.__setattr__(self, "emode_categories",
                           MappingProxyType(dict(self.emode_categories)))

    def reserve(self, asset: str) -> ReserveConfig:
        """The reserve of ``asset`` (did-you-mean error when unknown)."""
        return lookup("reserve", asset, self.reserves, "Aave market")  # type: ignore[return-value]

    def category(self, emode: int) -> EModeCategory | None:
        """E-mode category ``emode`` (None for 0)."""
        if emode == 0:
            return None
        try:
            return self.emode_categories[emode]
        except KeyError:
            known = ", ".join(str(k) for k in sorted(self.emode_categories)) or "none"
            raise LendingParameterError(
                f"e-mode: category {emode} is not defined in this market (defined: {known}); use "
                "0 for no e-mode or add the category") from None

    def risk_params(self, asset: str, emode: int = 0) -> tuple[float, float, float]:
        """``(ltv, liquidation_threshold, liquidation_bonus)`` of ``asset`` for a user in
        ``emode``: the category's values for its collateral assets, else the reserve's.

        Source: [LL33] ``GenericLogic.calculateUserAccountData`` (e-mode LTV/LT) and
        ``executeLiquidationCall`` (e-mode bonus when the collateral is in the category).
        """
        reserve = self.reserve(asset)
        category = self.category(emode)
        if category is not None and asset in category.collateral_assets:
            return category.ltv, category.liquidation_threshold, category.liquidation_bonus
        return reserve.ltv, reserve.liquidation_threshold, reserve.liquidation_bonus


@dataclass(frozen=True)
class Position:
    """One Aave account: collateral enabled and debts, in whole tokens, and its e-mode.

    Collateral listed here is *enabled as collateral*. Aave never enables an isolated asset
    (``debt_ceiling > 0``) together with another collateral, so such a mix is refused.
    """

    collateral: Mapping[str, float]
    debt: Mapping[str, float]
    emode: int = 0

    def __post_init__(self) -> None:
        for side in ("collateral", "debt"):
            clean = {asset: non_negative(f"position {side} {asset}", amount)
                     for asset, amount in getattr(self, side).items()}
            object.__setattr__(self, side, MappingProxyType(clean))


def _price(prices: Mapping[str, float], asset: str) -> float:
    price = lookup("price", asset, prices, "Aave oracle")
    return positive(f"price of {asset}", price)  # type: ignore[arg-type]


def health_factor(collateral: Iterable[tuple[float, float]], debt_base: float) -> float:
    """``HF = sum(value_i * LT_i) / debt`` (``inf`` without debt); liquidatable when < 1.

    Parameters
    ----------
    collateral : iterable of (value, liquidation_threshold)
        Each collateral's value in base currency and its LT (fraction).
    debt_base : float
        Total debt value in base currency.

    Source: [LL30] ``GenericLogic.calculateHealthFactorFromBalances``; [HELP] (10,000 USD of
    ETH at LT 0.8 against 6,000 USD of debt -> 1.333).
    """
    weighted = math.fsum(non_negative("collateral value", v) * fraction("liquidation threshold", lt)
                         for v, lt in collateral)
    debt = non_negative("debt value", debt_base)
    return math.inf if debt == 0 else weighted / debt


@dataclass(frozen=True, slots=True)
class AccountData:
    """``Pool.getUserAccountData`` in base currency; ``ltv``/``liquidation_threshold`` are the
    collateral-weighted averages; ``isolated_asset`` names the isolated collateral, if any."""

    total_collateral_base: float
    total_debt_base: float
    ltv: float
    liquidation_threshold: float
    health_factor: float
    available_borrows_base: float
    isolated_asset: str | None


def account_data(position: Position, prices: Mapping[str, float], market: Market) -> AccountData:
    """Totals, weighted LTV/LT, health factor and borrowing power of ``position``.

    ``available_borrows = max(0, collateral * avg_ltv - debt)`` and 0 when any enabled
    collateral has LTV 0 (v3.0 rule). Source: [LL30] ``GenericLogic.calculateUserAccountData``
    and ``calculateAvailableBorrows``; e-mode through :meth:`Market.risk_params`.
    """
    isolated = _isolated_asset(position, market)
    total = weighted_ltv = weighted_lt = 0.0
    zero_ltv = False
    for asset, amount in position.collateral.items():
        if amount == 0:
            continue
        value = amount * _price(prices, asset)
        ltv, lt, _ = market.risk_params(asset, position.emode)
        total += value
        weighted_ltv += value * ltv
        weighted_lt += value * lt
        zero_ltv = zero_ltv or ltv == 0
    debt = debt_value(position, prices, market)
    avg_ltv = weighted_ltv / total if total else 0.0
    avg_lt = weighted_lt / total if total else 0.0
    hf = math.inf if debt == 0 else weighted_lt / debt
    available = 0.0 if zero_ltv else max(0.0, weighted_ltv - debt)
    return AccountData(total, debt, avg_ltv, avg_lt, hf, available, isolated)


def debt_value(position: Position, prices: Mapping[str, float], market: Market) -> float:
    """Total debt of ``position`` in base currency."""
    total = 0.0
    for asset, amount in position.debt.items():
        market.reserve(asset)
        if amount:
            total += amount * _price(prices, asset)
    return total


def loan_to_value(position: Position, prices: Mapping[str, float], market: Market) -> float:
    """Debt value / collateral value (``inf`` with debt and no collateral, 0 without debt)."""
    data = account_data(position, prices, market)
    if data.total_collateral_base == 0:
        return math.inf if data.total_debt_base > 0 else 0.0
    return data.total_debt_base / data.total_collateral_base


def toxic_loan_to_value(liquidation_bonus: float) -> float:
    """LTV above which a liquidation lowers the health factor: ``1 / bonus``.

    Repaying ``x`` of debt removes ``x * bonus`` of collateral; debt/collateral falls only
    while ``collateral >= debt * bonus``. Above it each liquidation worsens the position
    (the "toxic spiral" of margin_rules.md §8 / cascades.md §7.3).
    """
    return 1.0 / at_least("liquidation_bonus", liquidation_bonus, 1.0, "a multiplier >= 1")


def _isolated_asset(position: Position, market: Market) -> str | None:
    held = [a for a, v in position.collateral.items() if v > 0]
    isolated = [a for a in held if market.reserve(a).debt_ceiling > 0]
    if isolated and len(held) > 1:
        raise LendingParameterError(
            f"Aave position: isolated collateral {isolated[0]!r} is enabled together with "
            f"{sorted(set(held) - {isolated[0]})}; in isolation mode the isolated asset is the "
            "only collateral. Keep the other supplies out of `collateral`")
    return isolated[0] if isolated else None


def borrow_refusal(position: Position, prices: Mapping[str, float], market: Market, *,
                   asset: str, amount: float, isolation_total_debt: float = 0.0) -> str | None:
    """Why Aave would refuse to let ``position`` borrow ``amount`` of ``asset``, or None.

    Codes: ``ltv_exceeded`` (new debt above collateral x avg LTV, or a zero-LTV collateral),
    ``not_borrowable_in_isolation``, ``debt_ceiling_exceeded`` (``isolation_total_debt`` is the
    isolated reserve's current total, base currency), ``not_borrowable_in_emode``.
    Source: [LL33] ``ValidationLogic.validateBorrow`` as summarised in margin_rules.md §8.
    """
    reserve = market.reserve(asset)
    value = non_negative("borrow amount", amount) * _price(prices, asset)
    category = market.category(position.emode)
    if category is not None and category.borrowable_assets and asset not in category.borrowable_assets:
        return "not_borrowable_in_emode"
    data = account_data(position, prices, market)
    if data.isolated_asset is not None:
        if not reserve.borrowable_in_isolation:
            return "not_borrowable_in_isolation"
        ceiling = market.reserve(data.isolated_asset).debt_ceiling
        if non_negative("isolation_total_debt", isolation_total_debt) + value > ceiling:
            return "debt_ceiling_exceeded"
    if value > data.available_borrows_base:
        return "ltv_exceeded"
    return None


def close_factor_v30(health_factor: float) -> float:
    """v3.0-v3.2 close factor: 0.5 of the reserve's debt, 1.0 when ``HF <= 0.95``. Source: [LL30]."""
    return float(kernels.close_factor_v30(health_factor))


def max_liquidatable_debt_v30(reserve_debt: float, health_factor: float) -> float:
    """Largest repayable amount of one debt reserve in v3.0-v3.2 (unit of ``reserve_debt``). [LL30]"""
    return non_negative("reserve_debt", reserve_debt) * close_factor_v30(health_factor)


def max_liquidatable_debt_v33(*, reserve_collateral_base: float, reserve_debt_base: float,
                              total_debt_base: float, health_factor: float,
                              threshold_base: float = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD) -> float:
    """Largest repayable debt of the chosen reserve in v3.3+, base currency.

    The whole reserve debt, unless the chosen collateral and debt reserves are both worth at
    least ``threshold_base`` and ``HF > 0.95``; then at most 50 % of the user's *total* debt.

    Source: [LL33] ``executeLiquidationCall`` (``maxLiquidatableDebt``) and
    ``Aave-v3.3-features.md`` §2.1-2.2; margin_rules.md §8.
    """
    collateral = non_negative("reserve_collateral_base", reserve_collateral_base)
    reserve_debt = non_negative("reserve_debt_base", reserve_debt_base)
    total_debt = non_negative("total_debt_base", total_debt_base)
    return float(kernels.max_liquidatable_debt_v33(collateral, reserve_debt, total_debt,
                                                   health_factor, threshold_base))


def max_partial_leaving_dust_floor(balance_base: float,
                                   min_leftover_base: float = MIN_LEFTOVER_BASE) -> float:
    """Largest *partial* liquidation of a balance that still leaves ``min_leftover_base``.

    v3.3 forbids leaving less than ``MIN_LEFTOVER_BASE`` of the debt or the collateral
    reserve: a liquidator either takes at most ``balance - min_leftover`` or the whole balance.
    Source: [LL33] ``executeLiquidationCall`` (``MUST_NOT_LEAVE_DUST``), features doc §2.3.
    """
    return max(0.0, non_negative("balance_base", balance_base)
               - non_negative("min_leftover_base", min_leftover_base))


@dataclass(frozen=True, slots=True)
class Seizure:
    """Collateral moved by one liquidation (whole tokens of the collateral / debt asset).

    ``collateral_seized`` leaves the user: ``to_liquidator + protocol_fee``. ``capped`` is True
    when the user's collateral did not cover ``debt * bonus`` and the repaid debt was reduced.
    """

    debt_repaid: float
    collateral_seized: float
    collateral_to_liquidator: float
    protocol_fee: float
    capped: bool


def collateral_to_seize(*, debt_to_cover: float, debt_price: float, collateral_price: float,
                        collateral_balance: float, liquidation_bonus: float,
                        liquidation_protocol_fee: float = 0.0) -> Seizure:
    """Collateral seized for ``debt_to_cover`` and the treasury's share of the bonus.

    ``base = debt_price * debt / collateral_price``; ``max = base * bonus``. When ``max``
    exceeds the user's balance the whole balance is taken and the repaid debt becomes
    ``balance * collateral_price / debt_price / bonus``. The bonus part is
    ``seized - seized / bonus``; the protocol keeps ``bonus_part * liquidation_protocol_fee``.

    Source: [LL30]/[LL33] ``_calculateAvailableCollateralToLiquidate``; margin_rules.md §8.
    """
    debt = non_negative("debt_to_cover", debt_to_cover)
    p_debt = positive("debt_price", debt_price)
    p_coll = positive("collateral_price", collateral_price)
    balance = non_negative("collateral_balance", collateral_balance)
    bonus = at_least("liquidation_bonus", liquidation_bonus, 1.0, "a multiplier >= 1")
    fee_share = fraction("liquidation_protocol_fee", liquidation_protocol_fee)
    k = kernels.seize(debt, p_debt, p_coll, balance, bonus, fee_share)
    return Seizure(float(k.debt_repaid), float(k.collateral_seized),
                   float(k.collateral_to_liquidator), float(k.protocol_fee), bool(k.capped))


@dataclass(frozen=True)
class Liquidation:
    """Outcome of one ``liquidationCall``.

    ``status`` is ``"liquidated"`` or why the protocol refused: ``"healthy"`` (HF >= 1),
    ``"no_collateral"`` / ``"no_debt"`` (nothing of that asset), ``"must_not_leave_dust"``
    (v3.3 leftover rule). When refused, the amounts are 0 and ``position_after`` is the input.
    ``deficit`` maps each debt asset to the amount burned as bad debt (v3.3, whole tokens).
    ``bonus_base`` is the liquidator's gain in base currency (collateral received minus debt
    repaid, at oracle prices).
    """

    status: str
    debt_repaid: float
    collateral_seized: float
    collateral_to_liquidator: float
    protocol_fee: float
    bonus_base: float
    health_factor_before: float
    health_factor_after: float
    position_after: Position
    deficit: Mapping[str, float]


def _refused(status: str, position: Position, hf: float) -> Liquidation:
    return Liquidation(status, 0.0, 0.0, 0.0, 0.0, 0.0, hf, hf, position, MappingProxyType({}))


def liquidation_call(position: Position, prices: Mapping[str, float], market: Market, *,
                     collateral_asset: str, debt_asset: str, debt_to_cover: float,
                     version: str = "3.3",
                     min_base_max_close_factor_threshold: float = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD,
                     min_leftover_base: float = MIN_LEFTOVER_BASE) -> Liquidation:
    """Replay ``Pool.liquidationCall`` on ``position`` at the oracle ``prices``.

    Steps ([LL33] ``executeLiquidationCall``; v3.0-3.2 per [LL30]):

    1. Refused (``healthy``) unless ``HF < 1``.
    2. Cap ``debt_to_cover`` by the close factor: v3.0-3.2 :func:`max_liquidatable_debt_v30`
       on the reserve debt; v3.3 :func:`max_liquidatable_debt_v33`.
    3. Seize collateral with the bonus (e-mode bonus when the collateral is in the user's
       category), protocol fee out of the bonus part (:func:`collateral_to_seize`).
    4. v3.3 only: a partial liquidation (neither the reserve debt nor the collateral cleared)
       must leave at least ``min_leftover_base`` of both, else ``must_not_leave_dust``.
    5. v3.3 only: if the seized collateral was all the user had, every remaining debt is burned
       and recorded as the reserves' ``deficit``.

    Parameters
    ----------
    debt_to_cover : float
        Debt the liquidator offers to repay, whole tokens of ``debt_asset`` (``inf`` = as much
        as allowed, like passing ``type(uint256).max``).
    version : {"3.0", "3.1", "3.2", "3.3"}
        Protocol version; 3.0-3.2 share the close-factor rule and have no dust/deficit logic.
    """
    if version not in VERSIONS:
        raise LendingParameterError(
            f"Aave version: expected one of {', '.join(VERSIONS)}, found {version!r}"
            f"{did_you_mean(str(version), VERSIONS)}")
    v33 = version == "3.3"
    wanted = non_negative("debt_to_cover", debt_to_cover, allow_inf=True)
    data = account_data(position, prices, market)
    hf = data.health_factor
    if hf >= 1.0:
        return _refused("healthy", position, hf)
    collateral_reserve = market.reserve(collateral_asset)
    market.reserve(debt_asset)
    balance = position.collateral.get(collateral_asset, 0.0)
    reserve_debt = position.debt.get(debt_asset, 0.0)
    if balance == 0 or collateral_reserve.liquidation_threshold == 0:
        return _refused("no_collateral", position, hf)
    if reserve_debt == 0:
        return _refused("no_debt", position, hf)
    p_coll, p_debt = _price(prices, collateral_asset), _price(prices, debt_asset)
    if v33:
        cap_base = max_liquidatable_debt_v33(
            reserve_collateral_base=balance * p_coll, reserve_debt_base=reserve_debt * p_debt,
            total_debt_base=data.total_debt_base, health_factor=hf,
            threshold_base=min_base_max_close_factor_threshold)
        cap = reserve_debt if cap_base >= reserve_debt * p_debt else cap_base / p_debt
    else:
        cap = max_liquidatable_debt_v30(reserve_debt, hf)
    _, _, bonus = market.risk_params(collateral_asset, position.emode)
    seizure = collateral_to_seize(
        debt_to_cover=min(wanted, cap), debt_price=p_debt, collateral_price=p_coll,
        collateral_balance=balance, liquidation_bonus=bonus,
        liquidation_protocol_fee=collateral_reserve.liquidation_protocol_fee)
    debt_left = reserve_debt - seizure.debt_repaid
    collateral_left = balance - seizure.collateral_seized
    if (v33 and seizure.debt_repaid < reserve_debt and seizure.collateral_seized < balance
            and (debt_left * p_debt < min_leftover_base
                 or collateral_left * p_coll < min_leftover_base)):
        return _refused("must_not_leave_dust", position, hf)
    collateral_after = dict(position.collateral)
    cleared = seizure.capped or collateral_left <= 0
    collateral_after[collateral_asset] = 0.0 if cleared else collateral_left
    debt_after = dict(position.debt)
    debt_after[debt_asset] = max(0.0, debt_left)
    deficit: dict[str, float] = {}
    no_collateral_left = cleared and all(v == 0 for v in collateral_after.values())
    if v33 and no_collateral_left:
        # _burnDebtTokens + _burnBadDebt: every remaining debt is burned into the reserve deficit
        for asset, left in debt_after.items():
            if left > 0:
                deficit[asset] = left
            debt_after[asset] = 0.0
    after = Position(collateral_after, debt_after, position.emode)
    hf_after = account_data(after, prices, market).health_factor
    bonus_base = seizure.collateral_to_liquidator * p_coll - seizure.debt_repaid * p_debt
    return Liquidation("liquidated", seizure.debt_repaid, seizure.collateral_seized,
                       seizure.collateral_to_liquidator, seizure.protocol_fee, bonus_base,
                       hf, hf_after, after, MappingProxyType(deficit))


def isolation_debt_after_liquidation(isolation_total_debt: float, debt_repaid: float) -> float:
    """The isolated collateral's total debt after a liquidation repaid ``debt_repaid`` (base
    currency). Only the repaid debt is discounted, never the deficit burned: bad debt keeps
    using the ceiling until governance raises it. Source: [LL33]
    ``IsolationModeLogic.updateIsolatedDebtIfIsolated`` call in ``executeLiquidationCall``.
    """
    return max(0.0, non_negative("isolation_total_debt", isolation_total_debt)
               - non_negative("debt_repaid", debt_repaid))
