"""Stress scenarios: composable transformations of market data.

A scenario takes a :class:`StressMarket` (bar and funding frames in the engine's format, plus
a slippage multiplier) and returns a new one; nothing is modified in place. Scenarios compose
left to right with :class:`ScenarioSet` (``ScenarioSet("crash+drought", [Shock(...),
LiquidityDrought(...)])``). Every transform keeps candles sane: ``low <= min(open, close)`` and
``high >= max(open, close)``, prices > 0, for last and mark prices alike.

Transforms
----------
* :class:`Shock` — every price from the first bar at or after ``at`` on is multiplied by
  ``1 + pct``: the bar opens with a gap, so stops and liquidation prices are jumped over
  (filled at the gapped open, not at their trigger).
* :class:`VolatilityScale` — log returns are scaled by ``factor`` around their causal rolling
  mean (the trend): ``r' = mu + factor * (r - mu)``; each bar's open/high/low are rescaled by the
  same monotone map relative to the previous close, which keeps OHLC order.
* :class:`FundingSpike` — funding rates inside a window are set to / increased by / multiplied by
  a value.
* :class:`MarkDivergence` — the mark candles inside a window are moved ``pct`` away from the last
  price (a mark below last liquidates longs earlier than the traded price suggests).
* :class:`LiquidityDrought` — slippage multiplied by ``multiplier``: over the whole run through
  the engine's slippage configuration (:meth:`StressMarket.config`), or inside a window
  ``[start, end)`` through the bars' ``slippage_scale`` column (the engine multiplies the
  impact of every fill in such a bar, strategy and liquidation fills alike). Combine it with a
  shock for a thin-book crash.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import polars as pl

from backtest.risk.errors import ScenarioError
from backtest.risk.paths import to_ms
from backtest.risk.stress_market import ScaledSlippage, StressMarket

__all__ = [
    "AdlInjection",
    "FundingSpike",
    "LiquidityDrought",
    "MarkDivergence",
    "ScaledSlippage",
    "Scenario",
    "ScenarioSet",
    "Shock",
    "StressMarket",
    "VolatilityScale",
    "check_ohlc",
    "parse_scenario",
]

#: A calendar date alone: read as 00:00 UTC of that day.
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_PRICE_GROUPS = (("open", "high", "low", "close"), ("mark_open", "mark_high", "mark_low", "mark_close"))


def _ms(value: int | datetime | str) -> int:
    """A scenario instant in UTC ms.

    A date alone (``2022-11-08``) is that day's 00:00 UTC (the documented window syntax
    ``funding:0.003@2022-11-08..2022-11-10``); a time of day without a zone is refused (likely
    a mistake: local time or UTC?).
    """
    from data_loaders.errors import DataError
    from data_loaders.schemas import to_ms as parse_ms

    if isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip()):
        value = f"{value.strip()}T00:00:00Z"
    try:
        return parse_ms(value, naive="reject")
    except DataError as exc:
        raise ScenarioError(f"scenario {exc}") from None


def _number(what: str, value: Any, expected: str, ok: Callable[[float], bool], example: str) -> None:
    """Refuse a non-finite or out-of-range scenario value with the subject, expectation and fix."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ScenarioError(f"{what}: expected {expected}, found {value!r}; e.g. {example}") from None
    if not math.isfinite(number) or not ok(number):
        raise ScenarioError(f"{what}: expected {expected}, found {value!r}; e.g. {example}")


def _check_window(what: str, start: Any, end: Any, *, optional: bool) -> None:
    """A window's ends parse and ``end > start`` (both or neither when ``optional``)."""
    if start is None and end is None and optional:
        return
    if start is None or end is None:
        if optional:
            return  # "give both or neither" is said where the window is used
        raise ScenarioError(f"{what}: expected a window START..END, found start={start!r}, end={end!r}")
    _window(what, start, end)


@runtime_checkable
class Scenario(Protocol):
    """A transformation of a :class:`StressMarket`."""

    def apply(self, market: StressMarket) -> StressMarket:
        """Return the transformed market (the input is not modified)."""
        ...

    def describe(self) -> str:
        """One line saying what the scenario does."""
        ...


