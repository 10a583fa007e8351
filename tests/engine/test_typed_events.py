"""The strategy hooks receive frozen dataclasses (backtest.strategy_events) with the run's values."""
from __future__ import annotations

import dataclasses

import polars as pl
import pytest

import backtest
from backtest import FundingPaid, OrderFilled, PositionDeleveraged, PositionLiquidated, Strategy, run_backtest
from tests.engine.scenario import HOUR, SYMBOL, T0, config, market

FLAT = (100.0, 100.0, 100.0, 100.0)


class Recorder(Strategy):
    """Goes long 1x at bar 0 and records every hook event."""

    def on_start(self, ctx) -> None:  # noqa: ANN001
        self.events: list = []

    def on_bar(self, ctx) -> None:  # noqa: ANN001
        if ctx.bar_index == 0:
            ctx.target_exposure(1.0, stop=0.05)

    def on_fill(self, ctx, event) -> None:  # noqa: ANN001
        self.events.append(event)

    def on_funding(self, ctx, event) -> None:  # noqa: ANN001
        self.events.append(event)

    def on_liquidation(self, ctx, event) -> None:  # noqa: ANN001
        self.events.append(event)

    def on_adl(self, ctx, event) -> None:  # noqa: ANN001
        self.events.append(event)


def test_on_fill_receives_order_filled_matching_the_fills_table():
    strategy = Recorder()
    result = run_backtest(market([FLAT, FLAT, (100, 101, 94, 96)]), strategy, config=config())
    fills = [e for e in strategy.events if isinstance(e, OrderFilled)]
    assert len(fills) == result.fills.height == 2
    for event, row in zip(fills, result.fills.to_dicts()):
        assert (event.order_id, event.side, event.qty, event.price, event.position_qty) == \
            (row["order_id"], row["side"], row["qty"], row["price"], row["position_qty_after"])
        assert event.ts == int(row["ts"].timestamp() * 1000)
    assert (fills[0].order_type, fills[1].order_type) == ("market", "stop_market")
    assert fills[1].exit_reason == "stop" and fills[1].position_qty == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        fills[0].price = 1.0  # type: ignore[misc]


def test_on_funding_receives_funding_paid():
    funding = pl.DataFrame({"ts": [T0 + 2 * HOUR], "rate": [0.0001], "mark_price": [100.0]}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    strategy = Recorder()
    result = run_backtest(market([FLAT] * 4, funding=funding, timeframe="1h"), strategy, config=config())
    (event,) = [e for e in strategy.events if isinstance(e, FundingPaid)]
    row = result.funding.row(0, named=True)
    assert event.ts == T0 + 2 * HOUR and event.symbol == SYMBOL
    assert event.payment == pytest.approx(row["payment"]) == pytest.approx(-100 * 100.0 * 0.0001)
    assert event.position_qty == pytest.approx(100.0) and event.rate == 0.0001


def test_on_liquidation_receives_position_liquidated_with_the_row():
    strategy = Recorder()
    strategy.on_bar = lambda ctx: ctx.target_exposure(1.0) if ctx.bar_index == 0 else None
    result = run_backtest(market([FLAT, FLAT, (85, 86, 84, 85)]), strategy, config=config())
    (event,) = [e for e in strategy.events if isinstance(e, PositionLiquidated)]
    row = result.liquidations.row(0, named=True)
    assert event.side == "long" and event.qty == row["qty"] == 100.0
    assert event.bad_debt == pytest.approx(row["bad_debt"])
    assert event.liquidation_price == pytest.approx(row["liquidation_price"])


def test_on_adl_receives_position_deleveraged():
    strategy = Recorder()
    up = (110.0, 110.0, 110.0, 110.0)  # ADL ranks profitable positions only
    cfg = config(adl_events=[{"ts": T0 + 3 * 60_000, "symbol": SYMBOL, "price": 110.0}])
    result = run_backtest(market([FLAT, FLAT, up, up, up]), strategy, config=cfg)
    (event,) = [e for e in strategy.events if isinstance(e, PositionDeleveraged)]
    row = result.adl.row(0, named=True)
    assert (event.side, event.qty, event.price) == ("long", 100.0, 110.0)
    assert event.realized_pnl == pytest.approx(row["realized_pnl"]) == pytest.approx(100.0 * (110 - 100))
    assert result.trades.row(0, named=True)["exit_reason"] == "adl"
    # the bracket's stop went with the position
    assert result.orders.filter(pl.col("type") == "stop_market").row(0, named=True)["status"] == "cancelled"


def test_dict_style_access_still_works_and_warns():
    strategy = Recorder()
    run_backtest(market([FLAT, FLAT, FLAT]), strategy, config=config())
    event = strategy.events[0]
    with pytest.warns(DeprecationWarning, match=r"read event\.price"):
        assert event["price"] == event.price
    with pytest.warns(DeprecationWarning), pytest.raises(KeyError):
        event["nope"]


def test_the_event_classes_are_exported_and_documented_with_units():
    for cls in (OrderFilled, FundingPaid, PositionLiquidated, PositionDeleveraged):
        assert getattr(backtest, cls.__name__) is cls
        doc = cls.__doc__ or ""
        for field in dataclasses.fields(cls):
            assert field.name in doc, f"{cls.__name__}.{field.name} is not documented"
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
