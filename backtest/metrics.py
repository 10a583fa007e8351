"""Per-bar equity and positions, expanded from the journal's snapshots; the run summary.

The bar loop records the account only when it changes; here the snapshots are forward-filled
over the bars with NumPy and valued at each bar's close (mark price), so no per-bar Python
work is spent on bookkeeping. Maintenance margin per bar is the venue's
``maintenance_margin(notional, tier)`` evaluated on arrays (the tier columns are looked up
per bar by the table's key, exactly as ``TierTable.for_position`` does).
"""
from __future__ import annotations

import functools
import itertools
from datetime import datetime, timezone
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import polars as pl

__all__ = ["BarState", "summarize"]  # also CHUNK_BARS, bar_chunks (engine internals)

#: Bars per chunk of the loop, the per-bar tables and the summary (about 30 float64
#: columns of 32 Ki bars: ~8 MiB, whatever the run's length).
CHUNK_BARS = 1 << 15

_TS = pl.Datetime("ms", "UTC")


class _TierColumns:
    """Tier fields as arrays, so the venue's scalar formula runs vectorized."""

    def __init__(self, mmr: np.ndarray, cum: np.ndarray) -> None:
        self.mmr = mmr
        self.cum = cum


def iso(ms: int | None) -> str | None:
    """UTC ISO string of epoch milliseconds (None stays None)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


class BarState:
    """The account at every bar close, as arrays (one row per strategy bar).

    Every column is computed on first use and cached (``functools.cached_property``): the
    summary needs only the equity and the margin ratio, so a run whose frames are never
    read (a sweep) never builds the liquidation/bankruptcy prices, leverages, distances or
    the positions table. The values are the same whichever is asked first.

    Parameters
    ----------
    state : RunState
        The finished run.
    start, stop : int, optional
        The bars ``[start, stop)`` it covers (default: every bar); its rows are those bars'.
    snapshots : dict, optional
        A cache of the journal's snapshots as arrays, shared by the chunks of one run.
    """

    def __init__(self, state: Any, start: int = 0, stop: int | None = None,
                 snapshots: dict[str, np.ndarray] | None = None) -> None:
        data = state.data
        journal = state.journal
        total = len(data)
        stop = total if stop is None else stop
        if not 0 <= start <= stop <= total:
            raise ValueError(f"BarState: bar range [{start}, {stop}) outside the run's {total} bars")
        self.start = start
        self.n = stop - start
        self._state = state
        self._data = data
        # The snapshot in force at bar b's close is the last one recorded at or before b (the
        # journal keeps one per bar, in bar order); bars before the first one inside the run
        # take the snapshot taken before the loop (bar -1). A per-bar column is a
        # per-snapshot column taken at these positions, for this range's bars only.
        #: The snapshots as arrays, shared by the chunks of one run (built once, on first use).
        self._snapshots = {} if snapshots is None else snapshots
        snap_bar = self._snapshots.get("bar")
        if snap_bar is None or snap_bar.size != len(journal.snap_bar):
            snap_bar = np.asarray(journal.snap_bar, dtype=np.int64)
            if snap_bar.size > 1 and np.any(np.diff(snap_bar) < 0):
                raise ValueError("BarState: the journal's snapshots are not in bar order")
            self._snapshots["bar"] = snap_bar
        self._pos = _snapshot_index(snap_bar, start, stop)
        self._snap_wallet = journal.snap_wallet
        self._snap_positions = journal.snap_positions
        self.keys = state.account.positions
        self.mark = [b.mark_close[start:stop] for b in state.bars]
        self.last = [b.close[start:stop] for b in state.bars]
        self._ts = data.ts[start:stop]
        self._all_isolated = all(p.margin_mode == "isolated" for p in self.keys)

    def _expand(self, per_snapshot: np.ndarray) -> np.ndarray:
        """Per-bar rows of a per-snapshot array (the snapshot in force at each bar close)."""
        # np.take along the first axis: the rows of per_snapshot[self._pos], without fancy
        # indexing's slower path for 2-D arrays (snapshots x keys)
        return np.take(per_snapshot, self._pos, axis=0)

    # ------------------------------------------------------------------ snapshot columns
    @functools.cached_property
    def close_ts(self) -> np.ndarray:
        """Bar close instants, UTC ms."""
        return self._ts + self._data.interval_ms

    @functools.cached_property
    def _per(self) -> np.ndarray:
        if "positions" not in self._snapshots:
            self._snapshots["positions"] = self._positions_array()
        return self._snapshots["positions"]

    def _positions_array(self) -> np.ndarray:
        snaps = self._snap_positions  # snaps x keys x 7
        if snaps and snaps[0] and len(set(map(len, snaps))) == 1:  # else np.asarray says what is wrong
            shape = (len(snaps), len(snaps[0]), len(snaps[0][0]))
            chain = itertools.chain.from_iterable
            # flat and typed: about twice as fast as converting the nested lists
            flat = np.fromiter(chain(chain(snaps)), np.float64)
            if flat.size == shape[0] * shape[1] * shape[2]:
                return flat.reshape(shape)
        return np.asarray(snaps, dtype=np.float64)

    def _per_snapshot(self, name: str, derive: Any) -> np.ndarray:
        """``derive(snapshots)``, an elementwise function of the per-snapshot array (so taking
        it per snapshot, then spreading over bars, gives the per-bar values), computed once per
        run and shared by its chunks."""
        if name not in self._snapshots:
            self._snapshots[name] = derive(self._per)
        return self._snapshots[name]

    def _field(self, j: int) -> np.ndarray:
        return self._expand(self._per[:, :, j]).T  # keys x bars

    @functools.cached_property
    def wallet(self) -> np.ndarray:
        """Wallet balance per bar, USDT."""
        if "wallet" not in self._snapshots:
            self._snapshots["wallet"] = np.asarray(self._snap_wallet, dtype=np.float64)
        return self._expand(self._snapshots["wallet"])

    qty = functools.cached_property(lambda self: self._field(1))
    qty.__doc__ = "Signed quantity per position key and bar (keys x bars)."
    entry = functools.cached_property(lambda self: self._field(2))
    entry.__doc__ = "Entry price per key and bar, USDT."
    margin = functools.cached_property(lambda self: self._field(3))
    margin.__doc__ = "Isolated margin per key and bar, USDT."
    leverage = functools.cached_property(lambda self: self._field(4))
    leverage.__doc__ = "Leverage per key and bar."
    lp = functools.cached_property(lambda self: self._field(5))
    lp.__doc__ = "Liquidation price per key and bar, USDT."
    bp = functools.cached_property(lambda self: self._field(6))
    bp.__doc__ = "Bankruptcy price per key and bar, USDT."

    @functools.cached_property
    def open(self) -> np.ndarray:
        """True where a key holds a position (keys x bars)."""
        return self._expand(self._per_snapshot("open", lambda per: per[:, :, 1] != 0.0)).T

    @functools.cached_property
    def _flat(self) -> np.ndarray:
        """``~open``: True where a key holds no position (keys x bars)."""
        return ~self.open

    def _zero_where_flat(self, k: int, values: np.ndarray) -> np.ndarray:
        """``np.where(open[k], values, 0.0)``, in place in ``values`` (a fresh array)."""
        np.copyto(values, 0.0, where=self._flat[k])
        return values

    # ------------------------------------------------------------------ valuation
    @functools.cached_property
    def upnl(self) -> np.ndarray:
        """Unrealized PnL per key and bar at the close's mark, USDT (0 when flat)."""
        contracts = self._state.contracts
        qty = self.qty
        entry = self._expand(self._per_snapshot("entry", lambda per: np.nan_to_num(per[:, :, 2]))).T
        with np.errstate(divide="ignore", invalid="ignore"):  # inverse 1/entry where flat
            rows = [self._zero_where_flat(k, contracts[pos.sym].unrealized_pnl(
                signed_qty=qty[k], entry_price=entry[k], mark_price=self.mark[pos.sym]))
                for k, pos in enumerate(self.keys)]
        return self._stack(rows, qty)

    @staticmethod
    def _stack(rows: list[np.ndarray], like: np.ndarray) -> np.ndarray:
        """Rows as one keys x bars array laid out as ``like`` (one key: no copy)."""
        if len(rows) == 1 and rows[0].flags.c_contiguous:
            return rows[0][None, :]
        out = np.zeros_like(like)
        for k, row in enumerate(rows):
            out[k] = row
        return out

    @functools.cached_property
    def size(self) -> np.ndarray:
        """Absolute position size per key and bar (base units linear, contracts inverse)."""
        return self._expand(self._per_snapshot("size", lambda per: np.abs(per[:, :, 1]))).T  # = np.abs(qty)

    @functools.cached_property
    def notional(self) -> np.ndarray:
        """Absolute notional per key and bar at the close's mark, USDT."""
        size = self.size
        contracts = self._state.contracts
        return self._stack([contracts[pos.sym].notional(size[k], self.mark[pos.sym])
                            for k, pos in enumerate(self.keys)], size)

    @functools.cached_property
    def mm(self) -> np.ndarray:
        """Maintenance margin per key and bar (venue formula, tier by the table's key), USDT.

        On the entry value where the venue charges it there (``maintenance_at_entry``: Bybit,
        BitMEX), plus the venue's funding term (``MarginModel.funding_reserve``): the same
        basis as the run's liquidation prices.
        """
        notional = self.notional
        rows = [self._zero_where_flat(k, self._key_maintenance(k, pos, notional[k]))
                for k, pos in enumerate(self.keys)]
        return self._stack(rows, notional)

    def _key_maintenance(self, k: int, pos: Any, notional: np.ndarray) -> np.ndarray:
        state = self._state
        model = state.margin
        if not model.formulas[pos.sym].maintenance_at_entry:
            return self._maintenance(state, pos.sym, notional, self._ts, self.size[k])
        with np.errstate(divide="ignore", invalid="ignore"):  # inverse 1/entry where flat
            at_entry = state.contracts[pos.sym].notional(np.abs(self.qty[k]), self.entry[k])
        at_entry = np.nan_to_num(at_entry)
        mm = self._maintenance(state, pos.sym, at_entry, self._ts, np.abs(self.qty[k]))
        rate = state.venue.funding_maintenance_rate
        if rate is not None:
            # the next settlement not yet paid at each close (one at the close itself is paid
            # at the next bar's open, after this snapshot)
            fund = state.data.funding[state.data.symbols[pos.sym]]
            k_next = np.searchsorted(fund.ts, self.close_ts, side="left")
            rates = np.append(np.asarray(fund.rate, dtype=np.float64), 0.0)
            sides = np.sign(self.qty[k])
            # the venue's scalar rule once per side and settlement in this span (k_next is sorted,
            # so its unique pass is cheap; a 2-D unique over (side, rate) rows cost ~25 ms a chunk)
            settlements, where = np.unique(k_next, return_inverse=True)
            long_term = np.array([rate(1, float(r)) for r in rates[settlements]])[where]
            short_term = np.array([rate(-1, float(r)) for r in rates[settlements]])[where]
            values = np.where(sides > 0, long_term, np.where(sides < 0, short_term, 0.0))
            mm = mm + at_entry * values
        return mm

    @functools.cached_property
    def _iso_mask(self) -> np.ndarray:
        if self._all_isolated:  # True & open is open
            return self.open
        return np.array([p.margin_mode == "isolated" for p in self.keys])[:, None] & self.open

    @functools.cached_property
    def margin_ratio(self) -> np.ndarray:
        """Worst margin ratio (MM / margin balance) over the account's pools per bar."""
        n = self.n
        is_open = self.open
        iso_mask = self._iso_mask
        upnl, mm = self.upnl, self.mm
        with np.errstate(divide="ignore", invalid="ignore"):
            if self._all_isolated:  # no cross pool at any bar
                has_cross = np.zeros(1, dtype=bool)
            else:
                cross_mask = ~iso_mask & is_open
                has_cross = cross_mask.any(axis=0)
            if has_cross.any():
                cross_balance = (self.wallet - np.where(iso_mask, self.margin, 0.0).sum(axis=0)
                                 + np.where(cross_mask, upnl, 0.0).sum(axis=0))
                if self.collateral is not None:
                    cross_balance = cross_balance + self.collateral
                cross_mm = np.where(cross_mask, mm, 0.0).sum(axis=0)
                ratio = np.where(has_cross, _ratio(cross_mm, cross_balance), 0.0)
            else:  # what the expression above gives without any cross position
                ratio = np.zeros(n)
            zeros = True  # ratio is still all +0.0
            for k in range(len(self.keys)):
                if not iso_mask[k].any():
                    continue  # np.where(False, ..., ratio) keeps ratio
                r = _ratio(mm[k], self.margin[k] + upnl[k])
                if zeros and self._all_isolated:
                    # np.where(iso, np.maximum(ratio, r), ratio) with ratio all zeros, in place;
                    # off the isolated pool (flat) ratio's value is 0.0
                    np.maximum(0.0, r, out=r)  # the same floats as with the zeros array
                    ratio = self._zero_where_flat(k, r)
                else:
                    ratio = np.where(iso_mask[k], np.maximum(ratio, r), ratio)
                zeros = False
        return ratio

    @functools.cached_property
    def distance(self) -> np.ndarray:
        """Smallest relative distance of the mark to a liquidation price per bar (nan when flat)."""
        dist = np.full(self.n, np.inf)
        is_open = self.open
        with np.errstate(divide="ignore", invalid="ignore"):
            for k, pos in enumerate(self.keys):
                if not is_open[k].any():
                    continue
                d = np.abs(self.mark[pos.sym] - self.lp[k]) / self.mark[pos.sym]
                dist = np.where(is_open[k] & np.isfinite(d), np.minimum(dist, d), dist)
        return np.where(np.isfinite(dist), dist, np.nan)

    @functools.cached_property
    def unrealized(self) -> np.ndarray:
        """Unrealized PnL of the account per bar, USDT."""
        return self.upnl.sum(axis=0)

    @functools.cached_property
    def collateral(self) -> np.ndarray | None:
        """Haircut value of the collateral at each bar close (None without), USDT."""
        ledger = self._state.account.ledger
        if ledger is None:
            return None
        return ledger.value_series(self.close_ts, self.mark, first_bar=self.start)

    @functools.cached_property
    def equity(self) -> np.ndarray:
        """Wallet (+ collateral value) + unrealized PnL per bar, USDT."""
        if self.collateral is None:
            return self.wallet + self.unrealized
        return self.wallet + self.collateral + self.unrealized

    @functools.cached_property
    def maintenance(self) -> np.ndarray:
        """Maintenance margin of the account per bar, USDT."""
        return self.mm.sum(axis=0)

    @staticmethod
    def _maintenance(state: Any, sym: int, notional: np.ndarray, ts: np.ndarray,
                     size: np.ndarray) -> np.ndarray:
        schedule = state.margin.schedules[sym]
        if len(schedule.versions) == 1 and len(schedule.versions[0][1].tiers) == 1:
            return state.venue.maintenance_margin(notional, schedule.versions[0][1].tiers[0])
        starts = np.array([s for s, _ in schedule.versions], dtype=np.int64)
        # version in force per bar (the earliest also before its start, as the loop did)
        bounds = np.searchsorted(ts, starts[1:], side="left").tolist()
        edges = [0, *bounds, len(ts)]
        out = np.empty_like(notional)
        for v, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
            if hi <= lo:
                continue
            table = schedule.versions[v][1]
            part = notional[lo:hi]
            if len(table.tiers) == 1:
                tier = table.tiers[0]
                out[lo:hi] = state.venue.maintenance_margin(part, tier)
                continue
            floors = np.array([t.floor for t in table.tiers])
            mmr = np.array([t.mmr for t in table.tiers])
            cum = np.array([t.cum for t in table.tiers])
            # the table's key per bar (the notional itself, or a contract count)
            keys = table.position_key(size[lo:hi], None, state.contracts[sym], part)
            index = np.maximum(np.searchsorted(floors, keys, side="right") - 1, 0)
            out[lo:hi] = state.venue.maintenance_margin(part, _TierColumns(mmr[index], cum[index]))
        return out

    def equity_frame(self) -> pl.DataFrame:
        """equity.parquet (CONTRACTS §6)."""
        first = [k for k, p in enumerate(self.keys) if p.sym == 0]
        qty0 = self.qty[first].sum(axis=0)
        lp0 = np.full(self.n, np.nan)
        for k in reversed(first):
            lp0 = np.where(self.open[k], self.lp[k], lp0)
        columns = {
            "ts": pl.Series(self.close_ts).cast(_TS),
            "wallet_balance": self.wallet, "unrealized_pnl": self.unrealized,
            "equity": self.equity, "maintenance_margin": self.maintenance,
            "margin_ratio": self.margin_ratio,
            "distance_to_liquidation": self.distance,
            "gross_notional": self.notional.sum(axis=0), "position_qty": qty0,
            "mark_price": self.mark[0], "last_price": self.last[0], "liquidation_price": lp0,
        }
        contract = self._state.contracts[0]
        if contract.inverse:  # a coin-margined account: its equity also in USD at the mark
            columns["equity_usd"] = contract.to_usd(self.equity, self.mark[0])
        frame = pl.DataFrame(columns).with_columns(
            pl.col("distance_to_liquidation", "liquidation_price").fill_nan(None))
        if self.collateral is not None:  # Multi-Assets Mode: the collateral's valuation
            frame = frame.with_columns(pl.Series("collateral_value", self.collateral))
        return frame

    def positions_frame(self) -> pl.DataFrame:
        """positions.parquet (CONTRACTS §6): one row per bar per open position."""
        frames = []
        for k, pos in enumerate(self.keys):
            sel = np.flatnonzero(self.open[k])
            if not sel.size:
                continue
            m = len(sel)
            frames.append(pl.DataFrame({
                "ts": pl.Series(self.close_ts[sel]).cast(_TS),
                "symbol": [pos.symbol] * m, "position_side": [pos.position_side] * m,
                "qty": self.qty[k][sel], "entry_price": self.entry[k][sel],
                "mark_price": self.mark[pos.sym][sel], "last_price": self.last[pos.sym][sel],
                "liquidation_price": self.lp[k][sel], "bankruptcy_price": self.bp[k][sel],
                "unrealized_pnl": self.upnl[k][sel], "margin_mode": [pos.margin_mode] * m,
                "leverage": self.leverage[k][sel], "isolated_margin": self.margin[k][sel],
            }))
        if not frames:
            return pl.DataFrame(schema={"ts": _TS, "symbol": pl.String, "position_side": pl.String,
                                        "qty": pl.Float64, "entry_price": pl.Float64,
                                        "mark_price": pl.Float64, "last_price": pl.Float64,
                                        "liquidation_price": pl.Float64, "bankruptcy_price": pl.Float64,
                                        "unrealized_pnl": pl.Float64, "margin_mode": pl.String,
                                        "leverage": pl.Float64, "isolated_margin": pl.Float64})
        return pl.concat(frames).sort("ts", "symbol", maintain_order=True).with_columns(
            pl.col("liquidation_price", "bankruptcy_price").fill_nan(None))


