"""Bracket orders: exits attached to an entry, OCO, trailing stops, exit reasons.

Tiny inline candle tables (freqtrade style); each expected fill is worked out in the test
from the table. Textbook configuration (tests/engine/scenario.py): 10,000 USDT, flat 0.5 %
tier, no fees, no slippage. ``target_exposure(1.0)`` at bar 0 buys 10,000 / 100 = 100 BTC at
bar 1's open (100).
"""
from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from backtest import run_backtest
from backtest.errors import StrategyError
from tests.engine.scenario import Script, config, market

FLAT = (100.0, 100.0, 100.0, 100.0)
QTY = 100.0  # 10,000 USDT / 100


def _orders(result, type_: str) -> list[dict]:  # noqa: ANN001
    return result.orders.filter(pl.col("type") == type_).to_dicts()


def _trades(result) -> list[dict]:  # noqa: ANN001
    return result.trades.to_dicts()


def _enter(**bracket):  # noqa: ANN003, ANN202
    def action(ctx) -> None:  # noqa: ANN001
        ctx.target_exposure(1.0, **bracket)
    return action


def test_stop_hit_fills_at_its_trigger_and_records_the_exit_reason():
    rows = [FLAT, FLAT, (100, 101, 94, 96), (96, 97, 95, 96)]
    result = run_backtest(market(rows), Script({0: _enter(stop=0.05, take_profit=0.10)}),
                          config=config(fees=(0.0002, 0.0005)))
    stop = 100 * (1 - 0.05)  # 95
    exit_fill = result.fills.row(1, named=True)
    assert exit_fill["price"] == pytest.approx(stop)
    assert exit_fill["realized_pnl"] == pytest.approx(QTY * (stop - 100))  # -500
    entry_fee, exit_fee = QTY * 100 * 0.0005, QTY * stop * 0.0005
    assert result.summary["final_equity"] == pytest.approx(10_000 - 500 - entry_fee - exit_fee)
    (trade,) = _trades(result)
    assert trade["exit_reason"] == "stop"
    assert [o["status"] for o in _orders(result, "stop_market")] == ["filled"]
    # OCO: the take-profit sibling is cancelled when the stop fills
    (tp,) = _orders(result, "take_profit")
    assert tp["status"] == "cancelled" and tp["stop_price"] == pytest.approx(110.0)
    assert all(o["reduce_only"] for o in _orders(result, "take_profit") + _orders(result, "stop_market"))


def test_take_profit_hit_cancels_the_stop():
    rows = [FLAT, FLAT, (100, 111, 99.5, 105), (105, 106, 104, 105)]
    result = run_backtest(market(rows), Script({0: _enter(stop=0.05, take_profit=0.10)}),
                          config=config())
    take = 100 * (1 + 0.10)  # 110
    exit_fill = result.fills.row(1, named=True)
    assert exit_fill["price"] == pytest.approx(take)
    assert exit_fill["realized_pnl"] == pytest.approx(QTY * (take - 100))  # +1,000
    assert _trades(result)[0]["exit_reason"] == "take_profit"
    assert _orders(result, "stop_market")[0]["status"] == "cancelled"


def test_absolute_prices_give_the_same_bracket_as_fractions():
    rows = [FLAT, FLAT, (100, 111, 99.5, 105), (105, 106, 104, 105)]

    def absolute(ctx) -> None:  # noqa: ANN001
        ctx.buy(QTY, stop_price=95.0, take_profit_price=110.0)

    by_price = run_backtest(market(rows), Script({0: absolute}), config=config())
    by_fraction = run_backtest(market(rows), Script({0: _enter(stop=0.05, take_profit=0.10)}),
                               config=config())
    assert by_price.fills.get_column("price").to_list() == \
        pytest.approx(by_fraction.fills.get_column("price").to_list())
    assert _trades(by_price)[0]["exit_reason"] == "take_profit"


def test_a_short_bracket_mirrors_the_levels():
    rows = [FLAT, FLAT, (100, 106, 99, 104), FLAT]

    def short(ctx) -> None:  # noqa: ANN001
        ctx.sell(QTY, stop=0.05, take_profit=0.10)

    result = run_backtest(market(rows), Script({0: short}), config=config())
    stop = 100 * (1 + 0.05)  # 105: a short's stop lies above its fill
    exit_fill = result.fills.row(1, named=True)
    assert exit_fill["side"] == "buy" and exit_fill["price"] == pytest.approx(stop)
    assert exit_fill["realized_pnl"] == pytest.approx(-QTY * (stop - 100))
    assert _orders(result, "take_profit")[0]["stop_price"] == pytest.approx(90.0)
    assert _trades(result)[0]["exit_reason"] == "stop"


