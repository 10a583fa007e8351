"""Binance COIN-M (inverse, coin-margined) through the engine's path.

Every Binance COIN-M worked example of ../shared/specs/vectors.json is reproduced by a run:
the vector's position is opened by a strategy, and the engine's own outputs (its margin
model's tier table, the equity table's maintenance margin, the positions table's liquidation
price) are compared with the vector. Plus the inverse accounting (PnL in coin, harmonic
entry, equity in USD) and a crash replay on inverse contracts.
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import polars as pl
import pytest

from backtest import RunConfig, run_backtest
from backtest.engine import RunLoop
from backtest.errors import ConfigError
from backtest.market_data import MarketData
from backtest.strategy import Strategy
from backtest.venues.tiers import Tier, TierTable

SYMBOL = "BTC/USD:BTC"
T0 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
HOUR = 3_600_000


def _bars(prices: list[float] | np.ndarray, lows: Any = None) -> pl.DataFrame:
    """Flat hourly candles at ``prices`` (open = close = mark), optional lows."""
    prices = np.asarray(prices, dtype=float)
    low = prices if lows is None else np.asarray(lows, dtype=float)
    n = prices.size
    frame = pl.DataFrame({"ts": T0 + np.arange(n, dtype=np.int64) * HOUR, "open": prices,
                          "high": prices, "low": low, "close": prices,
                          "volume": np.full(n, 1e6)})
    return frame.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")),
                              mark_open=pl.col("open"), mark_high=pl.col("high"),
                              mark_low=pl.col("low"), mark_close=pl.col("close"))


def _data(prices: Any, lows: Any = None, tiers: Any = None, warnings: tuple = ()) -> MarketData:
    return MarketData.from_frames({SYMBOL: _bars(prices, lows)}, timeframe="1h",
                                  exchange="binancecoinm",
                                  tiers=None if tiers is None else {SYMBOL: tiers},
                                  quality_warnings=warnings)


class Buy(Strategy):
    """Buy ``contracts`` at the first close (filled at the next open), then hold."""

    name = "buy_contracts"

    def __init__(self, contracts: float, more: float = 0.0) -> None:
        super().__init__()
        self.contracts = contracts
        self.more = more

    def on_bar(self, ctx: Any) -> None:
        if ctx.bar_index == 0:
            ctx.buy(self.contracts) if self.contracts > 0 else ctx.sell(-self.contracts)
        elif ctx.bar_index == 1 and self.more:
            ctx.buy(self.more)


def _config(**kw: Any) -> RunConfig:
    base = dict(venue="binance_coinm", fees=(0.0, 0.0), slippage="none")
    base.update(kw)
    return RunConfig(**base)


def _vector(shared_dir: Any, vid: str) -> dict[str, Any]:
    vectors = json.loads((shared_dir / "specs" / "vectors.json").read_text())
    return next(v for v in vectors if v["id"] == vid)


def _coinm_vectors(shared_dir: Any) -> list[dict[str, Any]]:
    vectors = json.loads((shared_dir / "specs" / "vectors.json").read_text())
    return [v for v in vectors if v["venue"] == "binance" and v["contract"] == "inverse"]


def test_every_coinm_vector_is_covered_here(shared_dir: Any) -> None:
    """The three vectors below are all of Binance's inverse ones (a new one fails this)."""
    ids = {v["id"] for v in _coinm_vectors(shared_dir)}
    assert ids == {"binance-coinm-doc-level5-cum", "binance-coinm-doc-mm-100-contracts",
                   "binance-coinm-forum-cross-33599"}


def test_vector_maintenance_amount_in_the_runs_tier_table(shared_dir: Any) -> None:
    """binance-coinm-doc-level5-cum: the run's built-in BTCUSD table, level 5 (coin)."""
    v = _vector(shared_dir, "binance-coinm-doc-level5-cum")
    run = RunLoop(_data([30_000.0] * 3), Buy(1), _config(initial_balance=1.0))
    table = run.st.margin.tables[0]
    index = table.index_for(v["inputs"]["floor_n"])
    assert table.tiers[index].floor == v["inputs"]["floor_n"]
    assert table.tiers[index].mmr == v["inputs"]["mmr_n"]
    assert table.tiers[index - 1].mmr == v["inputs"]["mmr_prev"]
    assert table.tiers[index - 1].cum == pytest.approx(v["inputs"]["cum_prev"], abs=1e-12)
    assert table.tiers[index].cum == pytest.approx(v["expected"], abs=v["abs_tol"])


