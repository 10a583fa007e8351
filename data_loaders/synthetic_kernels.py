"""Numerical kernels of the synthetic market (GARCH-t paths, AR(1) premium, Brownian-bridge
extremes, the crash profile, funding settlements): pure numpy on one-minute arrays, driven by
:func:`data_loaders.synthetic.generate_perpetual` (model and rules: ``docs/synthetic.md``)."""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.signal import lfilter

from data_loaders.synthetic_model import (
    DAY_MINUTES,
    FUNDING_INTERVAL_MINUTES,
    MINUTE_MS,
    SyntheticModel,
    SyntheticPath,
    _PREMIUM_BURN_IN,
    funding_rate_from_premium,
)

if TYPE_CHECKING:
    from data_loaders.synthetic import SyntheticMarket

def _garch_path(
    z: np.ndarray,
    seasonal: np.ndarray,
    jumps: np.ndarray,
    feed: np.ndarray,
    *,
    sigma: float,
    alpha: float,
    beta: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the GARCH(1,1) recursion; returns (log-returns, conditional volatility).

    ``jumps`` are part of the returns and feed the variance (turbulence follows a jump);
    ``feed`` are extra moves (the crash) that raise the variance without being part of the
    returned returns. The variance is capped at ``(8 sigma)**2`` so the recursion cannot run
    away, and works on de-seasonalised shocks so the intraday pattern does not leak into the
    persistence.
    """
    omega = sigma * sigma * (1.0 - alpha - beta)
    h_max = (8.0 * sigma) ** 2
    h = sigma * sigma
    z_l, s_l, j_l, f_l = z.tolist(), seasonal.tolist(), jumps.tolist(), feed.tolist()
    returns = [0.0] * len(z_l)
    vols = [0.0] * len(z_l)
    sqrt = math.sqrt
    for t in range(len(z_l)):
        scale = s_l[t] * sqrt(h)
        shock = scale * z_l[t] + j_l[t]
        returns[t] = shock
        vols[t] = scale
        u = (shock + f_l[t]) / s_l[t]
        h = omega + alpha * u * u + beta * h
        if h > h_max:
            h = h_max
    return np.asarray(returns), np.asarray(vols)


def _ar1(noise: np.ndarray, phi: float, stationary_std: float, first: float) -> np.ndarray:
    """AR(1) ``x_t = phi x_{t-1} + sd e_t`` started at ``first`` (stationary draw), via lfilter."""
    drive = stationary_std * math.sqrt(1.0 - phi * phi) * noise  # a new array: draws stay intact
    drive[0] = first
    return lfilter([1.0], [1.0, -phi], drive)


def _ema(x: np.ndarray, span: int) -> np.ndarray:
    k = 2.0 / (span + 1.0)
    y, _ = lfilter([k], [1.0, -(1.0 - k)], x, zi=[(1.0 - k) * x[0]])
    return y


def _bridge_extremes(x: np.ndarray, sigma: np.ndarray, u_hi: np.ndarray,
                     u_lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact draws of a Brownian bridge's max and min (log offsets from the open).

    For a bridge from 0 to ``x`` with variance ``sigma**2``,
    ``P(max > m) = exp(-2 m (m - x) / sigma**2)``; inverting with a uniform ``u`` gives
    ``m = (x + sqrt(x**2 - 2 sigma**2 ln u)) / 2`` (the min mirrors it).
    """
    two_var = 2.0 * sigma * sigma
    hi = 0.5 * (x + np.sqrt(x * x - two_var * np.log(u_hi)))
    lo = 0.5 * (x - np.sqrt(x * x - two_var * np.log(u_lo)))
    return hi, lo


def _crash_profile(n: int, start_minute: int | None,
                   model: SyntheticModel) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Crash log-return increments and crash premium per minute: (returns, premium, trough)."""
    returns = np.zeros(n)
    premium = np.zeros(n)
    if start_minute is None or start_minute >= n:
        return returns, premium, None
    fall, rebound = model.crash_fall_minutes, model.crash_rebound_minutes
    depth = math.log1p(-model.crash_index_drop)
    u = np.arange(1, fall + 1) / fall
    fall_level = depth * (3 * u**2 - 2 * u**3)  # smoothstep: slow start, fastest mid-fall
    tau = rebound / 3.0
    k = np.arange(1, rebound + 1)
    recovered = (1 - np.exp(-k / tau)) / (1 - math.exp(-rebound / tau))
    rebound_level = depth * (1 - model.crash_rebound_fraction * recovered)
    level = np.concatenate([fall_level, rebound_level])
    increments = np.diff(level, prepend=0.0)
    stop = min(n, start_minute + level.size)
    returns[start_minute:stop] = increments[: stop - start_minute]
    prem_fall = model.crash_premium * (3 * u**2 - 2 * u**3)
    prem_after = model.crash_premium * np.exp(-k / model.crash_premium_minutes)
    prem = np.concatenate([prem_fall, prem_after])
    premium[start_minute:stop] = prem[: stop - start_minute]
    trough = start_minute + fall - 1
    return returns, premium, trough if trough < n else None


@dataclass(frozen=True)
class _Draws:
    """Every random number of one market, drawn in a fixed order."""

    z: np.ndarray
    jump_mask: np.ndarray
    jump_size: np.ndarray
    slow: np.ndarray
    fast: np.ndarray
    u_index: np.ndarray
    u_last: np.ndarray
    spike_mask: np.ndarray
    spike_size: np.ndarray
    spike_up: np.ndarray
    volume_noise: np.ndarray
    regime: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, model: SyntheticModel) -> "_Draws":
        burn = n + _PREMIUM_BURN_IN
        dof = model.t_dof
        return cls(
            z=np.clip(rng.standard_t(dof, n) / math.sqrt(dof / (dof - 2.0)), -8.0, 8.0),
            jump_mask=rng.random(n) < model.jump_prob,
            jump_size=rng.laplace(0.0, model.jump_scale, n),
            slow=rng.standard_normal(burn),
            fast=rng.standard_normal(burn),
            u_index=1.0 - rng.random((2, n)),
            u_last=1.0 - rng.random((2, n)),
            spike_mask=rng.random(n) < model.spike_prob,
            spike_size=rng.exponential(model.spike_scale, n),
            spike_up=rng.random(n) < 0.5,
            volume_noise=rng.standard_normal(n),
            regime=rng.standard_normal(n),
        )


def _market_rng(seed: int, symbol: str) -> np.random.Generator:
    """The market's own stream: seed and symbol (crc32, stable across processes) seed PCG64."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(symbol.encode())])))


def _volatility_multiplier(draws: _Draws, model: SyntheticModel, start_ms: int, n: int,
                           aftermath: np.ndarray) -> np.ndarray:
    """Intraday cycle x slow log-volatility regime x crash aftermath (mean-one variance)."""
    minute_of_day = ((start_ms // MINUTE_MS) + np.arange(n)) % DAY_MINUTES
    cycle = 1.0 + model.intraday_amplitude * np.cos(2 * np.pi * (minute_of_day - 870) / DAY_MINUTES)
    phi = 0.5 ** (1.0 / model.vol_regime_half_life_min)
    std = model.vol_regime_std
    regime = _ar1(draws.regime, phi, std, std * draws.regime[0])
    return cycle * np.exp(regime - std**2) * (1.0 + model.crash_aftermath_vol * aftermath)


def _index_returns(draws: _Draws, model: SyntheticModel, multiplier: np.ndarray, crash_returns: np.ndarray,
                   driver: SyntheticMarket | None) -> tuple[np.ndarray, np.ndarray]:
    """One-minute index log-returns without the crash, and their volatility."""
    jumps = np.where(draws.jump_mask, draws.jump_size, 0.0)
    if driver is None:
        sigma = model.sigma_1m
    else:  # residual sized so that corr(beta * driver + residual, driver) = correlation
        driver_sigma = float(np.std(driver.path.log_returns))
        sigma = model.beta * driver_sigma * math.sqrt(1.0 / model.correlation**2 - 1.0)
    residual, residual_vol = _garch_path(
        draws.z, multiplier, jumps, model.crash_vol_feed * crash_returns,
        sigma=sigma, alpha=model.garch_alpha, beta=model.garch_beta,
    )
    if driver is None:
        return residual, residual_vol
    returns = model.beta * driver.path.log_returns + residual
    return returns, np.sqrt((model.beta * driver.path.sigma) ** 2 + residual_vol**2)


def _premium(draws: _Draws, model: SyntheticModel,
             crash_premium: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log premium of last over index and the mark's basis (its EMA), with 8 h of prior history."""
    phi_slow = 0.5 ** (1.0 / model.premium_slow_half_life_min)
    slow = _ar1(draws.slow, phi_slow, model.premium_slow_std, model.premium_slow_std * draws.slow[0])
    fast_std = model.premium_fast_std
    fast = _ar1(draws.fast, model.premium_fast_phi, fast_std, fast_std * draws.fast[0])
    premium = model.premium_mean + slow + fast
    premium[_PREMIUM_BURN_IN:] += crash_premium
    return premium, _ema(premium, model.mark_ema_minutes)


def _ohlc(open_: np.ndarray, close: np.ndarray, vol: np.ndarray, u: np.ndarray) -> list[np.ndarray]:
    hi, lo = _bridge_extremes(np.log(close / open_), vol, u[0], u[1])
    return [open_, open_ * np.exp(hi), open_ * np.exp(lo), close]


def _simulate(
    *, symbol: str, start_ms: int, days: int, crash_day: int | None, seed: int, s0: float,
    model: SyntheticModel, driver: SyntheticMarket | None,
) -> dict[str, Any]:
    n = days * DAY_MINUTES
    draws = _Draws.draw(_market_rng(seed, symbol), n, model)
    crash_start = None if crash_day is None else crash_day * DAY_MINUTES + model.crash_minute_of_day
    crash_returns, crash_premium, trough = _crash_profile(n, crash_start, model)
    aftermath = np.zeros(n)
    if crash_start is not None:
        aftermath[crash_start:] = np.exp(-np.arange(n - crash_start) / model.crash_aftermath_minutes)

    multiplier = _volatility_multiplier(draws, model, start_ms, n, aftermath)
    common, vol = _index_returns(draws, model, multiplier, crash_returns, driver)
    vol = np.maximum(vol, 0.5 * np.abs(crash_returns))  # the crash's speed sets its bars' range
    index_close = s0 * np.exp(np.cumsum(common + crash_returns))
    premium, basis = _premium(draws, model, crash_premium)
    before = _PREMIUM_BURN_IN - 1  # the minute before start

    def opened(first: float, close: np.ndarray) -> np.ndarray:
        return np.concatenate([[first], close[:-1]])

    last_close = index_close * np.exp(premium[_PREMIUM_BURN_IN:])
    mark_close = index_close * np.exp(basis[_PREMIUM_BURN_IN:])
    index = _ohlc(opened(s0, index_close), index_close, model.index_wick_scale * vol, draws.u_index)
    # the mark shares the index's intrabar path (mark = index * exp(smooth basis))
    mark = _ohlc(opened(s0 * math.exp(basis[before]), mark_close), mark_close, model.mark_wick_scale * vol,
                 draws.u_index)
    last = _ohlc(opened(s0 * math.exp(premium[before]), last_close), last_close, model.last_wick_scale * vol,
                 draws.u_last)
    spike = np.where(draws.spike_mask, draws.spike_size * vol, 0.0)  # last-only overshoots
    last[1] = last[1] * np.exp(np.where(draws.spike_up, spike, 0.0))
    last[2] = last[2] * np.exp(-np.where(draws.spike_up, 0.0, spike))
    if trough is not None and crash_start is not None:
        reference = last[0][crash_start]
        wick_depth = math.log1p(-model.crash_last_wick)
        for offset, share in ((-2, 0.80), (-1, 0.93), (0, 1.0), (1, 0.85)):
            if 0 <= trough + offset < n:
                target = reference * math.exp(share * wick_depth)
                last[2][trough + offset] = min(last[2][trough + offset], target)

    volume = (
        model.volume_base
        * (vol / model.sigma_1m) ** model.volume_vol_elasticity
        * (1.0 + 0.5 * np.abs(np.log(last[3] / last[0])) / vol)
        * np.exp(0.45 * draws.volume_noise)
        * (1.0 + model.crash_aftermath_volume * aftermath)
    )
    last = _round_ohlc(*last, tick=model.tick_size)
    index = _round_ohlc(*index, tick=None)
    mark = _round_ohlc(*mark, tick=None)
    volume = np.maximum(_round_to_step(volume, model.volume_step), model.volume_step)

    funding = _funding(
        start_ms=start_ms, n=n, last_close=last[3], index_close=index[3],
        burn_premium=premium[:_PREMIUM_BURN_IN], mark_open=mark[0], model=model,
    )
    path = SyntheticPath(log_returns=_readonly(common), sigma=_readonly(vol))
    return {"last": (*last, volume), "mark": mark, "index": index, "funding": funding, "path": path}


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _round_to_step(x: np.ndarray, step: float) -> np.ndarray:
    decimals = max(0, -int(math.floor(math.log10(step) + 1e-9)))
    return np.round(np.round(x / step) * step, decimals)


def _round_ohlc(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray, *,  # noqa: E741
                tick: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Round to the tick (``None``: 8 decimals, like Binance's mark and index).

    Rounding is monotone, so high >= max(open, close) >= min(open, close) >= low survives; the
    max/min below only guard against float noise.
    """
    def rnd(x: np.ndarray) -> np.ndarray:
        return np.round(x, 8) if tick is None else _round_to_step(x, tick)

    o_r, c_r = rnd(o), rnd(c)
    high = np.maximum(rnd(h), np.maximum(o_r, c_r))
    low = np.minimum(rnd(l), np.minimum(o_r, c_r))
    return o_r, high, low, c_r


def _funding(*, start_ms: int, n: int, last_close: np.ndarray, index_close: np.ndarray,
             burn_premium: np.ndarray, mark_open: np.ndarray,
             model: SyntheticModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Settlements at 00/08/16 UTC in [start, end): rate from the mean premium of the 8 h before."""
    interval_ms = FUNDING_INTERVAL_MINUTES * MINUTE_MS
    first = -(-start_ms // interval_ms) * interval_ms
    end_ms = start_ms + n * MINUTE_MS
    settle_ts = np.arange(first, end_ms, interval_ms, dtype=np.int64)
    premium = np.concatenate([np.expm1(burn_premium), last_close / index_close - 1.0])
    csum = np.concatenate([[0.0], np.cumsum(premium)])
    offsets = ((settle_ts - start_ms) // MINUTE_MS).astype(np.int64) + _PREMIUM_BURN_IN
    mean_premium = (csum[offsets] - csum[offsets - FUNDING_INTERVAL_MINUTES]) / FUNDING_INTERVAL_MINUTES
    rate = funding_rate_from_premium(mean_premium, model)
    mark_at = mark_open[offsets - _PREMIUM_BURN_IN]
    return settle_ts, rate, mark_at


# --------------------------------------------------------------------------------------------
# frames
