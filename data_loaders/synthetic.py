"""Embedded default data: a deterministic synthetic USDT-margined perpetual.

The generator builds one-minute last-price, mark-price and index candles plus 8-hourly funding
for a linear perpetual in the canonical schemas of ``docs/CONTRACTS.md`` §3 (exchange
``binanceusdm``, so the built-in Binance tier tables apply). It exists so that the demo, the
tests and new users have realistic data without a download; it is not a forecast of anything.

Model (one step = one minute; details and limits in ``docs/synthetic.md``):

* index log-returns: GARCH(1,1) variance with standardized Student-t innovations, an intraday
  volatility pattern and rare jumps; a correlated market loads on its driver's returns with a
  beta plus its own GARCH residual;
* premium ``p`` of the last price over the index: a slow AR(1) sentiment component plus a fast
  AR(1) noise component; ``last = index * exp(p)``;
* mark price: ``mark = index * exp(EMA_30(p))`` (Binance's "index plus moving-average basis"),
  hence smaller wicks than the last price;
* intrabar extremes: exact Brownian-bridge maximum/minimum draws given the bar's open, close
  and volatility; the last price additionally gets rare liquidation-cascade overshoots;
* funding every 8 h at 00/08/16 UTC: ``F = P + clamp(I - P, -0.05%, +0.05%)`` clamped to
  ``±cap``, where ``P`` is the mean one-minute premium ``last/index - 1`` over the interval;
* a crash day: the index falls by a configurable fraction in minutes, the perp trades at a
  discount, the last price wicks far below the mark, then a partial rebound.

All randomness comes from ``numpy.random.Generator(PCG64(SeedSequence([seed, crc32(symbol)])))``:
the same arguments give identical frames, in any process, without global state.
"""
from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from scipy.signal import lfilter

from data_loaders.errors import SchemaError
from data_loaders.schemas import get_schema, timeframe_ms, to_ms

if TYPE_CHECKING:
    from data_loaders.store import MarketStore, WriteResult

__all__ = [
    "EXCHANGE",
    "SyntheticModel",
    "SyntheticPath",
    "SyntheticMarket",
    "MODEL_PRESETS",
    "generate_perpetual",
    "funding_rate_from_premium",
    "timeframe_minutes",
    "demo_dataset",
    "engine_frames",
    "resample_ohlcv",
    "write_to_store",
]

EXCHANGE = "binanceusdm"
"""Exchange id of every synthetic frame: Binance USDⓈ-M, so its built-in tier tables apply."""

MINUTE_MS = 60_000
DAY_MINUTES = 1_440
FUNDING_INTERVAL_MINUTES = 480  # 8 h
_PREMIUM_BURN_IN = FUNDING_INTERVAL_MINUTES  # premium history before `start`, for the first settlement

_SYMBOL_RE = re.compile(r"^[A-Z0-9]+/USDT:USDT$")


