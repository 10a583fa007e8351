"""The ledger in runs: collateral in equity and margin, auto-exchange, the fund's series, ADL."""
from __future__ import annotations

import numpy as np
import pytest

from backtest import RunConfig, Strategy, run_backtest, run_signals
from backtest.errors import ConfigError
from backtest.risk.scenarios import parse_scenario
from tests.engine.scenario import MINUTE, SYMBOL, T0, config, market


class BuyOnce(Strategy):
    qty = 0.1

    def on_bar(self, ctx) -> None:  # noqa: ANN001
        if ctx.bar_index == 0:
            ctx.buy(self.qty)


RISE = [(20_000 + 100 * k,) * 4 for k in range(10)]  # a long gains every bar


def test_default_run_has_a_fund_series_and_an_empty_adl_table() -> None:
    result = run_backtest(market(RISE), BuyOnce, config=config())
    assert result.adl.height == 0
    fund = result.insurance_fund
    assert fund.get_column("cause").to_list() == ["start"]
    assert "collateral_value" not in result.equity.columns
    assert result.summary["n_adl"] == 0 and result.summary["insurance_fund_start"] is None


def test_injected_adl_closes_the_profitable_long_at_the_mark_without_fee() -> None:
    at = T0 + 5 * MINUTE
    cfg = config(adl_events=[{"ts": at}])
    result = run_backtest(market(RISE), BuyOnce, config=cfg)
    (row,) = result.adl.iter_rows(named=True)
    entry = 20_100.0  # bought at bar 1's open
    assert row["side"] == "long" and row["qty"] == pytest.approx(0.1) and row["cause"] == "injected"
    assert row["price"] == 20_500.0 and row["quantile"] == 1.0 and row["score"] > 0
    assert row["realized_pnl"] == pytest.approx(0.1 * (20_500.0 - entry))
    fill = result.fills.filter(result.fills["liquidity"] == "adl").row(0, named=True)
    assert fill["fee"] == 0.0 and fill["position_qty_after"] == 0.0
    assert result.trades.get_column("exit_reason").to_list() == ["adl"]
    # the wallet holds the realised PnL; flat afterwards
    assert result.equity.get_column("wallet_balance")[-1] == pytest.approx(10_000 + row["realized_pnl"])
    assert result.summary["n_adl"] == 1
    # the array path gives the same tables
    signals = np.full(len(RISE), np.nan)
    signals[0] = 0.1 * 20_100 / 10_000
    array = run_signals(market(RISE), signals, config=cfg.replace(sizing_basis="wallet"))
    assert array.adl.height == 1 and array.adl.row(0)[1:3] == result.adl.row(0)[1:3]


def test_a_losing_position_is_never_deleveraged() -> None:
    fall = [(20_000 - 100 * k,) * 4 for k in range(10)]
    result = run_backtest(market(fall), BuyOnce, config=config(adl_events=[{"ts": T0 + 5 * MINUTE}]))
    assert result.adl.height == 0


def test_the_fund_pays_first_and_only_the_uncovered_share_is_deleveraged() -> None:
    cfg = config(insurance_fund=1e6, adl_events=[{"ts": T0 + 5 * MINUTE, "deficit": 1.5e6}])
    result = run_backtest(market(RISE), BuyOnce, config=cfg)
    (row,) = result.adl.iter_rows(named=True)
    assert row["qty"] == pytest.approx(0.1 / 3)
    fund = result.insurance_fund
    assert fund.get_column("balance").to_list() == [1e6, 0.0]
    assert result.summary["insurance_fund_uncovered"] == pytest.approx(0.5e6)
    assert result.summary["insurance_fund_max_drawdown"] == pytest.approx(1e6)
    # a deficit the fund covers deleverages nothing
    covered = run_backtest(market(RISE), BuyOnce, config=cfg.replace(insurance_fund=2e6))
    assert covered.adl.height == 0 and covered.insurance_fund.get_column("balance")[-1] == 0.5e6


