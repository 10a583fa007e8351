"""Oracle price paths: what a lending protocol sees of a market price.

* Chainlink-style push feeds publish a new answer when the source moved by at least the
  deviation threshold since the last answer, or when the heartbeat elapsed
  (https://docs.chain.link/architecture-overview/deviation-threshold-and-heartbeat; cascades.md
  §7.3 "oracle with update rule and lag").
* Maker's Oracle Security Module (OSM) is poked once per ``hop`` (one hour) and then serves
  the value read at the *previous* poke: the protocol sees prices one to two hours old
  (makerdao/osm ``osm.sol`` ``poke``: ``cur = nxt; nxt = peek()``; margin_rules.md §10).

Times are seconds (any epoch), prices floats; paths are numpy arrays aligned with ``times``.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from backtest.lending.checks import fraction, positive
from backtest.lending.errors import LendingParameterError

__all__ = ["chainlink_path", "osm_path", "should_publish"]


def should_publish(*, last_price: float, last_time: float, price: float, time: float,
                   heartbeat: float, deviation: float) -> bool:
    """True when a push feed publishes ``price`` at ``time``: ``|price - last| / last >=
    deviation`` or ``time - last_time >= heartbeat``. The one definition the offline path and
    the simulation's online oracle share."""
    return (time - last_time >= heartbeat
            or abs(price - last_price) >= deviation * last_price)


def _series(times: ArrayLike, prices: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    t = np.asarray(times, dtype=np.float64)
    p = np.asarray(prices, dtype=np.float64)
    if t.ndim != 1 or t.shape != p.shape or t.size == 0:
        raise LendingParameterError(
            f"oracle path: expected two 1-D arrays of the same non-zero length (times, prices), "
            f"found shapes {t.shape} and {p.shape}")
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
    last_price, last_time = p[0], t[0]
    published[0] = True
    for i in range(p.size):  # sequential by nature: each update depends on the last answer
        if i and should_publish(last_price=last_price, last_time=last_time, price=p[i],
                                time=t[i], heartbeat=beat, deviation=dev):
            last_price, last_time = p[i], t[i]
            published[i] = True
        answers[i] = last_price
    return answers, published


def osm_path(times: ArrayLike, prices: ArrayLike, *, hop: float = 3600.0) -> NDArray[np.float64]:
    """The price Maker's OSM serves at each time: the source value read at the previous poke.

    Pokes happen at ``t0 + k * hop``; between pokes ``k`` and ``k + 1`` the OSM serves the
    value read at poke ``k - 1`` (for ``k = 0``, the first observation). The value read at a
    poke is the last source observation at or before it.
    """
    t, p = _series(times, prices)
    hop = positive("hop", hop)
    poke = np.floor((t - t[0]) / hop)
    read_at = t[0] + np.maximum(poke - 1, 0) * hop
    index = np.searchsorted(t, read_at, side="right") - 1
    return p[index]