@dataclass(frozen=True)
class SyntheticModel:
    """Parameters of the synthetic perpetual; every rate is per one-minute step.

    Parameters
    ----------
    sigma_1m : float
        Unconditional standard deviation of one-minute index log-returns (fraction; 5.5e-4 is
        about 40 % a year). For a correlated market this is the residual's share (see
        ``beta`` and ``correlation``) and is derived from the driver.
    garch_alpha, garch_beta : float
        GARCH(1,1) reaction and persistence; ``alpha + beta < 1``.
    t_dof : float
        Degrees of freedom of the Student-t innovations (> 4 so the kurtosis is finite);
        standardized draws are truncated at ±8 so one draw cannot dwarf the crash.
    vol_regime_std, vol_regime_half_life_min : float
        Stationary std and half-life (minutes) of a slow AR(1) log-volatility regime that
        multiplies the GARCH volatility (the long memory of volatility in real data).
    jump_prob : float
        Probability of a jump in a given minute.
    jump_scale : float
        Scale of a jump's log-size (fraction; Student-t with 3 dof times this).
    intraday_amplitude : float
        Relative amplitude of the daily volatility cycle, peaking at 14:30 UTC.
    beta, correlation : float
        When generated ``correlated_with`` a driver: returns are ``beta * driver + residual``
        with the residual sized so that the return correlation is ``correlation``.
    premium_mean : float
        Long-run mean of the last-over-index log premium (fraction; positive = contango).
    premium_slow_std, premium_slow_half_life_min : float
        Stationary std (fraction) and half-life (minutes) of the slow premium component.
    premium_fast_std, premium_fast_phi : float
        Stationary std (fraction) and AR(1) coefficient of the fast premium component.
    mark_ema_minutes : int
        Span of the EMA of the premium that gives the mark's basis over the index.
    index_wick_scale, mark_wick_scale, last_wick_scale : float
        Intrabar volatility of each price series relative to the bar's return volatility.
    spike_prob, spike_scale : float
        Probability per minute of a last-price-only overshoot wick and its mean size in
        units of the bar's volatility.
    interest_rate, premium_clamp, funding_cap : float
        Funding: interest per 8 h (0.01 %), clamp of ``I - P`` (0.05 %) and the overall rate
        cap (fractions per 8 h; margin_rules.md §2.1, BTCUSDT data capped at ±0.3 %).
    crash_minute_of_day : int
        Minute of the crash day (UTC) at which the fall starts.
    crash_fall_minutes, crash_rebound_minutes : int
        Duration of the fall and of the partial rebound (minutes).
    crash_index_drop : float
        Fraction by which the index falls from the pre-crash level to the trough.
    crash_rebound_fraction : float
        Fraction of the fall (in log terms) recovered during the rebound.
    crash_premium : float
        Log premium of last over index at the trough (negative: the perp trades at a discount).
    crash_premium_minutes : float
        Decay time (minutes) of that discount after the trough; it drives funding negative.
    crash_last_wick : float
        Fraction by which the last price's intrabar low undercuts the pre-crash last close.
    crash_vol_feed : float
        Share of the crash's own moves fed into the GARCH variance (post-crash turbulence).
    crash_aftermath_vol, crash_aftermath_volume, crash_aftermath_minutes : float
        After the crash starts, volatility is multiplied by ``1 + vol * exp(-t / minutes)``
        and volume (liquidations, re-positioning) by ``1 + volume * exp(-t / minutes)``.
    volume_base : float
        Median one-minute volume in base units at average volatility.
    volume_vol_elasticity : float
        Exponent of volume on the bar's volatility (volume rises with volatility).
    tick_size : float
        Last-price tick (quote units); index and mark carry 8 decimals.
    volume_step : float
        Volume precision (base units).
    """

    sigma_1m: float = 5.5e-4
    garch_alpha: float = 0.06
    garch_beta: float = 0.92
    t_dof: float = 6.0
    vol_regime_std: float = 0.35
    vol_regime_half_life_min: float = 720.0
    jump_prob: float = 1.0 / 1_500.0
    jump_scale: float = 2.5e-3
    intraday_amplitude: float = 0.25
    beta: float = 1.15
    correlation: float = 0.78
    premium_mean: float = 2.5e-4
    premium_slow_std: float = 6.0e-4
    premium_slow_half_life_min: float = 360.0
    premium_fast_std: float = 1.2e-4
    premium_fast_phi: float = 0.9
    mark_ema_minutes: int = 30
    index_wick_scale: float = 0.8
    mark_wick_scale: float = 0.8
    last_wick_scale: float = 1.0
    spike_prob: float = 3.0e-3
    spike_scale: float = 3.0
    interest_rate: float = 1.0e-4
    premium_clamp: float = 5.0e-4
    funding_cap: float = 3.0e-3
    crash_minute_of_day: int = 13 * 60 + 30
    crash_fall_minutes: int = 30
    crash_rebound_minutes: int = 240
    crash_index_drop: float = 0.24
    crash_rebound_fraction: float = 0.45
    crash_premium: float = -0.012
    crash_premium_minutes: float = 90.0
    crash_last_wick: float = 0.40
    crash_vol_feed: float = 0.25
    crash_aftermath_vol: float = 2.0
    crash_aftermath_volume: float = 6.0
    crash_aftermath_minutes: float = 240.0
    volume_base: float = 90.0
    volume_vol_elasticity: float = 1.0
    tick_size: float = 0.1
    volume_step: float = 0.001

    def __post_init__(self) -> None:
        checks = [
            ("sigma_1m", self.sigma_1m > 0, "> 0"),
            ("garch_alpha", self.garch_alpha >= 0, ">= 0"),
            ("garch_beta", self.garch_beta >= 0, ">= 0"),
            ("garch_alpha + garch_beta", self.garch_alpha + self.garch_beta < 1, "< 1"),
            ("t_dof", self.t_dof > 4, "> 4"),
            ("jump_prob", 0 <= self.jump_prob < 1, "in [0, 1)"),
            ("vol_regime_std", self.vol_regime_std >= 0, ">= 0"),
            ("vol_regime_half_life_min", self.vol_regime_half_life_min > 0, "> 0"),
            ("spike_prob", 0 <= self.spike_prob < 1, "in [0, 1)"),
            ("correlation", 0 < self.correlation < 1, "in (0, 1)"),
            ("premium_fast_phi", 0 <= self.premium_fast_phi < 1, "in [0, 1)"),
            ("premium_slow_half_life_min", self.premium_slow_half_life_min > 0, "> 0"),
            ("mark_ema_minutes", self.mark_ema_minutes >= 1, ">= 1"),
            ("crash_index_drop", 0 <= self.crash_index_drop < 1, "in [0, 1)"),
            ("crash_last_wick", 0 <= self.crash_last_wick < 1, "in [0, 1)"),
            ("crash_rebound_fraction", 0 <= self.crash_rebound_fraction <= 1, "in [0, 1]"),
            ("crash_fall_minutes", self.crash_fall_minutes >= 1, ">= 1"),
            ("crash_premium_minutes", self.crash_premium_minutes > 0, "> 0"),
            ("crash_rebound_minutes", self.crash_rebound_minutes >= 1, ">= 1"),
            ("crash_aftermath_vol", self.crash_aftermath_vol >= 0, ">= 0"),
            ("crash_aftermath_volume", self.crash_aftermath_volume >= 0, ">= 0"),
            ("crash_aftermath_minutes", self.crash_aftermath_minutes > 0, "> 0"),
            ("crash_minute_of_day", 0 <= self.crash_minute_of_day < DAY_MINUTES, "in [0, 1440)"),
            ("funding_cap", self.funding_cap > 0, "> 0"),
            ("tick_size", self.tick_size > 0, "> 0"),
            ("volume_base", self.volume_base > 0, "> 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(
                    f"SyntheticModel.{name}: expected {expected}, found "
                    f"{_describe_param(self, name)}; pass a value {expected}"
                )


def _describe_param(model: SyntheticModel, name: str) -> str:
    if "+" in name:
        return f"{model.garch_alpha} + {model.garch_beta} = {model.garch_alpha + model.garch_beta}"
    return repr(getattr(model, name))


MODEL_PRESETS: dict[str, SyntheticModel] = {
    "BTC/USDT:USDT": SyntheticModel(),
    "ETH/USDT:USDT": SyntheticModel(
        sigma_1m=7.0e-4,
        jump_scale=3.2e-3,
        premium_mean=3.0e-4,
        crash_index_drop=0.31,
        crash_premium=-0.018,
        crash_last_wick=0.50,
        volume_base=1_200.0,
        tick_size=0.01,
    ),
}
"""Built-in model parameters per symbol; other symbols need an explicit ``model=``."""


@dataclass(frozen=True, eq=False)
class SyntheticPath:
    """The one-minute driving process of a market, what a correlated market loads on.

    Attributes
    ----------
    log_returns : numpy.ndarray
        One-minute index log-returns without the market's own crash event (read-only).
    sigma : numpy.ndarray
        One-minute conditional return volatility (fraction, read-only).
    """

    log_returns: np.ndarray
    sigma: np.ndarray


@dataclass(frozen=True, eq=False)
class SyntheticMarket:
    """A generated perpetual: canonical frames plus the arguments that produced them.

    Attributes
    ----------
    symbol : str
        ccxt unified symbol, e.g. ``"BTC/USDT:USDT"``.
    exchange : str
        Always ``"binanceusdm"``.
    timeframe : str
        Candle timeframe of ``last``, ``mark`` and ``index``.
    start_ms : int
        Open time of the first candle (UTC, ms since the epoch).
    days : int
        Length of the data (days).
    crash_day : int | None
        Zero-based day of the crash (``None``: no crash).
    seed : int
        Seed of the random stream.
    s0 : float
        Index price at ``start`` (USDT per base unit).
    correlated_with : str | None
        Symbol of the driver market, if any.
    model : SyntheticModel
        Model parameters used.
    last, mark, index : polars.DataFrame
        Canonical ``ohlcv`` frames (price_type ``last``/``mark``/``index``; volume in base
        units for ``last``, null otherwise).
    funding : polars.DataFrame
        Canonical ``funding`` frame, settlements in ``[start, end)``.
    path : SyntheticPath
        One-minute driver arrays (for ``correlated_with``).
    """

    symbol: str
    exchange: str
    timeframe: str
    start_ms: int
    days: int
    crash_day: int | None
    seed: int
    s0: float
    correlated_with: str | None
    model: SyntheticModel
    last: pl.DataFrame = field(repr=False)
    mark: pl.DataFrame = field(repr=False)
    index: pl.DataFrame = field(repr=False)
    funding: pl.DataFrame = field(repr=False)
    path: SyntheticPath = field(repr=False)

    @property
    def end_ms(self) -> int:
        """End of the data, exclusive (UTC, ms since the epoch)."""
        return self.start_ms + self.days * DAY_MINUTES * MINUTE_MS

    @property
    def crash_start_ms(self) -> int | None:
        """Instant the crash's fall starts (UTC ms), ``None`` without a crash."""
        if self.crash_day is None:
            return None
        return self.start_ms + (self.crash_day * DAY_MINUTES + self.model.crash_minute_of_day) * MINUTE_MS

    def ohlcv(self) -> pl.DataFrame:
        """The three candle frames stacked (last, mark, index) in the canonical schema."""
        return pl.concat([self.last, self.mark, self.index], how="vertical")


# --------------------------------------------------------------------------------------------
# argument parsing


def timeframe_minutes(timeframe: str) -> int:
    """Minutes in a ccxt timeframe string (``"1m"``, ``"5m"``, ``"1h"``, ``"1d"`` ...).

    Raises
    ------
    ValueError
        When the string is not ``<int><m|h|d>`` or does not divide a day evenly.
    """
    try:
        length_ms = timeframe_ms(timeframe)
    except SchemaError:
        length_ms = 0
    minutes, rest = divmod(length_ms, MINUTE_MS)
    if rest or minutes <= 0 or DAY_MINUTES % minutes != 0:
        raise ValueError(
            f"timeframe: expected a ccxt timeframe that divides a day (1m, 3m, 5m, 15m, 30m, "
            f"1h, 2h, 4h, 6h, 8h, 12h, 1d), found {timeframe!r}; pass one of those"
        )
    return minutes


def _parse_start(start: str | date | datetime | int) -> int:
    if isinstance(start, date) and not isinstance(start, datetime):
        start = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
    try:
        start_ms = to_ms(start)
    except SchemaError as exc:
        raise ValueError(f"start: {exc}") from exc
    if start_ms % MINUTE_MS:
        raise ValueError(
            f"start: expected a whole minute (UTC), found {start_ms} ms "
            f"({start_ms % MINUTE_MS} ms past the minute); round it to the minute"
        )
    return start_ms


def _resolve_model(symbol: str, model: SyntheticModel | None) -> SyntheticModel:
    if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
        raise ValueError(
            f"symbol: expected a ccxt unified USDT-margined perpetual like 'BTC/USDT:USDT', "
            f"found {symbol!r}"
        )
    if model is not None:
        return model
    if symbol not in MODEL_PRESETS:
        raise ValueError(
            f"symbol {symbol!r}: no built-in synthetic model (presets: "
            f"{', '.join(sorted(MODEL_PRESETS))}); pass model=SyntheticModel(...) for it"
        )
    return MODEL_PRESETS[symbol]


# --------------------------------------------------------------------------------------------
# the simulation


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


def funding_rate_from_premium(mean_premium: np.ndarray | float, model: SyntheticModel) -> np.ndarray:
    """Binance-style funding rate from the interval's mean premium (fraction per 8 h).

    ``F = clamp(P + clamp(I - P, -c, +c), -cap, +cap)`` with ``I`` the interest rate, ``c``
    the premium clamp and ``cap`` the rate cap (margin_rules.md §2.1: ``I = 0.01 %``,
    ``c = 0.05 %``; BTCUSDT funding history capped at ±0.3 %).

    Parameters
    ----------
    mean_premium : numpy.ndarray or float
        Mean premium index over each interval (fraction).
    model : SyntheticModel
        Supplies ``interest_rate``, ``premium_clamp`` and ``funding_cap``.
    """
    p = np.asarray(mean_premium, dtype=float)
    rate = p + np.clip(model.interest_rate - p, -model.premium_clamp, model.premium_clamp)
    return np.clip(rate, -model.funding_cap, model.funding_cap)


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


def _ts_series(ts_ms: np.ndarray) -> pl.Series:
    return pl.Series("ts", ts_ms, dtype=pl.Int64).cast(pl.Datetime("ms", "UTC"))


def _ohlcv_frame(symbol: str, timeframe: str, price_type: str, ts_ms: np.ndarray,
                 ohlc: tuple[np.ndarray, ...], volume: np.ndarray | None) -> pl.DataFrame:
    n = ts_ms.size
    frame = pl.DataFrame(
        {
            "exchange": pl.repeat(EXCHANGE, n, eager=True, dtype=pl.String),
            "symbol": pl.repeat(symbol, n, eager=True, dtype=pl.String),
            "timeframe": pl.repeat(timeframe, n, eager=True, dtype=pl.String),
            "price_type": pl.repeat(price_type, n, eager=True, dtype=pl.String),
            "ts": _ts_series(ts_ms),
            "open": ohlc[0], "high": ohlc[1], "low": ohlc[2], "close": ohlc[3],
            "volume": pl.Series("volume", volume, dtype=pl.Float64) if volume is not None
            else pl.repeat(None, n, eager=True, dtype=pl.Float64),
        }
    )
    return frame.select([pl.col(c).cast(t) for c, t in get_schema("ohlcv").columns])


def _aggregate(ts_ms: np.ndarray, o: np.ndarray, h: np.ndarray, l: np.ndarray,  # noqa: E741
               c: np.ndarray, v: np.ndarray | None,
               k: int) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray | None]:
    """Aggregate a gapless 1m grid into bars of k minutes (k divides the length)."""
    if k == 1:
        return ts_ms, (o, h, l, c), v
    shape = (-1, k)
    agg = (o.reshape(shape)[:, 0], h.reshape(shape).max(axis=1), l.reshape(shape).min(axis=1),
           c.reshape(shape)[:, -1])
    vol = None if v is None else np.round(v.reshape(shape).sum(axis=1), 8)
    return ts_ms[::k], agg, vol


