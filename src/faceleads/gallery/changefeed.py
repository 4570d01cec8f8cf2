"""The search-index change feed: how every process's index follows the database, in order, across hosts.

Database triggers append a row to ``index_changes`` in the same transaction as every template insert, update or
delete and every subject status change (:class:`~faceleads.gallery.models.IndexChange`). Rows get their place in
the feed (``seq``) only after they are committed: a *sequencer* (:func:`sequence_pending`), run by any reader,
numbers the committed but unnumbered rows densely, in id order, under a lock (a transaction-level advisory lock on
PostgreSQL; SQLite has a single writer). Numbering after commit is what makes the feed safe to follow: on
PostgreSQL a transaction that took id 10 may commit after the one that took id 11, and a reader that had already
moved past 11 would miss 10 forever; a row that is numbered later simply gets a later ``seq``.

Every process keeps a cursor (the last ``seq`` it applied) and applies the rows after it in order
(:meth:`GalleryRuntime.sync_index <faceleads.gallery.runtime.GalleryRuntime.sync_index>`), before every search
and, in long-running processes, as soon as something changes (:class:`FeedFollower`): woken by LISTEN/NOTIFY on
PostgreSQL (the triggers notify at commit), by polling on SQLite. Because ``seq`` is dense, a gap after a cursor
means the rows were pruned and the process reconciles its index with the tables instead.

Long-running followers register in ``index_followers`` with a heartbeat and the ``seq`` they have applied. A
destruction marks the subject, then waits (:func:`wait_for_followers`) until every live follower has applied that
change — dropped the subject's templates from its memory — before the subject's key is destroyed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from faceleads.db import is_postgres, utcnow
from faceleads.errors import FaceleadsError, Unavailable
from faceleads.gallery.models import IndexChange, IndexFollower

if TYPE_CHECKING:
    from faceleads.gallery.runtime import GalleryRuntime

log = logging.getLogger("faceleads.gallery.changefeed")

CHANNEL = "faceleads_index"
# pg_advisory_xact_lock key of the sequencer ("flindexq" as a signed 64-bit integer).
SEQUENCER_LOCK_KEY = int.from_bytes(b"flindexq", "big") - 2**63
READ_BATCH = 20_000


@dataclass(frozen=True)
class Change:
    """One feed entry: its place in the feed, what changed and the id of what changed."""

    seq: int
    kind: str
    ref_id: int


class FeedGap(FaceleadsError):
    """The feed no longer holds the entries right after a reader's cursor (they were pruned)."""


# --------------------------------------------------------------------------------------------- the feed