def _symbols(market: StressMarket, symbols: Sequence[str] | None) -> list[str]:
    if symbols is None:
        return list(market.bars)
    unknown = [s for s in symbols if s not in market.bars]
    if unknown:
        raise ScenarioError(f"scenario symbols {unknown} are not in the market data (have {list(market.bars)})")
    return list(symbols)


def _optional_ms(value: int | datetime | str | None) -> int | None:
    return None if value is None else _ms(value)


def _window(what: str, start: int | datetime | str, end: int | datetime | str) -> tuple[int, int]:
    """``[start, end)`` in UTC ms; ``what`` (e.g. "funding spike") starts the error message."""
    start_ms, end_ms = _ms(start), _ms(end)
    if end_ms <= start_ms:
        raise ScenarioError(f"{what}: end must be after start, found {start} .. {end}")
    return start_ms, end_ms


def _require_touched(touched: int, what: str, item: str, start: Any, end: Any) -> None:
    # a window that selects nothing would silently stress nothing: say so instead
    if touched == 0:
        raise ScenarioError(f"{what}: no {item} falls in [{start}, {end}); widen the window")


def _where(mask: pl.Series, column: str, expr: pl.Expr) -> pl.Expr:
    """``expr`` where ``mask`` is True, ``column`` unchanged elsewhere (named ``column``)."""
    return pl.when(mask).then(expr).otherwise(pl.col(column)).alias(column)


def _in_window(ts: np.ndarray, start: int | None, end: int | None) -> np.ndarray:
    mask = np.ones(ts.size, dtype=bool)
    if start is not None:
        mask &= ts >= start
    if end is not None:
        mask &= ts < end
    return mask


@dataclass(frozen=True)
class Shock:
    """An instantaneous move of ``pct`` (e.g. -0.3 = -30 %) at ``at``, kept afterwards.

    The first bar whose open time is ``>= at`` and every later bar have all prices (last,
    mark, funding mark) multiplied by ``1 + pct``; that bar opens with the gap.
    """

    pct: float
    at: int | datetime | str
    symbols: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _number("shock pct", self.pct, "a finite fraction > -1 (-0.3 = -30 %)", lambda v: v > -1,
                "shock:-0.3@2022-11-09T14:00Z")
        _ms(self.at)

    def apply(self, market: StressMarket) -> StressMarket:
        """See the class docstring."""
        if not self.pct > -1:
            raise ScenarioError(f"shock pct must be > -1 (-100 %), found {self.pct}")
        at = _ms(self.at)
        factor = 1.0 + self.pct
        bars = dict(market.bars)
        funding = dict(market.funding)
        for symbol in _symbols(market, self.symbols):
            frame = bars[symbol]
            ts = to_ms(frame["ts"])
            if ts.size == 0 or at > ts[-1]:
                raise ScenarioError(f"shock at {at} ms: no bar of {symbol} opens at or after it "
                                    f"(data ends at {ts[-1] if ts.size else 'empty'}); pick a time inside the data")
            after = pl.Series(ts >= at)
            cols = [c for group in _PRICE_GROUPS for c in group if c in frame.columns]
            bars[symbol] = frame.with_columns([_where(after, c, pl.col(c) * factor) for c in cols])
            if symbol in funding and "mark_price" in funding[symbol].columns:
                fts = pl.Series(to_ms(funding[symbol]["ts"]) >= at)
                funding[symbol] = funding[symbol].with_columns(
                    _where(fts, "mark_price", pl.col("mark_price") * factor))
        note = f"shock {self.pct:+.2%} at {at} ms"
        return replace(market, bars=bars, funding=funding, applied=market.applied + (note,))

    def describe(self) -> str:
        """One line."""
        return f"instantaneous shock of {self.pct:+.2%} at {self.at}"