def _check_arguments(*, symbol: str, start_ms: int, k: int, timeframe: str, days: Any,
                     crash_day: Any, seed: Any, s0: Any, model: SyntheticModel,
                     driver: Any) -> None:
    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if start_ms % (k * MINUTE_MS):
        raise ValueError(
            f"start: expected a multiple of the {timeframe} timeframe (UTC), found "
            f"{datetime.fromtimestamp(start_ms / 1000, timezone.utc).isoformat()}; align start to a "
            f"{timeframe} bar open"
        )
    if not is_int(days) or days < 1:
        raise ValueError(f"days: expected an integer >= 1, found {days!r}")
    if crash_day is not None and (not is_int(crash_day) or not 0 <= crash_day < days):
        raise ValueError(
            f"crash_day: expected None or an integer day in [0, {days - 1}] (days={days}), "
            f"found {crash_day!r}; pick a day inside the data or None for no crash"
        )
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, found {seed!r}")
    if not (isinstance(s0, (int, float)) and math.isfinite(s0) and s0 >= 100 * model.tick_size):
        raise ValueError(
            f"s0: expected a finite price in USDT of at least 100 ticks "
            f"({100 * model.tick_size:g} at tick_size={model.tick_size:g}), found {s0!r}"
        )
    if driver is None:
        return
    if not isinstance(driver, SyntheticMarket):
        raise TypeError(f"correlated_with: expected a SyntheticMarket, found {type(driver).__name__}")
    if driver.start_ms != start_ms or driver.days != days:
        raise ValueError(
            f"correlated_with: driver {driver.symbol} covers start_ms={driver.start_ms}, "
            f"days={driver.days}; {symbol} asks for start_ms={start_ms}, days={days}; generate "
            f"both on the same start and days"
        )
    if driver.symbol == symbol:
        raise ValueError(f"correlated_with: a market cannot be correlated with itself ({symbol})")


