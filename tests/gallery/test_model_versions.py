"""Template versions in the gallery: stale templates are detected and not searched, reindex adds a second
recognition model by computing only that model, and drops it again without computing anything; small old booking
photos are enrolled through the detection fallbacks and record the path that found their face."""

from __future__ import annotations

import base64

from sqlalchemy import select, update

from faceleads.cli.context import cli_actor
from faceleads.config import Settings
from faceleads.evaluation.degrade import cctv_probe, lfw_split
from faceleads.gallery.enrolment import enrol_record
from faceleads.gallery.geometry import Geometry, template_geometry
from faceleads.gallery.models import FaceTemplate, Image, Subject
from faceleads.gallery.reindex import reindex, stale_templates
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.vision.engine import FaceEngine
from faceleads.vision.imaging import encode_png, load_image
from tests.gallery.conftest import lfw_identities, record
from tests.lawful import search_on_case

PEOPLE = lfw_identities()
SEARCH = {"case": "OCC-9", "offence": "ROB", "reason": "robbery, shop camera"}
NAMES = ["Abdullah_Gul", "AJ_Cook", "Aaron_Peirsol"]


def test_reindex_adds_and_drops_a_recognition_model(rt: GalleryRuntime, settings: Settings) -> None:
    actor = cli_actor(rt, "MET")
    for i, name in enumerate(NAMES):
        enrol_record(rt, actor, record(name, f"B{i}"), [PEOPLE[name][0]])
    single_version = rt.model_version
    assert reindex(rt, actor, dry_run=True).candidates == 0

    fused_engine = FaceEngine(settings.model_copy(update={"recognizers": "arcface,edgeface"}))
    fused = GalleryRuntime(settings, face_engine=fused_engine)
    shapes = _geometries(rt)
    # One row as an installation from before hardening_1 left it (clear box and landmarks, not yet sealed).
    legacy_id = min(shapes)
    with rt.session_factory.begin() as session:
        session.execute(
            update(FaceTemplate).where(FaceTemplate.id == legacy_id)
            .values(geometry=None, box=shapes[legacy_id][0].box, landmarks=shapes[legacy_id][0].landmarks)
        )  # fmt: skip
    # The arcface-only templates are stale for the fused pipeline: counted, and not searched.
    assert stale_templates(fused, actor) == {single_version: 3}
    assert search_on_case(fused, actor, PEOPLE[NAMES[0]][1], **SEARCH).candidates == []
    report = reindex(fused, actor)
    edge_version = fused_engine.member_versions[1]
    assert (report.candidates, report.reembedded, report.failed) == (3, 3, 0)
    assert report.computed == {edge_version: 3} and report.reused == 3  # arcface templates reused, not recomputed
    with fused.session_factory() as session:
        rows = session.scalars(select(FaceTemplate)).all()
        assert {r.model_version for r in rows} == {fused.model_version}
        assert all(set(r.member_templates) == set(fused_engine.member_versions) for r in rows)
        blobs = [base64.b64decode(e["ciphertext"]) for r in rows for e in r.member_templates.values()]
        assert len(blobs) == 6 and all(b.startswith(b"FLE") for b in blobs)  # encrypted, never plain floats
        # The face geometry stays sealed (the legacy row sealed now), never in clear, and is the enrolled one.
        assert all(r.box is None and r.landmarks is None and r.geometry is not None for r in rows)
    assert {i: g for g, i in _geometries(fused).values()} == {i: g for g, i in shapes.values()}
    hit = search_on_case(fused, actor, PEOPLE[NAMES[0]][1], **SEARCH).candidates[0]
    assert hit.subject_number == NAMES[0] and hit.score > 0.4
    fused.verify_index()

    # Back to one model: its template comes out of the fused rows, nothing is computed.
    back = reindex(rt, actor)
    assert (back.reembedded, back.computed, back.reused) == (3, {}, 3)
    assert search_on_case(rt, actor, PEOPLE[NAMES[0]][1], **SEARCH).candidates[0].subject_number == NAMES[0]
    assert stale_templates(rt, actor) == {}
    fused.close()


def _geometries(rt: GalleryRuntime) -> dict[int, tuple[Geometry, int]]:
    """Template id -> (decrypted geometry, image id) of every template."""
    with rt.session_factory() as session:
        rows = session.execute(
            select(FaceTemplate, Subject, Image).join(Subject, Subject.id == FaceTemplate.subject_id)
            .join(Image, Image.id == FaceTemplate.image_id)
        ).all()  # fmt: skip
        return {t.id: (template_geometry(rt.keystore, s, i, t), i.id) for t, s, i in rows}


def test_small_old_booking_photo_is_enrolled_through_the_fallbacks(rt: GalleryRuntime, tmp_path, lfw_dir) -> None:  # type: ignore[no-untyped-def]
    """A small, poor photo (CCTV proxy probe 278, 42x32 px) is enrolled with the face the enlargement found."""
    actor = cli_actor(rt, "MET")
    name, source = lfw_split(lfw_dir)[1][278]
    photo = load_image(source).pixels
    face = rt.face_engine.detect(photo)[0]
    small, _, _ = cctv_probe(photo, face.box, face.landmarks, 15, 278)
    path = tmp_path / "old_booking.png"
    path.write_bytes(encode_png(small))
    enrol_record(rt, actor, record(name, "OLD-1"), [path])
    with rt.session_factory() as session:
        template = session.scalars(select(FaceTemplate)).one()
        image = session.scalars(select(Image)).one()
    assert template.found_by == "upscaled" and image.flags == []
    assert template.quality["path_factor"] < 1.0
    assert template.quality_overall < face.quality.overall
