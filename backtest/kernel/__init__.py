"""A compiled array path for one symbol, isolated margin, a linear contract (the sweep's case).

:func:`run_kernel` runs a target-exposure signal through :mod:`backtest.kernel.core` (numba)
and returns a :class:`KernelRun`: its :meth:`~KernelRun.summary` is the run summary without
building any table (what a sweep keeps), its :meth:`~KernelRun.result` the full
:class:`~backtest.results.RunResult`, built by the engine's own ``RunLoop.result`` from the
kernel's journal, so every table, the summary and the manifest are those of
:func:`backtest.fastpath.run_signals` (``tests/engine/test_kernel*.py`` check it exactly).

:func:`kernel_scope` says why a run is outside the kernel's scope (None when inside): several
symbols, cross margin, hedge mode, another venue than ``binance_usdm``, an inverse contract,
a slippage model other than ``none`` / ``fixed`` (or a ``slippage_scale`` column), rounding
to ticks and lots, ``tier_down`` liquidation, collateral, injected ADL events, detail
candles or trade ticks, funding inside a bar, tier or market versions taking effect during
the run. Those runs, runs that leave the scope on the way (a rejected order, a liquidation
price in another bracket than the first: :data:`~backtest.kernel.core.BAIL`), and every run
when numba is not installed take the Python array path (the same result, slower).

What depends only on the market data (its bar columns as contiguous arrays, the funding
settlements per bar) is computed once per ``MarketData`` and cached on it, like the funding
maps and gate blocks of the Python path; what depends on the configuration (fees, tiers,
slippage) once per configuration.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["KernelRun", "have_numba", "kernel_scope", "ready", "run_kernel", "sign_changes", "warm"]

#: Rows of the output tables allocated per signal run (a full table doubles and reruns).
_ROWS_PER_RUN = 2


def ready() -> bool:
    """Whether the compiled kernel is already loaded in this process (a sweep worker, or after
    :func:`warm`): one run then gains from it; a first call pays numba's import and the load of
    its compiled code from disk (about a second), more than a single run saves."""
    import sys

    core = sys.modules.get("backtest.kernel.core")
    return core is not None and core.HAVE_NUMBA and bool(core.loop.signatures)


def have_numba() -> bool:
    """Whether numba is importable (the kernel compiles; otherwise the Python path runs)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _frozen(values: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
    """A read-only contiguous view (a copy only when needed) of ``values``.

    Every input array of the kernel is read-only, so that one compiled signature serves
    every caller (numba compiles writable and read-only arrays separately).
    """
    view = np.ascontiguousarray(values, dtype=dtype).view()
    view.setflags(write=False)
    return view


def warm() -> float:
    """Compile (or load from numba's on-disk cache) the kernel's functions; seconds taken.

    A worker calls it once before its first run, so that no run's figures include it.
    """
    import time

    if not have_numba():
        return 0.0
    t0 = time.perf_counter()
    from backtest.kernel import core
    from backtest.kernel.bars import bar_series

    n = 2
    prices = _frozen(np.full(n, 100.0))
    one = _frozen(np.zeros(1))
    ints = _frozen(np.zeros(0), np.int64)
    out, S, C = _outputs(4, 1)
    core.loop(_frozen(np.arange(n) * 60_000, np.int64), (prices,) * 8, _frozen(np.full(n, np.nan)),
              (ints, ints, _frozen(np.zeros(0)), _frozen(np.zeros(0))),
              _frozen([1e4, 10.0, 4e-4, 0.0, 0.0, 0.0, 6e4, 1e3, 0.0, 0.0, math.inf]), "worst_case",
              (one,) * 5, out, S, C)
    bar_series(_frozen(out[10][:1], np.int64), _frozen(out[11][:1]), prices, one, one, one,
               np.empty(n), np.empty(n))
    return time.perf_counter() - t0


@dataclass(frozen=True)
class _Market:
    """One symbol's bar columns as contiguous float64 / int64 arrays, its funding per bar."""

    ts: np.ndarray
    columns: tuple[np.ndarray, ...]  # open, high, low, close, mark open/high/low/close
    fund_bar: np.ndarray
    fund_ts: np.ndarray
    fund_rate: np.ndarray
    fund_mark: np.ndarray
    inside_funding: bool


def _market(data: Any) -> _Market:
    """The kernel's view of ``data`` (cached on it: runs sharing the data build it once)."""
    cache = data.__dict__.setdefault("_run_cache", {})
    symbol = data.symbols[0]
    bars = data.bars[symbol]
    arrays = (data.ts, bars.open, bars.high, bars.low, bars.close, bars.mark_open, bars.mark_high,
              bars.mark_low, bars.mark_close)
    hit = cache.get("kernel")
    if hit is not None and len(hit[0]) == len(arrays) and all(a is b for a, b in zip(hit[0], arrays)):
        return hit[1]
    from backtest.funding import _tables

    at_open, inside, values = _tables(data)
    bar_list, ts_list, rate_list, mark_list = [], [], [], []
    for bar in sorted(at_open):
        for _sym, k in at_open[bar]:
            ts_k, rate, mark = values[0][k]
            bar_list.append(bar)
            ts_list.append(ts_k)
            rate_list.append(rate)
            mark_list.append(mark)
    view = _Market(
        ts=_frozen(data.ts, np.int64), columns=tuple(_frozen(a) for a in arrays[1:]),
        fund_bar=_frozen(bar_list, np.int64), fund_ts=_frozen(ts_list, np.int64),
        fund_rate=_frozen(rate_list), fund_mark=_frozen(mark_list), inside_funding=bool(inside))
    cache["kernel"] = (arrays, view)
    return view


@dataclass(frozen=True)
class _Setup:
    """One configuration's inputs to the kernel (see :func:`_setup`)."""

    params: np.ndarray
    floors: np.ndarray
    caps: np.ndarray
    mmr: np.ndarray
    cum: np.ndarray
    max_leverage: np.ndarray
    policy: str
    table: Any
    leverage: float


def kernel_scope(data: Any, config: Any) -> str | None:
    """Why a run of ``config`` on ``data`` is outside the kernel's scope (None: inside)."""
    problem = _problem(data, config)
    return problem if isinstance(problem, str) else None


def _problem(data: Any, config: Any) -> str | _Setup:
    """The reason the kernel does not apply, or the run's :class:`_Setup`."""
    from backtest.contracts import contract_for
    from backtest.slippage import FixedBps, NoSlippage, make_slippage
    from backtest.state import _constant_taker_impact, _schedule, run_fee_rates

    if len(data.symbols) != 1 or not len(data):
        return "one symbol with bars"
    symbol = data.symbols[0]
    if config.for_symbol("margin_mode", symbol) != "isolated" or config.position_mode != "one_way":
        return "isolated margin in one-way mode"
    if config.venue != "binance_usdm" or contract_for(data.markets[symbol]).inverse:
        return "the binance_usdm venue with a linear contract"
    from backtest.venues.base import get_venue

    venue = get_venue(config.venue)  # the rules the kernel implements, and no other
    formulas = venue.formulas(contract_for(data.markets[symbol]))
    if formulas.one_leg is None or formulas.brackets_at_entry or formulas.maintenance_at_entry \
            or venue.liquidation_fill_price is not None or venue.funding_maintenance_rate is not None \
            or getattr(venue, "liquidation_block_s", None) is not None:
        return "the binance_usdm venue with a linear contract"
    if config.rounding or config.liquidation_mode != "full" or config.adl_events \
            or any(a != "USDT" for a in (config.collateral or {})):
        return "no rounding, full takeovers, no collateral, no injected ADL events"
    if data.detail is not None or data.trades or (getattr(data, "market_versions", None) or {}):
        return "no detail candles, trade ticks or market versions"
    slippage = make_slippage(config.slippage, config.slippage_params)
    if type(slippage) not in (FixedBps, NoSlippage) or data.bars[symbol].slippage_scale is not None:
        return "fixed or no slippage"
    ts0, last = int(data.ts[0]), int(data.ts[-1])
    schedule = _schedule(config.tiers, data.tiers, symbol)
    # a version taking effect during the run is an event (backtest.events.TierVersions)
    if any(ts0 < start <= last for start, _ in schedule.versions) or schedule.first_effective_ms > ts0:
        return "one tier table in force over the whole run"
    market = _market(data)
    if market.inside_funding:
        return "funding settlements at bar opens"
    table = schedule.at(ts0)
    tiers = table.tiers
    leverage = float(config.for_symbol("leverage", symbol))
    maker, taker = run_fee_rates(config, data.markets[symbol])
    del maker
    clearance = float(config.liquidation_fee_rate) if config.liquidation_fee_rate is not None \
        else data.markets[symbol].liquidation_fee_rate
    impact = _constant_taker_impact(slippage)
    forced = slippage.impact(qty=1.0, price=1.0, bar_high=1.0, bar_low=1.0, bar_volume=math.nan, forced=True)
    params = _frozen([config.initial_balance, leverage, taker, clearance, impact, forced,
                       data.interval_ms, int(config.liquidation_latency_ms),
                       1.0 if config.sizing_basis == "equity" else 0.0,
                       1.0 if config.liquidation_remainder == "trader" else 0.0, table.max_notional])
    if params[6] != data.interval_ms or params[7] != int(config.liquidation_latency_ms):
        return "an interval and latency exact as floats"
    return _Setup(params=params, floors=_frozen([t.floor for t in tiers]), caps=_frozen([t.cap for t in tiers]),
                  mmr=_frozen([t.mmr for t in tiers]), cum=_frozen([t.cum for t in tiers]),
                  max_leverage=_frozen([t.max_leverage for t in tiers]),
                  policy=str(config.path_policy), table=table, leverage=leverage)


class KernelRun:
    """The output of one kernel run: its journal as arrays, and the market and configuration.

    Build it with :func:`run_kernel`; :meth:`summary` and :meth:`result` read it.
    """

    def __init__(self, data: Any, config: Any, setup: _Setup, signal: np.ndarray,
                 out: tuple[np.ndarray, ...], S: np.ndarray, C: np.ndarray) -> None:  # noqa: N803
        from backtest.kernel.layout import OUT_TABLES

        self.data = data
        self.config = config
        self.setup = setup
        self.signal = signal
        #: The output tables by name (``layout.OUT_TABLES``); ``S`` / ``C`` the final state.
        self.out = dict(zip(OUT_TABLES, out))
        self.S = S
        self.C = C
        self.market = _market(data)
        #: Rows of each table (fills, orders, trades, funding, liquidations, snapshots, fund).
        self.n = {name: int(C[k]) for k, name in enumerate(
            ("fills", "orders", "trades", "funding", "liqs", "snaps", "fund"), start=1)}

    def summary(self) -> dict[str, Any]:
        """The run summary (``RunResult.summary``), without building the tables."""
        from backtest.kernel.assemble import kernel_summary

        return kernel_summary(self)

    def result(self, strategy: Any = None) -> Any:
        """The full :class:`~backtest.results.RunResult` (the engine's own result builder).

        ``strategy``: the strategy the run is recorded as (default: a ``SignalStrategy``
        holding the signal, as :func:`backtest.fastpath.run_signals` records).
        """
        from backtest.kernel.assemble import kernel_result

        return kernel_result(self, strategy)


def run_kernel(data: Any, signal: np.ndarray, config: Any, *, max_abs_signal: float | None = None,
               side_changes: int | None = None) -> KernelRun | None:
    """Run ``signal`` (one target exposure per bar, NaN = none) through the kernel.

    Returns None when the run is outside the kernel's scope (:func:`kernel_scope`), left it on
    the way, numba is not installed, or the configured leverage is above the bracket cap of
    the configured notional (the Python path raises the engine's error for it): the caller
    runs the Python path then.

    Parameters
    ----------
    data : MarketData
        One symbol's market.
    signal : ndarray of float, shape (n_bars,)
        Checked target exposures (``backtest.fastpath.validate_signals``).
    config : RunConfig
        The run configuration.
    max_abs_signal : float, optional
        The largest finite ``|signal|`` (0 when none), when the caller knows it (a sweep
        computes it once per signal for its leverages).
    side_changes : int, optional
        How often ``sign(signal)`` changes (sizes the output tables; computed when not given).
    """
    if not have_numba():
        return None
    setup = _problem(data, config)
    if isinstance(setup, str):
        return None
    signal = _frozen(np.reshape(signal, -1))
    if signal.size != len(data):
        return None
    if max_abs_signal is None:
        column = np.abs(signal)
        column = column[np.isfinite(column)]
        max_abs_signal = float(column.max()) if column.size else 0.0
    # the engine's pre-run check (RunLoop -> MarginModel.check_leverage): the Python path
    # raises its error, with the same message
    notional = config.initial_balance * max_abs_signal
    table = setup.table
    cap = 0.0 if abs(notional) >= table.max_notional else table.for_notional(notional).max_leverage
    if not setup.leverage <= cap + 1e-12:
        return None
    from backtest.kernel import core

    market = _market(data)
    if side_changes is None:
        side_changes = sign_changes(signal)
    rows = _ROWS_PER_RUN * (side_changes + 8) + 8
    funding = (market.fund_bar, market.fund_ts, market.fund_rate, market.fund_mark)
    tiers = (setup.floors, setup.caps, setup.mmr, setup.cum, setup.max_leverage)
    while True:
        out, S, C = _outputs(rows, market.fund_bar.size)
        status = core.loop(market.ts, market.columns, signal, funding, setup.params, setup.policy, tiers, out, S, C)
        if status == core.DONE:
            return KernelRun(data, config, setup, signal, out, S, C)
        if status == core.BAIL:
            return None
        rows *= 4


def sign_changes(signal: np.ndarray) -> int:
    """How often the sign of ``signal`` changes from one bar to the next (NaN counts as a sign)."""
    if signal.size < 2:
        return 0
    code = np.sign(signal)
    return int(np.count_nonzero(code[1:] != code[:-1]))


def _outputs(rows: int, n_funding: int) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """Empty output tables (``layout.OUT_TABLES``, ``rows`` rows each; the snapshots and
    the funding rows sized by their own bounds) and the state arrays ``S`` and ``C``."""
    from backtest.kernel.layout import FLOAT_SLOTS, INT_SLOTS

    snaps = 2 * rows + n_funding + 2  # at most one per bar with a fill, a settlement or a takeover

    def ints(cols: int) -> np.ndarray:
        return np.empty((rows, cols), dtype=np.int64)

    def floats(cols: int) -> np.ndarray:
        return np.empty((rows, cols), dtype=np.float64)

    out = (ints(5), floats(8), ints(6), np.empty(rows), ints(4), floats(6),
           np.empty(n_funding + 1, dtype=np.int64), np.empty((n_funding + 1, 4)), ints(4), floats(17),
           np.empty(snaps, dtype=np.int64), np.empty((snaps, 7)), ints(2), np.empty(rows))
    return out, np.zeros(FLOAT_SLOTS), np.zeros(INT_SLOTS, dtype=np.int64)
