"""The cascade loop: one step (e.g. 1 s) at a time, vectorized over positions.

Phase order of a step (docs/cascade.md), per symbol in sorted order, sharing one fund:

1. advance the exogenous index; refill both book sides; update the stress multiplier;
2. repeat until nothing changes (fixed point, at most ``max_iterations``):
   a. mark = median(index, index + smoothed basis, last) (Binance's rule; Hyperliquid's has
      the same shape with a 150 s EMA);
   b. flag positions whose liquidation price the mark crossed — positions are sorted by
      liquidation price once, so flagging is a pointer move; the liquidation engine takes
      them over at the bankruptcy price (the trader loses the isolated margin); cross
      accounts are flagged whole when their equity at every symbol's mark falls to their
      summed maintenance (``cross.py``: the wallet is allocated to the legs, which enter the
      same inventory at their bankruptcy prices);
   c. send the taken-over inventory to the book within the disposal policy; the sweep moves
      the last price, part of the move is permanent (shifts the index);
   d. settle fills against bankruptcy into the insurance fund (``dIF = s q (fill - BP)``);
   e. if the fund is below zero, ADL the deficit by the chosen rule against winners of the
      opposite side; what ADL cannot cover is bad debt; the ADL'd quantity closes against the
      remaining inventory at the venue's ADL price;
3. record prices, the loop gain and the step's rows.

Money identity (tested): for every liquidated unit, ``loss = s q (entry - exit) = margin -
dIF``; the fund's draws below zero are paid by ADL or recorded as bad debt.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backtest.cascade import adl
from backtest.cascade.cross import CrossAccounts
from backtest.cascade.errors import CascadeError
from backtest.cascade.liquidity import LiquidityModel, default_liquidity
from backtest.cascade.paths import ExogenousPath
from backtest.cascade.population import Population
from backtest.cascade.recorder import Recorder
from backtest.cascade.symbol_state import SymbolState
from backtest.cascade.venue import venue_rules

__all__ = ["CascadeConfig", "run_cascade"]

#: Binance's insurance pool of BTCUSDT/ETHUSDT/BNBUSDT, USDT part, 2025-04-23 (cascades.md §C.1).
BINANCE_BTC_ETH_POOL_USDT = 793.9e6
#: ADL rounds inside one settlement before what is left is recorded as bad debt.
MAX_ADL_ROUNDS = 8


@dataclass(frozen=True)
class CascadeConfig:
    """What a cascade run needs besides the population and the paths.

    Attributes
    ----------
    venue : str
        Rule set (``binance_usdm``, ``bybit``, ``bitmex``, ``hyperliquid``).
    adl_rule : str
        ``queue`` (the venue's ranking), ``pro_rata`` or ``leverage_levelling``.
    insurance_fund : float
        Starting fund shared by the symbols, quote currency.
    liquidity : dict
        ``{symbol: LiquidityModel}``; missing symbols get :func:`default_liquidity`.
    max_iterations : int
        Fixed-point cap inside one step.
    disposal_cap : float
        Largest notional the liquidation engine sends to one book side per step, quote
        currency (``inf``: everything at once, Binance-style).
    seed : int
        Recorded for provenance (the loop itself draws no random numbers).
    tiers : dict
        ``{symbol: TierSchedule or TierTable}`` replacing the rule set's built-in tables (e.g.
        the stored ones of a window, :class:`backtest.cascade.paths.WindowPaths`).
    compare_adl_rules : bool
        Also evaluate every ADL rule on each round's deficit and winners (table
        ``adl_comparison``); the chosen rule alone acts. Costs three allocations per round.
    """

    venue: str = "binance_usdm"
    adl_rule: str = "queue"
    insurance_fund: float = BINANCE_BTC_ETH_POOL_USDT
    liquidity: dict[str, LiquidityModel] = field(default_factory=dict)
    max_iterations: int = 20
    disposal_cap: float = float("inf")
    seed: int = 0
    compare_adl_rules: bool = False
    tiers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        venue_rules(self.venue)
        if self.adl_rule not in adl.ADL_RULES:
            from backtest.errors import did_you_mean

            raise CascadeError(f"ADL rule {self.adl_rule!r}: expected one of {', '.join(adl.ADL_RULES)}"
                               f"{did_you_mean(self.adl_rule, adl.ADL_RULES)}")
        if not (self.insurance_fund >= 0 and np.isfinite(self.insurance_fund)):
            raise CascadeError(f"insurance fund: expected a finite amount >= 0, found {self.insurance_fund!r}")
        if self.max_iterations < 1:
            raise CascadeError(f"max_iterations: expected >= 1, found {self.max_iterations}")
        if not self.disposal_cap > 0:
            raise CascadeError(f"disposal_cap: expected > 0 (quote per step), found {self.disposal_cap!r}")


def run_cascade(population: Population, paths: dict[str, ExogenousPath], config: CascadeConfig | None = None):
    """Run the cascade of ``population`` along ``paths`` (one exogenous path per symbol).

    Parameters
    ----------
    population : Population
        Isolated positions and cross accounts (``Population.account``); every symbol must have a path.
    paths : dict
        ``{symbol: ExogenousPath}`` on one common time grid.
    config : CascadeConfig, optional

    Returns
    -------
    backtest.cascade.results.CascadeResult
    """
    from backtest.cascade.results import CascadeResult

    config = config or CascadeConfig()
    rules = venue_rules(config.venue)
    symbols = population.symbols()
    missing = [s for s in symbols if s not in paths]
    if missing:
        raise CascadeError(f"cascade: no exogenous path for {', '.join(missing)}; the population holds "
                           f"{', '.join(symbols)} and the paths cover {', '.join(sorted(paths)) or 'nothing'}")
    grid = paths[symbols[0]].ts if symbols else next(iter(paths.values())).ts
    for s in symbols:
        if not np.array_equal(paths[s].ts, grid):
            raise CascadeError(f"cascade: the path of {s} is on another time grid than {symbols[0]}'s; "
                               "give every symbol the same window and step")
    step_s = float(grid[1] - grid[0]) / 1000.0
    states = [SymbolState(s, population, population.select(s, isolated=True), paths[s].price, rules,
                          config.liquidity.get(s) or default_liquidity(s), int(grid[0]), step_s,
                          config.tiers.get(s))
              for s in symbols]
    recorder = Recorder(len(population), len(grid))
    cross = CrossAccounts(population, symbols)
    fund = float(config.insurance_fund)
    for t, ts in enumerate(grid.tolist()):
        for state in states:
            state.begin_step(t)
            fund = _fixed_point(state, t, ts, fund, config, recorder, states if cross else None, cross)
            state.end_step(t)
            recorder.price_row(ts, state)
        recorder.fund_row(ts, fund)
    for state in states:  # inventory still held at the end is marked to the last mark
        fund = state.mark_inventory_to_end(int(grid[-1]), fund, recorder)
    recorder.fund_final(int(grid[-1]), fund)
    return CascadeResult.build(recorder, states, population, paths, config, float(config.insurance_fund), fund)


def _fixed_point(state: SymbolState, t: int, ts: int, fund: float, config: CascadeConfig,
                 recorder: Recorder, states: list[SymbolState] | None = None,
                 cross: CrossAccounts | None = None) -> float:
    budget = {1: config.disposal_cap, -1: config.disposal_cap}
    for _ in range(config.max_iterations):
        state.update_mark()
        flagged = state.flag(t, ts, recorder)
        if states is not None:  # cross accounts: equity vs summed maintenance at every symbol's mark
            flagged = cross.flag(states, t, ts, recorder) or flagged
        disposed = False
        for side in (1, -1):
            fill = state.dispose(side, budget, ts, recorder)
            if fill is None:
                continue
            disposed = True
            fund += fill.insurance_delta
            if fund < 0:
                fund = _adl(state, side, -fund, fill.qty, ts, config, recorder)
        if not flagged and not disposed:
            break
    return fund


def _adl(state: SymbolState, side: int, deficit: float, filled_qty: float, ts: int,
         config: CascadeConfig, recorder: Recorder) -> float:
    """ADL rounds after side ``side``'s fills left the fund at ``-deficit``; return the fund.

    Each round's deficit is paid by the winners' haircuts or recorded as bad debt; profit
    taken beyond it (overshoot) is the venue's revenue and goes to the fund (Chitra's
    trilemma). The ADL'd quantity then closes the bankrupt inventory at the venue's ADL
    price; at a price worse than bankruptcy (Hyperliquid's previous mark) that close can
    open a new deficit, hence the rounds.
    """
    fund = 0.0
    for _ in range(MAX_ADL_ROUNDS):
        outcome, winners, compared = state.adl_round(side, deficit, filled_qty, config.adl_rule,
                                                     config.compare_adl_rules)
        recorder.adl_row(ts, state, side, config.adl_rule, outcome, winners, compared)
        recorder.bad_debt(ts, state.symbol, outcome.shortfall)
        fund = outcome.overshoot + state.close_inventory_by_adl(side, outcome.closed_qty, ts, recorder)
        if fund >= 0:
            return fund
        deficit, filled_qty = -fund, 0.0
    recorder.bad_debt(ts, state.symbol, -fund)
    return 0.0
