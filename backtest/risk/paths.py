"""Simulated price paths and the returns they are fitted to.

A :class:`PricePaths` holds log prices on a regular grid plus, for every step, the extreme the
continuous path reached inside the step (sampled from a Brownian bridge or taken from real
candles). The liquidation check compares those extremes with a barrier, so a path that dips
through a liquidation price between two grid points is caught — the discrete-monitoring bias
of checking step ends only is removed rather than ignored.

:class:`ReturnSample` turns candles (the engine's bar format) into the per-step log returns
and intra-bar excursions every model is fitted to, skipping returns that span a gap.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import polars as pl

from backtest.risk.errors import FitError
from backtest.risk.stats import sample_bridge_extreme

__all__ = ["GBM", "PricePaths", "ReturnModel", "ReturnSample", "to_ms"]

PriceKind = Literal["last", "mark"]


def to_ms(column: pl.Series) -> np.ndarray:
    """Return a timestamp column as int64 milliseconds since the epoch (UTC)."""
    if column.dtype == pl.Int64:
        return column.to_numpy()
    if isinstance(column.dtype, pl.Datetime):
        return column.dt.epoch("ms").to_numpy()
    raise FitError(
        f"timestamp column {column.name!r}: expected Int64 ms or Datetime, found {column.dtype}; "
        "pass the engine's bar format (ts = bar open time)"
    )


class PricePaths:
    """Log-price paths on a regular grid with the intra-step extremes.

    Attributes
    ----------
    log_close : ndarray, shape (n_paths, n_steps + 1)
        Log price at each grid point; column 0 is ``ln(s0)``.
    log_low : ndarray, shape (n_paths, n_steps)
        Lowest log price inside each step (``<=`` both of its end points).
    log_high : ndarray, shape (n_paths, n_steps)
        Highest log price inside each step.
    step_ms : int
        Duration of one step in milliseconds.

    ``log_low`` and ``log_high`` may be given as arrays or as zero-argument callables that
    compute them; a callable runs on first access only. A liquidation check reads one side
    (lows for a long, highs for a short), so the other side's Brownian-bridge draw is never
    computed (its uniforms are still drawn, so the random stream does not depend on the side).
    """

    __slots__ = ("_extremes", "log_close", "step_ms")

    def __init__(self, log_close: np.ndarray, log_low: np.ndarray | Callable[[], np.ndarray],
                 log_high: np.ndarray | Callable[[], np.ndarray], step_ms: int) -> None:
        self.log_close = log_close
        self.step_ms = step_ms
        self._extremes: dict[str, np.ndarray | Callable[[], np.ndarray]] = {"low": log_low, "high": log_high}

    def _extreme(self, side: str) -> np.ndarray:
        value = self._extremes[side]
        if callable(value):
            value = self._extremes[side] = value()
        return value

    @property
    def log_low(self) -> np.ndarray:
        """Lowest log price inside each step, shape (n_paths, n_steps)."""
        return self._extreme("low")

    @property
    def log_high(self) -> np.ndarray:
        """Highest log price inside each step, shape (n_paths, n_steps)."""
        return self._extreme("high")

    @property
    def n_paths(self) -> int:
        """Number of paths."""
        return int(self.log_close.shape[0])

    @property
    def n_steps(self) -> int:
        """Number of steps per path."""
        return int(self.log_close.shape[1] - 1)

    def close(self) -> np.ndarray:
        """Prices (quote currency) at the grid points, shape (n_paths, n_steps + 1)."""
        return np.exp(self.log_close)


@runtime_checkable
class ReturnModel(Protocol):
    """A fitted model of one-step log returns that can simulate :class:`PricePaths`."""

    name: str
    step_ms: int

    def simulate(self, rng: np.random.Generator, *, n_paths: int, n_steps: int, s0: float) -> PricePaths:
        """Simulate ``n_paths`` paths of ``n_steps`` steps starting at price ``s0``."""
        ...

    def describe(self) -> dict[str, float | int | str]:
        """The fitted parameters and fit statistics, for reports."""
        ...


def assemble_paths(
    log_s0: float,
    increments: np.ndarray,
    step_variance: np.ndarray | float,
    rng: np.random.Generator,
    step_ms: int,
) -> PricePaths:
    """Cumulate increments into paths and draw each step's low and high from a Brownian bridge."""
    n_paths, n_steps = increments.shape
    log_close = np.empty((n_paths, n_steps + 1))
    log_close[:, 0] = log_s0
    np.cumsum(increments, axis=1, out=log_close[:, 1:])
    log_close[:, 1:] += log_s0
    start, end = log_close[:, :-1], log_close[:, 1:]
    # both sides' uniforms are drawn now (low first) so the stream is the same whichever side is
    # read; the bridge itself is computed only for the side that is read. 1 - U lies in (0, 1],
    # so the logarithm is finite
    u_low = rng.random((n_paths, n_steps))
    u_high = rng.random((n_paths, n_steps))

    def extreme(uniforms: np.ndarray, lower: bool) -> Callable[[], np.ndarray]:
        return lambda: sample_bridge_extreme(start, end, step_variance, 1.0 - uniforms, lower=lower)

    return PricePaths(log_close=log_close, log_low=extreme(u_low, True), log_high=extreme(u_high, False),
                      step_ms=step_ms)


