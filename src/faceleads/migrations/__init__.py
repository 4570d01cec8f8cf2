"""Alembic migrations for the faceleads schema (shipped inside the package so ``pip install`` carries them).

Every process brings the schema up to date when it starts (:func:`upgrade`), so several servers starting at once
must not migrate at the same time: on PostgreSQL the upgrade runs in one transaction holding a transaction-level
advisory lock (one migrator; the others wait, then find the schema at head and do nothing); on SQLite a file lock
beside the database file does the same for the processes of the one host that can open it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parent
# pg_advisory_xact_lock key of the migrator ("flmigrat" as a big-endian 64-bit integer).
MIGRATION_LOCK_KEY = int.from_bytes(b"flmigrat", "big") - 2**63


def alembic_config(url: str) -> Config:
    """An Alembic configuration pointing at the packaged migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextlib.contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    path = Path(f"{database}.migrate-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on ``engine``'s database, one migrator at a time."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            # Held until this transaction (which holds every migration: PostgreSQL DDL is transactional) ends.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        return
    with _sqlite_migration_lock(engine), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