def test_collateral_counts_in_equity_margin_and_liquidation_price() -> None:
    flat = [(20_000.0,) * 4] * 3 + [(19_000.0,) * 4] * 3
    base = config(margin_mode="cross", initial_balance=1_000.0, leverage=20.0)
    plain = run_backtest(market(flat), BuyOnce, config=base)
    cfg = base.replace(collateral={"BTC": 0.5, "USDT": 1_000.0})
    backed = run_backtest(market(flat), BuyOnce, config=cfg)
    eq = backed.equity
    mark = eq.get_column("mark_price").to_numpy()
    assert eq.get_column("collateral_value").to_numpy() == pytest.approx(0.5 * mark * 0.95)
    assert (eq["equity"] - eq["wallet_balance"] - eq["unrealized_pnl"] - eq["collateral_value"]).abs().max() < 1e-9
    # the collateral backs the position: a lower liquidation price and a lower margin ratio
    lp_plain = plain.positions.get_column("liquidation_price")[0]
    lp_backed = backed.positions.get_column("liquidation_price")[0]
    assert lp_backed < lp_plain
    ratio = eq.get_column("margin_ratio").to_numpy()
    assert ratio[-1] == pytest.approx(eq["maintenance_margin"][-1] / eq["equity"][-1])
    assert backed.summary["initial_balance"] == pytest.approx(1_000 + 0.5 * 20_000 * 0.95)
    assert backed.summary["collateral_value_start"] == pytest.approx(0.5 * 20_000 * 0.95)


def test_a_liquidated_cross_pool_auto_exchanges_the_collateral() -> None:
    crash = [(20_000.0,) * 4] * 2 + [(20_000.0, 20_000.0, 11_000.0, 11_000.0)] + [(11_000.0,) * 4] * 2
    cfg = config(margin_mode="cross", initial_balance=1_000.0, leverage=20.0,
                 collateral={"BTC": 0.05, "USDT": 1_000.0})

    class Big(BuyOnce):
        qty = 1.0

    result = run_backtest(market(crash), Big, config=cfg)
    assert result.summary["n_liquidations"] >= 1
    assert result.summary["n_auto_exchanges"] >= 1
    assert result.equity.get_column("wallet_balance")[-1] >= 0.0
    # the pool is lost: wallet and collateral both gone (up to the conversion leftover)
    assert result.summary["final_equity"] < 0.05 * 11_000


def test_config_validation_of_the_ledger_keys() -> None:
    with pytest.raises(ConfigError, match="Multi-Assets Mode is cross only"):
        RunConfig(collateral={"BTC": 0.5})
    with pytest.raises(ConfigError, match="equal to initial_balance"):
        RunConfig(collateral={"USDT": 5.0}, margin_mode="cross")
    with pytest.raises(ConfigError, match="insurance_fund"):
        RunConfig(insurance_fund=-1.0)
    with pytest.raises(ConfigError, match=r"adl_events: expected event 0.s keys among .*found .defict."):
        RunConfig(adl_events=[{"ts": "2024-01-01T00:00Z", "defict": 5}])
    with pytest.raises(ConfigError, match="collateral_table"):
        RunConfig(collateral_table="bybit")
    cfg = RunConfig.from_mapping({"collateral": {"BTC": 0.5, "USDT": 1000}, "margin_mode": "cross"})
    assert cfg.initial_balance == 1000.0
    with pytest.raises(ConfigError, match="'ETH' has no price series"):
        run_backtest(market(RISE), BuyOnce, config=config(margin_mode="cross", collateral={"ETH": 1.0}))


def test_stress_term_injects_the_event_into_the_config() -> None:
    from backtest.risk.scenarios import StressMarket

    scenario = parse_scenario("adl:2e6@2024-01-01T00:05Z")
    stressed = scenario.apply(StressMarket(bars={}))
    cfg = stressed.config(RunConfig())
    (event,) = cfg.adl_events
    assert event.ts == T0 + 5 * MINUTE and event.deficit == 2e6


