"""Runs under ``venue = "aave_v3"``: a looped long through the engine, with the arithmetic
written in (health factor, close factor, bonus, deficit, interest), the oracle as the mark,
shorts refused, the deleveraging strategy through 2020-03-12 and ``compare --venues``.

Scenario (1m candles, no fees, no slippage, no latency): 10,000 USDC and ``hold`` at exposure
5 buy 25 ETH at 2,000 (collateral 50,000 against a debt of 40,000, LTV 0.8, leverage 5 = the
WETH cap 1/(1 - 0.8)). The liquidation price is where ``HF = 25 x P x 0.825 / 40,000 = 1``:
``P = 40,000 / 20.625 = 1,939.39``; there ``25 x P x 0.825 = 40,000``, i.e. ``P x 0.825 = 1,600``.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from backtest import MarketData, RunConfig, run_backtest
from backtest.lending.interest import compounded_interest
from backtest.slippage import NoSlippage
from backtest.venues.errors import VenueError
from tests.engine.scenario import ETH, HOUR, MINUTE, T0, candles

LP = 40_000.0 / (25 * 0.825)


def _market(rows: list[tuple], *, step: int = MINUTE, timeframe: str = "1m", **extra: list[tuple]) -> MarketData:
    bars = {ETH: candles(rows, step=step)}
    bars.update({symbol: candles(more, step=step) for symbol, more in extra.items()})
    return MarketData.from_frames(bars, timeframe=timeframe, exchange="aave_v3")


def _config(**overrides) -> RunConfig:
    base = dict(venue="aave_v3", initial_balance=10_000.0, leverage=5.0, margin_mode="cross",
                fees=(0.0, 0.0), slippage=NoSlippage(), rounding=False, liquidation_latency_ms=0)
    base.update(overrides)
    return RunConfig(**base)


FLAT = (2_000.0, 2_000.0, 2_000.0, 2_000.0)


def test_a_loop_liquidated_by_hand_is_what_the_engine_does() -> None:
    # bar 2 falls from 2,000 to 1,900 (the oracle publishes 1,900: a 5 % move). At the trigger
    # (P = 1,939.39, HF 1) Aave lets a liquidator repay 50 % of the debt (HF > 0.95, both
    # reserves above 2,000 USD: v3.3) = 20,000 and seize 20,000 x 1.05 / P = 21,000 / P
    # = 21,000 x 20.625 / 40,000 = 10.828125 WETH; the bonus 21,000 - 20,000 = 1,000 is the
    # user's loss: equity 25 x P - 40,000 = 8,484.85 -> 7,484.85. After it: 14.171875 WETH
    # against 20,000, HF = 14.171875 x 1,600 / 20,000 = 1.13375; at the close of 1,900 the
    # equity is 14.171875 x 1,900 - 20,000 = 6,926.5625.
    data = _market([FLAT, FLAT, (2_000.0, 2_000.0, 1_900.0, 1_900.0), (1_900.0,) * 4])
    result = run_backtest(data, "hold", params={"exposure": 5.0}, config=_config())
    (row,) = result.liquidations.iter_rows(named=True)
    assert row["qty"] == pytest.approx(10.828125, rel=1e-8)
    assert row["mark_price"] == pytest.approx(LP, rel=1e-12)
    # the fill is the market's price at the trigger's millisecond (1,939.395 on the path)
    assert row["fill_price"] == pytest.approx(LP, abs=0.005)
    assert row["fee"] == pytest.approx(1_000.0, rel=1e-6)
    assert row["bad_debt"] == 0.0
    assert row["equity_before"] == pytest.approx(25 * LP - 40_000.0, rel=1e-9)
    assert row["equity_after"] == pytest.approx(25 * LP - 40_000.0 - 1_000.0, abs=0.02)
    assert result.positions["qty"].to_list()[-1] == pytest.approx(14.171875, rel=1e-8)
    assert result.summary["final_equity"] == pytest.approx(6_926.5625, abs=0.02)
    # the liquidation price after the call: 20,000 / (14.171875 x 0.825)
    assert result.positions["liquidation_price"].to_list()[-1] == pytest.approx(
        20_000.0 / (14.171875 * 0.825), rel=1e-5)
    assert result.summary["n_liquidations"] == 1


def test_emode_parameters_are_selectable_and_drive_the_liquidation() -> None:
    # e-mode 1 (LTV 93 %, LT 95 %, bonus 1 %): exposure 10 buys 50 ETH at 2,000 against a debt of
    # 90,000 (LTV 0.9, allowed: the cap is 1/(1 - 0.93) = 14.3x). HF = 1 at 90,000 / (50 x 0.95)
    # = 1,894.74; there a liquidator repays 45,000 and seizes 45,000 x 1.01 / P = 23.9868 WETH,
    # a bonus of 450.
    from backtest.venues.aave_loop import emode_overrides

    data = _market([FLAT, FLAT, (2_000.0, 2_000.0, 1_850.0, 1_850.0), (1_850.0,) * 4])
    config = _config(leverage=10.0, **emode_overrides(ETH, 1))
    result = run_backtest(data, "hold", params={"exposure": 10.0}, config=config)
    lp = 90_000.0 / (50 * 0.95)
    (row,) = result.liquidations.iter_rows(named=True)
    assert row["mark_price"] == pytest.approx(lp, rel=1e-12)
    assert row["qty"] == pytest.approx(45_000.0 * 1.01 / lp, rel=1e-8)
    assert row["fee"] == pytest.approx(450.0, rel=1e-5)
    # without the overrides the same leverage is above WETH's cap (5x)
    with pytest.raises(Exception, match="above the venue's cap 5x"):
        run_backtest(data, "hold", params={"exposure": 10.0}, config=_config(leverage=10.0))


def test_collateral_running_out_is_a_deficit_row() -> None:
    # bar 2 gaps to 1,500: HF = 25 x 1,500 x 0.825 / 40,000 = 0.773 <= 0.95, so the whole debt
    # may be repaid, which needs 42,000 of collateral; 25 x 1,500 = 37,500 is all there is: it
    # all goes for 37,500 / 1.05 = 35,714.29 and the other 4,285.71 is the deficit (v3.3).
    data = _market([FLAT, FLAT, (1_500.0,) * 4, (1_500.0,) * 4])
    result = run_backtest(data, "hold", params={"exposure": 5.0}, config=_config())
    (row,) = result.liquidations.iter_rows(named=True)
    deficit = 40_000.0 - 25 * 1_500.0 / 1.05
    assert row["qty"] == 25.0 and row["fill_price"] == 1_500.0
    assert row["bad_debt"] == pytest.approx(deficit, rel=1e-12)
    assert result.summary["bad_debt"] == pytest.approx(deficit, rel=1e-12)
    assert result.summary["final_equity"] == 0.0


def test_interest_is_charged_on_the_debt_hourly_in_the_funding_table() -> None:
    # 1h candles at a flat 2,000: the loop opens at bar 1's open (the settlement at that instant
    # comes first and finds no position); the next two settlements charge the debt 5 %/yr and
    # pay the collateral 2 %/yr for one hour, each on the debt left by the one before.
    data = _market([FLAT] * 4, step=HOUR, timeframe="1h")
    result = run_backtest(data, "hold", params={"exposure": 5.0}, config=_config())
    borrow = compounded_interest(0.05, 3_600) - 1.0
    supply = compounded_interest(0.02, 3_600) - 1.0
    debt, payments = 40_000.0, []
    for _ in range(2):
        payment = -debt * borrow + 50_000.0 * supply
        payments.append(payment)
        debt -= payment
    funding = result.funding
    assert funding["ts"].dt.epoch("ms").to_list() == [T0 + 2 * HOUR, T0 + 3 * HOUR]
    assert funding["rate"].to_list() == [borrow, borrow]
    assert funding["payment"].to_list() == pytest.approx(payments, rel=1e-12)
    assert result.summary["final_equity"] == pytest.approx(10_000.0 + sum(payments), rel=1e-12)
    notes = [w for w in result.manifest["quality_warnings"] if w.startswith("aave_v3:")]
    assert len(notes) == 1 and "Aave interest, not perpetual funding" in notes[0]


def test_the_mark_is_the_oracle_not_the_candle() -> None:
    # a drift of 0.3 % per candle publishes nothing until the 0.5 % deviation is crossed
    rows = [(2_000.0, 2_006.0, 2_000.0, 2_006.0), (2_006.0, 2_012.0, 2_006.0, 2_012.0)]
    result = run_backtest(_market(rows), "hold", params={"exposure": 1.0}, config=_config())
    marks = result.equity["mark_price"].to_list()
    assert marks == [2_000.0, 2_012.0]  # bar 0 never moved 0.5 %; bar 1 reached 0.6 %


def test_a_short_is_a_rejection_row_not_a_position() -> None:
    data = _market([FLAT] * 3)
    result = run_backtest(data, "hold", params={"side": "short", "exposure": 1.0}, config=_config())
    (row,) = result.rejections.iter_rows(named=True)
    assert row["reason"] == "short_unsupported"
    assert "short would borrow the asset against USDC" in row["message"]
    assert result.fills.height == 0


def test_a_cross_account_over_two_symbols_is_refused_before_the_run() -> None:
    from tests.engine.scenario import SYMBOL

    data = _market([FLAT] * 3, **{SYMBOL: [(40_000.0,) * 4] * 3})
    with pytest.raises(VenueError, match="cross account over 2 symbols"):
        run_backtest(data, "hold", config=_config())
    # isolated, each loop its own account, runs (hold trades the first symbol)
    isolated = run_backtest(data, "hold", params={"exposure": 1.0},
                            config=_config(margin_mode="isolated", leverage=3.0))
    assert isolated.fills["symbol"].to_list() == [ETH]


# ---- real prices: 2020-03-12 (ETH 1h, ../shared) -----------------------------------------------

ETH_1H = "klines/long/binance_um_ETHUSDT_1h_2019-11-27_2026-05-17.parquet"


@pytest.fixture(scope="module")
def black_thursday(shared_data: Path) -> pl.DataFrame:
    from tests.risk.conftest import read_shared_bars

    return read_shared_bars(shared_data / ETH_1H, start="2020-03-11", end="2020-03-15")


def test_deleveraging_survives_black_thursday_where_hold_is_liquidated(black_thursday: pl.DataFrame) -> None:
    # both open at LTV 0.6 (exposure 1 / (1 - 0.6) = 2.5 of the wallet, cross: the wallet is the
    # account) on 2020-03-11 01:00 UTC at about 202 USD; ETH fell to 84 on 2020-03-13
    data = MarketData.from_frames({ETH: black_thursday}, timeframe="1h", exchange="aave_v3")
    config = RunConfig(venue="aave_v3", leverage=5.0, margin_mode="cross", initial_balance=10_000.0)
    hold = run_backtest(data, "hold", params={"exposure": 2.5}, config=config)
    loop = run_backtest(data, "loop_rebalance", config=config)  # entry 0.6, band 0.3-0.65, target 0.45
    first_equity = loop.equity["equity"][0]
    assert hold.summary["n_liquidations"] >= 1
    assert hold.summary["first_liquidation_ts"].startswith("2020-03-12")
    assert loop.summary["n_liquidations"] == 0
    sells = loop.fills.filter(pl.col("side") == "sell")
    assert sells.height >= 2 and set(sells["reason"]) == {"strategy"}
    # the strategy's first order opened the loop at LTV 0.6 of its equity
    opening = loop.fills.row(0, named=True)
    assert opening["qty"] * opening["price"] == pytest.approx(first_equity / 0.4, rel=0.01)
    assert loop.summary["final_equity"] > hold.summary["final_equity"]


def test_compare_venues_gives_binance_aave_and_compound_rows_on_the_same_path(black_thursday: pl.DataFrame) -> None:
    from backtest.compare import compare_venues

    data = MarketData.from_frames({ETH: black_thursday}, timeframe="1h", exchange="binanceusdm")
    comparison = compare_venues(data, "hold", venues=["binance_usdm", "aave_v3", "compound_v3"],
                                leverages=[2.0, 4.0],
                                config=RunConfig(margin_mode="cross", fees=(0.0, 0.0), slippage="none"))
    table = comparison.table.sort("venue", "leverage")
    assert table["venue"].to_list() == ["aave_v3", "aave_v3", "binance_usdm", "binance_usdm",
                                        "compound_v3", "compound_v3"]
    assert table["tradable"].all() and table["entered"].all()
    assert set(table["price_source"]) == {f"prices: binanceusdm, rules: {v}"
                                          for v in ("binance_usdm", "aave_v3", "compound_v3")}
    # a loop's liquidation price at entry is where its line is crossed: debt / (q x LT) on Aave
    # (LT 0.825), debt / (q x liquidateCF) on Compound (0.90); the debt is q x entry - 10,000
    # (cross, no fees: the wallet is the account's equity)
    for venue, line in (("aave_v3", 0.825), ("compound_v3", 0.90)):
        rows = table.filter(pl.col("venue") == venue)
        qty, entry = rows["qty"].to_list(), rows["entry_price"].to_list()
        assert rows["liquidation_price_at_entry"].to_list() == pytest.approx(
            [(q * e - 10_000.0) / (q * line) for q, e in zip(qty, entry)], rel=1e-9)
    assert set(comparison.survival.columns) == {"leverage", "aave_v3", "binance_usdm", "compound_v3"}


def test_detail_candles_get_the_oracle_too() -> None:
    from backtest.venues.aave_loop import oracle_bars, prepare_market

    closes = [2_000.0 + 0.5 * k for k in range(120)]  # +0.025 % a minute: 0.5 % every 20 minutes
    detail = candles([(c, c + 0.5, c, c + 0.5) for c in closes], step=MINUTE)
    bars = candles([(2_000.0, 2_030.0, 2_000.0, 2_030.0), (2_030.0, 2_060.0, 2_030.0, 2_060.0)], step=HOUR)
    data = MarketData.from_frames({ETH: bars}, timeframe="1h", detail_bars={ETH: detail},
                                  detail_timeframe="1m", exchange="aave_v3")
    prepared = prepare_market(data, _config())
    d = data.detail[ETH]
    expected = oracle_bars(d.ts, d.open, d.high, d.low, d.close, MINUTE, heartbeat_s=3600.0, deviation=0.005)
    assert prepared.detail[ETH].mark_close.tolist() == expected[3].tolist()
    # the feed steps by about 0.5 %: far fewer distinct answers than candles
    assert 2 < len(set(expected[3].tolist())) < 20
    assert prepare_market(data, _config()) is prepared  # built once per MarketData


@pytest.mark.parametrize("venue", ["aave_v3", "compound_v3"])
def test_the_array_path_gives_the_event_paths_tables(black_thursday: pl.DataFrame, venue: str) -> None:
    # hold is a signal strategy: `margincall run` takes the array path (run_strategy); the
    # venue's prepared market (oracle, interest) must be the one both paths run on
    from backtest.fastpath import array_path_applies, run_strategy
    from backtest.strategy import load_strategy

    data = MarketData.from_frames({ETH: black_thursday}, timeframe="1h", exchange=venue)
    config = RunConfig(venue=venue, leverage=4.0, margin_mode="isolated", initial_balance=10_000.0)
    assert array_path_applies(data, load_strategy("hold", {"exposure": 3.0, "reenter": True}))
    event = run_backtest(data, "hold", params={"exposure": 3.0, "reenter": True}, config=config)
    array = run_strategy(data, "hold", params={"exposure": 3.0, "reenter": True}, config=config)
    assert event.summary["n_liquidations"] >= 1 and event.funding.height > 0
    for table in ("fills", "liquidations", "funding", "equity"):
        assert array.frame(table).equals(event.frame(table)), table


def test_loop_rebalance_relevers_to_its_target_by_hand() -> None:
    # entry LTV 0.6: 10,000 of equity -> 25,000 of WETH (12.5 at 2,000) against 15,000. At 4,400
    # the collateral is 55,000, the equity 40,000, LTV 15,000 / 55,000 = 0.273 < 0.3: it borrows
    # back to 0.45, a notional of 40,000 / 0.55 = 72,727.27, i.e. buys 17,727.27 / 4,400 WETH.
    rising = (2_000.0, 4_400.0, 2_000.0, 4_400.0)
    data = _market([FLAT, rising, (4_400.0,) * 4, (4_400.0,) * 4])
    result = run_backtest(data, "loop_rebalance", config=_config())
    opened, relevered = result.fills.iter_rows(named=True)
    assert opened["qty"] == pytest.approx(12.5) and opened["price"] == 2_000.0
    assert relevered["side"] == "buy" and relevered["price"] == 4_400.0
    assert relevered["qty"] == pytest.approx((40_000.0 / 0.55 - 55_000.0) / 4_400.0, rel=1e-9)
    last = result.equity.row(-1, named=True)
    assert 1.0 - last["equity"] / (last["position_qty"] * last["mark_price"]) == pytest.approx(0.45, rel=1e-9)


def test_loop_rebalance_refuses_isolated_and_a_disordered_band() -> None:
    from backtest.strategy import ParameterConflict, StrategyFailed

    data = _market([FLAT] * 3)
    with pytest.raises(StrategyFailed, match="expected 'cross'"):
        run_backtest(data, "loop_rebalance", config=_config(margin_mode="isolated"))
    with pytest.raises(ParameterConflict, match="expected lower <= target <= upper"):
        run_backtest(data, "loop_rebalance", params={"lower": 0.7, "upper": 0.6}, config=_config())
