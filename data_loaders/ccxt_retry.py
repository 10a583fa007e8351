"""Bounded exponential-backoff retries for transient exchange errors.

Retried: ``ccxt.NetworkError`` and its subclasses (``RequestTimeout``, ``DDoSProtection``,
``RateLimitExceeded``, ``ExchangeNotAvailable``, ``InvalidNonce``). Anything else (bad symbol,
authentication, exchange-side validation) is not transient and propagates at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


class RetriesExhaustedError(Exception):
    """A call kept failing with transient errors ``tries`` times (the last one is chained)."""

    def __init__(self, what: str, tries: int, last: BaseException) -> None:
        super().__init__(f"{what}: failed {tries} times in a row; last error "
                         f"{type(last).__name__}: {last}")
        self.what = what
        self.tries = tries
        self.last = last


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient exchange error.

    Parameters
    ----------
    max_tries : int
        Attempts per call, including the first (>= 1).
    base_delay : float
        Wait before the second attempt, seconds; doubles on each further attempt.
    max_delay : float
        Cap on a single wait, seconds.
    rate_limit_factor : float
        Extra multiplier for rate-limit / DDoS-protection errors (the venue asked us to slow
        down, so wait longer than after a dropped connection).
    sleep : callable
        ``sleep(seconds)``; injected so tests never really sleep.
    """

    max_tries: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    rate_limit_factor: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError(f"RetryPolicy.max_tries: expected >= 1, found {self.max_tries}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays: expected seconds >= 0, found "
                             f"base_delay={self.base_delay}, max_delay={self.max_delay}")

    def delay(self, attempt: int, error: BaseException) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        import ccxt

        seconds = self.base_delay * 2 ** (attempt - 1)
        if isinstance(error, ccxt.DDoSProtection):
            seconds *= self.rate_limit_factor
        return min(seconds, self.max_delay)

    def call(self, what: str, func: Callable[[], T],
             on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
        """Run ``func()``; on a transient error wait and retry, up to ``max_tries`` attempts.

        Parameters
        ----------
        what : str
            Description of the call for the error message (e.g. ``"fetch_ohlcv BTC/USDT:USDT"``).
        func : callable
            The call to make.
        on_retry : callable, optional
            ``on_retry(attempt, error, delay_seconds)``, called before each wait.

        Raises
        ------
        RetriesExhaustedError
            After ``max_tries`` transient failures.
        """
        import ccxt

        for attempt in range(1, self.max_tries + 1):
            try:
                return func()
            except ccxt.NetworkError as exc:
                if attempt == self.max_tries:
                    raise RetriesExhaustedError(what, attempt, exc) from exc
                seconds = self.delay(attempt, exc)
                if on_retry is not None:
                    on_retry(attempt, exc, seconds)
                self.sleep(seconds)
        raise AssertionError("unreachable")  # pragma: no cover
