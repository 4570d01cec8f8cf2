"""Backups and restores on real enrolments: an old backup restored after a destruction stays unreadable for the
destroyed subject; a backup taken while enrolments are being written restores to a consistent state."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from faceleads.cli import context
from faceleads.cli.context import cli_actor
from faceleads.config import Settings
from faceleads.core import audit
from faceleads.core.actor import Role
from faceleads.errors import ConfigurationError, IntegrityError, KeyDestroyedError, PermissionDenied, ValidationError
from faceleads.gallery.enrolment import enrol_record
from faceleads.gallery.models import FaceTemplate, Image, Subject
from faceleads.gallery.runtime import GalleryRuntime, image_context, template_context
from faceleads.governance import backup, destruction
from faceleads.storage.blobs import BlobStore
from faceleads.storage.crypto import decrypt_embedding
from tests import dbs
from tests.conftest import lfw_identities
from tests.gallery.conftest import record
from tests.lawful import list_authorities, search_on_case

PEOPLE = lfw_identities()
NAMES = sorted(n for n, p in PEOPLE.items() if len(p) >= 3)[:2]
SEARCH = {"case": "OCC-2025-0099", "offence": "ROB", "reason": "armed robbery, shop CCTV"}
# faceleads backup/restore copies the embedded SQLite database; a PostgreSQL system of record is backed up with the
# server's own tools (docs/backup.md, docs/deployment.md).
SQLITE_ONLY = pytest.mark.skipif(dbs.ON_POSTGRES, reason="faceleads backup covers the SQLite deployment only")


@pytest.fixture
def rt(settings: Settings, engine) -> Iterator[GalleryRuntime]:  # type: ignore[no-untyped-def]
    runtime = GalleryRuntime(settings, face_engine=engine)
    for code in ("MET", "NYPD"):
        list_authorities(runtime, code)
    yield runtime
    runtime.close()


def _candidates(rt: GalleryRuntime, name: str) -> list[int]:
    actor = cli_actor(rt, "MET")
    return [
        c.subject_id
        for c in search_on_case(
            rt, actor, PEOPLE[name][2], case=SEARCH["case"], offence=SEARCH["offence"], reason=SEARCH["reason"], top=5
        ).candidates
    ]


def _destroy(rt: GalleryRuntime, subject_id: int) -> None:
    actor = cli_actor(rt, "MET")
    req = destruction.request_destruction(rt, actor, subject_id, requester="subject", grounds="acquitted on appeal")
    for item in destruction.CHECKLIST_ITEMS:
        destruction.record_checklist(rt, actor, req.id, item, True, "checked")
    destruction.decide(rt, actor, req.id, approve=True, reason="acquittal confirmed by the court")
    destruction.execute(rt, actor, req.id)


@SQLITE_ONLY
def test_old_backup_restored_after_destruction_stays_unreadable(
    rt: GalleryRuntime, settings: Settings, tmp_path: Path
) -> None:
    actor = cli_actor(rt, "MET")
    a, b = NAMES
    sid_a = enrol_record(rt, actor, record(a, "MET-1"), PEOPLE[a][:2]).subject_id
    sid_b = enrol_record(rt, actor, record(b, "MET-2"), PEOPLE[b][:2]).subject_id
    assert _candidates(rt, a)[0] == sid_a
    bk, keys = tmp_path / "backups" / "monday", tmp_path / "escrow" / "keystore.db"

    # Policy and destination checks.
    with pytest.raises(PermissionDenied):
        backup.backup(rt, cli_actor(rt, "MET", roles=[Role.RECORDS_OFFICER]), bk)
    with pytest.raises(ValidationError, match="inside the data directory"):
        backup.backup(rt, actor, settings.data_dir / "bk")
    with pytest.raises(ValidationError, match="apart from the main backup"):
        backup.backup(rt, actor, bk, keys_dest=bk / "keys.db")

    report = backup.backup(rt, actor, bk, keys_dest=keys)
    # Four booking photos, and the probe photo the search above kept as encrypted case evidence.
    assert report.blobs == 4 + 1 and report.referenced_missing == 0 and keys.is_file()
    manifest = json.loads((bk / "manifest.json").read_text())
    assert set(manifest["files"]) == {"faceleads.db"} | {p for p in manifest["files"] if p.startswith("store/")}
    assert manifest["keystore_included"] is False
    assert not any("key" in p for p in manifest["files"])  # neither the keystore nor the master key
    assert backup.verify_backup(bk)["audit_head"]["seq"] > 0
    with pytest.raises(ValidationError, match="not an empty directory"):
        backup.backup(rt, actor, bk)
    with sqlite3.connect(bk / "faceleads.db") as conn:
        key_a = conn.execute("SELECT key_id FROM subjects WHERE id = ?", (sid_a,)).fetchone()[0]
        old_images = conn.execute("SELECT store_address, sha256 FROM images WHERE subject_id = ?", (sid_a,)).fetchall()
        old_templates = conn.execute(
            "SELECT t.embedding, i.sha256, t.model_version FROM face_templates t JOIN images i ON i.id = t.image_id "
            "WHERE t.subject_id = ?",
            (sid_a,),
        ).fetchall()
    assert len(old_images) == 2 and len(old_templates) == 2

    _destroy(rt, sid_a)
    rt.close()

    with pytest.raises(ValidationError, match="pass --force"):
        backup.restore(settings, bk)
    # Restore the older backup *and* the older keys escrow copy (which still holds A's wrapped key).
    restored = backup.restore(settings, bk, force=True, keys_src=keys, actor=actor)
    assert restored.reconciled_subjects == [sid_a] and restored.unreadable_subjects == []
    assert restored.keys_restored

    rt2 = GalleryRuntime(settings, face_engine=rt.face_engine)
    try:
        # A's key stays destroyed: the backup's ciphertext — blobs and templates — cannot be decrypted.
        with pytest.raises(KeyDestroyedError):
            rt2.keystore.get(key_a)
        old_store = BlobStore(bk / "store", rt2.keystore)
        for address, sha in old_images:
            assert old_store.exists(address)  # the ciphertext is in the backup ...
            with pytest.raises(KeyDestroyedError):  # ... but unreadable
                old_store.get(key_a, address, image_context(sha))
            assert not rt2.store.exists(address)  # and the restored store does not even hold it
        for _blob, _sha, _model in old_templates:
            with pytest.raises(KeyDestroyedError):
                decrypt_embedding(rt2.keystore.get(key_a), _blob, template_context(key_a, _sha, _model))
        with rt2.session_factory() as session:
            subject = session.get(Subject, sid_a)
            assert subject is not None and subject.status == "destroyed"
            assert session.scalars(select(FaceTemplate).where(FaceTemplate.subject_id == sid_a)).all() == []
            assert audit.verify_chain(session).ok
            last = session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.seq.desc())).first()
            assert last is not None and last.action == "restore"
        # A never appears in search results; B still works (its blobs decrypt too).
        assert sid_a not in _candidates(rt2, a)
        assert _candidates(rt2, b)[0] == sid_b
        with rt2.session_factory() as session:
            key_b = session.get(Subject, sid_b).key_id  # type: ignore[union-attr]
            for image in session.scalars(select(Image).where(Image.subject_id == sid_b)):
                assert rt2.store.get(key_b, str(image.store_address), image_context(image.sha256))
        rt2.verify_index()
    finally:
        rt2.close()

    # A damaged backup is refused, naming the file.
    blob = next(p for p in (bk / "store").rglob("*") if p.is_file())
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    with pytest.raises(IntegrityError, match=blob.name):
        backup.restore(settings, bk, force=True)


@SQLITE_ONLY
def test_backup_during_enrolment_restores_consistent(rt: GalleryRuntime, settings: Settings, tmp_path: Path) -> None:
    actor = cli_actor(rt, "MET")
    people = sorted(n for n, p in PEOPLE.items() if len(p) >= 2)[:8]
    committed = threading.Semaphore(0)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i, name in enumerate(people):
                enrol_record(rt, actor, record(name, f"MET-W{i}"), PEOPLE[name][:2])
                committed.release()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            committed.release()

    thread = threading.Thread(target=writer)
    thread.start()
    # Backups taken while the writer keeps enrolling (one after each of its first commits).
    reports = []
    for n in range(3):
        assert committed.acquire(timeout=120)
        reports.append(backup.backup(rt, actor, tmp_path / f"bk{n}", keys_dest=tmp_path / f"escrow{n}" / "ks.db"))
    thread.join(300)
    assert not errors, errors
    assert all(r.referenced_missing == 0 for r in reports)
    bk, keys = tmp_path / "bk1", tmp_path / "escrow1" / "ks.db"

    # Restore into a brand-new data directory (same master key, the escrow keystore).
    other = Settings(data_dir=tmp_path / "restored", master_key_file=settings.effective_master_key_file)
    assert backup.data_dir_contents(other) == []
    result = backup.restore(other, bk, keys_src=keys)
    assert result.reconciled_subjects == [] and result.unreadable_subjects == []
    rt2 = GalleryRuntime(other, face_engine=rt.face_engine)
    try:
        with rt2.session_factory() as session:
            assert audit.verify_chain(session).ok
            images = session.execute(
                select(Image.store_address, Image.sha256, Subject.key_id).join(Subject, Subject.id == Image.subject_id)
            ).all()
            templates = session.scalars(select(FaceTemplate)).all()
            enrolled = session.scalars(
                select(audit.AuditEntry).where(audit.AuditEntry.action == audit.AuditAction.ENROL)
            ).all()
        # Whole records only: every enrolment the snapshot saw is there with both photos, each readable.
        assert 1 <= len(enrolled) <= len(people) and len(images) == 2 * len(enrolled)
        assert len(templates) == len(images)
        for address, sha, key_id in images:
            assert rt2.store.get(key_id, str(address), image_context(sha))
        rt2.sync_index()
        rt2.verify_index()
        print(f"backup during enrolment: snapshot held {len(enrolled)} of {len(people)} records")
    finally:
        rt2.close()


@SQLITE_ONLY
def test_backup_and_restore_cli(rt: GalleryRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "_runtime", rt)
    actor = cli_actor(rt, "MET")
    enrol_record(rt, actor, record(NAMES[0], "MET-1"), PEOPLE[NAMES[0]][:1])
    from faceleads.cli.main import app

    runner = CliRunner()
    out = runner.invoke(app, ["backup", str(tmp_path / "bk"), "--keys", str(tmp_path / "k" / "ks.db"), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["blobs"] == 1 and data["keys_path"].endswith("ks.db")
    refused = runner.invoke(app, ["restore", str(tmp_path / "bk")])
    assert refused.exit_code == 2 and "--force" in refused.output
    from faceleads.governance import audit_integrity

    enrol_record(rt, actor, record(NAMES[1], "MET-2"), PEOPLE[NAMES[1]][:1])  # after the backup
    assert audit_integrity.anchor_now(rt.session_factory, rt.settings)[1] is not None  # anchors the longer log
    rt.close()
    done = runner.invoke(app, ["restore", str(tmp_path / "bk"), "--force", "--json"])
    assert done.exit_code == 0, done.output
    restored = json.loads(done.stdout)
    assert restored["blobs_copied"] == 0  # the store already held the same blob
    # The anchors of the replaced (longer) log are kept aside as evidence; the restored log verifies from scratch.
    assert restored["anchors_archived"] and Path(restored["anchors_archived"]).is_file()
    assert audit_integrity.verify(rt.session_factory, rt.settings).ok


class _Crash(Exception):
    pass


@SQLITE_ONLY
def test_backup_taken_mid_destruction_restores_destroyed_and_resumable(
    rt: GalleryRuntime, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = cli_actor(rt, "MET")
    a, b = NAMES
    sid_a = enrol_record(rt, actor, record(a, "MET-1"), PEOPLE[a][:2]).subject_id
    enrol_record(rt, actor, record(b, "MET-2"), PEOPLE[b][:1])
    req = destruction.request_destruction(rt, actor, sid_a, requester="subject", grounds="no further action")
    for item in destruction.CHECKLIST_ITEMS:
        destruction.record_checklist(rt, actor, req.id, item, True, "checked")
    destruction.decide(rt, actor, req.id, approve=True, reason="no further action confirmed")

    def crash(point: str) -> None:
        if point == "key_destroyed":
            raise _Crash(point)

    monkeypatch.setattr(destruction, "step_hooks", [crash])
    with pytest.raises(_Crash):
        destruction.execute(rt, actor, req.id)  # the process "dies" with the key shredded, blobs still there
    monkeypatch.setattr(destruction, "step_hooks", [])
    report = backup.backup(rt, actor, tmp_path / "bk")
    assert report.blobs == 3 and report.referenced_missing == 0  # A's blobs are copied, as ciphertext
    destruction.execute(rt, actor, req.id)
    rt.close()

    restored = backup.restore(settings, tmp_path / "bk", force=True)
    # The backup saw the destruction half done: the subject is destroyed by the reconciliation and the request is
    # listed for resumption; resuming completes it on the restored records.
    assert restored.reconciled_subjects == [sid_a] and restored.open_destructions == [req.id]
    rt2 = GalleryRuntime(settings, face_engine=rt.face_engine)
    try:
        assert sid_a not in _candidates(rt2, a)
        cert = destruction.execute(rt2, actor, req.id)
        assert cert["destroyed"]["images"] == 2 and cert["runs"] == 2
        with rt2.session_factory() as session:
            assert session.get(Subject, sid_a).status == "destroyed"  # type: ignore[union-attr]
            assert audit.verify_chain(session).ok
    finally:
        rt2.close()


def test_backup_of_a_postgresql_deployment_points_to_the_server_tools(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql://faceleads@127.0.0.1:1/faceleads")
    with pytest.raises(ConfigurationError, match="pg_dump"):
        backup.sqlite_path(settings)


_KILLED_BACKUP = """
import os, signal, sys
from pathlib import Path
from faceleads.config import Settings
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.governance import backup
from faceleads.core.actor import Actor, Role