def scale_log_prices(opens: np.ndarray, highs: np.ndarray, lows: np.ndarray, closes: np.ndarray,
                     factor: np.ndarray, window: int) -> tuple[np.ndarray, ...]:
    """Scale close-to-close log returns by ``factor`` (per bar) around a causal rolling mean.

    ``r'_i = mu_i + k_i (r_i - mu_i)`` with ``mu_i`` the mean of the last ``window`` returns;
    open/high/low of bar ``i`` map by ``x' = c'_{i-1} + k_i (ln x - c_{i-1}) + (1 - k_i) mu_i``,
    an increasing map, so the candle stays ordered. Bar 0 is anchored on its own open.
    """
    logs = [np.log(a) for a in (opens, highs, lows, closes)]
    c = logs[3]
    prev = np.concatenate([[logs[0][0]], c[:-1]])
    r = c - prev
    csum = np.concatenate([[0.0], np.cumsum(r)])
    idx = np.arange(r.size)
    lo = np.maximum(0, idx - window + 1)
    mu = (csum[idx + 1] - csum[lo]) / (idx + 1 - lo)
    new_r = mu + factor * (r - mu)
    new_c = logs[0][0] + np.cumsum(new_r)
    new_prev = np.concatenate([[logs[0][0]], new_c[:-1]])
    new_o, new_h, new_l = (np.exp(new_prev + factor * (x - prev) + (1.0 - factor) * mu) for x in logs[:3])
    new_close = np.exp(new_c)
    # the map is increasing, so only float rounding (1 ulp) can break the candle order; repair it
    body_low, body_high = np.minimum(new_o, new_close), np.maximum(new_o, new_close)
    return new_o, np.maximum(new_h, body_high), np.minimum(new_l, body_low), new_close


@dataclass(frozen=True)
class VolatilityScale:
    """Scale volatility by ``factor`` inside ``[start, end)`` (whole range by default).

    ``factor`` > 0; 2.0 doubles the log-return deviations from the rolling trend of
    ``window`` bars. Last and mark candles are each transformed with their own trend.
    """

    factor: float
    window: int = 24
    start: int | datetime | str | None = None
    end: int | datetime | str | None = None
    symbols: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _number("volatility scale factor", self.factor, "a finite factor > 0 (2 doubles the volatility)",
                lambda v: v > 0, "vol:2 or vol:3@2022-11-08..2022-11-10")
        _check_window("volatility scale", self.start, self.end, optional=True)

    def apply(self, market: StressMarket) -> StressMarket:
        """See the class docstring."""
        if not self.factor > 0 or self.window < 1:
            raise ScenarioError(f"volatility scale: need factor > 0 and window >= 1 bar, found "
                                f"factor={self.factor}, window={self.window}")
        start, end = _optional_ms(self.start), _optional_ms(self.end)
        bars = dict(market.bars)
        for symbol in _symbols(market, self.symbols):
            frame = bars[symbol]
            ts = to_ms(frame["ts"])
            k = np.where(_in_window(ts, start, end), self.factor, 1.0)
            updates = []
            for group in _PRICE_GROUPS:
                if not all(c in frame.columns for c in group):
                    continue
                arrays = [frame[c].to_numpy().astype(float) for c in group]
                new = scale_log_prices(*arrays, factor=k, window=self.window)
                updates += [pl.Series(c, v) for c, v in zip(group, new)]
            bars[symbol] = frame.with_columns(updates)
        return market.with_bars(bars, f"volatility x{self.factor:g} (trend window {self.window} bars)")

    def describe(self) -> str:
        """One line."""
        return f"volatility scaled x{self.factor:g} around a {self.window}-bar trend"


@dataclass(frozen=True)
class FundingSpike:
    """Funding rates inside ``[start, end)`` set to / raised by / multiplied by ``rate``.

    ``mode``: ``"set"`` (rate = value, fraction per interval, + = longs pay), ``"add"`` or
    ``"multiply"``.
    """

    rate: float
    start: int | datetime | str
    end: int | datetime | str
    mode: Literal["set", "add", "multiply"] = "set"
    symbols: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _number("funding spike rate", self.rate, "a finite rate (fraction per interval, + = longs pay)",
                lambda v: True, "funding:0.003@2022-11-08..2022-11-10")
        _check_window("funding spike", self.start, self.end, optional=False)

    def apply(self, market: StressMarket) -> StressMarket:
        """See the class docstring."""
        if self.mode not in ("set", "add", "multiply"):
            raise ScenarioError(f"funding spike mode must be 'set', 'add' or 'multiply', found {self.mode!r}")
        start, end = _window("funding spike", self.start, self.end)
        funding = dict(market.funding)
        touched = 0
        for symbol in _symbols(market, self.symbols):
            frame = funding.get(symbol)
            if frame is None or frame.height == 0:
                raise ScenarioError(f"funding spike: no funding data for {symbol}; load funding first "
                                    "(margincall data fetch --dataset funding ...)")
            col = "rate" if "rate" in frame.columns else "funding_rate"
            inside = pl.Series(_in_window(to_ms(frame["ts"]), start, end))
            touched += int(inside.sum())
            value = {"set": pl.lit(self.rate), "add": pl.col(col) + self.rate,
                     "multiply": pl.col(col) * self.rate}[self.mode]
            funding[symbol] = frame.with_columns(_where(inside, col, value))
        _require_touched(touched, "funding spike", "funding settlement", self.start, self.end)
        note = f"funding {self.mode} {self.rate:g} on {touched} settlement(s)"
        return replace(market, funding=funding, applied=market.applied + (note,))

    def describe(self) -> str:
        """One line."""
        return f"funding {self.mode} {self.rate:g} from {self.start} to {self.end}"


