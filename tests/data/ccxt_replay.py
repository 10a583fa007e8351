"""Replay transport: serve recorded raw exchange responses to a real ccxt exchange instance.

:class:`ReplayTransport` replaces the instance's low-level ``Exchange.fetch(url, method,
headers, body)`` (the one place ccxt does HTTP), so everything above it (request building,
signing, ``handle_errors``, parsing into unified structures) is ccxt's own code running on
recorded exchange bodies. Requests are routed by URL path, query parameters and (POST) JSON body (signature,
timestamp and recvWindow ignored); an unrecorded request fails the test with the list of
what is recorded. Failures can be scripted per path: a dropped connection (ccxt
``NetworkError``, as ccxt raises it for a reset), an HTTP 429 with Binance's body, or a 503.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RECORDED = Path(__file__).resolve().parent / "recorded"
_VOLATILE = frozenset({"signature", "timestamp", "recvWindow"})

_FAILURE_BODIES = {
    "rate_limit": (429, "Too Many Requests", json.dumps(
        {"code": -1003, "msg": "Too many requests; current limit of IP(203.0.113.7) is 2400 requests "
                               "per minute. Please use the websocket for live updates to avoid polling the API."})),
    "unavailable": (503, "Service Unavailable", json.dumps(
        {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."})),
}


@dataclass(frozen=True)
class Request:
    """One request the exchange instance made: method, URL path and query (volatile keys dropped)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any = None


@dataclass
class _Failure:
    path: str
    kind: str
    after: int
    times: int
    seen: int = 0


@dataclass
class ReplayTransport:
    """Recorded responses keyed by (method, path, query); see the module docstring.

    Parameters
    ----------
    exchange : ccxt.Exchange
        The instance whose ``fetch`` is replaced by :meth:`install`.
    recordings : list of dict
        ``{"request": {method, path, query}, "response": {status, body}}`` items.
    """

    exchange: Any
    recordings: list[dict] = field(default_factory=list)
    log: list[Request] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _overrides: dict[tuple, Any] = field(default_factory=dict)

    @classmethod
    def from_folder(cls, exchange: Any, folder: str | Path) -> ReplayTransport:
        """Load every ``*.json`` recording in ``folder`` (relative to tests/data/recorded)."""
        path = Path(folder)
        path = path if path.is_absolute() else RECORDED / path
        recordings: list[dict] = []
        for file in sorted(path.glob("*.json")):
            recordings.extend(json.loads(file.read_text()))
        return cls(exchange=exchange, recordings=recordings)

    def install(self) -> ReplayTransport:
        """Route the exchange instance's HTTP through this transport; returns self."""
        self.exchange.fetch = self
        return self

    def fail(self, path: str, *, kind: str = "network", after: int = 0, times: int = 1) -> None:
        """Make requests to ``path`` fail: skip ``after`` matching requests, then fail ``times``.

        ``kind``: ``"network"`` (connection reset -> ccxt.NetworkError), ``"rate_limit"``
        (HTTP 429 + Binance -1003 body, through ccxt's handle_errors) or ``"unavailable"``
        (HTTP 503).
        """
        if kind not in ("network", *_FAILURE_BODIES):
            raise ValueError(f"failure kind {kind!r}: expected network, rate_limit or unavailable")
        self._failures.append(_Failure(path=path, kind=kind, after=after, times=times))

    def override(self, path: str, query: dict[str, Any], body: Any) -> None:
        """Serve ``body`` (wire JSON) for this exact request instead of the recording."""
        self._overrides[(path, _freeze(query))] = body

    def requests(self, path: str) -> list[Request]:
        """Logged requests to ``path``, in order."""
        return [r for r in self.log if r.path == path]

    def __call__(self, url: str, method: str = "GET", headers: dict | None = None, body: Any = None) -> Any:
        parts = urlsplit(url)
        query = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _VOLATILE}
        sent = json.loads(body) if method == "POST" and body else None  # JSON-RPC style venues
        request = Request(method=method, path=parts.path, query=query, body=sent)
        self.log.append(request)
        failure = self._due_failure(request.path)
        if failure == "network":
            import ccxt

            raise ccxt.NetworkError(" ".join([self.exchange.id, method, url]))
        if failure:
            status, reason, text = _FAILURE_BODIES[failure]
            return self._respond(url, method, headers, body, status, reason, text)
        key = (request.path, _freeze(query))
        if key in self._overrides:
            return self._respond(url, method, headers, body, 200, "OK", json.dumps(self._overrides[key]))
        for recording in self.recordings:
            recorded = recording["request"]
            if (recorded["method"], recorded["path"]) == (method, request.path) and recorded["query"] == query \
                    and recorded.get("body") == sent:
                response = recording["response"]
                text = json.dumps(response["body"], separators=(",", ":"))
                return self._respond(url, method, headers, body, response["status"], "OK", text)
        known = sorted({(r["request"]["path"], json.dumps(r["request"]["query"]), json.dumps(r["request"].get("body")))
                        for r in self.recordings if r["request"]["path"] == request.path})
        raise AssertionError(f"unrecorded request {method} {request.path} {query} {sent or ''}; recorded "
                             f"for this path: {known or 'nothing'}")

    def _due_failure(self, path: str) -> str | None:
        for failure in self._failures:
            if failure.path != path:
                continue
            failure.seen += 1
            if failure.after < failure.seen <= failure.after + failure.times:
                return failure.kind
        return None

    def _respond(self, url: str, method: str, request_headers: Any, request_body: Any,
                 status: int, reason: str, text: str) -> Any:
        """Mirror the tail of ``ccxt.Exchange.fetch``: parse JSON, then ccxt's error handling."""
        import ccxt

        exchange = self.exchange
        headers = {"Content-Type": "application/json"}
        parsed = exchange.parse_json(text)
        if status >= 400:
            skip = exchange.handle_errors(status, reason, url, method, headers, text, parsed,
                                          request_headers, request_body)
            if not skip:
                exchange.handle_http_status_code(status, reason, url, method, text)
            raise ccxt.ExchangeError(" ".join([exchange.id, method, url]))
        exchange.handle_errors(status, reason, url, method, headers, text, parsed, request_headers, request_body)
        return parsed


