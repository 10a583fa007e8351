"""One account, one language: a user's looped Aave long through the risk lab, like a perpetual.

A loop (supply ETH, borrow USDC, buy ETH, supply it, ... ``loops`` times at ``loop_ltv``) of
equity ``E`` holds collateral worth ``E·Σ_{k=0..n} l^k`` against a debt of ``E·Σ_{k=1..n} l^k``
at the entry price: a loan-to-value ``LTV = debt / collateral`` and a leverage
``1 / (1 − LTV)`` (the same exposure as a perpetual long of that leverage on a wallet ``E``).
Its health factor reaches 1 when the oracle price falls to

    ``P_liq = P_entry · LTV · g / LT``      (``HF = C·P·LT / (D·g)``, margin_rules.md §8)

with ``g`` the borrow index's growth (:func:`backtest.lending.interest.compounded_interest`) —
a barrier on the price path, so the perpetual's path machinery applies unchanged:

* **replay** over the named crashes of ``backtest/risk/crashes.toml``: the loop runs through
  :func:`backtest.lending.compare.looped_long` (the simulation: push oracle, liquidators, the
  close factor and bonus) on each window's candles;
* **stress**: the risk lab's scenario sets (:func:`backtest.risk.scenarios.parse_scenario`:
  shocks and volatility scaling; funding, mark and slippage terms do not touch a loan) applied
  to the candles, then the same loop;
* **Monte Carlo**: the probability that a simulated path (the risk lab's fitted return models,
  :func:`backtest.risk.montecarlo.simulate_first_passage`) reaches ``P_liq`` within the
  horizon, with its Wilson interval (:func:`backtest.risk.survival.path_probability`). By
  default the protocol sees the market (the paths' intra-step lows); with an
  :class:`OracleRule` (:func:`oracle_passages`) each simulated path is first turned into the
  price the protocol's oracle serves — a Chainlink push feed (heartbeat + deviation) or Maker's
  OSM (the value read one poke earlier, an hour's delay) — and the barrier is checked on that;

* **survival solver**: the largest LTV that survives every named crash, or whose liquidation
  probability stays at or under a target, by :mod:`backtest.risk.survival`'s monotone
  bisection on the leverage ``1 / (1 − LTV)`` (common random numbers: one set of paths for
  every candidate).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from backtest.lending.checks import at_least, fraction, non_negative, positive
from backtest.lending.compare import looped_long
from backtest.lending.errors import LendingParameterError
from backtest.lending.interest import compounded_interest
from backtest.lending.simulation import SimulationConfig

__all__ = ["ORACLE_KINDS", "LoopedLong", "OracleRule", "crash_survival_ltv", "mc_liquidation",
           "observations", "oracle_passages", "probability_survival_ltv", "replay_crashes", "stress_loop"]


@dataclass(frozen=True, slots=True)
class LoopedLong:
    """A looped long on Aave v3 (defaults: Ethereum WETH, max LTV 80 %, LT 82.5 %, bonus 5 %).

    Attributes
    ----------
    ltv : float
        Loan-to-value at entry, debt / collateral value (fraction).
    equity : float
        The user's own capital, USD.
    max_ltv, liquidation_threshold, liquidation_bonus : float
        Reserve parameters (fractions; bonus a multiplier).
    borrow_rate : float
        Annual variable borrow rate (0.05 = 5 %).
    """

    ltv: float
    equity: float = 10_000.0
    max_ltv: float = 0.80
    liquidation_threshold: float = 0.825
    liquidation_bonus: float = 1.05
    borrow_rate: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= float(self.ltv) < 1:
            raise LendingParameterError(
                f"looped position: ltv expected a fraction in [0, 1) (debt / collateral), found "
                f"{self.ltv!r}; e.g. 0.7 for a 3.33x loop")
        positive("equity", self.equity)
        fraction("max_ltv", self.max_ltv)
        fraction("liquidation_threshold", self.liquidation_threshold)
        at_least("liquidation_bonus", self.liquidation_bonus, 1.0, "a multiplier, 5 % -> 1.05")
        non_negative("borrow_rate", self.borrow_rate)

    @classmethod
    def from_loops(cls, loops: int, loop_ltv: float, **options: Any) -> LoopedLong:
        """``loops`` borrow-buy-supply rounds each borrowing ``loop_ltv`` of the last supply:
        ``LTV = Σ_{k=1..n} l^k / Σ_{k=0..n} l^k``."""
        if isinstance(loops, bool) or not isinstance(loops, int) or loops < 0:
            raise LendingParameterError(f"loops: expected a whole number >= 0, found {loops!r}")
        step = fraction("loop_ltv", loop_ltv)
        supplied = sum(step ** k for k in range(loops + 1))
        return cls(ltv=(supplied - 1.0) / supplied, **options)

    @property
    def leverage(self) -> float:
        """Exposure / equity, ``1 / (1 − LTV)``."""
        return 1.0 / (1.0 - self.ltv)

    def refusal(self) -> str | None:
        """``ltv_exceeded`` text when Aave's ``borrow`` would refuse the loop, else None."""
        if self.ltv > self.max_ltv:
            return (f"ltv_exceeded: LTV {self.ltv:.1%} is above the reserve's maximum "
                    f"{self.max_ltv:.0%}")
        return None

    def liquidation_price(self, entry_price: float, horizon_seconds: float = 0.0) -> float:
        """Oracle price at which ``HF = 1`` after ``horizon_seconds`` of interest:
        ``entry · LTV · g / LT`` (module docstring)."""
        growth = compounded_interest(self.borrow_rate, non_negative("horizon", horizon_seconds))
        return positive("entry_price", entry_price) * self.ltv * growth / self.liquidation_threshold

    def with_ltv(self, ltv: float) -> LoopedLong:
        """The same reserve and equity at another LTV."""
        return LoopedLong(ltv, self.equity, self.max_ltv, self.liquidation_threshold,
                          self.liquidation_bonus, self.borrow_rate)


