"""The mutable state of one run, shared by the engine's parts (never global)."""
from __future__ import annotations

import math
import weakref
from typing import Any

import numpy as np

from backtest.account import Account
from backtest.contracts import contract_for
from backtest.journal import Journal
from backtest.margin import MarginModel
from backtest.market_data import MarketData
from backtest.orders import OrderBook

__all__ = ["RunState", "run_fee_rates"]


class RunState:
    """What one run knows at the current instant.

    Attributes
    ----------
    data : MarketData
    account : Account
    margin : MarginModel
    book : OrderBook
    journal : Journal
    marks, lasts : list of float
        Current mark and last price per symbol (set by whichever phase is running).
    bar : int
        Index of the strategy bar being processed.
    now : int
        Current simulated time, UTC ms.
    """

    def __init__(self, data: MarketData, config: Any, venue: Any, slippage: Any,
                 warnings: list[str]) -> None:
        self.data = data
        self.config = config
        self.venue = venue
        self.slippage = slippage
        #: The orderly taker impact when the model's answer depends on none of its arguments
        #: (exactly NoSlippage / FixedBps), else None: the broker then asks the model per fill.
        self.taker_impact = _constant_taker_impact(slippage)
        #: Per symbol, the bars' slippage factors (``slippage_scale`` column) or None.
        self.impact_scales = [None if b.slippage_scale is None else _view(b.slippage_scale, np.float64)
                              for b in (data.bars[s] for s in data.symbols)]
        self.warnings = warnings
        symbols = data.symbols
        self.n_symbols = len(symbols)
        self.account = Account(symbols, config.initial_balance,
                               [float(config.for_symbol("leverage", s)) for s in symbols],
                               [config.for_symbol("margin_mode", s) for s in symbols],
                               config.position_mode == "hedge", venue.unrealized_pnl)
        #: Per symbol, the contract arithmetic of its market spec (linear / inverse).
        self.contracts = [contract_for(data.markets[s]) for s in symbols]
        _check_one_margin_asset(symbols, self.contracts)
        for pos in self.account.positions:
            pos.use_contract(self.contracts[pos.sym])
        schedules = [_schedule(config.tiers, data.tiers, s) for s in symbols]
        self.margin = MarginModel(venue, schedules, allow_before_first=config.allow_tiers_before_first,
                                  warnings=warnings, contracts=self.contracts)
        if getattr(venue, "funding_maintenance_rate", None) is not None:  # BitMEX: the next funding in maintenance
            clock = weakref.ref(self)  # weak: the model is the state's (no cycle)
            self.margin.use_funding([(data.funding[s].ts, data.funding[s].rate) for s in symbols],
                                    lambda: clock().now)
        #: Counter bumped whenever a gating threshold may have changed.
        self.gen = [0]
        self.book = OrderBook(self.n_symbols, self.gen)
        self.journal = Journal()
        self.markets = [data.markets[s] for s in symbols]
        self.bars = [data.bars[s] for s in symbols]
        # per-bar scalar reads through memoryviews: Python floats/ints, the same values as
        # float(array[i]) / int(array[i]), without a NumPy scalar per read
        self.open_views = [(_view(b.mark_open, np.float64), _view(b.open, np.float64))
                           for b in self.bars]
        self.close_views = [(_view(b.mark_close, np.float64), _view(b.close, np.float64))
                            for b in self.bars]
        #: Per symbol (high, low, volume) of each bar as memoryviews (fills at the open).
        self.range_views = [(_view(b.high, np.float64), _view(b.low, np.float64),
                             _view(b.volume, np.float64)) for b in self.bars]
        self._ts = _view(data.ts, np.int64)
        self._interval = int(data.interval_ms)
        self.marks = [float(b.mark_open[0]) if len(b) else math.nan for b in self.bars]
        self.lasts = [float(b.open[0]) if len(b) else math.nan for b in self.bars]
        self.bar = 0
        self.now = int(data.ts[0]) if len(data) else 0
        self.hooks: Any = None  # the engine's callback dispatcher (strategy hooks)
        self.fee_rates = [run_fee_rates(config, m) for m in self.markets]
        self.clearance = [self._clearance(m) for m in self.markets]
        #: ``(symbol index, MarketSpec)`` of each market version applied during the run.
        self.market_log: list[tuple[int, Any]] = []
        self.rounding = config.rounding
        _attach_ledger(self, config, data)

    def _clearance(self, market: Any) -> float:
        if self.config.liquidation_fee_rate is not None:
            return float(self.config.liquidation_fee_rate)
        return market.liquidation_fee_rate

    def set_close_marks(self, i: int) -> None:
        """Current prices := the close of bar ``i`` (the instant the strategy acts)."""
        self._set_prices(self.close_views, i)
        self.now = self._ts[i] + self._interval

    def set_open_marks(self, i: int) -> None:
        """Current prices := the open of bar ``i``."""
        self._set_prices(self.open_views, i)
        self.now = self._ts[i]

    def _set_prices(self, views: list[tuple[memoryview, memoryview]], i: int) -> None:
        marks, lasts = self.marks, self.lasts
        for s, (mark, last) in enumerate(views):
            marks[s] = mark[i]
            lasts[s] = last[i]

    def refresh(self) -> None:
        """Recompute liquidation prices and gates after a state change; snapshot the bar."""
        self.margin.refresh(self.account, self.marks)
        self.journal.snapshot(self.bar, self.account)
        self.gen[0] += 1

    def slipped_price(self, sym: int, side: int, ref: float, impact: float) -> float:
        """``ref`` moved against ``side`` by ``impact`` (times the bar's ``slippage_scale``,
        capped at 1), rounded to the tick against the order; ``ref`` itself when no impact."""
        scale = self.impact_scales[sym]
        if scale is not None:
            impact = min(1.0, impact * scale[self.bar])
        if impact == 0.0:
            return ref
        return self.round_price(sym, ref * (1.0 + side * impact), side)

    def round_qty(self, sym: int, qty: float) -> float:
        """Round a quantity down to the symbol's lot (no-op when rounding is off)."""
        if not self.rounding:
            return qty
        lot = self.markets[sym].lot_size
        return math.floor(qty / lot + 1e-9) * lot

    def round_price(self, sym: int, price: float, side: int) -> float:
        """Round a slipped fill price to the tick, against the order (buys up, sells down)."""
        if not self.rounding:
            return price
        tick = self.markets[sym].tick_size
        units = price / tick
        return (math.ceil(units - 1e-9) if side > 0 else math.floor(units + 1e-9)) * tick


