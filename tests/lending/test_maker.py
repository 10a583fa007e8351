"""MakerDAO scenarios with the arithmetic written out: vault safety, bark with limits and
dust, a Clipper auction from kick to the last take, redo; Flipper replays of a zero-bid and a
competitive auction; errors."""
from __future__ import annotations

import math

import pytest

from backtest.lending import maker
from backtest.lending import maker_flipper as flip
from backtest.lending.errors import LendingParameterError


def test_vault_ratio_and_unsafe_line() -> None:
    # 10 ETH at 1,500 against 10,000 DAI (art 9,900 x rate 1.0101...) at mat 1.5
    rate = 10000 / 9900
    assert maker.collateralization_ratio(ink=10, art=9900, rate=rate, price=1500) == pytest.approx(1.5)
    assert maker.spot(1500, 1.5) == pytest.approx(1000.0)
    assert not maker.is_unsafe(ink=10, art=9900, rate=rate, price=1500.01, mat=1.5)
    assert maker.is_unsafe(ink=10, art=9900, rate=rate, price=1499.99, mat=1.5)
    assert maker.collateralization_ratio(ink=1, art=0, rate=1, price=1) == math.inf


def test_bark_limits_and_dust() -> None:
    room = maker.liquidation_room(global_limit=100e6, global_dirt=99.99e6, ilk_limit=50e6,
                                  ilk_dirt=1e6)
    assert room == pytest.approx(10_000.0)   # the global limit binds
    # 40 ETH, 20,000 DAI of debt, chop 1.13: room for 10,000 / 1.13 = 8,849.56 DAI of debt
    partial = maker.bark(ink=40, art=20000, rate=1.0, chop=1.13, room=room, dust=5000)
    assert partial.status == "barked"
    assert partial.dart == pytest.approx(10000 / 1.13)
    assert partial.tab == pytest.approx(10000.0)
    assert partial.lot == pytest.approx(40 * (10000 / 1.13) / 20000)
    assert partial.art_left == pytest.approx(20000 - 10000 / 1.13)
    # with dust 9,000 the 11,150 DAI remnant is fine but the 8,849.56 DAI auction is dusty
    assert maker.bark(ink=40, art=20000, rate=1.0, chop=1.13, room=room,
                      dust=9000).status == "dusty_auction"
    assert maker.bark(ink=40, art=20000, rate=1.0, chop=1.13, room=0.0).status == "limit_hit"
    # remnant 20,000 - 8,849.56 below dust 12,000: the whole vault goes
    whole = maker.bark(ink=40, art=20000, rate=1.0, chop=1.13, room=room, dust=12000)
    assert whole.dart == 20000 and whole.tab == pytest.approx(22600.0) and whole.ink_left == 0


def test_clipper_auction_from_kick_to_last_take() -> None:
    b = maker.bark(ink=10, art=12000, rate=1.0, chop=1.13, tip=300, chip=0.001)
    assert b.tab == pytest.approx(13560.0)
    assert b.incentive == pytest.approx(300 + 13.56)
    start = maker.top(1500.0, 1.2)                        # 1,800 DAI
    curve = maker.StairstepExponentialDecrease(cut=0.99, step=90)
    price = curve.price(start, 900)                        # 10 steps
    assert price == pytest.approx(1800 * 0.99 ** 10)
    assert not maker.needs_redo(elapsed=900, price=price, top=start, tail=7200, cusp=0.4)
    floor = maker.chost(dust=5000, chop=1.13)              # 5,650 DAI
    first = maker.take(lot=b.lot, tab=b.tab, price=price, amt=2.0, max_price=1700, chost=floor)
    assert first.status == "taken" and first.owe == pytest.approx(2 * price)
    # a buyer leaving 13,560 - 2p - 3p < chost is cut to leave exactly chost
    second = maker.take(lot=first.lot_left, tab=first.tab_left, price=price, amt=3.0,
                        chost=floor)
    assert second.tab_left == pytest.approx(floor)
    assert second.slice == pytest.approx((first.tab_left - floor) / price)
    last = maker.take(lot=second.lot_left, tab=second.tab_left, price=price, amt=math.inf,
                      chost=floor)
    assert last.done and last.tab_left == 0 and last.tab_unpaid == 0
    sold = first.slice + second.slice + last.slice
    assert sold == pytest.approx(13560 / price)
    assert last.returned_to_owner == pytest.approx(10 - sold)
    assert maker.auction_shortfall(due=b.due, raised=first.owe + second.owe + last.owe) == 0


def test_take_refusals_and_an_exhausted_lot() -> None:
    assert maker.take(lot=10, tab=100, price=5, amt=1, max_price=4).status == "too_expensive"
    assert maker.take(lot=10, tab=50, price=1, amt=1, chost=60).status == "no_partial_purchase"
    # the whole lot is still allowed below chost
    whole = maker.take(lot=10, tab=50, price=1, amt=10, chost=60)
    assert whole.done and whole.tab_unpaid == pytest.approx(40.0)
    # the Vow keeps the debt part of the tab (tab / chop) minus the 10 DAI raised
    assert maker.auction_shortfall(due=50 / 1.13, raised=whole.owe) == pytest.approx(50 / 1.13 - 10)
    assert maker.auction_shortfall(due=45.0, raised=50.0) == 0.0   # penalty is surplus