def test_both_levels_in_one_bar_fill_the_conservative_one():
    """The worst_case path walks a long's candle to its low first: the stop fills, not the
    take-profit; the ohlc path (high first) takes the profit. The policy decides, as for
    any resting order."""
    rows = [FLAT, FLAT, (100, 112, 94, 100), FLAT]
    bracket = _enter(stop=0.05, take_profit=0.10)
    worst = run_backtest(market(rows), Script({0: bracket}), config=config())
    assert worst.fills.row(1, named=True)["price"] == pytest.approx(95.0)
    assert _trades(worst)[0]["exit_reason"] == "stop"
    ohlc = run_backtest(market(rows), Script({0: bracket}), config=config(path_policy="ohlc"))
    assert ohlc.fills.row(1, named=True)["price"] == pytest.approx(110.0)
    assert _trades(ohlc)[0]["exit_reason"] == "take_profit"


def test_closing_the_position_otherwise_cancels_both_exits():
    seen: list[int] = []

    def close(ctx) -> None:  # noqa: ANN001
        ctx.close()

    def look(ctx) -> None:  # noqa: ANN001
        seen.append(len(ctx.open_orders()))

    rows = [FLAT] * 5
    result = run_backtest(market(rows), Script({0: _enter(stop=0.05, take_profit=0.10), 1: look,
                                                2: close, 3: look}), config=config())
    assert seen == [2, 0]  # two exits rest while long, none once the close filled
    assert _trades(result)[0]["exit_reason"] == "signal"
    statuses = [o["status"] for o in _orders(result, "stop_market") + _orders(result, "take_profit")]
    assert statuses == ["cancelled", "cancelled"]


def test_trailing_stop_ratchets_with_the_best_price_and_exits_at_the_ratcheted_level():
    trail = 0.10
    rows = [FLAT, FLAT,
            (100, 120, 100, 118),   # walked with the trigger at 90; then best 120: trigger 108
            (118, 119, 110, 112),   # low 110 > 108; best stays 120
            (112, 113, 105, 106),   # crosses 108: the stop fills there
            FLAT]
    result = run_backtest(market(rows), Script({0: _enter(trail=trail)}), config=config(leverage=5.0))
    level = 120 * (1 - trail)  # 108
    exit_fill = result.fills.row(1, named=True)
    assert exit_fill["price"] == pytest.approx(level)
    assert exit_fill["realized_pnl"] == pytest.approx(QTY * (level - 100))  # +800
    assert _trades(result)[0]["exit_reason"] == "trailing_stop"
    (order,) = _orders(result, "stop_market")
    assert order["status"] == "filled" and order["stop_price"] == pytest.approx(level)
    bar4_open = result.frame("bars").row(4, named=True)["ts"]
    assert exit_fill["ts"] > bar4_open  # inside bar 4, not at its open


def test_trailing_stop_is_checked_before_the_candles_own_ratchet():
    """A long's worst_case candle goes open -> low -> high -> close: 100 -> 100 -> 130 -> 100.
    During the candle the trigger is still 90 (no exit); after it the trigger is 130 x 0.9 =
    117, above bar 3's open of 100: a gap, filled at that open."""
    rows = [FLAT, FLAT, (100, 130, 100, 100), (100, 101, 99, 100), FLAT]
    result = run_backtest(market(rows), Script({0: _enter(trail=0.10)}), config=config(leverage=5.0))
    exit_fill = result.fills.row(1, named=True)
    bar3 = result.frame("bars").row(3, named=True)
    assert exit_fill["ts"] == bar3["ts"] and exit_fill["price"] == pytest.approx(bar3["open"])
    assert _orders(result, "stop_market")[0]["stop_price"] == pytest.approx(130 * 0.9)
    assert _trades(result)[0]["exit_reason"] == "trailing_stop"


def test_a_stop_beyond_the_liquidation_price_warns_and_the_liquidation_comes_first():
    lp = (1000.0 - 100 * 100.0) / (100 * 0.005 - 100.0)  # isolated 10x long from 100: ~90.45
    stop = 100 * (1 - 0.15)  # 85, below the liquidation price
    assert stop < lp
    rows = [FLAT, FLAT, (100, 100, 80, 82), FLAT]
    result = run_backtest(market(rows), Script({0: _enter(stop=0.15)}), config=config())
    warnings = [w for w in result.manifest["quality_warnings"] if "liquidation price" in w]
    assert len(warnings) == 1 and "85" in warnings[0] and "lower the leverage" in warnings[0]
    assert result.liquidations.height == 1
    assert result.liquidations.row(0, named=True)["liquidation_price"] == pytest.approx(lp)
    assert _trades(result)[0]["exit_reason"] == "liquidation"
    assert _orders(result, "stop_market")[0]["status"] == "cancelled"
    assert result.fills.filter(pl.col("reason") == "reduce").height == 0  # the stop never filled


def test_a_stop_inside_the_liquidation_price_does_not_warn():
    result = run_backtest(market([FLAT, FLAT, FLAT]), Script({0: _enter(stop=0.05)}), config=config())
    assert not [w for w in result.manifest["quality_warnings"] if "liquidation price" in w]