def _attach_ledger(state: RunState, config: Any, data: MarketData) -> None:
    """The account's insurance fund, collateral ledger and clock; the run's ADL events."""
    from backtest.adl import Deleverager
    from backtest.insurance_fund import InsuranceFund
    from backtest.ledger import Ledger, StateClock

    acct = state.account
    acct.clock = StateClock(state)
    acct.fund = InsuranceFund(config.insurance_fund, int(data.ts[0]) if len(data) else 0)
    assets = {a: q for a, q in (config.collateral or {}).items() if a != "USDT"}
    if assets:
        from backtest.errors import ConfigError, did_you_mean
        from backtest.venues.collateral import SCHEDULES

        bases = {data.markets[s].base: k for k, s in enumerate(data.symbols)}
        for asset in assets:
            if asset not in bases:
                raise ConfigError(
                    f"RunConfig.collateral: {asset!r} has no price series in this run"
                    f"{did_you_mean(asset, bases)}; add a symbol whose base is {asset} (e.g. "
                    f"{asset}/USDT:USDT: its mark candles value the collateral), found bases "
                    f"{', '.join(bases)}")
        acct.ledger = Ledger(assets, SCHEDULES[config.collateral_table], bases,
                             state.venue.auto_exchange_amount)
        acct.ledger.reprice(state.now, state.marks)
    state.adl = Deleverager(state)


def _check_one_margin_asset(symbols: tuple[str, ...], contracts: list[Any]) -> None:
    """Refuse a run whose symbols settle in different assets (one wallet per run).

    Raises
    ------
    ConfigError
        Naming the symbols and their margin assets, and the fix.
    """
    assets = {c.margin_asset for c in contracts}
    if len(assets) > 1:
        from backtest.errors import ConfigError

        found = ", ".join(f"{s} in {c.margin_asset}" for s, c in zip(symbols, contracts))
        raise ConfigError(
            f"run: the symbols settle in different margin assets ({found}); a run has one "
            "wallet, so run each margin asset separately (e.g. BTC/USD:BTC alone, "
            "ETH/USD:ETH alone)")


def run_fee_rates(config: Any, market: Any) -> tuple[float, float]:
    """(maker, taker) trading-fee rates a run charges on ``market``: ``config.fees`` when set,
    else the market's own (fractions of notional). Shared by the run state and the inputs of
    a strategy's vectorized signal (``backtest.strategy.SignalInputs``)."""
    if config.fees is not None:
        return config.fees
    return market.maker_fee, market.taker_fee


def _constant_taker_impact(slippage: Any) -> float | None:
    """``slippage.impact(..., forced=False)`` when it is the same for every fill, else None."""
    from backtest.slippage import FixedBps, NoSlippage

    if type(slippage) not in (FixedBps, NoSlippage):  # subclasses may depend on the fill
        return None
    return slippage.impact(qty=1.0, price=1.0, bar_high=1.0, bar_low=1.0, bar_volume=math.nan,
                           forced=False)


def _view(values: Any, dtype: Any) -> memoryview:
    """A memoryview of ``values`` as a contiguous ``dtype`` array (no copy when it already is).

    Indexing it returns a Python float (int) equal to ``float(values[i])`` (``int(...)``).
    """
    return memoryview(np.ascontiguousarray(values, dtype=dtype))


def _schedule(override: Any, data_tiers: dict[str, Any], symbol: str) -> Any:
    """The tier schedule of ``symbol``: the config override, else the data's; tables wrapped."""
    from backtest.venues.tiers import TierSchedule, TierTable

    value = data_tiers[symbol]
    if override is not None:
        value = override.get(symbol, value) if isinstance(override, dict) else override
    if isinstance(value, TierTable):
        value = TierSchedule([(0, value)], label=f"{symbol} (override)")
    return value

