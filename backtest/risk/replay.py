"""Crash replays: run a strategy through each named crash window with the engine.

For every (window, symbol, leverage) the engine runs the strategy on the window's candles
(last + mark; mark = last with a warning when the mark is missing) and one row records the
outcome: survived or liquidated, when, how much was lost, the worst margin ratio and the
slippage paid. Missing data is never silently skipped: it is a :class:`MissingWindowDataError`
whose message names the window, the data and the command that fetches or imports it
(:func:`replay_library` collects those messages and replays what is available).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from backtest.errors import utc_text

from backtest.risk.crashes import CrashWindow
from backtest.risk.data import WindowData, load_window
from backtest.risk.errors import MissingWindowDataError, RiskError

if TYPE_CHECKING:
    from backtest.market_data import MarketData

__all__ = ["FUNDING_COLUMN", "ReplayOutcome", "net_funding_received", "position_outcome", "load_crash_window", "replay_library", "replay_window", "survives_all",
           "REPLAY_COLUMNS"]

#: Net funding of a run, USDT, received - paid (+ = the trader received): the sign of ``run``'s
#: summary and report, named in the column of every risk table (replay, stress).
FUNDING_COLUMN = "net_funding_received"

#: Columns of the crash-replay table, in order.
REPLAY_COLUMNS = ("crash", "title", "symbol", "venue", "timeframe", "leverage", "survived", "entered", "rejection",
                  "n_liquidations",
                  "first_liquidation", "hours_to_liquidation", "entry_price", "liquidation_price", "loss",
                  "loss_pct", "margin_lost", "worst_margin_ratio", "slippage_cost", "fees", FUNDING_COLUMN, "bad_debt",
                  "final_equity", "warnings")


def _iso(ms: int | None) -> str | None:
    return None if ms is None else utc_text(ms)


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, str):
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    return int(value)


@dataclass(frozen=True)
class ReplayOutcome:
    """The rows of a replay and the windows that could not be replayed.

    Attributes
    ----------
    table : DataFrame
        One row per (window, symbol, leverage), columns :data:`REPLAY_COLUMNS`.
    missing : list of str
        One message per (window, symbol) without data, with the command that fixes it.
    warnings : list of str
        The data-quality warnings of every window replayed, each once (mark = last price,
        built-in tables used ...), for the console.
    """

    table: pl.DataFrame
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def replay_window(window: CrashWindow, symbol: str, data: WindowData, *, strategy: Any = "hold",
                  params: dict[str, Any] | None = None, leverages: Sequence[float], config: Any = None,
                  exchange: str = "binanceusdm", venues: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the strategy through one window for every leverage; one result row each.

    Parameters
    ----------
    window : CrashWindow
        The crash window.
    symbol : str
        The symbol replayed (its candles are ``data``).
    data : WindowData
        Bars (+ funding, warnings) of the window, e.g. from :func:`load_window`.
    strategy, params
        As for ``backtest.run_backtest``.
    leverages : sequence of float
        Leverage grid; each run uses ``config.replace(leverage=lev)``.
    config : RunConfig, optional
        Base run configuration (default ``RunConfig()``).
    venues : sequence of str, optional
        Replay under each of these venues' rules on ``exchange``'s prices
        (:func:`backtest.compare.venue_market`); a venue that cannot trade the symbol gives
        rows with the reason. Default: ``config.venue`` only.
    """
    if not leverages:
        raise RiskError("replay: the leverage grid is empty; pass e.g. --leverage 2,5,10,20,50")
    market = _window_market(window, symbol, data, exchange=exchange)
    if venues is None:
        return _replay_market(window, symbol, market, strategy=strategy, params=params, leverages=leverages,
                              config=config)
    from backtest import RunConfig

    base = config or RunConfig()
    head = {"crash": window.name, "title": window.title, "symbol": symbol, "timeframe": window.timeframe}
    return venue_rows(market, venues, leverages, head, lambda m, c: _replay_market(
        window, symbol, m, strategy=strategy, params=params, leverages=leverages, config=c), base)


