"""How margincall prints numbers and times: ONE home for every surface (CLI, reports, risk lab).

Conventions (docs/report.md "Number formats"):

* money in the margin asset: 2 decimals with thousands separators (``12,345.68``);
* prices at the symbol's tick size (a 0.1 tick prints ``65,432.1``), else 2 decimals;
* fractions as percent (``-12.34 %``); probabilities as percent with enough digits to tell
  a small probability from zero (``0.042 %``);
* times as UTC text (``2024-03-05 14:00 UTC``), never epoch milliseconds;
* drawdown: a NEGATIVE percent everywhere it is printed (``-25.00 %``); computations keep the
  depth as a positive fraction (``summary.max_drawdown = 0.25``);
* leverage as ``2x``, ``12.5x``.

Every function returns ``"—"`` for a missing value (None or NaN), so a table never prints
``nan``. Pure functions, no I/O; ``import backtest.formatting`` imports only the stdlib.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "MISSING",
    "fmt_drawdown",
    "fmt_duration",
    "fmt_leverage",
    "fmt_money",
    "fmt_num",
    "fmt_pct",
    "fmt_price",
    "fmt_prob",
    "fmt_column",
    "fmt_ts",
    "is_missing",
    "tick_decimals",
    "utc_text",
]

MISSING = "—"
"""What a missing value (None, NaN) prints as."""


def is_missing(value: Any) -> bool:
    """True for None and float NaN (the values printed as :data:`MISSING`)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _infinite(value: float) -> str | None:
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return None


def utc_text(ms: int) -> str:
    """Epoch milliseconds as ``YYYY-MM-DD HH:MM:SS UTC`` (messages and CLI tables)."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_ts(ms: int | None, *, seconds: bool = False, suffix: bool = False) -> str:
    """Epoch milliseconds as ``YYYY-MM-DD HH:MM`` UTC (``—`` for None).

    Parameters
    ----------
    ms : int or None
        Milliseconds since the epoch (UTC).
    seconds : bool
        Also print seconds.
    suffix : bool
        Append `` UTC`` (where the page does not already say that times are UTC).
    """
    if ms is None:
        return MISSING
    moment = datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} UTC" if suffix else text


def fmt_money(value: float | None, *, signed: bool = False, unit: str = "") -> str:
    """Money: thousands separators and 2 decimals, optionally signed and with its unit.

    >>> fmt_money(-1234.5, unit="USDT")
    '-1,234.50 USDT'
    """
    if is_missing(value):
        return MISSING
    inf = _infinite(float(value))  # type: ignore[arg-type]
    text = inf if inf is not None else (f"{value:+,.2f}" if signed else f"{value:,.2f}")
    return f"{text} {unit}" if unit else text


def tick_decimals(tick_size: float | None, default: int = 2) -> int:
    """Decimals a price needs at ``tick_size`` (0.1 -> 1, 0.0001 -> 4, 1 -> 0)."""
    if tick_size is None or not math.isfinite(tick_size) or tick_size <= 0:
        return default
    decimals = max(0, -math.floor(math.log10(tick_size) + 1e-9))
    # a tick such as 0.25 or 0.005 needs one more digit than its order of magnitude
    while decimals < 12 and abs(round(tick_size, decimals) - tick_size) > tick_size * 1e-9:
        decimals += 1
    return decimals


def fmt_price(value: float | None, *, tick_size: float | None = None) -> str:
    """A price at the symbol's tick size (2 decimals when the tick is unknown)."""
    if is_missing(value):
        return MISSING
    inf = _infinite(float(value))  # type: ignore[arg-type]
    if inf is not None:
        return inf
    return f"{value:,.{tick_decimals(tick_size)}f}"


def fmt_pct(value: float | None, *, signed: bool = False, digits: int = 2) -> str:
    """A fraction as a percentage (``0.1234`` -> ``12.34 %``)."""
    if is_missing(value):
        return MISSING
    inf = _infinite(float(value))  # type: ignore[arg-type]
    if inf is not None:
        return inf
    return f"{value * 100:+.{digits}f} %" if signed else f"{value * 100:.{digits}f} %"


