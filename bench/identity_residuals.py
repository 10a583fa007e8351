"""Worst residual of the accounting identities per liquidation and margin mode.

Runs seeded random small runs (crashes, wicks, funding stress, forced slippage; the generator
of tests/engine/accounting.py, which also states the identities) in every mode and prints,
per mode, the worst conservation residual, the worst "bad debt counted once" residual, the
lowest wallet and isolated margin seen, and how many runs liquidated.

    .venv/bin/python bench/identity_residuals.py [--runs 150] [--seed 0]

It runs whatever ``backtest`` is first on ``sys.path`` (PYTHONPATH=/other/checkout to
measure another version of the engine with the same cases).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _accounting():  # noqa: ANN202 - the helper module, loaded from this checkout by path
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    spec = importlib.util.spec_from_file_location("identity_accounting",
                                                  ROOT / "tests" / "engine" / "accounting.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=150, help="runs per mode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    acc = _accounting()
    import backtest

    print(f"engine: {Path(backtest.__file__).parent}")
    print(f"{'liquidation_mode':<11} {'margin':<9} {'remainder':<15} {'runs':>5} {'liquidated':>10} "
          f"{'worst |conservation|':>21} {'worst |bad debt once|':>22} {'min wallet':>11} "
          f"{'min iso margin':>14} {'broken':>6}")
    for liq in ("full", "tier_down"):
        for margin in ("isolated", "cross"):
            for remainder in ("insurance_fund", "trader"):
                rng = np.random.default_rng(args.seed)
                worst_c = worst_o = 0.0
                min_w = min_m = np.inf
                liquidated = broken = 0
                for _ in range(args.runs):
                    case = acc.random_case(rng, liquidation_mode=liq, margin_mode=margin,
                                           remainder=remainder)
                    result = acc.run_case(case)
                    r = acc.residuals(result)
                    liquidated += result.liquidations.height > 0
                    worst_c = max(worst_c, abs(r["conservation"]))
                    worst_o = max(worst_o, abs(r["bad_debt_once"]))
                    min_w = min(min_w, r["min_wallet"])
                    min_m = min(min_m, r["min_isolated_margin"])
                    broken += abs(r["conservation"]) > 1e-6 or r["min_wallet"] < 0 \
                        or r["min_isolated_margin"] < 0
                print(f"{liq:<11} {margin:<9} {remainder:<15} {args.runs:>5} {liquidated:>10} "
                      f"{worst_c:>21.3e} {worst_o:>22.3e} {min_w:>11.2f} {min_m:>14.2f} {broken:>6}")


if __name__ == "__main__":
    main()