def test_report_lists_the_adl_events_and_the_fund(tmp_path) -> None:  # noqa: ANN001
    from reports.rundir import load_run
    from reports.sections import run_sections

    cfg = config(insurance_fund=1e6, adl_events=[{"ts": T0 + 5 * MINUTE, "deficit": 1.5e6}])
    out = run_backtest(market(RISE), BuyOnce, config=cfg).write(tmp_path / "run")
    sections = {s.id: s for s in run_sections(load_run(out))}
    assert "Auto-deleveraging (1)" == sections["adl"].title
    assert "adl-table" in sections["adl"].body and "injected" in sections["adl"].body
    assert "insurance-fund-table" in sections["insurance-fund"].body
    plain = run_backtest(market(RISE), BuyOnce, config=config()).write(tmp_path / "plain")
    ids = {s.id for s in run_sections(load_run(plain))}
    assert "adl" not in ids and "insurance-fund" not in ids


def test_a_takeover_the_fund_cannot_pay_deleverages_the_opposite_leg() -> None:
    # hedge mode, isolated legs: the long is liquidated in a gap beyond its bankruptcy price
    # while the short gains; with an empty fund the loss goes to ADL against the short
    gap = [(20_000.0,) * 4] * 2 + [(15_000.0,) * 4] * 3

    class Both(Strategy):
        def on_bar(self, ctx) -> None:  # noqa: ANN001
            if ctx.bar_index == 0:
                ctx.buy(1.0, position_side="long")
                ctx.sell(0.5, position_side="short")

    cfg = config(position_mode="hedge", leverage=10.0, insurance_fund=0.0)
    result = run_backtest(market(gap), Both, config=cfg)
    liq = result.liquidations.row(0, named=True)
    assert liq["side"] == "long" and liq["bad_debt"] > 0
    (row,) = result.adl.iter_rows(named=True)
    assert row["side"] == "short" and row["cause"] == "fund_exhausted"
    assert row["price"] == pytest.approx(liq["bankruptcy_price"])  # the counterpart's bankruptcy price
    assert row["qty"] == pytest.approx(0.5)  # the whole loss is unpaid: the full short, capped by its size
    assert result.summary["insurance_fund_uncovered"] == pytest.approx(liq["bad_debt"])
    # unbounded fund (the default): the fund pays, nobody is deleveraged
    assert run_backtest(market(gap), Both, config=cfg.replace(insurance_fund=None)).adl.height == 0


def test_event_and_array_paths_agree_with_collateral_and_adl() -> None:
    from backtest.results import OUTPUT_TABLES

    crash = [(20_000.0 - 150 * k,) * 4 for k in range(6)] + [(18_900.0, 18_950.0, 17_000.0, 17_100.0)] \
        + [(17_100.0 + 50 * k,) * 4 for k in range(6)]
    cfg = config(margin_mode="cross", initial_balance=1_000.0, leverage=20.0, sizing_basis="wallet",
                 collateral={"BTC": 0.05, "USDT": 1_000.0}, insurance_fund=5e5,
                 adl_events=[{"ts": T0 + 10 * MINUTE, "deficit": 1e6}])

    class Short(Strategy):
        def on_bar(self, ctx) -> None:  # noqa: ANN001
            if ctx.bar_index == 0:
                ctx.target_exposure(-8.0)

    event = run_backtest(market(crash), Short, config=cfg)
    signals = np.full(len(crash), np.nan)
    signals[0] = -8.0
    array = run_signals(market(crash), signals, config=cfg)
    for name in OUTPUT_TABLES:
        assert event.frame(name).equals(array.frame(name)), name
    assert event.adl.height == 1 and event.adl["cause"][0] == "injected"
    assert event.adl["qty"][0] == pytest.approx(abs(event.fills["qty"][0]) / 2)  # half uncovered
