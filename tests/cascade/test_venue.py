"""The vectorized venue rules equal the scalar venue functions they mirror."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.cascade.errors import CascadeError
from backtest.cascade.venue import (TierArrays, bankruptcy_prices, isolated_liquidation_prices,
                                    maintenance_margins, venue_rules)
from backtest.venues import binance_usdm
from backtest.venues.defaults import default_tier_schedule

TABLE = default_tier_schedule("binanceusdm", "BTC/USDT:USDT").at(1_760_000_000_000)
TIERS = TierArrays.from_table(TABLE)


@settings(max_examples=300, deadline=None)
@given(st.floats(0.0, 2e9))
def test_maintenance_equals_binance_scalar(notional):
    expected = binance_usdm.maintenance_margin(notional, TABLE.for_notional(notional))
    assert maintenance_margins(np.array([notional]), TIERS)[0] == expected


def test_maintenance_on_each_floor_uses_the_upper_bracket():
    floors = np.array([t.floor for t in TABLE.tiers])
    expected = [binance_usdm.maintenance_margin(f, TABLE.for_notional(f)) for f in floors]
    assert maintenance_margins(floors, TIERS).tolist() == expected


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, -1]), st.floats(0.001, 500.0), st.floats(1_000.0, 200_000.0), st.floats(1.0, 125.0))
def test_bankruptcy_and_liquidation_prices_equal_binance_scalars(side, qty, entry, leverage):
    margin = qty * entry / leverage
    bp = binance_usdm.bankruptcy_price(wallet_balance=margin, side=side, qty=qty, entry_price=entry)
    got_bp = bankruptcy_prices(np.array([float(side)]), np.array([qty]), np.array([entry]), np.array([margin]))[0]
    assert got_bp == pytest.approx(bp, rel=1e-12)
    lp = binance_usdm.liquidation_price_resolved(
        wallet_balance=margin, tiers=TABLE, both=binance_usdm.Leg(side, qty, entry, 0.0, 0.0))
    got = isolated_liquidation_prices(np.array([float(side)]), np.array([qty]), np.array([entry]),
                                      np.array([margin]), TIERS)[0]
    assert got == pytest.approx(lp, rel=1e-9, abs=1e-9)


def test_unknown_venue_rule_set_names_the_choices():
    with pytest.raises(CascadeError, match="did you mean 'bybit'"):
        venue_rules("bybitt")


def test_hyperliquid_rule_set_uses_its_own_margin_table():
    tiers = venue_rules("hyperliquid").tiers("BTC/USDT:USDT", 1_760_000_000_000)
    from backtest.venues.hyperliquid import margin_table

    assert tiers.mmr.tolist() == [t.mmr for t in margin_table("BTC", 1_760_000_000_000).tiers]