def generate_perpetual(
    *,
    symbol: str = "BTC/USDT:USDT",
    start: str | date | datetime | int = "2024-03-01",
    days: int = 30,
    crash_day: int | None = 20,
    seed: int = 7,
    s0: float = 60_000.0,
    timeframe: str = "1m",
    correlated_with: SyntheticMarket | None = None,
    model: SyntheticModel | None = None,
) -> SyntheticMarket:
    """Generate a deterministic synthetic USDT-margined perpetual.

    Parameters
    ----------
    symbol : str
        ccxt unified symbol; ``BTC/USDT:USDT`` and ``ETH/USDT:USDT`` have built-in models.
    start : str, date, datetime or int
        Open time of the first candle (UTC; ISO string, naive datetimes are UTC, or epoch ms).
    days : int
        Length in days (>= 1).
    crash_day : int or None
        Zero-based day of the crash event (``None`` for none); its fall starts at
        ``model.crash_minute_of_day`` UTC.
    seed : int
        Seed (>= 0); the stream also depends on the symbol, so BTC and ETH differ.
    s0 : float
        Index price at ``start`` (USDT per base unit).
    timeframe : str
        Candle timeframe; the model runs at 1m and aggregates (must divide a day).
    correlated_with : SyntheticMarket or None
        Driver market (same start and days): returns load on its one-minute returns with
        ``model.beta`` and a residual sized for ``model.correlation``.
    model : SyntheticModel or None
        Parameters; default the symbol's preset in ``MODEL_PRESETS``.

    Returns
    -------
    SyntheticMarket
        Frames ``last``, ``mark``, ``index`` (canonical ohlcv) and ``funding`` (canonical).

    Raises
    ------
    ValueError
        On an unknown symbol without ``model``, a bad timeframe, a start not on a bar open,
        ``days < 1``, a crash day outside the data, ``s0`` below 100 ticks or a driver on
        another time grid.
    TypeError
        When ``correlated_with`` is not a ``SyntheticMarket``.
    """
    resolved = _resolve_model(symbol, model)
    k = timeframe_minutes(timeframe)
    start_ms = _parse_start(start)
    _check_arguments(symbol=symbol, start_ms=start_ms, k=k, timeframe=timeframe, days=days,
                     crash_day=crash_day, seed=seed, s0=s0, model=resolved, driver=correlated_with)
    sim = _simulate(
        symbol=symbol, start_ms=start_ms, days=days, crash_day=crash_day, seed=seed,
        s0=float(s0), model=resolved, driver=correlated_with,
    )
    ts_1m = start_ms + np.arange(days * DAY_MINUTES, dtype=np.int64) * MINUTE_MS
    frames = {}
    for price_type in ("last", "mark", "index"):
        arrays = sim[price_type]
        volume = arrays[4] if price_type == "last" else None
        ts, ohlc, vol = _aggregate(ts_1m, *arrays[:4], volume, k)
        frames[price_type] = _ohlcv_frame(symbol, timeframe, price_type, ts, ohlc, vol)
    settle_ts, rate, mark_at = sim["funding"]
    funding = pl.DataFrame(
        {
            "exchange": pl.repeat(EXCHANGE, settle_ts.size, eager=True, dtype=pl.String),
            "symbol": pl.repeat(symbol, settle_ts.size, eager=True, dtype=pl.String),
            "ts": _ts_series(settle_ts),
            "rate": rate,
            "interval_hours": np.full(settle_ts.size, FUNDING_INTERVAL_MINUTES / 60.0),
            "mark_price": mark_at,
        }
    ).select([pl.col(c).cast(t) for c, t in get_schema("funding").columns])
    return SyntheticMarket(
        symbol=symbol, exchange=EXCHANGE, timeframe=timeframe, start_ms=start_ms, days=days,
        crash_day=crash_day, seed=seed, s0=float(s0),
        correlated_with=None if correlated_with is None else correlated_with.symbol,
        model=resolved, last=frames["last"], mark=frames["mark"], index=frames["index"],
        funding=funding, path=sim["path"],
    )


