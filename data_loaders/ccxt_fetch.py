"""Download market data through ccxt into margincall's store (``margincall data fetch``).

One run fetches, for each symbol, the datasets asked for: ``markets`` (from
``load_markets``), ``tiers`` (``fetch_leverage_tiers`` -> ``risk_tiers``), ``funding``
(``fetch_funding_rate_history``) and candles (``fetch_ohlcv``; ``mark``/``index`` through
``params={'price': ...}``) -> ``ohlcv``. Candles and funding are paged with since/limit loops
(the endpoint's max page size), each request rate-limited by ccxt and retried with
exponential backoff on transient errors, and written to the store every few pages. Before
fetching, the store is consulted, so a second run fetches only what is missing.

Examples
--------
>>> from data_loaders.store import MarketStore                      # doctest: +SKIP
>>> request = FetchRequest(exchange="binanceusdm", symbols=("BTC/USDT:USDT",),
...                        timeframe="1h", since="2020-03-01", until="2020-03-31",
...                        what=("ohlcv", "mark", "funding"))          # doctest: +SKIP
>>> report = fetch_to_store(request, MarketStore(".margincall/store"))  # doctest: +SKIP
"""
from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from data_loaders.ccxt_bitmex import bitmex_market, bucketed_candles
from data_loaders.ccxt_client import (
    ExchangeClient,
    FetchError,
    check_capabilities,
    create_exchange,
    credentials_from_env,
    page_limit,
    resolve_symbol,
)
from data_loaders.ccxt_parse import funding_frame, markets_frame, ohlcv_frame, tiers_frame
from data_loaders.ccxt_plan import uncovered
from data_loaders.ccxt_retry import RetriesExhaustedError, RetryPolicy
from data_loaders.ccxt_sink import DatasetOutcome, FetchReport, PageWriter, StoreLike, iso, read_stored
from data_loaders.ccxt_tiers import fetch_tier_lists
from data_loaders.ccxt_venues import profile
from data_loaders.errors import DataError
from data_loaders.schemas import timeframe_ms, to_ms

__all__ = ["WHAT", "FetchRequest", "FetchProgress", "FetchInterruptedError", "CcxtFetcher",
           "fetch_to_store", "FetchReport", "DatasetOutcome", "RetryPolicy", "FetchError"]

#: Valid ``--what`` names, in the order a run fetches them (snapshots first, so a missing
#: API key fails before a long candle download).
WHAT: tuple[str, ...] = ("markets", "tiers", "funding", "ohlcv", "mark", "index")
_PRICE_TYPE = {"ohlcv": "last", "mark": "mark", "index": "index"}
#: Shown when an exchange answers a window with nothing (e.g. Hyperliquid keeps only its latest
#: 5000 candles per interval, so older windows come back empty).
_EMPTY_NOTE = ("the exchange returned no rows for this window; if it does not keep history that old, "
               "import it with `margincall data import`")


class FetchInterruptedError(FetchError):
    """Transient errors outlasted the retries; everything fetched before is stored."""


class FetchProgress(Protocol):
    """Progress sink (the CLI draws a rich progress bar; the default draws nothing)."""

    def start(self, description: str, total: float) -> int:
        """Open a task of ``total`` units (ms of history, or 1 for a snapshot); return its id."""

    def advance(self, task_id: int, amount: float) -> None:
        """Mark ``amount`` more units of task ``task_id`` done."""

    def note(self, message: str) -> None:
        """Show a one-line message (a retry, an unchanged snapshot)."""


class _SilentProgress:
    def start(self, description: str, total: float) -> int:
        return 0

    def advance(self, task_id: int, amount: float) -> None:
        return None

    def note(self, message: str) -> None:
        return None