def test_an_open_position_at_the_end_is_end_of_data():
    result = run_backtest(market([FLAT, FLAT, FLAT]), Script({0: _enter()}), config=config())
    assert _trades(result)[0]["exit_reason"] == "end_of_data"


def test_trade_statistics_split_by_exit_reason():
    from reports.trade_stats import trade_stats

    rows = [FLAT, FLAT, (100, 101, 94, 96), FLAT, FLAT, (100, 111, 99, 105), FLAT]

    def reenter(ctx) -> None:  # noqa: ANN001
        if ctx.position().qty == 0.0:
            ctx.target_exposure(1.0, stop=0.05, take_profit=0.10)

    result = run_backtest(market(rows), Script({0: reenter, 3: reenter}), config=config())
    stats = trade_stats(result.trades)
    assert list(stats.by_exit_reason) == ["stop", "take_profit"]
    assert stats.by_exit_reason["stop"].net == pytest.approx(QTY * (95 - 100))
    # re-entered with the wallet left after the stop: (10,000 - 500) / 100 = 95 BTC
    assert stats.by_exit_reason["take_profit"].net == pytest.approx((10_000 - 500) / 100 * (110 - 100))


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"stop": 95.0}, r"stop= is a fraction .* found 95.0; for an absolute price pass stop_price=95.0"),
    ({"take_profit": 1.5}, r"take_profit= is a fraction .* take_profit_price=1.5"),
    ({"trail": 0.0}, r"trail= is a fraction"),
    ({"stop": 0.05, "stop_price": 95.0}, r"not both"),
    ({"stop_los": 0.05}, r"unknown keyword 'stop_los' \(did you mean 'stop'\?\)"),
    ({"takeprofit": 0.1}, r"unknown keyword 'takeprofit' \(did you mean 'take_profit'\?\)"),
    ({"stop": 0.05, "reduce_only": True}, r"reduce-only order opens nothing; .*trigger=PRICE"),
])
def test_bad_bracket_arguments_raise_a_clear_error(kwargs: dict, expected: str):
    def bad(ctx) -> None:  # noqa: ANN001
        ctx.buy(1.0, **kwargs)

    with pytest.raises(StrategyError, match=expected):
        run_backtest(market([FLAT, FLAT]), Script({0: bad}), config=config())


def test_an_exit_already_through_the_price_is_a_recorded_rejection():
    def wrong_side(ctx) -> None:  # noqa: ANN001
        ctx.buy(QTY, stop_price=101.0)  # a long's stop above the fill price of 100

    result = run_backtest(market([FLAT, FLAT, FLAT]), Script({0: wrong_side}), config=config())
    (rejection,) = result.rejections.to_dicts()
    assert rejection["reason"] == "would_trigger" and "101" in rejection["message"]
    assert _trades(result)[0]["exit_reason"] == "end_of_data"  # the position stays open


def test_the_strategy_in_the_api_reference_runs_and_uses_its_bracket():
    page = (Path(__file__).resolve().parents[2] / "docs" / "strategy_api.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "strategy_api.md", "exec"), namespace)  # noqa: S102 - the docs' own example
    rows = [FLAT] * 3 + [(100, 104, 100, 103), (103, 104, 97, 98), (98, 99, 96, 97), FLAT]
    strategy = namespace["Breakout"](lookback=2)
    result = run_backtest(market(rows), strategy, config=config(leverage=5.0))
    # bar 3 closes at 103 above the 2-bar channel high (100): long at bar 4's open (103);
    # its stop at 103 x 0.95 = 97.85 fills inside bar 4 (low 97)
    (trade,) = _trades(result)
    assert trade["exit_reason"] == "stop"
    assert result.fills.row(1, named=True)["price"] == pytest.approx(103 * 0.95)


def test_hedge_mode_brackets_protect_their_own_leg():
    """Hedge mode: a long and a short leg, each with its own stop; the bar's rise to 106 stops
    the short's leg at 105 (5 % above its fill) and leaves the long leg and its stop resting."""
    def both(ctx) -> None:  # noqa: ANN001
        ctx.buy(10.0, stop=0.05)
        ctx.sell(10.0, stop=0.05)

    rows = [FLAT, FLAT, (100, 106, 99, 104), FLAT]
    result = run_backtest(market(rows), Script({0: both}), config=config(position_mode="hedge"))
    stops = {o["side"]: o for o in _orders(result, "stop_market")}
    assert stops["buy"]["status"] == "filled" and stops["buy"]["stop_price"] == pytest.approx(105.0)
    assert stops["sell"]["status"] == "open" and stops["sell"]["stop_price"] == pytest.approx(95.0)
    trades = {t["side"]: t for t in _trades(result)}
    assert trades["short"]["exit_reason"] == "stop" and trades["short"]["pnl"] == pytest.approx(-10 * 5.0)
    assert trades["long"]["exit_reason"] == "end_of_data"