def demo_dataset(seed: int = 7) -> dict[str, SyntheticMarket]:
    """The embedded demo data: BTC and ETH perpetuals, 30 days of 1m from 2024-03-01.

    BTC starts at 60,000 USDT, ETH at 3,400 USDT and is correlated with BTC (about 0.8);
    both crash on day 20 (2024-03-21, 13:30 UTC), ETH deeper.

    Parameters
    ----------
    seed : int
        Seed of both markets.

    Returns
    -------
    dict[str, SyntheticMarket]
        Keyed by symbol: ``"BTC/USDT:USDT"``, ``"ETH/USDT:USDT"``.
    """
    btc = generate_perpetual(symbol="BTC/USDT:USDT", seed=seed, s0=60_000.0)
    eth = generate_perpetual(symbol="ETH/USDT:USDT", seed=seed, s0=3_400.0, correlated_with=btc)
    return {btc.symbol: btc, eth.symbol: eth}


def engine_frames(market: SyntheticMarket) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The engine's bar and funding frames of a market (CONTRACTS §8).

    Parameters
    ----------
    market : SyntheticMarket
        A generated market.

    Returns
    -------
    bars : polars.DataFrame
        ``ts`` (Datetime ms UTC, bar open), ``open high low close`` (last price, USDT),
        ``volume`` (base units), ``mark_open mark_high mark_low mark_close`` (USDT).
    funding : polars.DataFrame
        ``ts`` (settlement), ``rate`` (fraction per interval, + = longs pay),
        ``interval_hours``, ``mark_price`` (USDT).
    """
    last = market.last.select("ts", "open", "high", "low", "close", "volume")
    mark = market.mark.select(
        "ts",
        pl.col("open").alias("mark_open"), pl.col("high").alias("mark_high"),
        pl.col("low").alias("mark_low"), pl.col("close").alias("mark_close"),
    )
    bars = last.join(mark, on="ts", how="inner", maintain_order="left")
    if bars.height != market.last.height:
        raise ValueError(
            f"engine_frames: last and mark candles of {market.symbol} do not share timestamps "
            f"({market.last.height} last rows, {market.mark.height} mark rows, {bars.height} joined)"
        )
    funding = market.funding.select("ts", "rate", "interval_hours", "mark_price")
    return bars, funding


def resample_ohlcv(frame: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """Resample a canonical ohlcv frame to a coarser timeframe (bars aligned to the epoch).

    Open is the first open, high the max, low the min, close the last close, volume the sum
    (null stays null for mark/index). Works per (exchange, symbol, price_type).

    Parameters
    ----------
    frame : polars.DataFrame
        Canonical ``ohlcv`` rows of a single timeframe.
    timeframe : str
        Target timeframe; a whole multiple of the source timeframe.
    """
    target = timeframe_minutes(timeframe)
    sources = frame["timeframe"].unique().to_list()
    if len(sources) != 1:
        raise ValueError(f"resample_ohlcv: expected one source timeframe, found {sorted(sources)}")
    source = timeframe_minutes(sources[0])
    if target % source:
        raise ValueError(
            f"resample_ohlcv: cannot build {timeframe} from {sources[0]} candles; the target "
            f"must be a whole multiple of the source timeframe"
        )
    out = (
        frame.sort("exchange", "symbol", "price_type", "ts")
        .group_by_dynamic("ts", every=f"{target}m", closed="left", label="left",
                          group_by=["exchange", "symbol", "price_type"])
        .agg(
            pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
            pl.col("volume").sum().alias("volume"), pl.col("volume").is_null().all().alias("_no_volume"),
        )
        .with_columns(
            pl.lit(timeframe).alias("timeframe"),
            pl.when(pl.col("_no_volume")).then(None).otherwise(pl.col("volume")).alias("volume"),
        )
    )
    columns = [pl.col(c).cast(t) for c, t in get_schema("ohlcv").columns]
    return out.select(columns).sort("symbol", "price_type", "ts")


def write_to_store(
    store: MarketStore,
    markets: Mapping[str, SyntheticMarket] | Iterable[SyntheticMarket],
    *,
    source: str | None = None,
    timeframes: tuple[str, ...] = ("1m", "5m", "1h"),
) -> list[WriteResult]:
    """Write synthetic markets into a ``MarketStore``: candles of every price type, and funding.

    Each market's 1m candles (last, mark, index) are stored together with their resamples to
    the other ``timeframes``; its funding goes to the ``funding`` dataset. Writes go through
    ``store.write`` (validated, merged, atomic), one ``ohlcv`` and one ``funding`` write per
    market, so a second call with the same data adds nothing.

    Parameters
    ----------
    store : data_loaders.store.MarketStore
        Target store.
    markets : mapping or iterable of SyntheticMarket
        What ``demo_dataset`` returns, or markets.
    source : str or None
        Provenance label recorded in the store's manifest; must start with ``"synthetic"``
        (the marker that this data is generated, not from an exchange). Default
        ``"synthetic:seed=<seed>"`` of each market.
    timeframes : tuple of str
        Candle timeframes to store; each a whole multiple of the market's own timeframe.

    Returns
    -------
    list of data_loaders.store.WriteResult
        Per market: the ``ohlcv`` write then the ``funding`` write.

    Raises
    ------
    ValueError
        On a source label that does not start with ``synthetic`` or a timeframe finer than
        (or not a multiple of) a market's timeframe; nothing is written then.
    """
    items = list(markets.values()) if isinstance(markets, Mapping) else list(markets)
    if source is not None and not (isinstance(source, str) and source.startswith("synthetic")):
        raise ValueError(
            f"source: expected a label starting with 'synthetic' (marks generated data), "
            f"found {source!r}; e.g. 'synthetic:seed=7'"
        )
    batches = []
    for market in items:
        if not isinstance(market, SyntheticMarket):
            raise TypeError(f"markets: expected SyntheticMarket values, found {type(market).__name__}")
        own = timeframe_minutes(market.timeframe)
        candles = []
        for timeframe in timeframes:
            if timeframe_minutes(timeframe) % own:
                raise ValueError(
                    f"timeframes: {timeframe} cannot be built from {market.symbol}'s "
                    f"{market.timeframe} candles; pass timeframes that are multiples of it"
                )
            stacked = market.ohlcv()
            candles.append(stacked if timeframe == market.timeframe else resample_ohlcv(stacked, timeframe))
        label = source if source is not None else f"synthetic:seed={market.seed}"
        batches.append((label, pl.concat(candles, how="vertical"), market.funding))
    results = []
    for label, candles, funding in batches:
        results.append(store.write("ohlcv", candles, source=label))
        results.append(store.write("funding", funding, source=label))
    return results
