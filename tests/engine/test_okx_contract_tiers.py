"""OKX position tiers counted in contracts, through the engine (issue 11).

OKX publishes its tiers by contract count (``minSz``/``maxSz``; margin_rules.md §4); one
BTC-USDT-SWAP contract is ``ctVal`` = 0.01 BTC (the built-in market spec's contract_size). The
engine asks the table for a position's tier (``TierTable.for_position``), so a table whose basis
is ``contracts`` is looked up by ``qty / ctVal``, never by the notional.

Scenario (no trading fees, no slippage): 10,000 USDT, 10x isolated long of 1x wallet at 1,000:
10 BTC = 1,000 contracts, notional 10,000 USDT, margin 1,000. Tiers: [0, 2,000) contracts at
1 %, from 2,000 contracts at 5 %. By contract count the position is in tier 1 (1,000 < 2,000);
a naive notional reading (10,000 >= 2,000) would put it in tier 2. OKX's requirement is
``N * (MMR + fee)`` with the fee its taker rate 0.05 %, so the LP is
``(EP - margin/size) / (1 - (MMR + fee))``:

* by contracts (tier 1): (1,000 - 100) / (1 - 0.0105) = 909.55;
* read as notional (tier 2): (1,000 - 100) / (1 - 0.0505) = 947.87.

A candle down to 930 liquidates the misread position and leaves the real one alive; a later
candle down to 905 liquidates the real one at 909.55 in tier 1.
"""
from __future__ import annotations

import math
from typing import Any

import pytest

from backtest import MarketData, RunConfig, run_backtest
from backtest.errors import ConfigError
from backtest.venues.tiers import CONTRACTS, NOTIONAL, Tier, TierTable
from tests.engine.scenario import SYMBOL, Script, candles

FEE = 0.0005  # OKX's taker rate in its margin ratio (backtest/venues/data/okx.toml)
FLAT = (1_000.0, 1_000.0, 1_000.0, 1_000.0)
DIP = (1_000.0, 1_000.0, 930.0, 1_000.0)
CRASH = (1_000.0, 1_000.0, 905.0, 950.0)
ROWS = [FLAT, FLAT, DIP, FLAT, CRASH, (950.0, 950.0, 950.0, 950.0)]


def _table(basis: str) -> TierTable:
    # cum by Binance's recursion (validation); OKX does not use it
    return TierTable([Tier(0.0, 2_000.0, 100.0, 0.01, 0.0),
                      Tier(2_000.0, math.inf, 20.0, 0.05, 80.0)], label=f"okx by {basis}", basis=basis)


def _run(basis: str, venue: str = "okx", leverage: float = 10.0):  # noqa: ANN202 - RunResult
    data = MarketData.from_frames({SYMBOL: candles(ROWS)}, timeframe="1m", exchange="okx",
                                  tiers={SYMBOL: _table(basis)})
    config = RunConfig(venue=venue, initial_balance=10_000.0, leverage=leverage, margin_mode="isolated",
                       fees=(0.0, 0.0), slippage="none", rounding=False)
    return run_backtest(data, Script({0: lambda ctx: ctx.target_exposure(1.0)}), config=config)


def test_the_contract_count_picks_another_tier_than_the_notional():
    table = _table(CONTRACTS)
    from backtest.contracts import LinearContract
    okx_btc = LinearContract("USDT", 0.01)
    qty, price = 10.0, 1_000.0
    assert table.position_key(qty, price, okx_btc) == 1_000.0            # 10 / 0.01 contracts
    assert table.index_for_position(qty, price, okx_btc) == 0             # tier 1
    assert _table(NOTIONAL).index_for_position(qty, price, okx_btc) == 1  # 10,000 USDT: tier 2
    with pytest.raises(Exception, match="count contracts"):
        table.index_for(qty * price)  # a notional never reaches a contract-count table


def test_okx_run_uses_the_tier_of_the_contract_count():
    result = _run(CONTRACTS)
    # the equity table's requirement at a flat bar: 10,000 * (1 % + 0.05 %), tier 1
    flat = result.equity.row(1, named=True)
    assert flat["maintenance_margin"] == pytest.approx(10_000.0 * (0.01 + FEE), rel=1e-12)
    lp = (1_000.0 - 1_000.0 / 10.0) / (1.0 - (0.01 + FEE))
    assert 905.0 < lp < 930.0
    liq = result.liquidations
    assert liq.height == 1                          # the 930 dip did not liquidate it
    r = liq.row(0, named=True)
    assert r["liquidation_price"] == pytest.approx(lp, rel=1e-12)
    assert r["tier"] == 1 and r["maint_margin_rate"] == 0.01
    assert r["trigger_ts"] > result.equity["ts"][3]  # the CRASH bar, not the DIP
    assert result.positions.row(1, named=True)["liquidation_price"] == pytest.approx(lp, rel=1e-12)


