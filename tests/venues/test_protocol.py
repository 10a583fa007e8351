"""The venue protocol (backtest/venues/base.py) and the contract arithmetic (backtest/contracts.py).

Includes the two source scans of issue 10: the engine imports no venue module by name, and
no ``qty x price`` notional is written inline outside ``backtest/contracts.py``.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from backtest.contracts import InverseContract, LinearContract, contract_for
from backtest.venues import binance_coinm as cm
from backtest.venues import binance_usdm as um
from backtest.venues.base import (Leg, LiquidationPlan, get_venue, root_liquidation_price)
from backtest.venues.defaults import default_market
from backtest.venues.errors import VenueError
from backtest.venues.tiers import TierTable

ROOT = Path(__file__).resolve().parents[2] / "backtest"
VENUE_MODULES = ("binance_usdm", "binance_coinm", "bybit", "okx", "bitmex", "hyperliquid",
                 "dydx_v4")


def _engine_sources() -> list[Path]:
    """Every module of ``backtest/`` outside ``backtest/venues/`` (the cascade lab included)."""
    return [p for p in ROOT.rglob("*.py") if "venues" not in p.relative_to(ROOT).parts]


def test_the_engine_imports_no_venue_module_by_name() -> None:
    """``backtest/`` outside ``backtest/venues/`` asks the Venue it is given, never a module."""
    names = "|".join(VENUE_MODULES)
    pattern = re.compile(rf"^\s*(from\s+backtest\.venues(\.({names}))?\s+import\s+.*\b({names})\b"
                         rf"|from\s+backtest\.venues\.({names})\s+import|import\s+backtest\.venues\.({names}))",
                         re.MULTILINE)
    offenders = {str(p.relative_to(ROOT)): m.group(0).strip()
                 for p in _engine_sources() for m in [pattern.search(p.read_text())] if m}
    assert offenders == {}
    # the scan itself finds such an import
    assert pattern.search("from backtest.venues import binance_usdm\n")
    assert pattern.search("    from backtest.venues.binance_coinm import VENUE\n")


#: An inline linear notional: a quantity times a price (``qty * price``, ``abs(p.qty) * mark``).
INLINE_NOTIONAL = re.compile(
    r"\b\w*qty\w*\)?\s*\*\s*\w*(price|mark|ref)\w*\b|abs\([\w.]*qty\)\s*\*|"
    r"\b(price|mark)\w*\s*\*\s*abs\([\w.]*qty\)")


def test_no_inline_notional_outside_contracts() -> None:
    """The engine's modules (backtest/*.py) turn quantities into money through a Contract."""
    offenders = []
    for path in sorted(ROOT.glob("*.py")):
        if path.name == "contracts.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if INLINE_NOTIONAL.search(code):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []
    for sample in ("fee = qty * price * rate", "n = abs(pos.qty) * mark", "x = size_qty * ref"):
        assert INLINE_NOTIONAL.search(sample), sample


# ---------------------------------------------------------------------- contracts
def test_linear_contract_is_the_inline_arithmetic_float_for_float() -> None:
    """Byte-identity with the engine's former inline expressions, on random inputs."""
    c = LinearContract("USDT", 1.0)
    rng = np.random.default_rng(1)
    for _ in range(2000):
        q = float(rng.uniform(-50, 50))
        p, e, a = (float(x) for x in 10 ** rng.uniform(-2, 5, 3))
        assert c.notional(q, p) == abs(q) * p
        assert c.unrealized_pnl(signed_qty=q, entry_price=e, mark_price=p) == q * (p - e)
        assert c.qty_for_notional(a, p) == a / p
        same = math.copysign(abs(float(rng.uniform(0.1, 5))), q)
        assert c.average_entry(q, e, same, p) == (q * e + same * p) / (q + same)
        assert c.price_move_value(abs(q), e, p) == abs(q) * abs(p - e)
    assert um.unrealized_pnl(signed_qty=2.0, entry_price=3.0, mark_price=5.0) == \
        c.unrealized_pnl(signed_qty=2.0, entry_price=3.0, mark_price=5.0)