@dataclass(frozen=True)
class GBM:
    """Geometric Brownian motion: i.i.d. normal log returns, exact intra-step extremes.

    Parameters
    ----------
    sigma_step : float
        Standard deviation of the log return over one step.
    drift_step : float, default 0
        Mean log return per step (0 = no drift in the log price).
    step_ms : int, default 60_000
        Step duration in milliseconds.
    continuous : bool, default True
        True: each step's low/high is drawn from the Brownian bridge (continuous monitoring,
        matches the closed form exactly). False: the extremes are the step's end points
        (discrete monitoring, for checking the Broadie–Glasserman–Kou correction).
    """

    sigma_step: float
    drift_step: float = 0.0
    step_ms: int = 60_000
    continuous: bool = True
    name: str = field(default="gbm", init=False)

    def simulate(self, rng: np.random.Generator, *, n_paths: int, n_steps: int, s0: float) -> PricePaths:
        """Simulate paths; see :class:`ReturnModel`."""
        increments = self.drift_step + self.sigma_step * rng.standard_normal((n_paths, n_steps))
        if self.continuous:
            return assemble_paths(np.log(s0), increments, self.sigma_step**2, rng, self.step_ms)
        log_close = np.empty((n_paths, n_steps + 1))
        log_close[:, 0] = np.log(s0)
        np.cumsum(increments, axis=1, out=log_close[:, 1:])
        log_close[:, 1:] += np.log(s0)
        low = np.minimum(log_close[:, :-1], log_close[:, 1:])
        high = np.maximum(log_close[:, :-1], log_close[:, 1:])
        return PricePaths(log_close=log_close, log_low=low, log_high=high, step_ms=self.step_ms)

    def describe(self) -> dict[str, float | int | str]:
        """Parameters of the model."""
        return {"model": self.name, "sigma_step": self.sigma_step, "drift_step": self.drift_step,
                "step_ms": self.step_ms}


@dataclass(frozen=True)
class ReturnSample:
    """Per-step log returns and intra-bar excursions taken from candles.

    Attributes
    ----------
    returns : ndarray
        ``ln(close_i / close_{i-1})`` for consecutive bars only (returns across gaps dropped).
    low_excursions : ndarray
        ``ln(low_i / close_{i-1})`` for the same bars (<= 0 unless the bar gapped up).
    high_excursions : ndarray
        ``ln(high_i / close_{i-1})``.
    step_ms : int
        Bar duration in milliseconds.
    price : {"last", "mark"}
        Which price the columns were taken from.
    start_ms, end_ms : int
        First and last bar open time used.
    n_gaps : int
        Number of missing-bar gaps skipped.
    """

    returns: np.ndarray
    low_excursions: np.ndarray
    high_excursions: np.ndarray
    step_ms: int
    price: PriceKind
    start_ms: int
    end_ms: int
    n_gaps: int

    @classmethod
    def from_bars(
        cls,
        bars: pl.DataFrame,
        *,
        price: PriceKind = "last",
        ts_column: str = "ts",
        step_ms: int | None = None,
        min_returns: int = 100,
    ) -> ReturnSample:
        """Build a sample from a bar frame (``ts, open, high, low, close`` and ``mark_*``).

        Parameters
        ----------
        bars : polars.DataFrame
            Candles sorted by ``ts`` (bar open time). With ``price="mark"`` the columns
            ``mark_high, mark_low, mark_close`` are used.
        price : {"last", "mark"}
            Which price to model.
        ts_column : str, default "ts"
            Name of the open-time column (int64 ms or Datetime).
        step_ms : int, optional
            Bar duration; default the most frequent spacing.
        min_returns : int, default 100
            Fewer usable returns raise :class:`FitError`.
        """
        if price not in ("last", "mark"):
            # any other name would silently model the last price: refuse it
            raise FitError(f"return sample: price must be 'mark' or 'last', found {price!r}; Binance "
                           "liquidates on the mark price, so fit on 'mark' when mark candles are stored")
        prefix = "mark_" if price == "mark" else ""
        needed = [ts_column, f"{prefix}high", f"{prefix}low", f"{prefix}close"]
        missing = [c for c in needed if c not in bars.columns]
        if missing:
            raise FitError(
                f"return sample: bars lack columns {missing} (have {bars.columns}); "
                f"price={price!r} needs {needed}"
            )
        ts = to_ms(bars[ts_column])
        if len(ts) < 2 or np.any(np.diff(ts) <= 0):
            raise FitError("return sample: bars must hold >= 2 rows with strictly increasing ts; "
                           "sort and de-duplicate them first")
        spacing = np.diff(ts)
        if step_ms is None:
            values, counts = np.unique(spacing, return_counts=True)
            step_ms = int(values[np.argmax(counts)])
        close = bars[f"{prefix}close"].to_numpy().astype(float)
        high = bars[f"{prefix}high"].to_numpy().astype(float)
        low = bars[f"{prefix}low"].to_numpy().astype(float)
        if not (np.all(np.isfinite(close)) and np.all(close > 0) and np.all(low > 0)):
            raise FitError(f"return sample: {price} prices must be finite and > 0; "
                           "drop or repair the bad rows (margincall data validate)")
        consecutive = spacing == step_ms
        prev_close = close[:-1]
        returns = np.log(close[1:] / prev_close)[consecutive]
        lows = np.minimum(np.log(low[1:] / prev_close), 0.0)[consecutive]
        highs = np.maximum(np.log(high[1:] / prev_close), 0.0)[consecutive]
        if returns.size < min_returns:
            raise FitError(f"return sample: {returns.size} usable {price} returns, need >= {min_returns}; "
                           "use a longer range of data")
        return cls(returns=returns, low_excursions=np.minimum(lows, np.minimum(returns, 0.0)),
                   high_excursions=np.maximum(highs, np.maximum(returns, 0.0)),
                   step_ms=int(step_ms), price=price, start_ms=int(ts[0]), end_ms=int(ts[-1]),
                   n_gaps=int(np.count_nonzero(~consecutive)))