def fmt_prob(value: float | None) -> str:
    """A probability as a percentage with enough digits that a small one is not shown as 0.

    ``0.5`` -> ``50.0 %``; ``0.00042`` -> ``0.042 %``; exactly 0 -> ``0 %``.
    """
    if is_missing(value):
        return MISSING
    p = float(value)  # type: ignore[arg-type]
    if p == 0.0:
        return "0 %"
    pct = p * 100.0
    digits = 1 if abs(pct) >= 1 else min(6, max(1, 1 - math.floor(math.log10(abs(pct)))))
    return f"{pct:.{digits}f} %"


def fmt_drawdown(depth: float | None, *, digits: int = 2) -> str:
    """A drawdown depth (a positive fraction of the peak) printed the one way: ``-25.00 %``.

    A depth of 0 prints ``0.00 %``. Accepts a depth already negative (a drawdown series
    value) and prints it the same way, so no surface can print the opposite sign.
    """
    if is_missing(depth):
        return MISSING
    d = abs(float(depth))  # type: ignore[arg-type]
    return f"{-d * 100:.{digits}f} %" if d > 0 else f"{0.0:.{digits}f} %"


def fmt_leverage(value: float | None) -> str:
    """Leverage as ``2x``, ``12.5x`` (``—`` when unknown)."""
    if is_missing(value):
        return MISSING
    return f"{float(value):g}x"  # type: ignore[arg-type]


def fmt_num(value: Any, digits: int = 4) -> str:
    """A generic number: integers with separators, floats with up to ``digits`` decimals.

    Values of 100 or more print with 2 decimals and separators; tiny ones with ``digits``
    significant digits; booleans as ``true``/``false``; other values as text.
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        inf = _infinite(value)
        if inf is not None:
            return inf
        if abs(value) >= 100:
            return f"{value:,.2f}"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.{digits}g}"
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def fmt_duration(ms: float | None) -> str:
    """A duration in milliseconds as ``3 d 4 h``, ``5 h 30 min``, ``45 min`` or ``12 s``."""
    if is_missing(ms):
        return MISSING
    total = abs(float(ms)) / 1000.0  # type: ignore[arg-type]
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days >= 1:
        return f"{int(days):,} d {int(hours)} h"
    if hours >= 1:
        return f"{int(hours)} h {int(minutes)} min"
    if minutes >= 1:
        return f"{int(minutes)} min"
    return f"{seconds:.0f} s"


#: Column names whose values are money in the margin asset, prices, probabilities or
#: fractions: how a table (CLI or HTML) prints a column it knows only by name.
MONEY_COLUMNS = frozenset({
    "loss", "margin_lost", "slippage_cost", "fees", "net_funding_received", "bad_debt",
    "final_equity", "expected_loss", "liquidation_loss", "funding_paid", "funding_received",
    "initial_balance", "equity", "wallet_balance", "pnl", "fee", "payment"})
PRICE_COLUMNS = frozenset({"entry_price", "liquidation_price", "bankruptcy_price", "mark_price",
                           "fill_price", "exit_price", "price", "last_price"})
PROBABILITY_COLUMNS = frozenset({"probability", "ci_low", "ci_high", "p_liquidation"})
FRACTION_COLUMNS = frozenset({"loss_pct", "total_return", "return"})


def fmt_column(column: str, value: Any, *, tick_size: float | None = None) -> str:
    """A table cell printed by its column's meaning (one rule for the CLI and the pages).

    ``leverage`` -> ``5x``; money columns -> 2 decimals with separators; price columns -> at
    the tick; probabilities -> %; ``max_drawdown`` (a positive depth) -> ``-25.00 %``;
    ``total_return`` -> signed %; ``loss_pct`` -> % lost; other numbers :func:`fmt_num`;
    booleans ``yes``/``no``; None/NaN ``—``.
    """
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return str(value)
    number = float(value)
    if column == "leverage":
        return fmt_leverage(number)
    if column in MONEY_COLUMNS:
        return fmt_money(number)
    if column in PRICE_COLUMNS:
        return fmt_price(number, tick_size=tick_size)
    if column in PROBABILITY_COLUMNS:
        return fmt_prob(number)
    if column == "max_drawdown":
        return fmt_drawdown(number)
    if column in FRACTION_COLUMNS:
        return fmt_pct(number, signed=column != "loss_pct")
    return fmt_num(value)
