"""The reference workload (../shared/bench/WORKLOAD.md) through margincall's public API.

SMA(50)/SMA(200) always-in-the-market on 525,600 one-minute bars of a synthetic BTC-like USDT
perpetual, 10,000 USDT, 10x isolated, 1x-wallet notional per position, 0.04 % taker fee,
funding every 8 h, liquidation on the mark price. Prints ONE JSON line of figures.

    .venv/bin/python bench/run_workload.py --data DIR [--path event|array|both]
        [--crosscheck] [--generate] [--rounding] [--venue NAME]

``--path event`` runs ``backtest.run_backtest(data, "sma_cross")`` (the Python ``on_bar``
loop); ``--path array`` computes the same signal with polars and runs
``backtest.fastpath.run_signals``; ``--path both`` runs both in one process and adds the
comparison. ``--crosscheck`` uses the textbook configuration of WORKLOAD.md (one 0.5 %
maintenance tier, no clearance fee, fixed 0.1 % liquidation slippage); the default uses the
venue's Binance BTCUSDT tiers in force in 2023, its clearance fee and square-root-impact
liquidation slippage. ``--generate`` writes the workload into DIR first when it is missing
(with ../shared/bench/gen_workload.py).
"""
from __future__ import annotations

import time

_T_SCRIPT = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

BARS_FILE = "btcusdt_perp_1m.parquet"
FUNDING_FILE = "btcusdt_funding_8h.parquet"
SYMBOL = "BTC/USDT:USDT"
#: The symbol the workload's candles are run as under an inverse (coin-margined) venue.
INVERSE_SYMBOL = "BTC/USD:BTC"


def is_inverse(venue: str) -> bool:
    """True for a venue trading inverse contracts (the workload then runs as BTCUSD in BTC)."""
    from backtest.venues.base import get_venue

    return get_venue(venue).contract_type == "inverse"
FAST, SLOW = 50, 200


# ---------------------------------------------------------------------- process clock
def process_age_s() -> float | None:
    """Seconds since this process started (kernel start time, /proc), or None off Linux."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read().decode()
        fields = stat[stat.rindex(")") + 2:].split()
        start_ticks = int(fields[19])  # field 22 of proc(5): starttime, clock ticks after boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


_STARTUP_S = (process_age_s() or 0.0) - (time.perf_counter() - _T_SCRIPT)


def total_s() -> float:
    """Whole-process seconds so far: interpreter start-up plus this script's run."""
    return max(_STARTUP_S, 0.0) + time.perf_counter() - _T_SCRIPT


# ---------------------------------------------------------------------- data
def shared_dir() -> Path:
    """../shared (or $MARGINCALL_SHARED)."""
    return Path(os.environ.get("MARGINCALL_SHARED", PROJECT.parent / "shared"))


def ensure_workload(directory: Path, generate: bool) -> None:
    """Check that DIR holds the workload; write it with gen_workload.py when asked to."""
    missing = [name for name in (BARS_FILE, FUNDING_FILE) if not (directory / name).is_file()]
    if not missing:
        return
    generator = shared_dir() / "bench" / "gen_workload.py"
    if not generate:
        raise SystemExit(
            f"run_workload: {directory} lacks {', '.join(missing)}; expected the files written by "
            f"gen_workload.py. Add --generate, or run `.venv/bin/python {generator} --out "
            f"{directory}`")
    if not generator.is_file():
        raise SystemExit(
            f"run_workload: cannot generate the workload: {generator} not found (set "
            "MARGINCALL_SHARED to the folder holding bench/gen_workload.py, or pass --data DIR "
            f"with {BARS_FILE} and {FUNDING_FILE})")
    spec = importlib.util.spec_from_file_location("gen_workload", generator)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with contextlib.redirect_stdout(sys.stderr):  # its manifest; stdout carries our one line
        module.main(["--out", str(directory)])


def load_data(directory: Path, venue: str = "binance_usdm") -> Any:
    """The workload as :class:`backtest.MarketData` (bars with mark columns, 8 h funding),
    with ``venue``'s built-in market spec and tiers."""
    import polars as pl

    from backtest import MarketData

    bars = pl.read_parquet(directory / BARS_FILE)
    funding = pl.read_parquet(directory / FUNDING_FILE)
    exchange = "binanceusdm" if venue == "binance_usdm" else venue
    symbol = INVERSE_SYMBOL if is_inverse(venue) else SYMBOL
    return MarketData.from_frames({symbol: bars}, {symbol: funding}, timeframe="1m",
                                  exchange=exchange)


# ---------------------------------------------------------------------- configuration
class ForcedOnly:
    """Slippage on liquidation fills only: the workload's flips fill at the bar's open.

    Parameters
    ----------
    model : SlippageModel
        The model applied to forced (liquidation) orders.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def impact(self, *, qty: float, price: float, bar_high: float, bar_low: float,
               bar_volume: float, forced: bool) -> float:
        """``model``'s impact for forced orders, 0 for strategy orders."""
        if not forced:
            return 0.0
        return self.model.impact(qty=qty, price=price, bar_high=bar_high, bar_low=bar_low,
                                 bar_volume=bar_volume, forced=True)

    def __repr__(self) -> str:
        return f"ForcedOnly({self.model!r})"


