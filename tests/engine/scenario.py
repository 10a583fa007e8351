"""Helpers for tiny inline candle tables (freqtrade style)."""
from __future__ import annotations

from collections.abc import Callable

import polars as pl

from backtest import MarketData, RunConfig, Strategy
from backtest.slippage import NoSlippage
from backtest.venues.tiers import TierTable

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MINUTE = 60_000
HOUR = 3_600_000
SYMBOL = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"

#: One 0.5 % tier without maintenance amount, max leverage 50x.
FLAT_TIER = TierTable.from_rates([(0.0, 0.005)], max_leverage=[50.0])


def candles(rows: list[tuple], *, step: int = MINUTE, start: int = T0) -> pl.DataFrame:
    """Bars from rows ``(o, h, l, c)`` (mark = last) or ``(o, h, l, c, mo, mh, ml, mc)``."""
    data: dict[str, list] = {k: [] for k in ("ts", "open", "high", "low", "close", "volume",
                                             "mark_open", "mark_high", "mark_low", "mark_close")}
    for k, row in enumerate(rows):
        o, h, lo, c = row[:4]
        mo, mh, ml, mc = row[4:8] if len(row) >= 8 else (o, h, lo, c)
        for key, value in zip(data, (start + k * step, o, h, lo, c, 1_000.0, mo, mh, ml, mc)):
            data[key].append(value)
    frame = pl.DataFrame(data)
    return frame.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))


def market(rows: list[tuple], *, funding: pl.DataFrame | None = None, timeframe: str = "1m",
           detail: list[tuple] | None = None, detail_timeframe: str | None = None,
           extra: dict[str, list[tuple]] | None = None) -> MarketData:
    """MarketData of BTC (and ``extra`` symbols) from inline rows."""
    step = {"1m": MINUTE, "1h": HOUR}[timeframe]
    bars = {SYMBOL: candles(rows, step=step)}
    for symbol, more in (extra or {}).items():
        bars[symbol] = candles(more, step=step)
    detail_bars = None
    if detail is not None:
        dstep = {"1m": MINUTE, "5m": 5 * MINUTE}[detail_timeframe or "1m"]
        detail_bars = {SYMBOL: candles(detail, step=dstep)}
    return MarketData.from_frames(bars, {SYMBOL: funding} if funding is not None else None,
                                  timeframe=timeframe, detail_bars=detail_bars,
                                  detail_timeframe=detail_timeframe)


def config(**overrides) -> RunConfig:
    """Textbook configuration: flat 0.5 % tier, no fees, no slippage, no rounding."""
    base = dict(initial_balance=10_000.0, leverage=10.0, margin_mode="isolated",
                tiers=FLAT_TIER, fees=(0.0, 0.0), liquidation_fee_rate=0.0,
                slippage=NoSlippage(), rounding=False)
    base.update(overrides)
    return RunConfig(**base)


class Script(Strategy):
    """Runs ``actions[bar_index](ctx)`` at the given bar closes (a test double of a strategy)."""

    actions: dict = {}

    def __init__(self, actions: dict[int, Callable] | None = None, **params) -> None:
        super().__init__(**params)
        self.actions = actions or {}
        self.seen: list[int] = []

    def on_bar(self, ctx) -> None:  # noqa: ANN001
        self.seen.append(ctx.bar_index)
        action = self.actions.get(ctx.bar_index)
        if action is not None:
            action(ctx)


#: RunConfig.liquidation_latency_ms default: a forced order fills this long after its trigger.
LATENCY = 1_000


def path_at(start: int, interval: int, prices: tuple[float, float, float, float], t: float) -> float:
    """The price at time ``t`` on a candle's four-tick path (docs/engine.md "Intrabar path").

    ``prices`` are the four ticks in path order (open, first extreme, second extreme, close),
    at ``start``, ``+iv//3``, ``+2*iv//3`` and ``+iv-1``; linear in between, held after the last.
    """
    times = (start, start + interval // 3, start + (2 * interval) // 3, start + interval - 1)
    if t >= times[-1]:
        return prices[-1]
    for k in range(1, 4):
        if t < times[k]:
            f = (t - times[k - 1]) / (times[k] - times[k - 1])
            return prices[k - 1] + (prices[k] - prices[k - 1]) * f
    return prices[-1]


def trigger_ms(start: int, interval: int, marks: tuple[float, float, float, float], lp: float,
               k: int = 1) -> int:
    """Trigger time (ms, floored as the engine stamps it) where the mark path of segment
    ``k - 1 -> k`` reaches ``lp``."""
    times = (start, start + interval // 3, start + (2 * interval) // 3, start + interval - 1)
    ta, tb = times[k - 1], times[k]
    f = (marks[k - 1] - lp) / (marks[k - 1] - marks[k])
    return int(ta + (tb - ta) * f)
