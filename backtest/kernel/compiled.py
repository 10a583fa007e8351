"""The engine's pure float helpers, compiled for the kernel (one definition of each).

``numba.njit`` of the very functions the event path calls: ``backtest.intrabar._crossing``,
``backtest.ticks.high_first`` / ``tick_times`` and the venue's one-leg liquidation price
(``backtest.venues.binance_usdm._liquidation_price_one_leg``, its ``one_leg_liquidation_price``),
the takeover settlement (``backtest.settlement.takeover_settlement``), the venue's
maintenance margin, bankruptcy price and funding payment (``binance_usdm._maintenance_margin``,
``_bankruptcy_price``, ``_funding_payment``) and the linear contract's PnL, notional, average entry and
price-move value (``contracts.linear_pnl``, ``linear_notional``, ``linear_average_entry``,
``linear_price_move_value``);
plus the margin model's bracket lookup and one-leg solve (``TierTable.index_for``,
``MarginModel._solve_one`` and the venue's resolver for one leg). Without numba they stay
plain Python (the kernel is then not used: ``backtest.kernel.have_numba``).
"""
from __future__ import annotations

import math

import numpy as np

try:  # numba is a core dependency; without it the Python array path runs instead
    import numba
except ImportError:  # pragma: no cover - exercised by the fallback tests through HAVE_NUMBA
    numba = None

from backtest.intrabar import _crossing
from backtest.settlement import takeover_settlement
from backtest.ticks import high_first as _high_first, tick_times as _tick_times
from backtest.contracts import (
    LinearContract, linear_average_entry, linear_notional, linear_pnl, linear_price_move_value)
from backtest.venues.base import get_venue

#: The venue's one-leg liquidation price of a linear contract (its ``PoolFormulas.one_leg``):
#: the kernel implements ``binance_usdm`` (``backtest.kernel.kernel_scope``) and asks the venue.
_liquidation_price_one_leg = get_venue("binance_usdm").formulas(LinearContract("USDT", 1.0)).one_leg
#: The venue's positional money formulas (``Venue.positional_formulas``: the definitions its
#: keyword-only ``maintenance_margin``, ``bankruptcy_price`` and ``funding_payment`` wrap).
_POSITIONAL = get_venue("binance_usdm").positional_formulas
_maintenance_margin = _POSITIONAL["maintenance_margin"]
_bankruptcy_price = _POSITIONAL["bankruptcy_price"]
_funding_payment = _POSITIONAL["funding_payment"]

#: The engine's pure functions the kernel compiles as they are: their source files are part
#: of the compile-cache digest (:func:`_cache_dir`), so a change to any of them recompiles.
_ENGINE_FUNCTIONS = (_crossing, _high_first, _tick_times, _liquidation_price_one_leg, takeover_settlement,
                     _maintenance_margin, _bankruptcy_price, _funding_payment, linear_pnl,
                     linear_notional, linear_average_entry, linear_price_move_value)

__all__ = ["HAVE_NUMBA", "average_entry", "bankruptcy", "crossing", "funding", "high_first", "lp_one",
           "maintenance", "move_value", "notional_of", "one_leg", "pnl", "settlement", "tick_times",
           "tier_index"]

#: True when numba compiled the loop (False: the functions below are plain Python).
HAVE_NUMBA = numba is not None


def _cache_dir() -> str:
    """Where numba caches the kernel's machine code: a folder named by a digest of every source
    the compiled code comes from (this package and the engine modules of its helpers).

    numba checks only the stamp of a function's own file, so a changed callee in another
    file (``book.py`` inlined into ``core.loop``, or ``backtest/intrabar.py``) would leave
    stale code in its cache; a new digest is a new, empty folder instead. Under
    ``NUMBA_CACHE_DIR`` when set, else the user's cache folder.
    """
    import hashlib
    import inspect
    import os
    from pathlib import Path

    here = Path(__file__).parent  # the modules holding compiled code (not the Python glue)
    files = [here / f"{name}.py" for name in ("bars", "book", "compiled", "core", "layout", "walk")]
    files += [Path(inspect.getsourcefile(f)) for f in _ENGINE_FUNCTIONS]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    base = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "margincall", "numba")
    return os.path.join(base, f"kernel-{digest.hexdigest()[:16]}")


_CACHE_DIR = _cache_dir() if numba is not None else None


def _compile(function, **options):  # noqa: ANN001, ANN003, ANN202
    """``numba.njit(cache=True, ...)`` with the cache under :data:`_CACHE_DIR` (numba reads
    its cache folder when a function is decorated)."""
    if numba is None:
        return function
    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = _CACHE_DIR
    try:
        return numba.njit(cache=True, fastmath=False, error_model="python", **options)(function)
    finally:
        numba.config.CACHE_DIR = saved


def _jit(function):  # noqa: ANN001, ANN202
    """``numba.njit(cache=True)`` (compiled code cached on disk per machine), no fastmath."""
    return _compile(function)


def _inline(function):  # noqa: ANN001, ANN202
    """:func:`_jit` inlined into its callers (numba IR inlining): the kernel's parts share
    the state and table arrays, which a real call would pass (and reference-count) anew."""
    return _compile(function, inline="always")


# The engine's own pure float helpers, compiled as they are (one definition each).
crossing = _jit(_crossing)
high_first = _jit(_high_first)
tick_times = _jit(_tick_times)
one_leg = _jit(_liquidation_price_one_leg)
settlement = _jit(takeover_settlement)
maintenance = _jit(_maintenance_margin)
bankruptcy = _jit(_bankruptcy_price)
funding = _jit(_funding_payment)
pnl = _jit(linear_pnl)
notional_of = _jit(linear_notional)
average_entry = _jit(linear_average_entry)
move_value = _jit(linear_price_move_value)


@_jit
def lp_one(margin, qty, entry, floors, mmr, cum):
    """The isolated position's liquidation price (``MarginModel.refresh``: ``_solve_one``,
    then the venue's bracket resolver ``binance_usdm.resolve_liquidation`` for one leg);
    ``(price, True)``, or ``(nan, False)`` where the Python path must decide (an invalid leg,
    a resolver that cycles: its exhaustive search)."""
    side = 1 if qty > 0 else -1
    size = abs(qty)
    if not (size >= 0 and entry > 0):
        return math.nan, False
    price = one_leg(margin, side, size, entry, mmr[0], cum[0], 0.0, 0.0)
    if floors.size == 1:
        return price, True
    at = 0.0 if price != price else max(price, 0.0)
    at_notional = abs(size) * at if at > 0.0 else 0.0
    if tier_index(floors, at_notional) == 0:
        return price, True
    # resolve_liquidation: re-solve with the bracket of the notional at the price until the
    # bracket (its mmr and cum: Leg equality) no longer changes; a repeated bracket -> bail
    k_mmr, k_cum = mmr[0], cum[0]
    seen = np.zeros(floors.size, dtype=np.bool_)
    for _ in range(floors.size + 2):
        price = one_leg(margin, side, size, entry, k_mmr, k_cum, 0.0, 0.0)
        k = tier_index(floors, size * max(price, 0.0) if not math.isnan(price) else 0.0)
        if mmr[k] == k_mmr and cum[k] == k_cum:
            return price, True
        if seen[k]:
            break
        seen[k] = True
        k_mmr, k_cum = mmr[k], cum[k]
    return math.nan, False


@_jit
def tier_index(floors, notional):
    # TierTable.index_for: bisect_right(floors, |N|) - 1, at least 0
    value = abs(notional)
    k = np.searchsorted(floors, value, side="right") - 1
    return k if k > 0 else 0
