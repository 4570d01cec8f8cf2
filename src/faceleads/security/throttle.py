"""Sign-in throttling: token buckets per client address and per (address, username), kept in the database.

A limit that lived in one server's memory would let an attacker multiply their sign-in attempts by the number of
servers behind the load balancer (and reset them by waiting for a restart), so every bucket is one row of
``rate_limit_buckets``, keyed by a SHA-256 digest of the limit's name and the bucket key (a client address, an
address + username): no usernames or addresses are stored in the clear. Taking a token locks the row for the few
statements of its transaction, so concurrent attempts on any host are counted exactly. The clock is wall time
(comparable across hosts); it is injectable so that tests need not sleep.

:func:`faceleads.security.auth.authenticate` takes the limiter and records every throttled attempt in the audit
log before refusing it, so a refusal is audited whichever entry point (web page, REST API) it came through.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable

from sqlalchemy import Float, String, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from faceleads.core.uow import transaction
from faceleads.db import Base, is_postgres
from faceleads.errors import TooManyRequests


class RateLimitBucket(Base):
    """One token bucket: tokens left and when they were last counted (seconds since the epoch)."""

    __tablename__ = "rate_limit_buckets"

    bucket: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float, index=True)


class TokenBucketLimiter:
    """``capacity`` attempts at once, refilled at ``per_minute`` attempts per minute, per key, in the database."""

    def __init__(self, session_factory: sessionmaker[Session], name: str, capacity: int, per_minute: float,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        if capacity < 1 or per_minute <= 0:
            raise ValueError("capacity must be >= 1 and per_minute > 0")
        self.session_factory = session_factory
        self.name = name
        self.capacity = capacity
        self.rate = per_minute / 60.0
        self.clock = clock

    def _digest(self, key: str) -> str:
        return hashlib.sha256(f"{self.name}|{key}".encode()).hexdigest()

    def take(self, key: str) -> float:
        """Consume one token for ``key``; returns 0 when allowed, else the seconds until one is available."""
        now = self.clock()
        bucket = self._digest(key)
        with transaction(self.session_factory) as session:
            insert = (pg_insert if is_postgres(session) else sqlite_insert)(RateLimitBucket)
            # Create the bucket full if it is new; then lock it (SQLite: the insert took the write lock already).
            session.execute(
                insert.values(bucket=bucket, tokens=float(self.capacity), updated=now).on_conflict_do_nothing(
                    index_elements=["bucket"]
                )
            )
            tokens, updated = session.execute(
                select(RateLimitBucket.tokens, RateLimitBucket.updated)
                .where(RateLimitBucket.bucket == bucket)
                .with_for_update()
            ).one()
            tokens = min(float(self.capacity), tokens + max(0.0, now - updated) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            session.execute(
                update(RateLimitBucket).where(RateLimitBucket.bucket == bucket).values(tokens=tokens, updated=now)
            )
            if random.random() < 0.01:  # now and then, forget buckets that are full again
                full_after = self.capacity / self.rate
                session.execute(delete(RateLimitBucket).where(RateLimitBucket.updated < now - full_after - 60))
        return 0.0 if allowed else (1.0 - tokens) / self.rate


class SignInLimiter:
    """Sign-in throttling per client address (default 30 at once, 30/min) and per address + username (5, 5/min),
    counted in the database so that every server behind the load balancer sees the same attempts."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        clock: Callable[[], float] = time.time,
        *,
        per_address: int = 30,
        per_account: int = 5,
    ) -> None:
        self.per_ip = TokenBucketLimiter(session_factory, "sign-in-ip", per_address, per_address, clock)
        self.per_user = TokenBucketLimiter(session_factory, "sign-in-user", per_account, per_account, clock)

    def check(self, client: str, username: str) -> None:
        """Raise :class:`TooManyRequests` when either bucket is empty."""
        wait = max(self.per_ip.take(client), self.per_user.take(f"{client}|{username.strip().lower()[:150]}"))
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            raise TooManyRequests(f"too many sign-in attempts: wait {seconds} seconds and try again", seconds)


__all__ = ["RateLimitBucket", "SignInLimiter", "TokenBucketLimiter"]
