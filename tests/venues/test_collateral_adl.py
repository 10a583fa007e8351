"""Collateral haircuts, auto-exchange, the insurance fund's series and Binance's ADL ranking:
each rule against its worked example (vectors.json, margin_rules.md §11, cascades.md §C.1)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from backtest.insurance_fund import InsuranceFund
from backtest.ledger import Ledger
from backtest.venues.base import get_venue
from backtest.venues.binance_usdm import adl_quantiles, adl_score
from backtest.venues.collateral import (BINANCE_MULTI_ASSETS, BYBIT_UTA, CollateralTier,
                                        tiered_collateral_value)
from backtest.venues.errors import VenueError, VersionError

T2024 = 1_704_067_200_000


def _vector(shared_dir: Path, vector_id: str) -> dict:
    vectors = json.loads((shared_dir / "specs" / "vectors.json").read_text("utf-8"))
    return next(v for v in vectors if v["id"] == vector_id)


@pytest.mark.parametrize(("vector_id", "asset"), [("binance-multiasset-ada-haircut", "ADA"),
                                                  ("binance-multiasset-bnb-haircut", "BNB")])
def test_multi_assets_table_values_the_faq_examples(shared_dir: Path, vector_id: str, asset: str) -> None:
    v = _vector(shared_dir, vector_id)
    table = BINANCE_MULTI_ASSETS.at(T2024)
    # the table's own ratio for the asset is the vector's ratio, and $1,000 worth counts as stated
    assert table.rule(asset).tiers[0].ratio == v["inputs"]["collateral_value_ratio"]
    price = 0.37
    value = table.value(asset, v["inputs"]["market_value"] / price, price)
    assert value == pytest.approx(v["expected"], abs=max(v["abs_tol"], 1e-9))


#: The venue's auto-exchange rule, as the run state hands it to the ledger (Venue protocol).
_AUTO_EXCHANGE = get_venue("binance_usdm").auto_exchange_amount


def test_auto_exchange_sells_deficit_over_rate_of_collateral(shared_dir: Path) -> None:
    v = _vector(shared_dir, "binance-multiasset-auto-exchange")
    ledger = Ledger({"BTC": 2.0}, BINANCE_MULTI_ASSETS, {"BTC": 0}, _AUTO_EXCHANGE)
    ledger.reprice(T2024, [40_000.0])
    assert BINANCE_MULTI_ASSETS.at(T2024).rule("BTC").exchange_rate == v["inputs"]["rate"]
    raised = ledger.auto_exchange(v["inputs"]["deficit"], T2024, 0)
    (_, asset, sold, price, credit), = ledger.exchanges
    assert asset == "BTC" and raised == credit == pytest.approx(v["inputs"]["deficit"])
    assert sold * price == pytest.approx(v["expected"], abs=v["abs_tol"])  # 20,513 worth of BTC
    assert ledger.qty == [pytest.approx(2.0 - v["expected"] / 40_000.0, abs=1e-5)]
    # the value left is the remaining BTC at its 95 % haircut
    assert ledger.value == pytest.approx(ledger.qty[0] * 40_000.0 * 0.95)


def test_auto_exchange_with_too_little_collateral_sells_it_all() -> None:
    ledger = Ledger({"BTC": 0.1, "ETH": 1.0}, BINANCE_MULTI_ASSETS, {"BTC": 0, "ETH": 1},
                    _AUTO_EXCHANGE)
    ledger.reprice(T2024, [40_000.0, 2_000.0])
    raised = ledger.auto_exchange(10_000.0, T2024, 3)
    assert raised == pytest.approx(0.1 * 40_000 * 0.975 + 1.0 * 2_000 * 0.975)
    assert ledger.qty == [0.0, 0.0] and not ledger.held and ledger.value == 0.0
    assert ledger.snaps[-1] == (3, (0.0, 0.0))


def test_bybit_bands_progressive_and_flat() -> None:
    tiers = BYBIT_UTA.at(T2024).rule("BTC").tiers
    assert tiered_collateral_value(15.0, 100.0, tiers) == pytest.approx(10 * 100 * 0.98 + 5 * 100 * 0.95)
    assert tiered_collateral_value(15.0, 100.0, tiers, progressive=False) == pytest.approx(15 * 100 * 0.95)
    assert tiered_collateral_value(-2.0, 100.0, tiers) == -200.0  # a liability counts in full
    with pytest.raises(VenueError, match="20-50|does not give"):
        tiered_collateral_value(25.0, 100.0, tiers, asset="BTC")
    flat = (CollateralTier(0.0, math.inf, 0.9),)
    assert tiered_collateral_value(10.0, 100.0, flat) == pytest.approx(900.0)


def test_tables_are_dated_and_refuse_dates_before_them() -> None:
    with pytest.raises(VersionError, match="binance_multi_assets: no table before 2021-06-01"):
        BINANCE_MULTI_ASSETS.at(1_584_000_000_000)  # 2020-03-12: no Multi-Assets Mode yet
    with pytest.raises(VenueError, match="'DOGE': not accepted"):
        BINANCE_MULTI_ASSETS.at(T2024).rule("DOGE")


def test_leverage_pnl_score_of_the_forum_example() -> None:
    # UPNL 40.2, WB 4.27 -> PnL% 9.41; margin ratio 13.42 % of the equity -> LeveragePnL 1.26
    equity = 4.27 + 40.2
    score = adl_score(unrealized_pnl=40.2, wallet_balance=4.27, maintenance_margin=0.1342 * equity)
    assert 40.2 / 4.27 == pytest.approx(9.41, abs=0.005)
    assert score == pytest.approx(1.26, abs=0.005)
    assert adl_score(unrealized_pnl=-5.0, wallet_balance=10.0, maintenance_margin=1.0) == 0.0
    # wallet below 1 USDT counts as 1; no equity: ratio 0
    assert adl_score(unrealized_pnl=2.0, wallet_balance=0.5, maintenance_margin=0.25) == pytest.approx(2.0 * 0.1)
    assert adl_score(unrealized_pnl=1.0, wallet_balance=-3.0, maintenance_margin=1.0) == 0.0


def test_quantiles_rank_over_count_highest_first_at_one() -> None:
    q = adl_quantiles([3.0, 6.0, 1.0, 4.0, 5.0, 2.0])
    assert q == pytest.approx([3 / 6, 1.0, 1 / 6, 4 / 6, 5 / 6, 2 / 6])
    assert [math.ceil(5 * x) for x in q] == [3, 5, 1, 4, 5, 2]  # the app's five lights
    assert adl_quantiles([1.0, 1.0, 0.0]) == pytest.approx([1.0, 1.0, 1 / 3])
    assert adl_quantiles([7.0]) == [1.0]  # a lone position heads the queue


def test_fund_series_bounded_floor_and_drawdown() -> None:
    fund = InsuranceFund(100.0, 0)
    fund.set_own(30.0, "liquidation", 10)        # a takeover better than bankruptcy: +30
    fund.set_own(-50.0, "liquidation", 20)       # a fill worse than bankruptcy: pays 80
    assert fund.balance == pytest.approx(50.0) and fund.own == -50.0
    short = fund.book(-70.0, "counterparty_liquidation", 30)
    assert short == pytest.approx(20.0) and fund.balance == 0.0
    assert fund.take_pending() == pytest.approx(20.0) and fund.take_pending() == 0.0
    frame = fund.frame()
    assert frame.get_column("cause").to_list() == ["start", "liquidation", "liquidation",
                                                   "counterparty_liquidation"]
    balances = frame.get_column("balance").to_list()
    assert balances == pytest.approx([100.0, 130.0, 50.0, 0.0])
    assert balances[-1] == pytest.approx(100.0 + sum(frame.get_column("change").to_list()))
    s = fund.summary()
    assert s["insurance_fund_max_drawdown"] == pytest.approx(130.0)
    assert s["insurance_fund_max_drawdown_pct"] == pytest.approx(1.0)
    assert s["insurance_fund_uncovered"] == pytest.approx(20.0)


def test_unbounded_fund_goes_negative_and_never_leaves_anything_uncovered() -> None:
    fund = InsuranceFund(None, 0)
    assert fund.book(-1e9, "counterparty_liquidation", 5) == 0.0
    assert fund.balance == -1e9 and fund.summary()["insurance_fund_start"] is None