rt = GalleryRuntime(Settings(data_dir=Path(sys.argv[1])))
def killed(db):  # right after the database snapshot was written: kill -9 ourselves
    print(db, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
backup._referenced_addresses = killed
backup.backup(rt, Actor("adm", 1, frozenset({Role.ADMINISTRATOR}), None, "MET"), Path(sys.argv[2]))
"""


@SQLITE_ONLY
def test_killed_backup_leaves_no_database_copy_behind(rt: GalleryRuntime, tmp_path: Path) -> None:
    """kill -9 during a backup: its hidden work folder holds a full database copy; the next start removes it."""
    import stat
    import subprocess
    import sys

    actor = cli_actor(rt, "MET")
    enrol_record(rt, actor, record(NAMES[0], "MET-1"), PEOPLE[NAMES[0]][:1])
    dest = tmp_path / "backups" / "nightly"
    proc = subprocess.run([sys.executable, "-c", _KILLED_BACKUP, str(rt.settings.data_dir), str(dest)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -9, proc.stderr[-2000:]
    snapshot = Path(proc.stdout.strip())
    partial = snapshot.parent
    assert snapshot.is_file() and partial.name.startswith(".nightly.partial")  # the full copy is there...
    assert stat.S_IMODE(partial.stat().st_mode) == 0o700  # ...private while it exists
    assert not dest.exists()
    GalleryRuntime(rt.settings).close()  # the next start (any command, the server) cleans up
    assert not partial.exists(), "an interrupted backup's database copy must not survive the next start"
    report = backup.backup(rt, actor, dest)  # and a later backup works and leaves nothing hidden behind
    assert Path(report.path) == dest and [p.name for p in dest.parent.iterdir()] == ["nightly"]
    assert not any(p.name.startswith(".faceleads-partial") for p in dest.rglob("*"))
    backup.verify_backup(dest)
