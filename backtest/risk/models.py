"""Fitting the return models by name: ``bootstrap``, ``garch``, ``jump`` (and ``gbm``).

:func:`fit_model` turns a :class:`~backtest.risk.paths.ReturnSample` into a fitted model;
the CLI and the benchmarks use it so that every entry point fits the same way.
:func:`fit_model_cached` does the same through a :class:`~backtest.risk.model_cache.ModelCache`
(``mc``, ``survive`` and the benchmark): a window already fitted is read back, not refitted.
"""
from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from backtest.risk.bootstrap import StationaryBootstrap
from backtest.risk.errors import FitError
from backtest.risk.garch import GarchT
from backtest.risk.jumps import MertonJump
from backtest.risk.paths import GBM, ReturnModel, ReturnSample

if TYPE_CHECKING:
    from backtest.risk.model_cache import ModelCache

__all__ = ["MODEL_NAMES", "FitOutcome", "fit_model", "fit_model_cached"]

#: Model names accepted by :func:`fit_model` and ``margincall mc --model``.
MODEL_NAMES = ("bootstrap", "garch", "jump", "gbm")


def fit_model(name: str, sample: ReturnSample) -> ReturnModel:
    """Fit the named model to ``sample``.

    Parameters
    ----------
    name : {"bootstrap", "garch", "jump", "gbm"}
        Stationary block bootstrap (Politis–White block length), GARCH(1,1)-t (ML),
        Merton jump diffusion (ML), or GBM with the sample's mean and standard deviation.
    sample : ReturnSample
        Returns (and intra-bar excursions) of the data.
    """
    if name == "bootstrap":
        return StationaryBootstrap.fit(sample)
    if name == "garch":
        return GarchT.fit(sample.returns, step_ms=sample.step_ms)
    if name == "jump":
        return MertonJump.fit(sample.returns, step_ms=sample.step_ms)
    if name == "gbm":
        return GBM(sigma_step=float(np.std(sample.returns)), drift_step=float(np.mean(sample.returns)),
                   step_ms=sample.step_ms)
    close = difflib.get_close_matches(name, MODEL_NAMES, n=1)
    hint = f" — did you mean {close[0]!r}?" if close else ""
    raise FitError(f"unknown return model {name!r}{hint}; choose one of {', '.join(MODEL_NAMES)}")


class FitOutcome(NamedTuple):
    """A fit through the cache: the model, whether it was read from the cache, the time (s),
    and, when the fit is new and the cache write was deferred, the write to call once the
    command that used the fit has succeeded (a command refused later leaves the store as it was)."""

    model: ReturnModel
    cached: bool
    seconds: float
    remember: Callable[[], None] = lambda: None


def fit_model_cached(name: str, sample: ReturnSample, *, cache: ModelCache | None,
                     partitions: Sequence[str | None] = (), defer: bool = False) -> FitOutcome:
    """:func:`fit_model` through ``cache`` (None: always fit).

    Parameters
    ----------
    name : str
        Model name (see :func:`fit_model`).
    sample : ReturnSample
        Returns of the data.
    cache : ModelCache or None
        Where fits are kept (``ModelCache.for_store(store.root)``).
    partitions : sequence of str
        Checksums of the data partitions the sample was read from (part of the key).
    defer : bool, default False
        Do not write a new fit yet: the outcome's ``remember()`` writes it.
    """
    started = time.perf_counter()
    if name not in MODEL_NAMES or cache is None:
        model = fit_model(name, sample)  # an unknown name raises FitError here
        return FitOutcome(model, False, time.perf_counter() - started)
    from backtest.risk.model_cache import cache_key

    key = cache_key(name, sample, partitions=partitions)
    model = cache.get(key, name, sample)
    if model is not None:
        return FitOutcome(model, True, time.perf_counter() - started)
    model = fit_model(name, sample)
    seconds = time.perf_counter() - started

    def remember() -> None:
        try:
            cache.put(key, name, model, fit_seconds=seconds, partitions=partitions)
        except OSError:
            pass  # a read-only store still fits; the cache is an optimisation, not a result

    if defer:
        return FitOutcome(model, False, seconds, remember)
    remember()
    return FitOutcome(model, False, seconds)