def sequence_pending(session: Session) -> int:
    """Number the committed, unnumbered feed rows (in id order, densely after the highest ``seq``); commits.

    Cheap when there is nothing to number (one indexed lookup). Returns how many rows were numbered.
    """
    pending = session.execute(select(IndexChange.id).where(IndexChange.seq.is_(None)).limit(1)).first()
    # End the read transaction first: on SQLite, upgrading a read transaction to a write one fails at once when
    # another writer committed in between (instead of waiting for the lock).
    session.rollback()
    if pending is None:
        return 0
    if is_postgres(session):
        # Serialise sequencers: each sees the previous one's numbers (READ COMMITTED takes a new snapshot per
        # statement) and only rows committed before its UPDATE began. (SQLite has one writer at a time: its
        # ids are already in commit order and the write lock serialises sequencers.)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEQUENCER_LOCK_KEY})
    numbered = session.execute(
        text(
            "UPDATE index_changes SET seq = n.base + n.rn "
            "FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn, "
            "(SELECT COALESCE(MAX(seq), 0) FROM index_changes) AS base "
            "FROM index_changes WHERE seq IS NULL) AS n WHERE index_changes.id = n.id"
        )
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    return int(numbered or 0)


def latest_seq(session: Session) -> int:
    """The highest numbered ``seq`` (0 for an empty feed), after numbering what is pending."""
    sequence_pending(session)
    return int(session.execute(select(func.max(IndexChange.seq))).scalar() or 0)


def read_changes(session: Session, after: int, limit: int = READ_BATCH) -> list[Change]:
    """The numbered entries after ``after``, in order (at most ``limit``), after numbering what is pending.

    Raises :class:`FeedGap` if the entry right after ``after`` was pruned while newer ones exist.
    """
    sequence_pending(session)
    rows = session.execute(
        select(IndexChange.seq, IndexChange.kind, IndexChange.ref_id)
        .where(IndexChange.seq > after)
        .order_by(IndexChange.seq)
        .limit(limit)
    ).all()
    changes = [Change(int(s or 0), str(k), int(r)) for s, k, r in rows]
    if changes and changes[0].seq != after + 1:
        raise FeedGap(f"index change feed entries {after + 1}..{changes[0].seq - 1} were pruned")
    return changes


def prune(session: Session, *, keep_seconds: float = 86_400.0, live_seconds: float = 60.0) -> int:
    """Delete feed entries every live follower has applied and that are older than ``keep_seconds``.

    The newest entry is always kept, so that ``seq`` continues densely after it. A process that was down while
    entries it had not applied were pruned reconciles its index with the tables (:class:`FeedGap`).
    """
    now = utcnow()
    live = session.execute(
        select(func.min(IndexFollower.applied_seq)).where(
            IndexFollower.heartbeat_at >= now - timedelta(seconds=live_seconds)
        )
    ).scalar()
    newest: int | None = session.execute(select(func.max(IndexChange.seq))).scalar()
    if newest is None:
        return 0
    upto = newest - 1 if live is None else min(newest - 1, int(live))
    removed = session.execute(
        delete(IndexChange).where(
            IndexChange.seq <= upto, IndexChange.at < now - timedelta(seconds=keep_seconds)
        )
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    return int(removed or 0)


# --------------------------------------------------------------------------------------------- followers


def register_follower(session: Session, role: str, applied: int) -> str:
    """Record a new long-running follower; returns its id."""
    follower_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    now = utcnow()
    session.add(IndexFollower(id=follower_id, host=socket.gethostname()[:255], pid=os.getpid(), role=role[:32],
                              started_at=now, heartbeat_at=now, applied_seq=applied))  # fmt: skip
    session.commit()
    return follower_id


def beat(session: Session, follower_id: str, applied: int) -> None:
    """Refresh a follower's heartbeat and its applied ``seq`` (re-registering it if its row was removed)."""
    now = utcnow()
    changed = session.execute(
        update(IndexFollower).where(IndexFollower.id == follower_id).values(heartbeat_at=now, applied_seq=applied)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        session.add(IndexFollower(id=follower_id, host=socket.gethostname()[:255], pid=os.getpid(), role="follower",
                                  started_at=now, heartbeat_at=now, applied_seq=applied))  # fmt: skip
    session.commit()


def unregister_follower(session: Session, follower_id: str) -> None:
    """Remove a follower that is shutting down (nobody waits for it any more)."""
    session.execute(delete(IndexFollower).where(IndexFollower.id == follower_id))
    session.commit()


@dataclass(frozen=True)
class Lagging:
    """A live follower that has not applied a change yet."""

    follower_id: str
    host: str
    pid: int
    applied_seq: int


def lagging_followers(session: Session, seq: int, live_seconds: float) -> list[Lagging]:
    """Live followers (heartbeat within ``live_seconds``) that have not applied ``seq`` yet, furthest behind first."""
    since = utcnow() - timedelta(seconds=live_seconds)
    rows = session.execute(
        select(IndexFollower.id, IndexFollower.host, IndexFollower.pid, IndexFollower.applied_seq).where(
            IndexFollower.heartbeat_at >= since, IndexFollower.applied_seq < seq
        )
        # The furthest behind first: the refusal names the first few.
        .order_by(IndexFollower.applied_seq, IndexFollower.id)
    ).all()
    session.rollback()
    return [Lagging(str(i), str(h), int(p), int(a)) for i, h, p, a in rows]


class FollowersLagging(Unavailable):
    """Some live process did not apply a change in time (e.g. a destruction's removal from its index)."""

    def __init__(self, message: str, lagging: list[Lagging]) -> None:
        super().__init__(message)
        self.lagging = lagging


def wait_for_followers(rt: GalleryRuntime, seq: int, *, timeout: float | None = None) -> None:
    """Block until every live follower has applied feed entry ``seq``.

    Raises :class:`FollowersLagging`, naming the processes, after ``timeout`` seconds (default
    ``Settings.index_follower_wait_seconds``). Followers whose heartbeat is older than
    ``Settings.index_follower_live_seconds`` are dead: nothing waits for them (a restarted process rebuilds its
    index from the tables).
    """
    settings = rt.settings
    wait = settings.index_follower_wait_seconds if timeout is None else timeout
    deadline = time.monotonic() + wait
    delay = 0.02
    while True:
        with rt.session_factory() as session:
            lagging = lagging_followers(session, seq, settings.index_follower_live_seconds)
        if not lagging:
            return
        if time.monotonic() >= deadline:
            names = ", ".join(f"{lag.host} pid {lag.pid} (at {lag.applied_seq})" for lag in lagging[:5])
            raise FollowersLagging(
                f"{len(lagging)} running process(es) did not apply index change {seq} within {wait:g} s: {names}",
                lagging,
            )
        time.sleep(delay)
        delay = min(0.2, delay * 2)


# --------------------------------------------------------------------------------------------- waking up


@contextlib.contextmanager
def _listener(rt: GalleryRuntime) -> Iterator[Any]:
    """A raw psycopg connection LISTENing on the feed channel (PostgreSQL), or None on SQLite."""
    if not is_postgres(rt.db_engine):
        yield None
        return
    import psycopg

    # The same URL as the engine's (host or socket, TLS and other query options included), for libpq.
    conninfo = rt.db_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    try:
        conn.execute(f"LISTEN {CHANNEL}")
        yield conn
    finally:
        conn.close()


class FeedFollower:
    """A background thread that keeps ``rt``'s index in step with the feed and reports progress.

    It applies changes as soon as they are committed (LISTEN/NOTIFY on PostgreSQL; polling every
    ``Settings.index_poll_seconds`` on SQLite, and as a safety net on PostgreSQL), beats every
    ``Settings.index_heartbeat_seconds`` and prunes old feed entries now and then. Start one per long-running
    process (server, job worker); :meth:`stop` unregisters it.
    """

    def __init__(self, rt: GalleryRuntime, role: str) -> None:
        self.rt = rt
        self.role = role
        self.follower_id: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"faceleads-feed-{role}", daemon=True)
        self._reported = -1
        self.errors = 0

    def start(self) -> FeedFollower:
        """Build the index (if needed), register, and start following."""
        self.rt.sync_index()
        with self.rt.session_factory() as session:
            self.follower_id = register_follower(session, self.role, self.rt.feed_cursor)
        self.rt.feed_listeners.append(self._wake.set)  # this process's own writes wake it at once
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop following and unregister."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        with contextlib.suppress(ValueError):
            self.rt.feed_listeners.remove(self._wake.set)
        if self.follower_id is not None:
            with contextlib.suppress(Exception), self.rt.session_factory() as session:
                unregister_follower(session, self.follower_id)

    def _step(self, last_beat: float) -> float:
        self.rt.sync_index()
        now = time.monotonic()
        if now - last_beat >= self.rt.settings.index_heartbeat_seconds or self.rt.feed_cursor != self._reported:
            assert self.follower_id is not None
            with self.rt.session_factory() as session:
                beat(session, self.follower_id, self.rt.feed_cursor)
            self._reported = self.rt.feed_cursor
            return now
        return last_beat

    def _run(self) -> None:
        settings = self.rt.settings
        last_beat = 0.0
        last_prune = time.monotonic()
        while not self._stop.is_set():
            try:
                with _listener(self.rt) as listener:
                    while not self._stop.is_set():
                        last_beat = self._step(last_beat)
                        if time.monotonic() - last_prune > 600:
                            with self.rt.session_factory() as session:
                                prune(session, live_seconds=settings.index_follower_live_seconds)
                            last_prune = time.monotonic()
                        if listener is None:
                            self._wake.wait(settings.index_poll_seconds)
                            self._wake.clear()
                        else:
                            # Wake on the first notification (or after the poll interval), then drain the rest.
                            for _ in listener.notifies(timeout=settings.index_poll_seconds, stop_after=1):
                                pass
            except Exception:  # the database went away, a failover...: keep trying, never die silently
                self.errors += 1
                log.exception("index feed follower %s failed; retrying", self.follower_id)
                self._stop.wait(min(5.0, settings.index_poll_seconds * 4))


def follower_rows(session: Session) -> list[dict[str, Any]]:
    """Registered followers (for status pages and tests)."""
    rows = session.scalars(select(IndexFollower).order_by(IndexFollower.started_at, IndexFollower.id)).all()
    out = [
        {"id": r.id, "host": r.host, "pid": r.pid, "role": r.role, "applied_seq": r.applied_seq,
         "heartbeat_at": _iso(r.heartbeat_at)}
        for r in rows
    ]  # fmt: skip
    session.rollback()
    return out


def _iso(moment: datetime) -> str:
    return moment.isoformat()


__all__ = [
    "CHANNEL",
    "Change",
    "FeedFollower",
    "FeedGap",
    "FollowersLagging",
    "beat",
    "follower_rows",
    "latest_seq",
    "prune",
    "read_changes",
    "register_follower",
    "sequence_pending",
    "unregister_follower",
    "wait_for_followers",
]
