"""Oracle lag in the looped position's Monte Carlo: the protocol's oracle (Chainlink push feed,
Maker's OSM) applied to each simulated path before the barrier check. A hand-worked two-candle
case, then the direction on GBM paths (lag never raises, and the OSM's hour clearly lowers, the
liquidation probability within the horizon)."""
from __future__ import annotations

import numpy as np
import pytest

from backtest.lending.errors import LendingParameterError
from backtest.lending.oracle import chainlink_path, osm_path
from backtest.lending.position import (
    LoopedLong,
    OracleRule,
    mc_liquidation,
    observations,
    oracle_passages,
    probability_survival_ltv,
)
from backtest.risk.paths import GBM

HOUR = 3600.0


def _two_candles() -> tuple[np.ndarray, np.ndarray]:
    """Two 1 h candles from 100: a fall to a low of 80 (high 101 first), closing 95; then a
    rise (low 94 first, high 99) closing 98."""
    log = np.log
    close = log(np.array([[100.0, 95.0, 98.0]]))
    low = log(np.array([[80.0, 94.0]]))
    high = log(np.array([[101.0, 99.0]]))
    return observations(close, low, high, HOUR)


def test_observations_follow_the_candle_order() -> None:
    times, seen = _two_candles()
    assert times.tolist() == [0.0, 1200.0, 2400.0, 3600.0, 4800.0, 6000.0, 7200.0]
    # falling candle: high then low; rising candle: low then high (path_from_bars' order)
    assert seen[0] == pytest.approx([100.0, 101.0, 80.0, 95.0, 94.0, 99.0, 98.0])


def test_lag_by_hand_on_two_candles() -> None:
    """Barrier 85: the market reaches it (low 80 at 00:40).

    * Chainlink 0.5 %: 101 moves 1 % -> published; 80 moves 20.8 % -> published: reached.
    * Chainlink 25 %: 101, 80 (20 % from 100), 95 are within 25 %; the heartbeat publishes
      95 at 01:00 (3,600 s after 00:00); 94 and 99 are within 25 % of 95, the heartbeat
      publishes 98 at 02:00: the feed shows 100, 100, 100, 95, 95, 95, 98 -> low 95, not
      reached.
    * OSM (hop 1 h): pokes at 0, 1 h, 2 h; until 2 h it serves the value read at poke 0
      (100), at 2 h the value read at 1 h (95) -> low 95, not reached.
    """
    times, seen = _two_candles()
    fast = chainlink_path(times, seen, heartbeat=HOUR, deviation=0.005)[0]
    slow = chainlink_path(times, seen, heartbeat=HOUR, deviation=0.25)[0]
    osm = osm_path(times, seen, hop=HOUR)
    assert fast[0].min() == pytest.approx(80.0)
    assert slow[0] == pytest.approx([100.0, 100.0, 100.0, 95.0, 95.0, 95.0, 98.0])
    assert osm[0] == pytest.approx([100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 95.0])
    # the 1-D path is the same rule (row 0 of the 2-D one)
    assert np.array_equal(chainlink_path(times, seen[0], heartbeat=HOUR, deviation=0.25)[0],
                          slow[0])
    barrier = 85.0
    assert seen.min() <= barrier < min(slow.min(), osm.min())


@pytest.fixture(scope="module")
def passages():
    model = GBM(0.02, step_ms=int(HOUR * 1000))
    kw = {"n_paths": 20_000, "n_steps": 24, "s0": 2000.0, "seed": 5}
    return {kind: oracle_passages(model, oracle=OracleRule(kind), **kw)
            for kind in ("market", "chainlink", "osm")}


def test_lag_lowers_the_liquidation_probability_on_the_same_paths(passages) -> None:
    loop = LoopedLong(0.75)   # barrier 2000 x 0.75 / 0.825 = 1818 (-9.5 %)
    day = 24 * HOUR
    market, _ = passages["market"]
    p = {kind: mc_liquidation(loop, pair[1], entry_price=2000.0, horizon_seconds=day)["probability"]
         for kind, pair in passages.items()}
    # the same paths on each side: every market side is identical
    assert np.array_equal(passages["osm"][0].extreme, market.extreme)
    assert p["market"] == mc_liquidation(loop, market, entry_price=2000.0,
                                         horizon_seconds=day)["probability"]
    # an oracle serves only prices the market showed: its low is never below the market's
    for kind in ("chainlink", "osm"):
        assert np.all(passages[kind][1].extreme >= market.extreme - 1e-9)
    assert p["osm"] <= p["chainlink"] <= p["market"]
    # the OSM's hour hides the intra-hour lows and the last hour: clearly fewer liquidations
    assert p["osm"] < 0.9 * p["market"]   # 0.266 vs 0.329 on these paths
    assert 0.05 < p["market"] < 0.6
    # with lag a looser loop survives the same probability target
    solve = {kind: probability_survival_ltv(LoopedLong(0.5), pair[1], entry_price=2000.0,
                                            horizon_seconds=day, target=0.01)["ltv"]
             for kind, pair in passages.items()}
    assert solve["osm"] > solve["market"]


def test_a_zero_deviation_feed_is_the_market() -> None:
    model = GBM(0.01, step_ms=int(HOUR * 1000))
    market, oracle = oracle_passages(model, oracle=OracleRule("chainlink", deviation=0.0),
                                     n_paths=500, n_steps=6, s0=100.0, seed=1)
    assert np.array_equal(market.extreme, oracle.extreme)


def test_bad_oracle_rules_fail_clearly() -> None:
    with pytest.raises(LendingParameterError, match="did you mean 'osm'"):
        OracleRule("oms")
    with pytest.raises(LendingParameterError, match="deviation"):
        OracleRule("chainlink", deviation=2.0)
