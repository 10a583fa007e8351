"""OKX (and Gate) isolated perpetual formulas, pure.

Sources: OKX help (margin ratio, tiers; margin_rules.md §4), freqtrade/freqtrade @
c9ae5e1e9ff25bb55dd61f5e5519f7c479291edb ``freqtrade/exchange/exchange.py``
(``dry_run_liquidation_price``, used for OKX and Gate; Gate documents the same form at
https://www.gate.io/help/futures/futures/27724/liquidation-price-bankruptcy-price) and
``tests/exchange/test_okx.py::test_get_maintenance_ratio_and_amt_okx``.

Units: linear contracts, prices in USDT, ``size`` in base units, ``margin`` in USDT.
"""
from __future__ import annotations

import bisect
from collections.abc import Sequence

from backtest.venues.catalog import VenueInfo

__all__ = ["isolated_liquidation_price", "maintenance_margin", "tier_mmr"]


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


#: Coverage for ``margincall venues``: isolated linear only; tiers are passed in by the caller.
VENUE_INFO = VenueInfo(name="okx", title="OKX (and Gate) USDT perpetuals",
                       modes=(("linear", "isolated"),))
