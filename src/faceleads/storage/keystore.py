"""Per-subject data keys, wrapped by the master key, in their own SQLite file (see docs/encryption.md).

The keystore is deliberately *not* in the main database: backups of the main database and the blob store then
hold only ciphertext, so restoring an old backup after a destruction cannot make the destroyed subject
readable again — its data key no longer exists anywhere the system will use it.

Destruction is recorded twice: as a tombstone row (wrapped key overwritten with NULL under ``PRAGMA
secure_delete``) and as a line in the append-only ``destroyed.log`` next to the database. The log is written
first and re-applied every time the keystore is opened or restored, so a crash mid-destruction, a restored
keystore backup or even a lost keystore rebuilt from an old escrow copy never brings a destroyed key back.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from faceleads.config import Settings
from faceleads.errors import ConfigurationError, KeyDestroyedError, NotFound, ValidationError
from faceleads.storage.crypto import KEY_BYTES, decrypt, encrypt, fsync_dir, generate_key, load_master_key

__all__ = ["KeyDestroyed", "KeyDestroyedError", "KeyStore", "default_keystore_path", "validate_key_id"]

# Re-exported under the short name used in the design notes.
KeyDestroyed = KeyDestroyedError

LEDGER_NAME = "destroyed.log"
_KEY_ID_RE = re.compile(r"[A-Za-z0-9._:@/-]{1,200}")
# Known plaintext sealed under the master key: opening a keystore with the wrong master key fails at once with
# a clear message instead of every later ``get`` failing with an integrity error.
_CHECK_PLAINTEXT = b"faceleads keystore master key check v1"
_CHECK_AAD = b"faceleads-keystore-check"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS data_keys (
    key_id       TEXT PRIMARY KEY,
    wrapped      BLOB,              -- NULL once destroyed
    created_at   TEXT NOT NULL,
    destroyed_at TEXT
);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""


def validate_key_id(key_id: str) -> str:
    """Check a key id: 1–200 characters from ``A-Z a-z 0-9 . _ : @ / -``.

    ``|`` is excluded because key ids are joined with ``|`` into associated data; newlines because the
    destruction ledger is line-based.
    """
    if not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
        raise ValidationError(
            f"invalid key id {key_id!r}: use 1-200 characters from letters, digits and . _ : @ / -"
        )
    return key_id


def default_keystore_path(settings: Settings) -> Path:
    """``<data_dir>/keys/keystore.db``: outside the main database on purpose."""
    return settings.data_dir / "keys" / "keystore.db"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _wrap_aad(key_id: str) -> bytes:
    return b"faceleads-dk|" + key_id.encode("utf-8")


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE around every write.
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    # Freed content (a destroyed wrapped key) is overwritten with zeros in the database file.
    conn.execute("PRAGMA secure_delete=ON")
    # Rollback journal rather than WAL: a WAL file keeps old page images (with the wrapped key) until a
    # checkpoint.
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


class KeyStore:
    """Per-subject 256-bit data keys, each wrapped (AES-256-GCM, associated data = key id) by the master key.

    Safe to use from several threads (one connection behind a lock) and several processes (SQLite locking).
    Unwrapped keys are never cached, so a key destroyed by one process is unusable in every other at once.
    """

    def __init__(self, path: Path, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise ConfigurationError(f"master key must be {KEY_BYTES} bytes, got {len(master_key)}")
        self.path = Path(path)
        self.ledger_path = self.path.parent / LEDGER_NAME
        self._master = bytes(master_key)
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Create the file with owner-only permissions before SQLite does (its journal inherits the mode).
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._conn = _connect(self.path)
        self._init_schema()
        self._reapply_ledger()

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyStore:
        """The keystore at :func:`default_keystore_path`, opened with :func:`load_master_key`."""
        return cls(default_keystore_path(settings), load_master_key(settings))

    # -- plumbing ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """An immediate (write-locked) transaction: committed on success, rolled back on any error."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def _init_schema(self) -> None:
        with self._lock:
            self._conn.executescript(_SCHEMA)
        with self._write() as cur:
            row = cur.execute("SELECT value FROM meta WHERE name = 'check'").fetchone()
            if row is None:
                cur.execute(
                    "INSERT INTO meta (name, value) VALUES ('check', ?)",
                    (encrypt(self._master, _CHECK_PLAINTEXT, _CHECK_AAD),),
                )
                return
        self._verify_master(self._conn, self._master, str(self.path))

    @staticmethod
    def _verify_master(conn: sqlite3.Connection, master: bytes, where: str) -> None:
        row = conn.execute("SELECT value FROM meta WHERE name = 'check'").fetchone()
        if row is None:
            raise ConfigurationError(f"{where} is not a faceleads keystore (no master key check)")
        try:
            ok = decrypt(master, row[0], _CHECK_AAD) == _CHECK_PLAINTEXT
        except Exception:
            ok = False
        if not ok:
            raise ConfigurationError(
                f"the master key does not open the keystore {where} "
                f"(wrong FACELEADS_MASTER_KEY / key file, or the keystore was rewrapped with another key)"
            )

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the destruction ledger file -----------------------------------------------------------------------

    def _read_ledger(self) -> dict[str, str]:
        """key id → destruction time, from ``destroyed.log`` (one ``<iso time>\\t<key id>`` line each)."""
        try:
            text = self.ledger_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        ledger: dict[str, str] = {}
        for line in text.splitlines():
            when, sep, key_id = line.partition("\t")
            # A torn last line (crash during append) has no tab or an invalid id: ignore it; the destruction
            # it belonged to had not been acknowledged, and its re-run appends a complete line.
            if sep and _KEY_ID_RE.fullmatch(key_id):
                ledger.setdefault(key_id, when)
        return ledger

    def _append_ledger(self, entries: list[tuple[str, str]]) -> None:
        if not entries:
            return
        new_file = not self.ledger_path.exists()
        fd = os.open(self.ledger_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # Start on a fresh line in case a previous append was torn by a crash.
            data = "".join(f"\n{when}\t{key_id}\n" for key_id, when in entries)
            os.write(fd, data.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if new_file:
            fsync_dir(self.ledger_path.parent)

    def _reapply_ledger(self) -> int:
        """Destroy, in the database, every key the ledger file lists (completes interrupted destructions)."""
        ledger = self._read_ledger()
        if not ledger:
            return 0
        with self._write() as cur:
            return self._tombstone(cur, ledger)

    @staticmethod
    def _tombstone(cur: sqlite3.Cursor, ledger: dict[str, str]) -> int:
        """Overwrite the wrapped keys of ``ledger`` ids (tombstones for unknown ids); returns the changes."""
        changed = 0
        for key_id, when in ledger.items():
            cur.execute(
                "INSERT INTO data_keys (key_id, wrapped, created_at, destroyed_at) VALUES (?, NULL, ?, ?) "
                "ON CONFLICT (key_id) DO UPDATE SET wrapped = NULL, "
                "destroyed_at = COALESCE(data_keys.destroyed_at, excluded.destroyed_at) "
                "WHERE data_keys.wrapped IS NOT NULL OR data_keys.destroyed_at IS NULL",
                (key_id, when, when),
            )
            changed += cur.rowcount
        return changed

    # -- public API ----------------------------------------------------------------------------------------

    def create(self, key_id: str) -> None:
        """Create a data key for ``key_id`` unless one exists (idempotent, safe under concurrent callers).

        Raises :class:`KeyDestroyedError` if ``key_id`` was destroyed: ids are never reused, so a destroyed
        subject cannot silently come back under its old id.
        """
        validate_key_id(key_id)
        wrapped = encrypt(self._master, generate_key(), _wrap_aad(key_id))
        with self._write() as cur:
            row = cur.execute("SELECT destroyed_at FROM data_keys WHERE key_id = ?", (key_id,)).fetchone()
            if row is None:
                cur.execute(
                    "INSERT INTO data_keys (key_id, wrapped, created_at) VALUES (?, ?, ?)",
                    (key_id, wrapped, _now()),
                )
                return
        if row[0] is not None:
            raise KeyDestroyedError(f"data key {key_id!r} was destroyed on {row[0]}; it cannot be re-created")

    def get(self, key_id: str) -> bytes:
        """The unwrapped 32-byte data key of ``key_id``.

        Raises :class:`KeyDestroyedError` if it was destroyed, :class:`NotFound` if it was never created.
        """
        validate_key_id(key_id)
        with self._lock:
            row = self._conn.execute(
                "SELECT wrapped, destroyed_at FROM data_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no data key {key_id!r} in keystore {self.path}")
        wrapped, destroyed_at = row
        if destroyed_at is not None or wrapped is None:
            raise KeyDestroyedError(f"data key {key_id!r} was destroyed on {destroyed_at}; its data is gone")
        return decrypt(self._master, wrapped, _wrap_aad(key_id))

    def exists(self, key_id: str) -> bool:
        """Whether a live (created, not destroyed) key exists for ``key_id``."""
        validate_key_id(key_id)
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM data_keys WHERE key_id = ? AND wrapped IS NOT NULL", (key_id,)
            ).fetchone()
        return row is not None

    def destroy(self, key_id: str) -> None:
        """Destroy ``key_id``'s data key for good (idempotent; a never-created id gets a tombstone too).

        The ledger line is made durable first, then the wrapped key is overwritten with NULL and the
        destruction time recorded in one transaction. Killed in between, the next open of the keystore
        finishes the job.
        """
        validate_key_id(key_id)
        ledger = self._read_ledger()
        when = ledger.get(key_id)
        if when is None:
            when = _now()
            self._append_ledger([(key_id, when)])
        with self._write() as cur:
            self._tombstone(cur, {key_id: when})

    def is_destroyed(self, key_id: str) -> bool:
        """Whether ``key_id`` is in the destruction ledger (database tombstone or ``destroyed.log``)."""
        validate_key_id(key_id)
        with self._lock:
            row = self._conn.execute(
                "SELECT destroyed_at FROM data_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        if row is not None and row[0] is not None:
            return True
        return key_id in self._read_ledger()

    def destroyed_ids(self) -> list[str]:
        """The destruction ledger: every destroyed key id, sorted."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key_id FROM data_keys WHERE destroyed_at IS NOT NULL"
            ).fetchall()
        return sorted({r[0] for r in rows} | set(self._read_ledger()))

    def key_ids(self) -> list[str]:
        """Every live key id, sorted."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key_id FROM data_keys WHERE wrapped IS NOT NULL ORDER BY key_id"
            ).fetchall()
        return [r[0] for r in rows]

    def backup(self, dest: Path) -> None:
        """Write a consistent copy of the keystore to ``dest`` (SQLite online backup; safe while in use).

        The copy holds the wrapped keys of every live subject — store it apart from the main backups (key
        escrow).
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.close(os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        target = sqlite3.connect(tmp)
        try:
            with self._lock:
                self._conn.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
        fsync_dir(dest.parent)

    def restore(self, src: Path, backup_master_key: bytes | None = None) -> int:
        """Replace the keystore's contents with the backup ``src``, then re-apply the destruction ledger.

        Every key destroyed in this keystore or listed in ``destroyed.log`` stays destroyed, even when the
        backup predates its destruction. ``backup_master_key``: the master key the backup was wrapped with, if
        the master key was rotated since; the restored keys are then rewrapped with the current master key.
        Returns the number of ledger entries that had to be applied to the restored contents (keys the backup
        still held, plus tombstones the backup lacked).
        """
        src = Path(src)
        if not src.is_file():
            raise NotFound(f"keystore backup {src} does not exist")
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        try:
            try:
                check = source.execute("PRAGMA integrity_check").fetchone()
            except sqlite3.DatabaseError as exc:
                raise ValidationError(f"keystore backup {src} is not an SQLite database: {exc}") from None
            if check is None or check[0] != "ok":
                raise ValidationError(f"keystore backup {src} is corrupt: {check}")
            old_master = self._master if backup_master_key is None else bytes(backup_master_key)
            try:
                self._verify_master(source, old_master, f"backup {src}")
            except sqlite3.DatabaseError:
                raise ValidationError(f"{src} is not a faceleads keystore backup") from None
            # Make the whole current ledger durable in the file first: if we are killed after the copy below,
            # the next open re-applies it.
            ledger = self._read_ledger()
            with self._lock:
                rows = self._conn.execute(
                    "SELECT key_id, destroyed_at FROM data_keys WHERE destroyed_at IS NOT NULL"
                ).fetchall()
            missing = [(k, w) for k, w in rows if k not in ledger]
            self._append_ledger(missing)
            ledger.update(dict(missing))
            with self._lock:
                source.backup(self._conn)
        finally:
            source.close()
        with self._write() as cur:
            reapplied = self._tombstone(cur, ledger)
        if backup_master_key is not None and bytes(backup_master_key) != self._master:
            current = self._master
            self._master = bytes(backup_master_key)
            self.rewrap(current)
        return reapplied

    def rewrap(self, new_master_key: bytes) -> int:
        """Rotate the master key: rewrap every live data key under ``new_master_key`` in one transaction.

        Data keys (and hence every blob) are unchanged. Save the new master key before calling this, and
        switch the configuration to it afterwards. Returns the number of keys rewrapped.
        """
        if len(new_master_key) != KEY_BYTES:
            raise ConfigurationError(f"new master key must be {KEY_BYTES} bytes, got {len(new_master_key)}")
        new_master = bytes(new_master_key)
        count = 0
        with self._write() as cur:
            rows = cur.execute("SELECT key_id, wrapped FROM data_keys WHERE wrapped IS NOT NULL").fetchall()
            for key_id, wrapped in rows:
                data_key = decrypt(self._master, wrapped, _wrap_aad(key_id))
                cur.execute(
                    "UPDATE data_keys SET wrapped = ? WHERE key_id = ?",
                    (encrypt(new_master, data_key, _wrap_aad(key_id)), key_id),
                )
                count += 1
            cur.execute(
                "UPDATE meta SET value = ? WHERE name = 'check'",
                (encrypt(new_master, _CHECK_PLAINTEXT, _CHECK_AAD),),
            )
        self._master = new_master
        return count

    def scrub_backup(self, path: Path) -> int:
        """Apply this keystore's destruction ledger to a keystore backup file in place (e.g. escrow copies).

        Returns the number of keys destroyed in that file. Old backups that are not scrubbed still hold the
        destroyed keys, wrapped by the master key of their time — see docs/encryption.md.
        """
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"keystore backup {path} does not exist")
        ledger = self._read_ledger()
        with self._lock:
            rows = self._conn.execute(
                "SELECT key_id, destroyed_at FROM data_keys WHERE destroyed_at IS NOT NULL"
            ).fetchall()
        for key_id, when in rows:
            ledger.setdefault(key_id, when)
        conn = _connect(path)
        try:
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                changed = self._tombstone(cur, ledger)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
        finally:
            conn.close()
        return changed
