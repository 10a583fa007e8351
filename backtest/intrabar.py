"""The intrabar walk: ticks of a bar (or of its detail candles) in time order, with events.

Within a candle the path is piecewise linear between its four ticks (backtest.ticks). In each
segment the walker finds the earliest event and handles it, then looks again from there:

1. a funding settlement whose timestamp falls in the segment;
2. a resting order whose trigger the *last* price crosses (fills at the crossing point; a
   gap at the open fills at the open);
3. a margin pool whose liquidation threshold the *mark* price crosses (the trigger).

A triggered pool is frozen (its orders cancelled) and the venue's liquidation engine takes it
over at once: its forced order fills at the path's *last* price at the trigger time plus the
configured latency (``RunConfig.liquidation_latency_ms``, default 1,000 ms: Binance's engine
acts on the mark update that breaches, not minutes later), read on the same linear path the
ticks use (on a trade path: the latest trade at that time), then the slippage model. A fill
time past the walked candle's last tick is held at that tick (the next candle is not walked
yet). A breach already present at a candle's open (a gap, or a funding settlement that
empties the pool) triggers at the open. Ties at one instant: funding, then orders, then
liquidation triggers; a funding settlement is followed by the liquidation check at its instant.

A trailing stop (``trail=``) keeps its trigger fixed while a candle is walked and ratchets
after it: to ``best x (1 - trail)`` for a long, where ``best`` is the highest last price
since the entry, folding in the walked candle's high (its close for the candle in which the
stop was placed: the high may have come before the fill). The stop is checked before the
ratchet, the conservative reading of a candle, which cannot tell whether its high came
before its low; a close below the ratcheted trigger exits at the next candle's open (a gap).
Shorts mirror it with the low.
"""
from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np

from backtest.broker import Broker
from backtest.funding import FundingSchedule
from backtest.liquidation import Liquidator, Trigger
from backtest.orders import Order
from backtest.state import RunState
from backtest.ticks import high_first, tick_times, trade_path

__all__ = ["IntrabarWalker"]


def _crossing(a: float, b: float, x: float, below: bool, f0: float) -> float | None:
    """First fraction >= f0 where the segment a->b reaches x from above (below=True) or below."""
    value = a + (b - a) * f0
    if below:
        if value <= x:
            return f0
        if b <= x:
            return max(f0, (a - x) / (a - b))
    else:
        if value >= x:
            return f0
        if b >= x:
            return max(f0, (x - a) / (b - a))
    return None