def _run(position: LoopedLong, bars: pl.DataFrame, config: SimulationConfig,
         step: float) -> dict[str, Any]:
    """The loop through ``bars`` (:func:`looped_long`), with its LTV and refusal."""
    row = looped_long(bars, leverage=position.leverage, equity=position.equity,
                      max_ltv=position.max_ltv, liquidation_threshold=position.liquidation_threshold,
                      liquidation_bonus=position.liquidation_bonus,
                      config=_with_rate(config, position), step=step)
    return {"ltv": position.ltv, **row}


def _with_rate(config: SimulationConfig, position: LoopedLong) -> SimulationConfig:
    return replace(config, borrow_rate=position.borrow_rate)


def replay_crashes(position: LoopedLong, windows: Sequence[tuple[str, pl.DataFrame]], *,
                   config: SimulationConfig = SimulationConfig(), step: float = 60.0
                   ) -> pl.DataFrame:
    """One row per named crash ``(name, candles)``: survived, liquidations, loss, liquidation
    cost, final equity (the columns of :data:`backtest.lending.compare.COMPARISON_COLUMNS`)."""
    rows = [{"crash": name, **_run(position, bars, config, step)} for name, bars in windows]
    return pl.DataFrame(rows, infer_schema_length=None)


def stress_loop(position: LoopedLong, symbol: str, bars: pl.DataFrame, scenario_sets: Sequence[Any],
                *, config: SimulationConfig = SimulationConfig(), step: float = 60.0
                ) -> pl.DataFrame:
    """The loop under a baseline and each :class:`backtest.risk.scenarios.ScenarioSet` applied
    to ``bars``; one row per scenario."""
    from backtest.risk.scenarios import ScenarioSet, StressMarket

    market = StressMarket(bars={symbol: bars})
    rows = []
    for scenario in [ScenarioSet("baseline"), *scenario_sets]:
        stressed = scenario.apply(market).bars[symbol]
        rows.append({"scenario": scenario.name, "description": scenario.describe(),
                     **_run(position, stressed, config, step)})
    return pl.DataFrame(rows, infer_schema_length=None)


