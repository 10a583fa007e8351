"""Monte Carlo liquidation probabilities: P(liquidated within h) per leverage, with CIs.

Paths come from any :class:`~backtest.risk.paths.ReturnModel` (block bootstrap, GARCH-t,
Merton jumps, GBM) and are read as the **mark** price. For a long the running minimum of the
per-step lows is computed once per path; because it is non-increasing, the first step at
which it reaches a barrier ``b`` is simply the number of steps where it is still above ``b``
— one vectorized comparison per leverage, no per-path search. Shorts mirror this with the
running maximum of the highs.

Paths are simulated in fixed chunks, each from its own child of ``SeedSequence(seed)``; the
chunk layout depends only on ``n_paths`` and ``CHUNK_PATHS``, so results are identical
whatever the number of worker threads.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from backtest.risk.barriers import LiquidationBarrier
from backtest.risk.errors import RiskError
from backtest.risk.paths import ReturnModel
from backtest.risk.stats import wilson_interval

__all__ = ["CHUNK_PATHS", "FAN_QUANTILES", "FirstPassage", "LiquidationStudy", "available_memory_bytes",
           "memory_estimate_bytes", "simulate_first_passage"]

#: Paths per simulation chunk (fixed so that results do not depend on the thread count).
CHUNK_PATHS = 1_000
#: Quantiles drawn as the bands of fan charts (:meth:`LiquidationStudy.equity_fan`).
FAN_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Paths whose prices are kept for the fan chart (the first ones simulated).
FAN_PATHS = 2_000
#: float64 arrays of shape (chunk paths, steps) alive at once while a chunk is simulated and
#: scanned (indices or shocks, log close/low/high, running extreme, one comparison mask).
_CELLS_PER_STEP = 6
#: Largest share of the available memory a simulation may plan to use.
MEMORY_SHARE = 0.5


def memory_estimate_bytes(*, n_paths: int, n_steps: int, n_barriers: int, workers: int = 1) -> int:
    """Peak memory of :func:`simulate_first_passage`, bytes (an estimate, on the high side).

    Chunks of :data:`CHUNK_PATHS` paths in flight on ``workers`` threads, each holding
    ``_CELLS_PER_STEP`` float64 arrays of ``(paths, steps)``; plus the kept fan paths (float32),
    the hit steps of every barrier (int32 per path and barrier) and the path extremes.
    """
    chunk = min(CHUNK_PATHS, n_paths)
    in_flight = max(1, min(int(workers), -(-n_paths // CHUNK_PATHS)))
    simulate = in_flight * chunk * (n_steps + 1) * 8 * _CELLS_PER_STEP
    fan = min(n_paths, FAN_PATHS) * (n_steps + 1) * 4
    return int(simulate + fan + n_paths * (4 * max(n_barriers, 1) + 8))


def available_memory_bytes() -> int | None:
    """Memory available to new allocations (Linux ``MemAvailable``, else free pages); None if unknown."""
    import os

    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _check_memory(n_paths: int, n_steps: int, n_barriers: int, workers: int) -> None:
    """Refuse a simulation whose estimated memory exceeds :data:`MEMORY_SHARE` of what is available."""
    need = memory_estimate_bytes(n_paths=n_paths, n_steps=n_steps, n_barriers=n_barriers, workers=workers)
    available = available_memory_bytes()
    if available is None or need <= MEMORY_SHARE * available:
        return
    gib = 1024 ** 3
    raise RiskError(
        f"Monte Carlo: {n_paths:,} paths x {n_steps:,} steps x {n_barriers} leverage(s) on {workers} thread(s) "
        f"needs about {need / gib:,.1f} GiB, more than {MEMORY_SHARE:.0%} of the {available / gib:,.1f} GiB "
        "available; shorten the horizon (--horizon), use a coarser step (--timeframe), or fewer --paths / "
        "--workers")


@dataclass(frozen=True)
class FirstPassage:
    """First steps at which each path crossed each barrier.

    Attributes
    ----------
    hit_step : ndarray of int32, shape (n_barriers, n_paths)
        0-based index of the step during which the mark first reached the barrier;
        ``n_steps`` when it never did within the simulated horizon.
    extreme : ndarray, shape (n_paths,)
        Lowest (long) / highest (short) mark price of each path over the horizon.
    barriers : ndarray, shape (n_barriers,)
        Barrier prices, in the order given.
    side : int
        +1: barriers are below the start (long positions); -1: above (shorts).
    n_steps : int
        Simulated steps per path.
    step_ms : int
        Step duration in milliseconds.
    sample_close : ndarray of float32, shape (min(n_paths, FAN_PATHS), n_steps + 1)
        Prices of the first paths, kept for equity fans and charts.
    """

    hit_step: np.ndarray
    extreme: np.ndarray
    barriers: np.ndarray
    side: int
    n_steps: int
    step_ms: int
    sample_close: np.ndarray

    @property
    def n_paths(self) -> int:
        """Number of simulated paths."""
        return int(self.hit_step.shape[1])

    def liquidated(self, horizon_steps: int) -> np.ndarray:
        """Number of paths liquidated within ``horizon_steps`` steps, per barrier."""
        if not 0 < horizon_steps <= self.n_steps:
            raise RiskError(f"horizon of {horizon_steps} steps is outside the simulated 1..{self.n_steps}; "
                            "simulate a longer horizon")
        return np.count_nonzero(self.hit_step < horizon_steps, axis=1)

    def probability(self, horizon_steps: int) -> np.ndarray:
        """Estimated P(liquidated within ``horizon_steps``), per barrier."""
        return self.liquidated(horizon_steps) / self.n_paths

    def probability_for_barrier(self, barrier: float) -> float:
        """P(liquidated within the full horizon) for any barrier price, from the path extremes."""
        hit = self.extreme <= barrier if self.side > 0 else self.extreme >= barrier
        return float(np.count_nonzero(hit)) / self.n_paths


def _chunk(model: ReturnModel, seed: np.random.SeedSequence, n: int, n_steps: int, s0: float,
           log_barriers: np.ndarray, side: int, keep_fan: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    paths = model.simulate(rng, n_paths=n, n_steps=n_steps, s0=s0)
    if side > 0:
        running = np.minimum.accumulate(paths.log_low, axis=1)
        hits = np.stack([np.count_nonzero(running > b, axis=1) for b in log_barriers]) if log_barriers.size else \
            np.empty((0, n), dtype=np.int64)
    else:
        running = np.maximum.accumulate(paths.log_high, axis=1)
        hits = np.stack([np.count_nonzero(running < b, axis=1) for b in log_barriers]) if log_barriers.size else \
            np.empty((0, n), dtype=np.int64)
    fan = np.exp(paths.log_close[:keep_fan]).astype(np.float32) if keep_fan else None
    return hits.astype(np.int32), np.exp(running[:, -1]), fan


def simulate_first_passage(
    model: ReturnModel, *, barriers: Sequence[float], side: int, n_paths: int, n_steps: int, s0: float,
    seed: int, workers: int = 1,
) -> FirstPassage:
    """Simulate paths and record when each first reaches each barrier.

    Parameters
    ----------
    model : ReturnModel
        Fitted return model; its step is the simulation step.
    barriers : sequence of float
        Barrier prices (USDT). Non-positive barriers (a long that cannot be liquidated) never hit.
    side : int
        +1 for long positions (barriers below ``s0``), -1 for shorts.
    n_paths, n_steps : int
        Paths and steps per path (horizon = ``n_steps * model.step_ms``).
    s0 : float
        Starting mark price (entry), USDT.
    seed : int
        Seed of the ``SeedSequence``; the same seed gives identical results.
    workers : int, default 1
        Threads simulating chunks (numpy releases the GIL in the heavy kernels).
    """
    if n_paths < 1 or n_steps < 1 or not (math.isfinite(s0) and s0 > 0) or side not in (1, -1):
        raise RiskError(f"Monte Carlo: need n_paths >= 1, n_steps >= 1, a finite s0 > 0, side +1/-1; found "
                        f"n_paths={n_paths}, n_steps={n_steps}, s0={s0}, side={side}")
    levels = np.asarray(barriers, dtype=float)
    _check_memory(int(n_paths), int(n_steps), int(levels.size), max(1, int(workers)))
    with np.errstate(divide="ignore"):
        log_barriers = np.where(levels > 0, np.log(np.where(levels > 0, levels, 1.0)), -np.inf)
    sizes = [min(CHUNK_PATHS, n_paths - start) for start in range(0, n_paths, CHUNK_PATHS)]
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    fan_left = [max(0, min(size, FAN_PATHS - i * CHUNK_PATHS)) for i, size in enumerate(sizes)]
    jobs = [(model, s, n, n_steps, s0, log_barriers, side, k) for s, n, k in zip(seeds, sizes, fan_left)]
    if workers > 1 and len(jobs) > 1:  # one chunk: no pool to start
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda job: _chunk(*job), jobs))
    else:
        parts = [_chunk(*job) for job in jobs]
    hit_step = np.concatenate([p[0] for p in parts], axis=1)
    extreme = np.concatenate([p[1] for p in parts])
    fan_paths = np.concatenate([p[2] for p in parts if p[2] is not None], axis=0)
    return FirstPassage(hit_step=hit_step, extreme=extreme, barriers=levels, side=side, n_steps=n_steps,
                        step_ms=model.step_ms, sample_close=fan_paths)


@dataclass(frozen=True)
class LiquidationStudy:
    """Liquidation probabilities of a leverage grid under one return model.

    Attributes
    ----------
    barriers : tuple of LiquidationBarrier
        One per leverage (venue liquidation prices).
    passage : FirstPassage
        The simulated first-passage steps.
    model : dict
        ``model.describe()`` of the model used.
    confidence : float
        Confidence level of the Wilson intervals.
    """

    barriers: tuple[LiquidationBarrier, ...]
    passage: FirstPassage
    model: dict
    confidence: float = 0.95

    @classmethod
    def run(cls, model: ReturnModel, barriers: Sequence[LiquidationBarrier], *, horizon_ms: int, n_paths: int,
            seed: int, workers: int = 1, confidence: float = 0.95) -> LiquidationStudy:
        """Simulate ``n_paths`` paths over ``horizon_ms`` and test every barrier."""
        if not barriers:
            raise RiskError("liquidation study: no leverages given")
        sides = {b.side for b in barriers}
        entries = {b.entry_price for b in barriers}
        if len(sides) != 1 or len(entries) != 1:
            raise RiskError("liquidation study: all barriers must share one side and one entry price; "
                            f"found sides {sorted(sides)} and entries {sorted(entries)}")
        n_steps = horizon_ms // model.step_ms
        if n_steps < 1 or horizon_ms % model.step_ms:
            raise RiskError(f"liquidation study: horizon {horizon_ms} ms is not a positive multiple of the model "
                            f"step {model.step_ms} ms; pick a horizon of whole steps")
        passage = simulate_first_passage(model, barriers=[b.liquidation_price for b in barriers],
                                         side=sides.pop(), n_paths=n_paths, n_steps=int(n_steps),
                                         s0=entries.pop(), seed=seed, workers=workers)
        return cls(barriers=tuple(barriers), passage=passage, model=model.describe(), confidence=confidence)

    def table(self, horizons_ms: Sequence[int] | None = None) -> pl.DataFrame:
        """One row per (leverage, horizon): counts, probability, Wilson CI, median time to liquidation.

        Columns: ``leverage, horizon_ms, horizon_hours, n_paths, n_liquidated, probability,
        ci_low, ci_high, median_ttl_hours`` (among liquidated paths; null if none),
        ``liquidation_price, allowed, expected_loss`` (margin x probability, USDT).
        """
        p = self.passage
        horizons = list(horizons_ms) if horizons_ms else [p.n_steps * p.step_ms]
        rows = []
        for horizon in horizons:
            steps = int(horizon // p.step_ms)
            counts = p.liquidated(steps)
            low, high = wilson_interval(counts, p.n_paths, confidence=self.confidence)
            for i, barrier in enumerate(self.barriers):
                hit = p.hit_step[i][p.hit_step[i] < steps]
                median = float(np.median(hit + 1) * p.step_ms / 3_600_000) if hit.size else None
                rows.append({
                    "leverage": barrier.leverage, "horizon_ms": int(horizon), "horizon_hours": horizon / 3_600_000,
                    "n_paths": p.n_paths, "n_liquidated": int(counts[i]), "probability": counts[i] / p.n_paths,
                    "ci_low": float(low[i]), "ci_high": float(high[i]), "median_ttl_hours": median,
                    "liquidation_price": barrier.liquidation_price, "allowed": barrier.allowed,
                    "expected_loss": barrier.margin * counts[i] / p.n_paths,
                })
        return pl.DataFrame(rows)

    def equity_fan(self, index: int, quantiles: Sequence[float] = FAN_QUANTILES) -> np.ndarray:
        """Quantiles of the position's isolated equity over time for barrier ``index``, USDT.

        Equity is ``margin + side * qty * (mark - entry)`` until the path is liquidated and 0
        afterwards (the isolated margin is lost). Computed on the kept sample paths;
        shape ``(len(quantiles), n_steps + 1)``.
        """
        p, barrier = self.passage, self.barriers[index]
        prices = p.sample_close.astype(float)
        equity = barrier.margin + barrier.side * barrier.qty * (prices - barrier.entry_price)
        hit = p.hit_step[index, : prices.shape[0]]
        # grid point j (end of step j-1) is after the liquidation when j > hit step
        after = np.arange(prices.shape[1])[None, :] > hit[:, None]
        equity = np.where(after, 0.0, np.maximum(equity, 0.0))
        return np.quantile(equity, quantiles, axis=0)

    def time_to_liquidation(self) -> pl.DataFrame:
        """Long table of liquidated paths: ``leverage, path, hours`` (end of the crossing step)."""
        p = self.passage
        frames = []
        for i, barrier in enumerate(self.barriers):
            paths = np.flatnonzero(p.hit_step[i] < p.n_steps)
            frames.append(pl.DataFrame({
                "leverage": np.full(paths.size, barrier.leverage), "path": paths.astype(np.int64),
                "hours": (p.hit_step[i][paths] + 1) * p.step_ms / 3_600_000,
            }))
        return pl.concat(frames)