@dataclass(frozen=True)
class FetchRequest:
    """What to fetch.

    Parameters
    ----------
    exchange : str
        ccxt exchange id, e.g. ``"binanceusdm"``.
    symbols : tuple of str
        ccxt unified symbols, e.g. ``("BTC/USDT:USDT",)``.
    timeframe : str
        Candle timeframe (``1m``, ``5m``, ``1h`` ...).
    since, until : int, datetime or ISO str
        Window ``[since, until)`` in UTC; ``until=None`` means now. Only closed candles and
        past settlements are fetched.
    what : tuple of str
        Subset of :data:`WHAT`.
    """

    exchange: str
    symbols: tuple[str, ...]
    timeframe: str = "1m"
    since: Any = None
    until: Any = None
    what: tuple[str, ...] = ("ohlcv", "mark", "funding", "markets")

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbols", tuple(self.symbols))
        object.__setattr__(self, "what", tuple(self.what))
        if not self.symbols:
            raise FetchError("fetch: expected at least one symbol (--symbol BTC/USDT:USDT), found none")
        unknown = [w for w in self.what if w not in WHAT]
        if unknown or not self.what:
            hints = "; ".join(
                f"{w!r}: did you mean {difflib.get_close_matches(w, WHAT, n=1, cutoff=0.4) or '?'}"
                for w in unknown)
            raise FetchError(f"--what {','.join(self.what) or '(empty)'}: expected names from "
                             f"{', '.join(WHAT)}; {hints or 'nothing selected'}")
        timeframe_ms(self.timeframe)
        if self.since is None and any(w in self.what for w in ("funding", "ohlcv", "mark", "index")):
            raise FetchError("fetch: --since is required for candles and funding "
                             "(e.g. --since 2020-03-01)")
        if self.since is not None and self.until is not None and to_ms(self.since) >= to_ms(self.until):
            raise FetchError(f"fetch window: expected --since before --until, found since="
                             f"{self.since} until={self.until}")


