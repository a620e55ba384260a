"""Rate limits per client address (every path, and turns) and per site key: token buckets in this
process's memory (``serve.rate_limit_store = "memory"``), or sliding-window counters in the shared
store, so that the limits hold across replicas (``"store"``: :class:`StoreRateLimiter`)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from chatrec.config import ServeSettings
from chatrec.store.base import Store, StoreUnavailable

log = logging.getLogger(__name__)

WINDOW_S = 60.0  # the store's counters are per minute


class Limiter(Protocol):
    def take(self, key: str) -> float:
        """0.0 if allowed, else the seconds until a request would be."""
        ...


class RateLimiter:
    """In-memory token buckets: bursts up to ``per_minute``, refilled at ``per_minute`` per minute."""

    def __init__(self, per_minute: float, max_entries: int = 50_000):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute)
        self.max_entries = max_entries
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 if allowed, else the seconds until a request would be."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_entries:
                full = [k for k, (t, ts) in self._buckets.items() if t + (now - ts) * self.rate >= self.capacity]
                for k in full:
                    del self._buckets[k]
            return (1.0 - tokens) / self.rate


class StoreRateLimiter:
    """``per_minute`` requests per key over any 60 s, counted in the shared store (every replica
    on it counts together): a sliding-window counter, i.e. fixed one-minute windows where the
    previous window's count weighs by the part of it still inside the last 60 s
    (:meth:`Store.take_rate`, an atomic upsert). Keys are stored as keyed hashes (no client
    addresses in the database). A store that is unavailable lets the request through (logged):
    the limiter never takes the site down with it; turns then fail on the store themselves."""

    def __init__(self, store: Store, per_minute: float, name: str, clock: Callable[[], float] = time.time):
        self.store, self.per_minute, self.name, self.clock = store, per_minute, name, clock
        self.limit = max(1.0, per_minute)
        self._pruned = 0  # the last window whose older counters this process dropped
        self._secret: bytes | None = None

    def _key(self, key: str) -> str:
        if self._secret is None:
            self._secret = self.store.secret("rate_limit_keys")
        return f"{self.name}:" + hmac.new(self._secret, key.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def take(self, key: str) -> float:
        """0.0 if allowed (and counted), else the seconds until a request would be."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        window, into = int(now // WINDOW_S), (now % WINDOW_S) / WINDOW_S
        try:
            if window > self._pruned:
                self._pruned = window
                self.store.drop_rates(window - 1)
            ok, count, prev = self.store.take_rate(self._key(key), window, self.limit, 1.0 - into)
        except StoreUnavailable as exc:
            log.warning("rate limit %s not checked (the store is unavailable): %s", self.name, exc)
            return 0.0
        return 0.0 if ok else self._wait(now, window, count, prev)

    def _wait(self, now: float, window: int, count: int, prev: int) -> float:
        """Seconds until ``count + 1 + carry * prev <= limit`` (carry falls from 1 to 0 over a window)."""
        start = window * WINDOW_S
        room = self.limit - count - 1
        if room >= 0 and prev > 0:  # later in this window, as the previous one weighs less
            at = start + WINDOW_S * (1.0 - room / prev)
        else:  # in the next window, where this one is the previous
            at = start + WINDOW_S * (2.0 - min(1.0, (self.limit - 1) / max(count, 1)))
        return max(0.05, at - now)


@dataclass(frozen=True)
class RateLimits:
    """The app's limiters (state shared by all requests): ``ip`` counts turns and API calls per
    address (``/v1/`` and the UI's calls alike), ``key`` per site key, ``edge`` every request per
    address (pages, assets, ``/docs`` too)."""

    ip: Limiter
    key: Limiter
    edge: Limiter

    @classmethod
    def from_settings(cls, settings: ServeSettings, store: Store | None = None) -> RateLimits:
        """The limiters ``settings`` ask for; ``rate_limit_store = "store"`` counts in ``store``."""
        rates = (settings.rate_per_minute_ip, settings.rate_per_minute_key, settings.rate_per_minute_ip_all)
        if settings.rate_limit_store == "store":
            if store is None:
                raise ValueError('serve.rate_limit_store = "store" needs the store to count in')
            return cls(*(StoreRateLimiter(store, r, n) for r, n in zip(rates, ("ip", "key", "edge"))))
        return cls(*(RateLimiter(r) for r in rates))