def workload_config(crosscheck: bool, rounding: bool = False, venue: str = "binance_usdm",
                    first_price: float | None = None) -> Any:
    """RunConfig of WORKLOAD.md: default (venue rules) or the textbook cross-check rules.

    Under an inverse venue the account holds 10,000 USDT's worth of BTC at ``first_price``.
    """
    from backtest import RunConfig
    from backtest.slippage import FixedBps, SqrtImpact

    balance = 10_000.0 / first_price if is_inverse(venue) and first_price else 10_000.0
    common = dict(initial_balance=balance, leverage=10.0, margin_mode="isolated",
                  position_mode="one_way", fees=(0.0002, 0.0004), sizing_basis="wallet",
                  rounding=rounding, liquidation_remainder="insurance_fund", venue=venue)
    if not crosscheck:
        return RunConfig(slippage=ForcedOnly(SqrtImpact()), **common)
    from backtest.venues.tiers import Tier, TierTable

    table = TierTable([Tier(floor=0.0, cap=math.inf, max_leverage=125.0, mmr=0.005, cum=0.0)],
                      label="workload cross-check: one tier 0.5 %")
    return RunConfig(slippage=FixedBps(bps=0.0, forced_bps=10.0), tiers=table,
                     liquidation_fee_rate=0.0, **common)


def sma_signals(data: Any) -> Any:
    """The workload signal as target exposures: +1 / -1, NaN where no decision (warm-up, tie).

    Uses polars' ``rolling_mean`` like ``strategies.sma_cross`` so both paths see the same
    floats.
    """
    import numpy as np

    close = data.frames[data.symbols[0]].get_column("close")
    fast = close.rolling_mean(FAST).to_numpy()
    slow = close.rolling_mean(SLOW).to_numpy()
    with np.errstate(invalid="ignore"):
        return np.where(fast > slow, 1.0, np.where(fast < slow, -1.0, np.nan))


# ---------------------------------------------------------------------- runs
def run_path(path: str, data: Any, config: Any) -> tuple[Any, float]:
    """Run one path; return (RunResult, seconds of the run including the signal)."""
    from backtest import run_backtest, run_signals

    start = time.perf_counter()
    if path == "event":
        result = run_backtest(data, "sma_cross", params={"fast": FAST, "slow": SLOW}, config=config)
    else:
        result = run_signals(data, sma_signals(data), config=config)
    return result, time.perf_counter() - start


def iso(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def figures(result: Any, loop_s: float, n_bars: int) -> dict[str, Any]:
    """The figures of one run (money in USDT)."""
    s = result.summary
    liq = result.liquidations
    liq_ts = [iso(int(v)) for v in liq.get_column("ts").dt.epoch("ms").to_list()]
    return {
        "loop_s": round(loop_s, 4),
        "bars_per_s": round(n_bars / loop_s) if loop_s > 0 else None,
        "fills": s["n_fills"],
        "n_liquidations": s["n_liquidations"],
        "liquidation_ts": liq_ts,
        "final_equity": s["final_equity"],
        "funding_total": s["funding_received"] - s["funding_paid"],
        "fees_total": s["fees"] + s.get("liquidation_fees", 0.0),
        "trading_fees": s["fees"],
        "liquidation_fees": s.get("liquidation_fees", 0.0),
        "slippage_cost": s["slippage_cost"],
        "bad_debt": s["bad_debt"],
    }


def compare(a: Any, b: Any) -> dict[str, bool]:
    """Table-by-table exact equality of two RunResults."""
    from backtest.results import OUTPUT_TABLES

    out = {name: a.frame(name).equals(b.frame(name)) for name in OUTPUT_TABLES}
    out["summary"] = json.dumps(a.summary, sort_keys=True) == json.dumps(b.summary, sort_keys=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="folder with the workload files")
    parser.add_argument("--path", choices=("event", "array", "both"), default="event")
    parser.add_argument("--crosscheck", action="store_true",
                        help="textbook rules of WORKLOAD.md instead of the venue's")
    parser.add_argument("--generate", action="store_true", help="generate DIR when it is missing")
    parser.add_argument("--rounding", action="store_true",
                        help="round quantities to the lot and prices to the tick (default off: "
                             "the workload sizes exactly 1x the wallet)")
    parser.add_argument("--venue", default="binance_usdm",
                        help="registered venue whose rules and built-in data apply "
                             "(default binance_usdm)")
    args = parser.parse_args(argv)
    ensure_workload(args.data, args.generate)
    t_load = time.perf_counter()
    data = load_data(args.data, args.venue)
    first = float(data.frames[data.symbols[0]].get_column("open")[0])
    config = workload_config(args.crosscheck, args.rounding, args.venue, first)
    load_s = time.perf_counter() - t_load
    n = len(data)
    out: dict[str, Any] = {"bench": "workload", "path": args.path,
                           "config": "crosscheck" if args.crosscheck else "venue",
                           "venue": args.venue, "bars": n,
                           "load_s": round(load_s, 4)}
    if args.path == "both":
        event, event_s = run_path("event", data, config)
        array, array_s = run_path("array", data, config)
        out["event"] = figures(event, event_s, n)
        out["array"] = figures(array, array_s, n)
        out["identical"] = compare(event, array)
    else:
        result, loop_s = run_path(args.path, data, config)
        out.update(figures(result, loop_s, n))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    out["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
    out["total_s"] = round(total_s(), 4)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
