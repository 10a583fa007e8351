"""The synthetic market's model: its parameters (:class:`SyntheticModel`, the built-in
presets per symbol) and the funding rule it follows (``docs/synthetic.md``). The generator is
:mod:`data_loaders.synthetic`; its numerical kernels are :mod:`data_loaders.synthetic_kernels`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MINUTE_MS = 60_000
DAY_MINUTES = 1_440
FUNDING_INTERVAL_MINUTES = 480  # 8 h
_PREMIUM_BURN_IN = FUNDING_INTERVAL_MINUTES  # premium history before `start`, for the first settlement



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
