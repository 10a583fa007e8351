"""``margincall sweep --keep-runs``: each configuration's run folder beside the sweep's table.

The sweep itself keeps one summary row per configuration (its workers never build run
folders: that is what makes it fast). Kept runs are the same configurations run again
through the event engine in this process, each written as a complete run folder
(``RunResult.write``: atomic, checksummed) named ``run_<run_id>`` directly under the sweep's
output folder, so ``margincall report OUT`` compares them. The folders are checked before the
sweep starts (:func:`check_kept_runs`): an existing one is never replaced.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["check_kept_runs", "keep_runs", "run_folder_name"]


def run_folder_name(run_id: int) -> str:
    """The kept run folder of configuration ``run_id`` (``run_0007``: natural order)."""
    return f"run_{int(run_id):04d}"


def check_kept_runs(out_dir: str | Path, run_ids: Sequence[int]) -> None:
    """Refuse, before any work, a sweep whose kept run folders already exist.

    Raises
    ------
    backtest.runfolder.RunFolderError
        Naming the folder, what was found and the fix (another ``--out``).
    """
    from backtest.runfolder import RunFolderError

    folder = Path(out_dir)
    for run_id in run_ids:
        target = folder / run_folder_name(run_id)
        if target.exists() or target.is_symlink():
            raise RunFolderError(f"sweep --keep-runs: {target}: expected a new folder for the kept run, "
                                 "found one already there (an earlier sweep's?); the sweep replaces no "
                                 "run: pass another --out")


def keep_runs(market: Any, strategy: str, table: Any, out_dir: str | Path, *,
              base_config: Any = None) -> list[Path]:
    """Run each configuration of a finished sweep's ``table`` through the event engine and
    write its run folder under ``out_dir``; return the folders in ``run_id`` order.

    Parameters
    ----------
    market : MarketData
        The sweep's market data.
    strategy : str
        The sweep's strategy.
    table : polars.DataFrame
        The sweep's rows (``run_id``, ``leverage``, ``p_<name>`` parameter columns).
    out_dir : path
        The sweep's output folder.
    base_config : RunConfig, optional
        The sweep's shared run configuration (each run replaces the leverage).
    """
    from backtest import RunConfig, run_backtest

    base = base_config or RunConfig()
    params = [c for c in table.columns if c.startswith("p_")]
    written = []
    for row in table.sort("run_id").iter_rows(named=True):
        config = base.replace(leverage=row["leverage"], name=run_folder_name(row["run_id"]))
        result = run_backtest(market, strategy, params={c[2:]: row[c] for c in params}, config=config)
        written.append(result.write(Path(out_dir) / run_folder_name(row["run_id"])))
    return written
