"""Documented scenarios of the lending validation runs (issue 13).

``BLACK_THURSDAY`` — Maker ETH-A on 2020-03-12/13. Window 2020-03-12 00:00 to 2020-03-14 00:00
UTC on the stored ETH 1h candles. Population: 1,000 vaults, seed 1, collateral value log-normal
(median 10,000 DAI, log-sd 1.5), collateralization ratio uniform in 153 %..450 % of the first
open (health factor 1.02..3.0 over ``mat`` 150 %), ``chop`` 13 %. Keepers: three value keepers
whose transactions land only up to 20, 50 and 120 gwei (margins 5, 8, 10 %: bots left on fixed
gas settings, cascades.md §B.3 "keepers with default settings stalled") and one lowball keeper
that pays any gas up to 1,000 gwei. Gas path (gwei, a stylised assumption, not chain data;
cascades.md §B.3 reports a ~6x mean gas price): 10 outside the spikes, 200 from 2020-03-12
10:00 to 13:00, 80 to 17:00, 150 from 23:00 to 2020-03-13 03:00 UTC. The historical figures to
compare with (cascades.md §B.3): zero-DAI winning bids on $8.32M of ETH, 36 % of auctions;
system deficit 4-6.7M DAI (5.67M per White Rabbit); for Clipper parameters a deficit near zero
is a design expectation, not a historical fact.

``OCTOBER_2025`` — a synthetic Aave v3 WETH market through 2025-10-09..2025-10-13 on the stored
ETH 5m candles: 100,000 positions, seed 7, value log-normal (median 20,000 USD, log-sd 1.5),
health factor uniform 1.02..2.5, LT 82.5 %, bonus 5 %, v3.3 rules, 12-second blocks, a Chainlink
feed (heartbeat 1 h, deviation 0.5 %), liquidators paying 5 USD of gas one block late, a depth
curve of 35M USD within 0.1 % (ten times the BTC/FDUSD calibration of cascades.md §4: on-chain
and CEX venues together) refilled at half the gap per block and fed back into the oracle, 5 %
borrow rate. The outcome depends on depth: docs/lending.md lists the sensitivity. The
historical Aave figures (cascades.md §B.1): ~$180M liquidated, ~$10M bonuses, ~$0.4M deficit.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from backtest.lending.auctions import Keeper

__all__ = ["BLACK_THURSDAY", "OCTOBER_2025", "PRESETS"]


def _s(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


BLACK_THURSDAY: dict[str, Any] = {
    "start": "2020-03-12", "end": "2020-03-14", "timeframe": "1h", "protocol": "maker",
    "positions": 1_000, "seed": 1, "median_value": 10_000.0, "value_sigma": 1.5,
    "health_factor_range": (1.02, 3.0),
    "keepers": (Keeper("keeper-a", 20.0, 0.05), Keeper("keeper-b", 50.0, 0.08),
                Keeper("keeper-c", 120.0, 0.10), Keeper("lowball", 1000.0, 0.0, kind="lowball")),
    "gas_base_gwei": 10.0,
    "gas_spikes": ((_s(2020, 3, 12, 10), _s(2020, 3, 12, 13), 200.0),
                   (_s(2020, 3, 12, 13), _s(2020, 3, 12, 17), 80.0),
                   (_s(2020, 3, 12, 23), _s(2020, 3, 13, 3), 150.0)),
    "historical": {"zero_bid_value_usd": 8.32e6, "zero_bid_share": 0.36,
                   "deficit_dai_range": (4.0e6, 6.65e6)},
}

OCTOBER_2025: dict[str, Any] = {
    "start": "2025-10-09", "end": "2025-10-13", "timeframe": "5m", "protocol": "aave_v3",
    "positions": 100_000, "seed": 7, "median_value": 20_000.0, "value_sigma": 1.5,
    "health_factor_range": (1.02, 2.5), "gas_cost": 5.0, "latency_steps": 1,
    "venue": "curve", "depth": 3.5e7, "feedback": True, "arbitrage_share": 0.5,
    "borrow_rate": 0.05,
    "historical": {"liquidated_usd": 180e6, "bonuses_usd": 10e6, "deficit_usd": 0.4e6},
}

#: ``margincall lending --preset NAME``.
PRESETS = {"black-thursday": BLACK_THURSDAY, "2025-10-10": OCTOBER_2025}
