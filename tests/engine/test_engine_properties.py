"""Engine guarantees: determinism, isolation of runs, no lookahead, gating equivalence."""
from __future__ import annotations

import json
import math

from backtest.runfolder import open_results
import numpy as np
import polars as pl
import pytest

from backtest import MarketData, RunConfig, Strategy, run_backtest
from backtest.errors import ConfigError, StrategyError
from backtest.results import OUTPUT_TABLES
from data_loaders.synthetic import engine_frames, generate_perpetual, resample_ohlcv

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


@pytest.fixture(scope="module")
def crash_markets():
    btc = generate_perpetual(symbol=BTC, days=6, crash_day=3, seed=11, s0=60_000.0)
    eth = generate_perpetual(symbol=ETH, days=6, crash_day=3, seed=11, s0=3_400.0,
                             correlated_with=btc)
    return btc, eth


@pytest.fixture(scope="module")
def crash_data(crash_markets):
    bars, funding = engine_frames(crash_markets[0])
    return MarketData.from_frames({BTC: bars}, {BTC: funding}, timeframe="1m")


class Bracket(Strategy):
    """Alternates long/short with a stop and a take-profit on every entry (resting orders)."""

    exposure = 3.0
    band = 0.004

    def on_start(self, ctx) -> None:  # noqa: ANN001
        self._side = 1.0
        self._armed = False
        self._entering = False

    def on_bar(self, ctx) -> None:  # noqa: ANN001
        pos = ctx.position()
        if pos.qty == 0.0:
            if not self._entering:
                ctx.cancel_all()  # the other leg of the bracket (no OCO)
                ctx.target_exposure(self._side * self.exposure)
                self._side = -self._side
                self._entering = True
            return
        self._entering = False
        if not self._armed or not ctx.open_orders():
            qty = abs(pos.qty)
            price = pos.entry_price
            if pos.qty > 0:
                ctx.sell(qty, trigger=price * (1 - self.band), reduce_only=True)
                ctx.sell(qty, trigger=price * (1 + self.band), reduce_only=True)
            else:
                ctx.buy(qty, trigger=price * (1 + self.band), reduce_only=True)
                ctx.buy(qty, price=price * (1 - self.band), reduce_only=True)
            self._armed = True


def _frames(result) -> dict[str, pl.DataFrame]:  # noqa: ANN001
    return {name: result.frame(name) for name in OUTPUT_TABLES}


def _assert_same(a, b) -> None:  # noqa: ANN001
    fa, fb = _frames(a), _frames(b)
    for name in OUTPUT_TABLES:
        assert fa[name].equals(fb[name]), name
    assert a.summary == b.summary


CASES = [
    ("hold", {"side": "long", "reenter": True}, dict(leverage=20.0)),
    ("hold", {"side": "short"}, dict(leverage=25.0, margin_mode="cross")),
    ("dca", {}, dict(leverage=20.0)),
    ("sma_cross", {"fast": 20, "slow": 60}, dict(leverage=10.0, slippage="sqrt")),
    (Bracket, {}, dict(leverage=10.0, path_policy="adaptive")),
    ("hold", {"reenter": True, "exposure": 8.0}, dict(leverage=20.0, liquidation_mode="tier_down")),
]


@pytest.mark.parametrize("strategy, params, overrides", CASES)
def test_gating_gives_exactly_the_same_outputs_as_expanding_every_bar(crash_data, strategy,
                                                                       params, overrides):
    gated = run_backtest(crash_data, strategy, params=params, config=RunConfig(**overrides))
    full = run_backtest(crash_data, strategy, params=params,
                        config=RunConfig(**overrides, gating=False))
    _assert_same(gated, full)


def test_gating_equivalence_covers_liquidations_and_resting_orders(crash_data):
    hold = run_backtest(crash_data, "hold", params={"reenter": True}, config=RunConfig(leverage=20.0))
    assert hold.summary["n_liquidations"] >= 1
    tiered = run_backtest(crash_data, "hold", params={"reenter": True, "exposure": 8.0},
                          config=RunConfig(leverage=20.0, liquidation_mode="tier_down"))
    assert (tiered.orders["tag"] == "tier_down").any()
    bracket = run_backtest(crash_data, Bracket, config=RunConfig(leverage=10.0))
    assert {"stop_market", "take_profit", "limit"} <= set(bracket.orders["type"])
    assert bracket.fills.filter(pl.col("reason") == "reduce").height > 5


