"""Parameter sweeps: many runs of one strategy over leverage x parameter grids, in parallel.

Execution backends (:mod:`backtest.risk.executor`; :func:`map_chunks` is re-exported here):
all local cores (``concurrent.futures.ProcessPoolExecutor``, spawn context — polars is not
fork-safe) by default, or Ray (``backend="ray"``; a local instance, or an existing cluster
with ``ray_address``). Ray is an optional extra: ``pip install margincall[ray]``. Each worker
loads the market data once (:class:`DataSpec` is small and picklable; the loaded data is
cached per process) and runs chunks of configurations.

Per-configuration runners are pluggable (:class:`Runner`): :class:`EngineRunner` runs the
event engine (``backtest.run_backtest``), :class:`SignalRunner` feeds the strategy's own
vectorized signal (``Strategy.signal``, the one its event path trades) to the engine's array
path ``backtest.fastpath.run_signals``. ``runner="auto"`` takes the array path when the
strategy declares a signal, the event engine otherwise (with a note in the result).

Every grid point's parameters are checked by the strategy's own declarations before any run
(unknown names get a did-you-mean, bad values a message naming what is expected); points whose
parameters conflict (``sma_cross`` with ``fast >= slow``) are skipped and counted in a note.
A grid above :data:`MAX_SWEEP_RUNS` runs is refused before it is built.

Results land in one Parquet table (``sweep.parquet``: one row per configuration, the swept
values and the run summary) with a DuckDB view ``sweep`` (``sweep.duckdb``).
"""
from __future__ import annotations

import functools
import gc
import itertools
import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl

from backtest.risk.errors import RiskError
from backtest.risk.executor import check_workers, keep_freed_memory, map_chunks
from backtest.risk.signals import MARKET_FIELDS, has_signal, strategy_signals

__all__ = ["MAX_SWEEP_RUNS", "DataSpec", "EngineRunner", "Runner", "SignalMemo", "SignalRunner", "SweepConfig",
           "SweepResult", "check_configs", "make_grid", "map_chunks", "run_sweep", "write_sweep"]

#: Largest number of runs a sweep accepts (a grid is refused before it is built above it).
MAX_SWEEP_RUNS = 100_000


