"""Input validation (clear errors) and the built-in strategies' behaviour."""
from __future__ import annotations

import polars as pl
import pytest

from backtest import MarketData, RunConfig, Strategy, run_backtest
from backtest.errors import ConfigError, MarketDataError, StrategyError
from backtest.strategy import BUILTIN_STRATEGIES, load_strategy
from tests.engine.scenario import HOUR, SYMBOL, T0, Script, candles, config, market

FLAT = (100.0, 100.0, 100.0, 100.0)


def test_unsorted_and_duplicate_timestamps_are_named():
    frame = candles([FLAT, FLAT, FLAT])
    swapped = frame.with_columns(pl.Series("ts", frame["ts"].to_list()[::-1]))
    with pytest.raises(MarketDataError, match="unsorted at row 1"):
        MarketData.from_frames({SYMBOL: swapped}, timeframe="1m")
    dup = frame.with_columns(pl.Series("ts", [frame["ts"][0]] * 3))
    with pytest.raises(MarketDataError, match="duplicate"):
        MarketData.from_frames({SYMBOL: dup}, timeframe="1m")


@pytest.mark.parametrize(("value", "found"), [(None, "1 nulls"), (0.0, "slippage_scale 0.0"),
                                                (-2.0, "slippage_scale -2.0"),
                                                (float("inf"), "slippage_scale inf")])
def test_a_bad_slippage_scale_is_named_with_its_row(value, found):
    frame = candles([FLAT, FLAT, FLAT]).with_columns(
        pl.Series("slippage_scale", [1.0, value, 1.0], dtype=pl.Float64))
    with pytest.raises(MarketDataError, match=found) as err:
        MarketData.from_frames({SYMBOL: frame}, timeframe="1m")
    assert "slippage_scale" in str(err.value) and ("row 1" in str(err.value) or value is None)


