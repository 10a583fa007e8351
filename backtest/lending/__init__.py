"""DeFi lending protocol math (issue 13 groundwork): pure, cited, one module per protocol.

* :mod:`backtest.lending.aave_v3` — health factor, borrowing power, e-mode, isolation mode,
  close factor (v3.0 and v3.3), collateral seized with bonus and protocol fee, v3.3 dust rules
  and deficit.
* :mod:`backtest.lending.compound_v3` — Comet collateral factors, ``isLiquidatable``,
  ``absorb``, ``quoteCollateral`` / ``buyCollateral``.
* :mod:`backtest.lending.maker` — vault safety, ``Dog.bark``, Clipper price curves, ``take``.
* :mod:`backtest.lending.maker_flipper` — ``Cat.bite`` and the Flipper auctions of 2020.
* :mod:`backtest.lending.aave_kernels` — the Aave close-factor and seizure rules as numpy
  kernels shared by the scalar API and the simulation.
* :mod:`backtest.lending.oracle`, :mod:`backtest.lending.amm`, :mod:`backtest.lending.depth`,
  :mod:`backtest.lending.interest`, :mod:`backtest.lending.simulation` — the vectorized
  simulation: push-oracle and OSM paths, a constant-product pool or a depth curve, the borrow
  index, positions as arrays liquidated by profit-seeking agents (gas, latency, capital).
* :mod:`backtest.lending.comet_simulation` — Compound v3 accounts: ``absorb`` and
  ``buyCollateral`` at the store-front discount, reserves bearing the shortfall.
* :mod:`backtest.lending.multi` — Aave positions with several collaterals and debts (health
  factor over all, the liquidator's pair choice).
* :mod:`backtest.lending.position` — a looped Aave long through the risk lab (crash replay,
  stress, Monte Carlo, survival solver).
* :mod:`backtest.lending.auctions` — Maker vaults through the OSM to Flipper or Clipper
  auctions with keepers priced by gas.
* :mod:`backtest.lending.population`, :mod:`backtest.lending.paths`,
  :mod:`backtest.lending.study`, :mod:`backtest.lending.report`,
  :mod:`backtest.lending.scenarios` — ``margincall lending``: positions from a file or a seed,
  paths from stored candles, the run, its tables, DuckDB views and HTML report, the presets.
* :mod:`backtest.lending.compare` (a looped Aave long next to a perpetual) and
  :mod:`backtest.lending.platform` (parameter sets -> bad-debt distribution).
* :mod:`backtest.lending.errors` — the errors raised for invalid input.

Outcomes (a refused liquidation, a losing bid, bad debt) are fields of the returned records;
only invalid input raises. See docs/lending.md.
"""