@dataclass
class CcxtFetcher:
    """Runs a :class:`FetchRequest` against one exchange client into one store.

    Parameters
    ----------
    client : ExchangeClient
        A ccxt exchange instance (or a fake following the protocol).
    store : StoreLike
        The :class:`~data_loaders.store.MarketStore` to fill.
    retry : RetryPolicy
        Backoff for transient errors (inject ``sleep`` in tests).
    progress : FetchProgress, optional
        Progress sink.
    clock : callable
        ``clock() -> epoch ms``; stamps snapshots' ``effective_from`` and caps the window.
    max_page : int, optional
        Cap on rows per request, below the endpoint's own maximum.
    pages_per_write : int
        Pages buffered before writing to the store.
    strict : bool
        Passed to ``store.write``: True (default) refuses a chunk with invalid rows (nothing of
        that chunk is written, the error names the rows); False drops such rows with a warning.
    """

    client: ExchangeClient
    store: StoreLike
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: FetchProgress = field(default_factory=_SilentProgress)
    clock: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    max_page: int | None = None
    pages_per_write: int = 10
    strict: bool = True
    _report: FetchReport = field(init=False, repr=False)

    def run(self, request: FetchRequest) -> FetchReport:
        """Fetch everything ``request`` asks for; return what was written.

        Raises
        ------
        CapabilityError, UnknownSymbolError
            Before any download, when the exchange lacks a method or a symbol.
        FetchInterruptedError
            When transient errors outlast the retries; the message lists what is stored.
        FetchError
            For a non-transient exchange error (e.g. a private endpoint without API key).
        """
        import ccxt

        check_capabilities(self.client, request.what)
        _check_timeframe(self.client, request)
        report = FetchReport(exchange=self.client.id)
        self._report = report
        now = self.clock()
        try:
            self._call("load_markets", self.client.load_markets)
            markets = {symbol: resolve_symbol(self.client, symbol) for symbol in request.symbols}
            for name in (w for w in WHAT if w in request.what):
                self._fetch_one(name, request, markets, now)
        except RetriesExhaustedError as exc:
            raise FetchInterruptedError(
                f"{exc}.\n{self._stored_text()}\nNothing fetched was lost: re-run the same "
                "command to resume; it fetches only what is still missing.") from exc
        except DataError as exc:  # e.g. unknown symbol, no API key for tiers, invalid rows
            if not report.rows:
                raise
            raise type(exc)(f"{exc}\n{self._stored_text()}") from exc
        except ccxt.BaseError as exc:
            raise FetchError(
                f"{self.client.id}: the exchange refused a request ({type(exc).__name__}: {exc}).\n"
                f"{self._stored_text()}\nFix the cause and re-run the same command; it resumes "
                "where this run stopped.") from exc
        return report

    def _fetch_one(self, name: str, request: FetchRequest, markets: dict[str, dict], now: int) -> None:
        if name == "markets":
            self._snapshot("markets", request.symbols, lambda s: self._markets_frame(markets[s], now))
        elif name == "tiers":
            # OKX tiers count contracts: the report says so next to the rows
            units = "bounds in contracts" if profile(self.client.id).tier_bounds == "contracts" else ""
            self._snapshot("risk_tiers", request.symbols, self._tiers_loader(request.symbols, now), detail=units)
        else:
            for symbol in request.symbols:
                if name == "funding":
                    self._funding(symbol, markets[symbol], request, now)
                else:
                    self._candles(symbol, markets[symbol], request, _PRICE_TYPE[name], now)

    def _stored_text(self) -> str:
        root = getattr(self.store, "root", None)
        where = f" in {root}" if root is not None else ""
        return f"Stored so far by this run{where}:\n{self._report.stored_summary()}"

    # --- candles -----------------------------------------------------------------------
    def _candles(self, symbol: str, market: dict, request: FetchRequest, price_type: str, now: int) -> None:
        tf, step = request.timeframe, timeframe_ms(request.timeframe)
        start = to_ms(request.since)
        end = min(to_ms(request.until) if request.until is not None else now, now // step * step)
        outcome = self._outcome("ohlcv", symbol, f"{tf} {price_type}")
        if end <= start:
            outcome.note = f"no closed {tf} candle in the window yet"
            return
        ranges = uncovered(self.store.coverage("ohlcv", exchange=self.client.id, symbol=symbol,
                                               timeframe=tf, price_type=price_type), start, end)
        if not ranges:
            outcome.note = "already stored"
            return
        limit = self._limit("fetchOHLCV", market, price_type)
        params: dict[str, Any] = {} if price_type == "last" else {"price": price_type}
        task = self.progress.start(f"{symbol} {tf} {price_type}", sum(b - a for a, b in ranges))
        writer = self._writer("ohlcv", outcome)
        bins = profile(self.client.id).bitmex_api

        def request_page(lo: int, hi: int) -> list[list]:
            if bins:  # BitMEX: raw bins, base-unit volume, index bins (data_loaders.ccxt_bitmex)
                return bucketed_candles(self.client, market, tf, lo, hi, limit, price_type)
            return self.client.fetch_ohlcv(symbol, tf, since=lo, limit=limit, params={**params, "until": hi - 1})

        def page(lo: int, hi: int) -> list[int]:
            raw = self._call(f"fetch_ohlcv {symbol} {tf} {price_type} since {iso(lo)}",
                             lambda: request_page(lo, hi), outcome)
            rows = [r for r in raw if lo <= int(r[0]) < hi]
            if rows:
                writer.add(ohlcv_frame(rows, exchange=self.client.id, symbol=symbol,
                                       timeframe=tf, price_type=price_type))
            return [int(r[0]) for r in rows]

        with _flushing(writer):
            for range_start, range_end in ranges:
                self._page_range(range_start, range_end, step, page, task)
        if not outcome.rows:
            outcome.note = _EMPTY_NOTE

    def _page_range(self, start: int, end: int, step: int, page: Callable[[int, int], list[int]],
                    task: int) -> None:
        """Fetch ``[start, end)`` page by page; ``page(lo, hi)`` stores one page of the rows in
        ``[lo, hi)`` and returns their timestamps (epoch ms).

        Oldest-first venues (Binance, Hyperliquid): after each page the part after its last row
        is requested next, until an empty answer (the exchange has nothing more there).
        Newest-first venues (``VenueProfile.newest_first``: Bybit, OKX, dYdX) answer a window
        with its newest rows, so the part before a page's first row is requested next, until an
        empty answer or a page reaching ``lo``. The walk does not rely on a page being "full":
        a venue may cut pages below the size asked for (OKX's history endpoints at 100).
        """
        newest_first = profile(self.client.id).newest_first
        pending = [(start, end)]
        while pending:
            lo, hi = pending.pop()
            stamps = page(lo, hi)
            if not stamps:
                self.progress.advance(task, hi - lo)
                continue
            if newest_first:
                first = min(stamps)
                self.progress.advance(task, hi - first)
                if first > lo:
                    pending.append((lo, first))
            else:
                done_to = min(max(stamps) + step, hi)
                self.progress.advance(task, done_to - lo)
                if done_to < hi:
                    pending.append((done_to, hi))

    # --- funding -----------------------------------------------------------------------
    def _funding(self, symbol: str, market: dict, request: FetchRequest, now: int) -> None:
        start = to_ms(request.since)
        end = min(to_ms(request.until) if request.until is not None else now, now)
        outcome = self._outcome("funding", symbol)
        if end <= start:
            outcome.note = "the window starts in the future"
            return
        ranges = uncovered(self.store.coverage("funding", exchange=self.client.id, symbol=symbol),
                           start, end)
        if not ranges:
            outcome.note = "already stored"
            return
        limit = self._limit("fetchFundingRateHistory", market)
        venue = profile(self.client.id)
        fallback_h = venue.funding_interval_h

        def bounds(hi: int) -> dict[str, Any]:
            if venue.funding_until_param:  # ccxt does not map `until` here: the exchange's own bound
                return {venue.funding_until_param: hi}
            return {"until": hi - 1}

        task = self.progress.start(f"{symbol} funding", sum(b - a for a, b in ranges))
        writer = self._writer("funding", outcome)
        # settlements known so far (epoch ms -> interval h): the stored one before each range
        # and every fetched one, so a page's first interval follows its true predecessor even
        # when pages arrive newest-first.
        known: dict[int, float] = {}

        def page(lo: int, hi: int) -> list[int]:
            raw = self._call(f"fetch_funding_rate_history {symbol} since {iso(lo)}",
                             lambda: self.client.fetch_funding_rate_history(
                                 symbol, since=lo, limit=limit, params=bounds(hi)), outcome)
            entries = [e for e in raw if e.get("timestamp") is not None and lo <= int(e["timestamp"]) < hi]
            if not entries:
                return []
            first = min(int(e["timestamp"]) for e in entries)
            before = [ts for ts in known if ts < first]
            prev_ts = max(before) if before else None
            frame = funding_frame(entries, exchange=self.client.id, symbol=symbol, previous_ts=prev_ts,
                                  previous_interval_h=known.get(prev_ts) if prev_ts is not None else None,
                                  fallback_interval_h=fallback_h, mark_key=venue.funding_mark_key)
            writer.add(frame)
            known.update(zip(frame.get_column("ts").dt.epoch("ms").to_list(),
                             frame.get_column("interval_hours").to_list()))
            return [int(e["timestamp"]) for e in entries]

        with _flushing(writer):
            for range_start, range_end in ranges:
                prev_ts, prev_h = self._last_settlement(symbol, range_start)
                if prev_ts is not None:
                    known[prev_ts] = prev_h
                self._page_range(range_start, range_end, 1, page, task)
        if not outcome.rows:
            outcome.note = _EMPTY_NOTE

    def _last_settlement(self, symbol: str, before: int) -> tuple[int | None, float | None]:
        """Stored settlement (epoch ms, interval hours) just before ``before``, if any."""
        stored = read_stored(self.store, "funding", exchange=self.client.id, symbol=symbol,
                             start=before - 86_400_000, end=before)
        if stored.height == 0:
            return None, None
        return (int(stored.get_column("ts").dt.epoch("ms")[-1]),
                float(stored.get_column("interval_hours")[-1]))

    # --- snapshots (markets, tiers) -------------------------------------------------------
    def _snapshot(self, dataset: str, symbols: tuple[str, ...],
                  load: Callable[[str], pl.DataFrame], detail: str = "") -> None:
        task = self.progress.start(f"{dataset} snapshot", len(symbols))
        for symbol in symbols:
            outcome = self._outcome(dataset, symbol, detail)
            frame = load(symbol)
            if frame.height == 0:
                outcome.note = "the exchange returned nothing"
            elif self._unchanged(dataset, symbol, frame):
                outcome.note = "unchanged since the stored version"
                self.progress.note(f"{dataset} {symbol}: unchanged, not re-stored")
            else:
                writer = self._writer(dataset, outcome)
                writer.add(frame)
                writer.flush()
            self.progress.advance(task, 1)

    def _markets_frame(self, market: dict, now: int) -> pl.DataFrame:
        if profile(self.client.id).bitmex_api:  # face value of inverse contracts; quanto refused
            market = bitmex_market(market, getattr(self.client, "currencies", None))
        return markets_frame([market], exchange=self.client.id, effective_from=now,
                             precision_mode=int(getattr(self.client, "precisionMode", 4)))

    def _tiers_loader(self, symbols: tuple[str, ...], now: int) -> Callable[[str], pl.DataFrame]:
        cache: dict[str, list[dict]] = {}
        maint_amount = profile(self.client.id).maint_amount

        def load(symbol: str) -> pl.DataFrame:
            if not cache:  # one round of requests for every symbol, on the first symbol
                cache.update(fetch_tier_lists(self.client, symbols, self._call))
            return tiers_frame(cache.get(symbol) or [], exchange=self.client.id, symbol=symbol,
                               effective_from=now, maint_amount=maint_amount)

        return load

    def _unchanged(self, dataset: str, symbol: str, frame: pl.DataFrame) -> bool:
        stored = read_stored(self.store, dataset, exchange=self.client.id, symbol=symbol)
        if stored.height == 0:
            return False
        latest = stored.filter(pl.col("effective_from") == pl.col("effective_from").max())
        values = [c for c in frame.columns if c not in ("effective_from",)]
        sort_by = ["tier"] if "tier" in values else ["symbol"]
        return latest.select(values).sort(sort_by).equals(frame.select(values).sort(sort_by))

    # --- plumbing ---------------------------------------------------------------------------
    def _outcome(self, dataset: str, symbol: str, detail: str = "") -> DatasetOutcome:
        outcome = DatasetOutcome(dataset=dataset, symbol=symbol, detail=detail)
        self._report.outcomes.append(outcome)
        return outcome

    def _writer(self, dataset: str, outcome: DatasetOutcome) -> PageWriter:
        return PageWriter(self.store, dataset, outcome, source=f"ccxt:{self.client.id}",
                          strict=self.strict, pages_per_write=self.pages_per_write)

    def _limit(self, method: str, market: dict, price_type: str = "last") -> int:
        limit = page_limit(self.client, method, market, price_type=price_type)
        return min(limit, self.max_page) if self.max_page else limit

    def _call(self, what: str, func: Callable[[], Any], outcome: DatasetOutcome | None = None) -> Any:
        def on_retry(attempt: int, error: BaseException, delay: float) -> None:
            self.progress.note(f"{what}: {type(error).__name__}, retry {attempt}/"
                               f"{self.retry.max_tries - 1} in {delay:.1f}s")

        if outcome is not None:
            outcome.requests += 1
        return self.retry.call(f"{self.client.id} {what}", func, on_retry)


def _check_timeframe(client: ExchangeClient, request: FetchRequest) -> None:
    """Refuse, before any request, a candle timeframe the exchange does not serve.

    ccxt lists each exchange's candle intervals in ``exchange.timeframes`` (BitMEX: 1m, 5m, 1h,
    1d); a client without that list (a test fake) is not checked.
    """
    served = getattr(client, "timeframes", None)
    if not served or request.timeframe in served or not any(w in request.what for w in _PRICE_TYPE):
        return
    raise FetchError(
        f"--timeframe {request.timeframe}: {client.id} serves candles of {', '.join(served)} only; "
        f"fetch one of those, or import {request.timeframe} candles with `margincall data import`")


class _flushing:
    """Context manager: flush a :class:`PageWriter` on exit, also when an error propagates."""

    def __init__(self, writer: PageWriter) -> None:
        self._writer = writer

    def __enter__(self) -> PageWriter:
        return self._writer

    def __exit__(self, *exc: object) -> None:
        self._writer.flush()


def fetch_to_store(request: FetchRequest, store: StoreLike, *, client: ExchangeClient | None = None,
                   retry: RetryPolicy | None = None, progress: FetchProgress | None = None,
                   clock: Callable[[], int] | None = None, max_page: int | None = None,
                   pages_per_write: int = 10, strict: bool = True) -> FetchReport:
    """Fetch ``request`` into ``store`` (builds the ccxt client unless one is given).

    Credentials, when an endpoint needs them, come from ``MARGINCALL_<EXCHANGE>_API_KEY`` /
    ``MARGINCALL_<EXCHANGE>_SECRET``. See :class:`CcxtFetcher` for the other parameters.
    """
    if client is None:
        client = create_exchange(request.exchange, credentials=credentials_from_env(request.exchange))
    fetcher = CcxtFetcher(client=client, store=store, retry=retry or RetryPolicy(),
                          progress=progress or _SilentProgress(),
                          clock=clock or (lambda: int(time.time() * 1000)), max_page=max_page,
                          pages_per_write=pages_per_write, strict=strict)
    return fetcher.run(request)



