"""Exogenous price paths at the cascade's step (e.g. 1 s): from candles or synthetic.

A candle is walked open -> high -> low -> close for a falling bar and open -> low -> high ->
close for a rising one (the extremes at 1/3 and 2/3 of the bar), linearly in log price. The
path is the *exogenous* index: the move the cascade did not cause. A stored crash window
already contains the real cascade's impact, so amplification measured on it is an upper
bound (docs/cascade.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from backtest.cascade.errors import CascadeError

__all__ = ["ExogenousPath", "WindowPaths", "montecarlo_paths", "path_from_bars", "shock_path", "window_paths"]


@dataclass(frozen=True)
class ExogenousPath:
    """Index price per step: ``ts`` (UTC ms, int64) and ``price`` (quote per base)."""

    ts: NDArray[np.int64]
    price: NDArray[np.float64]

    def __post_init__(self) -> None:
        if len(self.ts) < 2 or len(self.ts) != len(self.price):
            raise CascadeError(f"exogenous path: expected >= 2 steps with one price each, found "
                               f"{len(self.ts)} times and {len(self.price)} prices")
        if not (np.isfinite(self.price).all() and (self.price > 0).all()):
            raise CascadeError("exogenous path: prices must be finite and > 0")
        if not (np.diff(self.ts) > 0).all():
            raise CascadeError("exogenous path: times must be strictly increasing")

    @property
    def step_s(self) -> float:
        """Step length in seconds (from the first two times)."""
        return float(self.ts[1] - self.ts[0]) / 1000.0


def path_from_bars(ts_ms: NDArray[np.int64], open_: NDArray[np.float64], high: NDArray[np.float64],
                   low: NDArray[np.float64], close: NDArray[np.float64], *, bar_ms: int,
                   step_s: float = 1.0) -> ExogenousPath:
    """Interpolate candles to ``step_s`` steps (see the module docstring)."""
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    if len(ts_ms) == 0:
        raise CascadeError("exogenous path: the window holds no candle; choose a range with data")
    falling = np.asarray(close) < np.asarray(open_)
    first = np.where(falling, high, low)
    second = np.where(falling, low, high)
    knots_t = np.stack([ts_ms, ts_ms + bar_ms / 3, ts_ms + 2 * bar_ms / 3, ts_ms + bar_ms - 1], axis=1).ravel()
    knots_p = np.log(np.stack([open_, first, second, close], axis=1).ravel())
    step_ms = int(round(step_s * 1000))
    ts = np.arange(int(ts_ms[0]), int(ts_ms[-1]) + bar_ms, step_ms, dtype=np.int64)
    return ExogenousPath(ts, np.exp(np.interp(ts, knots_t, knots_p)))


def shock_path(*, start_price: float, seconds: int, drop: float, shock_start_s: int = 60,
               shock_seconds: int = 120, start_ms: int = 0, step_s: float = 1.0) -> ExogenousPath:
    """A flat path with one linear (in log price) move of ``drop`` (0.1 = -10 %; < 0 = rally)."""
    if not drop < 1:
        raise CascadeError(f"shock path: drop must be < 1 (a fraction of the price), found {drop}")
    if seconds < 2 or shock_seconds < 1:
        raise CascadeError("shock path: seconds must be >= 2 and shock_seconds >= 1")
    t = np.arange(0.0, seconds, step_s)
    progress = np.clip((t - shock_start_s) / shock_seconds, 0.0, 1.0)
    price = start_price * np.exp(np.log1p(-drop) * progress)
    return ExogenousPath(start_ms + (t * 1000).astype(np.int64), price)


def montecarlo_paths(model, *, seed: int, start_prices: dict[str, float], seconds: int,  # noqa: ANN001
                     start_ms: int = 0, step_s: float = 1.0) -> dict[str, ExogenousPath]:
    """One Monte Carlo path of the risk lab's return models as the exogenous path of every symbol.

    ``model`` is a fitted :class:`backtest.risk.paths.ReturnModel` (GBM, GARCH-t, Merton jump,
    bootstrap) on its own step (e.g. 1 minute). One path of ``ceil(seconds / step)`` steps is
    drawn with ``numpy.random.default_rng(seed)``; each simulated step becomes a candle (open,
    the bridge-sampled low and high, close) walked to ``step_s`` steps by
    :func:`path_from_bars`, so the intra-step extremes the model drew are on the path.

    Every symbol follows the same log returns from its own start price: a crash moves the
    majors together (a documented simplification: correlation 1).

    Raises
    ------
    CascadeError
        ``seconds`` shorter than one model step, or no start price.
    """
    if not start_prices:
        raise CascadeError("Monte Carlo path: expected at least one symbol with a start price")
    n_steps = int(np.ceil(seconds * 1000 / model.step_ms))
    if n_steps < 1:
        raise CascadeError(f"Monte Carlo path: seconds must cover >= 1 model step ({model.step_ms} ms), found {seconds}")
    simulated = model.simulate(np.random.default_rng(seed), n_paths=1, n_steps=n_steps, s0=1.0)
    rel_close = simulated.log_close[0]
    ts = start_ms + np.arange(n_steps, dtype=np.int64) * int(model.step_ms)
    out = {}
    for symbol, p0 in sorted(start_prices.items()):
        shift = float(np.log(p0))
        out[symbol] = path_from_bars(ts, np.exp(rel_close[:-1] + shift), np.exp(simulated.log_high[0] + shift),
                                     np.exp(simulated.log_low[0] + shift), np.exp(rel_close[1:] + shift),
                                     bar_ms=int(model.step_ms), step_s=step_s)
    return out


@dataclass(frozen=True)
class WindowPaths:
    """Exogenous paths of several symbols read from the store, with the data warnings."""

    paths: dict[str, ExogenousPath]
    warnings: list[str]
    sources: list[dict]
    tiers: dict


def window_paths(store, *, exchange: str, symbols: list[str], timeframe: str, start_ms: int,  # noqa: ANN001
                 end_ms: int, step_s: float = 1.0) -> WindowPaths:
    """Read each symbol's last-price candles of ``[start_ms, end_ms)`` through
    :func:`backtest.risk.data.load_window` (the one store loader) and interpolate them to steps.

    ``tiers`` holds each symbol's tier schedule as that loader resolves it (stored tables where
    they cover the date, the built-in ones before), for the window's exchange.

    Raises
    ------
    backtest.risk.errors.MissingWindowDataError
        When a symbol has no candle in the range (the message says how to fetch it).
    CascadeError
        When the symbols' candles do not cover the same times.
    """
    from backtest.risk.data import load_window
    from data_loaders.schemas import timeframe_ms, to_ms

    bar_ms = timeframe_ms(timeframe)
    paths: dict[str, ExogenousPath] = {}
    warnings: list[str] = []
    sources: list[dict] = []
    tiers: dict = {}
    for symbol in symbols:
        data = load_window(store, exchange=exchange, symbol=symbol, timeframe=timeframe, start_ms=start_ms,
                           end_ms=end_ms, label=f"cascade window {symbol} {timeframe}")
        bars = data.bars
        ts = np.array([to_ms(v) for v in bars["ts"].to_list()], dtype=np.int64)
        paths[symbol] = path_from_bars(ts, bars["open"].to_numpy(), bars["high"].to_numpy(), bars["low"].to_numpy(),
                                       bars["close"].to_numpy(), bar_ms=bar_ms, step_s=step_s)
        warnings += data.warnings
        sources += data.sources
        if data.tiers is not None:
            tiers[symbol] = data.tiers
    first = next(iter(paths.values()))
    for symbol, path in paths.items():
        if not np.array_equal(path.ts, first.ts):
            raise CascadeError(f"cascade window: {symbol}'s candles cover {len(path.ts)} steps from "
                               f"{int(path.ts[0])} ms, {symbols[0]}'s {len(first.ts)} from {int(first.ts[0])} ms; "
                               "expected the same bars for every symbol (fill the gaps or narrow the window)")
    return WindowPaths(paths, warnings, sources, tiers)
