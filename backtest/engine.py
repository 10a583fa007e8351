"""The engine: sequences one run. Every rule lives in the parts it calls.

Phase order of one strategy bar ``i`` (docs/engine.md):

1. **bar-open events**: the event sources' events at the bar's open (``backtest.events``):
   funding settlements (on the positions held at that instant), tier-table and market-spec
   versions taking effect, a caller's sources (collateral repricing, ADL injections);
2. **fills**: orders placed at the previous close fill at this bar's open tick;
3. **path**: the intrabar walk (stop/limit triggers on the last price, liquidation triggers on
   the mark price, funding stamped inside the bar), skipped when no threshold lies inside
   the bar's ranges (the gate, ``backtest.gate``; identical results);
4. **marking**: the bar's close values the account (done after the loop, vectorized, from
   the journal's snapshots);
5. **strategy**: ``on_bar`` sees the closed bar and places orders for the next tick.

The phases are one method (:meth:`RunLoop.step`) and one schedule drives it on both paths
(:meth:`RunLoop.run_bars`; docs/engine.md).
"""
from __future__ import annotations

import functools
import math
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from backtest.broker import Broker
from backtest.config import RunConfig
from backtest.context import Context, Hooks
from backtest.errors import StrategyError
from backtest.events import FundingSource, LedgerEvents, MarketVersions, TierVersions, schedule_events
from backtest.funding import FundingSchedule
from backtest.gate import bar_gate
from backtest.intrabar import IntrabarWalker
from backtest.liquidation import Liquidator
from backtest.market_data import MarketData
from backtest.metrics import CHUNK_BARS, BarState, bar_chunks, summarize
from backtest.results import RunResult, package_versions
from backtest.slippage import make_slippage
from backtest.spill import Spill
from backtest.state import RunState
from backtest.strategy import Strategy, load_strategy

__all__ = ["RunLoop", "run_backtest"]


class _Columns(dict):
    """Feature columns made cheap to read per bar, on first use: a float64 or int64 column
    without nulls as a memoryview of its buffer (indexing gives the same Python number as a
    list, without a list of every bar), any other as a Python list."""

    def __init__(self, frame: pl.DataFrame) -> None:
        super().__init__()
        self._frame = frame

    def __missing__(self, key: str) -> list:
        if key not in self._frame.columns:
            raise KeyError(key)
        column = self._frame.get_column(key)
        if column.dtype in (pl.Float64, pl.Int64) and not column.null_count():
            values = memoryview(np.ascontiguousarray(column.to_numpy()))
        else:
            values = column.to_list()
        self[key] = values
        return values

    def __iter__(self):  # noqa: ANN204 - names for did-you-mean messages
        return iter(self._frame.columns)

    def __contains__(self, key: object) -> bool:
        return key in self._frame.columns


def run_backtest(data: MarketData, strategy: str | type[Strategy] | Strategy = "hold", *,
                 params: dict[str, Any] | None = None, config: RunConfig | None = None) -> RunResult:
    """Run one backtest.

    Parameters
    ----------
    data : MarketData
        Bars (and funding, detail candles, tiers, specs) of the run's symbols.
    strategy : str, Strategy subclass or instance
        Built-in name, ``"module:Class"``, a class or an instance.
    params : dict, optional
        Strategy parameters (unknown names raise with a suggestion).
    config : RunConfig, optional
        Run configuration (default ``RunConfig()``).

    Returns
    -------
    RunResult
        Frames and summary of CONTRACTS §6.
    """
    config = config or RunConfig()
    run = RunLoop(data, load_strategy(strategy, params), config)
    run.loop()
    return run.result()


def _configured_notional(strategy: Strategy, sym: int, balance: float, leverage: float) -> float:
    """The position notional a run is configured for (USDT), for the pre-run leverage check.

    A strategy's numeric ``exposure`` parameter (notional / wallet, the ``target_exposure``
    unit) or the largest finite signal of an array strategy gives ``balance * exposure``;
    otherwise the whole balance is the initial margin: ``balance * leverage``.
    """
    signals = getattr(strategy, "_signals", None)
    if isinstance(signals, np.ndarray) and signals.ndim in (1, 2):
        column = np.abs(signals if signals.ndim == 1 else signals[:, min(sym, signals.shape[1] - 1)])
        column = column[np.isfinite(column)]
        return balance * float(column.max()) if column.size else 0.0
    exposure = getattr(strategy, "exposure", None)
    if isinstance(exposure, (int, float)) and not isinstance(exposure, bool) \
            and math.isfinite(exposure) and exposure != 0:
        return balance * abs(float(exposure))
    return balance * leverage


