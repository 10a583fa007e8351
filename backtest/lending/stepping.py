"""Step and recording code shared by the lending simulations (one definition of each).

:func:`backtest.lending.simulation.simulate` (Aave), :func:`backtest.lending.comet_simulation.
simulate_comet` (Compound III) and :func:`backtest.lending.multi.simulate_multi` open each step
the same way (borrow index accrues, the venue is arbitraged towards the market, the oracle
publishes by its heartbeat/deviation rule), validate the same market parameters and turn their
records into the same two frames. Amounts are in base currency; times in seconds.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import polars as pl
from numpy.typing import NDArray

from backtest.lending.checks import fraction, non_negative, positive
from backtest.lending.errors import LendingParameterError
from backtest.lending.interest import compounded_interest
from backtest.lending.oracle import should_publish

__all__ = ["check_market_config", "market_step", "record_frames"]

Array = NDArray[np.float64]


class _Pool(Protocol):
    price: float

    def arbitraged(self, market_price: float, share: float) -> Any: ...


def check_market_config(owner: str, config: Any) -> None:
    """Validate the market fields every simulation config holds (heartbeat s, deviation,
    gas_cost and min_profit in base currency, arbitrage_share, borrow_rate per year,
    latency_steps); ``owner`` names the config class in the message."""
    positive("heartbeat", config.heartbeat, allow_inf=True)
    fraction("deviation", config.deviation)
    non_negative("gas_cost", config.gas_cost)
    non_negative("min_profit", config.min_profit)
    fraction("arbitrage_share", config.arbitrage_share)
    non_negative("borrow_rate", config.borrow_rate)
    steps = config.latency_steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise LendingParameterError(
            f"{owner}.latency_steps: expected a whole number of steps >= 0, found "
            f"{steps!r}; e.g. 1 for one block")


def market_step(i: int, t: Array, market: Array, venue: _Pool, config: Any, index: float,
                oracle: float, oracle_time: float) -> tuple[float, Any, bool, float, float]:
    """Open step ``i``: accrue the borrow index over ``t[i] - t[i-1]`` seconds, arbitrage
    ``venue`` towards ``market[i]`` and let the oracle publish (its source is the venue price
    with ``config.feedback``, else the market) when nothing was published yet or
    :func:`backtest.lending.oracle.should_publish` says so.

    Returns
    -------
    tuple
        ``(index, venue, fresh, oracle_price, oracle_time)``; ``fresh`` is True when the oracle
        published this step.
    """
    if i and config.borrow_rate:
        index *= compounded_interest(config.borrow_rate, t[i] - t[i - 1])
    venue = venue.arbitraged(market[i], config.arbitrage_share)
    source = venue.price if config.feedback else market[i]
    fresh = math.isnan(oracle) or should_publish(
        last_price=oracle, last_time=oracle_time, price=source, time=t[i],
        heartbeat=config.heartbeat, deviation=config.deviation)
    if fresh:
        oracle, oracle_time = source, t[i]
    return index, venue, fresh, oracle, oracle_time


def record_frames(records: list[dict[str, Array]], columns: Sequence[str],
                  step_rows: dict[str, list[float]],
                  int_columns: Sequence[str] = ("step", "position")
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(liquidations, steps)`` frames from the per-step record batches and step rows;
    ``int_columns`` of the liquidations and the steps' ``liquidations`` count become Int64."""
    data = ({k: np.concatenate([r[k] for r in records]) for k in columns} if records
            else {k: np.zeros(0) for k in columns})
    liquidations = pl.DataFrame(data).with_columns(pl.col(*int_columns).cast(pl.Int64))
    steps = pl.DataFrame(step_rows).with_columns(pl.col("liquidations").cast(pl.Int64))
    return liquidations, steps
