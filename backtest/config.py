"""The run configuration: keyword-only, validated, with did-you-mean errors.

A :class:`RunConfig` is immutable; :meth:`RunConfig.replace` returns a changed copy and
:meth:`RunConfig.from_mapping` reads the ``[run]`` table of a TOML run file.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from backtest.errors import ConfigError, did_you_mean

__all__ = ["PATH_POLICIES", "RunConfig"]

#: Intrabar path policies (see docs/engine.md "Intrabar path").
PATH_POLICIES = ("worst_case", "adaptive", "ohlc", "olhc")

_CHOICES: dict[str, tuple[str, ...]] = {
    "margin_mode": ("isolated", "cross"),
    "position_mode": ("one_way", "hedge"),
    "path_policy": PATH_POLICIES,
    "liquidation_remainder": ("insurance_fund", "trader"),
    "liquidation_mode": ("full", "tier_down"),
    "liquidation_latency_ms": (1000, "ms from a liquidation trigger to its forced fill (>= 0)"),
    "sizing_basis": ("wallet", "equity"),
}

# name -> (default, description). Order is the order of ``to_dict``.
_FIELDS: dict[str, tuple[Any, str]] = {
    "initial_balance": (10_000.0, "starting wallet balance in the margin asset (USDT), > 0"),
    "leverage": (10.0, "leverage per symbol at start: a number > 0 or {symbol: number}"),
    "margin_mode": ("isolated", "'isolated' or 'cross' (or {symbol: mode})"),
    "position_mode": ("one_way", "'one_way' or 'hedge'"),
    "venue": ("binance_usdm", "venue whose margin rules apply"),
    "path_policy": ("worst_case", "intrabar path: worst_case, adaptive, ohlc, olhc"),
    "slippage": ("sqrt", "slippage model: 'none', 'fixed', 'sqrt' or a SlippageModel"),
    "slippage_params": ({}, "keyword arguments of the named slippage model"),
    "fees": (None, "(maker, taker) fee fractions overriding the venue's, or None"),
    "tiers": (None, "TierTable/TierSchedule (or {symbol: ...}) overriding the data's tiers"),
    "liquidation_fee_rate": (None, "clearance fee fraction overriding the venue's, or None"),
    "liquidation_remainder": ("insurance_fund", "who keeps margin left after a liquidation"),
    "liquidation_mode": ("full", "full takeover, or tier_down: first reduce to the lower bracket"),
    "liquidation_latency_ms": (1000, "ms from a liquidation trigger to its forced fill (>= 0)"),
    "sizing_basis": ("wallet", "what target_exposure fractions refer to: wallet or equity"),
    "rounding": (True, "round prices to the tick and quantities to the lot"),
    "gating": (True, "skip the intrabar path when no threshold lies in the bar's range"),
    "allow_tiers_before_first": (False, "use the earliest tier table before its start date"),
    "seed": (0, "random seed recorded in the manifest (the engine itself is deterministic)"),
    "progress": (False, "show a progress bar"),
    "progress_every": (20_000, "bars between progress-bar updates"),
    "name": (None, "run name (output folder name)"),
}


class RunConfig:
    """Configuration of one backtest run (keyword-only, immutable).

    Parameters
    ----------
    initial_balance : float
        Starting wallet balance, margin asset (USDT).
    leverage : float or dict
        Leverage per symbol at the start (changeable mid-run through the strategy context).
    margin_mode : {'isolated', 'cross'} or dict
        Margin mode of every symbol, or per symbol.
    position_mode : {'one_way', 'hedge'}
        One net position per symbol, or separate long and short legs.
    venue : str
        Venue whose rules apply (``binance_usdm``).
    path_policy : {'worst_case', 'adaptive', 'ohlc', 'olhc'}
        Order in which a candle's extremes are visited (docs/engine.md).
    slippage : str or SlippageModel
        ``'none'``, ``'fixed'``, ``'sqrt'`` or an instance of :mod:`backtest.slippage`.
    slippage_params : dict
        Keyword arguments for a named slippage model (e.g. ``{"bps": 5}``).
    fees : tuple of (float, float), optional
        ``(maker, taker)`` fee fractions overriding the venue's schedule.
    tiers : TierTable, TierSchedule or dict, optional
        Risk tiers overriding the market data's (one table for all symbols or per symbol).
    liquidation_fee_rate : float, optional
        Clearance fee fraction overriding the venue's versioned rate.
    liquidation_remainder : {'insurance_fund', 'trader'}
        Who keeps the margin left after the clearance fee when a liquidation fills better
        than bankruptcy (Binance: the insurance fund).
    liquidation_mode : {'full', 'tier_down'}
        ``full``: the whole pool is taken over at once. ``tier_down``: positions above the
        first bracket are first reduced to the floor of their bracket (Binance "smart
        liquidation"); the takeover follows only if the pool is still deficient.
    liquidation_latency_ms : int
        Milliseconds from a liquidation trigger (the mark crossing the liquidation price) to
        the forced order's fill, read on the intrabar path at that time (docs/engine.md
        "Liquidation"). Default 1,000 ms: Binance's liquidation engine acts on the mark-price
        update that breaches (the mark is published every second), not at the candle's next
        extreme minutes later; raise it to model a slower takeover.
    sizing_basis : {'wallet', 'equity'}
        What ``target_exposure`` fractions are a multiple of.
    rounding : bool
        Round prices to the tick and quantities to the lot (False for textbook checks).
    gating : bool
        Range-gate the intrabar path (False expands every bar; results are identical).
    allow_tiers_before_first : bool
        Use the earliest known tier table for dates before it (recorded as a warning).
    seed : int
        Recorded in the manifest.
    progress : bool
        Show a rich progress bar.
    progress_every : int
        Bars between progress updates.
    name : str, optional
        Run name.

    Raises
    ------
    ConfigError
        Unknown key (with a suggestion) or a value of the wrong kind or range.
    """

    __slots__ = tuple(_FIELDS)

    def __init__(self, **kwargs: Any) -> None:
        for key in kwargs:
            if key not in _FIELDS:
                raise ConfigError(
                    f"RunConfig: unknown key {key!r}{did_you_mean(key, _FIELDS)}; "
                    f"expected one of {', '.join(_FIELDS)}"
                )
        for key, (default, _) in _FIELDS.items():
            value = kwargs.get(key, default)
            if isinstance(value, dict):
                value = dict(value)
            object.__setattr__(self, key, value)
        self._validate()

    def __setattr__(self, key: str, value: Any) -> None:
        raise ConfigError(f"RunConfig is immutable; use config.replace({key}=...) instead")

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickle as the keyword arguments that rebuild it (``__setattr__`` blocks the default)."""
        return (_restore, ({k: getattr(self, k) for k in _FIELDS},))

    def __repr__(self) -> str:
        changed = ", ".join(f"{k}={getattr(self, k)!r}" for k in _FIELDS
                            if getattr(self, k) != _FIELDS[k][0])
        return f"RunConfig({changed})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunConfig) and self.to_dict() == other.to_dict()

    def replace(self, **changes: Any) -> RunConfig:
        """Return a copy with ``changes`` applied (validated like the constructor)."""
        values = {k: getattr(self, k) for k in _FIELDS}
        for key in changes:
            if key not in _FIELDS:
                raise ConfigError(f"RunConfig.replace: unknown key {key!r}{did_you_mean(key, _FIELDS)}")
        values.update(changes)
        return RunConfig(**values)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-friendly values (objects shown by their repr)."""
        out: dict[str, Any] = {}
        for key in _FIELDS:
            value = getattr(self, key)
            if value is None or isinstance(value, (bool, int, float, str)):
                out[key] = value
            elif isinstance(value, (list, tuple)):
                out[key] = list(value)
            elif isinstance(value, dict):
                out[key] = {str(k): v if isinstance(v, (bool, int, float, str)) else repr(v)
                            for k, v in value.items()}
            else:
                out[key] = repr(value)
        return out

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, where: str = "run config") -> RunConfig:
        """Build from a mapping (e.g. a TOML table); errors name ``where`` and the key."""
        unknown = [k for k in mapping if k not in _FIELDS]
        if unknown:
            key = unknown[0]
            raise ConfigError(
                f"{where}: unknown key {key!r}{did_you_mean(key, _FIELDS)}; expected one of "
                f"{', '.join(_FIELDS)}"
            )
        return cls(**dict(mapping))

    @staticmethod
    def describe() -> dict[str, str]:
        """Key -> description, for help texts."""
        return {k: d for k, (_, d) in _FIELDS.items()}

    # ------------------------------------------------------------------ validation
    def _fail(self, key: str, expected: str, found: Any) -> None:
        raise ConfigError(f"RunConfig.{key}: expected {expected}, found {found!r}")

    def _validate(self) -> None:
        balance = self.initial_balance
        if not isinstance(balance, (int, float)) or isinstance(balance, bool) or not (
                math.isfinite(balance) and balance > 0):
            self._fail("initial_balance", "a finite number > 0", balance)
        object.__setattr__(self, "initial_balance", float(balance))
        self._check_per_symbol("leverage", lambda v: isinstance(v, (int, float))
                               and not isinstance(v, bool) and math.isfinite(v) and v > 0,
                               "a number > 0 (e.g. 10)")
        self._check_per_symbol("margin_mode", lambda v: v in _CHOICES["margin_mode"],
                               "'isolated' or 'cross'")
        for key in ("position_mode", "path_policy", "liquidation_remainder", "sizing_basis",
                    "liquidation_mode"):
            value = getattr(self, key)
            if value not in _CHOICES[key]:
                hint = did_you_mean(str(value), _CHOICES[key])
                self._fail(key, f"one of {', '.join(_CHOICES[key])}{hint}", value)
        if isinstance(self.slippage, str):
            if self.slippage not in ("none", "fixed", "sqrt"):
                self._fail("slippage", "'none', 'fixed', 'sqrt' or a SlippageModel instance"
                           + did_you_mean(self.slippage, ("none", "fixed", "sqrt")), self.slippage)
        elif not callable(getattr(self.slippage, "impact", None)):
            self._fail("slippage", "a model with an impact(...) method", self.slippage)
        if not isinstance(self.slippage_params, dict):
            self._fail("slippage_params", "a dict of keyword arguments", self.slippage_params)
        if self.fees is not None:
            fees = self.fees
            if isinstance(fees, Mapping):
                fees = (fees.get("maker"), fees.get("taker"))
            if (not isinstance(fees, (tuple, list)) or len(fees) != 2
                    or not all(isinstance(f, (int, float)) and 0 <= f < 0.1 for f in fees)):
                self._fail("fees", "(maker, taker) fractions in [0, 0.1), e.g. (0.0002, 0.0004)",
                           self.fees)
            object.__setattr__(self, "fees", (float(fees[0]), float(fees[1])))
        rate = self.liquidation_fee_rate
        if rate is not None and not (isinstance(rate, (int, float)) and 0 <= rate < 1):
            self._fail("liquidation_fee_rate", "a fraction in [0, 1) or None", rate)
        latency = self.liquidation_latency_ms
        if not isinstance(latency, (int, float)) or isinstance(latency, bool) \
                or not math.isfinite(latency) or latency < 0 or latency != int(latency):
            self._fail("liquidation_latency_ms", "a whole number of milliseconds >= 0 (e.g. 1000)",
                       latency)
        object.__setattr__(self, "liquidation_latency_ms", int(latency))
        for key in ("rounding", "gating", "allow_tiers_before_first", "progress"):
            if not isinstance(getattr(self, key), bool):
                self._fail(key, "true or false", getattr(self, key))
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            self._fail("seed", "an integer", self.seed)
        if not isinstance(self.progress_every, int) or self.progress_every < 1:
            self._fail("progress_every", "an integer >= 1", self.progress_every)
        if self.name is not None and not isinstance(self.name, str):
            self._fail("name", "a string or None", self.name)

    def _check_per_symbol(self, key: str, ok: Any, expected: str) -> None:
        value = getattr(self, key)
        values = value.values() if isinstance(value, dict) else [value]
        for item in values:
            if not ok(item):
                self._fail(key, expected + " (or {symbol: value})", item)

    def for_symbol(self, key: str, symbol: str) -> Any:
        """Value of a per-symbol key (``leverage``, ``margin_mode``) for ``symbol``."""
        value = getattr(self, key)
        if isinstance(value, dict):
            if symbol in value:
                return value[symbol]
            if "default" in value:
                return value["default"]
            raise ConfigError(
                f"RunConfig.{key}: no value for symbol {symbol!r}; expected a key for every "
                f"symbol or a 'default' key, found keys {sorted(value)}"
            )
        return value


def _restore(values: dict[str, Any]) -> RunConfig:
    """Unpickle a :class:`RunConfig` (validated again, like any construction)."""
    return RunConfig(**values)
