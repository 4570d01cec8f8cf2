"""Shared helpers for the identity, policy and audit tests: a real SQLite database, users, an injectable clock."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

import faceleads.models  # noqa: F401  (every table registered on Base.metadata)
from faceleads.config import Settings
from faceleads.core.actor import Role
from faceleads.core.uow import transaction
from faceleads.db import Agency, create_schema, make_engine, make_session_factory
from faceleads.security import passwords
from faceleads.security.models import Certification, RoleGrant, User

PASSWORD = "Tr0ub4dor&3-horse"
MASTER_KEY = bytes(range(32))
T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=UTC)


@functools.cache
def password_hash() -> str:
    """One argon2id hash of PASSWORD, reused for every test user (hashing costs ~0.3 s)."""
    return passwords.hash_password(PASSWORD)


def make_factory(tmp_path: Path) -> sessionmaker[Session]:
    """A fresh SQLite database (file, WAL, triggers) with the whole schema."""
    engine = make_engine(f"sqlite:///{tmp_path / 'faceleads.db'}")
    create_schema(engine)
    return make_session_factory(engine)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path, **overrides)  # type: ignore[arg-type]


def add_agency(factory: sessionmaker[Session], code: str) -> int:
    with transaction(factory) as session:
        agency = Agency(code=code, name=f"{code} police")
        session.add(agency)
        session.flush()
        return agency.id


def add_user(
    factory: sessionmaker[Session],
    agency_id: int,
    username: str,
    roles: frozenset[Role] | set[Role] = frozenset(),
    *,
    certified_until: datetime | None = None,
) -> int:
    """Insert a user directly (bypassing the admin service, which has its own tests)."""
    with transaction(factory) as session:
        user = User(agency_id=agency_id, username=username, password_hash=password_hash())
        session.add(user)
        session.flush()
        for role in roles:
            session.add(RoleGrant(user_id=user.id, role=role.value))
        if certified_until is not None:
            session.add(Certification(user_id=user.id, expires_at=certified_until))
        return user.id


@dataclass
class Clock:
    """A settable clock for expiry tests (no sleeping)."""

    now: datetime = field(default=T0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now = self.now + timedelta(**delta)
