"""Single-record enrolment and search: records, consolidation, recording, validation, agency isolation."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from faceleads.casework.quick import quick_search
from faceleads.cli.context import cli_actor
from faceleads.config import ScoreFusion
from faceleads.core.actor import Actor, Role
from faceleads.core.audit import AuditEntry
from faceleads.db import utcnow
from faceleads.errors import ImageError, NoFaceError, PermissionDenied, ValidationError
from faceleads.gallery.enrolment import EnrolmentConflict, enrol_record
from faceleads.gallery.galleries import create_gallery, revoke_share, share_gallery
from faceleads.gallery.models import FaceTemplate, Image, SearchCandidate, SearchRecord, Subject
from faceleads.gallery.search import rank_subjects
from tests.gallery.conftest import lfw_identities, record
from tests.lawful import LEGAL_BASIS, register_case, search_on_case

PEOPLE = lfw_identities()
SEARCH = {"case": "OCC-2024-0001", "offence": "ROB", "reason": "street robbery, CCTV still"}


def _enrol_people(rt, actor, names, photos_each=1, gallery=None):  # type: ignore[no-untyped-def]
    for i, name in enumerate(names):
        enrol_record(rt, actor, record(name, f"{actor.agency_code}-{i}", gallery=gallery), PEOPLE[name][:photos_each])


def test_record_enrolment_and_consolidated_search(rt) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    target = "Abdullah_Gul"  # 3 photos
    others = ["AJ_Cook", "Aaron_Peirsol", "Ai_Sugiyama", "Adam_Sandler", "Abel_Pacheco"]
    _enrol_people(rt, actor, others)
    # Two encounters of the target over the years, with two photos in the first one.
    first = enrol_record(rt, actor, record(target, "MET-T1", date(2019, 1, 2), charge="theft"), PEOPLE[target][:2])
    assert [p.status for p in first.photos] == ["enrolled", "enrolled"]
    enrol_record(rt, actor, record(target, "MET-T2", date(2022, 3, 4)), [PEOPLE[target][2]])
    probe = PEOPLE[target][1]

    result = search_on_case(rt, actor, probe, **SEARCH, top=5)
    assert result.candidates[0].subject_number == target
    subjects = [c.subject_id for c in result.candidates]
    assert len(subjects) == len(set(subjects)), "each subject appears once"
    top = result.candidates[0]
    assert top.score > 0.99  # the probe photo itself is in the gallery
    assert top.booking_number == "MET-T1"
    assert len(top.other_image_ids) == 2
    assert [c.rank for c in result.candidates] == list(range(1, len(result.candidates) + 1))
    assert all(a.score >= b.score for a, b in zip(result.candidates, result.candidates[1:], strict=False))
    assert result.gallery_size == len(others) + 3

    with rt.session_factory() as session:
        stored = session.get(SearchRecord, result.search_id)
        assert stored is not None
        assert (stored.case_number, stored.offence_code, stored.reason) == (
            SEARCH["case"],
            SEARCH["offence"],
            SEARCH["reason"],
        )
        assert stored.k == 5 and stored.gallery_size == result.gallery_size
        assert stored.model_version == rt.model_version
        rows = session.scalars(
            select(SearchCandidate).where(SearchCandidate.search_id == stored.id).order_by(SearchCandidate.rank)
        ).all()
        assert [(r.rank, r.subject_id, r.image_id) for r in rows] == [
            (c.rank, c.subject_id, c.image_id) for c in result.candidates
        ]
        # The probe is never enrolled: its hash is recorded, no image row has it beyond the gallery's own copy.
        assert stored.probe_sha256 == result.probe_sha256
        assert session.scalar(select(func.count()).select_from(Image)) == len(others) + 3
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "search")).one()
        assert entry.case_ref == SEARCH["case"]
        assert entry.object_ref == f"search:{stored.id}"


def test_probe_not_in_gallery_is_never_enrolled(rt) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    _enrol_people(rt, actor, ["Abdullah_Gul", "AJ_Cook"])
    with rt.session_factory() as session:
        before = session.scalar(select(func.count()).select_from(Image))
    result = search_on_case(rt, actor, PEOPLE["Abdullah_Gul"][2], **SEARCH, top=2)
    assert result.candidates[0].subject_number == "Abdullah_Gul"
    with rt.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Image)) == before
        assert session.scalar(select(func.count()).select_from(Image).where(Image.sha256 == result.probe_sha256)) == 0


def test_score_fusion_mean_template_ranks_and_shows_best_photo(rt) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    enrol_record(rt, actor, record("Abdullah_Gul", "B1"), PEOPLE["Abdullah_Gul"][:2])
    _enrol_people(rt, actor, ["AJ_Cook", "Aaron_Peirsol"])
    probe = rt.face_engine.detect(
        __import__("faceleads.vision.imaging", fromlist=["load_image"]).load_image(PEOPLE["Abdullah_Gul"][2]).pixels,
        embed=True,
    )[0].embedding
    with rt.session_factory() as session:
        galleries = sorted(set(session.scalars(select(FaceTemplate.gallery_id))))
    best = rank_subjects(rt, probe, galleries, 3, fusion=ScoreFusion.BEST)
    fused = rank_subjects(rt, probe, galleries, 3, fusion=ScoreFusion.MEAN_TEMPLATE)
    assert best[0].subject_id == fused[0].subject_id
    assert {r.subject_id for r in best} == {r.subject_id for r in fused}
    # The fused score differs from the best single photo's, but the photo shown is the best-matching one.
    assert fused[0].template_id == best[0].template_id
    assert fused[0].score != pytest.approx(best[0].score, abs=1e-4)


@pytest.mark.parametrize("top", [1, 51, 0])
def test_candidate_list_length_is_2_to_50(rt, top) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    with pytest.raises(ValidationError, match="between 2 and 50"):
        search_on_case(rt, actor, PEOPLE["AJ_Cook"][0], **SEARCH, top=top)


def test_search_needs_justification_and_a_face(rt, tmp_path) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    with pytest.raises(ValidationError, match="reason"):
        search_on_case(rt, actor, PEOPLE["AJ_Cook"][0], case="C1", offence="ROB", reason="  ")
    with pytest.raises(ImageError, match="does not exist"):
        search_on_case(rt, actor, tmp_path / "missing.jpg", **SEARCH)
    blank = tmp_path / "blank.png"
    from PIL import Image as PILImage

    PILImage.new("RGB", (200, 200), (120, 130, 140)).save(blank)
    with pytest.raises(NoFaceError):
        search_on_case(rt, actor, blank, **SEARCH)
    with pytest.raises(ValidationError, match="face must be between 1 and 1"):
        search_on_case(rt, actor, PEOPLE["AJ_Cook"][0], **SEARCH, face=2)


def test_search_uses_the_case_offence_and_the_administered_purposes(rt) -> None:  # type: ignore[no-untyped-def]
    from faceleads.casework import cases

    actor = cli_actor(rt, "MET")
    _enrol_people(rt, actor, ["Al_Gore"])
    probe = PEOPLE["Al_Gore"][1]
    search_on_case(rt, actor, probe, **SEARCH)  # the case's offence, an administered purpose
    # A case can only be opened for an offence on the agency's approved list ...
    with pytest.raises(ValidationError, match="approved offence list"):
        cases.open_case(rt, actor, "OCC-LITTER", "LITTER", "dropped litter")
    # ... and a search on it is for the case's offence, not another one.
    with pytest.raises(ValidationError, match="is for offence 'ROB', not 'LITTER'"):
        quick_search(rt, actor, SEARCH["case"], probe, reason="x", legal_basis=LEGAL_BASIS, offence="LITTER")
    with pytest.raises(ValidationError, match="not on the list of purposes"):
        quick_search(rt, actor, SEARCH["case"], probe, reason="x", legal_basis=LEGAL_BASIS, purpose="curiosity")


def test_score_floor_drops_weak_candidates(rt) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    _enrol_people(rt, actor, ["Abdullah_Gul", "AJ_Cook", "Aaron_Peirsol", "Ai_Sugiyama"])
    result = search_on_case(rt, actor, PEOPLE["Abdullah_Gul"][1], **SEARCH, floor=0.4)
    assert [c.subject_number for c in result.candidates] == ["Abdullah_Gul"]
    assert all(c.score >= 0.4 for c in result.candidates)


def test_policy_refuses_roles_without_the_right(rt) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    auditor = Actor("aud", actor.agency_id, frozenset({Role.AUDITOR}), 7, "MET")
    with pytest.raises(PermissionDenied):
        search_on_case(rt, auditor, PEOPLE["AJ_Cook"][0], **SEARCH)
    with pytest.raises(PermissionDenied):
        enrol_record(rt, auditor, record("S", "B"), [PEOPLE["AJ_Cook"][0]])


def test_conflicting_booking_and_idempotent_record(rt) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    enrol_record(rt, actor, record("S1", "B1"), [PEOPLE["AJ_Cook"][0]])
    again = enrol_record(rt, actor, record("S1", "B1"), [PEOPLE["AJ_Cook"][0]])
    assert [p.status for p in again.photos] == ["skipped"]
    with pytest.raises(EnrolmentConflict, match="duplicate booking number 'B1'"):
        enrol_record(rt, actor, record("S2", "B1"), [PEOPLE["Aaron_Peirsol"][0]])
    with pytest.raises(EnrolmentConflict, match="already enrolled in gallery"):
        enrol_record(rt, actor, record("S3", "B3"), [PEOPLE["AJ_Cook"][0]])
    with rt.session_factory() as session:
        # The refused records left nothing behind (one transaction per record).
        assert session.scalar(select(func.count()).select_from(Subject)) == 1
        assert session.scalar(select(func.count()).select_from(Image)) == 1
    # ... and no orphan blob either: conflicts are found before anything is written to the store.
    assert set(rt.store.addresses()) == {_address(rt)}


def _address(rt) -> str:  # type: ignore[no-untyped-def]
    with rt.session_factory() as session:
        return session.scalars(select(Image.store_address)).one()


def test_agency_isolation_and_sharing(rt) -> None:  # type: ignore[no-untyped-def]
    a = cli_actor(rt, "AGA")
    b = cli_actor(rt, "AGB")
    target = "Abdullah_Gul"
    _enrol_people(rt, a, [target, "AJ_Cook"])
    _enrol_people(rt, b, ["Aaron_Peirsol", "Ai_Sugiyama"])
    probe = PEOPLE[target][1]

    def subjects_seen_by_b(**kw: object) -> set[str]:
        result = search_on_case(rt, b, probe, **SEARCH, **kw)  # type: ignore[arg-type]
        return {c.subject_number for c in result.candidates}

    assert target not in subjects_seen_by_b(), "agency B never sees A's unshared gallery"
    today = utcnow().date()
    # A share for another purpose does not open the gallery for B's investigation searches.
    share_gallery(rt, a, "bookings", "AGB", ["missing-person"], today - timedelta(days=3))
    assert target not in subjects_seen_by_b()
    # A share whose end date has passed is over.
    share_gallery(
        rt,
        a,
        "bookings",
        "AGB",
        ["criminal-investigation"],
        today - timedelta(days=30),
        today - timedelta(days=1),
    )
    assert target not in subjects_seen_by_b()
    # A share that starts tomorrow is not active yet.
    share_gallery(rt, a, "bookings", "AGB", ["criminal-investigation"], today + timedelta(days=1))
    assert target not in subjects_seen_by_b()
    share_id = share_gallery(rt, a, "bookings", "AGB", ["criminal-investigation"], today, today + timedelta(days=30))
    seen = subjects_seen_by_b()
    assert target in seen and "AJ_Cook" in seen
    # B can search A's gallery only for the shared purpose: for another one (none of B's galleries is held for it
    # either) the search is refused.
    with pytest.raises(PermissionDenied, match="no gallery may be searched for purpose 'other'"):
        search_on_case(rt, b, probe, **SEARCH, purpose="other")
    revoke_share(rt, a, share_id)
    assert target not in subjects_seen_by_b()
    # A never sees B's gallery (nothing was shared that way).
    result = search_on_case(rt, a, PEOPLE["Aaron_Peirsol"][1], **SEARCH)
    assert "Aaron_Peirsol" not in {c.subject_number for c in result.candidates}


def test_named_gallery_and_cross_agency_enrolment_refused(rt) -> None:  # type: ignore[no-untyped-def]
    a = cli_actor(rt, "AGA")
    with pytest.raises(Exception, match="unknown gallery"):
        enrol_record(rt, a, record("S1", "B1", gallery="custody"), [PEOPLE["AJ_Cook"][0]])
    create_gallery(rt, a, "custody", "Custody Act s.1", ["criminal-investigation"])
    enrol_record(rt, a, record("S1", "B1", gallery="custody"), [PEOPLE["AJ_Cook"][0]])
    result = search_on_case(rt, a, PEOPLE["AJ_Cook"][0], **SEARCH, top=2)
    assert result.candidates[0].subject_number == "S1"


def test_search_cli_json(rt, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from faceleads.cli import context
    from faceleads.cli.main import app

    actor = cli_actor(rt, "DEV")
    _enrol_people(rt, actor, ["Abdullah_Gul", "AJ_Cook", "Aaron_Peirsol"])
    register_case(rt, actor, "C-9", "BUR")
    monkeypatch.setattr(context, "_runtime", rt)
    runner = CliRunner()
    args = ["search", str(PEOPLE["Abdullah_Gul"][2]), "--case", "C-9", "--offence", "BUR", "--reason",
            "burglary suspect", "--legal-basis", LEGAL_BASIS]  # fmt: skip
    out = runner.invoke(app, [*args, "--top", "2", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [c["rank"] for c in data["candidates"]] == [1, 2]
    first = data["candidates"][0]
    assert first["subject_number"] == "Abdullah_Gul"
    assert {"rank", "subject_id", "encounter_id", "image_id", "score"} <= set(first)
    # The candidates landed in the case's adjudication flow.
    assert data["occurrence_number"] == "C-9" and data["status"] == "adjudicating" and data["case_search_id"] >= 1
    refused = runner.invoke(app, [*args, "--top", "60"])
    assert refused.exit_code == 2
    assert "between 2 and 50" in refused.output


def test_search_cli_without_an_open_case_stores_only_the_refusal(rt, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from faceleads.casework.models import Case, Evidence
    from faceleads.cli import context
    from faceleads.cli.main import app

    actor = cli_actor(rt, "DEV")
    _enrol_people(rt, actor, ["Abdullah_Gul", "AJ_Cook"])
    monkeypatch.setattr(context, "_runtime", rt)
    with rt.session_factory() as session:
        before = session.scalar(select(func.max(AuditEntry.seq))) or 0
    out = CliRunner().invoke(app, ["search", str(PEOPLE["Abdullah_Gul"][2]), "--case", "FAKE-999", "--offence",
                                   "THEFT", "--reason", "curious"])  # fmt: skip
    assert out.exit_code == 2, out.output
    assert "'FAKE-999' is not a case of DEV" in " ".join(out.output.split())
    with rt.session_factory() as session:
        for table in (SearchRecord, Case, Evidence):
            assert session.scalar(select(func.count()).select_from(table)) == 0
        new = session.scalars(select(AuditEntry).where(AuditEntry.seq > before)).all()
        assert [(e.action, e.outcome, e.case_ref) for e in new] == [("search", "denied", "FAKE-999")]
