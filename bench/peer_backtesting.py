"""Peer figure: the reference workload through backtesting.py, whole process (prints figures; not a test).

Pairs with ``bench/run_workload.py --path event`` for the ratio issue 10 asks for (margincall's
whole-process time over backtesting.py's, <= 0.22). backtesting.py is a bench-only optional
dependency, not one of margincall's: install it anywhere and pass ``--lib DIR``, e.g.
``pip install --target /tmp/btlib backtesting==0.6.6``.

The strategy is WORKLOAD.md's SMA(50) x SMA(200), always in the market, 10x, 0.04 % fee,
1x-wallet notional (``size=0.1`` of the liquidity at ``margin=0.1``). backtesting.py sizes
in whole units, so prices are divided by 1,000 (one unit = 1/1,000 BTC) to keep the fills;
it has no funding and no liquidation, so it does less than margincall on the same bars.

Run: ``.venv/bin/python bench/peer_backtesting.py --data /tmp/mc-workload --lib /tmp/btlib [--rounds 4]``
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

_CHILD = r'''
import sys, time
t0 = time.perf_counter()
import pandas as pd
from backtesting import Backtest, Strategy
df = pd.read_parquet(sys.argv[1])
df = df.rename(columns=str.capitalize).set_index(pd.to_datetime(df["ts"], unit="ms", utc=True))
df = df[["Open", "High", "Low", "Close", "Volume"]].copy()
df[["Open", "High", "Low", "Close"]] /= 1000
def sma(x, n):
    return pd.Series(x).rolling(n).mean().to_numpy()
class Cross(Strategy):
    def init(self):
        self.f = self.I(sma, self.data.Close, 50)
        self.s = self.I(sma, self.data.Close, 200)
    def next(self):
        f, s = self.f[-1], self.s[-1]
        if f > s and not self.position.is_long:
            self.buy(size=0.1)
        elif f < s and not self.position.is_short:
            self.sell(size=0.1)
t1 = time.perf_counter()
stats = Backtest(df, Cross, cash=10_000, commission=0.0004, margin=0.1, exclusive_orders=True,
                 finalize_trades=True).run()
print(stats["# Trades"], round(time.perf_counter() - t1, 3))
'''


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.strip()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/mc-workload"))
    parser.add_argument("--lib", type=Path, required=True, help="folder holding backtesting.py (pip install --target)")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    bars = args.data / "btcusdt_perp_1m.parquet"
    peer_env = {**os.environ, "PYTHONPATH": str(args.lib), "TQDM_DISABLE": "1"}
    ours = [sys.executable, str(Path(__file__).with_name("run_workload.py")), "--data", str(args.data), "--path", "event"]
    ratios = []
    for k in range(args.rounds):
        peer_s, peer_out = _timed([sys.executable, "-W", "ignore", "-c", _CHILD, str(bars)], peer_env)
        our_s, _ = _timed(ours, dict(os.environ))
        ratios.append(our_s / peer_s)
        print(f"round {k + 1}: backtesting.py {peer_s:.2f} s (trades, loop s: {peer_out}); "
              f"margincall event path {our_s:.2f} s; ratio {our_s / peer_s:.3f}")
    ratios.sort()
    print(f"median ratio {ratios[len(ratios) // 2]:.3f} (load {os.getloadavg()[0]:.2f}, 2 cores)")


if __name__ == "__main__":
    main()