def test_the_same_bounds_read_as_notional_liquidate_on_the_dip():
    misread = _run(NOTIONAL)
    lp = (1_000.0 - 100.0) / (1.0 - (0.05 + FEE))
    assert 930.0 < lp
    r = misread.liquidations.row(0, named=True)
    assert r["liquidation_price"] == pytest.approx(lp, rel=1e-12) and r["tier"] == 2
    assert misread.summary["final_equity"] < _run(CONTRACTS).summary["final_equity"] + 1e-9


def test_a_contract_count_table_is_refused_by_a_notional_venue():
    with pytest.raises(ConfigError) as info:
        _run(CONTRACTS, venue="binance_usdm")
    message = str(info.value)
    assert "okx by contracts" in message and "counts contracts" in message
    assert "reads tier tables by notional" in message


def test_the_leverage_cap_follows_the_contract_count():
    # the configured size at 30x is 10,000 x 30 = 300,000 USDT = 300 BTC = 30,000 contracts at
    # the first mark: tier 2, capped at 20x, so the run is refused before the loop, in contracts
    with pytest.raises(ConfigError) as info:
        _run(CONTRACTS, leverage=30.0)
    message = str(info.value)
    assert "cap 20x" in message and "bracket 2 (2,000 to inf contracts, max 20x)" in message
    # 15x: 15,000 contracts, also tier 2 (20x): accepted
    assert _run(CONTRACTS, leverage=15.0).summary["bars"] == len(ROWS)


def test_okx_steps_down_to_the_floor_counted_in_contracts():
    """Partial liquidation (§4) keeps just under tier 2's floor of 2,000 contracts = 20 BTC.

    3x long of 3x wallet at 1,000: 30 BTC = 3,000 contracts (tier 2, 5 %), margin 10,000. The
    mark gaps to 700: balance 10,000 + 30 x (700 - 1,000) = 1,000 < 30 x 700 x 5.05 % = 1,060.5.
    OKX closes down to 2,000 contracts (20 BTC; a notional reading would keep 2,000 / 700 =
    2.86 BTC), pays 0.05 % on the 10 BTC closed (3.5), and the rest needs 20 x 700 x 1.05 % =
    147 < 996.5: one step.
    """
    rows = [FLAT, FLAT, (700.0, 700.0, 700.0, 700.0), (700.0, 700.0, 700.0, 700.0)]
    data = MarketData.from_frames({SYMBOL: candles(rows)}, timeframe="1m", exchange="okx",
                                  tiers={SYMBOL: _table(CONTRACTS)})
    config = RunConfig(venue="okx", initial_balance=10_000.0, leverage=3.0, margin_mode="isolated",
                       fees=(0.0, 0.0), slippage="none", rounding=False, liquidation_mode="tier_down")
    result = run_backtest(data, Script({0: lambda ctx: ctx.target_exposure(3.0)}), config=config)
    assert 10_000.0 + 30.0 * (700.0 - 1_000.0) < 30.0 * 700.0 * (0.05 + FEE)
    keep = 2_000.0 * 0.01 * (1.0 - 1e-9)
    step = 30.0 - keep
    fee = FEE * step * 700.0
    assert 1_000.0 - fee - keep * 700.0 * (0.01 + FEE) > 0.0
    r = result.liquidations.row(0, named=True)
    assert result.liquidations.height == 1
    assert r["qty"] == pytest.approx(step, rel=1e-12) and r["tier"] == 2
    assert r["fill_price"] == 700.0 and r["fee"] == pytest.approx(fee, rel=1e-9)
    last = result.positions.row(-1, named=True)
    assert last["qty"] == pytest.approx(keep, rel=1e-12)
    margin = 10_000.0 + step * (700.0 - 1_000.0) - fee
    assert last["isolated_margin"] == pytest.approx(margin, rel=1e-9)
    # the rest (just under 2,000 contracts) is solved in tier 1
    assert last["liquidation_price"] == pytest.approx((1_000.0 - margin / keep) / (1.0 - (0.01 + FEE)),
                                                      rel=1e-9)
