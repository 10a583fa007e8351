"""One account, one language: a looped ETH long on Aave next to a CEX perpetual at equal leverage.

A loop of leverage ``L`` on equity ``E`` (deposit ETH, borrow stablecoins, buy ETH, deposit,
...) holds collateral worth ``L·E`` against a debt of ``(L − 1)·E``: the same exposure as a
perpetual long of notional ``L·E`` on a wallet ``E``. The loop runs through
:func:`backtest.lending.simulation.simulate` as a one-position book (Aave v3 rules, the push
oracle, liquidators, borrow interest) on the crash window's candles; the perpetual runs through
the crash replay of the risk lab (:func:`backtest.risk.replay.replay_window`: the engine with
Binance's rules, mark price, tiers and funding) on the same candles. Loss and liquidation cost
are in the same units (USD ~ USDT) so the two rows compare directly.

Opening the loop is refused (a row with ``rejection``) when its loan-to-value ``(L−1)/L``
exceeds the reserve's maximum LTV, as Aave's ``borrow`` would refuse it (margin_rules.md §8).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from backtest.errors import utc_text
from backtest.lending.amm import ConstantProductPool
from backtest.lending.checks import at_least, fraction, positive
from backtest.lending.paths import candle_path
from backtest.lending.simulation import PositionBook, SimulationConfig, simulate

__all__ = ["COMPARISON_COLUMNS", "compare_loop_with_perp", "compare_mc", "looped_long"]

COMPARISON_COLUMNS = ("venue", "leverage", "survived", "rejection", "liquidations",
                      "first_liquidation", "loss", "loss_pct", "liquidation_cost", "final_equity")


def looped_long(bars: pl.DataFrame, *, leverage: float, equity: float = 10_000.0,
                max_ltv: float = 0.80, liquidation_threshold: float = 0.825,
                liquidation_bonus: float = 1.05, config: SimulationConfig = SimulationConfig(),
                step: float = 12.0, depth: float = 1e9) -> dict[str, Any]:
    """A looped long of ``leverage`` on ``equity`` (USD) through ``bars``: one row of
    :data:`COMPARISON_COLUMNS` (``liquidation_cost`` = value lost to liquidations at the
    market price: the bonus, the treasury fee and the sale's slippage).

    Defaults are Aave v3 Ethereum WETH (max LTV 80 %, LT 82.5 %, bonus 5 %); ``depth`` is the
    quote reserve of the pool the liquidator sells into (deep: one account moves nothing).
    """
    lev = at_least("leverage", leverage, 1.0, "exposure / equity")
    equity = positive("equity", equity)
    ltv = (lev - 1.0) / lev
    row: dict[str, Any] = {"venue": "aave_v3 loop", "leverage": lev}
    if ltv > fraction("max_ltv", max_ltv):
        return {**row, "survived": False, "liquidations": 0,
                "rejection": f"ltv_exceeded: a {lev:g}x loop borrows {ltv:.1%} of its collateral, "
                             f"above the reserve's maximum LTV {max_ltv:.0%} (at most "
                             f"{1 / (1 - max_ltv):.2f}x; e-mode allows more)"}
    times, prices = candle_path(bars, step=step)
    p0 = float(prices[0])
    book = PositionBook(np.array([lev * equity / p0]), np.array([(lev - 1.0) * equity]),
                        liquidation_threshold, liquidation_bonus)
    result = simulate(book, times, prices, ConstantProductPool.at_price(p0, depth_quote=depth),
                      config)
    liq = result.liquidations
    coll_end, debt_end = float(result.final.collateral[0]), float(result.final.debt[0])
    final_equity = coll_end * float(prices[-1]) - debt_end
    # what the liquidations took beyond the debt they repaid, valued at the market price
    seized_value = float((liq["collateral_seized"] * pl.Series(prices[liq["step"].to_numpy()])).sum()) \
        if liq.height else 0.0
    first = utc_text(int(times[liq["step"][0]] * 1000)) if liq.height else None
    hold_value = lev * equity / p0 * float(prices[-1]) - (lev - 1.0) * equity
    return {**row, "survived": liq.height == 0, "rejection": None, "liquidations": liq.height,
            "first_liquidation": first, "loss": equity - final_equity,
            "loss_pct": (equity - final_equity) / equity,
            "liquidation_cost": seized_value - float(liq["debt_repaid"].sum()) if liq.height else 0.0,
            "final_equity": final_equity, "unliquidated_equity": hold_value}


def compare_loop_with_perp(window: Any, symbol: str, data: Any, *, leverages: list[float],
                           equity: float = 10_000.0, exchange: str = "binanceusdm",
                           config: SimulationConfig = SimulationConfig(),
                           **loop_options: Any) -> pl.DataFrame:
    """Side by side, per leverage: the Aave loop and the perpetual long (``hold``) through one
    crash window (``window``: :class:`backtest.risk.crashes.CrashWindow`, ``data``: its
    :class:`backtest.risk.data.WindowData`)."""
    from backtest import RunConfig
    from backtest.risk.replay import replay_window

    rows: list[dict[str, Any]] = []
    perp = replay_window(window, symbol, data, strategy="hold", params={"side": "long"},
                         leverages=leverages, config=RunConfig(initial_balance=equity),
                         exchange=exchange)
    for lev, p in zip(leverages, perp):
        rows.append(looped_long(data.bars, leverage=lev, equity=equity, config=config,
                                **loop_options))
        first = p.get("first_liquidation")   # utc_text, as the loop's
        rows.append({"venue": f"{exchange} perpetual", "leverage": float(lev),
                     "survived": bool(p["survived"]), "rejection": p.get("rejection"),
                     "liquidations": int(p.get("n_liquidations") or 0),
                     "first_liquidation": first,
                     "loss": p.get("loss"), "loss_pct": p.get("loss_pct"),
                     "liquidation_cost": (p.get("margin_lost") or 0.0) if p.get("n_liquidations") else 0.0,
                     "final_equity": p.get("final_equity")})
    frame = pl.DataFrame(rows, schema_overrides={"first_liquidation": pl.Utf8,
                                                 "rejection": pl.Utf8}, infer_schema_length=None)
    return frame.select(*COMPARISON_COLUMNS).with_columns(
        pl.col("loss", "loss_pct", "liquidation_cost", "final_equity").cast(pl.Float64))


def compare_mc(passage: Any, *, entry_price: float, leverages: list[float], tiers: Any,
               horizon_seconds: float, equity: float = 10_000.0, **loop_options: Any
               ) -> pl.DataFrame:
    """Liquidation probability side by side on the *same* simulated paths (a long
    :class:`backtest.risk.montecarlo.FirstPassage`): per leverage, the Aave loop
    (:func:`backtest.lending.position.mc_liquidation`, barrier ``entry·LTV·g/LT``) and the
    isolated perpetual long of wallet ``equity`` (:func:`backtest.risk.barriers.position_barrier`,
    the venue's tiers ``tiers``). Columns: venue, leverage, liquidation_price, probability,
    ci_low, ci_high, rejection."""
    from backtest.lending.position import LoopedLong, mc_liquidation
    from backtest.risk.barriers import position_barrier
    from backtest.risk.survival import path_probability

    rows: list[dict[str, Any]] = []
    for lev in leverages:
        lev = at_least("leverage", lev, 1.0, "exposure / equity")
        loop = LoopedLong(ltv=1.0 - 1.0 / lev, equity=equity, **loop_options)
        m = mc_liquidation(loop, passage, entry_price=entry_price,
                           horizon_seconds=horizon_seconds)
        rows.append({"venue": "aave_v3 loop", "leverage": lev,
                     **{k: m[k] for k in ("liquidation_price", "probability", "ci_low",
                                          "ci_high", "rejection")}})
        barrier = position_barrier(leverage=lev, side=1, entry_price=entry_price, margin=equity,
                                   tiers=tiers)
        p, low, high = path_probability(passage, barrier.liquidation_price)
        rows.append({"venue": "perpetual (isolated)", "leverage": lev,
                     "liquidation_price": barrier.liquidation_price, "probability": p,
                     "ci_low": low, "ci_high": high, "rejection": None})
    return pl.DataFrame(rows, schema_overrides={"rejection": pl.Utf8}, infer_schema_length=None)