def test_redo_after_tail_or_cusp() -> None:
    assert maker.needs_redo(elapsed=7201, price=1000, top=1800, tail=7200, cusp=0.4)
    assert maker.needs_redo(elapsed=60, price=700, top=1800, tail=7200, cusp=0.4)   # 0.389 < 0.4
    assert maker.redo_incentive(tab=10000, lot=5, feed_price=1500, tip=300, chip=0.001,
                                chost=5650) == pytest.approx(310.0)
    assert maker.redo_incentive(tab=5000, lot=5, feed_price=1500, tip=300, chip=0.001,
                                chost=5650) == 0.0


def test_price_curves_at_their_edges() -> None:
    assert maker.LinearDecrease(3600).price(1000, 3600) == 0.0
    assert maker.LinearDecrease(3600).price(1000, 0) == 1000.0
    assert maker.StairstepExponentialDecrease(0.99, 90).price(1000, 89.9) == 1000.0
    assert maker.ExponentialDecrease(0.5).price(1000, 2) == 250.0


FLIP_2020 = flip.FlipParams(beg=1.03, ttl=600.0, tau=6 * 3600.0)


def test_flipper_zero_bid_wins_the_whole_lot() -> None:
    b = flip.bite(ink=100, art=15000, rate=1.0, chop=1.13, lump=50)
    assert (b.lot, b.art, b.due) == (50, 7500, 7500)
    assert b.tab == pytest.approx(8475.0)
    auction = flip.kick(tab=b.tab, lot=b.lot, now=0.0, params=FLIP_2020, due=b.due)
    step = flip.tend(auction, bidder="keeper", bid=1e-18, now=10.0, params=FLIP_2020)
    assert step.accepted
    late = flip.tend(step.auction, bidder="other", bid=5000.0, now=611.0, params=FLIP_2020)
    assert not late.accepted and late.reason == "Flipper/already-finished-tic"
    settled = flip.deal(step.auction, now=611.0)
    assert settled.status == "dealt" and settled.winner == "keeper" and settled.lot == 50
    assert settled.zero_bid and settled.shortfall == pytest.approx(7500.0)


def test_flipper_tend_then_dent_returns_collateral() -> None:
    auction = flip.kick(tab=8475.0, lot=50.0, now=0.0, params=FLIP_2020, due=7500.0)
    a = flip.tend(auction, bidder="A", bid=1000.0, now=1.0, params=FLIP_2020)
    b = flip.tend(a.auction, bidder="B", bid=1020.0, now=2.0, params=FLIP_2020)
    assert not b.accepted and b.reason == "Flipper/insufficient-increase"   # < 1,030
    assert not flip.tend(a.auction, bidder="B", bid=9000.0, now=2.0,
                         params=FLIP_2020).accepted                      # above the tab
    b = flip.tend(a.auction, bidder="B", bid=8475.0, now=3.0, params=FLIP_2020)
    assert b.accepted and b.auction.phase == "dent"
    short = flip.dent(b.auction, bidder="A", lot=49.0, now=4.0, params=FLIP_2020)
    assert short.reason == "Flipper/insufficient-decrease"                # 1.03 x 49 > 50
    d = flip.dent(b.auction, bidder="A", lot=48.0, now=5.0, params=FLIP_2020)
    assert d.accepted and d.auction.returned == 2.0
    assert flip.deal(d.auction, now=100.0).status == "not_finished"
    settled = flip.deal(d.auction, now=606.0)
    assert (settled.winner, settled.lot, settled.bid, settled.returned) == ("A", 48.0, 8475.0, 2.0)
    assert settled.shortfall == 0.0 and not settled.zero_bid


def test_flipper_tick_restarts_an_auction_without_bids() -> None:
    auction = flip.kick(tab=100.0, lot=1.0, now=0.0, params=FLIP_2020)
    assert flip.tick(auction, now=100.0, params=FLIP_2020).reason == "Flipper/not-finished"
    restarted = flip.tick(auction, now=30000.0, params=FLIP_2020)
    assert restarted.accepted and restarted.auction.end == 30000.0 + 6 * 3600
    assert flip.deal(auction, now=30000.0).status == "not_finished"   # no bid to settle


@pytest.mark.parametrize("build, match", [
    (lambda: maker.bark(ink=1, art=1, rate=1, chop=0.9), "chop"),
    (lambda: maker.bark(ink=-1, art=1, rate=1, chop=1.1), "vault ink"),
    (lambda: maker.bark(ink=1, art=1, rate=1, chop=1.1, chip=2), "chip"),
    (lambda: maker.StairstepExponentialDecrease(cut=1.01, step=1), "cut"),
    (lambda: maker.LinearDecrease(tau=0), "tau"),
    (lambda: maker.ExponentialDecrease(0.99).price(1, -1), "elapsed"),
    (lambda: maker.is_unsafe(ink=1, art=1, rate=1, price=0, mat=1.5), "oracle price"),
    (lambda: maker.take(lot=1, tab=1, price=0, amt=1), "price"),
    (lambda: flip.FlipParams(beg=0.9), "beg"),
])
def test_invalid_input_raises(build, match) -> None:
    with pytest.raises(LendingParameterError, match=match):
        build()