@dataclass(frozen=True)
class SweepConfig:
    """One point of a sweep: an id, a leverage and the strategy parameters."""

    run_id: int
    leverage: float
    params: tuple[tuple[str, Any], ...]

    @property
    def param_dict(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return dict(self.params)


def make_grid(leverages: Sequence[float], param_grid: Mapping[str, Sequence[Any]] | None = None,
              *, keep: Callable[[dict[str, Any]], bool] | None = None) -> list[SweepConfig]:
    """The Cartesian product of leverages and parameter values, numbered from 0.

    ``keep`` filters parameter combinations (e.g. ``lambda p: p["fast"] < p["slow"]``).
    """
    if not leverages:
        raise RiskError("sweep grid: no leverage given; pass e.g. --leverage 2,5,10")
    for lev in leverages:
        if isinstance(lev, bool) or not isinstance(lev, numbers.Real) or not (math.isfinite(lev) and lev > 0):
            raise RiskError(f"sweep grid: leverage {lev!r} is not a finite number > 0; pass e.g. --leverage 2,5,10")
    names = sorted(param_grid or {})
    values = [list((param_grid or {})[n]) for n in names]
    for name, vals in zip(names, values):
        if not vals:
            raise RiskError(f"sweep grid: parameter {name!r} has no values; pass e.g. --grid {name}=10,20")
    total = len(leverages) * math.prod(len(v) for v in values)
    if total > MAX_SWEEP_RUNS:
        sizes = " x ".join([f"{len(leverages)} leverages"] + [f"{len(v)} {n}" for n, v in zip(names, values)])
        raise RiskError(f"sweep grid: {total:,} runs ({sizes}) is more than the {MAX_SWEEP_RUNS:,} a sweep "
                        "accepts; use fewer values per parameter or split the sweep")
    configs = []
    for lev in leverages:
        for combo in itertools.product(*values):
            params = dict(zip(names, combo))
            if keep is None or keep(params):
                configs.append(SweepConfig(len(configs), float(lev), tuple(params.items())))
    if not configs:
        raise RiskError("sweep grid: every combination was filtered out")
    return configs


@dataclass(frozen=True)
class DataSpec:
    """Where a sweep's market data comes from (picklable; loaded once per worker).

    Either ``bars_path`` (a Parquet file in the engine's bar format, plus ``funding_path``) or
    ``store_root`` (a ``MarketStore`` read over ``[start_ms, end_ms)``).
    """

    symbol: str
    timeframe: str
    bars_path: str | None = None
    funding_path: str | None = None
    store_root: str | None = None
    exchange: str = "binanceusdm"
    start_ms: int | None = None
    end_ms: int | None = None

    def load(self) -> Any:
        """The ``MarketData`` (cached per process)."""
        return _load_market(self)


@functools.lru_cache(maxsize=4)
def _load_market(spec: DataSpec) -> Any:
    from backtest.market_data import MarketData

    if spec.bars_path:
        from backtest.errors import MarketDataError

        bars = _read_parquet(spec.bars_path, "--data", "bars")
        funding = ({spec.symbol: _read_parquet(spec.funding_path, "--funding", "funding")}
                   if spec.funding_path else None)
        try:
            return MarketData.from_frames({spec.symbol: bars}, funding, timeframe=spec.timeframe,
                                          exchange=spec.exchange)
        except MarketDataError as exc:
            raise RiskError(f"--data {spec.bars_path}: {exc}") from None
    if spec.store_root:
        from data_loaders.store import MarketStore

        return MarketData.from_store(MarketStore(spec.store_root), exchange=spec.exchange, symbols=[spec.symbol],
                                     timeframe=spec.timeframe, start=spec.start_ms, end=spec.end_ms)
    raise RiskError("sweep data: give bars_path (Parquet) or store_root (MarketStore)")


def _read_parquet(path: str, option: str, what: str) -> pl.DataFrame:
    """A sweep input file, or a clear error naming it (not a polars traceback)."""
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise RiskError(f"{option} {path}: expected a Parquet file of {what} in the engine's format, found a file "
                        f"that cannot be read as Parquet ({str(exc).splitlines()[0]}); write it with "
                        "polars' DataFrame.write_parquet, or sweep the store (leave --data out)") from None


class Runner(Protocol):
    """Runs one configuration and returns the run summary (CONTRACTS §6 keys)."""

    name: str

    def run(self, market: Any, config: SweepConfig, base_config: Any) -> dict[str, Any]:
        """Summary of one run."""
        ...


@dataclass(frozen=True)
class EngineRunner:
    """The event engine: ``run_backtest(market, strategy, params, config)``."""

    strategy: str
    name: str = "engine"

    def run(self, market: Any, config: SweepConfig, base_config: Any) -> dict[str, Any]:
        """See :class:`Runner`."""
        from backtest import run_backtest

        result = run_backtest(market, self.strategy, params=config.param_dict,
                              config=base_config.replace(leverage=config.leverage))
        return result.summary


@dataclass(frozen=True)
class SignalMemo:
    """One run's checked signal, kept for the next run of a worker (:meth:`SignalRunner.shared_signals`).

    Attributes
    ----------
    params : tuple of (str, value)
        The strategy parameters it was computed with, sorted.
    prepared : backtest.fastpath.PreparedSignals
        The checked signal and its action tables.
    config_free : bool
        The signal read no configuration field of its inputs (the same for any leverage).
    kernel_input : tuple of (ndarray, float, int), optional
        The one-symbol signal column, its largest finite ``|value|`` and its sign changes,
        for the compiled kernel (:func:`backtest.kernel.run_kernel`), computed once per signal.
    """

    params: tuple
    prepared: Any
    config_free: bool
    kernel_input: Any = None


@dataclass(frozen=True)
class SignalRunner:
    """The array path: the strategy's own signal (``Strategy.signal``) into ``run_signals``.

    The signal is computed for each run (it may depend on the leverage and fees, as ``hold``'s
    full-wallet size does); runs whose signal is the same array as the previous run's reuse
    its checked form (:meth:`signals` with ``previous``), so a leverage sweep of a signal that
    ignores the leverage prepares it once per parameter combination.
    """

    strategy: str
    name: str = "fastpath"
    #: Run in-scope configurations through the compiled kernel (``backtest.kernel``); the
    #: summaries are the same either way.
    kernel: bool = True

    def signals(self, market: Any, params: Mapping[str, Any], run_config: Any, previous: Any = None) -> Any:
        """The checked target exposures (``backtest.fastpath.PreparedSignals``) of one run;
        ``previous`` when it holds the very same values."""
        return self.shared_signals(market, params, run_config, previous).prepared

    def shared_signals(self, market: Any, params: Mapping[str, Any], run_config: Any,
                       previous: Any = None) -> SignalMemo:
        """The run's checked signal, computed only when it may differ from ``previous``'s.

        ``previous`` (a :class:`SignalMemo`, or a ``PreparedSignals``) is the last run's. When
        that run had the same parameters and its signal read only market fields of its inputs
        (:data:`~backtest.risk.signals.MARKET_FIELDS`: not the leverage, fees or sizing basis),
        the signal cannot differ and is not computed again (a leverage sweep of ``sma_cross``
        computes one signal per parameter set). Otherwise it is computed, and still reused
        when equal to the previous one (its check and action tables are kept).
        """
        key = tuple(sorted(params.items()))
        if isinstance(previous, SignalMemo) and previous.config_free and previous.params == key:
            return previous
        reads: set[str] = set()
        raw = strategy_signals(self.strategy, params, market, run_config, reads=reads)
        config_free = reads <= MARKET_FIELDS
        last = previous.prepared if isinstance(previous, SignalMemo) else previous
        if last is not None and np.array_equal(last.signals, raw, equal_nan=True):
            return SignalMemo(key, last, config_free, getattr(previous, "kernel_input", None))
        prepared = self.prepare(market, raw)
        return SignalMemo(key, prepared, config_free, _kernel_input(prepared) if self.kernel else None)

    def prepare(self, market: Any, raw: Any) -> Any:
        """``backtest.fastpath.prepare_signals`` (the check and the scan's action tables)."""
        from backtest.fastpath import prepare_signals

        return prepare_signals(market, raw)

    def run(self, market: Any, config: SweepConfig, base_config: Any, *,
            signals: Any = None, memo: SignalMemo | None = None) -> dict[str, Any]:
        """See :class:`Runner`; ``signals`` (from :meth:`signals`) skips recomputing them,
        ``memo`` (from :meth:`shared_signals`) also lets the kernel reuse its inputs.

        An in-scope configuration runs through the compiled kernel and keeps its summary only
        (``backtest.kernel.KernelRun.summary``: no table is built); any other through
        ``run_signals``. The summaries are the same.
        """
        from backtest.fastpath import run_signals

        run_config = base_config.replace(leverage=config.leverage)
        if memo is not None:
            signals = memo.prepared
        if signals is None:
            memo = self.shared_signals(market, config.param_dict, run_config)
            signals = memo.prepared
        if self.kernel and memo is not None:
            from backtest.kernel import run_kernel

            column = memo.kernel_input
            done = None if column is None else run_kernel(market, column[0], run_config, max_abs_signal=column[1],
                                                          side_changes=column[2])
            if done is not None:
                return done.summary()
        return run_signals(market, signals, config=run_config, kernel=False).summary


def _kernel_input(prepared: Any) -> tuple[np.ndarray, float, int] | None:
    """A prepared one-symbol signal's column, its largest finite ``|value|`` and its count of
    sign changes (what the kernel reads; None for several symbols), computed once per signal
    for its leverages."""
    from backtest.kernel import sign_changes

    signals = prepared.signals
    if signals.shape[1] != 1:
        return None
    column = np.ascontiguousarray(signals[:, 0])
    finite = np.abs(column)
    finite = finite[np.isfinite(finite)]
    return column, float(finite.max()) if finite.size else 0.0, sign_changes(column)


def pick_runner(strategy: str, runner: str = "auto", *, kernel: bool = True) -> Runner:
    """``"engine"``, ``"fastpath"`` or ``"auto"`` (the array path when the strategy declares a signal).

    ``kernel``: the array path runs in-scope configurations through the compiled kernel.
    """
    if runner not in ("auto", "engine", "fastpath"):
        raise RiskError(f"sweep runner must be 'auto', 'engine' or 'fastpath', found {runner!r}"
                        f"{_did_you_mean(runner, ('auto', 'engine', 'fastpath'))}")
    signal = has_signal(strategy)
    if runner == "engine" or (runner == "auto" and not signal):
        return EngineRunner(strategy)
    if not signal:
        raise RiskError(f"sweep: strategy {strategy!r} has no vectorized signal (it decides in on_bar), so it "
                        "cannot run on the array path; use --runner engine (or auto)")
    return SignalRunner(strategy, kernel=kernel)


def _did_you_mean(name: str, candidates: Sequence[str]) -> str:
    from backtest.errors import did_you_mean

    return did_you_mean(str(name), candidates)


def check_configs(strategy: str, configs: Sequence[SweepConfig]) -> tuple[list[SweepConfig], list[str]]:
    """The configurations whose parameters the strategy accepts, renumbered, and notes.

    Each distinct parameter set is checked once by the strategy's declarations (what ``run``
    does with ``--param``). An unknown name or a bad value raises; a conflicting combination
    (``ParameterConflict``) is skipped and counted in the notes.

    Raises
    ------
    backtest.errors.StrategyError
        Unknown strategy or parameter (with a suggestion), or a bad value.
    RiskError
        Every configuration conflicts.
    """
    from backtest.strategy import ParameterConflict, strategy_class

    cls = strategy_class(strategy)
    verdicts: dict[tuple[tuple[str, Any], ...], str | None] = {}
    kept: list[SweepConfig] = []
    for config in configs:
        if config.params not in verdicts:
            try:
                cls(**config.param_dict)
                verdicts[config.params] = None
            except ParameterConflict as exc:
                verdicts[config.params] = str(exc)
        if verdicts[config.params] is None:
            kept.append(SweepConfig(len(kept), config.leverage, config.params))
    conflicts = [v for v in verdicts.values() if v]
    if not kept:
        raise RiskError(f"sweep grid: every parameter combination conflicts, e.g. {conflicts[0]}")
    notes = []
    if conflicts:
        notes.append(f"skipped {len(configs) - len(kept)} of {len(configs)} runs ({len(conflicts)} parameter "
                     f"combinations) whose parameters conflict, e.g. {conflicts[0]}")
    return kept, notes


def _flat_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping):
            for sub, v in value.items():
                out[f"{key}_{sub}"] = v
        elif value is None or isinstance(value, (bool, int, float, str)):
            out[key] = value
        else:
            out[key] = str(value)
    return out


