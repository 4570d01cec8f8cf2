"""Database plumbing shared by every domain: declarative base, engine and session factory.

The database is the system of record. SQLite (a file under the data directory) is the embedded default;
PostgreSQL is the multi-user server. Schema changes go through Alembic migrations (``faceleads.migrations``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, String, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware current time in UTC (the only clock the system stores)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base for every table of every domain."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Agency(Base):
    """A police agency: the unit of data ownership. Every record belongs to exactly one agency."""

    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` URLs use the psycopg 3 driver (the one installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_postgres(bind: Engine | Connection | Session) -> bool:
    """Whether ``bind`` talks to PostgreSQL (the multi-host system of record) rather than embedded SQLite."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "postgresql"


def _refuse_nul_text(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
    """Refuse text holding a NUL character, on every backend alike: PostgreSQL cannot store it (and would fail
    with a server error), SQLite would store it and truncate it in some tools. Raised as a ValidationError."""
    rows = parameters if many and isinstance(parameters, list | tuple) else [parameters]
    for row in rows:
        values = row.values() if isinstance(row, dict) else row if isinstance(row, list | tuple) else ()
        for value in values:
            if isinstance(value, str) and "\x00" in value:
                from faceleads.errors import ValidationError

                raise ValidationError("text input contains a NUL character (\\x00), which is not accepted")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; for SQLite, turn on WAL, foreign keys and a busy timeout; for PostgreSQL, UTC sessions
    and a liveness check of pooled connections (a server restart or failover must not break the next request)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
    elif url.startswith("postgresql"):
        kwargs.setdefault("connect_args", {"options": "-c timezone=UTC", "connect_timeout": 10})
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "before_cursor_execute", _refuse_nul_text)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(b"faceleads-lock|" + name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def system_lock(engine: Engine, name: str, *, lock_dir: Path, shared: bool = False,
                blocking: bool = True) -> Iterator[bool]:  # fmt: skip
    """A named lock that every process of the deployment agrees on; yields whether it was obtained.

    On PostgreSQL it is a session-level advisory lock held on a connection of its own, so processes on different
    hosts exclude each other; on SQLite (one host by construction) it is ``flock`` on ``<lock_dir>/<name>.lock``.
    Either way it is shared or exclusive, blocking or not, and released when its holder dies (even by ``kill -9``:
    the server ends the session, the kernel closes the file).
    """
    if engine.dialect.name == "postgresql":
        key = lock_key(name)
        suffix = "_shared" if shared else ""
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if blocking:
                conn.execute(text(f"SELECT pg_advisory_lock{suffix}(:key)"), {"key": key})
                got = True
            else:
                got = bool(conn.execute(text(f"SELECT pg_try_advisory_lock{suffix}(:key)"), {"key": key}).scalar())
            try:
                yield got
            finally:
                if got:
                    conn.execute(text(f"SELECT pg_advisory_unlock{suffix}(:key)"), {"key": key})
        finally:
            conn.close()
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        flags = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        if not blocking:
            flags |= fcntl.LOCK_NB
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def create_schema(engine: Engine) -> None:
    """Bring the schema up to date by applying the Alembic migrations (the only way tables are created)."""
    from faceleads import migrations

    migrations.upgrade(engine)
