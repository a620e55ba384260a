"""Failing safe against a remote engine: retry delays and a circuit breaker.

:class:`CircuitBreaker` counts consecutive failed requests to one engine; after
``failures`` of them it opens for ``open_s`` seconds, and every request meanwhile fails at
once with :class:`EngineUnavailable` (no connection is tried). Then it lets one request
through (half-open): its success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Callable


class EngineUnavailable(RuntimeError):
    """The remote engine is down, timed out, overloaded, or its circuit breaker is open. The
    turn then answers with the grounded template and item list (trace: ``engine_unavailable``)."""


def backoff_delay(attempt: int, base_s: float, cap_s: float = 8.0, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry ``attempt`` (0 = the first retry): exponential, capped, with
    "equal jitter" -- uniformly in [d/2, d] for d = min(cap, base * 2**attempt)."""
    d = min(cap_s, base_s * (2**attempt))
    return d / 2 + rng() * d / 2


class CircuitBreaker:
    """Closed -> (``failures`` consecutive failures) -> open for ``open_s`` -> half-open: one probe.
    Thread-safe; one per engine (shared by every adapter view of it)."""

    def __init__(self, failures: int = 5, open_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.failures, self.open_s, self.clock = max(1, failures), open_s, clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._probing or self.clock() - self._opened_at >= self.open_s:
            return "half-open"
        return "open"

    def before(self) -> None:
        """Call before a request: returns if it may go, else raises :class:`EngineUnavailable`."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return
            if state == "half-open" and not self._probing:
                self._probing = True  # this request is the probe; others wait for its outcome
                return
            left = self.open_s - (self.clock() - (self._opened_at or 0.0))
            raise EngineUnavailable(
                f"circuit breaker open after {self._consecutive} consecutive engine failures"
                + (f"; next probe in {left:.1f} s" if left > 0 else "; a probe is in flight")
            )

    def success(self) -> None:
        with self._lock:
            self._consecutive, self._opened_at, self._probing = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self._probing or self._consecutive >= self.failures:
                self._opened_at, self._probing = self.clock(), False
