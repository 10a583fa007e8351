"""``margincall data fetch``: download market data through ccxt into the store.

The command lives in the ``data`` group: ``backtest/cli/data.py`` calls
:func:`add_commands` on its typer group. :func:`register` exists because the root app calls
``register(app)`` on every command module; it adds nothing at the top level.
ccxt and rich are imported inside the command, so ``import backtest`` stays light.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from backtest.cli.shared import DEFAULT_TIMEFRAME

ClientFactory = Callable[[str], Any]

_HELP = """Download candles, mark/index candles, funding, leverage tiers and market specs
through ccxt into the store.

Pages are fetched with since/limit loops at the endpoint's page size, rate-limited by ccxt,
retried with exponential backoff on network / rate-limit / exchange-unavailable errors, and
written to the store as they arrive. A run consults the store first, so re-running the same
command resumes an interrupted download: it fetches only what is missing.

--what (comma-separated): ohlcv (last-price candles), mark, index (mark/index-price candles),
funding (funding-rate history), tiers (leverage brackets -> risk_tiers, stamped with the fetch
time), markets (tick, lot, min notional, contract size, fees -> markets).

Binance's leverage brackets need an API key (read-only is enough): set
MARGINCALL_<EXCHANGE>_API_KEY and MARGINCALL_<EXCHANGE>_SECRET, e.g.
MARGINCALL_BINANCEUSDM_API_KEY.

Example:

  margincall data fetch --exchange binanceusdm --symbol BTC/USDT:USDT --symbol ETH/USDT:USDT
  --timeframe 1m --since 2020-03-01 --until 2020-04-01 --what ohlcv,mark,funding,markets
"""


def register(app: typer.Typer) -> None:
    """Add nothing to the root app: ``fetch`` is attached under ``data`` by ``backtest/cli/data.py``."""
    return None


def add_commands(data_app: typer.Typer, *, client_factory: ClientFactory | None = None) -> None:
    """Add the ``fetch`` command to the ``data`` command group.

    Parameters
    ----------
    data_app : typer.Typer
        The ``margincall data`` group.
    client_factory : callable, optional
        ``client_factory(exchange_id) -> ExchangeClient``; default builds a rate-limited ccxt
        instance with credentials from the environment. Tests pass a replaying client.
    """

    def fetch(
        symbol: Annotated[list[str], typer.Option(
            "--symbol", "-s", help="ccxt unified symbol, e.g. BTC/USDT:USDT; repeat (or comma-separate) for several.")],
        exchange: Annotated[str, typer.Option(help="ccxt exchange id.")] = "binanceusdm",
        timeframe: Annotated[str, typer.Option(help="Candle timeframe: 1m, 5m, 15m, 1h, 4h, 1d ... (default 1h for every command).")] = DEFAULT_TIMEFRAME,
        since: Annotated[str | None, typer.Option(
            help="Window start, UTC (ISO date or datetime, e.g. 2020-03-01). Required for candles and funding.")] = None,
        until: Annotated[str | None, typer.Option(
            help="Window end, UTC, exclusive (2020-04-01 = through March 31). Default: now.")] = None,
        what: Annotated[str, typer.Option(
            help="Comma-separated: ohlcv, mark, index, funding, tiers, markets.")] = "ohlcv,mark,funding,markets",
        store: Annotated[Path | None, typer.Option(
            help="Store folder. Default: $MARGINCALL_HOME/store, else ./.margincall/store.")] = None,
        max_tries: Annotated[int, typer.Option(
            help="Attempts per request on network / rate-limit errors before giving up.")] = 6,
        lenient: Annotated[bool, typer.Option(
            help="Drop invalid rows with a warning instead of refusing the chunk.")] = False,
    ) -> None:
        run_fetch(symbols=symbol, exchange=exchange, timeframe=timeframe, since=since, until=until,
                  what=what, store=store, max_tries=max_tries, lenient=lenient,
                  client_factory=client_factory)

    fetch.__doc__ = _HELP
    data_app.command("fetch", help=_HELP)(fetch)


def run_fetch(*, symbols: list[str], exchange: str, timeframe: str, since: str | None,
              until: str | None, what: str, store: Path | None, max_tries: int, lenient: bool,
              client_factory: ClientFactory | None = None) -> None:
    """Body of ``margincall data fetch`` (prints progress and a summary; exits 1 on errors)."""
    from backtest.cli.output import console as output_console
    from backtest.cli.output import fail

    from data_loaders.ccxt_fetch import FetchRequest, RetryPolicy, fetch_to_store
    from data_loaders.errors import DataError
    from data_loaders.store import MarketStore, default_root

    console = output_console(stderr=True)
    for flag, value in (("--exchange", exchange), ("--timeframe", timeframe), ("--since", since),
                        ("--until", until), ("--what", what)):
        if value is not None and not value.strip():  # an empty name is a mistake, never "the default"
            raise fail(f"{flag} {value!r}: expected a value, found an empty string; give one or leave the "
                       "option out to use the default", stderr=True)
    try:
        request = FetchRequest(
            exchange=exchange,
            symbols=tuple(s.strip() for item in symbols for s in item.split(",") if s.strip()),
            timeframe=timeframe, since=since, until=until,
            what=tuple(w.strip() for w in what.split(",") if w.strip()))
        # None: fetch_to_store builds the rate-limited ccxt client with environment credentials
        client = client_factory(exchange) if client_factory is not None else None
        root = store or default_root()
        with _RichProgress(console) as progress:
            report = fetch_to_store(request, MarketStore(root), client=client,
                                    retry=RetryPolicy(max_tries=max_tries), progress=progress,
                                    strict=not lenient)
    except DataError as exc:  # the error boundary's exit code for project errors (2)
        raise fail(str(exc), stderr=True) from None
    _print_report(console, report, root)


def _print_report(console: Any, report: Any, root: Path) -> None:
    from rich.table import Table

    from data_loaders.ccxt_sink import iso

    table = Table(title=f"{report.exchange} -> {root}")
    for column in ("dataset", "symbol", "detail", "rows", "new", "first", "last", "requests", "note"):
        table.add_column(column)
    for o in report.outcomes:
        table.add_row(o.dataset, o.symbol, o.detail, str(o.rows), str(o.rows_added), iso(o.first_ts),
                      iso(o.last_ts), str(o.requests), o.note)
    console.print(table)


class _RichProgress:
    """:class:`data_loaders.ccxt_fetch.FetchProgress` drawn as rich progress bars."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                  TextColumn("{task.percentage:>5.1f}%"), TimeRemainingColumn(),
                                  console=console, transient=False)

    def __enter__(self) -> _RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, description: str, total: float) -> int:
        return int(self._progress.add_task(description, total=max(total, 1)))

    def advance(self, task_id: int, amount: float) -> None:
        self._progress.advance(task_id, amount)

    def note(self, message: str) -> None:
        self._progress.console.print(message, highlight=False)
