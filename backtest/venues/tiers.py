"""Versioned risk-tier (bracket) tables: which maintenance rate applies to a position.

A venue's bracket table maps a position's notional to a maintenance-margin rate (MMR), a
maintenance amount ("cum") and a maximum leverage. Binance writes the maintenance margin as
``MM = N * mmr_k - cum_k`` with ``cum_0 = 0`` and
``cum_k = cum_{k-1} + floor_k * (mmr_k - mmr_{k-1})``, which makes MM a continuous function
of the notional and equal to the "progressive" (tax-bracket) sum of each notional slice at its
own tier's rate.

Sources: Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
(https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93, section
"Maintenance Amount"); freqtrade/freqtrade @ c9ae5e1e9ff25bb55dd61f5e5519f7c479291edb
``tests/exchange/test_exchange.py::test_get_maintenance_ratio_and_amt``.

A table is immutable and validated when built; a :class:`TierSchedule` holds the tables of one
symbol keyed by the UTC millisecond they took effect, because venues change their tables.

**Tier basis.** What a table's floors and caps count is the table's :attr:`TierTable.basis`,
declared by the venue that publishes it (``Venue.tier_basis``; for stored rows the exchange's
unit, ``data_loaders.ccxt_tiers.tier_bound_unit``): ``"notional"`` (the position's notional in
the margin asset: quote currency for linear contracts, coin for inverse ones, Binance USDⓈ-M
and COIN-M, Bybit, Hyperliquid, dYdX, BitMEX) or ``"contracts"`` (the number of contracts: OKX
position tiers ``minSz``/``maxSz``, margin_rules.md §4,
https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers). The one function
that turns a position into the value a table is looked up by is :func:`tier_key`; the engine
asks :meth:`TierTable.for_position` / :meth:`TierTable.index_for_position` and never computes
the key itself.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from backtest.errors import utc_text
from backtest.venues.errors import TierError
from data_loaders.tier_rules import CUM_ABS_TOL, CUM_REL_TOL, maintenance_amounts, table_problem, tier_numbers_problem

if TYPE_CHECKING:  # polars is only needed by the frame constructors
    import polars as pl

__all__ = [
    "CONTRACTS",
    "NOTIONAL",
    "TIER_BASES",
    "Tier",
    "TierError",
    "TierSchedule",
    "TierTable",
    "maintenance_amounts",
    "progressive_sum",
    "qty_for_tier_key",
    "tier_key",
    "tier_unit",
]

#: Basis of a table keyed by the position's notional in the margin asset.
NOTIONAL = "notional"
#: Basis of a table keyed by the number of contracts (OKX).
CONTRACTS = "contracts"
#: Every tier basis with what its bounds count (the one list; an unknown basis is an error).
TIER_BASES: MappingProxyType[str, str] = MappingProxyType({
    NOTIONAL: "the position notional in the margin asset (quote currency for linear contracts; "
              "coin for inverse ones: contracts x contract size / mark)",
    CONTRACTS: "the number of contracts (linear: quantity / contract size; inverse: the quantity)",
})
#: Decimals a contract count is kept to: ``qty / contract size`` may miss a whole count by an
#: ulp (0.3 / 0.01 = 29.999999999999996) and a count equal to a floor belongs to the upper tier.
_COUNT_DECIMALS = 9


def _check_basis(basis: str, label: str) -> str:
    if basis not in TIER_BASES:
        raise TierError(f"{label}: tier basis {basis!r} is unknown; expected one of "
                        f"{', '.join(sorted(TIER_BASES))}")
    return basis


def tier_key(basis: str, contract: Any, qty: Any, price: Any, notional: Any = None) -> Any:
    """The value a tier table of ``basis`` is looked up by, for a position of ``qty`` at ``price``.

    The one definition of a position's tier key (arrays work too when ``notional`` is given
    or the basis is ``"contracts"``).

    Parameters
    ----------
    basis : str
        ``"notional"`` or ``"contracts"`` (:data:`TIER_BASES`).
    contract : Contract or None
        The symbol's :class:`backtest.contracts.Contract`; None means a linear contract in
        base units (notional basis only).
    qty : float or ndarray
        Position size (sign ignored): base units (linear) or contracts (inverse).
    price : float or ndarray
        Mark price, quote per base unit. A price that is not > 0 (0, NaN: a resolver's first
        step with no threshold) gives a notional key of 0, as the resolvers have always read it.
    notional : float or ndarray, optional
        The position's notional at ``price`` when the caller already has it (margin asset);
        used as is for the notional basis (the same float, one computation less).

    Returns
    -------
    float or ndarray
        Notional in the margin asset, or a contract count (kept to 9 decimals).

    Source: Binance USDⓈ-M / COIN-M brackets by notional (margin_rules.md §2.1, §2.2: COIN-M
    notional in coin = contracts x CS / mark); OKX position tiers by contract count
    (margin_rules.md §4; ``minSz``/``maxSz`` of /api/v5/public/position-tiers), a contract
    being ``ctVal`` base units (the market spec's ``contract_size``).
    """
    if basis == NOTIONAL:
        if notional is not None:
            return notional
        if not price > 0:
            return 0.0
        return abs(qty) * price if contract is None else contract.notional(qty, price)
    if basis == CONTRACTS:
        if contract is None:
            raise TierError("a tier table counted in contracts needs the symbol's contract (its "
                            "contract size) to look a position up; pass contract=")
        count = abs(qty) if contract.inverse else abs(qty) / contract.contract_size
        # (an array rounds itself: the equity table looks every bar up at once)
        return count.round(_COUNT_DECIMALS) if hasattr(count, "round") else round(count, _COUNT_DECIMALS)
    raise TierError(f"tier basis {basis!r} is unknown; expected one of {', '.join(sorted(TIER_BASES))}")


def qty_for_tier_key(basis: str, contract: Any, key: float, price: float) -> float:
    """The position size (base units linear, contracts inverse) whose :func:`tier_key` is ``key``.

    The inverse of :func:`tier_key` at ``price`` (> 0): what a partial liquidation keeps to
    land in a lower tier (``backtest.venues.stepdown``).
    """
    if basis == NOTIONAL:
        return key / price if contract is None else contract.qty_for_notional(key, price)
    if basis == CONTRACTS:
        if contract is None:
            raise TierError("a tier table counted in contracts needs the symbol's contract; pass contract=")
        return key if contract.inverse else key * contract.contract_size
    raise TierError(f"tier basis {basis!r} is unknown; expected one of {', '.join(sorted(TIER_BASES))}")


def tier_unit(basis: str, contract: Any) -> str:
    """The unit a table's bounds are written in, for messages (``USDT``, ``BTC``, ``contracts``)."""
    if basis == CONTRACTS:
        return "contracts"
    return getattr(contract, "margin_asset", "USDT") if contract is not None else "USDT"



@dataclass(frozen=True, slots=True)
class Tier:
    """One bracket of a risk-tier table.

    Attributes
    ----------
    floor : float
        Lower bound of the position notional, inclusive (quote currency for linear
        contracts, coin for inverse ones).
    cap : float
        Upper bound of the notional, exclusive; ``math.inf`` when unbounded.
    max_leverage : float
        Largest leverage allowed for a position whose notional falls in this bracket.
    mmr : float
        Maintenance-margin rate, a fraction of the notional (0.004 = 0.4 %).
    cum : float
        Maintenance amount ("cum"), same unit as the notional:
        ``maintenance margin = notional * mmr - cum``.
    """

    floor: float
    cap: float
    max_leverage: float
    mmr: float
    cum: float

    def maintenance_margin(self, notional: float) -> float:
        """Return ``abs(notional) * mmr - cum`` in the notional's unit."""
        return abs(notional) * self.mmr - self.cum


def progressive_sum(value: float, floors_and_rates: Sequence[tuple[float, float]]) -> float:
    """Charge each slice of ``value`` between consecutive floors at its own tier's rate.

    This is the "tax bracket" form of a tiered requirement; for tables whose maintenance
    amounts follow :func:`maintenance_amounts` it equals ``value * rate_k - cum_k``.

    Sources: Binance Cross Margin Pro example (https://www.binance.com/en/margin-fee: 13 BTC
    and 13 ETH borrowed -> MM 31,330 USDT, IM 75,327.1 USDT); Bybit "Maintenance Margin (USDT
    Contract)" (excess beyond a tier is charged at the next tier's rate).

    Parameters
    ----------
    value : float
        The amount the tiers apply to (position value or liability, e.g. USDT); must be >= 0.
    floors_and_rates : sequence of (float, float)
        ``(floor, rate)`` per tier in ascending floor order, the first floor being 0.

    Returns
    -------
    float
        The requirement, in ``value``'s unit.
    """
    if value < 0:
        raise TierError(f"progressive_sum: value must be >= 0, found {value}")
    total = 0.0
    for index, (floor, rate) in enumerate(floors_and_rates):
        upper = floors_and_rates[index + 1][0] if index + 1 < len(floors_and_rates) else math.inf
        if value <= floor:
            break
        total += (min(value, upper) - floor) * rate
    return total


class TierTable:
    """An immutable, validated bracket table of one symbol at one time.

    Parameters
    ----------
    tiers : sequence of Tier
        Brackets in ascending order. Validation: at least one tier; the first floor is 0;
        each cap equals the next floor (contiguous); rates non-decreasing and in [0, 1);
        max leverage positive and non-increasing; every ``cum`` agrees with the recursion of
        :func:`maintenance_amounts` (within 1e-9 relative / 1e-6 absolute).
    label : str, optional
        Names the table in error messages (e.g. ``"binanceusdm BTC/USDT:USDT 2022-02-13"``).
    basis : str, optional
        What the floors and caps count (:data:`TIER_BASES`): ``"notional"`` (default) or
        ``"contracts"``. A position is looked up through :meth:`for_position`, which applies
        :func:`tier_key` of this basis.
    """

    __slots__ = ("_caps", "_floors", "basis", "label", "tiers")

    def __init__(self, tiers: Sequence[Tier], *, label: str = "tier table",
                 basis: str = NOTIONAL) -> None:
        self.label = label
        self.basis = _check_basis(basis, label)
        self.tiers: tuple[Tier, ...] = tuple(tiers)
        _validate(self.tiers, label)
        self._floors = [tier.floor for tier in self.tiers]
        self._caps = [tier.cap for tier in self.tiers]

    @classmethod
    def from_rates(
        cls,
        floors_rates: Sequence[tuple[float, float]]
        | Sequence[tuple[float, float, float]],
        *,
        max_leverage: Sequence[float] | None = None,
        last_cap: float = math.inf,
        label: str = "tier table",
        basis: str = NOTIONAL,
    ) -> TierTable:
        """Build a table from ``(floor, mmr)`` or ``(floor, mmr, max_leverage)`` rows.

        Caps are the next tier's floor (``last_cap`` for the last tier) and the maintenance
        amounts come from :func:`maintenance_amounts`.

        Parameters
        ----------
        floors_rates : sequence of tuples
            ``(notional_floor, mmr)`` or ``(notional_floor, mmr, max_leverage)``, ascending.
        max_leverage : sequence of float, optional
            Max leverage per tier when the rows carry only two values. Without it the
            leverage is unknown and set to ``math.inf`` (the table then caps nothing); use
            this only for rate-only tables such as worked examples.
        last_cap : float
            Cap of the last tier (default unbounded).
        label : str
            Table name for error messages.
        basis : str
            What the floors count (:data:`TIER_BASES`; default notional).
        """
        rows = [tuple(float(x) for x in row) for row in floors_rates]
        if not rows:
            raise TierError(f"{label}: expected at least one (floor, mmr) row, found none")
        cums = maintenance_amounts((row[0], row[1]) for row in rows)
        tiers = []
        for index, row in enumerate(rows):
            if len(row) >= 3:
                leverage = row[2]
            elif max_leverage is not None:
                leverage = float(max_leverage[index])
            else:
                leverage = math.inf
            cap = rows[index + 1][0] if index + 1 < len(rows) else last_cap
            tiers.append(Tier(row[0], cap, leverage, row[1], cums[index]))
        return cls(tiers, label=label, basis=basis)

    def __len__(self) -> int:
        return len(self.tiers)

    def __iter__(self):  # noqa: ANN204 - iterator of Tier
        return iter(self.tiers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TierTable) and self.tiers == other.tiers and self.basis == other.basis

    def __hash__(self) -> int:
        return hash((self.tiers, self.basis))

    def __repr__(self) -> str:
        basis = "" if self.basis == NOTIONAL else f", by {self.basis}"
        return f"TierTable({self.label!r}, {len(self.tiers)} tiers{basis})"

    def relabelled(self, label: str) -> TierTable:
        """The same table (tiers and basis) under another label."""
        return TierTable(self.tiers, label=label, basis=self.basis)

    @property
    def max_notional(self) -> float:
        """Cap of the last tier (``inf`` when unbounded), in the table's basis unit."""
        return self.tiers[-1].cap

    def index_for_key(self, key: float) -> int:
        """Return the 0-based index of the bracket containing ``abs(key)`` (the table's unit).

        A key equal to a floor belongs to the upper bracket. A key at or beyond the last cap
        maps to the last bracket: the venue refuses to *open* such a size (see
        :meth:`max_leverage_for`), but the maintenance formula of the last bracket still
        applies to what is held.
        """
        value = abs(key)
        if math.isnan(value):
            raise TierError(f"{self.label}: {self.basis} is NaN; expected a finite number")
        return max(0, bisect.bisect_right(self._floors, value) - 1)

    def index_for(self, notional: float) -> int:
        """Return the 0-based index of the bracket containing ``abs(notional)``.

        For a notional-basis table only (see :meth:`index_for_key`); a position is better
        looked up with :meth:`index_for_position`, which works for every basis.

        Raises
        ------
        TierError
            When the table counts contracts and has several tiers: a notional would pick the
            wrong bracket (a one-tier table answers every key alike).
        """
        if self.basis != NOTIONAL and len(self._floors) > 1:
            raise TierError(
                f"{self.label}: the tiers count {self.basis}, asked by notional {notional!r}; look "
                "the position up by its size with index_for_position(qty, price, contract)")
        return self.index_for_key(notional)

    def for_notional(self, notional: float) -> Tier:
        """Return the bracket for ``abs(notional)`` (see :meth:`index_for`)."""
        return self.tiers[self.index_for(notional)]

    def position_key(self, qty: Any, price: Any, contract: Any = None, notional: Any = None) -> Any:
        """:func:`tier_key` of a position under this table's basis (see there for units)."""
        return tier_key(self.basis, contract, qty, price, notional)

    def index_for_position(self, qty: float, price: float, contract: Any = None,
                           notional: float | None = None) -> int:
        """0-based bracket of a position of ``qty`` at ``price`` (the one lookup of the engine).

        Parameters
        ----------
        qty : float
            Size (sign ignored): base units (linear) or contracts (inverse).
        price : float
            Mark price (quote per base unit); unused by a contract-count table.
        contract : Contract, optional
            The symbol's contract (None: linear base units; required by a contract-count table).
        notional : float, optional
            The position's notional at ``price`` if the caller has it (margin asset).
        """
        return self.index_for_key(tier_key(self.basis, contract, qty, price, notional))

    def for_position(self, qty: float, price: float, contract: Any = None,
                     notional: float | None = None) -> Tier:
        """The bracket of a position (see :meth:`index_for_position`)."""
        return self.tiers[self.index_for_key(tier_key(self.basis, contract, qty, price, notional))]

    def qty_for_key(self, key: float, price: float, contract: Any = None) -> float:
        """Position size whose key under this table's basis is ``key`` (:func:`qty_for_tier_key`)."""
        return qty_for_tier_key(self.basis, contract, key, price)

    def unit(self, contract: Any = None) -> str:
        """Unit of the bounds for messages (:func:`tier_unit`)."""
        return tier_unit(self.basis, contract)

    def max_leverage_for(self, notional: float) -> float:
        """Largest leverage allowed for a position of this notional.

        Raises
        ------
        TierError
            When the notional is at or above the last cap (the venue rejects such a size).
        """
        self.index_for(notional)  # a contract-count table refuses a notional
        if abs(notional) >= self.max_notional:
            raise TierError(
                f"{self.label}: notional {abs(notional):,.2f} is at or above the largest "
                f"bracket cap {self.max_notional:,.2f}; expected a smaller position"
            )
        return self.for_notional(notional).max_leverage

    def maintenance_margin(self, notional: float) -> float:
        """Maintenance margin ``|N| * mmr_k - cum_k`` with the bracket of ``N`` (notional basis)."""
        return self.for_notional(notional).maintenance_margin(notional)

    def to_rows(self) -> list[dict[str, float | int]]:
        """The table as ``risk_tiers`` rows (without exchange/symbol/effective_from)."""
        return [
            {
                "tier": index + 1,
                "notional_floor": tier.floor,
                "notional_cap": tier.cap,
                "max_leverage": tier.max_leverage,
                "maint_margin_rate": tier.mmr,
                "maint_amount": tier.cum,
            }
            for index, tier in enumerate(self.tiers)
        ]


def _validate(tiers: tuple[Tier, ...], label: str) -> None:
    # The rules live in data_loaders.tier_rules so the importer refuses exactly what we refuse.
    problem = table_problem(tiers, label)
    if problem is not None:
        raise TierError(problem)


def _ms(ts: int | datetime) -> int:
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise TierError(f"timestamp {ts} is naive; expected a timezone-aware UTC datetime")
        return int(ts.timestamp() * 1000)
    return int(ts)


_iso = utc_text


class TierSchedule:
    """The bracket tables of one symbol over time, keyed by ``effective_from`` (UTC ms).

    Parameters
    ----------
    versions : iterable of (int, TierTable)
        ``(effective_from_ms, table)`` pairs; they are sorted, and two versions with the same
        ``effective_from`` are an error.
    label : str
        Names the schedule in errors (e.g. ``"binanceusdm BTC/USDT:USDT"``).
    """

    __slots__ = ("_starts", "label", "versions")

    def __init__(self, versions: Iterable[tuple[int, TierTable]], *, label: str = "tier schedule") -> None:
        ordered = sorted(((_ms(start), table) for start, table in versions), key=lambda v: v[0])
        if not ordered:
            raise TierError(f"{label}: expected at least one tier-table version, found none")
        starts = [start for start, _ in ordered]
        duplicates = sorted({s for s in starts if starts.count(s) > 1})
        if duplicates:
            raise TierError(
                f"{label}: two tables take effect at the same instant "
                f"{', '.join(_iso(s) for s in duplicates)}; keep one version per effective_from"
            )
        self.label = label
        self.versions: tuple[tuple[int, TierTable], ...] = tuple(ordered)
        self._starts = starts

    def __repr__(self) -> str:
        return f"TierSchedule({self.label!r}, {len(self.versions)} versions from {_iso(self._starts[0])})"

    @property
    def first_effective_ms(self) -> int:
        """``effective_from`` of the earliest version, UTC ms."""
        return self._starts[0]

    def at(self, ts_ms: int | datetime, *, allow_before_first: bool = False) -> TierTable:
        """Return the table in force at ``ts_ms`` (the latest version with start <= ts).

        Parameters
        ----------
        ts_ms : int or datetime
            UTC milliseconds since the epoch (or an aware datetime).
        allow_before_first : bool
            Before the earliest known version, return that version instead of raising. A
            caller that sets this should record a data-quality warning: the venue's table at
            that time is unknown.

        Raises
        ------
        TierError
            When ``ts_ms`` is before the first version and ``allow_before_first`` is False.
        """
        ts = _ms(ts_ms)
        index = bisect.bisect_right(self._starts, ts) - 1
        if index < 0:
            if allow_before_first:
                return self.versions[0][1]
            raise TierError(
                f"{self.label}: no tier table is known at {_iso(ts)}; the earliest version takes "
                f"effect {_iso(self._starts[0])}. Import an older tiers snapshot with "
                "`margincall data import` (risk_tiers), or start the run later"
            )
        return self.versions[index][1]

    def effective_from_at(self, ts_ms: int | datetime) -> int:
        """``effective_from`` (UTC ms) of the version :meth:`at` returns for ``ts_ms``."""
        ts = _ms(ts_ms)
        index = max(0, bisect.bisect_right(self._starts, ts) - 1)
        return self._starts[index]

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, *, exchange: str | None = None,
                   symbol: str | None = None, basis: str = NOTIONAL) -> TierSchedule:
        """Build a schedule from a canonical ``risk_tiers`` frame (docs/CONTRACTS.md §3).

        Parameters
        ----------
        frame : polars.DataFrame
            Columns ``exchange, symbol, effective_from, tier, notional_floor, notional_cap,
            max_leverage, maint_margin_rate, maint_amount``; ``effective_from`` either a
            datetime column or int64 UTC ms.
        exchange, symbol : str, optional
            Select one market when the frame holds several; required if it does.
        basis : str
            What ``notional_floor``/``notional_cap`` count (:data:`TIER_BASES`): the stored
            rows carry no unit, the exchange's (``data_loaders.ccxt_tiers.tier_bound_unit``).
        """
        return cls.from_rows(frame.to_dicts(), exchange=exchange, symbol=symbol, basis=basis)

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]], *, exchange: str | None = None,
                  symbol: str | None = None, basis: str = NOTIONAL) -> TierSchedule:
        """Build a schedule from ``risk_tiers`` rows given as dicts (see :meth:`from_frame`)."""
        selected = [
            row for row in rows
            if (exchange is None or row["exchange"] == exchange)
            and (symbol is None or row["symbol"] == symbol)
        ]
        markets = sorted({(row["exchange"], row["symbol"]) for row in selected})
        if not selected:
            found = sorted({(row.get("exchange"), row.get("symbol")) for row in rows})
            raise TierError(
                f"risk_tiers: no rows for exchange={exchange!r} symbol={symbol!r}; found {found}"
            )
        if len(markets) > 1:
            raise TierError(
                f"risk_tiers: rows of several markets {markets}; pass exchange= and symbol="
            )
        label = f"{markets[0][0]} {markets[0][1]}"
        by_start: dict[int, list[dict[str, Any]]] = {}
        for row in selected:
            by_start.setdefault(_ms(row["effective_from"]), []).append(row)
        versions = []
        for start, group in by_start.items():
            group.sort(key=lambda r: int(r["tier"]))
            problem = tier_numbers_problem([int(r["tier"]) for r in group], f"{label} {_iso(start)}")
            if problem is not None:
                raise TierError(problem)
            tiers = [
                Tier(
                    floor=float(r["notional_floor"]),
                    cap=math.inf if r["notional_cap"] is None else float(r["notional_cap"]),
                    max_leverage=float(r["max_leverage"]),
                    mmr=float(r["maint_margin_rate"]),
                    cum=float(r["maint_amount"]),
                )
                for r in group
            ]
            versions.append((start, TierTable(tiers, label=f"{label} {_iso(start)}", basis=basis)))
        return cls(versions, label=label)

    def to_rows(self, *, exchange: str, symbol: str) -> list[dict[str, Any]]:
        """All versions as canonical ``risk_tiers`` rows (``effective_from`` as aware datetime)."""
        rows = []
        for start, table in self.versions:
            when = datetime.fromtimestamp(start / 1000, tz=timezone.utc)
            for row in table.to_rows():
                rows.append({"exchange": exchange, "symbol": symbol, "effective_from": when, **row})
        return rows
