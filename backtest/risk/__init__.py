"""margincall's risk lab: crash replays, stress scenarios, Monte Carlo survival and sweeps.

Modules: ``crashes`` (named crash windows), ``scenarios`` (market-data transforms),
``paths``/``bootstrap``/``garch``/``jumps`` (return models), ``montecarlo`` (liquidation
probabilities), ``barriers`` (venue liquidation prices per leverage), ``survival`` (leverage
solvers), ``replay`` (crash replays through the engine), ``sweep`` (parameter sweeps) and
``report_sections`` (HTML fragments). Import the submodule you need; this package imports
nothing heavy on its own.
"""