@dataclass(frozen=True)
class MarkDivergence:
    """Mark candles inside ``[start, end)`` moved by ``pct`` relative to their own values.

    ``pct = -0.02`` puts the mark 2 % below where it was (below the last price for a normal
    basis): longs are liquidated earlier than the traded price suggests. Frames without mark
    columns get them from the last price first.
    """

    pct: float
    start: int | datetime | str
    end: int | datetime | str
    symbols: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _number("mark divergence pct", self.pct, "a finite fraction > -1 (-0.02 = 2 % below)", lambda v: v > -1,
                "mark:-0.02@2022-11-09T00:00Z..2022-11-09T06:00Z")
        _check_window("mark divergence", self.start, self.end, optional=False)

    def apply(self, market: StressMarket) -> StressMarket:
        """See the class docstring."""
        if not self.pct > -1:
            raise ScenarioError(f"mark divergence pct must be > -1, found {self.pct}")
        start, end = _window("mark divergence", self.start, self.end)
        bars = dict(market.bars)
        for symbol in _symbols(market, self.symbols):
            frame = bars[symbol]
            for last, mark in zip(*_PRICE_GROUPS):
                if mark not in frame.columns:
                    frame = frame.with_columns(pl.col(last).alias(mark))
            inside = pl.Series(_in_window(to_ms(frame["ts"]), start, end))
            bars[symbol] = frame.with_columns(
                [_where(inside, c, pl.col(c) * (1 + self.pct)) for c in _PRICE_GROUPS[1]])
        return market.with_bars(bars, f"mark moved {self.pct:+.2%} from {start} to {end} ms")

    def describe(self) -> str:
        """One line."""
        return f"mark price moved {self.pct:+.2%} from {self.start} to {self.end}"


@dataclass(frozen=True)
class LiquidityDrought:
    """Every slippage impact multiplied by ``multiplier``: in ``[start, end)``, or the whole run.

    With a window, the bars of ``symbols`` (default: all) inside it get ``slippage_scale``
    multiplied by ``multiplier`` (a column of 1.0 is added where there was none); without one,
    the run's slippage model is scaled (:meth:`StressMarket.config`). Impacts are capped at 100 %.
    """

    multiplier: float
    start: int | datetime | str | None = None
    end: int | datetime | str | None = None
    symbols: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _number("liquidity drought multiplier", self.multiplier, "a finite multiplier >= 1 (5 = five times the "
                "slippage)", lambda v: v >= 1, "drought:5 or drought:10@2022-11-09T13:00Z..2022-11-09T16:00Z")
        _check_window("liquidity drought", self.start, self.end, optional=True)

    def apply(self, market: StressMarket) -> StressMarket:
        """See the class docstring."""
        if not self.multiplier >= 1:
            raise ScenarioError(f"liquidity drought multiplier must be >= 1, found {self.multiplier}")
        if self.start is None and self.end is None:
            return replace(market, slippage_multiplier=market.slippage_multiplier * self.multiplier,
                           applied=market.applied + (f"slippage x{self.multiplier:g}",))
        if self.start is None or self.end is None:
            raise ScenarioError("liquidity drought: give both start and end of the window, or neither "
                                "(the whole run)")
        from backtest.market_data import SLIPPAGE_SCALE

        start, end = _window("liquidity drought", self.start, self.end)
        bars = dict(market.bars)
        touched = 0
        for symbol in _symbols(market, self.symbols):
            frame = bars[symbol]
            if SLIPPAGE_SCALE not in frame.columns:
                frame = frame.with_columns(pl.lit(1.0).alias(SLIPPAGE_SCALE))
            inside = pl.Series(_in_window(to_ms(frame["ts"]), start, end))
            touched += int(inside.sum())
            bars[symbol] = frame.with_columns(
                _where(inside, SLIPPAGE_SCALE, pl.col(SLIPPAGE_SCALE) * self.multiplier))
        _require_touched(touched, "liquidity drought", "bar", self.start, self.end)
        return market.with_bars(bars, f"slippage x{self.multiplier:g} on {touched} bar(s) from {start} to {end} ms")

    def describe(self) -> str:
        """One line."""
        if self.start is None and self.end is None:
            return f"liquidity drought: slippage x{self.multiplier:g}"
        return f"liquidity drought: slippage x{self.multiplier:g} from {self.start} to {self.end}"