def test_vector_maintenance_margin_of_100_contracts(shared_dir: Any) -> None:
    """binance-coinm-doc-mm-100-contracts: the equity table's maintenance margin (BTC)."""
    v = _vector(shared_dir, "binance-coinm-doc-mm-100-contracts")
    inputs = v["inputs"]
    tiers = TierTable([Tier(floor=0.0, cap=math.inf, mmr=inputs["mmr"], cum=inputs["cum"],
                            max_leverage=125.0)], label="vector")
    mark = inputs["mark_price"]
    result = run_backtest(_data([mark] * 4, tiers=tiers), Buy(inputs["contracts"]),
                          config=_config(initial_balance=1.0, leverage=10.0))
    held = result.equity.filter(pl.col("position_qty") != 0)
    assert held.height == 3
    assert held["maintenance_margin"].to_list() == pytest.approx([v["expected"]] * 3,
                                                                 abs=v["abs_tol"])
    # notional in coin: contracts x 100 USD / mark
    assert held["gross_notional"][0] == pytest.approx(inputs["contracts"] * 100 / mark)


def test_vector_cross_liquidation_price_33599(shared_dir: Any) -> None:
    """binance-coinm-forum-cross-33599: the engine's liquidation price of the vector's position."""
    v = _vector(shared_dir, "binance-coinm-forum-cross-33599")
    inputs = v["inputs"]
    # a bracket of the vector's rate and amount, reached by Binance's recursion from a first
    # bracket at 0.4 %: floor = cum / (mmr - 0.4 %) (the position sits in it at its LP)
    floor = inputs["cum"] / (inputs["mmr"] - 0.004)
    tiers = TierTable([Tier(floor=0.0, cap=floor, mmr=0.004, cum=0.0, max_leverage=125.0),
                       Tier(floor=floor, cap=math.inf, mmr=inputs["mmr"], cum=inputs["cum"],
                            max_leverage=4.0)], label="vector level 7")
    assert inputs["contracts"] * 100 / v["expected"] > floor  # the LP notional is in it
    entry = inputs["entry_price"]
    result = run_backtest(_data([entry] * 4, tiers=tiers), Buy(inputs["contracts"]),
                          config=_config(initial_balance=inputs["wallet_balance"], leverage=4.0,
                                         margin_mode="cross"))
    positions = result.positions
    assert positions.height == 3
    assert positions["entry_price"][0] == entry
    assert positions["liquidation_price"].to_list() == pytest.approx(
        [v["expected"]] * 3, abs=v["abs_tol"])


def test_inverse_pnl_entry_and_usd_equity() -> None:
    """PnL in coin (s*n*CS*(1/EP - 1/P)), harmonic average entry, equity also in USD."""
    prices = [25_000.0, 25_000.0, 20_000.0, 20_000.0, 20_000.0]
    result = run_backtest(_data(prices), Buy(100, more=100),
                          config=_config(initial_balance=2.0, leverage=5.0))
    last = result.equity.row(-1, named=True)
    # 100 contracts at 25,000 and 100 at 20,000: harmonic entry 200 / (100/25k + 100/20k)
    assert result.positions["entry_price"][-1] == pytest.approx(200 / (100 / 25_000 + 100 / 20_000))
    # PnL of the first 100 contracts: 100*100*(1/25,000 - 1/20,000) = -0.1 BTC
    assert last["unrealized_pnl"] == pytest.approx(-0.1)
    assert last["equity"] == pytest.approx(1.9)
    assert last["equity_usd"] == pytest.approx(1.9 * 20_000)
    assert result.positions["qty"][-1] == 200


def test_usdm_has_no_usd_column_and_refuses_inverse_specs() -> None:
    """A USDⓈ-M run keeps its table layout; the wrong venue for the data is a clear error."""
    from backtest.venues.errors import VenueError

    with pytest.raises(VenueError, match="binance_coinm"):
        run_backtest(_data([25_000.0] * 3), Buy(1), config=_config(venue="binance_usdm"))