def test_gating_equivalence_multi_symbol_cross_and_detail_bars(crash_markets):
    btc, eth = crash_markets
    (b_bars, b_f), (e_bars, e_f) = engine_frames(btc), engine_frames(eth)
    data = MarketData.from_frames({BTC: b_bars, ETH: e_bars}, {BTC: b_f, ETH: e_f}, timeframe="1m")

    class Pair(Strategy):
        def on_bar(self, ctx) -> None:  # noqa: ANN001
            ctx.target_exposure(6.0, BTC)
            ctx.target_exposure(6.0, ETH)

    cfg = RunConfig(leverage=20.0, margin_mode="cross")
    gated = run_backtest(data, Pair, config=cfg)
    assert gated.summary["n_liquidations"] >= 2
    _assert_same(gated, run_backtest(data, Pair, config=cfg.replace(gating=False)))

    hourly = {}
    for name, market in ((BTC, btc),):
        last = resample_ohlcv(market.last, "1h")
        mark = resample_ohlcv(market.mark, "1h")
        hourly[name] = last.select("ts", "open", "high", "low", "close", "volume").join(
            mark.select("ts", *[pl.col(c).alias(f"mark_{c}") for c in ("open", "high", "low", "close")]),
            on="ts")
    detail = MarketData.from_frames(hourly, {BTC: b_f}, timeframe="1h", detail_bars={BTC: b_bars},
                                    detail_timeframe="1m")
    cfg = RunConfig(leverage=20.0)
    gated = run_backtest(detail, "hold", params={"reenter": True}, config=cfg)
    assert gated.summary["n_liquidations"] >= 1
    _assert_same(gated, run_backtest(detail, "hold", params={"reenter": True},
                                     config=cfg.replace(gating=False)))


def test_same_inputs_identical_outputs_and_runs_do_not_interfere(crash_data):
    cfg = RunConfig(leverage=20.0)
    first = run_backtest(crash_data, "dca", config=cfg)
    other = run_backtest(crash_data, "sma_cross", params={"fast": 10, "slow": 30},
                         config=RunConfig(leverage=5.0, margin_mode="cross"))
    again = run_backtest(crash_data, "dca", config=cfg)
    _assert_same(first, again)
    assert other.summary != first.summary
    # interleaved strategy instances keep their own state
    a, b = Bracket(), Bracket(band=0.01)
    ra = run_backtest(crash_data, a, config=RunConfig())
    rb = run_backtest(crash_data, b, config=RunConfig())
    _assert_same(ra, run_backtest(crash_data, Bracket(), config=RunConfig()))
    assert rb.summary != ra.summary


def test_a_strategy_cannot_see_the_future(crash_data):
    class Peek(Strategy):
        def features(self, bars):  # noqa: ANN001
            return bars.with_columns(row=pl.int_range(pl.len()))

        def on_start(self, ctx) -> None:  # noqa: ANN001
            self.checked = 0

        def on_bar(self, ctx) -> None:  # noqa: ANN001
            i = ctx.bar_index
            assert ctx.feature("row") == i
            before = ctx.feature("row", ago=1)
            assert before == i - 1 if i else math.isnan(before)
            if i % 997 == 0:
                seen = ctx.bars()
                assert seen.height == i + 1
                assert seen["row"].max() == i
                assert int(seen["ts"][-1].timestamp() * 1000) == ctx.ts
                assert ctx.time == ctx.ts + 60_000
                with pytest.raises(StrategyError, match="future"):
                    ctx.feature("row", ago=-1)
                self.checked += 1

    strategy = Peek()
    run_backtest(crash_data, strategy, config=RunConfig())
    assert strategy.checked > 5


def test_orders_fill_no_earlier_than_the_next_tick(crash_data):
    class Once(Strategy):
        def on_bar(self, ctx) -> None:  # noqa: ANN001
            if ctx.bar_index == 10:
                ctx.buy(0.01)

    result = run_backtest(crash_data, Once, config=RunConfig())
    fill = result.fills.row(0, named=True)
    open_11 = crash_data.bars[BTC].open[11]
    assert int(fill["ts"].timestamp() * 1000) == int(crash_data.ts[11])
    assert fill["reference_price"] == pytest.approx(open_11)


def test_config_and_strategy_errors_suggest_the_right_name(crash_data):
    with pytest.raises(ConfigError, match="did you mean 'leverage'"):
        RunConfig(levrage=5)
    with pytest.raises(ConfigError, match="path_policy.*worst_case"):
        RunConfig(path_policy="worstcase")
    with pytest.raises(StrategyError, match="did you mean 'fast'"):
        run_backtest(crash_data, "sma_cross", params={"fsat": 3})
    with pytest.raises(StrategyError, match="did you mean 'sma_cross'"):
        run_backtest(crash_data, "sma_cros")
    with pytest.raises(StrategyError, match="expects a whole number >= 1, found .abc."):
        run_backtest(crash_data, "sma_cross", params={"fast": "abc"})


