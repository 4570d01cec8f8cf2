"""Backups and restores of the main database and the blob store (see docs/backup.md).

A backup is a directory::

    <dest>/faceleads.db        consistent snapshot of the main database (SQLite online backup API)
    <dest>/store/ab/cd/<addr>  the encrypted blobs (ciphertext only)
    <dest>/manifest.json       format, time, audit chain head, and the SHA-256 and size of every file

It never contains the keystore or the master key: without them the blobs are ciphertext. Keys are backed up
separately (``keys_dest``, for escrow), and a restore re-applies the keystore's destruction ledger, so restoring a
backup older than a destruction cannot bring the destroyed subject back into readable form.

Consistency while the system runs: the database is snapshotted first (one read transaction), then the store is
copied. Blobs are immutable and content-addressed and are written *before* the record that refers to them commits,
so every blob the snapshot refers to is already in the store when the copy starts. Blobs written later are copied
too (unreferenced, harmless); a blob deleted by a destruction running meanwhile is missing from the copy, but its
key was destroyed before the deletion, and the restore's reconciliation removes the subject's records.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from faceleads import __version__
from faceleads.config import Settings
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.uow import transaction
from faceleads.datadir import PARTIAL_MARKER, cleanup_partials, register_partial
from faceleads.db import make_engine, make_session_factory, utcnow
from faceleads.errors import ConfigurationError, IntegrityError, NotFound, ValidationError
from faceleads.gallery.models import Subject, SubjectStatus
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.governance.audit_integrity import anchor_file
from faceleads.governance.destruction import delete_blobs, purge_records, subject_blob_addresses
from faceleads.governance.models import DestructionRequest, RequestStatus
from faceleads.storage.blobs import default_store_root
from faceleads.storage.crypto import fsync_dir
from faceleads.storage.keystore import LEDGER_NAME, KeyStore, default_keystore_path

FORMAT = "faceleads-backup-v1"
MANIFEST = "manifest.json"
DB_NAME = "faceleads.db"
STORE_DIR = "store"
_CHUNK = 1 << 20

ProgressCallback = Callable[[str, int, int], None]


@dataclass
class BackupReport:
    """What :func:`backup` wrote."""

    path: str
    created_at: str
    files: int
    bytes: int
    blobs: int
    referenced_missing: int  # blobs the snapshot refers to that were gone from the store (see module doc)
    manifest_sha256: str
    keys_path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


@dataclass
class RestoreReport:
    """What :func:`restore` did."""

    source: str
    backup_created_at: str
    blobs_copied: int
    keys_restored: bool
    reconciled_subjects: list[int] = field(default_factory=list)
    unreadable_subjects: list[int] = field(default_factory=list)  # key neither present nor destroyed
    open_destructions: list[int] = field(default_factory=list)  # requests to resume with `destruction execute`
    anchors_archived: str | None = None  # the audit anchor file of the replaced log, kept aside as evidence

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)


# --------------------------------------------------------------------------------------------- helpers


def sqlite_path(settings: Settings) -> Path:
    """The main database file; PostgreSQL deployments use pg_dump / pg_restore instead (docs/backup.md)."""
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise ConfigurationError(
            f"faceleads backup/restore handles the SQLite database only; for {url.get_backend_name()} back up the "
            "database with pg_dump (and restore with pg_restore) as described in docs/backup.md"
        )
    return Path(url.database)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_file(src: Path, dst: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (private temporary file, fsync, rename); returns (SHA-256, size)."""
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = dst.with_name(f".tmp-{dst.name}-{os.getpid()}-{secrets.token_hex(4)}")
    digest = hashlib.sha256()
    size = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with src.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.close(fd)
    os.replace(tmp, dst)
    return digest.hexdigest(), size


def _blob_rel(address: str) -> str:
    return f"{STORE_DIR}/{address[:2]}/{address[2:4]}/{address}"


