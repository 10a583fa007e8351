"""dYdX v4: a cross subaccount liquidated by hand from the protocol's formulas, and the rules."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtest.venues import dydx_v4 as dydx
from backtest.venues.errors import VenueError

LARGE_CAP = dydx.GENESIS_TIERS["large_cap"]


def _account(btc_oracle: float) -> dydx.Subaccount:
    # long 1 BTC, short 10 ETH at 3,000, USDC -14,000 (cross: one collateral pool)
    return dydx.Subaccount(-14_000.0, (dydx.Position(1.0, btc_oracle, LARGE_CAP.mmf),
                                       dydx.Position(-10.0, 3_000.0, LARGE_CAP.mmf)))


def test_cross_subaccount_liquidated_by_hand() -> None:
    """Large-cap tier (IMF 2 %, maintenance fraction 60 % -> MMF 1.2 %).

    By hand (margin_rules.md §7):
      BTC oracle 45,000: TNC = -14,000 + 45,000 - 30,000 = 1,000; MMR = 540 + 360 = 900: safe
      BTC oracle 44,800: TNC = 800; MMR = 537.6 + 360 = 897.6: TNC < MMR, liquidatable
      per-block limit: max(1,000, 10 % * 44,800) = 4,480 USDC -> 0.1 BTC this block
      bankruptcy quote of selling 0.1 BTC: -DNNV - TNC*|DMMR|/TMMR
        = 4,480 - 800 * 53.76 / 897.6 = 4,480 - 47.914438 (floored to 1e-6) = 4,432.085562
      closing the whole BTC leg: 44,800 - 800 * 537.6 / 897.6 = 44,800 - 479.144385 = 44,320.855615
      fillable price (BA 100 %, SMMR 150 %): ABR = 1 - 800/897.6 = 0.108734
        PS * price = 44,800 - ABR * 1.5 * 537.6 = 44,800 - 87.683422 -> 44,712.316578 per BTC
      selling 0.1 BTC at the fillable price: receives 4,471.231658, surplus over bankruptcy
        39.146096; max fee 1.5 % * 4,471.23 = 67.07 -> the insurance fund gets 39.146096
    """
    assert LARGE_CAP.mmf == pytest.approx(0.012)
    safe = dydx.risk(_account(45_000))
    assert (safe.tnc, safe.mmr) == (pytest.approx(1_000), pytest.approx(900))
    assert not dydx.is_liquidatable(_account(45_000))

    account = _account(44_800)
    assert dydx.risk(account).mmr == pytest.approx(897.6)
    assert dydx.is_liquidatable(account)

    notional = dydx.liquidatable_notional(position_notional=44_800)
    assert notional == pytest.approx(4_480)
    delta = -notional / 44_800
    assert delta == pytest.approx(-0.1)

    bankrupt = dydx.bankruptcy_quote(account, target=0, delta_size=-0.1)
    assert bankrupt == pytest.approx(4_432.085562, abs=1e-9)
    full = dydx.bankruptcy_quote(account, target=0, delta_size=-1.0)
    assert full == pytest.approx(44_320.855615, abs=1e-9)

    fillable = dydx.fillable_price(account, target=0)
    assert fillable == pytest.approx(44_800 - (97.6 / 897.6) * 1.5 * 537.6, rel=1e-15)
    assert fillable == pytest.approx(44_712.316578, abs=1e-6)
    assert full / 1.0 < fillable < 44_800  # between bankruptcy and oracle

    received = 0.1 * fillable
    to_fund = dydx.insurance_fund_delta(quote_received=received, bankruptcy=bankrupt,
                                        fill_notional=received)
    assert to_fund == pytest.approx(received - bankrupt, abs=1e-9)
    assert to_fund == pytest.approx(39.146096, abs=1e-6)
    # a fill below bankruptcy is covered by the fund (negative delta)
    assert dydx.insurance_fund_delta(quote_received=4_400, bankruptcy=bankrupt,
                                     fill_notional=4_400) == pytest.approx(4_400 - bankrupt)
    # the fee is capped at 1.5 % of the fill
    assert dydx.insurance_fund_delta(quote_received=4_480, bankruptcy=4_000,
                                     fill_notional=4_480) == pytest.approx(67.2)


def test_isolated_subaccount_stands_alone() -> None:
    btc = dydx.Position(1.0, 44_800, LARGE_CAP.mmf)
    # the same BTC long with only 100 USDC of its own margin
    isolated = dydx.Subaccount(-44_700.0, (btc,), isolated=True)
    assert dydx.is_liquidatable(isolated)  # TNC 100 < MMR 537.6
    # in a cross subaccount a profitable ETH short (entered higher: more USDC) backs it
    cross = dydx.Subaccount(-44_700.0 + 33_000.0, (btc, dydx.Position(-10.0, 3_000.0, LARGE_CAP.mmf)))
    assert not dydx.is_liquidatable(cross)
    with pytest.raises(VenueError, match="isolated subaccount holds one position"):
        dydx.Subaccount(0.0, (btc, btc), isolated=True)


def test_open_interest_scaling_of_initial_margin() -> None:
    tier = dydx.LiquidityTier(50_000, 600_000, open_interest_lower_cap=20_000_000_000_000,
                              open_interest_upper_cap=50_000_000_000_000)
    im = 10_000_000_000  # 10,000 USDC of notional, quote quantums
    below = dydx.initial_margin_quantums(quote_quantums=im, tier=tier, open_interest_quantums=10**13)
    assert below == 500_000_000  # 5 %
    # OI 35M: a half-way scaling: 5 % + 95 % * 0.5 = 52.5 %
    half = dydx.initial_margin_quantums(quote_quantums=im, tier=tier,
                                        open_interest_quantums=35_000_000_000_000)
    assert half == 5_250_000_000
    # rounding up: 1 quantum of notional at 5 % needs 1 quantum
    assert dydx.initial_margin_quantums(quote_quantums=1, tier=tier, open_interest_quantums=0) == 1
    no_caps = dydx.LiquidityTier(50_000, 600_000)
    assert dydx.initial_margin_quantums(quote_quantums=im, tier=no_caps,
                                        open_interest_quantums=10**20) == 500_000_000


def test_funding_index_truncates_and_matches_the_usdc_payment() -> None:
    # BTC: atomic resolution -10, price 50,000 as 5,000,000,000 * 1e-5; 100 ppm per 8 h, 1 h:
    # 3,600 * 100 * 5e9 * 10^(-5 - 10 + 6) = 1,800,000; / 28,800 = 62.5 -> 62
    delta = dydx.funding_index_delta(rate_ppm_8h=100, seconds=3_600, price_value=5_000_000_000,
                                     price_exponent=-5, atomic_resolution=-10)
    assert delta == 62
    assert dydx.funding_index_delta(rate_ppm_8h=-100, seconds=3_600, price_value=5_000_000_000,
                                    price_exponent=-5, atomic_resolution=-10) == -62
    # 1 BTC = 1e10 base quantums pays 62 ppm each: 620,000 quote quantums = 0.62 USDC,
    # against 0.625 USDC untruncated
    paid = dydx.funding_payment(signed_size=1.0, oracle_price=50_000, rate_8h=0.0001, seconds=3_600)
    assert paid == pytest.approx(-0.625)
    assert 10**10 * delta / 10**6 * dydx.QUOTE_QUANTUM == pytest.approx(0.62)
    assert dydx.clamp_funding_rate(0.5, tier=LARGE_CAP) == pytest.approx(6 * (0.02 - 0.012))
    assert dydx.clamp_funding_rate(-0.01, tier=LARGE_CAP) == -0.01


def test_bad_input_names_the_subject() -> None:
    account = _account(44_800)
    with pytest.raises(VenueError, match="must reduce the position"):
        dydx.bankruptcy_quote(account, target=0, delta_size=0.1)
    with pytest.raises(VenueError, match="must reduce the position"):
        dydx.bankruptcy_quote(account, target=0, delta_size=-2.0)
    with pytest.raises(VenueError, match="out of range"):
        dydx.fillable_price(account, target=5)
    with pytest.raises(VenueError, match="initial_margin_ppm"):
        dydx.LiquidityTier(2_000_000, 500_000)
    with pytest.raises(VenueError, match="lower_cap"):
        dydx.LiquidityTier(20_000, 500_000, open_interest_lower_cap=5, open_interest_upper_cap=1)
    with pytest.raises(VenueError, match="maintenance requirement is 0"):
        dydx.fillable_price(dydx.Subaccount(0.0, (dydx.Position(1.0, 100.0, 0.0),)), target=0)
    with pytest.raises(VenueError, match="finite"):
        dydx.risk(dydx.Subaccount(float("nan"), ()))


@given(size=st.integers(-10**5, 10**5).filter(bool).map(lambda n: n / 1000),
       price=st.integers(1, 10**6).map(lambda n: n / 100),
       usdc=st.integers(-10**8, 10**8).map(lambda n: n / 100),
       mmf=st.sampled_from([0.012, 0.05, 0.1]))
def test_closing_at_the_bankruptcy_quote_leaves_less_than_a_quantum(size: float, price: float,
                                                                   usdc: float, mmf: float) -> None:
    account = dydx.Subaccount(usdc, (dydx.Position(size, price, mmf),))
    quote = dydx.bankruptcy_quote(account, target=0, delta_size=-size)
    # closing everything at the quote leaves USDC + quote = TNC - floor(TNC): in [0, 1e-6);
    # values stay below 1e6 USDC so the float result is good to ~1e-10
    left = usdc + quote
    assert -1e-9 <= left < dydx.QUOTE_QUANTUM + 1e-9