def replay_exchange(exchange_id: str, *, folder: str | None = None,
                    credentials: dict[str, str] | None = None) -> tuple[Any, ReplayTransport]:
    """A real ccxt instance of ``exchange_id`` whose HTTP replays ``recorded/<folder>/``.

    Built by :func:`data_loaders.ccxt_client.create_exchange`, as ``margincall data fetch``
    builds it (options, credentials); ccxt's throttle is off, since it would really sleep
    between replayed calls. ``folder`` defaults to the exchange id.
    """
    from data_loaders.ccxt_client import create_exchange

    exchange = create_exchange(exchange_id, credentials=credentials)
    exchange.enableRateLimit = False
    return exchange, ReplayTransport.from_folder(exchange, folder or exchange_id).install()


def replay_fetch_app(transports: list[ReplayTransport] | None = None, *,
                     credentials: dict[str, str] | None = None) -> Any:
    """A root typer app holding ``data fetch``, whose clients replay the recordings.

    Each command run builds its client with :func:`replay_exchange` and appends the transport
    to ``transports`` (when given), so a test can read the requests the command made.
    """
    import typer

    from backtest.cli.fetch import add_commands

    def replaying(exchange_id: str) -> Any:
        exchange, transport = replay_exchange(exchange_id, credentials=credentials)
        if transports is not None:
            transports.append(transport)
        return exchange

    root, data = typer.Typer(), typer.Typer()
    add_commands(data, client_factory=replaying)
    root.add_typer(data, name="data")
    return root


def _freeze(query: dict[str, Any]) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in query.items()))
