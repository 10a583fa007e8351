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
* :mod:`backtest.lending.oracle`, :mod:`backtest.lending.amm`,
  :mod:`backtest.lending.simulation` — the vectorized simulation core: push-oracle and OSM
  paths, a constant-product pool, positions as arrays liquidated by profit-seeking agents.
* :mod:`backtest.lending.errors` — the errors raised for invalid input.

Outcomes (a refused liquidation, a losing bid, bad debt) are fields of the returned records;
only invalid input raises. See docs/lending.md.
"""