def mc_liquidation(position: LoopedLong, passage: Any, *, entry_price: float,
                   horizon_seconds: float, confidence: float = 0.95) -> dict[str, Any]:
    """P(the loop is liquidated within the horizon) on a long
    :class:`backtest.risk.montecarlo.FirstPassage`: the share of paths whose low reaches
    :meth:`LoopedLong.liquidation_price` (interest to the horizon's end), Wilson interval."""
    from backtest.risk.survival import path_probability

    if passage.side != 1:
        raise LendingParameterError("mc_liquidation: a looped long needs paths simulated for a "
                                    "long (side +1)")
    barrier = position.liquidation_price(entry_price, horizon_seconds)
    p, low, high = path_probability(passage, barrier, confidence=confidence)
    return {"ltv": position.ltv, "leverage": position.leverage, "liquidation_price": barrier,
            "probability": p, "ci_low": low, "ci_high": high, "n_paths": passage.n_paths,
            "rejection": position.refusal()}


def probability_survival_ltv(position: LoopedLong, passage: Any, *, entry_price: float,
                             horizon_seconds: float, target: float) -> dict[str, Any]:
    """The largest LTV (up to ``max_ltv``) whose liquidation probability is ``<= target`` on
    ``passage`` (:func:`backtest.risk.survival.max_leverage_for_probability` on the leverage
    ``1/(1 − LTV)``)."""
    from backtest.risk.survival import max_leverage_for_probability

    def probability(leverage: float) -> float:
        return mc_liquidation(position.with_ltv(1.0 - 1.0 / leverage), passage,
                              entry_price=entry_price,
                              horizon_seconds=horizon_seconds)["probability"]

    result = max_leverage_for_probability(probability, target=target, lo=1.0,
                                          hi=1.0 / (1.0 - position.max_ltv))
    return _solved(result, {"target": target, **result.detail})


def crash_survival_ltv(position: LoopedLong, windows: Sequence[tuple[str, pl.DataFrame]], *,
                       config: SimulationConfig = SimulationConfig(), step: float = 60.0,
                       rel_tol: float = 1e-3) -> dict[str, Any]:
    """The largest LTV (up to ``max_ltv``) whose loop is never liquidated in any of the named
    crash windows (:func:`backtest.risk.survival.crash_survival_leverage`)."""
    from backtest.risk.survival import crash_survival_leverage

    def survives(leverage: float) -> bool:
        trial = position.with_ltv(1.0 - 1.0 / leverage)
        return all(_run(trial, bars, config, step)["survived"] for _, bars in windows)

    result = crash_survival_leverage(survives, lo=1.0, hi=1.0 / (1.0 - position.max_ltv),
                                     rel_tol=rel_tol)
    return _solved(result, {"crashes": [name for name, _ in windows]})


def _solved(result: Any, detail: dict[str, Any]) -> dict[str, Any]:
    lev = result.value
    return {"ltv": None if lev is None else 1.0 - 1.0 / lev, "leverage": lev,
            "feasible_at_max_ltv": result.feasible_at_bound, "iterations": result.iterations,
            **{k: v for k, v in detail.items() if not isinstance(v, (list, dict))
               or k == "crashes"}}


#: What the protocol sees of a Monte Carlo path (:class:`OracleRule`).
ORACLE_KINDS = ("market", "chainlink", "osm")

#: Observation values held per Monte Carlo chunk (bounds the memory of :func:`oracle_passages`).
_CHUNK_VALUES = 4_000_000


@dataclass(frozen=True, slots=True)
class OracleRule:
    """The oracle between the market and the protocol in the loop's Monte Carlo.

    ``kind`` ``market`` (no lag), ``chainlink`` (push feed: publishes on a ``deviation``
    relative move or after ``heartbeat`` seconds, :func:`backtest.lending.oracle.chainlink_path`)
    or ``osm`` (Maker's Oracle Security Module: the value read one ``hop`` earlier,
    :func:`backtest.lending.oracle.osm_path`). Defaults: Chainlink ETH/USD on Ethereum
    (1 h heartbeat, 0.5 % deviation), OSM hop 1 h.
    """

    kind: str = "market"
    heartbeat: float = 3600.0
    deviation: float = 0.005
    hop: float = 3600.0

    def __post_init__(self) -> None:
        from backtest.errors import did_you_mean

        if self.kind not in ORACLE_KINDS:
            raise LendingParameterError(
                f"oracle: expected one of {', '.join(ORACLE_KINDS)}, found {self.kind!r}"
                f"{did_you_mean(self.kind, ORACLE_KINDS)}")
        positive("oracle heartbeat", self.heartbeat, allow_inf=True)
        fraction("oracle deviation", self.deviation)
        positive("oracle hop", self.hop)

    def serve(self, times: np.ndarray, prices: np.ndarray) -> np.ndarray:
        """The price the protocol sees at each time, for every row of ``prices``."""
        from backtest.lending.oracle import chainlink_path, osm_path

        if self.kind == "chainlink":
            return chainlink_path(times, prices, heartbeat=self.heartbeat,
                                  deviation=self.deviation)[0]
        if self.kind == "osm":
            return osm_path(times, prices, hop=self.hop)
        return prices


