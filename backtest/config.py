"""The run configuration: keyword-only, validated, with did-you-mean errors.

A :class:`RunConfig` is immutable; :meth:`RunConfig.replace` returns a changed copy and
:meth:`RunConfig.from_mapping` reads the ``[run]`` table of a TOML run file.

Every key's type and range is declared once, in :data:`_SCHEMA` (and the run file's
``[data]``/``[strategy]`` keys in :data:`RUN_FILE_SCHEMA`); the constructor, TOML run files
and command-line flags are all checked through :func:`checked`, so a wrong type anywhere gets
the same error: the key, what was expected, what was found and an example of a valid value.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from backtest.config_checks import (BadValue, Check, Choice, Custom, Flag, Integer, Number, Optional,
                                    Pair, PerSymbol, Table, Text)
from backtest.config_checks import describe as describe_value
from backtest.errors import ConfigError, did_you_mean

__all__ = ["MARGIN_ASSET", "PATH_POLICIES", "RUN_FILE_SCHEMA", "RunConfig", "checked",
           "check_run_name", "default_run_name"]

#: The margin asset of the USDⓈ-M runs (the wallet's currency).
MARGIN_ASSET = "USDT"

#: Intrabar path policies (see docs/engine.md "Intrabar path").
PATH_POLICIES = ("worst_case", "adaptive", "ohlc", "olhc")

_CHOICES: dict[str, tuple[str, ...]] = {
    "margin_mode": ("isolated", "cross"),
    "position_mode": ("one_way", "hedge"),
    "path_policy": PATH_POLICIES,
    "liquidation_remainder": ("insurance_fund", "trader"),
    "liquidation_mode": ("full", "tier_down"),
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
    "collateral": (None, "balances per asset at the start, e.g. {BTC = 0.5, USDT = 1000} "
                   "(Multi-Assets Mode; USDT is the wallet); None: the wallet only"),
    "collateral_table": ("binance_multi_assets", "haircut table of the collateral: "
                         "binance_multi_assets or bybit_uta"),
    "insurance_fund": (None, "assumed starting balance of the venue's insurance fund, USDT "
                       "(>= 0); None: unbounded (never exhausted)"),
    "adl_events": ((), "injected ADL events: [{ts, symbol?, deficit?, qty?, price?}] "
                   "(backtest.adl; the stress term adl@TIME)"),
    "progress": (False, "show a progress bar"),
    "progress_every": (20_000, "bars between progress-bar updates"),
    "name": (None, "run name (output folder name)"),
}


def _is_slippage(value: Any) -> bool:
    if isinstance(value, str):
        return value in ("none", "fixed", "sqrt")
    return callable(getattr(value, "impact", None))


def _is_tiers(value: Any) -> bool:
    from backtest.venues.tiers import TierSchedule, TierTable

    kinds = (TierTable, TierSchedule)
    if isinstance(value, dict):
        return bool(value) and all(isinstance(k, str) and isinstance(v, kinds) for k, v in value.items())
    return isinstance(value, kinds)


def _known_venue(name: str) -> None:
    from backtest.venues.base import ALIASES, VENUES

    if name not in VENUES and name not in ALIASES:
        raise BadValue(f"a registered venue: {', '.join(VENUES)}{did_you_mean(name, [*VENUES, *ALIASES])}")


#: Longest run name: a folder name must fit the 255-byte limit of common file systems, with
#: room for the temporary-folder prefix and suffix the writer adds.
RUN_NAME_MAX = 120
_RUN_NAME_EXPECTED = (
    f"a plain folder name (not empty, not starting with '.', no path separators, NUL or control "
    f"characters, at most {RUN_NAME_MAX} bytes); use --out to write elsewhere")
_RUN_NAME_BAD = re.compile(r"[\\/\x00-\x1f\x7f]")


def check_run_name(name: str) -> None:
    """Refuse a run name that is not one plain folder name (it would leave ``runs/``).

    Raises
    ------
    BadValue
        For ``""``, ``.``/``..``, a leading dot (hidden; the writer's temporary folders use
        it), path separators, NUL or control characters, or more than :data:`RUN_NAME_MAX`
        bytes.
    """
    if (not name.strip() or name.startswith(".") or _RUN_NAME_BAD.search(name)
            or len(name.encode("utf-8")) > RUN_NAME_MAX or name != name.strip()):
        raise BadValue()


def default_run_name(strategy: str) -> str:
    """The run name used when none is given: the strategy's name made into a safe folder name.

    ``module:Class`` gives ``module_Class``; a file path (``./x/my.py:Cls``) keeps only
    letters, digits, ``-``, ``_`` and ``.`` so the folder stays inside ``runs/``.
    """
    # no leading '-' either: a folder named like an option is a trap in a shell
    text = re.sub(r"[^A-Za-z0-9_.-]+", "_", strategy).strip("._-") or "run"
    return text[-RUN_NAME_MAX:].lstrip("._-") or "run"


#: The one declaration of each RunConfig key's type and range (see ``backtest.config_checks``).
#: A key added to ``_FIELDS`` gets its entry here (tests/engine/test_config_schema.py checks it).
_SCHEMA: dict[str, Check] = {
    "initial_balance": Number(lo=0, lo_open=True, example="10000"),
    # Binance USDⓈ-M leverage is chosen between 1x and the bracket's cap: IM = N/leverage
    # (../shared/specs/margin_rules.md "Initial margin"), and the change-leverage endpoint
    # takes "target initial leverage: int from 1 to 125" (https://developers.binance.com/docs/
    # derivatives/portfolio-margin/account/Change-UM-Initial-Leverage). Below 1x the initial
    # margin would exceed the notional. The cap depends on the tier table: the engine checks
    # it before the run.
    "leverage": PerSymbol(Number(lo=1, example="10",
                                 why=" (the minimum leverage is 1x; the venue's tier table caps it)")),
    "margin_mode": PerSymbol(Choice(_CHOICES["margin_mode"])),
    "position_mode": Choice(_CHOICES["position_mode"]),
    "venue": Text("a registered venue name", '"binance_usdm"', verify=_known_venue),
    "path_policy": Choice(PATH_POLICIES),
    "slippage": Custom(_is_slippage, "'none', 'fixed', 'sqrt' or a SlippageModel instance "
                       "(an object with an impact(...) method)", '"sqrt"'),
    "slippage_params": Table(Number(example="5"), what="parameter"),
    "fees": Optional(Pair(Number(lo=0, hi=0.1, hi_open=True, example="0.0004"), ("maker", "taker"),
                          "[0.0002, 0.0004]")),
    "tiers": Optional(Custom(_is_tiers, "a TierTable or TierSchedule (or {symbol: table}) given "
                             "in Python; a run file cannot hold one: import tier tables with "
                             "`margincall data import` instead", "(not settable in a run file)")),
    "liquidation_fee_rate": Optional(Number(lo=0, hi=1, hi_open=True, example="0.0125")),
    "liquidation_remainder": Choice(_CHOICES["liquidation_remainder"]),
    "liquidation_mode": Choice(_CHOICES["liquidation_mode"]),
    "liquidation_latency_ms": Integer(lo=0, example="1000"),
    "sizing_basis": Choice(_CHOICES["sizing_basis"]),
    "rounding": Flag(),
    "gating": Flag(),
    "allow_tiers_before_first": Flag(),
    "seed": Integer(lo=0, example="7"),
    "collateral": Optional(Table(Number(lo=0, example="0.5"), what="asset")),
    "collateral_table": Choice(("binance_multi_assets", "bybit_uta")),
    "insurance_fund": Optional(Number(lo=0, example="1000000")),
    # the events' own fields are checked (and normalised) by backtest.adl.adl_events
    "adl_events": Custom(lambda v: v is None or isinstance(v, (list, tuple, dict)) or
                         type(v).__name__ == "AdlEvent",
                         "a list of tables {ts = ..., symbol = ..., deficit = ...}",
                         '[{ts = "2022-11-09T13:00Z"}]'),
    "progress": Flag(),
    "progress_every": Integer(lo=1, example="20000"),
    "name": Optional(Text(_RUN_NAME_EXPECTED, '"sma-10x"', verify=check_run_name)),
}


def checked(key: str, value: Any, *, where: str, check: Check | None = None,
            subject: str | None = None) -> Any:
    """Check ``value`` of ``key`` against its schema entry and return it normalised.

    Parameters
    ----------
    key : str
        The key (a RunConfig key unless ``check`` is given).
    value : object
        The value as given (Python, TOML or a command-line flag).
    where : str
        The subject for the message: ``"RunConfig"`` or e.g. ``"run.toml [run]"``.
    check : Check, optional
        The check to apply (default: the key's :data:`_SCHEMA` entry).
    subject : str, optional
        What the message names instead of ``where`` and ``key`` (e.g. ``"--leverage"``).

    Raises
    ------
    ConfigError
        Naming ``where`` and ``key``, what was expected, what was found and a valid example.
    """
    check = check if check is not None else _SCHEMA.get(key)
    if check is None:  # a key whose check lives in the constructor only
        return value
    try:
        return check(value)
    except BadValue as bad:
        expected = bad.expected or check.expected
        found = bad.found if bad.has_found else value
        hint = ""
        options = getattr(getattr(check, "inner", check), "options", None)
        if options and isinstance(found, str):
            hint = did_you_mean(found, options)
        if subject is None:
            subject = f"{where}.{key}" if where == "RunConfig" else f"{where} {key}"
        example = getattr(check, "example", "")
        fix = ""
        if example and not example.startswith("("):
            fix = (f"; fix: e.g. {subject} {example.strip('[]').replace(chr(34), '')}"
                   if subject.startswith("--") else f"; fix: e.g. {key} = {example}")
        raise ConfigError(f"{subject}: expected {expected}, found {describe_value(found)}{hint}{fix}") \
            from None


def _parse_when(value: Any) -> int:
    from data_loaders.errors import DataError
    from data_loaders.schemas import to_ms

    try:
        return to_ms(value if not isinstance(value, str) else value.strip())
    except DataError:
        raise BadValue() from None


def _timeframe(value: str) -> None:
    from data_loaders.errors import DataError
    from data_loaders.schemas import timeframe_ms

    try:
        timeframe_ms(value)
    except DataError:
        raise BadValue() from None


def _symbol_form(value: str) -> None:
    """The store's one symbol rule (:func:`data_loaders.symbols.validate_symbol`)."""
    from data_loaders.errors import DataError
    from data_loaders.symbols import validate_symbol

    try:
        validate_symbol(value)
    except DataError:
        raise BadValue() from None


def _is_when(value: Any) -> bool:
    import datetime as dt

    if isinstance(value, bool) or not isinstance(value, (int, str, dt.date)):
        return False
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return True
    try:
        _parse_when(value)
    except BadValue:
        return False
    return True


def _when_ms(value: Any) -> int:
    import datetime as dt

    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = value.isoformat()  # a TOML local date (start = 2024-03-01) is a UTC day
    ms = _parse_when(value)
    if not _WHEN_RANGE[0] <= ms < _WHEN_RANGE[1]:  # beyond it, datetime arithmetic overflows
        raise BadValue()
    return ms


#: Accepted window times, epoch ms: 1970-01-01 to 2100-01-01 UTC (no market data lies outside).
_WHEN_RANGE = (0, 4_102_444_800_000)


_SYMBOL = Text("a symbol such as \"BTC/USDT:USDT\"", '"BTC/USDT:USDT"', verify=_symbol_form)
_WHEN = Custom(_is_when, "a UTC date or time from 1970 to 2099 such as \"2024-03-01\" or "
               "\"2024-03-01T12:00Z\" (or epoch milliseconds)", '"2024-03-01"', convert=_when_ms)
_TIMEFRAME = Text("a timeframe: a number and a unit s/m/h/d/w such as \"1m\", \"1h\"", '"1h"',
                  verify=_timeframe)

#: The run file's other tables (``[data]``, ``[strategy]``): key -> check, declared once.
#: ``[run]`` holds RunConfig keys (:data:`_SCHEMA`) plus ``out``.
RUN_FILE_SCHEMA: dict[str, dict[str, Check]] = {
    "data": {
        "exchange": Text("a ccxt exchange id", '"binanceusdm"'),
        # the user's statement that this exchange's prices drive another venue's rules
        # (the price-source rule, backtest.compare.price_source)
        "prices_from": Text("a ccxt exchange id whose prices drive the venue's rules", '"binanceusdm"'),
        "symbols": Custom(lambda v: isinstance(v, str) or (isinstance(v, list) and bool(v)),
                          "a non-empty list of symbols such as [\"BTC/USDT:USDT\"]",
                          '["BTC/USDT:USDT"]',
                          convert=lambda v: [_symbol_item(s) for s in
                                             (v.split(",") if isinstance(v, str) else v)]),
        "timeframe": _TIMEFRAME,
        "detail_timeframe": _TIMEFRAME,
        "start": _WHEN,
        "end": _WHEN,
        "store": Text("a folder path", '".margincall/store"'),
    },
    "strategy": {
        "name": Text("a built-in strategy name or module:Class", '"sma_cross"'),
        "params": Custom(lambda v: isinstance(v, Mapping), "a table of strategy parameters",
                         "{ fast = 20, slow = 100 }", convert=dict),
    },
    "run": {"out": Text("an output folder path", '"runs/sma"')},
}


def _symbol_item(value: Any) -> str:
    try:
        return _SYMBOL(value.strip() if isinstance(value, str) else value)
    except BadValue:
        raise BadValue(f"{RUN_FILE_SCHEMA['data']['symbols'].expected}; each symbol must be "
                       f"{_SYMBOL.expected}", value, has_found=True) from None


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
    collateral : dict, optional
        Balances per asset at the start (``{"BTC": 0.5, "USDT": 1000}``): assets besides the
        margin asset count at their haircut value in the cross margin balance (Binance
        Multi-Assets Mode, cross margin only); the margin asset's entry is the wallet and must
        agree with ``initial_balance`` (a TOML table without ``initial_balance`` takes it).
        Each asset is priced by the mark of the run symbol whose base it is.
    collateral_table : {'binance_multi_assets', 'bybit_uta'}
        Dated haircut tables valuing the collateral (``backtest.venues.collateral``).
    insurance_fund : float, optional
        Assumed starting balance of the insurance fund, USDT; None: unbounded.
    adl_events : sequence of dict
        Injected counterparty liquidations that may auto-deleverage the account
        (``backtest.adl.AdlEvent`` fields).
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
        self._setup(kwargs, "RunConfig")

    def _setup(self, values: Mapping[str, Any], where: str) -> None:
        for key in values:
            if key not in _FIELDS:
                raise ConfigError(
                    f"{where}: unknown key {key!r}{did_you_mean(str(key), _FIELDS)}; "
                    f"expected one of {', '.join(_FIELDS)}"
                )
        for key, (default, _) in _FIELDS.items():
            value = values.get(key, default)
            if isinstance(value, dict):
                value = dict(value)
            object.__setattr__(self, key, value)
        self._validate(where)

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
                out[key] = [v.to_dict() if hasattr(v, "to_dict") else v for v in value]
            elif isinstance(value, dict):
                out[key] = {str(k): v if isinstance(v, (bool, int, float, str)) else repr(v)
                            for k, v in value.items()}
            else:
                out[key] = repr(value)
        return out

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, where: str = "run config") -> RunConfig:
        """Build from a mapping (e.g. a TOML table); errors name ``where`` and the key."""
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"{where}: expected a table of run settings, found "
                              f"{describe_value(mapping)}; write it as [run] with key = value lines")
        values = dict(mapping)
        collateral = values.get("collateral")
        if isinstance(collateral, Mapping) and "initial_balance" not in values \
                and isinstance(collateral.get(MARGIN_ASSET), (int, float)):
            values["initial_balance"] = collateral[MARGIN_ASSET]  # the wallet, said once
        config = cls.__new__(cls)
        config._setup(values, where)
        return config

    @staticmethod
    def describe() -> dict[str, str]:
        """Key -> description, for help texts."""
        return {k: d for k, (_, d) in _FIELDS.items()}

    # ------------------------------------------------------------------ validation
    def _validate(self, where: str = "RunConfig") -> None:
        # every key through its one schema entry (types, ranges, choices); the checks return
        # the normalised value (ints to floats, fee tables to tuples, tables copied)
        for key, check in _SCHEMA.items():
            object.__setattr__(self, key, checked(key, getattr(self, key), where=where))
        self._validate_ledger(where)

    def _validate_ledger(self, where: str) -> None:
        """What the schema cannot say alone: the collateral's wallet entry agrees with
        ``initial_balance``, Multi-Assets Mode is cross only; the ADL events normalised."""
        from backtest.adl import adl_events

        collateral = self.collateral
        if collateral is not None:
            wallet = collateral.get(MARGIN_ASSET)
            if wallet is not None and float(wallet) != self.initial_balance:
                raise ConfigError(
                    f"{where}.collateral: expected its {MARGIN_ASSET} entry to be the wallet, equal "
                    f"to initial_balance {self.initial_balance:g}, found {wallet!r}; give one of the two")
            modes = self.margin_mode.values() if isinstance(self.margin_mode, dict) else [self.margin_mode]
            if any(m != "cross" for m in modes) and any(a != MARGIN_ASSET for a in collateral):
                raise ConfigError(
                    f"{where}.margin_mode: expected 'cross' with collateral besides {MARGIN_ASSET} "
                    f"(Multi-Assets Mode is cross only), found {self.margin_mode!r}; set "
                    "margin_mode = 'cross'")
        object.__setattr__(self, "adl_events", adl_events(self.adl_events, where=f"{where}.adl_events"))

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
