"""The compiled kernel (``backtest.kernel``) against the event path and the Python scan.

Every comparison runs the same signals three ways: ``run_backtest(data, SignalStrategy(...))``
(the per-bar loop), ``run_signals(..., kernel=False)`` (the Python scan) and
``run_kernel(...).result()`` (the numba loop with the engine's result builder), and asserts
that every output table and the summary are exactly equal (no tolerance); the kernel's
table-free ``summary()`` (what a sweep keeps) must equal them too. Each test first checks
that the kernel really ran (``run_kernel`` is not None), so no comparison is vacuous.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backtest import MarketData, RunConfig, run_backtest, run_signals
from backtest.fastpath import SignalStrategy, run_strategy
from backtest.kernel import have_numba, kernel_scope, ready, run_kernel, warm
from backtest.results import OUTPUT_TABLES
from backtest.venues.tiers import TierTable
from data_loaders.synthetic import engine_frames, generate_perpetual

BTC = "BTC/USDT:USDT"
PROJECT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not have_numba(), reason="numba is not installed (the kernel is off)")

#: Four brackets: positions of the tests below span the first three (the resolver runs).
TIERS = TierTable.from_rates([(0.0, 0.004, 125.0), (20_000.0, 0.005, 100.0), (100_000.0, 0.01, 75.0),
                              (400_000.0, 0.025, 50.0)], label="four brackets")
SINGLE = TierTable.from_rates([(0.0, 0.005)], max_leverage=[125.0], label="one bracket")


@pytest.fixture(scope="module")
def data() -> MarketData:
    market = generate_perpetual(symbol=BTC, days=20, crash_day=12, seed=3)
    bars, funding = engine_frames(market)
    return MarketData.from_frames({BTC: bars}, {BTC: funding}, timeframe="1m")


def random_signals(n: int, seed: int, *, low: float = 0.3, high: float = 1.6) -> np.ndarray:
    """Runs of long / short / flat / no opinion with random lengths and magnitudes."""
    rng = np.random.default_rng(seed)
    values, i = [], 0
    while i < n:
        length = int(rng.integers(5, 1_500))
        value = rng.choice([1.0, -1.0, 1.0, -1.0, 0.0, np.nan])
        values.append(np.full(min(length, n - i), value))
        i += length
    return np.concatenate(values) * rng.uniform(low, high, n)


def config(**options) -> RunConfig:  # noqa: ANN003
    base = dict(initial_balance=10_000.0, margin_mode="isolated", fees=(0.0002, 0.0004), tiers=SINGLE,
                liquidation_fee_rate=0.0125, slippage="fixed", slippage_params={"bps": 2.0, "forced_bps": 10.0},
                rounding=False)
    return RunConfig(**(base | options))


def assert_identical(a, b, what: str) -> None:  # noqa: ANN001 - RunResult
    for name in OUTPUT_TABLES:
        left, right = a.frame(name), b.frame(name)
        assert left.columns == right.columns, (what, name)
        assert left.equals(right), f"{what}: {name} differs:\n{left}\n{right}"
    assert json.dumps(a.summary, sort_keys=True) == json.dumps(b.summary, sort_keys=True), what


def three_ways(data: MarketData, signals: np.ndarray, run_config: RunConfig):  # noqa: ANN201
    """(event, scan, kernel) results of one signal; the kernel's summary checked on the way."""
    kernel = run_kernel(data, signals, run_config)
    assert kernel is not None, f"the kernel did not run: {kernel_scope(data, run_config)}"
    summary = kernel.summary()
    result = kernel.result()
    event = run_backtest(data, SignalStrategy(signals), config=run_config)
    scan = run_signals(data, signals, config=run_config, kernel=False)
    assert_identical(event, scan, "event vs scan")
    assert_identical(scan, result, "scan vs kernel")
    assert json.dumps(summary, sort_keys=True) == json.dumps(result.summary, sort_keys=True)
    assert list(summary) == list(result.summary)  # the sweep's columns keep their order
    return event, scan, result


@pytest.mark.parametrize("leverage", [2.0, 10.0, 50.0])
@pytest.mark.parametrize("seed", [1, 2])
def test_random_signals_single_bracket(data: MarketData, leverage: float, seed: int) -> None:
    signals = random_signals(len(data), seed)
    _, _, result = three_ways(data, signals, config(leverage=leverage))
    fills = result.fills
    assert set(fills.get_column("side").to_list()) == {"buy", "sell"}
    assert result.funding.height > 0
    if leverage == 50.0:
        assert result.liquidations.height > 0


@pytest.mark.parametrize("leverage", [2.0, 10.0, 50.0])
def test_random_signals_across_brackets(data: MarketData, leverage: float) -> None:
    signals = random_signals(len(data), 5, low=0.5, high=min(4.0, 0.95 * leverage))  # margin for all
    run_config = config(leverage=leverage, tiers=TIERS, initial_balance=60_000.0)
    _, _, result = three_ways(data, signals, run_config)
    assert result.liquidations.height > 0 or leverage < 50.0
    positions = result.positions
    notional = (positions.get_column("qty").abs() * positions.get_column("mark_price")).to_numpy()
    assert np.count_nonzero(np.searchsorted([20_000.0, 100_000.0], notional, side="right") >= 2) > 0


