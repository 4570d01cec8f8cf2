"""The whole casework flow with real faces and real models, and its refusals."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from faceleads.casework import adjudication as adj
from faceleads.casework import cases, probes, reporting, retention, searching
from faceleads.casework.models import Case, Evidence, LeadReport, Probe
from faceleads.casework.report import DISCLAIMER
from faceleads.core.actor import Actor, Role
from faceleads.core.audit import AuditEntry, verify_chain
from faceleads.errors import KeyDestroyedError, NoFaceError, NotFound, PermissionDenied, ValidationError
from faceleads.gallery.models import Image, SearchCandidate
from tests.casework.conftest import CI, EXIGENT, VICTIM, Env, actor_of, side_by_side

OBTAINED = datetime(2026, 1, 5, 22, 10, tzinfo=UTC)


def intake(env: Env, case_id: int, data: bytes) -> int:
    return probes.add_photo(env.rt, env.investigator, case_id, data, source="CCTV still, camera 3, Esso Mile End",
                            obtained_by="PC 123 Smith", obtained_at=OBTAINED,
                            legal_basis="PACE s.19 seizure", filename="still.jpg").id


def nearest_face(choices: list[probes.FaceChoice], x: float, y: float) -> int:
    def dist(c: probes.FaceChoice) -> float:
        cx, cy = (c.box[0] + c.box[2]) / 2, (c.box[1] + c.box[3]) / 2
        return (cx - x) ** 2 + (cy - y) ** 2

    return min(choices, key=dist).index


def test_case_to_report_with_blind_verification_and_supervisor_resolution(env: Env) -> None:
    rt = env.rt
    names = list(env.people)
    target, other = names[0], names[1]
    case = cases.open_case(rt, env.investigator, "MET/2026/0001", "ROB",
                           "Armed robbery at a petrol station; suspect on CCTV")
    assert case.offence_category == "serious" and case.retention_until > case.opened_at + timedelta(days=3000)
    request = cases.open_request(rt, env.investigator, case.id, CI, "Identify the robber seen on camera 3")
    assert request.status == "ready"

    # A probe with several faces: the analyst picks the target, on an enhanced (non-destructively edited) copy.
    composite = side_by_side(env.people[target][1], env.people[other][1])
    probe_id = intake(env, case.id, composite)
    info = probes.show_probe(rt, env.analyst, probe_id)
    assert info.evidence_sha256 == hashlib.sha256(composite).hexdigest() and not info.searchable
    faces = probes.detect_faces(rt, env.analyst, probe_id)
    assert len(faces) >= 2
    left = nearest_face(faces, 145, 145)
    probes.pick_face(rt, env.analyst, probe_id, left)
    edited = probes.set_edits(rt, env.analyst, probe_id, [{"op": "gamma", "gamma": 1.2},
                                                          {"op": "sharpen", "amount": 0.5}])
    assert edited.face_index is None and not edited.searchable  # re-editing clears the face choice
    info = probes.pick_face(rt, env.analyst, probe_id, nearest_face(probes.detect_faces(rt, env.analyst, probe_id),
                                                                    145, 145))
    assert info.searchable and info.faces_found is not None and info.faces_found >= 2
    assert info.edits_described.startswith("gamma(gamma=1.2) -> sharpen(")
    assert len(probes.edit_history(rt, env.analyst, probe_id)) == 1
    # The original evidence is stored unchanged (encrypted) and still readable as it came in.
    original_png = probes.probe_image(rt, env.analyst, probe_id, edited=False)
    edited_png = probes.probe_image(rt, env.analyst, probe_id, edited=True)
    assert original_png != edited_png

    # The analyst may also draw a box where the detector "missed" the face: landmarks are found inside it.
    boxed = probes.draw_box(rt, env.analyst, probe_id, [270, 0, 560, 290])
    assert boxed.face_source == "drawn" and boxed.quality is not None
    probes.pick_face(rt, env.analyst, probe_id, nearest_face(probes.detect_faces(rt, env.analyst, probe_id),
                                                             145, 145))

    result = searching.run_search(rt, env.analyst, request.id, [probe_id], top=5)
    cands = result.result["candidates"]
    assert len(cands) == 5
    assert cands[0]["subject_id"] == env.subjects[target]
    assert result.probes_used[0]["edits_described"].startswith("gamma")

    # Adjudication: every candidate must be marked before submitting.
    adj.adjudicate(rt, env.analyst, result.id, 1, "possible_lead", "Same ear shape and hairline",
                   {"ears": "similar", "hairline": "similar", "scars_marks_tattoos": "not_visible"})
    adj.adjudicate(rt, env.analyst, result.id, 2, "possible_lead", "Similar nose; worth a second look")
    with pytest.raises(ValidationError, match=r"unmarked rank\(s\): 3, 4, 5"):
        adj.submit_adjudication(rt, env.analyst, result.id)
    for rank in (3, 4, 5):
        adj.adjudicate(rt, env.analyst, result.id, rank, "excluded", "Different face shape")
    with pytest.raises(PermissionDenied, match="only the analyst who ran"):
        adj.adjudicate(rt, env.reviewer, result.id, 3, "inconclusive", "x")
    leads = adj.submit_adjudication(rt, env.analyst, result.id)
    assert [lead.status for lead in leads] == ["awaiting_verification"] * 2
    lead1, lead2 = leads[0].id, leads[1].id
    with pytest.raises(ValidationError, match="already submitted"):
        adj.adjudicate(rt, env.analyst, result.id, 3, "inconclusive", "changed my mind")

    # Blind verification by a different analyst, who never sees the first conclusion.
    with pytest.raises(PermissionDenied, match="different analyst"):
        adj.verification_task(rt, env.analyst, lead1)
    with pytest.raises(PermissionDenied, match="different analyst"):
        adj.verify_lead(rt, env.analyst, lead1, "agree", "my own lead")
    assert adj.verification_queue(rt, env.analyst) == []
    assert adj.verification_queue(rt, env.reviewer) == [lead1, lead2]
    task = adj.verification_task(rt, env.reviewer, lead1)
    shown = str(task.to_json())
    assert "possible_lead" not in shown and "ear shape" not in shown and "hairline" not in shown
    assert task.subject_number and task.probes[0]["probe_id"] == probe_id
    assert adj.candidate_photo(rt, env.reviewer, task.candidate_id).startswith(b"\x89PNG")  # side by side
    with pytest.raises(PermissionDenied):
        adj.candidate_photo(rt, env.investigator, task.candidate_id)
    # While a destruction is under way (status marked before the key is shredded) the photo is never shown.
    from faceleads.core.uow import transaction
    from faceleads.gallery.models import Subject

    with transaction(rt.session_factory) as session:
        candidate = session.get(SearchCandidate, task.candidate_id)
        assert candidate is not None
        subject = session.get(Subject, candidate.subject_id)
        assert subject is not None
        subject.status = "destroying"
    with pytest.raises(NotFound, match="no longer held"):
        adj.candidate_photo(rt, env.reviewer, task.candidate_id)
    with transaction(rt.session_factory) as session:
        subject = session.get(Subject, candidate.subject_id)
        assert subject is not None
        subject.status = "active"
    with pytest.raises(PermissionDenied, match="only a verified lead"):
        adj.release_lead(rt, env.analyst, lead1)  # not yet verified
    assert adj.verify_lead(rt, env.reviewer, lead1, "agree", "Consistent features").status == "verified"
    assert adj.verify_lead(rt, env.reviewer, lead2, "disagree", "Different eyebrows").status == "disputed"
    with pytest.raises(PermissionDenied, match="only a verified lead"):
        adj.release_lead(rt, env.analyst, lead2)
    with pytest.raises(PermissionDenied):
        adj.resolve_disagreement(rt, env.analyst, lead2, "verified", "analyst may not decide")
    # Another analyst (a potential verifier) sees the candidate list without the first analyst's marks.
    assert all(c.conclusion is None and c.notes is None for c in adj.candidate_list(rt, env.reviewer, result.id))
    assert adj.candidate_list(rt, env.analyst, result.id)[0].notes == "Same ear shape and hairline"
    review = adj.disagreement_view(rt, env.supervisor, lead2)
    assert review["analyst"]["conclusion"] == "possible_lead" and review["verifier"]["result"] == "disagree"
    with pytest.raises(PermissionDenied):
        adj.disagreement_view(rt, env.reviewer, lead2)
    decided = adj.resolve_disagreement(rt, env.supervisor, lead2, "rejected", "Eyebrow shape clearly differs")
    assert decided.status == "rejected" and decided.supervisor == env.supervisor.username
    with pytest.raises(PermissionDenied, match="only a verified lead"):
        adj.release_lead(rt, env.supervisor, lead2)
    released = adj.release_lead(rt, env.analyst, lead1)
    assert released.status == "released" and released.released_by == env.analyst.username

    # The lead report: parses, states the disclaimer, the case, the edits and the model; its hash is recorded.
    export = reporting.export_report(rt, env.analyst, result.id)
    assert export.lead_ids == [lead1]
    assert export.sha256 == hashlib.sha256(export.pdf).hexdigest()
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(export.pdf)).pages)
    flat = " ".join(text.split())
    assert DISCLAIMER in flat
    for needle in ("MET/2026/0001", "ROB - Robbery", CI, "gamma(gamma=1.2)", rt.model_version,
                   env.reviewer.username, "templates searched"):
        assert needle in flat, needle
    assert info.evidence_sha256 in "".join(text.split())  # long hashes wrap inside their table cell
    with rt.session_factory() as session:
        row = session.scalars(select(LeadReport).where(LeadReport.id == export.report_id)).one()
        assert row.sha256 == export.sha256
        actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
        details = " ".join(e.details_json for e in session.scalars(select(AuditEntry)))
        # The stored candidate list is unchanged by adjudication.
        assert len(session.scalars(select(SearchCandidate).where(
            SearchCandidate.search_id == result.search_id)).all()) == 5
        assert verify_chain(session).ok
        # Probes are never enrolled: the gallery still holds exactly the enrolled booking photos.
        assert session.scalar(select(func.count(Image.id))) == len(env.subjects)
    for action in ("case_open", "evidence_add", "probe_edit", "search", "conclusion", "verification",
                   "lead_decision", "release", "export", "view_probe_image", "view_verification"):
        assert action in actions, action
    assert export.sha256 in details
    # The investigator receives the released lead(s) only; a records officer gets no report at all.
    received = reporting.export_report(rt, env.investigator, result.id)
    assert received.lead_ids == [lead1] and received.sha256 != export.sha256
    with pytest.raises(PermissionDenied):
        reporting.export_report(rt, env.records, result.id)


def test_refusals(env: Env) -> None:
    rt = env.rt
    names = list(env.people)
    # Missing or wrong case data.
    with pytest.raises(ValidationError, match="justification is required"):
        cases.open_case(rt, env.investigator, "MET/2026/0100", "ROB", "  ")
    with pytest.raises(ValidationError, match="approved offence list"):
        cases.open_case(rt, env.investigator, "MET/2026/0100", "MURDER-UNLISTED", "reason")
    case_id = env.fresh_case("MET/2026/0100")
    with pytest.raises(ValidationError, match="already used"):
        env.fresh_case("MET/2026/0100")
    with pytest.raises(ValidationError, match="justification is required"):
        cases.open_request(rt, env.investigator, case_id, CI, "")
    with pytest.raises(ValidationError, match="when the evidence was obtained"):
        probes.add_photo(rt, env.investigator, case_id, env.people[names[2]][1].read_bytes(), source="x",
                         obtained_by="y", obtained_at=None, legal_basis="z")
    probe_id = intake(env, case_id, env.people[names[2]][1].read_bytes())

    # A probe without a chosen face cannot be searched.
    ready = cases.open_request(rt, env.investigator, case_id, CI, "Identify the suspect")
    with pytest.raises(ValidationError, match="no face chosen"):
        searching.run_search(rt, env.analyst, ready.id, [probe_id])
    probes.pick_face(rt, env.analyst, probe_id, 1)

    # A purpose no gallery may be searched for.
    victim = cases.open_request(rt, env.investigator, case_id, VICTIM, "Identify a victim")
    cases.authorise_request(rt, env.supervisor, victim.id, "Child at risk")
    with pytest.raises(PermissionDenied, match="no gallery may be searched for purpose"):
        searching.run_search(rt, env.analyst, victim.id, [probe_id])

    # A purpose that needs a supervisor's authorisation first; the supervisor's decision is recorded.
    exigent = cases.open_request(rt, env.investigator, case_id, EXIGENT, "Kidnapping in progress")
    assert exigent.status == "awaiting_authorisation"
    with pytest.raises(PermissionDenied, match="requires a supervisor's authorisation"):
        searching.run_search(rt, env.analyst, exigent.id, [probe_id])
    with pytest.raises(PermissionDenied):
        cases.authorise_request(rt, env.analyst, exigent.id, "analysts cannot authorise")
    granted = cases.authorise_request(rt, env.supervisor, exigent.id, "Credible threat to life, DI Jones")
    assert granted.status == "ready" and granted.authorisation is not None
    assert "sue.supervisor" in granted.authorisation and "Credible threat" in granted.authorisation
    assert searching.run_search(rt, env.analyst, exigent.id, [probe_id], top=3).result["candidates"]

    # An analyst whose certification expired: the role is gone at sign-in, and a stale actor is refused too.
    expired = actor_of(rt.session_factory, env.expired_user_id)
    assert Role.ANALYST not in expired.roles
    with pytest.raises(PermissionDenied):
        searching.run_search(rt, expired, ready.id, [probe_id])
    stale = Actor(expired.username, expired.agency_id, frozenset({Role.ANALYST}), expired.user_id, "MET")
    with pytest.raises(PermissionDenied, match="certification"):
        searching.run_search(rt, stale, ready.id, [probe_id])

    # Investigators request; they do not search, adjudicate or release.
    with pytest.raises(PermissionDenied):
        searching.run_search(rt, env.investigator, ready.id, [probe_id])

    # Quality below the floor needs a supervisor's recorded override.
    floor = rt.settings.quality_floor
    rt.settings.quality_floor = 0.999
    try:
        with pytest.raises(PermissionDenied, match="below the floor"):
            searching.run_search(rt, env.analyst, ready.id, [probe_id])
        with pytest.raises(PermissionDenied):
            probes.override_quality(rt, env.analyst, probe_id, "analysts cannot override")
        info = probes.override_quality(rt, env.supervisor, probe_id, "Only image of the suspect")
        assert info.searchable and info.quality_override and "Only image" in info.quality_override
        done = searching.run_search(rt, env.analyst, ready.id, [probe_id], top=3)
        assert done.result["candidates"]
    finally:
        rt.settings.quality_floor = floor

    # Bad boxes and bad face numbers.
    with pytest.raises(ValidationError, match="x2 > x1"):
        probes.draw_box(rt, env.analyst, probe_id, [50, 50, 10, 10])
    with pytest.raises(ValidationError, match="face must be between 1 and"):
        probes.pick_face(rt, env.analyst, probe_id, 9)
    with pytest.raises(NoFaceError):
        probes.draw_box(rt, env.analyst, probe_id, [0, 0, 40, 40])  # a corner of background
    with pytest.raises(ValidationError, match="crop"):
        probes.set_edits(rt, env.analyst, probe_id, [{"op": "crop", "x": 200, "y": 200, "width": 100,
                                                      "height": 100}])

    # Submitting is refused while candidates are unmarked; a lead cannot be released before verification.
    with pytest.raises(ValidationError, match="unmarked"):
        adj.submit_adjudication(rt, env.analyst, done.id)
    for rank in range(1, len(done.result["candidates"]) + 1):
        adj.adjudicate(rt, env.analyst, done.id, rank, "possible_lead" if rank == 1 else "inconclusive", "notes")
    with pytest.raises(ValidationError, match="checklist"):
        adj.adjudicate(rt, env.analyst, done.id, 1, "possible_lead", "n", {"knees": "similar"})
    (lead,) = adj.submit_adjudication(rt, env.analyst, done.id)
    with pytest.raises(PermissionDenied, match="only a verified lead"):
        adj.release_lead(rt, env.analyst, lead.id)
    with pytest.raises(ValidationError, match="no verified lead"):
        reporting.export_report(rt, env.analyst, done.id)


def test_retention_purges_expired_cases_by_offence_category(env: Env) -> None:
    rt = env.rt
    names = list(env.people)
    keep = env.fresh_case("MET/2026/0200", "ROB")  # serious: ten years
    purge = env.fresh_case("MET/2026/0201", "SHOP")  # minor: two years
    kept_probe = intake(env, keep, env.people[names[3]][1].read_bytes())
    purged_probe = intake(env, purge, env.people[names[3]][2].read_bytes())
    probes.pick_face(rt, env.analyst, purged_probe, 1)
    with pytest.raises(PermissionDenied):
        retention.run_retention(rt, env.analyst)
    later = datetime.now(UTC) + timedelta(days=3 * 365)
    dry = retention.run_retention(rt, env.records, now=later, dry_run=True)
    assert "MET/2026/0201" in dry.cases and "MET/2026/0200" not in dry.cases and dry.run_id is None
    report = retention.run_retention(rt, env.records, now=later)
    assert "MET/2026/0201" in report.cases and "MET/2026/0200" not in report.cases
    assert report.blobs_deleted >= 1 and report.run_id is not None
    with rt.session_factory() as session:
        purged = session.get(Case, purge)
        assert purged is not None and purged.status == "purged"
        assert rt.keystore.is_destroyed(purged.key_id)
        ev = session.scalars(select(Evidence).where(Evidence.case_id == purge)).one()
        assert ev.store_address is None and ev.purged_at is not None
        probe = session.get(Probe, purged_probe)
        assert probe is not None and probe.template is None
    with pytest.raises((NotFound, KeyDestroyedError)):
        probes.probe_image(rt, env.analyst, purged_probe)
    assert probes.probe_image(rt, env.analyst, kept_probe)  # the serious case is untouched
    again = retention.run_retention(rt, env.records, now=later)
    assert "MET/2026/0201" not in again.cases


def test_bulk_orphan_sweep_keeps_case_evidence(env: Env) -> None:
    """The bulk-enrolment orphan sweep shares the blob store with casework and must never take evidence."""
    from faceleads.gallery.bulk import sweep_orphans

    case_id = env.fresh_case("OCC-SWEEP-1")
    probe_id = intake(env, case_id, side_by_side(*env.people[next(iter(env.people))][:2]))
    with env.rt.session_factory() as session:
        probe = session.get(Probe, probe_id)
        assert probe is not None
        evidence = session.get(Evidence, probe.evidence_id)
        assert evidence is not None and evidence.store_address
        address = evidence.store_address
    env.rt.keystore.create("subject:stray-test-key")
    stray = env.rt.store.put("subject:stray-test-key", b"never committed", "image:stray")
    sweep_orphans(env.rt)
    assert env.rt.store.exists(address)
    assert not env.rt.store.exists(stray)
