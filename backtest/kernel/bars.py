"""Per-bar equity and margin ratio of a kernel run, compiled (what the summary reads).

:class:`backtest.metrics.BarState` expands the journal's snapshots over the bars with NumPy
and values them at each close; for one isolated linear position the two columns the summary
needs are, per bar ``b`` with the snapshot ``s`` in force at its close:

* ``equity = wallet[s] + upnl`` with ``upnl = qty[s] * (mark_close[b] - entry[s])`` (0 flat);
* ``margin_ratio = max(0, mm / (margin[s] + upnl))`` (``inf`` / 0 when the balance is gone,
  0 flat) with ``mm = |qty[s]| * mark_close[b] * mmr_k - cum_k``, ``k`` the bracket of that
  notional (``BarState.mm``, ``BarState.margin_ratio`` and ``metrics._ratio``).

The same float operations in the same order as the NumPy expressions (elementwise IEEE ops),
one pass instead of about twenty; ``tests/engine/test_kernel*.py`` compare the resulting
summary with the event path's.
"""
from __future__ import annotations

import math

import numpy as np

from backtest.kernel.core import _jit

__all__ = ["bar_series"]


@_jit
def bar_series(snap_bar, snap_f, mark_close, floors, mmr, cum, equity, ratio):
    """Fill ``equity`` and ``ratio`` (one entry per bar) from the snapshots (see the module)."""
    n = mark_close.size
    m = snap_bar.size
    s = 0  # the snapshot in force: the last one at or before the bar (the first when none)
    one = floors.size == 1
    for b in range(n):
        while s + 1 < m and snap_bar[s + 1] <= b:
            s += 1
        wallet = snap_f[s, 0]
        qty = snap_f[s, 1]
        if qty == 0.0:
            equity[b] = wallet + 0.0
            ratio[b] = 0.0
            continue
        mark = mark_close[b]
        upnl = qty * (mark - snap_f[s, 2])
        equity[b] = wallet + upnl
        notional = abs(qty) * mark
        if one:
            k = 0
        else:
            k = np.searchsorted(floors, notional, side="right") - 1
            if k < 0:
                k = 0
        mm = abs(notional) * mmr[k] - cum[k]
        balance = snap_f[s, 3] + upnl
        if balance > 0:
            r = mm / balance
        elif mm > 0:
            r = math.inf
        else:
            r = 0.0
        ratio[b] = 0.0 if 0.0 >= r else r  # np.maximum(0.0, r): NaN passes