def test_inverse_contract_worked_example() -> None:
    """The contracts.py docstring example (BTCUSD, 100 USD contracts), margin_rules.md §1."""
    c = contract_for(default_market("binance_coinm", "BTC/USD:BTC"))
    assert isinstance(c, InverseContract) and c.margin_asset == "BTC" and c.contract_size == 100
    assert c.notional(100, 25_000) == pytest.approx(0.4)
    assert c.notional(-100, 25_000) == pytest.approx(0.4)
    assert c.unrealized_pnl(signed_qty=100, entry_price=25_000, mark_price=20_000) == \
        pytest.approx(-0.1)
    assert c.unrealized_pnl(signed_qty=-100, entry_price=25_000, mark_price=20_000) == \
        pytest.approx(0.1)
    entry = c.average_entry(100, 25_000, 100, 20_000)
    assert entry == pytest.approx(22_222.2222222)
    # the harmonic entry keeps the coin cost: PnL of the whole at any mark = sum of the parts
    for mark in (15_000.0, 30_000.0):
        whole = c.unrealized_pnl(signed_qty=200, entry_price=entry, mark_price=mark)
        parts = (c.unrealized_pnl(signed_qty=100, entry_price=25_000, mark_price=mark)
                 + c.unrealized_pnl(signed_qty=100, entry_price=20_000, mark_price=mark))
        assert whole == pytest.approx(parts, abs=1e-12)
    assert c.qty_for_notional(0.4, 25_000) == pytest.approx(100)
    assert c.to_usd(0.5, 30_000) == 15_000
    assert c.mean_price(200, c.price_weight(100, 25_000) + c.price_weight(100, 20_000)) == \
        pytest.approx(entry)
    # the same as bybit's inverse PnL vector shape: 15,000 USD long 750 -> 800 = 1.25 coin
    assert InverseContract("XBT", 1.0).unrealized_pnl(
        signed_qty=15_000, entry_price=750, mark_price=800) == pytest.approx(1.25)


def test_contract_for_refuses_unknown_kinds() -> None:
    spec = default_market("binance_usdm", "BTC/USDT:USDT")
    assert contract_for(spec) == LinearContract("USDT", 1.0)
    import dataclasses
    with pytest.raises(ValueError, match="contract_type"):
        contract_for(dataclasses.replace(spec, contract_type="quanto"))
    with pytest.raises(ValueError, match="contract size"):
        InverseContract("BTC", 0.0)


# ---------------------------------------------------------------------- protocol
def test_leg_is_venue_neutral() -> None:
    assert um.Leg is Leg and cm.Leg is Leg
    with pytest.raises(ValueError, match="side"):
        Leg(0, 1.0, 1.0)


def test_formulas_per_contract() -> None:
    usdm, coinm = get_venue("binance_usdm"), get_venue("binance_coinm")
    linear = LinearContract("USDT", 1.0)
    inverse = InverseContract("BTC", 100.0)
    f = usdm.formulas(linear)
    assert f.liquidation_price is um.liquidation_price and f.one_leg is not None
    with pytest.raises(VenueError, match="binance_coinm"):
        usdm.formulas(inverse)
    with pytest.raises(VenueError, match="binance_usdm"):
        coinm.formulas(linear)
    g = coinm.formulas(inverse)
    leg = Leg(1, 100_000, 45_000.0, 0.125, 11.605)
    assert g.liquidation_price(wallet_balance=101.0, both=leg) == pytest.approx(33_599.4, abs=0.05)
    assert g.funding_payment(signed_qty=100, mark_price=25_000, rate=0.0001) == \
        pytest.approx(-100 * 100 / 25_000 * 0.0001)
    bp = g.bankruptcy_price(wallet_balance=0.04, side=1, qty=100, entry_price=25_000)
    assert inverse.unrealized_pnl(signed_qty=100, entry_price=25_000, mark_price=bp) == \
        pytest.approx(-0.04)
    # the ADL ranking and auto-exchange hooks (Binance's, the same for COIN-M)
    assert usdm.adl_score is um.adl_score and coinm.adl_score is um.adl_score
    assert usdm.adl_quantiles is um.adl_quantiles
    assert coinm.auto_exchange_amount is um.auto_exchange_amount


