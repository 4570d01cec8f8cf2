"""Which database the tests use: SQLite files (the embedded default) or a real PostgreSQL server.

Set ``FACELEADS_TEST_DATABASE_URL`` to a PostgreSQL server URL whose user may create databases (``.ci/run`` starts a
throw-away cluster with ``scripts/pgtemp.py`` and sets it) and every test that uses a database gets its own fresh
database on that server: a copy (``CREATE DATABASE ... TEMPLATE``) of one migrated template, so each test starts
from an empty, fully migrated schema without paying for the migrations again, and no test sees another's data.
Databases are dropped when the test (or the module, for module-wide fixtures) ends.

Without the variable everything stays on SQLite files inside each test's temporary data directory.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from faceleads.config import Settings
from faceleads.db import make_engine, normalise_url

TEST_DATABASE_ENV = "FACELEADS_TEST_DATABASE_URL"
SERVER_URL = os.environ.get(TEST_DATABASE_ENV) or None
ON_POSTGRES = SERVER_URL is not None and make_url(normalise_url(SERVER_URL)).get_backend_name() == "postgresql"
if SERVER_URL is not None and not ON_POSTGRES:
    raise RuntimeError(f"{TEST_DATABASE_ENV} must be a postgresql:// URL, got {SERVER_URL!r}")

_lock = threading.Lock()
_by_folder: dict[str, str] = {}  # data directory -> database URL
_created: list[str] = []  # database names, in creation order (dropped by scope, see tests/conftest.py)
_template: str | None = None
_admin: Engine | None = None


def _admin_engine() -> Engine:
    global _admin
    if _admin is None:
        assert SERVER_URL is not None
        _admin = make_engine(SERVER_URL, isolation_level="AUTOCOMMIT", pool_size=2)
    return _admin


def _url_of(name: str) -> str:
    assert SERVER_URL is not None
    return make_url(normalise_url(SERVER_URL)).set(database=name).render_as_string(hide_password=False)


def _ensure_template() -> str:
    """A database with the whole schema migrated, created once per test session (and per xdist worker)."""
    global _template
    if _template is None:
        from faceleads.db import create_schema

        name = f"fl_template_{os.getpid()}"
        with _admin_engine().connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = make_engine(_url_of(name))
        try:
            create_schema(engine)
        finally:
            engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template to have no connections
        _template = name  # dropped by dispose(), at the end of the session
    return _template


def new_database(label: str = "t", *, migrated: bool = True) -> str:
    """A fresh PostgreSQL database (migrated copy of the template unless ``migrated`` is False); returns its URL."""
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower())[:30].strip("_") or "t"
    name = f"fl_{slug}_{uuid.uuid4().hex[:8]}"
    with _lock:
        template = _ensure_template() if migrated else "template0"
        with _admin_engine().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        _created.append(name)
    return _url_of(name)


def database_url(data_dir: Path) -> str | None:
    """The database URL the tests use for ``data_dir``: None on SQLite (the default file under ``data_dir``),
    otherwise one fresh PostgreSQL database per data directory (the same one every time it is asked for)."""
    if not ON_POSTGRES:
        return None
    key = str(Path(data_dir).resolve())
    with _lock:
        url = _by_folder.get(key)
    if url is None:
        url = new_database(Path(data_dir).name)
        with _lock:
            url = _by_folder.setdefault(key, url)
    return url


def engine_url(data_dir: Path) -> str:
    """The database URL of ``data_dir`` whichever backend (the SQLite file name is the Settings default)."""
    return database_url(data_dir) or f"sqlite:///{Path(data_dir) / 'faceleads.db'}"


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    """Dev-mode settings for ``data_dir`` with the test database (as :func:`database_url`)."""
    url = database_url(data_dir)
    if url is not None:
        overrides.setdefault("database_url", url)
    return Settings(data_dir=data_dir, **overrides)


def database_env(data_dir: Path) -> dict[str, str]:
    """Environment variables that point a child process (CLI, server) at ``data_dir`` and its test database."""
    env = {"FACELEADS_DATA_DIR": str(data_dir)}
    url = database_url(data_dir)
    if url is not None:
        env["FACELEADS_DATABASE_URL"] = url
    return env


def mark() -> int:
    """How many databases were created so far (see :func:`drop_since`)."""
    with _lock:
        return len(_created)


def drop_since(position: int) -> None:
    """Drop the databases created after :func:`mark` returned ``position`` (connections are closed by force)."""
    if not ON_POSTGRES:
        return
    with _lock:
        names = _created[position:]
        del _created[position:]
        for key in [k for k, v in _by_folder.items() if make_url(v).database in names]:
            del _by_folder[key]
        if not names:
            return
        with _admin_engine().connect() as conn:
            for name in reversed(names):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def dispose() -> None:
    """Drop the template and close the administrative connection (end of the session)."""
    global _admin, _template
    drop_since(0)
    if _template is not None and _admin is not None:
        with _admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{_template}" WITH (FORCE)'))
    _template = None
    if _admin is not None:
        _admin.dispose()
        _admin = None


class RawSql:
    """Direct SQL on a test database, as someone with database access has it (no ORM, autocommit).

    ``drop_audit_triggers()`` removes the append-only triggers first, as an attacker would have to.
    """

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, isolation_level="AUTOCOMMIT")
        self.dialect = self.engine.dialect.name

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with self.engine.connect() as conn:
            conn.execute(text(sql), params or {})

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params or {}).scalar()

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params or {})]

    def drop_audit_triggers(self) -> RawSql:
        if self.dialect == "postgresql":
            self.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        else:
            self.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
            self.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        return self

    def close(self) -> None:
        self.engine.dispose()


def new_role_database(label: str) -> tuple[str, str, list[str]]:
    """A database owned by a role of its own, which nobody else may connect to (PostgreSQL only).

    Returns (URL as that role, URL of the same database as a second, unprivileged role, names to drop). Roles are
    cluster-wide, so callers drop them with :func:`drop_role_database`.
    """
    assert ON_POSTGRES
    suffix = uuid.uuid4().hex[:8]
    owner, outsider, name = f"fl_{label}_{suffix}", f"fl_app_{suffix}", f"fl_{label}_{suffix}"
    with _admin_engine().connect() as conn:
        conn.execute(text(f'CREATE ROLE "{owner}" LOGIN PASSWORD \'owner-pw\''))
        conn.execute(text(f'CREATE ROLE "{outsider}" LOGIN PASSWORD \'app-pw\''))
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{owner}"'))
        conn.execute(text(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC'))
    base = make_url(normalise_url(SERVER_URL or "")).set(database=name)
    as_owner = base.set(username=owner, password="owner-pw").render_as_string(hide_password=False)
    as_outsider = base.set(username=outsider, password="app-pw").render_as_string(hide_password=False)
    return as_owner, as_outsider, [name, owner, outsider]


def drop_role_database(names: list[str]) -> None:
    """Drop what :func:`new_role_database` created."""
    name, *roles = names
    with _admin_engine().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        for role in roles:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