@dataclass(frozen=True)
class AdlInjection:
    """An injected counterparty liquidation the insurance fund may not cover (``backtest.adl``).

    ``deficit`` None: more than any fund holds, so the account's profitable positions are
    deleveraged in full at the mark (the worst case); a number (USDT): the fund
    (``RunConfig.insurance_fund``) pays what it can and the uncovered share is deleveraged.
    """

    at: int | datetime | str
    deficit: float | None = None

    def __post_init__(self) -> None:
        _ms(self.at)
        if self.deficit is not None:
            _number("adl deficit (USDT beyond the counterparty's bankruptcy price)", self.deficit,
                    "a number > 0", lambda v: v > 0, "adl:2e6@2022-11-09T13:00Z")

    def apply(self, market: StressMarket) -> StressMarket:
        from backtest.adl import AdlEvent

        event = AdlEvent(_ms(self.at), deficit=None if self.deficit is None else float(self.deficit))
        return replace(market, adl_events=market.adl_events + (event,),
                       applied=market.applied + (self.describe(),))

    def describe(self) -> str:
        what = "fund exhausted" if self.deficit is None else f"counterparty deficit {self.deficit:,.0f} USDT"
        return f"ADL injected at {self.at} ({what})"


@dataclass(frozen=True)
class ScenarioSet:
    """A named composition of scenarios, applied left to right."""

    name: str
    scenarios: tuple[Scenario, ...] = ()

    def __init__(self, name: str, scenarios: Iterable[Scenario] = ()) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "scenarios", tuple(scenarios))
        for s in self.scenarios:
            if not isinstance(s, Scenario):
                raise ScenarioError(f"scenario set {name!r}: {s!r} is not a scenario (needs apply and describe)")

    def apply(self, market: StressMarket) -> StressMarket:
        """Apply every scenario in order."""
        for scenario in self.scenarios:
            market = scenario.apply(market)
        return market

    def describe(self) -> str:
        """The scenarios joined with ' + ' ("baseline" when empty)."""
        return " + ".join(s.describe() for s in self.scenarios) or "baseline (no stress)"


def check_ohlc(frame: pl.DataFrame) -> list[str]:
    """Problems with candle sanity in ``frame`` (empty list when every row is sane)."""
    problems = []
    for o, h, l, c in _PRICE_GROUPS:
        if not all(x in frame.columns for x in (o, h, l, c)):
            continue
        bad = frame.filter((pl.col(l) > pl.min_horizontal(o, c)) | (pl.col(h) < pl.max_horizontal(o, c))
                           | (pl.col(l) <= 0) | ~pl.col(c).is_finite())
        if bad.height:
            problems.append(f"{bad.height} row(s) with insane {o.split('_')[0] if '_' in o else 'last'} candles")
    return problems




