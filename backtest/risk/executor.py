"""The parallel executor of the sweeps and the platform view: this process, a process pool or Ray.

:func:`map_chunks` runs a module-level function over chunks of work on the chosen backend:
all local cores (``concurrent.futures.ProcessPoolExecutor``, spawn context — polars is not
fork-safe) by default, or Ray (``backend="ray"``; a local instance, or an existing cluster
with ``ray_address``). Ray is an optional extra: ``pip install margincall[ray]``.
:func:`keep_freed_memory` is the worker-only allocator setting the sweep's warm-up applies.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from backtest.risk.errors import RiskError

__all__ = ["MAX_RAY_WORKERS", "MAX_WORKERS_PER_CORE", "check_workers", "keep_freed_memory", "map_chunks"]

#: Local worker processes per core at most (more only add start-up time and memory).
MAX_WORKERS_PER_CORE = 4
#: Ray tasks in flight at most (a cluster's size is not known here).
MAX_RAY_WORKERS = 4_096


def check_workers(workers: Any, backend: str) -> int:
    """``workers`` checked for ``backend`` (None: all local cores), else a RiskError naming the limit."""
    import os

    cores = os.cpu_count() or 1
    if workers is None:
        return cores
    limit = MAX_WORKERS_PER_CORE * cores if backend == "local" else MAX_RAY_WORKERS
    where = f"this machine has {cores} cores" if backend == "local" else "Ray tasks in flight"
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= limit:
        raise RiskError(f"sweep workers: expected a whole number from 1 to {limit} ({where}), found "
                        f"{workers!r}; pass e.g. --workers {cores}")
    return workers


def keep_freed_memory() -> None:
    """Let this worker's C allocator reuse the memory of one run's arrays in the next.

    Each run builds and frees a few dozen per-bar arrays (4 MiB each for a year of 1m bars).
    glibc returns such blocks to the kernel (``mmap`` above its threshold, heap trimming),
    so the next run page-faults the same memory in again. Here blocks up to 32 MiB come
    from the heap and the heap is not trimmed below 1 GiB: a worker keeps (at most) its
    peak footprint, which it reaches again on its next run anyway. No-op off glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    mallopt(m_trim_threshold, 1 << 30)


def map_chunks(function: Callable[..., Any], shared: tuple[Any, ...], chunks: Sequence[Any], *,
               workers: int | None = None, backend: str = "local", ray_address: str | None = None,
               on_done: Callable[[Any], Any] | None = None) -> list[Any]:
    """``function(*shared, chunk)`` for every chunk on the sweep's backends, results in chunk order.

    The one executor of the sweeps and the platform view (``backtest.platform``): ``workers=1``
    runs here (with ``warm=False``, so no worker-only allocator settings touch this process),
    ``backend="local"`` on a spawn-context process pool, ``"ray"`` (or a ``ray_address``) as
    Ray tasks with ``shared`` put in the object store once. ``function`` must be a module-level
    function taking ``warm`` as a keyword (True in worker processes).

    Raises
    ------
    RiskError
        Bad ``workers``/``backend``, or Ray requested but not installed.
    """
    if ray_address:
        backend = "ray"
    if backend not in ("local", "ray"):
        raise RiskError(f"sweep backend must be 'local' or 'ray', found {backend!r}")
    workers = check_workers(workers, backend)
    done = on_done or (lambda chunk: None)
    results: list[Any] = [None] * len(chunks)
    if backend == "ray":
        return _run_ray(function, shared, chunks, workers, ray_address, done)
    if workers == 1 or len(chunks) == 1:
        for i, chunk in enumerate(chunks):
            results[i] = function(*shared, chunk, warm=False)
            done(chunk)
        return results
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=context) as pool:
        futures = {pool.submit(function, *shared, chunk, warm=True): i for i, chunk in enumerate(chunks)}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            done(chunks[i])
    return results


def _run_ray(function: Callable[..., Any], shared: tuple[Any, ...], chunks: Sequence[Any], workers: int,
             address: str | None, done: Callable[[Any], Any]) -> list[Any]:
    try:
        import ray
    except ImportError:
        raise RiskError("sweep on Ray: ray is not installed; `pip install margincall[ray]` "
                        "(or run without --ray to use the local process pool)") from None
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(function)
        refs = [ray.put(value) for value in shared]
        pending = {remote.remote(*refs, chunk, warm=True): i for i, chunk in enumerate(chunks)}
        results: list[Any] = [None] * len(chunks)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i = pending.pop(ref)
                results[i] = ray.get(ref)
                done(chunks[i])
        return results
    finally:
        if started:
            ray.shutdown()