class RunLoop:
    """One run's wiring, its bar step and its schedule.

    :meth:`step` is the one bar step (the module docstring's phases: :meth:`bar_open`,
    :meth:`fill_open`, :meth:`walk` when the gate asks, :meth:`strategy_phase`).
    :meth:`run_bars` is the one schedule; the array path (``backtest.fastpath_scan``) changes
    only what it may skip (``quiet_calls``, :meth:`next_action`) and its strategy phase.
    :meth:`loop` maps the event sources onto bars and hands chunks to :meth:`run_bars`;
    :meth:`result` closes the books.

    Parameters
    ----------
    data, strategy, config
        The run's market data, strategy and configuration.
    sources : sequence of EventSource, optional
        Extra event sources (collateral repricing, ADL injections; ``backtest.events``).
    """

    #: The event path gives quiet bars to ``on_bar`` (the array path skips them).
    quiet_calls = True

    def __init__(self, data: MarketData, strategy: Strategy, config: RunConfig,
                 sources: Any = None) -> None:
        from backtest.venues.base import get_venue

        if not len(data):
            raise StrategyError("run_backtest: the market data has no bars; widen start/end")
        self.venue = get_venue(config.venue)
        if self.venue.prepare_market is not None:  # the market as the venue sees it (Aave's oracle)
            data = self.venue.prepare_market(data, config)
        self.data = data
        self.strategy = strategy
        self.config = config
        self.warnings = list(data.quality_warnings)
        if config.position_mode not in self.venue.position_modes:
            from backtest.errors import ConfigError
            raise ConfigError(
                f"position_mode {config.position_mode!r}: venue {self.venue.name} offers "
                f"{' and '.join(self.venue.position_modes)} mode only (one position per symbol); "
                "set position_mode = \"one_way\"")
        st = RunState(data, config, self.venue, make_slippage(config.slippage, config.slippage_params),
                      self.warnings)
        self.st = st
        st.margin.set_time(int(data.ts[0]))
        for sym, symbol in enumerate(data.symbols):
            leverage = st.account.leverage[sym]
            st.margin.check_leverage(sym, symbol, leverage,
                                     _configured_notional(strategy, sym, config.initial_balance,
                                                          leverage), int(data.ts[0]),
                                     price=st.marks[sym])
        self.broker = Broker(st)
        self.liquidator = Liquidator(st)
        self.funding = FundingSchedule(st)
        self.walker = IntrabarWalker(st, self.broker, self.liquidator, self.funding,
                                     policy=config.path_policy, gating=config.gating)
        frames, columns = [], []
        #: The run's own spilled columns (its strategy's features) when the data is spilled.
        self.spill = None if data.spill is None else Spill(data.spill.directory)
        for symbol in data.symbols:
            frame = self.guarded(strategy.features, data.frames[symbol])
            if not isinstance(frame, pl.DataFrame) or frame.height != len(data):
                raise StrategyError(
                    f"{type(strategy).__name__}.features must return a polars DataFrame with one "
                    f"row per bar ({len(data)}), found "
                    f"{frame.height if isinstance(frame, pl.DataFrame) else type(frame).__name__}")
            if self.spill is not None:  # a long run: its feature columns go to disk as its bars
                frame = self.spill.frame(frame, held=data.spill)
                self.release(0, len(data))
            frames.append(frame)
            columns.append(_Columns(frame))
        self.ctx = Context(st, self.broker, columns, frames)
        st.hooks = Hooks(strategy, self.ctx)
        st.journal.snapshot(-1, st.account)
        #: The run's event sources (``backtest.events``): built-in ones, then the caller's.
        self.sources = [FundingSource(self.funding, data), LedgerEvents(st), TierVersions(st),
                        MarketVersions(st), *(sources or ())]
        #: Bars given to :meth:`step` so far (the others were quiet).
        self.visited = 0
        self.build_gates()
        self.release(0, len(data))  # the gate's block extremes read every bar's ranges

    def build_gates(self) -> None:
        """The run's :class:`~backtest.gate.Gate` over each strategy bar's mark and last ranges
        (widened by the detail candles and trade ticks inside the bar; ``gate.bar_gate``).

        Sets ``gate`` (and binds ``gate_hit`` and the book's ``pending`` list for the step).
        """
        self.gate = bar_gate(self.st, self.data, self.walker)
        self.gate_hit = self.gate.hit  # bound once: the step asks it on every visited bar
        self.pending = self.st.book.pending  # the book's pending list (never replaced)

    # ------------------------------------------------------------------ phases
    def bar_open(self, i: int) -> None:
        """Phase 1 of bar ``i``: the event sources' events at its open (funding settlements,
        rule versions, ledger hooks; ``backtest.events``), one refresh when any changed."""
        st = self.st
        st.bar = i
        st.set_open_marks(i)
        changed = False
        sources = self.ordered_sources
        for k, payload in self.open_events.get(i, ()):
            changed |= sources[k].apply(payload)
        if changed:
            st.refresh()

    def fill_open(self, i: int) -> None:
        """Phase 2 of bar ``i``: pending orders fill at its open tick; thresholds refreshed."""
        st = self.st
        st.bar = i
        st.set_open_marks(i)
        views = st.range_views  # per symbol (high, low, volume) memoryviews: Python floats
        if len(views) == 1:
            high, low, volume = views[0]
            self.broker.fill_pending([high[i]], [low[i]], [volume[i]])
        else:
            self.broker.fill_pending([v[0][i] for v in views], [v[1][i] for v in views],
                                     [v[2][i] for v in views])
        st.refresh()

    def walk(self, i: int) -> None:
        """Phase 3 of bar ``i``: the intrabar path (triggers, liquidations, inside funding)."""
        self.st.bar = i
        self.walker.walk(i)

    def strategy_phase(self, i: int) -> None:
        """Phase 5 of bar ``i``: the strategy sees the closed bar (marking, phase 4, is done
        after the loop from the journal's snapshots)."""
        ctx = self.ctx
        ctx._i = i
        self.strategy.on_bar(ctx)

    def step(self, i: int, event: bool) -> None:
        """Every phase of bar ``i`` in order; ``event``: an event source acts at its open.

        The one bar step of both schedules (:meth:`run_bars`): a new phase is one edit here.
        """
        walk = self.walk_all
        if event:
            self.bar_open(i)
            walk = walk or i in self.forced
        if self.pending:
            self.fill_open(i)
        if walk or self.gate_hit(i):
            self.walk(i)
        self.strategy_phase(i)

    def next_action(self, i: int, end: int) -> int:
        """First bar in ``[i, end)`` where the strategy may act by itself (``end`` if none).

        The event path gives every quiet bar to ``on_bar`` inside :meth:`run_bars` (so this
        bound is ``end``); the array path answers from its signal's action tables.
        """
        return end

    # ------------------------------------------------------------------ loop
    def loop(self) -> None:
        """Run every bar, chunk by chunk: a progress bar's steps, else :data:`CHUNK_BARS`.

        After each chunk the resident memory of its bars' spilled columns is released
        (:meth:`release`): a long run's memory is bounded by a chunk, not by its history.
        """
        n = len(self.data)
        self.guarded(self.strategy.on_start, self.ctx)
        self.ordered_sources, self.open_events, self.forced = schedule_events(
            self.data.ts, self.data.interval_ms, self.sources)
        self.event_bars = sorted(set(self.open_events) | self.forced) + [n]
        self.walk_all = not self.config.gating
        if not self.config.progress:
            for start in range(0, n, CHUNK_BARS):
                stop = min(n, start + CHUNK_BARS)
                self.guarded(self.run_bars, start, stop)
                self.release(start, stop)
            return
        from rich.progress import Progress

        every = self.config.progress_every
        with Progress(transient=True) as progress:
            task = progress.add_task("backtest", total=n)
            for start in range(0, n, every):
                self.guarded(self.run_bars, start, min(n, start + every))
                self.release(start, min(n, start + every))
                progress.update(task, completed=min(n, start + every))

    def release(self, start: int, stop: int) -> None:
        """Drop the resident memory of bars ``[start, stop)`` of the spilled bar and feature
        columns (``backtest.spill``: a hint, every value stays readable; a strategy reading
        older bars faults their pages back in, so no lookback is ever cut short)."""
        self.data.release(start, stop)
        if self.spill is not None:
            self.spill.release(start, stop)

    def guarded(self, call: Any, *args: Any) -> Any:
        """``call(*args)`` where strategy code runs: an exception raised in the strategy's code
        becomes a ``StrategyFailed`` naming the hook, the bar and the user's lines
        (``backtest.strategy_failure``); the engine's own errors pass unchanged."""
        try:
            return call(*args)
        except Exception as exc:
            from backtest.strategy_failure import strategy_failure

            ctx = getattr(self, "ctx", None)
            closed = (ctx.bar_index, ctx.time) if ctx is not None and ctx.bar_index >= 0 else None
            failure = strategy_failure(exc, self.strategy, closed=closed, current=(self.st.bar, self.st.now))
            if failure is None:
                raise
            raise failure from None

    def run_bars(self, start: int, stop: int) -> None:
        """Bars ``[start, stop)``: :meth:`step` on every bar that can matter, in order.

        The one schedule of both paths. A bar needs the step when an event source acts at it,
        an order is pending, gating is off, or the gate finds a threshold in its ranges
        (:meth:`Gate.next_hit`, from the current levels). The bars in between are quiet: no
        phase but the strategy's does anything on them, so the event path hands them to
        ``on_bar`` alone (``quiet_calls``) and searches again as soon as ``on_bar`` changed a
        level or placed an order; the array path skips them up to :meth:`next_action`.
        """
        st = self.st
        ctx = self.ctx
        on_bar = self.strategy.on_bar
        pending = st.book.pending
        gen = st.gen
        next_hit = self.gate.next_hit
        step = self.step
        next_action = self.next_action
        events = self.event_bars
        e = bisect_left(events, start)
        every = self.walk_all
        quiet = self.quiet_calls
        visited = 0
        i = start
        while i < stop:
            nxt = events[e]
            if i == nxt or pending or every:
                j = i
            else:
                j = next_hit(i, next_action(i, nxt if nxt < stop else stop))
                if quiet and j > i:
                    seen = gen[0]
                    for k in range(i, j):
                        ctx._i = k
                        on_bar(ctx)
                        if pending or gen[0] != seen:  # an order or a new level: search again
                            j = -k - 1
                            break
                    if j < 0:
                        i = -j
                        continue
                if j >= stop:
                    break
            visited += 1
            if j == nxt:
                e += 1
                step(j, True)
            else:
                step(j, False)
            i = j + 1
        self.visited += visited

    # ------------------------------------------------------------------ result
    def result(self) -> RunResult:
        """Close the books and build the RunResult."""
        st = self.st
        # the strategy hooks are the only way back from the state to the run's context: drop
        # them once the loop is over so that a finished run is freed by reference counting
        # (a sweep frees thousands of runs; the cyclic collector would traverse every row)
        st.hooks = None
        data = self.data
        n = len(data)
        st.set_close_marks(n - 1)
        end_ts = int(data.ts[-1]) + data.interval_ms
        open_trades = []
        for pos in st.account.positions:
            if pos.qty != 0.0:
                exit_price = st.lasts[pos.sym]
                # still open at the end: valued at the last price
                open_trades.append(pos.trade_row(end_ts, exit_price,
                                                 pos.trade_pnl + pos.upnl(exit_price), "end_of_data"))
        ledger = st.account.ledger
        initial = self.config.initial_balance if ledger is None \
            else self.config.initial_balance + ledger.start_value
        # the per-bar columns of every bar are built only when asked for; the summary and a
        # written run folder go chunk by chunk (memory bounded by a chunk, not the history)
        if n <= CHUNK_BARS:
            bars = BarState(st)
            summary = summarize(st, bars, initial)
            # the summary's columns are reused by the tables
            equity_frame, positions_frame, tail = bars.equity_frame, bars.positions_frame, bars
        else:
            summary = summarize(st, bar_chunks(st), initial)
            whole = functools.cache(lambda: BarState(st))
            tail = BarState(st, n - 1, n)
            equity_frame, positions_frame = (lambda: whole().equity_frame()), (lambda: whole().positions_frame())
        if ledger is not None:
            summary.update(ledger.summary(tail.collateral))
        summary.update(st.account.fund.summary())
        summary.update(st.adl.summary())
        journal = st.journal
        trades_rows = journal.rows["trades"] + open_trades
        builders = {
            "equity": equity_frame,
            "positions": positions_frame,
            "orders": lambda: _orders_frame(journal, st.book.all_orders),
            "fills": lambda: journal.frame("fills"),
            "rejections": lambda: journal.frame("rejections"),
            "funding": lambda: journal.frame("funding"),
            "liquidations": lambda: journal.frame("liquidations"),
            "trades": lambda: journal.frame("trades", trades_rows),
            "bars": lambda: _bars_frame(data),
            "insurance_fund": st.account.fund.frame,
            "adl": st.adl.frame,
        }
        # what a run folder writes chunk by chunk when the run is longer than a chunk, never
        # whole in memory, one table per stream (one pass each: a file written at a time); the
        # rows and bytes are the whole tables' (tests/engine/test_streaming_*)
        streams = {
            ("equity",): lambda size: ((chunk.equity_frame(),) for chunk in bar_chunks(st, size)),
            ("positions",): lambda size: ((chunk.positions_frame(),) for chunk in bar_chunks(st, size)),
            ("bars",): lambda size: ((frame,) for frame in _bars_chunks(data, size)),
        }
        manifest = {
            "config": self.config.to_dict(),
            "strategy": {"name": type(self.strategy).__name__, "params": self.strategy.params()},
            "venue": self.venue.describe() | {"tiers": _tier_record(data.symbols, st.margin.schedules),
                                               "fees": [list(f) for f in st.fee_rates],
                                               "liquidation_fee_rates": st.clearance,
                                               "markets": _markets_record(data.symbols, st.markets)}
                     | ({"market_versions": [_market_record(data.symbols[sym], spec) for sym, spec in st.market_log]}
                        if st.market_log else {}),
            "data": data.sources,
            "quality_warnings": list(dict.fromkeys(self.warnings)),
            "seed": self.config.seed,
            "packages": package_versions(),
            "symbols": list(data.symbols),
            "timeframe": data.timeframe,
            "detail_timeframe": data.detail_timeframe,
        }
        return RunResult(summary=summary, builders=builders, manifest=manifest, streams=streams,
                         bars=n)


