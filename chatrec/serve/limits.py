"""Rate limits: token buckets per client address (every path, and turns) and per site key."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from chatrec.config import ServeSettings


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


@dataclass(frozen=True)
class RateLimits:
    """The app's limiters (state shared by all requests): ``ip`` counts turns and API calls per
    address (``/v1/`` and the UI's calls alike), ``key`` per site key, ``edge`` every request per
    address (pages, assets, ``/docs`` too)."""

    ip: RateLimiter
    key: RateLimiter
    edge: RateLimiter

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> RateLimits:
        return cls(
            RateLimiter(settings.rate_per_minute_ip),
            RateLimiter(settings.rate_per_minute_key),
            RateLimiter(settings.rate_per_minute_ip_all),
        )