def _run_chunk(spec: DataSpec, runner: Runner, configs: Sequence[SweepConfig],
               base_config: Any) -> list[dict[str, Any]]:
    market = spec.load()
    rows = []
    prepared: Any = None  # the previous run's checked signal (chunks are grouped by params)
    for config in configs:
        t0 = time.perf_counter()
        # One run allocates many short-lived containers (orders, fill rows) and frees them
        # all at its end; cyclic collections during the run only rescan them. Collection is
        # off for the run and back on between runs (whatever a run leaks is collected then).
        collecting = gc.isenabled()
        gc.disable()
        try:
            if isinstance(runner, SignalRunner):
                prepared = runner.shared_signals(market, config.param_dict,
                                                 base_config.replace(leverage=config.leverage), previous=prepared)
                summary = runner.run(market, config, base_config, memo=prepared)
            else:
                summary = runner.run(market, config, base_config)
        finally:
            if collecting:
                gc.enable()
        row = {"run_id": config.run_id, "leverage": config.leverage}
        row.update({f"p_{k}": v for k, v in config.params})
        row.update(_flat_summary(summary))
        row["runner"] = runner.name
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    return rows


def _run_chunk_warm(spec: DataSpec, runner: Runner, configs: Sequence[SweepConfig],
                    base_config: Any) -> list[dict[str, Any]]:
    """:func:`_run_chunk` in a worker process (pool or Ray), warming the worker on its first task.

    Warming loads the market data once per worker; the data and the imported modules live as
    long as the worker, so ``gc.freeze()`` moves them to the permanent generation (later
    collections do not traverse them), and the allocator keeps freed memory
    (:func:`~backtest.risk.executor.keep_freed_memory`). The freeze count is the once-per-process mark: no module
    state is kept.
    """
    if gc.get_freeze_count() == 0:
        keep_freed_memory()
        spec.load()
        if getattr(runner, "kernel", False):  # compiled (or loaded from disk) once per worker
            from backtest.kernel import warm

            warm()
        gc.freeze()
    return _run_chunk(spec, runner, configs, base_config)


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: the table and where it was written (None when not written)."""

    table: pl.DataFrame
    parquet_path: Path | None = None
    duckdb_path: Path | None = None
    seconds: float = 0.0
    backend: str = "local"
    runner: str = "engine"
    extra: dict[str, Any] = field(default_factory=dict)


def _chunks(configs: Sequence[SweepConfig], size: int) -> list[list[SweepConfig]]:
    return [list(configs[i:i + size]) for i in range(0, len(configs), size)]


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sweep runs", unit="run", disable=not enabled)


def run_sweep(spec: DataSpec, strategy: str, configs: Sequence[SweepConfig], *, base_config: Any = None,
              runner: str | Runner = "auto", workers: int | None = None, backend: str = "local",
              ray_address: str | None = None, chunk_size: int | None = None, progress: bool = True,
              out_dir: str | Path | None = None, kernel: bool = True) -> SweepResult:
    """Run every configuration and collect one row per run.

    Parameters
    ----------
    spec : DataSpec
        The market data.
    strategy : str
        Strategy name, ``module:Class`` or ``path/file.py:Class``.
    configs : sequence of SweepConfig
        From :func:`make_grid`; checked by :func:`check_configs` (conflicting parameter sets
        are skipped, noted in ``SweepResult.extra["notes"]``).
    base_config : RunConfig, optional
        Shared run configuration; each run replaces the leverage.
    runner : {"auto", "engine", "fastpath"} or Runner
        Per-configuration runner.
    workers : int, optional
        Worker processes (default: all local cores). ``1`` runs in this process.
    backend : {"local", "ray"}
        Process pool or Ray tasks.
    ray_address : str, optional
        Address of an existing Ray cluster (implies ``backend="ray"``).
    chunk_size : int, optional
        Configurations per task (default: about 8 tasks per worker, for balance).
    progress : bool, default True
        Show a progress bar of runs done.
    out_dir : path, optional
        Write ``sweep.parquet`` and ``sweep.duckdb`` there.
    kernel : bool
        The array path runs one-symbol isolated configurations through the compiled kernel
        (``backtest.kernel``; the same table, faster); False: the Python array path.
    """
    from backtest.config import RunConfig

    if not configs:
        raise RiskError("sweep: no configurations to run")
    if ray_address:
        backend = "ray"
    if backend not in ("local", "ray"):
        raise RiskError(f"sweep backend must be 'local' or 'ray', found {backend!r}")
    workers = check_workers(workers, backend)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise RiskError(f"sweep chunk_size: expected a whole number >= 1, found {chunk_size!r}")
    base = base_config or RunConfig()
    configs, notes = check_configs(strategy, configs)
    chosen = pick_runner(strategy, runner, kernel=kernel) if isinstance(runner, str) else runner
    if runner == "auto" and isinstance(chosen, EngineRunner):
        notes.append(f"{strategy} has no vectorized signal (it decides in on_bar): every run used the event engine")
    size = chunk_size or max(1, math.ceil(len(configs) / (workers * 8)))
    # runs sharing parameters (hence one signal) land in the same chunk, leverages inside
    ordered = sorted(configs, key=lambda c: (repr(c.params), c.leverage, c.run_id))
    chunks = _chunks(ordered, size)
    t0 = time.perf_counter()
    bar = _progress(len(configs), progress)
    try:
        parts = map_chunks(_sweep_chunk, (spec, chosen, base), chunks, workers=workers, backend=backend,
                           ray_address=ray_address, on_done=lambda chunk: bar.update(len(chunk)))
    finally:
        bar.close()
    rows = [row for part in parts for row in part]
    table = pl.DataFrame(rows, infer_schema_length=None).sort("run_id")
    result = SweepResult(table=table, seconds=time.perf_counter() - t0, backend=backend, runner=chosen.name,
                         extra={"notes": notes})
    if out_dir is not None:
        parquet, duck = write_sweep(table, out_dir)
        result = SweepResult(table=table, parquet_path=parquet, duckdb_path=duck, seconds=result.seconds,
                             backend=backend, runner=chosen.name, extra={"notes": notes})
    return result


def _sweep_chunk(spec: DataSpec, runner: Runner, base_config: Any, configs: Sequence[SweepConfig],
                 warm: bool = True) -> list[dict[str, Any]]:
    return (_run_chunk_warm if warm else _run_chunk)(spec, runner, configs, base_config)


def write_sweep(table: pl.DataFrame, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``sweep.parquet`` and a DuckDB file with a view ``sweep`` over it."""
    import duckdb

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    parquet = folder / "sweep.parquet"
    tmp = folder / ".sweep.parquet.tmp"
    table.write_parquet(tmp)
    tmp.replace(parquet)
    duck = folder / "sweep.duckdb"
    if duck.exists():
        duck.unlink()
    con = duckdb.connect(str(duck))
    try:
        path = str(parquet.resolve()).replace("'", "''")
        con.execute(f"CREATE VIEW sweep AS SELECT * FROM read_parquet('{path}')")
    finally:
        con.close()
    return parquet, duck