@pytest.mark.parametrize("options", [
    {"path_policy": "ohlc"}, {"path_policy": "adaptive"}, {"sizing_basis": "equity"},
    {"liquidation_remainder": "trader"}, {"slippage": "none", "slippage_params": {}},
    {"liquidation_latency_ms": 30_000}, {"insurance_fund": 5.0}, {"gating": False},
], ids=lambda o: ",".join(o))
def test_other_options(data: MarketData, options: dict) -> None:
    three_ways(data, random_signals(len(data), 9), config(leverage=50.0, **options))


def test_bad_debt_when_the_forced_fill_is_beyond_bankruptcy(data: MarketData) -> None:
    # 100x with a 2 % forced slippage: takeovers fill beyond the bankruptcy price
    run_config = config(leverage=100.0, slippage_params={"bps": 0.0, "forced_bps": 200.0})
    _, _, result = three_ways(data, random_signals(len(data), 3), run_config)
    assert result.summary["bad_debt"] > 0
    assert result.liquidations.get_column("bad_debt").sum() > 0


def test_run_strategy_takes_the_kernel_with_the_same_result(data: MarketData) -> None:
    run_config = config(leverage=20.0)
    params = {"fast": 30, "slow": 240}
    event = run_backtest(data, "sma_cross", params=params, config=run_config)
    assert_identical(event, run_strategy(data, "sma_cross", params=params, config=run_config, kernel=True),
                     "run_strategy")
    assert_identical(event, run_strategy(data, "sma_cross", params=params, config=run_config, kernel=False), "scan")


def test_a_rejected_order_leaves_the_kernel_for_the_scan(data: MarketData) -> None:
    signals = random_signals(len(data), 4)
    signals[4_990:5_000] = -1.0
    signals[5_000:6_000] = 80.0  # the flip to 80x the wallet at 2x: insufficient margin, a rejection
    run_config = config(leverage=2.0)
    assert kernel_scope(data, run_config) is None
    assert run_kernel(data, signals, run_config) is None
    event = run_backtest(data, SignalStrategy(signals), config=run_config)
    assert event.rejections.height > 0
    assert_identical(event, run_signals(data, signals, config=run_config, kernel=True), "fallback")


@pytest.mark.parametrize(("options", "reason"), [
    ({"margin_mode": "cross"}, "isolated"), ({"rounding": True}, "rounding"),
    ({"slippage": "sqrt", "slippage_params": {}}, "slippage"), ({"venue": "bybit_linear"}, "binance_usdm"),
    ({"liquidation_mode": "tier_down"}, "full takeovers"),
])
def test_out_of_scope_configurations_say_why_and_run_on_the_scan(data: MarketData, options: dict,
                                                                 reason: str) -> None:
    run_config = config(leverage=10.0, **options)
    assert reason in kernel_scope(data, run_config)
    signals = random_signals(len(data), 6)
    assert run_kernel(data, signals, run_config) is None
    assert_identical(run_backtest(data, SignalStrategy(signals), config=run_config),
                     run_signals(data, signals, config=run_config, kernel=True), "out of scope")


def test_the_kernel_compiles_the_engines_own_helpers() -> None:
    from backtest.contracts import LinearContract
    from backtest.intrabar import _crossing
    from backtest.kernel import compiled
    from backtest.ticks import high_first, tick_times
    from backtest.venues.base import get_venue

    assert compiled.crossing.py_func is _crossing
    assert compiled.high_first.py_func is high_first
    assert compiled.tick_times.py_func is tick_times
    assert compiled.one_leg.py_func is get_venue("binance_usdm").formulas(LinearContract("USDT", 1.0)).one_leg


def test_without_numba_the_scan_gives_the_kernels_result(data: MarketData, tmp_path: Path) -> None:
    """A process where numba cannot be imported runs the Python path: the same summary."""
    signals = random_signals(len(data), 7)
    np.save(tmp_path / "signals.npy", signals)
    run_config = config(leverage=50.0)
    kernel = run_kernel(data, signals, run_config)
    assert kernel is not None
    script = f"""
import json, sys
sys.modules["numba"] = None  # import numba now raises ImportError
import numpy as np
from backtest import MarketData, RunConfig, run_signals
from backtest.kernel import have_numba, run_kernel
from backtest.venues.tiers import TierTable
from data_loaders.synthetic import engine_frames, generate_perpetual
assert not have_numba()
from backtest.kernel import ready, warm
assert warm() == 0.0 and not ready()
bars, funding = engine_frames(generate_perpetual(symbol={BTC!r}, days=20, crash_day=12, seed=3))
data = MarketData.from_frames({{{BTC!r}: bars}}, {{{BTC!r}: funding}}, timeframe="1m")
config = RunConfig(initial_balance=10_000.0, margin_mode="isolated", fees=(0.0002, 0.0004),
                   tiers=TierTable.from_rates([(0.0, 0.005)], max_leverage=[125.0], label="one bracket"),
                   liquidation_fee_rate=0.0125, slippage="fixed", slippage_params={{"bps": 2.0, "forced_bps": 10.0}},
                   rounding=False, leverage=50.0)
signals = np.load({str(tmp_path / "signals.npy")!r})
assert run_kernel(data, signals, config) is None
print(json.dumps(run_signals(data, signals, config=config).summary, sort_keys=True))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT,
                          env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin"}, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == json.dumps(kernel.summary(), sort_keys=True)


def test_a_warm_kernel_is_ready_and_serves_run_signals_by_default(data: MarketData) -> None:
    warm()
    assert ready()
    signals = random_signals(len(data), 8)
    run_config = config(leverage=10.0)
    assert_identical(run_signals(data, signals, config=run_config),
                     run_signals(data, signals, config=run_config, kernel=False), "default")
