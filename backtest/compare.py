"""One strategy under several venues' rules on the same prices, and the price-source rule.

Two ideas live here, each defined once:

* **The price-source rule** (:func:`price_source`). A run has prices (``data.exchange``,
  the ccxt id whose candles are read) and rules (``venue``). By default the prices are the
  venue's own exchange (``Venue.exchange``). Prices of one exchange drive another venue's
  rules only when the user says so with ``prices_from`` (``--prices-from EXCHANGE``, run file
  ``[data] prices_from``); a ``data.exchange`` that differs from the venue's without it is a
  :class:`~backtest.errors.ConfigError` saying what to pass (a run file written for one venue
  and run with ``--venue`` of another is the mistake it catches). The manifest and the
  report then state ``prices: <exchange>, rules: <venue>``.
* **The venue comparison** (:func:`compare_venues`). The same strategy, parameters and
  configuration run under every listed venue's rules, each with that venue's own built-in
  tiers, contract spec, fees and liquidation fee (:func:`market_for_venue`), on one price
  series; one row per (venue, leverage): liquidation price at entry, whether and when the
  position was liquidated, loss, fees, funding, bad debt, insurance-fund and ADL events. A
  venue that cannot trade the prices' symbol (an inverse venue for a USDT-margined symbol, a
  symbol without built-in tables) is a row with the reason, never an error.

Venues are found by name in :data:`backtest.venues.base.VENUES`, so a newly registered
venue is compared without an edit here.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from backtest.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from backtest.market_data import MarketData
    from backtest.venues.base import Venue

__all__ = ["COMPARISON_COLUMNS", "PriceSource", "VenueComparison", "compare_venues", "contract_kind",
           "load_for_venue", "market_for_venue", "parse_venues", "price_source", "survival_table", "tables_key",
           "venue_market", "venue_symbol", "venue_symbols", "write_comparison"]

#: The flag (and run-file key ``[data] prices_from``) that lets one exchange's prices drive
#: another venue's rules.
PRICES_FROM_FLAG = "--prices-from"


@dataclass(frozen=True)
class PriceSource:
    """Which exchange's prices drive which venue's rules.

    Attributes
    ----------
    prices : str
        ccxt exchange id whose candles, marks and funding are read (``"binanceusdm"``).
    rules : str
        Venue name whose margin rules apply (``"bybit_linear"``).
    native : bool
        True when ``prices`` is the venue's own exchange.
    """

    prices: str
    rules: str
    native: bool

    @property
    def text(self) -> str:
        """``"prices: binanceusdm, rules: bybit_linear"`` (manifest and report wording)."""
        return f"prices: {self.prices}, rules: {self.rules}"

    def record(self) -> dict[str, Any]:
        """The manifest entry ``price_source``."""
        return {"prices": self.prices, "rules": self.rules, "native": self.native, "text": self.text}


def _same_exchange(exchange: str, venue: Venue) -> bool:
    from backtest.venues.base import ALIASES

    return exchange in (venue.exchange, venue.name) or ALIASES.get(exchange) == venue.name


def price_source(venue: str, *, exchange: str | None = None, prices_from: str | None = None,
                 where: str = "flags") -> PriceSource:
    """The price source of a run with rules ``venue`` (the one price-source rule).

    Parameters
    ----------
    venue : str
        Registered venue name (or alias) whose rules apply.
    exchange : str, optional
        ``data.exchange`` / ``--exchange`` as given (None: not given).
    prices_from : str, optional
        ``--prices-from`` / ``[data] prices_from``: the user's statement that this exchange's
        prices drive ``venue``'s rules (None: not stated).
    where : str
        Names the input in errors (``"flags"``, ``"run file run.toml"``).

    Returns
    -------
    PriceSource

    Raises
    ------
    ConfigError
        When ``exchange`` differs from the venue's exchange without ``prices_from``, or
        ``exchange`` and ``prices_from`` name different exchanges.
    """
    from backtest.venues.base import get_venue

    rules = get_venue(venue)
    if prices_from is not None:
        if not prices_from.strip():
            raise ConfigError(f"{where}: {PRICES_FROM_FLAG} expected a ccxt exchange id (e.g. "
                              f"{rules.exchange}), found an empty value")
        if exchange is not None and exchange != prices_from:
            raise ConfigError(
                f"{where}: --exchange {exchange!r} and {PRICES_FROM_FLAG} {prices_from!r} name different "
                f"price sources; expected one exchange: pass only {PRICES_FROM_FLAG} {prices_from} "
                f"(the prices that drive {rules.name}'s rules)")
        return PriceSource(prices_from, rules.name, _same_exchange(prices_from, rules))
    if exchange is None:
        return PriceSource(rules.exchange, rules.name, True)
    if _same_exchange(exchange, rules):
        return PriceSource(exchange, rules.name, True)
    raise ConfigError(
        f"{where}: prices of {exchange} (data.exchange / --exchange) with the rules of {rules.name} "
        f"(venue), whose own prices are {rules.exchange}'s; expected matching prices and rules unless "
        f"you say otherwise. To run {rules.name}'s rules on {exchange} prices pass {PRICES_FROM_FLAG} "
        f"{exchange} (run file: [data] prices_from = \"{exchange}\"); to use {rules.name}'s own prices "
        f"pass --exchange {rules.exchange} or leave the exchange out")


# ----------------------------------------------------------------------------- symbols
def contract_kind(symbol: str) -> str:
    """``"inverse"`` when a ccxt unified symbol settles in its base (``BTC/USD:BTC``), else ``"linear"``."""
    base, _, rest = symbol.partition("/")
    settle = rest.partition(":")[2]
    return "inverse" if settle and settle == base else "linear"


def _base(symbol: str) -> str:
    return symbol.partition("/")[0]


def _known(venue: Venue) -> tuple[str, ...]:
    from backtest.venues.defaults import known_symbols
    from backtest.venues.errors import VenueError

    for name in (venue.name, venue.exchange):
        try:
            return tuple(known_symbols(name))
        except VenueError:
            continue
    return ()


def _has_tables(venue: Venue, symbol: str) -> bool:
    from backtest.venues.errors import VenueError

    try:
        venue.tier_schedule(symbol)
        venue.market(symbol)
    except (VenueError, LookupError, ValueError):
        return False
    return True


def venue_symbol(venue: Venue, price_symbol: str) -> tuple[str | None, str | None]:
    """The symbol ``venue`` trades for prices of ``price_symbol``, or the reason it cannot.

    The same ccxt symbol when the venue has built-in tables for it, else the venue's symbol
    of the same base and contract kind (``BTC/USDC:USDC`` for ``BTC/USDT:USDT`` prices on a
    USDC-margined venue). An inverse venue needs inverse prices and a linear venue linear
    ones: the reason then names the symbol to use.

    Returns
    -------
    (symbol, None) or (None, reason)
    """
    kind = contract_kind(price_symbol)
    known = _known(venue)
    if kind != venue.contract_type:
        theirs = [s for s in known if _base(s) == _base(price_symbol) and contract_kind(s) == venue.contract_type]
        example = theirs[0] if theirs else (f"{_base(price_symbol)}/USD:{_base(price_symbol)}"
                                            if venue.contract_type == "inverse" else f"{_base(price_symbol)}/USDT:USDT")
        return None, (f"{venue.name} trades {venue.contract_type} contracts and the prices are of {price_symbol} "
                      f"({kind}); compare it on {venue.contract_type} prices, e.g. --symbol {example} "
                      f"{PRICES_FROM_FLAG} {venue.exchange}")
    if _has_tables(venue, price_symbol):
        return price_symbol, None
    for symbol in known:
        if _base(symbol) == _base(price_symbol) and contract_kind(symbol) == kind and _has_tables(venue, symbol):
            return symbol, None
    return None, (f"{venue.name} has no built-in tiers and contract spec for {price_symbol} or another "
                  f"{_base(price_symbol)} {kind} contract (known: {', '.join(known) or 'none'}); import "
                  f"its tiers with `margincall data import` to compare it")


def market_for_venue(data: MarketData, venue: Venue, symbols: dict[str, str]) -> MarketData:
    """``data``'s prices under ``venue``'s own tables, symbols renamed to the venue's.

    Tiers, contract spec, fees and liquidation fee (and their dated versions inside the run)
    are the venue's built-in ones in force at the first bar, as :meth:`MarketData.from_frames`
    chooses them for a venue's own data; the candles, marks and funding are ``data``'s.

    Parameters
    ----------
    data : MarketData
        The price data (of any exchange).
    venue : Venue
        The venue whose rules and tables apply.
    symbols : dict
        Price symbol -> the venue's symbol (from :func:`venue_symbol`).
    """
    from backtest.market_data import _built_in_versions, _market_versions, _venue_defaults

    def renamed(mapping: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if mapping is None else {symbols[s]: v for s, v in mapping.items()}

    names = tuple(symbols[s] for s in data.symbols)
    warnings = list(data.quality_warnings)
    start_ms = int(data.ts[0]) if len(data) else None
    end_ms = int(data.ts[-1]) + data.interval_ms if len(data) else None
    tiers, markets = _venue_defaults(venue.name, names, None, None, start_ms, warnings)
    versions = {}
    for name in names:
        later = _built_in_versions(venue.name, name, markets[name], start_ms, end_ms)
        if later:
            versions[name] = later
    return dataclasses.replace(
        data, symbols=names, bars=renamed(data.bars), frames=renamed(data.frames), funding=renamed(data.funding),
        detail=renamed(data.detail), trades=renamed(data.trades), tiers=tiers, markets=markets,
        quality_warnings=warnings, market_versions=_market_versions(versions, names, start_ms))


def venue_symbols(venue: Venue, symbols: Sequence[str], prices: str) -> dict[str, str]:
    """Price symbol -> the symbol ``venue`` trades for it (:func:`venue_symbol`), every one or an error.

    Raises
    ------
    ConfigError
        When the venue cannot trade one of them; the message names the symbol to use.
    """
    mapping: dict[str, str] = {}
    for symbol in symbols:
        theirs, reason = venue_symbol(venue, symbol)
        if theirs is None:
            raise ConfigError(f"prices of {prices} {symbol} under the rules of {venue.name}: {reason}")
        mapping[symbol] = theirs
    return mapping


def tables_key(venue: Venue) -> str:
    """The name whose stored and built-in tables are ``venue``'s (for ``MarketData.from_store(tables=)``).

    Its ccxt id when that id means this venue (stored tables are filed under ccxt ids), else
    the venue name (``bybit`` is two venues, linear and inverse).
    """
    from backtest.venues.base import ALIASES

    return venue.exchange if ALIASES.get(venue.exchange, venue.exchange) == venue.name else venue.name


def load_for_venue(store: Any, source: PriceSource, *, symbols: Sequence[str], timeframe: str,
                   start: int | None = None, end: int | None = None,
                   detail_timeframe: str | None = None) -> MarketData:
    """The run's market: ``source.prices``' candles with the tables of ``source.rules``.

    A native source reads as every run does. A stated cross-venue source reads the prices
    with the rule venue's stored or built-in tiers and spec (``tables=``), or, when the venue
    names the symbol differently, with its built-in tables under its own names
    (:func:`market_for_venue`).
    """
    from backtest.market_data import MarketData
    from backtest.venues.base import get_venue

    if source.native:
        return MarketData.from_store(store, exchange=source.prices, symbols=symbols, timeframe=timeframe,
                                     start=start, end=end, detail_timeframe=detail_timeframe)
    venue = get_venue(source.rules)
    mapping = venue_symbols(venue, symbols, source.prices)
    same = all(k == v for k, v in mapping.items())
    data = MarketData.from_store(store, exchange=source.prices, symbols=symbols, timeframe=timeframe, start=start,
                                 end=end, detail_timeframe=detail_timeframe, tables=tables_key(venue) if same else None)
    return data if same else market_for_venue(data, venue, mapping)


def venue_market(data: MarketData, venue_name: str) -> MarketData:
    """``data``'s prices under ``venue_name``'s rules and tables (a stated cross-venue run).

    ``data`` itself when it is the venue's own exchange's (its stored tables apply).

    Raises
    ------
    ConfigError
        When the venue cannot trade the prices' symbol; the message names the symbol to use.
    """
    from backtest.venues.base import get_venue

    venue = get_venue(venue_name)
    if _same_exchange(data.exchange, venue):  # the venue's own data: its stored tables stay
        return data
    return market_for_venue(data, venue, venue_symbols(venue, data.symbols, data.exchange))


# ----------------------------------------------------------------------------- the comparison
#: Columns of the ``venue_comparison`` table, in order (money in the venue's margin asset).
COMPARISON_COLUMNS: dict[str, Any] = {
    "venue": pl.String, "contract_type": pl.String, "symbol": pl.String, "price_source": pl.String,
    "leverage": pl.Float64, "tradable": pl.Boolean, "reason": pl.String, "entered": pl.Boolean,
    "rejection": pl.String, "survived": pl.Boolean, "entry_time": pl.String, "qty": pl.Float64,
    "entry_price": pl.Float64,
    "liquidation_price_at_entry": pl.Float64, "liquidated": pl.Boolean, "first_liquidation": pl.String,
    "hours_to_liquidation": pl.Float64, "n_liquidations": pl.Int64, "loss": pl.Float64, "loss_pct": pl.Float64,
    "fees": pl.Float64, "net_funding_received": pl.Float64, "bad_debt": pl.Float64,
    "insurance_fund_events": pl.Int64, "insurance_fund_delta": pl.Float64, "adl_events": pl.Int64,
    "final_equity": pl.Float64, "margin_asset": pl.String, "warnings": pl.String}


def parse_venues(text: str) -> tuple[str, ...]:
    """``"all"`` or comma-separated venue names (aliases accepted) -> registered names, in order.

    Raises
    ------
    ConfigError
        For an empty list or an unregistered name (with the closest registered one).
    """
    from backtest.venues.base import ALIASES, VENUES, available_venues

    if text.strip() == "all":
        return available_venues()
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--venues {text!r}: expected 'all' or comma-separated venue names, e.g. "
                          f"--venues {','.join(available_venues()[:2])}")
    out = []
    for name in names:
        key = ALIASES.get(name, name)
        if key not in VENUES:
            raise ConfigError(f"--venues: venue {name!r} is not registered; expected 'all' or names among "
                              f"{', '.join(available_venues())}{did_you_mean(name, [*VENUES, *ALIASES])}")
        out.append(key)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class VenueComparison:
    """The comparison of one strategy across venues.

    Attributes
    ----------
    table : DataFrame
        One row per (venue, leverage), columns :data:`COMPARISON_COLUMNS`.
    prices : str
        The exchange whose prices drove every venue's rules.
    symbol : str
        The price symbol.
    strategy : str
        Strategy name.
    warnings : list of str
        Data-quality warnings of the runs, each once.
    """

    table: pl.DataFrame
    prices: str
    symbol: str
    strategy: str
    warnings: list[str] = field(default_factory=list)

    @property
    def survival(self) -> pl.DataFrame:
        """The survival table: see :func:`survival_table`."""
        return survival_table(self.table)


def survival_table(table: pl.DataFrame) -> pl.DataFrame:
    """Leverage (rows) by venue (columns): ``survived``, ``liquidated``, ``not opened`` or ``n/a``.

    ``n/a``: the venue cannot trade the symbol; ``not opened``: the run never held a position
    (e.g. the leverage is above the venue's cap), which is not survival.
    """
    def outcome(row: dict[str, Any]) -> str:
        if not row["tradable"]:
            return "n/a"
        if not row["entered"]:
            return "not opened"
        return "liquidated" if row["liquidated"] else "survived"

    venues = list(dict.fromkeys(table["venue"].to_list()))
    leverages = sorted(set(table["leverage"].to_list()))
    cells = {(r["venue"], r["leverage"]): outcome(r) for r in table.iter_rows(named=True)}
    return pl.DataFrame({"leverage": leverages,
                         **{v: [cells.get((v, lev), "n/a") for lev in leverages] for v in venues}},
                        schema={"leverage": pl.Float64, **{v: pl.String for v in venues}})


def _untradable_rows(venue: Venue, symbol: str, source: str, leverages: Sequence[float],
                     reason: str) -> list[dict[str, Any]]:
    return [{"venue": venue.name, "contract_type": venue.contract_type, "symbol": None, "price_source": source,
             "leverage": float(lev), "tradable": False, "reason": reason, "entered": False, "survived": False,
             "liquidated": False, "n_liquidations": 0} for lev in leverages]


def _rules_gap(market: Any, venue: Venue, symbol: str) -> str | None:
    """Why ``venue`` has no rules for ``symbol`` at the window's first bar, or None.

    A venue whose first tier table takes effect after the window (dYdX v4 and Hyperliquid did
    not exist on 2020-03-12) cannot be compared there: that is an outcome of the comparison (a
    row with the reason), not a mistake of the user's.
    """
    from backtest.venues.errors import TierError

    schedule = market.tiers.get(symbol)
    if not hasattr(schedule, "at"):  # a fixed table (no dates) or none: in force throughout
        return None
    try:
        schedule.at(int(market.ts[0]))
    except TierError as exc:
        return f"{venue.name}: no rules in force at the window start ({exc})"
    return None


def _run_row(result: Any, entry_asset: str) -> dict[str, Any]:
    """The outcome fields of one finished run."""
    from backtest.errors import utc_text
    from backtest.risk.replay import FUNDING_COLUMN, net_funding_received, position_outcome

    summary = result.summary
    fills = result.fills.filter(pl.col("reason") == "strategy")
    entered, rejection = position_outcome(result)
    entry_ms = int(fills["ts"].dt.epoch("ms")[0]) if fills.height else None
    held = result.positions.filter(pl.col("qty") != 0.0)
    liqs = result.liquidations
    first_liq = int(liqs["trigger_ts"].dt.epoch("ms")[0]) if liqs.height else None
    fund = result.frame("insurance_fund")
    return {
        "entered": entered, "rejection": rejection, "survived": entered and liqs.height == 0,
        "entry_time": utc_text(entry_ms) if entry_ms is not None else None,
        "entry_price": float(fills["price"][0]) if fills.height else None,
        "qty": float(fills["qty"][0]) if fills.height else None,
        # the first bar-close snapshot of the position; one liquidated inside its first bar
        # has none: its liquidation row records the same (unchanged) position's price
        "liquidation_price_at_entry": float(held["liquidation_price"][0]) if held.height else (
            float(liqs["liquidation_price"][0]) if liqs.height else None),
        "liquidated": liqs.height > 0, "first_liquidation": utc_text(first_liq) if first_liq is not None else None,
        "hours_to_liquidation": (first_liq - entry_ms) / 3_600_000
        if first_liq is not None and entry_ms is not None else None,
        "n_liquidations": int(liqs.height), "loss": summary["initial_balance"] - summary["final_equity"],
        "loss_pct": -summary["total_return"], "fees": summary.get("fees", 0.0),
        FUNDING_COLUMN: net_funding_received(summary), "bad_debt": summary.get("bad_debt", 0.0),
        "insurance_fund_events": int(fund.filter(pl.col("cause") != "start").height),
        "insurance_fund_delta": summary.get("insurance_fund_delta", 0.0),
        "adl_events": int(summary.get("n_adl", 0)), "final_equity": summary["final_equity"],
        "margin_asset": entry_asset}


def compare_venues(data: MarketData, strategy: Any = "hold", *, venues: Sequence[str], leverages: Sequence[float],
                   params: dict[str, Any] | None = None, config: Any = None,
                   progress: Callable[[str], None] | None = None) -> VenueComparison:
    """Run one strategy and configuration under each venue's rules on ``data``'s prices.

    Parameters
    ----------
    data : MarketData
        The prices (one exchange's; ``data.exchange`` names it in every row).
    strategy, params
        As for :func:`backtest.run_backtest`.
    venues : sequence of str
        Registered venue names (:func:`parse_venues`).
    leverages : sequence of float
        The leverage grid (>= 1); each run is ``config.replace(venue=..., leverage=...)``.
    config : RunConfig, optional
        The base configuration (default ``RunConfig()``).
    progress : callable, optional
        Called with the venue name before its runs.

    Returns
    -------
    VenueComparison
        Rows for every (venue, leverage); a venue that cannot trade the symbol, or refuses a
        leverage before the run, is a row with the reason.
    """
    from backtest import RunConfig, run_backtest
    from backtest.venues.base import get_venue
    from backtest.venues.errors import VenueError

    if not leverages:
        raise ConfigError("compare: the leverage grid is empty; pass e.g. --leverages 2,5,10,20,50")
    if not venues:
        raise ConfigError("compare: no venue to compare; pass e.g. --venues all")
    base = config or RunConfig()
    price_symbol = data.symbols[0]
    rows: list[dict[str, Any]] = []
    warnings: list[str] = list(data.quality_warnings)
    for name in venues:
        venue = get_venue(name)
        if progress:
            progress(venue.name)
        source = PriceSource(data.exchange, venue.name, _same_exchange(data.exchange, venue)).text
        mapping: dict[str, str] = {}
        reason = None
        for symbol in data.symbols:
            theirs, reason = venue_symbol(venue, symbol)
            if theirs is None:
                break
            mapping[symbol] = theirs
        if reason is not None:
            rows.extend(_untradable_rows(venue, price_symbol, source, leverages, reason))
            continue
        try:
            market = market_for_venue(data, venue, mapping)
        except (VenueError, LookupError, ValueError) as exc:
            rows.extend(_untradable_rows(venue, price_symbol, source, leverages, f"{venue.name}: {exc}"))
            continue
        gap = None if base.allow_tiers_before_first else _rules_gap(market, venue, mapping[price_symbol])
        if gap is not None:  # e.g. a venue launched after the window: no rules to apply
            rows.extend(_untradable_rows(venue, price_symbol, source, leverages, gap))
            continue
        run_config = base.replace(venue=venue.name)
        run_warnings = "; ".join(dict.fromkeys(market.quality_warnings))
        warnings.extend(market.quality_warnings)
        head = {"venue": venue.name, "contract_type": venue.contract_type, "symbol": mapping[price_symbol],
                "price_source": source, "tradable": True, "reason": None, "warnings": run_warnings}
        for leverage in leverages:
            try:
                result = run_backtest(market, strategy, params=params,
                                      config=run_config.replace(leverage=float(leverage)))
            except ConfigError as exc:  # refused before the run (e.g. above the venue's cap): a row
                rows.append({**head, "leverage": float(leverage), "entered": False, "survived": False,
                             "liquidated": False, "n_liquidations": 0, "rejection": f"refused: {exc}"})
                continue
            rows.append({**head, "leverage": float(leverage),
                         **_run_row(result, market.markets[mapping[price_symbol]].settle)})
    table = pl.DataFrame(rows, schema=COMPARISON_COLUMNS) if rows else pl.DataFrame(schema=COMPARISON_COLUMNS)
    name = strategy if isinstance(strategy, str) else type(strategy).__name__
    return VenueComparison(table=table.select(list(COMPARISON_COLUMNS)), prices=data.exchange,
                           symbol=price_symbol, strategy=name, warnings=list(dict.fromkeys(warnings)))


def write_comparison(comparison: VenueComparison, target: str | Path, *, manifest: dict[str, Any],
                     overwrite: bool = False, page: Callable[[Path], Path] | None = None) -> Path:
    """Write the comparison as one folder, whole or not at all (:mod:`backtest.runfolder`).

    Files: ``venue_comparison.parquet``, ``venue_survival.parquet``, ``results.duckdb`` (views
    ``venue_comparison`` and ``venue_survival``), ``manifest.json`` and, when ``page`` is given,
    the HTML page it writes into the temporary folder (``page(tmp) -> path``).

    Parameters
    ----------
    comparison : VenueComparison
        What to write.
    target : path
        The output folder (refused when it exists, unless ``overwrite`` and it is a run folder).
    manifest : dict
        JSON-ready provenance (strategy, params, config, data window); ``kind``,
        ``prices``, ``venues`` and ``price_sources`` are added.
    overwrite : bool
        Replace an existing output folder atomically.
    page : callable, optional
        Writes the HTML page into the folder being built.
    """
    from backtest.runfolder import file_record, write_run_folder, write_tables

    tables = {"venue_comparison": comparison.table, "venue_survival": comparison.survival}

    def fill(tmp: Path) -> dict[str, dict[str, Any]]:
        # relative paths: the folder still opens when moved
        files = write_tables(tmp, tables)
        if page is not None:
            written = page(tmp)
            files[written.name] = file_record(written)
        return files

    venues = list(dict.fromkeys(comparison.table["venue"].to_list()))
    sources = list(dict.fromkeys(comparison.table["price_source"].to_list()))
    document = {"kind": "venue_comparison", **manifest, "prices": comparison.prices, "symbol": comparison.symbol,
                "venues": venues, "price_sources": sources, "quality_warnings": comparison.warnings}
    return write_run_folder(target, fill, document, overwrite=overwrite)