def test_write_outputs_manifest_and_duckdb(crash_data, tmp_path):
    result = run_backtest(crash_data, "hold", params={"reenter": True}, config=RunConfig(leverage=20.0))
    out = result.write(tmp_path / "run")
    for name in OUTPUT_TABLES:
        frame = pl.read_parquet(out / f"{name}.parquet")
        assert frame.columns == result.frame(name).columns
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("config", "strategy", "venue", "data", "quality_warnings", "seed", "packages",
                "summary", "created_at"):
        assert key in manifest
    summary = manifest["summary"]
    attribution = summary["attribution"]
    assert sum(attribution.values()) == pytest.approx(summary["final_equity"] - summary["initial_balance"])
    con = open_results(out)  # views are relative to the run folder
    assert con.execute("select count(*) from liquidations").fetchone()[0] == summary["n_liquidations"]
    assert con.execute("select count(*) from equity").fetchone()[0] == summary["bars"]
    con.close()
    liq = result.liquidations
    assert liq.columns[:3] == ["ts", "trigger_ts", "symbol"] and liq.height >= 1


def test_gating_equivalence_with_trade_ticks(crash_markets):
    bars, funding = engine_frames(crash_markets[0])
    bars = bars.slice(2 * 1440, 2 * 1440)  # the two days around the crash
    ts = bars["ts"].dt.epoch("ms")
    # four trades per minute: open, both extremes (order alternating), close
    even = np.arange(bars.height) % 2 == 0
    high, low = bars["high"].to_numpy(), bars["low"].to_numpy()
    parts = [(1_000, bars["open"].to_numpy()), (15_000, np.where(even, high, low)),
             (35_000, np.where(even, low, high)), (55_000, bars["close"].to_numpy())]
    trades = pl.concat([pl.DataFrame({"ts": ts + offset, "price": price, "qty": 0.01, "side": "buy"})
                        for offset, price in parts]).sort("ts").with_columns(
        pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    data = MarketData.from_frames({BTC: bars}, {BTC: funding}, timeframe="1m", trades={BTC: trades})
    outcomes = []
    for strategy, params, cfg in (("hold", {"reenter": True}, RunConfig(leverage=25.0)),
                                  (Bracket, {}, RunConfig(leverage=10.0))):
        gated = run_backtest(data, strategy, params=params, config=cfg)
        _assert_same(gated, run_backtest(data, strategy, params=params,
                                         config=cfg.replace(gating=False)))
        outcomes.append(gated)
    assert outcomes[0].summary["n_liquidations"] >= 1
    assert outcomes[1].fills.filter(pl.col("reason") == "reduce").height > 5


def test_square_root_impact_formula_by_hand():
    from backtest.slippage import SqrtImpact

    model = SqrtImpact(k=1.0, forced_factor=2.0)
    sigma = math.log(101.0 / 99.0) / (2 * math.sqrt(math.log(2)))
    orderly = model.impact(qty=4.0, price=100.0, bar_high=101.0, bar_low=99.0, bar_volume=100.0,
                           forced=False)
    assert orderly == pytest.approx(sigma * math.sqrt(4.0 / 100.0))
    assert model.impact(qty=4.0, price=100.0, bar_high=101.0, bar_low=99.0, bar_volume=100.0,
                        forced=True) == pytest.approx(2 * orderly)
    # no volume: participation counts as 1; a flat bar still costs min_sigma
    assert model.impact(qty=1.0, price=100.0, bar_high=100.0, bar_low=100.0,
                        bar_volume=float("nan"), forced=False) == pytest.approx(1e-4)


def test_forced_orders_in_the_crash_cost_more_than_orderly_fills(crash_data, crash_markets):
    from backtest.slippage import SqrtImpact

    result = run_backtest(crash_data, "hold", params={"reenter": True, "exposure": 3.0},
                          config=RunConfig(leverage=20.0, slippage="sqrt"))
    fills = result.fills
    crash_start = crash_markets[0].crash_start_ms
    day = 86_400_000
    in_crash = (pl.col("ts").dt.epoch("ms") >= crash_start - 6 * 3_600_000) & (
        pl.col("ts").dt.epoch("ms") < crash_start + day)
    forced = fills.filter((pl.col("reason") == "liquidation") & in_crash)
    calm_orderly = fills.filter((pl.col("reason") == "strategy") & ~in_crash)
    assert forced.height >= 1 and calm_orderly.height >= 1
    assert forced["slippage_bps"].mean() > calm_orderly["slippage_bps"].mean()
    # and each forced fill pays forced_factor x what an orderly exit of the same size would
    # have paid in the same bar (before tick rounding)
    model = SqrtImpact()
    bars = crash_data.bars[BTC]
    t0 = int(crash_data.ts[0])
    for fill in forced.iter_rows(named=True):
        j = (int(fill["ts"].timestamp() * 1000) - t0) // 60_000
        orderly = model.impact(qty=fill["qty"], price=fill["reference_price"],
                               bar_high=float(bars.high[j]), bar_low=float(bars.low[j]),
                               bar_volume=float(bars.volume[j]), forced=False)
        assert fill["slippage_bps"] == pytest.approx(2 * orderly * 1e4, abs=0.1 / fill["price"] * 1e4)
    assert result.summary["slippage_cost"] == pytest.approx(fills["slippage_cost"].sum())