def parse_scenario(text: str) -> ScenarioSet:
    """Parse a scenario set from the command-line mini-language.

    Terms joined with ``+``; each term is ``kind:args``:

    * ``shock:PCT@TIME`` — e.g. ``shock:-0.3@2022-11-09T14:00Z``
    * ``vol:FACTOR[@START..END]`` — e.g. ``vol:2`` or ``vol:3@2022-11-08..2022-11-10``
    * ``funding:RATE@START..END`` — rate set (fraction per interval), e.g. ``funding:0.003@2022-11-08..2022-11-10``
    * ``mark:PCT@START..END`` — e.g. ``mark:-0.02@2022-11-09T00:00Z..2022-11-09T06:00Z``
    * ``drought:MULTIPLIER[@START..END]`` — e.g. ``drought:5`` (whole run) or
      ``drought:10@2022-11-09T13:00Z..2022-11-09T16:00Z``
    * ``adl[:DEFICIT]@TIME`` — an injected ADL event (``backtest.adl``), e.g.
      ``adl@2022-11-09T13:00Z`` (fund exhausted) or ``adl:2e6@2022-11-09T13:00Z``

    An optional ``NAME=`` prefix names the set (default: the text itself).
    """
    name, _, body = text.partition("=") if "=" in text.split(":", 1)[0] else ("", "", text)
    name = name.strip() or text.strip()
    terms = [t.strip() for t in body.split("+") if t.strip()]
    if not terms:
        raise ScenarioError(f"--scenario {text!r}: expected one or more terms joined by '+', found none; "
                            "write e.g. shock:-0.3@2022-11-09T14:00Z+drought:5")
    scenarios: list[Scenario] = []
    for term in terms:
        if term.startswith("adl@") or term.startswith("adl:"):
            deficit_text, _, when = term[4:].partition("@") if term[3] == ":" else ("", "", term[4:])
            if not when or ".." in when:
                raise ScenarioError(f"scenario term {term!r}: an ADL event needs one time, e.g. "
                                    "adl@2022-11-09T13:00Z or adl:2e6@2022-11-09T13:00Z")
            try:
                deficit = float(deficit_text) if deficit_text else None
            except ValueError:
                raise ScenarioError(f"scenario term {term!r}: expected a deficit in USDT after adl:, found "
                                    f"{deficit_text!r}; e.g. adl:2e6@2022-11-09T13:00Z") from None
            scenarios.append(AdlInjection(when, deficit))
            continue
        kind, sep, args = term.partition(":")
        value_text, _, when = args.partition("@")
        if not sep:
            raise ScenarioError(f"scenario term {term!r}: expected KIND:ARGS with KIND one of shock, vol, funding, adl, "
                                "mark, drought, adl")
        try:
            value = float(value_text)
        except ValueError:
            raise ScenarioError(f"scenario term {term!r}: expected a number after {kind}:, found "
                                f"{value_text!r}; e.g. shock:-0.3@2022-11-09T14:00Z") from None
        if not math.isfinite(value):
            raise ScenarioError(f"scenario term {term!r}: expected a finite number, found {value_text!r}; "
                                "e.g. shock:-0.3@2022-11-09T14:00Z, drought:5, vol:2")
        start, dots, end = when.partition("..")
        if kind == "shock":
            if not when or dots:
                raise ScenarioError(f"scenario term {term!r}: a shock needs one time, e.g. shock:-0.3@2022-11-09T14:00Z")
            scenarios.append(Shock(value, at=when))
        elif kind == "vol":
            if when and not dots:
                raise ScenarioError(f"scenario term {term!r}: give a window START..END or none")
            scenarios.append(VolatilityScale(value, start=start or None, end=end or None))
        elif kind in ("funding", "mark"):
            if not dots or not start or not end:
                raise ScenarioError(f"scenario term {term!r}: needs a window, e.g. {kind}:{value_text}@2022-11-08..2022-11-10")
            scenarios.append(FundingSpike(value, start=start, end=end) if kind == "funding"
                             else MarkDivergence(value, start=start, end=end))
        elif kind == "drought":
            if when and (not dots or not start or not end):
                raise ScenarioError(f"scenario term {term!r}: give a window START..END or none, e.g. "
                                    f"drought:{value_text}@2022-11-09T13:00Z..2022-11-09T16:00Z")
            scenarios.append(LiquidityDrought(value, start=start or None, end=end or None))
        else:
            import difflib
            close = difflib.get_close_matches(kind, ("shock", "vol", "funding", "mark", "drought", "adl"), n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            raise ScenarioError(f"scenario term {term!r}: unknown kind {kind!r}{hint}; kinds: shock, vol, funding, "
                                "mark, drought, adl")
    return ScenarioSet(name, scenarios)
