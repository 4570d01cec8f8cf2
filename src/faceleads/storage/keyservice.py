"""The server key service: per-subject data keys in a database of their own on the database server of record.

In a multi-host deployment every application server must see the same keys, and a destruction on one host must
make the key unusable on all of them at once: a keystore file on one host cannot do that. :class:`SqlKeyStore`
keeps the wrapped keys in a separate database (``FACELEADS_KEYSTORE_URL``), reached with credentials of its own:
the main database's role cannot read it, so a copy or a backup of the main database (photos and templates are
ciphertext there) holds no key, and restoring an old main-database backup after a destruction brings nothing back.

Keys are wrapped with the master key (AES-256-GCM, associated data = key id) exactly as in the file keystore; the
master key stays with the application (``FACELEADS_MASTER_KEY`` / key file) and never reaches the database.

Destruction overwrites the wrapped key with NULL and records the time, in one transaction; on PostgreSQL the table
is then vacuumed so the dead row version holding the old wrapped key is reclaimed. Server backups and WAL archives
of the keystore database are key escrow: they still hold destroyed keys (wrapped by the master key of their time),
as the file keystore's backups do; docs/encryption.md says how to handle them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from faceleads.config import Settings
from faceleads.db import make_engine
from faceleads.errors import ConfigurationError, KeyDestroyedError
from faceleads.storage.crypto import KEY_BYTES, decrypt, encrypt, generate_key, load_master_key
from faceleads.storage.keystore import _CHECK_AAD, _CHECK_PLAINTEXT, KeyLookup, _wrap_aad, unwrap_row, validate_key_id

# Its own metadata: this schema lives in the keystore database, never in the main one (nor its migrations).
metadata = MetaData()
data_keys = Table(
    "data_keys",
    metadata,
    Column("key_id", String(200), primary_key=True),
    Column("wrapped", LargeBinary, nullable=True),  # NULL once destroyed
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True), nullable=True),
)
meta = Table(
    "keystore_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

def _now() -> datetime:
    return datetime.now(UTC)


class SqlKeyStore:
    """Data keys in a separate SQL database (PostgreSQL in production; any SQLAlchemy URL works)."""

    def __init__(self, url: str, master_key: bytes, *, engine: Engine | None = None) -> None:
        if len(master_key) != KEY_BYTES:
            raise ConfigurationError(f"master key must be {KEY_BYTES} bytes, got {len(master_key)}")
        self._master = bytes(master_key)
        self.engine = engine or make_engine(url)
        self.where = self.engine.url.render_as_string(hide_password=True)
        try:
            metadata.create_all(self.engine)
            self._check_master()
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise ConfigurationError(f"cannot open the keystore database {self.where}: {cause}") from None

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlKeyStore:
        """The keystore at ``FACELEADS_KEYSTORE_URL``, opened with the configured master key."""
        if not settings.keystore_url:
            raise ConfigurationError("FACELEADS_KEYSTORE_URL is not set")
        return cls(settings.keystore_url, load_master_key(settings))

    def _insert(self):  # type: ignore[no-untyped-def]
        return (pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert)(data_keys)

    def _check_master(self) -> None:
        sealed = encrypt(self._master, _CHECK_PLAINTEXT, _CHECK_AAD)
        insert = (pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert)(meta)
        with self.engine.begin() as conn:
            conn.execute(insert.values(name="check", value=sealed).on_conflict_do_nothing(index_elements=["name"]))
            stored: bytes = conn.execute(select(meta.c.value).where(meta.c.name == "check")).scalar_one()
        try:
            ok = decrypt(self._master, stored, _CHECK_AAD) == _CHECK_PLAINTEXT
        except Exception:
            ok = False
        if not ok:
            raise ConfigurationError(
                f"the master key does not open the keystore {self.where} "
                "(wrong FACELEADS_MASTER_KEY / key file, or the keystore was rewrapped with another key)"
            )

    def close(self) -> None:
        """Close the connection pool."""
        self.engine.dispose()

    # -- the key-service protocol --------------------------------------------------------------------------

    def create(self, key_id: str) -> None:
        """Create a data key unless one exists (idempotent, safe under concurrent callers on any host)."""
        validate_key_id(key_id)
        wrapped = encrypt(self._master, generate_key(), _wrap_aad(key_id))
        with self.engine.begin() as conn:
            conn.execute(
                self._insert()
                .values(key_id=key_id, wrapped=wrapped, created_at=_now())
                .on_conflict_do_nothing(index_elements=["key_id"])
            )
            destroyed_at: datetime | None = conn.execute(
                select(data_keys.c.destroyed_at).where(data_keys.c.key_id == key_id)
            ).scalar_one()
        if destroyed_at is not None:
            raise KeyDestroyedError(f"data key {key_id!r} was destroyed on {destroyed_at}; it cannot be re-created")

    def get(self, key_id: str) -> bytes:
        """The unwrapped key (:class:`KeyDestroyedError` if destroyed, :class:`NotFound` if never created)."""
        validate_key_id(key_id)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(data_keys.c.wrapped, data_keys.c.destroyed_at).where(data_keys.c.key_id == key_id)
            ).first()
        return unwrap_row(self._master, key_id, (row[0], row[1]) if row is not None else None, self.where)

    def lookup(self, key_ids: Iterable[str]) -> KeyLookup:
        """Unwrap many keys at once (one query per 500 ids); destroyed and missing ids are listed apart."""
        ids = sorted({validate_key_id(k) for k in key_ids})
        result = KeyLookup()
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = conn.execute(
                    select(data_keys.c.key_id, data_keys.c.wrapped, data_keys.c.destroyed_at).where(
                        data_keys.c.key_id.in_(chunk)
                    )
                ).all()
                found: dict[str, tuple[bytes | None, datetime | None]] = {r[0]: (r[1], r[2]) for r in rows}
                for key_id in chunk:
                    if key_id not in found:
                        result.missing.add(key_id)
                        continue
                    wrapped, destroyed_at = found[key_id]
                    if destroyed_at is not None or wrapped is None:
                        result.destroyed.add(key_id)
                    else:
                        result.live[key_id] = decrypt(self._master, wrapped, _wrap_aad(key_id))
        return result

    def exists(self, key_id: str) -> bool:
        """Whether a live key exists for ``key_id``."""
        validate_key_id(key_id)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(data_keys.c.key_id).where(data_keys.c.key_id == key_id, data_keys.c.wrapped.is_not(None))
            ).first()
        return row is not None

    def destroy(self, key_id: str) -> None:
        """Destroy the key for good (idempotent; a never-created id gets a tombstone so it is never created)."""
        validate_key_id(key_id)
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(
                self._insert()
                .values(key_id=key_id, wrapped=None, created_at=now, destroyed_at=now)
                .on_conflict_do_nothing(index_elements=["key_id"])
            )
            conn.execute(
                update(data_keys)
                .where(data_keys.c.key_id == key_id, data_keys.c.wrapped.is_not(None))
                .values(wrapped=None, destroyed_at=now)
            )
            conn.execute(
                update(data_keys)
                .where(data_keys.c.key_id == key_id, data_keys.c.destroyed_at.is_(None))
                .values(destroyed_at=now)
            )
        if self.engine.dialect.name == "postgresql":
            # Reclaim the dead row version that still holds the wrapped key (VACUUM cannot run in a transaction).
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM data_keys"))

    def is_destroyed(self, key_id: str) -> bool:
        """Whether the key was destroyed."""
        validate_key_id(key_id)
        with self.engine.connect() as conn:
            destroyed_at = conn.execute(
                select(data_keys.c.destroyed_at).where(data_keys.c.key_id == key_id)
            ).scalar()
        return destroyed_at is not None

    def destroyed_ids(self) -> list[str]:
        """Every destroyed key id, sorted."""
        with self.engine.connect() as conn:
            return sorted(
                conn.execute(select(data_keys.c.key_id).where(data_keys.c.destroyed_at.is_not(None))).scalars()
            )

    def key_ids(self) -> list[str]:
        """Every live key id, sorted."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(data_keys.c.key_id).where(data_keys.c.wrapped.is_not(None))).scalars())

    def rewrap(self, new_master_key: bytes) -> int:
        """Rotate the master key: rewrap every live key under ``new_master_key`` in one transaction."""
        if len(new_master_key) != KEY_BYTES:
            raise ConfigurationError(f"new master key must be {KEY_BYTES} bytes, got {len(new_master_key)}")
        new_master = bytes(new_master_key)
        count = 0
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(data_keys.c.key_id, data_keys.c.wrapped).where(data_keys.c.wrapped.is_not(None))
            ).all()
            for key_id, wrapped in rows:
                data_key = decrypt(self._master, wrapped, _wrap_aad(str(key_id)))  # type: ignore[arg-type]
                conn.execute(
                    update(data_keys)
                    .where(data_keys.c.key_id == key_id)
                    .values(wrapped=encrypt(new_master, data_key, _wrap_aad(str(key_id))))
                )
                count += 1
            conn.execute(
                update(meta).where(meta.c.name == "check").values(value=encrypt(new_master, _CHECK_PLAINTEXT,
                                                                                  _CHECK_AAD))
            )  # fmt: skip
        self._master = new_master
        return count


__all__ = ["SqlKeyStore"]
