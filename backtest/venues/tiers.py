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
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from backtest.errors import utc_text
from backtest.venues.errors import TierError
from data_loaders.tier_rules import CUM_ABS_TOL, CUM_REL_TOL, maintenance_amounts, table_problem, tier_numbers_problem

if TYPE_CHECKING:  # polars is only needed by the frame constructors
    import polars as pl

__all__ = [
    "Tier",
    "TierError",
    "TierSchedule",
    "TierTable",
    "maintenance_amounts",
    "progressive_sum",
]



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
    """

    __slots__ = ("_caps", "_floors", "label", "tiers")

    def __init__(self, tiers: Sequence[Tier], *, label: str = "tier table") -> None:
        self.label = label
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
        return cls(tiers, label=label)

    def __len__(self) -> int:
        return len(self.tiers)

    def __iter__(self):  # noqa: ANN204 - iterator of Tier
        return iter(self.tiers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TierTable) and self.tiers == other.tiers

    def __hash__(self) -> int:
        return hash(self.tiers)

    def __repr__(self) -> str:
        return f"TierTable({self.label!r}, {len(self.tiers)} tiers)"

    @property
    def max_notional(self) -> float:
        """Cap of the last tier (``inf`` when unbounded), in the notional's unit."""
        return self.tiers[-1].cap

    def index_for(self, notional: float) -> int:
        """Return the 0-based index of the bracket containing ``abs(notional)``.

        A notional equal to a floor belongs to the upper bracket. A notional at or beyond the
        last cap maps to the last bracket: the venue refuses to *open* such a size (see
        :meth:`max_leverage_for`), but the maintenance formula of the last bracket still
        applies to what is held.
        """
        value = abs(notional)
        if math.isnan(value):
            raise TierError(f"{self.label}: notional is NaN; expected a finite number")
        return max(0, bisect.bisect_right(self._floors, value) - 1)

    def for_notional(self, notional: float) -> Tier:
        """Return the bracket for ``abs(notional)`` (see :meth:`index_for`)."""
        return self.tiers[self.index_for(notional)]

    def max_leverage_for(self, notional: float) -> float:
        """Largest leverage allowed for a position of this notional.

        Raises
        ------
        TierError
            When the notional is at or above the last cap (the venue rejects such a size).
        """
        if abs(notional) >= self.max_notional:
            raise TierError(
                f"{self.label}: notional {abs(notional):,.2f} is at or above the largest "
                f"bracket cap {self.max_notional:,.2f}; expected a smaller position"
            )
        return self.for_notional(notional).max_leverage

    def maintenance_margin(self, notional: float) -> float:
        """Maintenance margin ``|N| * mmr_k - cum_k`` with the bracket of ``N``."""
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
                   symbol: str | None = None) -> TierSchedule:
        """Build a schedule from a canonical ``risk_tiers`` frame (docs/CONTRACTS.md §3).

        Parameters
        ----------
        frame : polars.DataFrame
            Columns ``exchange, symbol, effective_from, tier, notional_floor, notional_cap,
            max_leverage, maint_margin_rate, maint_amount``; ``effective_from`` either a
            datetime column or int64 UTC ms.
        exchange, symbol : str, optional
            Select one market when the frame holds several; required if it does.
        """
        return cls.from_rows(frame.to_dicts(), exchange=exchange, symbol=symbol)

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]], *, exchange: str | None = None,
                  symbol: str | None = None) -> TierSchedule:
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
            versions.append((start, TierTable(tiers, label=f"{label} {_iso(start)}")))
        return cls(versions, label=label)

    def to_rows(self, *, exchange: str, symbol: str) -> list[dict[str, Any]]:
        """All versions as canonical ``risk_tiers`` rows (``effective_from`` as aware datetime)."""
        rows = []
        for start, table in self.versions:
            when = datetime.fromtimestamp(start / 1000, tz=timezone.utc)
            for row in table.to_rows():
                rows.append({"exchange": exchange, "symbol": symbol, "effective_from": when, **row})
        return rows
