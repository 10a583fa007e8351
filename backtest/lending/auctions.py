"""Maker vaults liquidated by auction: Flipper (Liquidations 1.0) or Clipper (2.0) with keepers.

A population of vaults (``ink`` gems, debt in DAI, ``1/mat`` as ``liquidation_threshold`` and
``chop`` as ``liquidation_bonus``) runs through a market path. Each step (``times``, seconds):

1. the stability fee grows the ilk's ``rate`` (:func:`backtest.lending.interest.compounded_interest`);
2. the OSM serves the price read at the previous hourly poke (:func:`backtest.lending.oracle.osm_path`);
3. vaults unsafe at the OSM price (``ink * price / mat < art * rate``) are liquidated:
   Flipper: ``Cat.bite`` in lots of at most ``lump`` gems, each kicking an English auction
   (:mod:`backtest.lending.maker_flipper`); Clipper: ``Dog.bark`` of the whole vault, a Dutch
   auction starting at ``top = OSM * buf`` and falling on the ``StairstepExponentialDecrease``
   curve, reset (``redo``) past ``tail`` or below ``cusp`` (:mod:`backtest.lending.maker`);
4. keepers act on the auctions when their transactions can land (network gas price <= their
   ``max_gas_gwei``), after their ``latency`` and within their ``capital``:

   * a ``value`` keeper bids (Flipper ``tend``/``dent``) or takes (Clipper ``take``) at the
     market price less its ``margin``, and only when that pays its gas
     (``gas_units * gwei * 1e-9 * ETH price``);
   * a ``lowball`` keeper bids ``zero_bid`` DAI on a Flipper auction nobody bid on (the 2020
     zero-bid winners), and on a Clipper auction takes at the lowest price the auction
     reaches before a reset (one step before ``cusp``/``tail``), when that is below market;

5. finished Flipper auctions are ``deal``-t; a Clipper auction ends when its tab is raised or
   its lot sold.

Bad debt: each auction's ``shortfall = max(0, due - raised)`` (sin not covered; the penalty
part of the tab is surplus), plus the keeper incentives the Clipper pays (``tip + chip * tab``
at bark and redo, drawn from the surplus buffer).

Sources: the protocol functions cited in :mod:`backtest.lending.maker` and
:mod:`backtest.lending.maker_flipper` (makerdao/dss ``cat.sol``, ``flip.sol``, ``dog.sol``,
``clip.sol``, ``abaci.sol``); the keeper model of cascades.md §7.3 (gas cost, latency,
capital, a profitability test) and §B.3 (2020-03-12: gas spike, zero bids, OSM delay).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from backtest.lending import maker, maker_flipper as flip
from backtest.lending.checks import fraction, non_negative, positive
from backtest.lending.errors import LendingParameterError
from backtest.lending.interest import compounded_interest
from backtest.lending.oracle import osm_path

__all__ = ["AuctionParams", "AuctionResult", "Keeper", "run_auctions"]

MODES = ("flipper", "clipper")
KINDS = ("value", "lowball")


@dataclass(frozen=True, slots=True)
class Keeper:
    """A keeper bot: ``kind`` (``value``/``lowball``), the highest network gas price (gwei)
    at which its transactions land, the ``margin`` below market it requires, its reaction
    ``latency`` (seconds after a kick), the DAI ``capital`` it can commit at once and the
    ``gas_units`` of one bid or take."""

    name: str
    max_gas_gwei: float
    margin: float = 0.05
    kind: str = "value"
    latency: float = 0.0
    capital: float = math.inf
    gas_units: float = 300_000.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LendingParameterError(
                f"keeper {self.name!r}: expected kind among {', '.join(KINDS)}, found "
                f"{self.kind!r}; fix the keeper's kind")
        positive(f"keeper {self.name!r} max_gas_gwei", self.max_gas_gwei, allow_inf=True)
        fraction(f"keeper {self.name!r} margin", self.margin, high_open=True)
        non_negative(f"keeper {self.name!r} latency", self.latency)
        positive(f"keeper {self.name!r} capital", self.capital, allow_inf=True)
        non_negative(f"keeper {self.name!r} gas_units", self.gas_units)


@dataclass(frozen=True, slots=True)
class AuctionParams:
    """Ilk parameters of both liquidation systems.

    Flipper (ETH-A, 2020-03-12; sources and status in :mod:`backtest.lending.maker_flipper`,
    :data:`~backtest.lending.maker_flipper.ETH_A_LUMP_2020_03_12` and
    :data:`~backtest.lending.maker_flipper.ETH_A_2020_03_12`): ``lump`` 50 ETH per bite
    (confirmed by the 2020-03-12 spell that raised it to 500), ``flip`` (``beg`` 3 %, ``ttl``
    10 min, ``tau`` 3 days: ``ttl`` and ``tau`` cited to that spell's "existing" values,
    ``beg`` as reported).
    Clipper (ETH-A at launch, 2021): ``buf`` 1.2 (later 1.3), ``tail`` 140 min, ``cusp`` 0.4,
    ``cut`` 0.99 every ``step`` 90 s, ``chip`` 0.1 %, ``tip`` 300 DAI; the Dog's limits on the
    DAI in auctions at once, ``hole`` (the ilk's) and ``global_hole`` (``Hole``), default no
    limit (a bark takes only the room left, :func:`backtest.lending.maker.liquidation_room`;
    ``take`` frees it, ``dog.digs``). ``dust`` minimum vault
    debt (DAI), ``hop`` the OSM delay (s), ``stability_fee`` annual, ``zero_bid`` the DAI a
    lowball keeper bids on a Flipper auction.
    """

    mode: str = "flipper"
    lump: float = flip.ETH_A_LUMP_2020_03_12
    flip: flip.FlipParams = flip.ETH_A_2020_03_12
    buf: float = 1.2
    tail: float = 140 * 60.0
    cusp: float = 0.4
    cut: float = 0.99
    step: float = 90.0
    chip: float = 0.001
    tip: float = 300.0
    dust: float = 20.0
    hop: float = 3600.0
    stability_fee: float = 0.0
    zero_bid: float = 1e-6
    hole: float = math.inf
    global_hole: float = math.inf

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise LendingParameterError(
                f"auction mode: expected one of {', '.join(MODES)}, found {self.mode!r}; "
                "flipper replays 2020, clipper is Liquidations 2.0")
        positive("lump", self.lump, allow_inf=True)
        maker.StairstepExponentialDecrease(self.cut, self.step)   # validates cut and step
        maker.top(1.0, self.buf)
        fraction("cusp", self.cusp)
        positive("tail", self.tail, allow_inf=True)
        maker.keeper_incentive(0.0, tip=self.tip, chip=self.chip)
        non_negative("dust", self.dust)
        positive("hop", self.hop)
        non_negative("stability_fee", self.stability_fee)
        positive("zero_bid", self.zero_bid)
        maker.liquidation_room(global_limit=self.global_hole, global_dirt=0.0,
                               ilk_limit=self.hole, ilk_dirt=0.0)   # validates both limits


@dataclass
class _Auction:
    """One auction in flight (either system) and what the outputs report about it."""

    id: int
    vault: int
    kicked: float
    kick_step: int
    lot0: float
    tab0: float
    due: float
    osm_at_kick: float
    flip_state: flip.FlipAuction | None = None
    lot: float = 0.0
    tab: float = 0.0
    top: float = 0.0
    tic: float = 0.0
    raised: float = 0.0
    sold: float = 0.0
    incentives: float = 0.0
    redos: int = 0
    winner: str = ""
    returned: float = 0.0


@dataclass(frozen=True)
class AuctionResult:
    """``auctions`` (one row per auction), ``keepers`` (one row per keeper), ``steps`` (the
    path: market, OSM, gas, rate), the final vault balances, the toxic flags and ``summary``."""

    auctions: pl.DataFrame
    keepers: pl.DataFrame
    steps: pl.DataFrame
    ink: NDArray[np.float64]
    debt: NDArray[np.float64]
    toxic_step: NDArray[np.int64]
    toxic_ltv: NDArray[np.float64]
    summary: dict[str, Any]


class _Run:
    """Mutable state of one auction run (kept in one place so each step stays readable)."""

    def __init__(self, vaults: dict[str, NDArray[np.float64]], keepers: list[Keeper],
                 params: AuctionParams) -> None:
        self.ink = vaults["collateral"].astype(np.float64).copy()
        self.art = vaults["debt"].astype(np.float64).copy()   # rate starts at 1: art = debt
        self.lt, self.chop = vaults["liquidation_threshold"], vaults["liquidation_bonus"]
        self.keepers, self.params, self.rate = keepers, params, 1.0
        self.curve = maker.StairstepExponentialDecrease(params.cut, params.step)
        self.active: list[_Auction] = []
        self.done: list[dict[str, Any]] = []
        self.stats = {k.name: {"bids": 0, "won": 0, "dai_paid": 0.0, "gems_won": 0.0,
                               "value_won": 0.0, "gas_spent": 0.0, "incentives": 0.0}
                      for k in keepers}
        self.locked = {k.name: 0.0 for k in keepers}
        self.first_toxic = np.full(self.ink.size, -1, dtype=np.int64)
        self.toxic_ltv = np.full(self.ink.size, math.nan)
        self.next_id = 0
        self.dirt = 0.0   # DAI of tabs in auctions (Dog dirt/Dirt: one ilk, so both)

    # ------------------------------------------------------------------ liquidation
    def liquidate(self, i: int, now: float, osm: float, able: list[Keeper]) -> None:
        owed = self.art * self.rate
        newly = (owed > 0) & (owed * self.chop > self.ink * osm) & (self.first_toxic < 0)
        if newly.any():
            rows = np.flatnonzero(newly)
            self.first_toxic[rows] = i
            self.toxic_ltv[rows] = owed[rows] / (self.ink[rows] * osm)
        p = self.params
        for v in np.flatnonzero((self.art > 0) & (self.ink * osm * self.lt < owed)):
            if p.mode == "flipper":
                while self.art[v] > 0 and self.ink[v] > 0 and maker.is_unsafe(
                        ink=self.ink[v], art=self.art[v], rate=self.rate, price=osm,
                        mat=1 / self.lt[v]):
                    b = flip.bite(ink=self.ink[v], art=self.art[v], rate=self.rate,
                                  chop=self.chop[v], lump=p.lump)
                    self.ink[v], self.art[v] = b.ink_left, b.art_left
                    state = flip.kick(tab=b.tab, lot=b.lot, now=now, params=p.flip, due=b.due)
                    self._open(i, now, int(v), b.lot, b.tab, b.due, osm, flip_state=state)
            elif able:   # a keeper must send the bark transaction
                room = maker.liquidation_room(global_limit=p.global_hole, global_dirt=self.dirt,
                                              ilk_limit=p.hole, ilk_dirt=self.dirt)
                b = maker.bark(ink=self.ink[v], art=self.art[v], rate=self.rate,
                               chop=self.chop[v], room=room, dust=p.dust, tip=p.tip, chip=p.chip)
                if b.status != "barked":
                    continue
                self.dirt += b.tab
                self.ink[v], self.art[v] = b.ink_left, b.art_left
                a = self._open(i, now, int(v), b.lot, b.tab, b.due, osm)
                a.top, a.tic, a.incentives = maker.top(osm, p.buf), now, b.incentive
                self.stats[able[0].name]["incentives"] += b.incentive

    def _open(self, i: int, now: float, vault: int, lot: float, tab: float, due: float,
              osm: float, flip_state: flip.FlipAuction | None = None) -> _Auction:
        a = _Auction(self.next_id, vault, now, i, lot, tab, due, osm, flip_state, lot, tab)
        self.next_id += 1
        self.active.append(a)
        return a

    # ------------------------------------------------------------------ keepers
    @staticmethod
    def _gas_dai(k: Keeper, gwei: float, eth_price: float) -> float:
        return k.gas_units * gwei * 1e-9 * eth_price

    def _spend_gas(self, k: Keeper, gwei: float, price: float) -> None:
        self.stats[k.name]["bids"] += 1
        self.stats[k.name]["gas_spent"] += self._gas_dai(k, gwei, price)

    def step_flipper(self, now: float, price: float, gwei: float, able: list[Keeper]) -> None:
        p = self.params.flip
        still: list[_Auction] = []
        for a in self.active:
            s = a.flip_state
            assert s is not None
            if s.tic is not None and (s.tic < now or s.end < now):
                self._finish_flip(a, flip.deal(s, now=now, zero_bid_share=1e-6), now, price)
                continue
            if s.tic is None and s.end < now:
                s = flip.tick(s, now=now, params=p).auction
            for k in able:
                if s.guy == k.name or now - a.kicked < k.latency:
                    continue
                gas = self._gas_dai(k, gwei, price)
                free = k.capital - self.locked[k.name]
                if k.kind == "lowball":
                    if s.bid == 0 and free >= self.params.zero_bid:
                        step = flip.tend(s, bidder=k.name, bid=self.params.zero_bid, now=now,
                                         params=p)
                        s = self._after_bid(s, step, k, gwei, price)
                    continue
                worth = price * (1 - k.margin)
                if s.phase == "tend":
                    want = min(s.tab, s.lot * worth - gas)
                    if want > 0 and want <= free and (want >= s.tab or want >= p.beg * s.bid):
                        s = self._after_bid(s, flip.tend(s, bidder=k.name, bid=want, now=now,
                                                         params=p), k, gwei, price)
                else:
                    want_lot = (s.tab + gas) / worth
                    if want_lot * p.beg <= s.lot and s.tab <= free:
                        s = self._after_bid(s, flip.dent(s, bidder=k.name, lot=want_lot, now=now,
                                                         params=p), k, gwei, price)
            a.flip_state = s
            still.append(a)
        self.active = still

    def _after_bid(self, s: flip.FlipAuction, step: flip.FlipStep, k: Keeper, gwei: float,
                   price: float) -> flip.FlipAuction:
        if not step.accepted:
            return s
        if s.guy in self.locked:
            self.locked[s.guy] -= s.bid   # the outbid keeper gets its DAI back
        self.locked[k.name] += step.auction.bid
        self._spend_gas(k, gwei, price)
        return step.auction

    def _finish_flip(self, a: _Auction, d: flip.FlipDeal, now: float, price: float) -> None:
        if d.winner in self.locked:
            self.locked[d.winner] -= d.bid
            st = self.stats[d.winner]
            st["won"] += 1
            st["dai_paid"] += d.bid
            st["gems_won"] += d.lot
            st["value_won"] += d.lot * price
        a.raised, a.sold, a.winner, a.returned = d.bid, d.lot, d.winner, d.returned
        self._record(a, now, price, "dealt", zero_bid=d.zero_bid)

    def step_clipper(self, now: float, dt: float, osm: float, price: float, gwei: float,
                     able: list[Keeper]) -> None:
        p = self.params
        chost = p.dust * float(np.max(self.chop)) if self.chop.size else 0.0
        still: list[_Auction] = []
        for a in self.active:
            elapsed = now - a.tic
            current = self.curve.price(a.top, elapsed)
            if maker.needs_redo(elapsed=elapsed, price=current, top=a.top, tail=p.tail,
                                cusp=p.cusp):
                if not able:   # nobody can send the redo transaction
                    still.append(a)
                    continue
                incentive = maker.redo_incentive(tab=a.tab, lot=a.lot, feed_price=osm, tip=p.tip,
                                                 chip=p.chip, chost=chost)
                a.top, a.tic, a.redos = maker.top(osm, p.buf), now, a.redos + 1
                a.incentives += incentive
                self.stats[able[0].name]["incentives"] += incentive
                elapsed, current = 0.0, a.top
            for k in able:
                if now - a.kicked < k.latency or current >= price:
                    continue
                gas = self._gas_dai(k, gwei, price)
                if k.kind == "value":
                    go = current <= price * (1 - k.margin) and a.lot * (price - current) > gas
                else:   # the last price before a reset
                    later = self.curve.price(a.top, elapsed + dt)
                    go = maker.needs_redo(elapsed=elapsed + dt, price=later, top=a.top,
                                          tail=p.tail, cusp=p.cusp)
                if not go:
                    continue
                t = maker.take(lot=a.lot, tab=a.tab, price=current,
                               amt=min(a.lot, k.capital / current), chost=chost)
                if t.status != "taken":
                    continue
                self._spend_gas(k, gwei, price)
                st = self.stats[k.name]
                st["won"] += 1
                st["dai_paid"] += t.owe
                st["gems_won"] += t.slice
                st["value_won"] += t.slice * price
                a.raised, a.sold, a.winner = a.raised + t.owe, a.sold + t.slice, k.name
                a.tab, a.lot = t.tab_left, t.lot_left
                # dog.digs: the DAI paid, and the whole tab left once the lot is gone
                self.dirt = max(0.0, self.dirt - t.owe - t.tab_unpaid)   # no float drift below 0
                if t.done:
                    a.returned = t.returned_to_owner
                    self._record(a, now, price, "taken", tab_unpaid=t.tab_unpaid)
                    break
            else:
                still.append(a)
        self.active = still

    # ------------------------------------------------------------------ records
    def _record(self, a: _Auction, now: float, price: float, status: str, *,
                zero_bid: bool | None = None, tab_unpaid: float = 0.0) -> None:
        shortfall = maker.auction_shortfall(due=a.due, raised=a.raised) if status != "open" else 0.0
        self.done.append({
            "auction": a.id, "vault": a.vault, "mode": self.params.mode, "status": status,
            "kicked": a.kicked, "settled": now if status != "open" else math.nan,
            "lot": a.lot0, "tab": a.tab0, "due": a.due, "osm_at_kick": a.osm_at_kick,
            "raised": a.raised, "collateral_sold": a.sold,
            "clearing_price": a.raised / a.sold if a.sold > 0 else math.nan,
            "market_at_settle": price, "winner": a.winner,
            "zero_bid": bool(zero_bid) if zero_bid is not None else (
                status != "open" and a.raised <= 1e-6 * a.due),
            "returned_to_owner": a.returned, "redos": a.redos, "incentives": a.incentives,
            "tab_unpaid": tab_unpaid, "shortfall": shortfall,
            "lot_left": a.lot if status == "open" else 0.0})


def run_auctions(vaults: pl.DataFrame, times: NDArray[np.float64], market: NDArray[np.float64],
                 gas_gwei: NDArray[np.float64], keepers: list[Keeper],
                 params: AuctionParams = AuctionParams()) -> AuctionResult:
    """Run Maker ``vaults`` (population schema of :mod:`backtest.lending.population`) through
    the market path with ``keepers``; see the module docstring for the step order.

    Parameters
    ----------
    vaults : DataFrame
        ``collateral`` (ink, gems), ``debt`` (DAI), ``liquidation_threshold`` (``1/mat``),
        ``liquidation_bonus`` (``chop``).
    times, market, gas_gwei : arrays
        Epoch seconds (strictly increasing), ETH price (DAI) and network gas price (gwei).
    """
    t = np.asarray(times, dtype=np.float64)
    price = np.asarray(market, dtype=np.float64)
    gas = np.asarray(gas_gwei, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or price.shape != t.shape or gas.shape != t.shape:
        raise LendingParameterError("run_auctions: times, market and gas_gwei must be 1-D arrays "
                                    "of the same non-zero length")
    if not (np.all(np.isfinite(price)) and np.all(price > 0) and np.all(np.isfinite(gas))):
        raise LendingParameterError("run_auctions: market prices must be finite and > 0 and gas "
                                    "prices finite")
    names = [k.name for k in keepers]
    if len(set(names)) != len(names):
        raise LendingParameterError(f"keepers: expected distinct names, found {names}; rename "
                                    "the duplicates")
    osm = osm_path(t, price, hop=params.hop)
    run = _Run({c: vaults[c].to_numpy() for c in ("collateral", "debt", "liquidation_threshold",
                                                   "liquidation_bonus")}, keepers, params)
    debt0 = float(vaults["debt"].sum())
    for i in range(t.size):
        now = float(t[i])
        if i and params.stability_fee:
            run.rate *= compounded_interest(params.stability_fee, now - t[i - 1])
        able = [k for k in keepers if gas[i] <= k.max_gas_gwei]
        run.liquidate(i, now, float(osm[i]), able)
        if params.mode == "flipper":
            run.step_flipper(now, float(price[i]), float(gas[i]), able)
        else:
            dt = float(t[i + 1] - t[i]) if i + 1 < t.size else float(t[i] - t[i - 1]) if i else 1.0
            run.step_clipper(now, dt, float(osm[i]), float(price[i]), float(gas[i]), able)
    for a in run.active:
        if a.flip_state is not None:
            a.raised, a.winner = a.flip_state.bid, a.flip_state.guy
            a.lot = a.flip_state.lot
        run._record(a, float(t[-1]), float(price[-1]), "open")
    return _result(run, t, price, osm, gas, debt0, keepers)


def _result(run: _Run, t: NDArray[np.float64], price: NDArray[np.float64],
            osm: NDArray[np.float64], gas: NDArray[np.float64], debt0: float,
            keepers: list[Keeper]) -> AuctionResult:
    schema = {"auction": pl.Int64, "vault": pl.Int64, "mode": pl.Utf8, "status": pl.Utf8,
              "kicked": pl.Float64, "settled": pl.Float64, "lot": pl.Float64, "tab": pl.Float64,
              "due": pl.Float64, "osm_at_kick": pl.Float64, "raised": pl.Float64,
              "collateral_sold": pl.Float64, "clearing_price": pl.Float64,
              "market_at_settle": pl.Float64, "winner": pl.Utf8, "zero_bid": pl.Boolean,
              "returned_to_owner": pl.Float64, "redos": pl.Int64, "incentives": pl.Float64,
              "tab_unpaid": pl.Float64, "shortfall": pl.Float64, "lot_left": pl.Float64}
    auctions = pl.DataFrame(run.done, schema=schema, orient="row").sort("auction")
    keeper_rows = [{"keeper": k.name, "kind": k.kind, "max_gas_gwei": k.max_gas_gwei,
                    **run.stats[k.name]} for k in keepers]
    keeper_frame = pl.DataFrame(keeper_rows, schema={
        "keeper": pl.Utf8, "kind": pl.Utf8, "max_gas_gwei": pl.Float64, "bids": pl.Int64,
        "won": pl.Int64, "dai_paid": pl.Float64, "gems_won": pl.Float64,
        "value_won": pl.Float64, "gas_spent": pl.Float64, "incentives": pl.Float64})
    keeper_frame = keeper_frame.with_columns(
        profit=pl.col("value_won") - pl.col("dai_paid") - pl.col("gas_spent") + pl.col("incentives"))
    steps = pl.DataFrame({"ts": t, "market_price": price, "oracle_price": osm, "gas_gwei": gas})
    settled = auctions.filter(pl.col("status") != "open")
    zero = settled.filter(pl.col("zero_bid"))
    shortfall = float(settled["shortfall"].sum())
    incentives = float(auctions["incentives"].sum())
    surplus = float((settled["raised"] - settled["due"]).clip(lower_bound=0).sum())
    summary = {
        "mode": run.params.mode, "vaults": int(run.ink.size), "debt_start": debt0,
        "auctions": auctions.height, "auctions_settled": settled.height,
        "auctions_open": auctions.height - settled.height,
        "zero_bid_auctions": zero.height,
        "zero_bid_share": zero.height / settled.height if settled.height else 0.0,
        "zero_bid_collateral_value": float((zero["collateral_sold"]
                                            * zero["market_at_settle"]).sum()),
        "debt_liquidated": float(auctions["due"].sum()),
        "dai_raised": float(auctions["raised"].sum()),
        "shortfall": shortfall, "incentives": incentives, "penalty_surplus": surplus,
        "deficit": shortfall + incentives,
        "net_deficit": max(0.0, shortfall + incentives - surplus),
        "toxic_positions": int((run.first_toxic >= 0).sum()),
    }
    return AuctionResult(auctions, keeper_frame, steps, run.ink, run.art * run.rate,
                         run.first_toxic, run.toxic_ltv, summary)


def replace_mode(params: AuctionParams, mode: str) -> AuctionParams:
    """``params`` with another ``mode`` (the same ilk under the other liquidation system)."""
    return replace(params, mode=mode)