def _referenced_addresses(db: Path) -> set[str]:
    """Every value of a column named ``*address`` in the snapshot (gallery originals, case evidence, frames)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out: set[str] = set()
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            for column in columns:
                if column.endswith("address"):
                    rows = conn.execute(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL')
                    out.update(str(r[0]) for r in rows)
        return out
    finally:
        conn.close()


def _audit_head(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT seq, head_hash FROM audit_chain_head WHERE id = 1").fetchone()
    except sqlite3.OperationalError:
        row = None
    finally:
        conn.close()
    return {"seq": row[0], "hash": row[1]} if row else {"seq": 0, "hash": audit.GENESIS_HASH}


# --------------------------------------------------------------------------------------------- backup


def backup_keys(rt: GalleryRuntime, keys_dest: Path) -> Path:
    """Escrow copy of the keystore (``KeyStore.backup``) plus its destruction ledger as ``<name>.destroyed.log``.

    It holds the wrapped key of every live subject: keep it apart from the main backups, and the master key apart
    from both.
    """
    keys_dest = Path(keys_dest)
    if keys_dest.exists() and keys_dest.is_dir():
        keys_dest = keys_dest / "keystore.db"
    keystore = rt.keystore
    if not isinstance(keystore, KeyStore):
        raise ConfigurationError(
            "the keys are in the keystore database (FACELEADS_KEYSTORE_URL): back it up with the database server's "
            "tools, apart from the main database (docs/deployment.md)"
        )
    keystore.backup(keys_dest)
    ledger = keystore.ledger_path
    if ledger.exists():
        _copy_file(ledger, keys_dest.with_name(f"{keys_dest.name}.{LEDGER_NAME}"))
    fsync_dir(keys_dest.parent)
    return keys_dest


def backup(
    rt: GalleryRuntime,
    actor: Actor,
    dest: Path,
    *,
    keys_dest: Path | None = None,
    progress: ProgressCallback | None = None,
) -> BackupReport:
    """Write a consistent backup of the database and the blob store to the new directory ``dest`` (administrator).

    Safe while the system runs. ``keys_dest``: also write a keystore escrow copy there — it must not be inside
    ``dest``. The directory appears under its name only once complete (written as a hidden sibling, then renamed).
    """
    dest = Path(dest).absolute()
    enforce(rt.session_factory, actor, Action.BACKUP, f"backup:{dest.name}")
    sqlite_path(rt.settings)  # refuses a PostgreSQL deployment before anything is written
    if rt.settings.blob_store != "local":
        raise ConfigurationError(
            "faceleads backup copies a local blob store folder; an object store is protected with its own "
            "versioning and replication (docs/deployment.md)"
        )
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValidationError(f"backup destination {dest} exists and is not an empty directory")
    data_dir = rt.settings.data_dir.absolute()
    if dest == data_dir or data_dir in dest.parents:
        raise ValidationError(f"backup destination {dest} is inside the data directory {data_dir}")
    if keys_dest is not None:
        kd = Path(keys_dest).absolute()
        if kd == dest or dest in kd.parents:
            raise ValidationError("keep the keys backup apart from the main backup: --keys must not be inside DEST")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Interrupted backups (kill -9, power loss) leave their hidden work folder, which holds a full copy of the
    # database: every start, and this run, deletes those of dead processes (datadir.register_partial).
    cleanup_partials(rt.settings)
    work = dest.parent / f".{dest.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    with register_partial(rt.settings, work):
        created_at, files, copied, missing, text = _write_backup(rt, work, dest, progress)
    keys_path = str(backup_keys(rt, Path(keys_dest))) if keys_dest is not None else None
    report = BackupReport(
        path=str(dest),
        created_at=created_at,
        files=len(files),
        bytes=sum(int(f["size"]) for f in files.values()),
        blobs=len(copied),
        referenced_missing=len(missing),
        manifest_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        keys_path=keys_path,
    )
    audit.record_now(
        rt.session_factory,
        actor,
        "backup",
        f"backup:{dest.name}",
        audit.Outcome.OK,
        details={
            "manifest_sha256": report.manifest_sha256,
            "file_count": report.files,
            "blob_count": report.blobs,
            "keys_backed_up": keys_path is not None,
        },
    )
    return report


def _write_backup(
    rt: GalleryRuntime, work: Path, dest: Path, progress: ProgressCallback | None
) -> tuple[str, dict[str, dict[str, Any]], set[str], set[str], str]:
    """Fill the (registered, empty) work folder and rename it to ``dest``; on any failure delete it.

    Returns (created_at, files, copied blob addresses, referenced-but-missing addresses, manifest text).
    """
    db = sqlite_path(rt.settings)
    try:
        files: dict[str, dict[str, Any]] = {}
        # 1. The database: one consistent snapshot through SQLite's online backup API (WAL readers never block).
        snap = work / DB_NAME
        os.close(os.open(snap, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        source = sqlite3.connect(db, timeout=30)
        target = sqlite3.connect(snap)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
            source.close()
        with snap.open("rb") as fh:
            os.fsync(fh.fileno())
        files[DB_NAME] = {"sha256": _sha256_file(snap), "size": snap.stat().st_size}
        referenced = _referenced_addresses(snap)
        head = _audit_head(snap)
        # 2. The blobs, after the snapshot: every blob it refers to was written before its record committed.
        addresses = list(rt.store.addresses())
        copied: set[str] = set()
        for i, address in enumerate(addresses, 1):
            rel = _blob_rel(address)
            try:
                digest, size = _copy_file(rt.store.path_for(address), work / rel)
            except FileNotFoundError:
                continue  # deleted meanwhile (a destruction): its key is already gone
            files[rel] = {"sha256": digest, "size": size}
            copied.add(address)
            if progress is not None:
                progress("copying encrypted blobs", i, len(addresses))
        missing = referenced - copied
        created_at = audit.iso_utc(utcnow())
        manifest = {
            "format": FORMAT,
            "created_at": created_at,
            "faceleads_version": __version__,
            "database": DB_NAME,
            "audit_head": head,
            "blobs": len(copied),
            "referenced_missing": len(missing),
            "keystore_included": False,
            "files": dict(sorted(files.items())),
        }
        text = json.dumps(manifest, indent=1, sort_keys=True)
        (work / MANIFEST).write_text(text, encoding="utf-8")
        for directory in sorted({(work / rel).parent for rel in files}, key=lambda p: len(p.parts), reverse=True):
            fsync_dir(directory)
        (work / PARTIAL_MARKER).unlink()
        fsync_dir(work)
        if dest.exists():
            dest.rmdir()  # empty (checked above)
        os.replace(work, dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return created_at, files, copied, missing, text


def verify_backup(src: Path, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Check a backup directory against its manifest (every file present, SHA-256 and size); returns the manifest.

    Raises :class:`NotFound` for a missing backup or manifest and :class:`IntegrityError` naming the first bad file.
    """
    src = Path(src)
    path = src / MANIFEST
    if not path.is_file():
        raise NotFound(f"{src} is not a faceleads backup (no {MANIFEST})")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"backup manifest {path} is not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise IntegrityError(f"backup manifest {path} is not a {FORMAT} manifest")
    files: dict[str, dict[str, Any]] = manifest["files"]
    if DB_NAME not in files:
        raise IntegrityError(f"backup {src} has no database in its manifest")
    for i, (rel, meta) in enumerate(sorted(files.items()), 1):
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise IntegrityError(f"backup manifest names an unsafe path {rel!r}")
        file = src / rel
        if not file.is_file():
            raise IntegrityError(f"backup file {rel} is missing")
        if file.stat().st_size != meta.get("size") or _sha256_file(file) != meta.get("sha256"):
            raise IntegrityError(f"backup file {rel} does not match its manifest (changed or damaged)")
        if progress is not None:
            progress("verifying backup", i, len(files))
    return manifest


