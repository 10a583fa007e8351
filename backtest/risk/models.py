"""Fitting the return models by name: ``bootstrap``, ``garch``, ``jump`` (and ``gbm``).

:func:`fit_model` turns a :class:`~backtest.risk.paths.ReturnSample` into a fitted model;
the CLI and the benchmarks use it so that every entry point fits the same way.
"""
from __future__ import annotations

import difflib

import numpy as np

from backtest.risk.bootstrap import StationaryBootstrap
from backtest.risk.errors import FitError
from backtest.risk.garch import GarchT
from backtest.risk.jumps import MertonJump
from backtest.risk.paths import GBM, ReturnModel, ReturnSample

__all__ = ["MODEL_NAMES", "fit_model"]

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