def _markets_record(symbols: tuple[str, ...], markets: list) -> dict[str, dict[str, Any]]:
    """Per symbol the market spec in force at the run's end: its price tick (reports and the
    CLI print prices at it, ``backtest.formatting.fmt_price``), lot and minimums."""
    return {symbol: {"tick_size": spec.tick_size, "lot_size": spec.lot_size, "min_qty": spec.min_qty,
                     "min_notional": spec.min_notional}
            for symbol, spec in zip(symbols, markets)}


def _market_record(symbol: str, spec: Any) -> dict[str, Any]:
    """A market version the run applied (for the manifest)."""
    from backtest.metrics import iso

    return {"symbol": symbol, "effective_from": iso(int(spec.effective_from)), "tick_size": spec.tick_size,
            "lot_size": spec.lot_size, "maker_fee": spec.maker_fee, "taker_fee": spec.taker_fee,
            "liquidation_fee_rate": spec.liquidation_fee_rate}


def _tier_record(symbols: tuple[str, ...], schedules: list) -> dict[str, list[dict[str, Any]]]:
    """The tier tables a run used, per symbol and version (for the manifest)."""
    from backtest.metrics import iso

    return {symbol: [{"effective_from": iso(start), "label": table.label, "rows": table.to_rows()}
                     for start, table in schedule.versions]
            for symbol, schedule in zip(symbols, schedules)}