# --------------------------------------------------------------------------------------------- restore


def data_dir_contents(settings: Settings) -> list[str]:
    """Why the data directory counts as in use (empty list: safe to restore into without ``--force``)."""
    reasons: list[str] = []
    db = sqlite_path(settings)
    if db.is_file():
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            for table in ("subjects", "audit_log", "searches"):
                try:
                    n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                except sqlite3.OperationalError:
                    continue
                if n:
                    reasons.append(f"{n} row(s) in {table}")
        finally:
            conn.close()
    store = default_store_root(settings)
    if store.is_dir() and any(p.is_file() for p in store.rglob("*")):
        reasons.append(f"files in the blob store {store}")
    return reasons


def _restore_keys(settings: Settings, keys_src: Path) -> None:
    keys_src = Path(keys_src)
    if keys_src.is_dir():
        keys_src = keys_src / "keystore.db"
    with KeyStore.from_settings(settings) as ks:
        ks.restore(keys_src)
        # Destructions recorded in the escrow copy's ledger stay destroyed even if the live ledger was lost.
        side = keys_src.with_name(f"{keys_src.name}.{LEDGER_NAME}")
        if side.is_file():
            for line in side.read_text(encoding="utf-8").splitlines():
                _, sep, key_id = line.partition("\t")
                if sep and key_id:
                    with contextlib.suppress(ValidationError):
                        ks.destroy(key_id)