def test_market_columns_are_read_only_so_shared_caches_stay_true():
    funding = pl.DataFrame({"ts": [T0], "rate": [1e-4]}).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    data = MarketData.from_frames({SYMBOL: candles([FLAT, FLAT])}, {SYMBOL: funding}, timeframe="1m")
    with pytest.raises(ValueError, match="read-only"):
        data.bars[SYMBOL].mark_low[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        data.funding[SYMBOL].rate[0] = 1.0


def test_missing_columns_and_bad_timeframe_are_named():
    with pytest.raises(MarketDataError, match="missing columns \\['close'\\]"):
        MarketData.from_frames({SYMBOL: candles([FLAT]).drop("close")}, timeframe="1m")
    with pytest.raises(MarketDataError, match="timeframe"):
        MarketData.from_frames({SYMBOL: candles([FLAT])}, timeframe="1 minute")
    with pytest.raises(MarketDataError, match="not multiples of the 1h"):
        MarketData.from_frames({SYMBOL: candles([FLAT, FLAT])}, timeframe="1h")
    with pytest.raises(MarketDataError, match="expected a polars DataFrame"):
        MarketData.from_frames({SYMBOL: candles([FLAT])}, timeframe="1m", trades={SYMBOL: None})


def test_missing_mark_and_funding_become_quality_warnings_in_the_manifest():
    frame = candles([FLAT, FLAT]).select("ts", "open", "high", "low", "close", "volume")
    data = MarketData.from_frames({SYMBOL: frame}, timeframe="1m")
    result = run_backtest(data, "hold", config=config())
    warnings = result.manifest["quality_warnings"]
    assert any("no mark-price columns" in w for w in warnings)
    assert any("no funding data" in w for w in warnings)


def test_unknown_symbol_without_tiers_points_to_the_import():
    with pytest.raises(Exception, match="DOGE/USDT:USDT"):
        MarketData.from_frames({"DOGE/USDT:USDT": candles([FLAT])}, timeframe="1m")


def test_run_config_from_mapping_and_replace():
    cfg = RunConfig.from_mapping({"leverage": 5, "margin_mode": "cross"}, where="run.toml [run]")
    assert cfg.leverage == 5 and cfg.replace(leverage=3).leverage == 3 and cfg.leverage == 5
    with pytest.raises(ConfigError, match="run.toml \\[run\\]: unknown key 'margn_mode'.*'margin_mode'"):
        RunConfig.from_mapping({"margn_mode": "cross"}, where="run.toml [run]")
    with pytest.raises(ConfigError, match="initial_balance: expected a finite number > 0, found -1"):
        RunConfig(initial_balance=-1)
    with pytest.raises(ConfigError, match="immutable"):
        cfg.leverage = 3
    assert RunConfig(leverage={"default": 5, SYMBOL: 7}).for_symbol("leverage", SYMBOL) == 7


def test_registry_by_name_and_module_path():
    for name, target in BUILTIN_STRATEGIES.items():
        assert type(load_strategy(name)).__name__ == target.split(":")[1]
    strategy = load_strategy("tests.engine.scenario:Script")
    assert isinstance(strategy, Script)
    with pytest.raises(StrategyError, match="has no 'Scrpt'.*did you mean 'Script'"):
        load_strategy("tests.engine.scenario:Scrpt")
    with pytest.raises(StrategyError, match="cannot import"):
        load_strategy("no_such_module_xyz:Thing")


def test_hold_short_from_the_first_bar():
    result = run_backtest(market([FLAT, FLAT, (100, 101, 99, 99)]), "hold",
                          params={"side": "short", "exposure": 2.0}, config=config())
    fill = result.fills.row(0, named=True)
    assert fill["side"] == "sell" and fill["qty"] == pytest.approx(200.0)
    assert result.summary["final_equity"] == pytest.approx(10_000 + 200 * 1.0)


def test_funding_carry_shorts_rich_funding_and_goes_flat_when_normal():
    rates = [0.0, 0.0005, 0.0005, 0.0001, 0.0001, -0.0004]
    funding = pl.DataFrame({"ts": [T0 + k * HOUR for k in range(6)], "rate": rates,
                            "interval_hours": [1.0] * 6, "mark_price": [100.0] * 6}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    data = market([FLAT] * 8, funding=funding, timeframe="1h")
    result = run_backtest(data, "funding_carry", config=config())
    sides = result.fills["side"].to_list()
    # the 01:00 rate (0.0005) is known at the bar-0 close (01:00): the short fills at 01:00,
    # after that instant's settlement; 0.0001 (03:00) -> flat at 03:00; -0.0004 (05:00) -> long
    assert sides == ["sell", "buy", "buy"]
    assert [int(t.timestamp() * 1000) for t in result.fills["ts"]] == [T0 + h * HOUR for h in (1, 3, 5)]
    payments = result.funding["payment"].to_list()
    # the short (qty 100) held through the 02:00 (0.0005) and 03:00 (0.0001) settlements
    assert payments == pytest.approx([100 * 100 * 0.0005, 100 * 100 * 0.0001])


def test_dca_adds_into_a_loser_until_liquidated():
    falling = [FLAT, FLAT] + [(p, p, p - 0.5, p - 0.5) for p in range(100, 60, -1)]
    result = run_backtest(market(falling), "dca",
                          params={"step": 0.03, "max_adds": 5, "add_exposure": 1.0},
                          config=config(leverage=10.0))
    adds = result.orders.filter(pl.col("tag").str.starts_with("dca-add"))
    assert adds.height >= 2
    assert result.summary["n_liquidations"] >= 1


def test_strategy_hooks_are_called():
    class Hooked(Strategy):
        def on_start(self, ctx) -> None:  # noqa: ANN001
            self.events = []

        def on_bar(self, ctx) -> None:  # noqa: ANN001
            if ctx.bar_index == 0:
                ctx.target_exposure(1.0)

        def on_fill(self, ctx, fill) -> None:  # noqa: ANN001
            self.events.append(("fill", fill.side, fill.qty))

        def on_liquidation(self, ctx, event) -> None:  # noqa: ANN001
            self.events.append(("liquidation", event.side, event.qty))

    strategy = Hooked()
    run_backtest(market([FLAT, FLAT, (85, 86, 84, 85)]), strategy, config=config())
    assert strategy.events == [("fill", "buy", 100.0), ("liquidation", "long", 100.0)]


def test_progress_bar_path_gives_the_same_result():
    data = market([FLAT, FLAT, (100, 101, 95, 96), FLAT, FLAT])
    quiet = run_backtest(data, "hold", config=config())
    shown = run_backtest(data, "hold", config=config(progress=True, progress_every=2))
    assert quiet.equity.equals(shown.equity)