def venue_rows(market: MarketData, venues: Sequence[str], leverages: Sequence[float], head: dict[str, Any],
               rows_of: Callable[[MarketData, Any], list[dict[str, Any]]], base: Any) -> list[dict[str, Any]]:
    """The rows of ``rows_of(market, config)`` under each venue's rules (replay and stress).

    A venue that cannot trade the symbol of ``market`` gives one row per leverage with the
    reason in ``rejection`` (``not tradable: ...``), not an error.
    """
    from backtest.compare import venue_market
    from backtest.errors import ConfigError

    rows: list[dict[str, Any]] = []
    for name in venues:
        try:
            venue_data = venue_market(market, name)
        except ConfigError as exc:
            rows.extend({**head, "venue": name, "leverage": float(lev), "survived": False, "entered": False,
                         "rejection": f"not tradable: {exc}", "n_liquidations": 0} for lev in leverages)
            continue
        rows.extend(rows_of(venue_data, base.replace(venue=name)))
    return rows


def _window_market(window: CrashWindow, symbol: str, data: WindowData, *, exchange: str) -> MarketData:
    return data.market_data(symbol, timeframe=window.timeframe, exchange=exchange)


def net_funding_received(summary: dict[str, Any]) -> float:
    """Funding received - paid over a run, USDT (+ = the trader received; ``run``'s convention)."""
    return summary.get("funding_received", 0.0) - summary.get("funding_paid", 0.0)


def position_outcome(result: Any) -> tuple[bool, str | None]:
    """``(entered, rejection)`` of a run: whether a strategy fill opened a position, and if not why.

    A run whose position never opened survived nothing (it never existed): the caller reports
    it as not opened with the venue's reason (e.g. ``leverage_cap: ...``), never as survived.
    """
    entered = bool(result.fills.filter(pl.col("reason") == "strategy").height)
    if entered:
        return True, None
    rejections = result.rejections
    if rejections.height:
        return False, f"{rejections['reason'][0]}: {rejections['message'][0]}"
    return False, "not opened: the strategy placed no order that filled"


def refused_row(leverage: float, exc: Exception) -> dict[str, Any]:
    """The fields of a row whose run the engine refused before it started (e.g. leverage above the cap)."""
    return {"leverage": float(leverage), "survived": False, "entered": False, "rejection": f"refused: {exc}",
            "n_liquidations": 0}


def _replay_market(window: CrashWindow, symbol: str, market: MarketData, *, strategy: Any,
                   params: dict[str, Any] | None, leverages: Sequence[float], config: Any) -> list[dict[str, Any]]:
    # The part of replay_window after the MarketData is built: a run only reads the market
    # (it copies the quality warnings), so one MarketData serves any number of leverages.
    from backtest import RunConfig, run_backtest
    from backtest.errors import ConfigError

    base = config or RunConfig()
    warnings = "; ".join(dict.fromkeys(market.quality_warnings))
    head = {"crash": window.name, "title": window.title, "symbol": symbol, "venue": base.venue,
            "timeframe": window.timeframe}
    rows = []
    for leverage in leverages:
        try:
            result = run_backtest(market, strategy, params=params, config=base.replace(leverage=float(leverage)))
        except ConfigError as exc:  # refused before the run (e.g. above the venue's cap): one row, not the ladder
            rows.append({**head, **refused_row(leverage, exc), "warnings": warnings})
            continue
        summary = result.summary
        first_fill = result.fills.filter(pl.col("reason") == "strategy")
        entry_ms = _ms(first_fill["ts"][0]) if first_fill.height else None
        liqs = result.liquidations
        first_liq = _ms(liqs["trigger_ts"][0]) if liqs.height else None
        entered, rejection = position_outcome(result)
        rows.append({
            **head, "leverage": float(leverage), "survived": entered and liqs.height == 0, "entered": entered,
            "rejection": rejection, "n_liquidations": int(liqs.height),
            "first_liquidation": _iso(first_liq),
            "hours_to_liquidation": (first_liq - entry_ms) / 3_600_000 if first_liq is not None and entry_ms else None,
            "entry_price": float(first_fill["price"][0]) if first_fill.height else None,
            "liquidation_price": float(liqs["liquidation_price"][0]) if liqs.height else None,
            "loss": summary["initial_balance"] - summary["final_equity"],
            "loss_pct": -summary["total_return"], "margin_lost": summary.get("liquidation_loss", 0.0),
            "worst_margin_ratio": summary.get("worst_margin_ratio"), "slippage_cost": summary.get("slippage_cost", 0.0),
            "fees": summary.get("fees", 0.0), FUNDING_COLUMN: net_funding_received(summary),
            "bad_debt": summary.get("bad_debt", 0.0), "final_equity": summary["final_equity"], "warnings": warnings,
        })
    return rows