def restore(
    settings: Settings,
    src: Path,
    *,
    actor: Actor | None = None,
    force: bool = False,
    keys_src: Path | None = None,
    progress: ProgressCallback | None = None,
) -> RestoreReport:
    """Bring a backup back into ``settings.data_dir`` (run with the system stopped).

    Verifies the manifest, refuses a data directory in use unless ``force``, restores the keystore escrow copy
    ``keys_src`` if given (the destruction ledger is re-applied either way), copies the database and the blobs, then
    :func:`reconcile`\\ s: every subject whose key is destroyed is destroyed in the restored records too. ``actor``:
    who restores; over an existing installation they must hold the restore permission there (checked, and a
    refusal audited, in that installation's database before anything is replaced). None = the system operator.
    """
    src = Path(src)
    db = sqlite_path(settings)
    if actor is not None and db.is_file():
        _authorise_restore(settings, actor, src)
    manifest = verify_backup(src, progress)
    in_use = data_dir_contents(settings)
    if in_use and not force:
        raise ValidationError(
            f"the data directory {settings.data_dir} is in use ({'; '.join(in_use)}); pass --force to overwrite it"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if keys_src is not None:
        _restore_keys(settings, keys_src)
    elif not default_keystore_path(settings).exists():
        raise ConfigurationError(
            f"no keystore at {default_keystore_path(settings)}: restore the keys escrow copy too (--keys)"
        )
    # The database: SQLite's backup API into the live file replaces its content page by page, WAL included.
    source = sqlite3.connect(f"file:{src / DB_NAME}?mode=ro", uri=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    target = sqlite3.connect(db, timeout=30)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    # The blobs (ciphertext): copied in; present files with the same content are left alone.
    store = default_store_root(settings)
    blobs = sorted(rel for rel in manifest["files"] if rel.startswith(f"{STORE_DIR}/"))
    copied = 0
    for i, rel in enumerate(blobs, 1):
        dst = store / Path(rel).relative_to(STORE_DIR)
        if not (dst.is_file() and _sha256_file(dst) == manifest["files"][rel]["sha256"]):
            _copy_file(src / rel, dst)
            copied += 1
        if progress is not None:
            progress("restoring encrypted blobs", i, len(blobs))
    for directory in sorted({(store / Path(rel).relative_to(STORE_DIR)).parent for rel in blobs}):
        fsync_dir(directory)
    # The anchors describe the audit log that was just replaced (longer than the restored one): kept aside as
    # evidence, so that verification starts again from the restored log (docs/backup.md, docs/audit.md).
    anchors = anchor_file(settings)
    archived = None
    if anchors.exists():
        archived = anchors.with_name(f"{anchors.name}.before-restore-{utcnow():%Y%m%dT%H%M%S%fZ}")
        os.replace(anchors, archived)
    rt = GalleryRuntime(settings)
    try:
        report = RestoreReport(
            source=str(src),
            backup_created_at=str(manifest.get("created_at")),
            blobs_copied=copied,
            keys_restored=keys_src is not None,
            anchors_archived=str(archived) if archived else None,
        )
        reconcile(rt, actor, report)
        with transaction(rt.session_factory) as session:
            report.open_destructions = sorted(
                session.execute(
                    select(DestructionRequest.id).where(DestructionRequest.status == RequestStatus.EXECUTING.value)
                ).scalars()
            )
            audit.record(
                session,
                actor,
                "restore",
                f"backup:{src.name}",
                audit.Outcome.OK,
                details={
                    "backup_created_at": report.backup_created_at,
                    "blob_count": len(blobs),
                    "keys_restored": report.keys_restored,
                    "reconciled_count": len(report.reconciled_subjects),
                    "unreadable_count": len(report.unreadable_subjects),
                    "anchors_archived": archived is not None,
                },
            )
    finally:
        rt.close()
    return report


def _authorise_restore(settings: Settings, actor: Actor, src: Path) -> None:
    """The central policy's decision on restoring over the installation at ``settings`` (refusals audited there)."""
    engine = make_engine(settings.effective_database_url)
    try:
        enforce(make_session_factory(engine), actor, Action.RESTORE, f"backup:{src.name}")
    finally:
        engine.dispose()


def reconcile(rt: GalleryRuntime, actor: Actor | None, report: RestoreReport | None = None) -> RestoreReport:
    """Make the records agree with the keystore's destruction ledger (after a restore).

    Every subject not yet ``destroyed`` whose data key is destroyed is taken out of search (``destroying``), its
    blobs deleted, its records purged like a destruction's step 4, and marked ``destroyed`` — audited. Subjects
    whose key is simply missing (keystore older than the backup) are listed as unreadable, not destroyed.
    """
    report = report or RestoreReport(source="", backup_created_at="", blobs_copied=0, keys_restored=False)
    with rt.session_factory() as session:
        rows = session.execute(
            select(Subject.id, Subject.key_id).where(Subject.status != SubjectStatus.DESTROYED.value)
            .order_by(Subject.id)  # the report's lists and the audit entries in subject order
        ).all()
    destroyed = set(rt.keystore.destroyed_ids())  # read the ledger once, not once per subject
    for sid, key_id in rows:
        if key_id not in destroyed:
            if not rt.keystore.exists(key_id):
                report.unreadable_subjects.append(int(sid))
            continue
        with transaction(rt.session_factory) as session:
            subject = session.get(Subject, sid)
            assert subject is not None
            subject.status = SubjectStatus.DESTROYING.value
            addresses = subject_blob_addresses(session, sid)
        rt.remove_subject(sid)
        delete_blobs(rt, addresses)
        with transaction(rt.session_factory) as session:
            subject = session.get(Subject, sid)
            assert subject is not None
            counts = purge_records(session, subject)
            subject.status = SubjectStatus.DESTROYED.value
            subject.destroyed_at = subject.destroyed_at or utcnow()
            audit.record(
                session,
                actor,
                audit.AuditAction.DESTRUCTION,
                f"subject:{sid}",
                audit.Outcome.OK,
                details={
                    "stage": "reconciled_after_restore",
                    "blob_count": len(addresses),
                    **{f"{k}_count": v for k, v in counts.items()},
                },
            )
        report.reconciled_subjects.append(int(sid))
    return report


__all__ = [
    "BackupReport",
    "RestoreReport",
    "backup",
    "backup_keys",
    "data_dir_contents",
    "reconcile",
    "restore",
    "sqlite_path",
    "verify_backup",
]