def observations(log_close: np.ndarray, log_low: np.ndarray, log_high: np.ndarray,
                 step_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """The market as an oracle can observe it: per simulated step (a candle) the two extremes
    then the close, at a third, two thirds and the end of the step; the first extreme is the
    high of a falling step and the low of a rising one (the intra-candle order of
    :func:`backtest.cascade.paths.path_from_bars`). Returns ``(times, prices)``: seconds from
    the start (``3 n + 1`` of them) and prices, one row per path."""
    start, end = log_close[:, :-1], log_close[:, 1:]
    falling = end < start
    first = np.where(falling, log_high, log_low)
    second = np.where(falling, log_low, log_high)
    n_paths, n_steps = log_low.shape
    logs = np.empty((n_paths, 3 * n_steps + 1))
    logs[:, 0] = log_close[:, 0]
    logs[:, 1::3], logs[:, 2::3], logs[:, 3::3] = first, second, end
    times = np.arange(3 * n_steps + 1) * step_seconds / 3.0   # exact at whole steps
    return times, np.exp(logs)


def oracle_passages(model: Any, *, oracle: OracleRule, n_paths: int, n_steps: int, s0: float,
                    seed: int) -> tuple[Any, Any]:
    """Long first-passage summaries of the *same* simulated paths as the market shows them and
    as the protocol's ``oracle`` serves them.

    Paths are drawn by ``model.simulate`` (a fitted :class:`backtest.risk.paths.ReturnModel`)
    in chunks seeded from ``seed`` (same seed, same paths), turned into observations
    (:func:`observations`) and, for the oracle side, into the oracle's answers
    (:meth:`OracleRule.serve`). Each side is a :class:`backtest.risk.montecarlo.FirstPassage`
    whose ``extreme`` is the lowest price of the path the side sees, so
    :func:`mc_liquidation`, :func:`probability_survival_ltv` and the Wilson intervals apply to
    either unchanged. An oracle only ever serves prices the market showed (or older ones), so
    the oracle side's low is never below the market's: lag can only lower (or keep) the
    probability of a liquidation within the horizon; it moves it later, into a worse market.

    Returns
    -------
    (market, oracle) : FirstPassage
    """
    from backtest.risk.montecarlo import FirstPassage

    if n_paths < 1 or n_steps < 1:
        raise LendingParameterError(f"oracle Monte Carlo: expected paths >= 1 and steps >= 1, "
                                    f"found {n_paths} and {n_steps}")
    step_seconds = model.step_ms / 1000.0
    size = max(1, _CHUNK_VALUES // (3 * n_steps + 1))
    seeds = np.random.SeedSequence(seed).spawn(-(-n_paths // size))
    market_low, oracle_low = [], []
    for k, child in enumerate(seeds):
        n = min(size, n_paths - k * size)
        paths = model.simulate(np.random.default_rng(child), n_paths=n, n_steps=n_steps,
                               s0=positive("s0", s0))
        times, seen = observations(paths.log_close, paths.log_low, paths.log_high, step_seconds)
        market_low.append(seen.min(axis=1))
        oracle_low.append(oracle.serve(times, seen).min(axis=1))
    empty = np.empty((0, n_paths), dtype=np.int32)

    def passage(low: list[np.ndarray]) -> Any:
        return FirstPassage(hit_step=empty, extreme=np.concatenate(low), barriers=np.empty(0),
                            side=1, n_steps=n_steps, step_ms=int(model.step_ms),
                            sample_close=np.empty((0, n_steps + 1), dtype=np.float32))

    return passage(market_low), passage(oracle_low)