def _bars_frame(data: MarketData) -> pl.DataFrame:
    """The candles the run replayed (last OHLC and mark close), for the report's price chart."""
    return pl.concat(list(_bars_chunks(data, len(data))))


def _bars_chunks(data: MarketData, size: int) -> Iterator[pl.DataFrame]:
    """The rows of :func:`_bars_frame` in order (symbol by symbol), ``size`` bars at a time."""
    for symbol in data.symbols:
        whole = data.frames[symbol]
        mark = pl.col("mark_close") if "mark_close" in whole.columns else pl.col("close")
        for start in range(0, max(len(data), 1), size):
            yield whole.slice(start, size).select(
                pl.col("ts").cast(pl.Datetime("ms", "UTC")), pl.lit(symbol).alias("symbol"),
                pl.col("open", "high", "low", "close").cast(pl.Float64), mark.cast(pl.Float64).alias("mark_close"))
            data.release(start, start + size)


def _orders_frame(journal: Any, orders: list) -> pl.DataFrame:
    from backtest.journal import _SCHEMAS

    rows = [o.row() for o in orders]
    schema = _SCHEMAS["orders"]
    frame = pl.DataFrame(rows, schema=[(k, pl.Int64 if v == pl.Datetime("ms", "UTC") else v)
                                       for k, v in schema.items()], orient="row")
    return frame.with_columns(pl.col("ts_created", "ts_done").cast(pl.Datetime("ms", "UTC")),
                              pl.col("price", "stop_price").fill_nan(None))