def _empty_table() -> pl.DataFrame:
    schema = {c: pl.String for c in REPLAY_COLUMNS}
    schema.update({"leverage": pl.Float64, "survived": pl.Boolean, "entered": pl.Boolean,
                   "n_liquidations": pl.Int64})
    for c in ("hours_to_liquidation", "entry_price", "liquidation_price", "loss", "loss_pct", "margin_lost",
              "worst_margin_ratio", "slippage_cost", "fees", FUNDING_COLUMN, "bad_debt", "final_equity"):
        schema[c] = pl.Float64
    return pl.DataFrame(schema=schema)


def replay_library(windows: Sequence[CrashWindow], store: Any, *, strategy: Any = "hold",
                   params: dict[str, Any] | None = None, leverages: Sequence[float], config: Any = None,
                   exchange: str = "binanceusdm", symbols: Sequence[str] | None = None,
                   progress: Callable[[str], None] | None = None,
                   venues: Sequence[str] | None = None) -> ReplayOutcome:
    """Replay every window (and symbol) that has data; collect the ones that do not.

    Parameters
    ----------
    windows : sequence of CrashWindow
        Windows to replay (``CrashLibrary.select(...)``).
    store : MarketStore
        Where the candles are read from.
    symbols : sequence of str, optional
        Restrict to these symbols (default: every window's own symbols).
    progress : callable, optional
        Called with a short label before each (window, symbol).
    venues : sequence of str, optional
        Replay under each venue's rules on ``exchange``'s prices (see :func:`replay_window`).
    """
    if symbols is not None:
        held = list(dict.fromkeys(s for w in windows for s in w.symbols))
        unknown = [s for s in symbols if s not in held]
        if unknown:
            from backtest.errors import did_you_mean

            raise RiskError(f"--symbol {unknown[0]!r}: expected a symbol of the selected crash window(s), one of "
                            f"{', '.join(held) or '(none)'}{did_you_mean(unknown[0], held)}; found {unknown[0]!r}, "
                            "which they do not hold; pick one of them or leave --symbol out")
    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    warnings: list[str] = []
    for window in windows:
        for symbol in window.symbols:
            if symbols is not None and symbol not in symbols:
                continue
            if progress:
                progress(f"{window.name} {symbol}")
            try:
                data = load_crash_window(store, window, symbol, exchange=exchange)
            except MissingWindowDataError as exc:
                missing.append(str(exc))
                continue
            warnings.extend(data.warnings)
            rows.extend(replay_window(window, symbol, data, strategy=strategy, params=params, leverages=leverages,
                                      config=config, exchange=exchange, venues=venues))
    table = pl.DataFrame(rows, schema=_empty_table().schema) if rows else _empty_table()
    return ReplayOutcome(table=table.select(REPLAY_COLUMNS), missing=missing, warnings=list(dict.fromkeys(warnings)))


def load_crash_window(store: Any, window: CrashWindow, symbol: str, *, exchange: str) -> WindowData:
    """The stored data of ``symbol`` over crash ``window`` (see :func:`backtest.risk.data.load_window`)."""
    return load_window(store, exchange=exchange, symbol=symbol, timeframe=window.timeframe,
                       start_ms=window.start_ms, end_ms=window.end_ms, label=f"crash window {window.name!r}")


def survives_all(windows: Sequence[tuple[CrashWindow, str, WindowData]], *, strategy: Any = "hold",
                 params: dict[str, Any] | None = None, config: Any = None,
                 exchange: str = "binanceusdm") -> Callable[[float], bool]:
    """Leverage -> True when the strategy survives every given (window, symbol, data) replay.

    For :func:`backtest.risk.survival.crash_survival_leverage`; the data is loaded once and
    reused for every leverage tried (common inputs, monotone outcome for a held position).
    """
    # Each window's MarketData is built the first time that window is replayed (so a bad
    # window raises exactly when it did before) and reused for every later leverage.
    markets: dict[int, MarketData] = {}

    def survives(leverage: float) -> bool:
        for k, (window, symbol, data) in enumerate(windows):
            if k not in markets:
                markets[k] = _window_market(window, symbol, data, exchange=exchange)
            row = _replay_market(window, symbol, markets[k], strategy=strategy, params=params, leverages=[leverage],
                                 config=config)[0]
            if not row["survived"]:
                return False
        return True

    return survives
