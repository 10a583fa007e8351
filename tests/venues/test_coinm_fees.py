"""Binance COIN-M fees and clearance fee: dated, sourced data (backtest/venues/data/binance_coinm.toml).

The commission is charged on the coin notional (contracts x contract size / price; Binance FAQ
360033544231), at the regular rates the FAQ quotes for COIN-M (maker 0.015 %, taker 0.040 %)
until the fee change Binance announced for 2023-09-26 04:00 UTC, then ccxt's regular schedule
(0.010 % / 0.050 %). No source gives a COIN-M clearance rate: it stays an ASSUMPTION.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from backtest.contracts import InverseContract
from backtest.venues.base import get_venue
from backtest.venues.defaults import clearance_fee_schedule, default_fees

CHANGE = int(datetime(2023, 9, 26, 4, tzinfo=timezone.utc).timestamp() * 1000)


def test_fee_versions_are_dated_and_cited():
    before = default_fees("binance_coinm", CHANGE - 1)
    after = default_fees("binance_coinm", CHANGE)
    assert (before.maker, before.taker) == (0.00015, 0.0004)
    assert (after.maker, after.taker) == (0.0001, 0.0005)
    assert "360033544231" in before.source and "2023-09-18" in after.source
    assert not before.effective_from_known and not after.effective_from_known


def test_the_commission_is_the_rate_on_the_coin_notional():
    # the FAQ's form: 10 BTCUSD contracts (100 USD each) at 25,000 -> 0.04 BTC notional
    fee = default_fees("binance_coinm", CHANGE - 1).taker * InverseContract("BTC", 100.0).notional(10, 25_000.0)
    assert fee == pytest.approx(0.0004 * 0.04, rel=1e-12)


def test_the_clearance_fee_is_still_an_assumption_and_says_so():
    (version,) = clearance_fee_schedule("binance_coinm", "BTC/USD:BTC").versions
    assert version.rate == 0.005 and version.source.startswith("ASSUMPTION")
    assert "nothing primary found" in version.note
    assert get_venue("binance_coinm").clearance_fee_rate("BTC/USD:BTC", CHANGE) == 0.005
    assert "ASSUMPTION" in get_venue("binance_coinm").rule_versions["clearance_fee"]