def _snapshot_index(snap_bar: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Per bar of ``[start, stop)``, the index of the last snapshot at or before it (0 when none).

    ``np.maximum(np.searchsorted(snap_bar, bars, side="right") - 1, 0)`` over the range's bars,
    built as runs instead (``snap_bar`` is increasing and has one entry per bar at most): one
    run of equal indices per snapshot inside the range, so the cost is one pass over the bars
    rather than a binary search per bar (the summary of every sweep run pays this).
    """
    first = int(np.searchsorted(snap_bar, start, side="right"))  # snapshots at or before start
    last = int(np.searchsorted(snap_bar, stop - 1, side="right")) if stop > start else first
    edges = np.empty(last - first + 2, dtype=np.int64)
    edges[0], edges[-1] = start, stop
    edges[1:-1] = snap_bar[first:last]
    index = np.maximum(np.arange(first - 1, last, dtype=np.int64), 0)
    return np.repeat(index, np.diff(edges))


def _ratio(mm: np.ndarray, balance: np.ndarray) -> np.ndarray:
    """Margin ratio MM / margin balance; inf when the balance is gone (venue margin_ratio).

    ``balance`` must be a fresh array: it receives the result.
    """
    gone = ~(balance > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.divide(mm, balance, out=balance)  # the value where the balance is > 0
    if gone.any():
        where = np.flatnonzero(gone)
        ratio[where] = np.where(mm[where] > 0, np.inf, 0.0)
    return ratio


def bar_chunks(state: Any, size: int | None = None) -> Iterator[BarState]:
    """The run's bars as consecutive :class:`BarState` ranges of at most ``size`` bars.

    Every per-bar value of a chunk equals that bar's value in the whole run's ``BarState``
    (each is a function of its bar and of the snapshot in force there), so tables and the
    summary built chunk by chunk are the ones built at once, with memory bounded by a chunk.

    Parameters
    ----------
    state : RunState
        The finished run.
    size : int, optional
        Bars per chunk (default :data:`CHUNK_BARS`; at least 1).
    """
    size = CHUNK_BARS if size is None else int(size)
    if size < 1:
        raise ValueError(f"bar_chunks: size must be at least 1 bar, found {size}")
    n = len(state.data)
    shared: dict[str, np.ndarray] = {}
    for start in range(0, n, size):
        yield BarState(state, start, min(n, start + size), snapshots=shared)
        state.data.release(start, min(n, start + size))  # a long run's spilled bars: read, done


def _better(value: float, best: float | None) -> bool:
    """Whether ``value`` replaces ``best`` as NumPy's ``argmax`` would over both (the first
    maximum wins; a NaN is a maximum, the first NaN wins)."""
    if best is None:
        return True
    if best != best:
        return False
    return value != value or value > best


class _Drawdown:
    """The deepest drawdown of an equity curve fed in consecutive chunks.

    The running peak starts at the initial balance; per bar the drawdown is
    ``(peak - equity) / peak`` (0 where the peak is not positive). The deepest bar and the last
    bar at or above its peak (the drawdown's start) are kept as ``argmax`` and a search over the
    whole curve would find them.
    """

    def __init__(self, initial: float) -> None:
        self.peak = initial
        self.value: float | None = None  # the deepest drawdown so far (None before any bar)
        self.end: int | None = None  # its bar
        self.start: int | None = None  # the last bar at its peak before it (None: none)
        self._last_top: int | None = None  # the last bar whose equity reached the running peak

    def add(self, equity: np.ndarray, first: int) -> None:
        """Feed the equity of bars ``first, first + 1, ...`` (USDT)."""
        m = equity.size
        if not m:
            return
        peaks = np.empty(m + 1)
        peaks[0] = self.peak
        peaks[1:] = equity
        curve = np.maximum.accumulate(peaks, out=peaks)[1:]
        dd = np.subtract(curve, equity)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(dd, curve, out=dd)
        # the running peak never falls below its start: with a positive start and no NaN (a NaN
        # stays to the end of a running maximum) every peak is positive and nothing is zeroed
        if not (self.peak > 0 and curve[-1] == curve[-1]):
            np.copyto(dd, 0.0, where=~(curve > 0))
        k = int(dd.argmax())
        tops = np.flatnonzero(equity >= curve)
        if _better(float(dd[k]), self.value):
            self.value = float(dd[k])
            self.end = first + k
            before = tops[tops <= k]
            self.start = first + int(before[-1]) if before.size else self._last_top
        if tops.size:
            self._last_top = first + int(tops[-1])
        self.peak = curve[-1]


def summarize(state: Any, bars: BarState | Iterable[BarState], initial: float) -> dict[str, Any]:
    """The summary of CONTRACTS §6 with the PnL attribution.

    ``bars`` is the whole run's :class:`BarState` or its consecutive chunks
    (:func:`bar_chunks`): the drawdown and the worst margin ratio are running figures, so a
    long run never holds a per-bar column of every bar.
    """
    journal = state.journal
    interval = state.data.interval_ms
    data_ts = state.data.ts

    def close_ts(i: int) -> int:  # bars.close_ts[i] without building the column
        return int(data_ts[i] + interval)

    drawdown = _Drawdown(initial)
    final, n = initial, 0
    worst: int | None = None
    worst_value: float | None = None
    for chunk in [bars] if isinstance(bars, BarState) else bars:
        if not chunk.n:
            continue
        equity = chunk.equity
        drawdown.add(equity, chunk.start)
        final = float(equity[-1])
        ratio = chunk.margin_ratio
        k = int(np.argmax(ratio))
        if _better(float(ratio[k]), worst_value):
            worst, worst_value = chunk.start + k, float(ratio[k])
        n += chunk.n
    max_dd = drawdown.value if drawdown.value is not None else 0.0
    dd_end = drawdown.end
    dd_start = None
    if dd_end is not None and max_dd > 0:
        dd_start = iso(close_ts(drawdown.start)) if drawdown.start is not None else iso(int(data_ts[0]))
    liqs = journal.rows["liquidations"]
    # Bar closes only see pools that survived the bar; a liquidation trigger is the true peak.
    worst_ratio = worst_value if worst is not None else 0.0
    worst_ts = iso(close_ts(worst)) if worst is not None and worst_value > 0 else None
    if journal.trigger_margin_ratio > worst_ratio:
        worst_ratio = float(journal.trigger_margin_ratio)
        worst_ts = iso(int(journal.trigger_margin_ratio_ts))
    funding = journal.funding_received - journal.funding_paid
    attribution = {
        "fees": -journal.fees,
        "funding": funding,
        "slippage": -journal.slippage,
        "liquidation_penalty": journal.liquidation_penalty,
    }
    attribution["price_move"] = final - initial - sum(attribution.values())
    return {
        "initial_balance": initial,
        "final_equity": final,
        "total_return": final / initial - 1.0,
        "max_drawdown": max_dd,
        "max_drawdown_start": dd_start,
        "max_drawdown_end": iso(close_ts(dd_end)) if dd_end is not None and max_dd > 0 else None,
        "n_liquidations": len(liqs),
        "liquidation_loss": float(sum(row[16] for row in liqs)),
        "fees": journal.fees,
        "liquidation_fees": journal.clearance_fees,
        "funding_paid": journal.funding_paid,
        "funding_received": journal.funding_received,
        "slippage_cost": journal.slippage,
        "bad_debt": state.account.bad_debt,
        "insurance_fund_delta": state.account.insurance_fund,
        "worst_margin_ratio": worst_ratio,
        "worst_margin_ratio_ts": worst_ts,
        "first_liquidation_ts": iso(int(liqs[0][0])) if liqs else None,
        "n_fills": len(journal.rows["fills"]),
        "n_rejections": len(journal.rows["rejections"]),
        "bars": n,
        "attribution": {k: float(v) for k, v in attribution.items()},
    }