def test_mixed_margin_assets_are_refused() -> None:
    frames = {SYMBOL: _bars([25_000.0] * 3), "ETH/USD:ETH": _bars([2_000.0] * 3)}
    data = MarketData.from_frames(frames, timeframe="1h", exchange="binancecoinm")
    with pytest.raises(ConfigError, match="different margin assets"):
        run_backtest(data, Buy(1), config=_config())


def test_inverse_long_is_liquidated_at_the_inverse_liquidation_price() -> None:
    """A synthetic crash on inverse contracts: the trigger is the coin-margined LP."""
    from backtest.venues import binance_coinm as cm
    from backtest.venues.base import Leg

    prices = [40_000.0, 40_000.0, 40_000.0, 30_000.0, 30_000.0]
    lows = [40_000.0, 40_000.0, 40_000.0, 30_000.0, 30_000.0]
    tiers = TierTable([Tier(floor=0.0, cap=math.inf, mmr=0.005, cum=0.0, max_leverage=125.0)],
                      label="one tier")
    result = run_backtest(_data(prices, lows, tiers=tiers), Buy(2_000),
                          config=_config(initial_balance=1.0, leverage=10.0,
                                         margin_mode="isolated"))
    liq = result.liquidations
    assert liq.height == 1
    margin = 2_000 * 100 / 40_000 / 10.0  # isolated margin in BTC: notional / leverage
    expected = cm.liquidation_price_inverse(wallet_balance=margin, contract_size=100.0,
                                            both=Leg(1, 2_000, 40_000.0, 0.005, 0.0))
    assert liq["liquidation_price"][0] == pytest.approx(expected)
    assert 30_000 < expected < 40_000
    # the trader lost the isolated margin, in BTC
    assert result.equity["wallet_balance"][-1] == pytest.approx(1.0 - margin)


def test_crash_replay_on_inverse_contracts_with_a_usdtm_proxy(shared_data: Any) -> None:
    """2021-05-19 with Binance BTCUSDT prices standing in for the BTCUSD coin-margined index.

    ../shared holds no COIN-M candles, so the USDT prices are a proxy for the USD index of
    the inverse contract (stated in the run's warnings). A 20x long of BTC/USD:BTC from the
    window's start is liquidated in the crash, in coin, at its inverse liquidation price.
    """
    path = shared_data / "klines" / "crash_2021-05-19" / "binance_spot_BTCUSDT_1m_2021-05-18_2021-05-20.parquet"
    raw = pl.read_parquet(path)
    ts_col = "ts" if "ts" in raw.columns else raw.columns[0]
    frame = raw.select(pl.col(ts_col).alias("ts"), "open", "high", "low", "close", "volume")
    if frame["ts"].dtype != pl.Datetime("ms", "UTC"):
        frame = frame.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    frame = frame.with_columns(mark_open=pl.col("open"), mark_high=pl.col("high"),
                               mark_low=pl.col("low"), mark_close=pl.col("close"))
    proxy = ("BTC/USD:BTC: Binance spot BTCUSDT 1m prices stand in for the coin-margined "
             "BTCUSD index and mark (proxy; ../shared has no COIN-M candles)")
    data = MarketData.from_frames({SYMBOL: frame}, timeframe="1m", exchange="binancecoinm",
                                  quality_warnings=(proxy,))
    contracts = 2_000  # 200,000 USD face value, about 4.5 BTC at 44k
    result = run_backtest(data, Buy(contracts), config=_config(initial_balance=0.5,
                                                                leverage=20.0,
                                                                slippage="sqrt"))
    assert proxy in result.manifest["quality_warnings"]
    liq = result.liquidations
    assert liq.height >= 1
    row = liq.row(0, named=True)
    assert row["mark_price"] <= row["liquidation_price"] * (1 + 1e-9)
    # the trigger price is the inverse formula's, with the run's tier at that notional
    assert row["entry_price"] > row["liquidation_price"] > 0
    assert result.equity["wallet_balance"][-1] < 0.5
    assert "equity_usd" in result.equity.columns