class IntrabarWalker:
    """Walks bars tick by tick for one run (see the module docstring)."""

    def __init__(self, state: RunState, broker: Broker, liquidator: Liquidator,
                 funding: FundingSchedule, *, policy: str, gating: bool) -> None:
        self.st = state
        self.broker = broker
        self.liquidator = liquidator
        self.funding = funding
        self.policy = policy
        self.gating = gating
        #: Milliseconds from a liquidation trigger to its forced fill (RunConfig).
        self.latency = int(state.config.liquidation_latency_ms)
        data = state.data
        self.n = state.n_symbols
        if data.detail is not None:
            from backtest.market_data import timeframe_ms

            self.sources = [data.detail[s] for s in data.symbols]
            self.sub_iv = timeframe_ms(data.detail_timeframe)
            dts = self.sources[0].ts
            self.d_lo = np.searchsorted(dts, data.ts, side="left").tolist()
            self.d_hi = np.searchsorted(dts, data.ts + data.interval_ms, side="left").tolist()
        else:
            self.sources = state.bars
            self.sub_iv = data.interval_ms
            self.d_lo = self.d_hi = None
        self.pending_funding: list[tuple[int, int, int]] = []
        self._gate = None  # the gate over the walked candles, built on first use
        self._discrete = False
        self.t_lo = self.t_hi = None
        if data.trades:
            trades = data.trades[data.symbols[0]]
            self.t_ts = trades.ts.tolist()
            self.t_price = trades.price.tolist()
            self.t_lo = np.searchsorted(trades.ts, data.ts, side="left").tolist()
            self.t_hi = np.searchsorted(trades.ts, data.ts + data.interval_ms, side="left").tolist()

    # ------------------------------------------------------------------ bar level
    def walk(self, i: int) -> None:
        """Walk strategy bar ``i`` (its own candle, or its detail candles)."""
        self.pending_funding = list(self.funding.inside.get(i, ()))
        if self.t_lo is not None and self._trade_path(i):
            pass
        elif self.d_lo is None:
            self._candle(i)
        else:
            for j in range(self.d_lo[i], self.d_hi[i]):
                if self.gating and not self._funding_before(int(self.sources[0].ts[j]) + self.sub_iv) \
                        and not self.hits(j):
                    continue
                self._candle(j)
        if self.pending_funding:  # settlements after the last detail candle of a gappy bar
            self._fund_until(math.inf)

    def _funding_before(self, t: int) -> bool:
        return bool(self.pending_funding) and self.pending_funding[0][0] < t

    def hits(self, j: int) -> bool:
        """True when a threshold lies inside candle ``j``'s ranges (the run's one gate test,
        ``backtest.gate.Gate.hit``, over the walked candles)."""
        gate = self._gate
        if gate is None:
            from backtest.gate import Gate

            gate = self._gate = Gate(self.st, [(b.mark_low, b.mark_high, b.low, b.high)
                                               for b in self.sources])
        return gate.hit(j)

    def _fund_until(self, t: float) -> None:
        st = self.st
        while self.pending_funding and self.pending_funding[0][0] <= t:
            ts, sym, k = self.pending_funding.pop(0)
            st.now = ts
            if self.funding.settle(sym, k):
                st.refresh()

    # ------------------------------------------------------------------ candle level
    def _candle(self, j: int) -> None:
        """Walk candle ``j`` of the path source as four ticks (policy-ordered extremes)."""
        acct = self.st.account
        ts = int(self.sources[0].ts[j])
        times = tick_times(ts, self.sub_iv)
        lasts, marks, highs, lows, vols = [], [], [], [], []
        for s, b in enumerate(self.sources):
            o, h, lo, c = float(b.open[j]), float(b.high[j]), float(b.low[j]), float(b.close[j])
            mo, mh, ml, mc = (float(b.mark_open[j]), float(b.mark_high[j]), float(b.mark_low[j]),
                              float(b.mark_close[j]))
            net = acct.net_qty(s)
            if high_first(self.policy, o, h, lo, (net > 0) - (net < 0)):
                lasts.append((o, h, lo, c))
                marks.append((mo, mh, ml, mc))
            else:
                lasts.append((o, lo, h, c))
                marks.append((mo, ml, mh, mc))
            highs.append(h)
            lows.append(lo)
            vols.append(float(b.volume[j]))
        self._walk_path(lasts, marks, times, highs, lows, vols, discrete=False)

    def _trade_path(self, i: int) -> bool:
        """Walk strategy bar ``i`` on its trade ticks; False when it has none.

        The merged stream comes from :func:`backtest.ticks.trade_path`. Stops fill at the
        trade that crosses them; a forced order at the next tick of the stream.
        """
        lo, hi = self.t_lo[i], self.t_hi[i]
        if hi <= lo:
            return False
        b = self.sources[0]
        marks4 = (float(b.mark_open[i]), float(b.mark_high[i]), float(b.mark_low[i]),
                  float(b.mark_close[i]))
        times, lasts, marks = trade_path(int(b.ts[i]), self.sub_iv, float(b.open[i]), marks4,
                                         self.t_ts[lo:hi], self.t_price[lo:hi])
        self._walk_path([lasts], [marks], times, [float(b.high[i])], [float(b.low[i])],
                        [float(b.volume[i])], discrete=True)
        return True

    def _walk_path(self, lasts: list, marks: list, times: list | tuple, highs: list, lows: list,
                   vols: list, *, discrete: bool) -> None:
        """Walk a path of ticks (per symbol lists of last and mark, shared times)."""
        st = self.st
        self._discrete = discrete
        self._set_point(lasts, marks, 0, 1.0, times[0])
        self._fund_until(times[0])
        self._gap_orders(lasts, highs, lows, vols)
        triggered: list[Trigger] = []
        if len(times) >= 2:
            self._events(lasts, marks, 1, 0.0, times, triggered, highs, lows, vols, at_open=True)
        for k in range(1, len(times)):
            self._events(lasts, marks, k, 0.0, times, triggered, highs, lows, vols)
            self._set_point(lasts, marks, k, 1.0, times[k])
            if triggered:  # a pool taken over in this segment is checked again from the next
                triggered.clear()
                st.refresh()
        if st.book.protected:
            self._ratchet(lasts, times[0], highs, lows)

    def _ratchet(self, lasts: list, opened: float, highs: list, lows: list) -> None:
        """Move the trailing stops after a walked candle (the module docstring's convention)."""
        for s in range(self.n):
            for order in self.st.book.resting[s]:
                if order.trail == order.trail:
                    if order.ts_created > opened:  # placed inside this candle: its close only
                        order.ratchet(lasts[s][-1])
                    else:
                        order.ratchet(highs[s] if order.side < 0 else lows[s])

    def _lasts_at(self, lasts: list, times: list | tuple, t: float) -> list[float]:
        """Each symbol's last price at time ``t`` on the walked path (held at its last tick).

        Linear between ticks, as :meth:`_set_point`; on a trade path (discrete) the latest
        trade at or before ``t``.
        """
        if t >= times[-1]:
            return [path[-1] for path in lasts]
        k = bisect_right(times, t)  # times[k - 1] <= t < times[k]
        if k == 0:
            return [path[0] for path in lasts]
        if self._discrete:
            return [path[k - 1] for path in lasts]
        ta, tb = times[k - 1], times[k]
        f = (t - ta) / (tb - ta)
        return [path[k - 1] + (path[k] - path[k - 1]) * f for path in lasts]

    def _take_over(self, trig: Trigger, lasts: list, times: list | tuple, highs: list,
                   lows: list, vols: list) -> None:
        """The liquidation engine's fill of a triggered pool: trigger time plus latency."""
        st = self.st
        fill_ts = min(trig.ts + self.latency, times[-1])
        refs = self._lasts_at(lasts, times, fill_ts)
        now = st.now
        st.now = int(fill_ts)
        self.liquidator.execute(trig, refs, highs, lows, vols)
        st.now = now
        st.refresh()

    def _set_point(self, lasts: list, marks: list, k: int, f: float, t: float) -> None:
        """Current prices := the path at fraction f of the segment ending at tick k.

        ``f <= 0`` is tick ``k - 1`` exactly, ``f >= 1`` tick ``k`` exactly (no rounding).
        """
        st = self.st
        for s in range(self.n):
            if f >= 1.0 or k == 0:
                st.lasts[s] = lasts[s][k]
                st.marks[s] = marks[s][k]
            elif f <= 0.0:
                st.lasts[s] = lasts[s][k - 1]
                st.marks[s] = marks[s][k - 1]
            else:
                la, lb = lasts[s][k - 1], lasts[s][k]
                ma, mb = marks[s][k - 1], marks[s][k]
                st.lasts[s] = la + (lb - la) * f
                st.marks[s] = ma + (mb - ma) * f
        st.now = int(t)

    def _gap_orders(self, lasts: list, highs: list, lows: list, vols: list) -> None:
        """Resting orders already through their trigger at the open fill at the open."""
        st = self.st
        for s in range(self.n):
            open_ = lasts[s][0]
            for order in list(st.book.resting[s]):
                if (open_ <= order.trigger) if order.trigger_below else (open_ >= order.trigger):
                    # a limit placed at this very instant and already marketable takes liquidity;
                    # one that rested before the gap is filled as maker
                    fresh = order.ts_created >= st.now
                    liquidity = "maker" if order.type == "limit" and not fresh else "taker"
                    self._fill_resting(order, open_, liquidity, highs[s], lows[s], vols[s])

    def _fill_resting(self, order: Order, price: float, liquidity: str, high: float, low: float,
                      vol: float) -> None:
        st = self.st
        st.book.remove(order)
        self.broker.execute(order, price, liquidity, high, low, vol)
        st.refresh()

    def _events(self, lasts: list, marks: list, k: int, f: float, times: tuple, triggered: list,
                highs: list, lows: list, vols: list, at_open: bool = False) -> None:
        """Handle the events of segment k-1 -> k from fraction f (or the open point only)."""
        st = self.st
        ta, tb = times[k - 1], times[k]
        while True:
            best = None  # (fraction, priority, kind, payload)
            if not at_open and self.pending_funding and self.pending_funding[0][0] <= tb:
                ft = self.pending_funding[0][0]
                best = (max(f, (ft - ta) / (tb - ta)) if tb > ta else f, 0, "funding", None)
            if not at_open:
                for s in range(self.n):
                    la, lb = lasts[s][k - 1], lasts[s][k]
                    for order in st.book.resting[s]:
                        x = _crossing(la, lb, order.trigger, order.trigger_below, f)
                        if x is not None and (best is None or (x, 1) < best[:2]):
                            best = (x, 1, "order", order)
            pool = self._first_breach(marks, k, 0.0 if at_open else f, triggered, at_open)
            if pool is not None and (best is None or (pool[0], 2) < best[:2]):
                best = (pool[0], 2, "pool", pool[1])
            if best is None:
                return
            f = best[0]
            if at_open:
                self._set_point(lasts, marks, 0, 1.0, ta)
            else:
                self._set_point(lasts, marks, k, f, ta + (tb - ta) * f)
            kind = best[2]
            if kind == "funding":
                self._fund_until(self.pending_funding[0][0])
            elif kind == "order":
                order = best[3]
                s = order.sym
                liquidity = "maker" if order.type == "limit" else "taker"
                price = order.trigger
                if self._discrete and order.type != "limit":
                    # trade ticks: a stop fills at the trade that crossed it (time moves there)
                    self._set_point(lasts, marks, k, 1.0, tb)
                    price = lasts[s][k]
                    f = 1.0
                self._fill_resting(order, price, liquidity, highs[s], lows[s], vols[s])
            else:
                trig = self.liquidator.trigger(best[3], st.now, st.marks, st.lasts)
                triggered.append(trig)
                self._take_over(trig, lasts, times, highs, lows, vols)

    def _first_breach(self, marks: list, k: int, f: float, triggered: list,
                      at_open: bool) -> tuple[float, list] | None:
        """Earliest pool breach in the segment from f (or at the open point when at_open)."""
        st = self.st
        frozen = {id(p) for trig in triggered for p in trig.positions}
        best = None
        cross: list = []
        for pos in st.account.positions:
            if pos.qty == 0.0 or id(pos) in frozen:
                continue
            if pos.margin_mode == "cross":
                cross.append(pos)
                continue
            x = self._lp_cross(marks[pos.sym], k, f, pos.liquidation_price, pos.qty > 0, at_open)
            if x is not None and (best is None or x < best[0]):
                best = (x, [pos])
        if cross:
            if st.margin.cross_multi:
                x = self._gap_cross(marks, k, f, cross, at_open)
            else:
                net = sum(p.qty for p in cross)
                x = self._lp_cross(marks[cross[0].sym], k, f, cross[0].liquidation_price, net > 0,
                                   at_open)
            if x is not None and (best is None or x < best[0]):
                best = (x, cross)
        return best

    @staticmethod
    def _lp_cross(path: tuple, k: int, f: float, lp: float, long: bool, at_open: bool) -> float | None:
        if lp != lp:
            return None
        if long and lp <= 0:
            return None
        if at_open:
            m = path[0]
            return 0.0 if (m <= lp if long else m >= lp) else None
        return _crossing(path[k - 1], path[k], lp, long, f)

    def _gap_cross(self, marks: list, k: int, f: float, cross: list, at_open: bool) -> float | None:
        st = self.st

        def gap(frac: float, kk: int = k) -> float:
            point = [m[kk - 1] + (m[kk] - m[kk - 1]) * frac for m in marks] if not at_open \
                else [m[0] for m in marks]
            return st.margin.pool_gap(st.account, cross, point)

        if at_open:
            return 0.0 if gap(0.0) <= 0.0 else None
        if gap(f) <= 0.0:
            return f
        if gap(1.0) > 0.0:
            return None
        lo, hi = f, 1.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if gap(mid) <= 0.0:
                hi = mid
            else:
                lo = mid
        return hi
