"""Oracle price paths: what a lending protocol sees of a market price.

* Chainlink-style push feeds publish a new answer when the source moved by at least the
  deviation threshold since the last answer, or when the heartbeat elapsed
  (https://docs.chain.link/architecture-overview/deviation-threshold-and-heartbeat; cascades.md
  §7.3 "oracle with update rule and lag").
* Maker's Oracle Security Module (OSM) is poked once per ``hop`` (one hour) and then serves
  the value read at the *previous* poke: the protocol sees prices one to two hours old
  (makerdao/osm ``osm.sol`` ``poke``: ``cur = nxt; nxt = peek()``; margin_rules.md §10).

Times are seconds (any epoch), prices floats; paths are numpy arrays aligned with ``times``
(one path, or several as the rows of a 2-D array: the Monte Carlo of
:func:`backtest.lending.position.oracle_passages`).
"""
from __future__ import annotations

import numpy as np
from typing import Any

from numpy.typing import ArrayLike, NDArray

from backtest.lending.checks import fraction, positive
from backtest.lending.errors import LendingParameterError

__all__ = ["chainlink_path", "osm_index", "osm_path", "should_publish"]


def should_publish(*, last_price: Any, last_time: Any, price: Any, time: Any,
                   heartbeat: float, deviation: float) -> Any:
    """True when a push feed publishes ``price`` at ``time``: ``|price - last| / last >=
    deviation`` or ``time - last_time >= heartbeat``. The one definition the offline path, the
    simulation's online oracle and the Monte Carlo paths share (scalars give a bool, arrays an
    element-wise boolean array)."""
    return (time - last_time >= heartbeat) | (abs(price - last_price) >= deviation * last_price)


def _series(times: ArrayLike, prices: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t = np.asarray(times, dtype=np.float64)
    p = np.asarray(prices, dtype=np.float64)
    if t.ndim != 1 or p.ndim not in (1, 2) or p.shape[-1:] != t.shape or t.size == 0:
        raise LendingParameterError(
            f"oracle path: expected 1-D times and prices of the same non-zero length (or prices "
            f"as rows of paths), found shapes {t.shape} and {p.shape}")
    if not (np.all(np.isfinite(p)) and np.all(p > 0)):
        raise LendingParameterError("oracle path: source prices must be finite and > 0; drop or "
                                    "fill the bad rows first")
    if np.any(np.diff(t) <= 0):
        raise LendingParameterError("oracle path: times must be strictly increasing; sort and "
                                    "de-duplicate the source first")
    return t, p


def chainlink_path(times: ArrayLike, prices: ArrayLike, *, heartbeat: float,
                   deviation: float) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The answer a push feed shows at each time, and where it published.

    Parameters
    ----------
    times, prices : array
        Source observations (seconds, price), strictly increasing times.
    heartbeat : float
        Seconds after which the feed publishes even without a move (e.g. 3600).
    deviation : float
        Relative move that triggers an update (0.005 = 0.5 %).

    Returns
    -------
    (answers, published) : arrays aligned with ``times``; the first observation publishes.
    """
    t, p = _series(times, prices)
    beat, dev = positive("heartbeat", heartbeat, allow_inf=True), fraction("deviation", deviation)
    answers = np.empty_like(p)
    published = np.zeros(p.shape, dtype=bool)
    # one column per observation; several paths (rows) are stepped together
    last_price, last_time = p[..., 0].copy(), np.full(p.shape[:-1], t[0])
    published[..., 0] = True
    answers[..., 0] = last_price
    for i in range(1, t.size):  # sequential by nature: each update depends on the last answer
        go = should_publish(last_price=last_price, last_time=last_time, price=p[..., i],
                            time=t[i], heartbeat=beat, deviation=dev)
        last_price = np.where(go, p[..., i], last_price)
        last_time = np.where(go, t[i], last_time)
        published[..., i] = go
        answers[..., i] = last_price
    return answers, published


def osm_path(times: ArrayLike, prices: ArrayLike, *, hop: float = 3600.0) -> NDArray[np.float64]:
    """The price Maker's OSM serves at each time: the source value read at the previous poke.

    Pokes happen at ``t0 + k * hop``; between pokes ``k`` and ``k + 1`` the OSM serves the
    value read at poke ``k - 1`` (for ``k = 0``, the first observation). The value read at a
    poke is the last source observation at or before it.
    """
    t, p = _series(times, prices)
    return p[..., osm_index(t, hop=hop)]


def osm_index(times: ArrayLike, *, hop: float = 3600.0) -> NDArray[np.int64]:
    """Index of the source observation the OSM serves at each time (:func:`osm_path`'s rule):
    pokes at ``t0 + k * hop``; between pokes ``k`` and ``k + 1`` the value read at poke
    ``k - 1`` (the first observation for ``k = 0``), read as the last observation at or
    before that poke."""
    t = np.asarray(times, dtype=np.float64)
    hop = positive("hop", hop)
    poke = np.floor((t - t[0]) / hop)
    read_at = t[0] + np.maximum(poke - 1, 0) * hop
    return np.searchsorted(t, read_at, side="right") - 1