def test_rulebook_is_the_venue_modules_rules() -> None:
    """get_rulebook (the cascade's way in) gives Hyperliquid's own tables and slicing rule."""
    from backtest.venues import hyperliquid as hl
    from backtest.venues.base import get_rulebook
    from backtest.venues.errors import UnknownVenueError

    book = get_rulebook("hyperliquid")
    assert book is hl.RULEBOOK and book.name == "hyperliquid"
    for ts in (1_710_000_000_000, 1_760_000_000_000):  # before and after the 2025-03-13 cut
        assert book.margin_table("BTC/USDC:USDC", ts) == hl.margin_table("BTC", ts)
    rule = book.sliced_liquidation
    assert rule is not None
    # the same slices as liquidation_slices, below and above the large-position threshold
    for size, mark in ((0.5, 100_000.0), (2.0, 100_000.0), (30.0, 4_000.0)):
        slices = hl.liquidation_slices(size=size, mark_price=mark)
        if size * mark > rule.large_notional:
            assert slices == [(0.0, size * rule.first_fraction),
                              (rule.cooldown_s, size - size * rule.first_fraction)]
        else:
            assert slices == [(0.0, size)]
    with pytest.raises(UnknownVenueError, match="hyperliquid"):
        get_rulebook("hyperliqiud")


def test_root_find_default_matches_binance_closed_form() -> None:
    """The generic solver (equity - maintenance = 0) agrees with Binance's published LP."""
    table = TierTable.from_rates([(0.0, 0.004), (50_000.0, 0.005), (250_000.0, 0.01)],
                                 max_leverage=[125.0, 100.0, 50.0])
    rng = np.random.default_rng(4)
    for _ in range(200):
        side = int(rng.choice([1, -1]))
        qty = float(10 ** rng.uniform(-2, 1.5))
        entry = float(rng.uniform(10_000, 60_000))
        wallet = qty * entry / float(rng.uniform(2, 60))

        def gap(mark: float, side: int = side, qty: float = qty, entry: float = entry,
                wallet: float = wallet) -> float:
            notional = qty * mark
            return wallet + side * qty * (mark - entry) - um.maintenance_margin(
                notional, table.for_notional(notional))

        closed = um.liquidation_price_resolved(wallet_balance=wallet, tiers=table,
                                               both=Leg(side, qty, entry))
        found = root_liquidation_price(gap, side=side, entry_price=entry)
        if side > 0 and closed <= 0:
            assert found == 0.0
        else:
            assert found == pytest.approx(closed, rel=1e-8)


def test_liquidation_procedure_as_a_result_object() -> None:
    usdm = get_venue("binance_usdm")
    table = TierTable.from_rates([(0.0, 0.004), (50_000.0, 0.005), (250_000.0, 0.01),
                                  (1_000_000.0, 0.025)], max_leverage=[125.0, 100.0, 50.0, 20.0])
    full = usdm.liquidation_procedure(mode="takeover", qty=2.0, mark_price=30_000.0,
                                      bankruptcy_price=29_000.0, margin_balance=100.0,
                                      tiers=table, clearance_rate=0.005)
    assert isinstance(full, LiquidationPlan) and full.takeover
    assert [(s.qty, s.price, s.kind) for s in full.steps] == [(2.0, 29_000.0, "takeover")]
    plan = usdm.liquidation_procedure(mode="tier_down", qty=40.0, mark_price=30_000.0,
                                      bankruptcy_price=29_500.0, margin_balance=20_000.0,
                                      tiers=table, clearance_rate=0.005)
    pure = um.tier_down_plan(qty=40.0, mark_price=30_000.0, margin_balance=20_000.0,
                             tiers=table, clearance_rate=0.005)
    assert [s.qty for s in plan.steps if s.kind == "tier_down"] == list(pure.steps)
    assert all(s.price == 30_000.0 for s in plan.steps if s.kind == "tier_down")
    assert plan.takeover == pure.takeover and plan.remainder == pure.remainder
    coinm = get_venue("binance_coinm")  # the shared step-down since COIN-M smart liquidation:
    # 100 contracts of 100 USD at 30,000 are 0.33 BTC, in the first bracket: nothing to step
    # down, the takeover follows (tests/engine/test_coinm_tier_down.py steps a larger one down)
    from backtest.contracts import InverseContract
    inv = coinm.liquidation_procedure(mode="tier_down", qty=100.0, mark_price=30_000.0,
                                      bankruptcy_price=29_000.0, margin_balance=0.1,
                                      tiers=table, clearance_rate=0.005,
                                      contract=InverseContract("BTC", 100.0))
    assert [s.kind for s in inv.steps] == ["takeover"]
