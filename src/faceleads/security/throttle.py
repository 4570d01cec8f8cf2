"""Sign-in throttling: token buckets per client address and per (address, username), kept in memory.

:func:`faceleads.security.auth.authenticate` takes the limiter and records every throttled attempt in the audit
log before refusing it, so a refusal is audited whichever entry point (web page, REST API) it came through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from faceleads.errors import TooManyRequests


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """In-memory token buckets: ``capacity`` attempts at once, refilled at ``per_minute`` attempts per minute.

    ``clock`` is injectable so that tests need not sleep.
    """

    def __init__(self, capacity: int, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1 or per_minute <= 0:
            raise ValueError("capacity must be >= 1 and per_minute > 0")
        self.capacity = capacity
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Consume one token for ``key``; returns 0 when allowed, else the seconds until one is available."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.capacity), now)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            if len(self._buckets) > 100_000:  # bound memory under a flood of distinct keys
                self._buckets = {k: b for k, b in self._buckets.items() if b.tokens < self.capacity}
            return (1.0 - bucket.tokens) / self.rate


class SignInLimiter:
    """Sign-in throttling per client address (30 at once, 30/min) and per address + username (5 at once, 5/min)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_ip = TokenBucketLimiter(30, 30, clock)
        self.per_user = TokenBucketLimiter(5, 5, clock)

    def check(self, client: str, username: str) -> None:
        """Raise :class:`TooManyRequests` when either bucket is empty."""
        wait = max(self.per_ip.take(client), self.per_user.take(f"{client}|{username.strip().lower()[:150]}"))
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            raise TooManyRequests(f"too many sign-in attempts: wait {seconds} seconds and try again", seconds)
