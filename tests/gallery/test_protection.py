"""Encryption at rest of the gallery: swapped blobs and ciphertexts fail, destroyed keys shred a subject,
the index is checked against the database, and reindex re-embeds templates of another model version."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import select, update

from faceleads.cli.context import cli_actor
from faceleads.errors import IntegrityError, KeyDestroyedError
from faceleads.gallery.enrolment import enrol_record
from faceleads.gallery.models import FaceTemplate, Image, Subject
from faceleads.gallery.reindex import reindex
from faceleads.gallery.runtime import GalleryRuntime, image_context
from tests.gallery.conftest import lfw_identities, record
from tests.lawful import search_on_case

PEOPLE = lfw_identities()
SEARCH = {"case": "OCC-7", "offence": "ASS", "reason": "assault, doorbell camera"}
NAMES = ["Abdullah_Gul", "AJ_Cook", "Aaron_Peirsol"]


def _setup(rt):  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    for i, name in enumerate(NAMES):
        enrol_record(rt, actor, record(name, f"B{i}"), [PEOPLE[name][0]])
    with rt.session_factory() as session:
        rows = session.execute(
            select(Image, Subject.key_id).join(Subject, Subject.id == Image.subject_id).order_by(Image.id)
        ).all()
    return actor, rows


def test_blobs_decrypt_only_for_their_own_record(rt) -> None:  # type: ignore[no-untyped-def]
    _, rows = _setup(rt)
    (img_a, key_a), (img_b, key_b) = rows[0], rows[1]
    original = rt.store.get(key_a, img_a.store_address, image_context(img_a.sha256))
    assert original == PEOPLE[NAMES[0]][0].read_bytes()
    # Nothing in the store is plaintext.
    assert original not in rt.store.path_for(img_a.store_address).read_bytes()
    # Swap: copy A's encrypted file over B's. B's record must refuse it.
    shutil.copyfile(rt.store.path_for(img_a.store_address), rt.store.path_for(img_b.store_address))
    with pytest.raises(IntegrityError):
        rt.store.get(key_b, img_b.store_address, image_context(img_b.sha256))
    # Asking for A's blob under B's subject key fails too.
    with pytest.raises(IntegrityError):
        rt.store.get(key_b, img_a.store_address, image_context(img_a.sha256))


def test_swapped_embedding_ciphertext_is_never_searchable(rt, settings, engine) -> None:  # type: ignore[no-untyped-def]
    actor, _ = _setup(rt)
    with rt.session_factory.begin() as session:
        t1, t2 = session.scalars(select(FaceTemplate).order_by(FaceTemplate.id)).all()[:2]
        t1.embedding, t2.embedding = t2.embedding, t1.embedding
    fresh = GalleryRuntime(settings, face_engine=engine)
    report = fresh.sync_index()
    assert report is not None and report.skipped == 2 and report.total == 1
    result = search_on_case(fresh, actor, PEOPLE[NAMES[0]][1], **SEARCH)
    assert {c.subject_number for c in result.candidates} == {NAMES[2]}
    fresh.verify_index()  # the gaps are explained by failed decryption


def test_key_destruction_shreds_blobs_and_removes_from_search(rt, settings, engine) -> None:  # type: ignore[no-untyped-def]
    actor, rows = _setup(rt)
    target_img, target_key = rows[0]
    probe = PEOPLE[NAMES[0]][1]
    assert search_on_case(rt, actor, probe, **SEARCH).candidates[0].subject_number == NAMES[0]  # index built and hit
    rt.keystore.destroy(target_key)
    with pytest.raises(KeyDestroyedError):
        rt.store.get(target_key, target_img.store_address, image_context(target_img.sha256))
    # The running runtime (index built before the destruction) no longer returns the subject ...
    after = search_on_case(rt, actor, probe, **SEARCH)
    assert NAMES[0] not in {c.subject_number for c in after.candidates}
    assert len(after.candidates) == 2
    # ... and a fresh one never indexes it.
    fresh = GalleryRuntime(settings, face_engine=engine)
    assert NAMES[0] not in {c.subject_number for c in search_on_case(fresh, actor, probe, **SEARCH).candidates}
    assert fresh.sync_index(force=True).total == 2  # type: ignore[union-attr]


def test_index_follows_other_processes_and_checks_itself(rt, settings, engine) -> None:  # type: ignore[no-untyped-def]
    actor, _ = _setup(rt)
    assert rt.start().total == 3  # built at start-up and checked against the database
    other = GalleryRuntime(settings, face_engine=engine)  # e.g. a CLI bulk run beside the API server
    enrol_record(other, actor, record("Ai_Sugiyama", "B9"), [PEOPLE["Ai_Sugiyama"][0]])
    report = rt.sync_index()
    assert report is not None and report.added == 1 and report.total == 4
    rt.verify_index()
    with rt.session_factory.begin() as session:
        tid = session.scalars(select(FaceTemplate.id).order_by(FaceTemplate.id.desc())).first()
        session.delete(session.get(FaceTemplate, tid))
    with pytest.raises(IntegrityError, match="not in the database"):
        rt.verify_index()
    report = rt.sync_index()
    assert report is not None and report.removed == 1
    rt.verify_index()


def test_reindex_reembeds_templates_of_another_model(rt) -> None:  # type: ignore[no-untyped-def]
    actor, _ = _setup(rt)
    with rt.session_factory.begin() as session:
        session.execute(update(FaceTemplate).where(FaceTemplate.id <= 2).values(model_version="w600k_mbf@old000000000"))
    rt.sync_index(force=True)
    found = search_on_case(rt, actor, PEOPLE[NAMES[0]][1], **SEARCH)
    assert NAMES[0] not in {c.subject_number for c in found.candidates}
    report = reindex(rt, actor)
    assert (report.candidates, report.reembedded, report.failed) == (2, 2, 0)
    with rt.session_factory() as session:
        versions = set(session.scalars(select(FaceTemplate.model_version)))
    assert versions == {rt.model_version}
    assert search_on_case(rt, actor, PEOPLE[NAMES[0]][1], **SEARCH).candidates[0].subject_number == NAMES[0]
    rt.verify_index()
    assert reindex(rt, actor).candidates == 0


def test_template_geometry_is_encrypted_with_the_subject_key(rt) -> None:  # type: ignore[no-untyped-def]
    """A database reader learns no landmarks or face boxes: they are sealed like the embedding."""
    import sqlite3

    _setup(rt)
    db = rt.settings.data_dir / "faceleads.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT box, landmarks, geometry FROM face_templates").fetchall()
    assert len(rows) == len(NAMES)
    for box, landmarks, sealed in rows:
        assert box is None and landmarks is None, "no clear geometry in the database"
        assert sealed is not None and bytes(sealed).startswith(b"FLE")


def test_clear_geometry_of_older_rows_is_sealed_at_start(rt, settings, engine) -> None:  # type: ignore[no-untyped-def]
    """Rows written before geometry was encrypted (clear box/landmarks) are sealed and erased at the next start,
    and the comparison geometry stays the same."""
    import sqlite3

    from faceleads.gallery.geometry import template_geometry

    _setup(rt)
    with rt.session_factory() as session:
        before = {
            t.id: template_geometry(rt.keystore, s, i, t)
            for t, s, i in session.execute(
                select(FaceTemplate, Subject, Image).join(Subject, Subject.id == FaceTemplate.subject_id)
                .join(Image, Image.id == FaceTemplate.image_id)
            )
        }  # fmt: skip
    db = settings.data_dir / "faceleads.db"
    with sqlite3.connect(db) as conn:  # an old installation: clear geometry, nothing sealed
        for tid, shape in before.items():
            landmarks = [[123.456789, p[1]] for p in shape.landmarks]
            conn.execute("UPDATE face_templates SET geometry = NULL, box = ?, landmarks = ? WHERE id = ?",
                         (json.dumps(shape.box), json.dumps(landmarks).replace(" ", ""), tid))  # fmt: skip
            before[tid] = type(shape)(shape.box, landmarks)
    assert b"123.456789" in db.read_bytes() + (settings.data_dir / "faceleads.db-wal").read_bytes()
    rt.close()
    again = GalleryRuntime(settings, face_engine=engine)  # the first start after the upgrade
    try:
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM face_templates WHERE box IS NOT NULL OR landmarks IS NOT NULL"
                                " OR geometry IS NULL").fetchone()[0] == 0  # fmt: skip
        with again.session_factory() as session:
            for t, s, i in session.execute(
                select(FaceTemplate, Subject, Image).join(Subject, Subject.id == FaceTemplate.subject_id)
                .join(Image, Image.id == FaceTemplate.image_id)
            ):  # fmt: skip
                assert template_geometry(again.keystore, s, i, t) == before[t.id]
        files = [db, db.with_name("faceleads.db-wal")]
        assert not any(b"123.456789" in f.read_bytes() for f in files if f.exists()), "clear values linger"
    finally:
        again.close()
