"""Blind verification enforced in the domain: while a lead awaits verification, a potential verifier reaches
nothing of its search but the probe and the proposed candidate (every refusal audited); reason codes and the bulk
exclusion; the verifier's own conclusion and checklist; the supervisor's view of a dispute."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from faceleads.casework import adjudication as adj
from faceleads.casework import probes, quick, reporting, searching
from faceleads.casework.models import Lead
from faceleads.core.audit import AuditEntry
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from tests.casework.conftest import CI, Env

OBTAINED = datetime(2026, 1, 5, 22, 10, tzinfo=UTC)


def _denied_sealed(env: Env, since: int) -> list[AuditEntry]:
    with env.rt.session_factory() as session:
        return [e for e in session.scalars(select(AuditEntry).where(AuditEntry.seq > since))
                if e.outcome == "denied" and "sealed" in e.details_json]


def _head(env: Env) -> int:
    with env.rt.session_factory() as session:
        return max(session.scalars(select(AuditEntry.seq)).all() or [0])


def test_a_potential_verifier_reaches_nothing_of_the_search_but_the_task(env: Env) -> None:
    rt = env.rt
    target = next(iter(env.people))
    photo = env.people[target][1].read_bytes()
    case_id = env.fresh_case("BLIND-1")
    from faceleads.casework import cases

    request = cases.open_request(rt, env.investigator, case_id, CI, "identify the suspect", priority="urgent")
    probe = probes.add_photo(rt, env.investigator, case_id, photo, source="CCTV", obtained_by="PC 1",
                             obtained_at=OBTAINED, legal_basis="PACE s.19")  # fmt: skip
    probes.pick_face(rt, env.analyst, probe.id, 1)
    result = searching.run_search(rt, env.analyst, request.id, [probe.id], top=5)
    cs = result.id
    cands = adj.candidate_list(rt, env.analyst, cs)
    assert cands[0].subject_id == env.subjects[target]

    # Reason codes: a possible lead needs notes; a code must fit the conclusion; 'other' needs notes.
    with pytest.raises(ValidationError, match="possible lead needs notes"):
        adj.adjudicate(rt, env.analyst, cs, 1, "possible_lead", "", reason_code="features_consistent")
    with pytest.raises(ValidationError, match="does not fit"):
        adj.adjudicate(rt, env.analyst, cs, 2, "excluded", "", reason_code="features_consistent")
    with pytest.raises(ValidationError, match="reason 'other' needs notes"):
        adj.adjudicate(rt, env.analyst, cs, 2, "excluded", "", reason_code="other")
    adj.adjudicate(rt, env.analyst, cs, 1, "possible_lead", "ANALYST-SECRET-NOTE: same ear lobes",
                   {"ears": "similar", "nose": "similar"}, reason_code="features_consistent")
    adj.adjudicate(rt, env.analyst, cs, 2, "inconclusive", "", reason_code="pose")
    assert adj.exclude_remaining(rt, env.analyst, cs, "features_differ") == [3, 4, 5]
    with pytest.raises(ValidationError, match="nothing to exclude"):
        adj.exclude_remaining(rt, env.analyst, cs, "features_differ")
    marks = {c.rank: (c.conclusion, c.reason_code) for c in adj.candidate_list(rt, env.analyst, cs)}
    assert marks[3] == ("excluded", "features_differ") and marks[2] == ("inconclusive", "pose")
    (lead,) = adj.submit_adjudication(rt, env.analyst, cs)
    proposed = adj.candidate_list(rt, env.analyst, cs)[0]
    other = adj.candidate_list(rt, env.analyst, cs)[2]

    # The reviewer is a potential verifier: every way into the search is refused, and each refusal is audited.
    before = _head(env)
    reviewer = env.reviewer
    attempts = {
        "candidate list": lambda: adj.candidate_list(rt, reviewer, cs),
        "case search": lambda: searching.show_case_search(rt, reviewer, cs),
        "search record": lambda: searching.show_search(rt, reviewer, result.search_id),
        "lead state": lambda: adj.show_lead(rt, reviewer, lead.id),
        "another candidate's photo": lambda: adj.candidate_photo(rt, reviewer, other.candidate_id),
        "lead report": lambda: reporting.export_report(rt, reviewer, cs),
        "search again with the same probe": lambda: searching.run_search(rt, reviewer, request.id, [probe.id]),
        "quick search with the same photo": lambda: quick.quick_search(
            rt, reviewer, "BLIND-1", photo, reason="curious", legal_basis="PACE"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(PermissionDenied, match=r"sealed|blind verification") as refused:
            attempt()
        assert "ANALYST-SECRET" not in str(refused.value), what
    assert len(_denied_sealed(env, before)) >= len(attempts)
    assert adj.list_leads(rt, reviewer, case_id) == []
    assert searching.list_case_searches(rt, reviewer, case_id)[0] == {"id": cs, "sealed": True}
    # The analyst who ran it, and a supervisor (no verify right), still see it.
    assert [x.id for x in adj.list_leads(rt, env.analyst, case_id)] == [lead.id]
    assert adj.list_leads(rt, env.supervisor, case_id)[0].status == "awaiting_verification"

    # What the verifier does get: the probe as searched and the proposed candidate with all their photos.
    (item,) = [i for i in adj.verification_items(rt, reviewer) if i.lead_id == lead.id]
    assert item.case_occurrence == "BLIND-1" and item.priority == "urgent"
    task = adj.verification_task(rt, reviewer, lead.id)
    shown = str(task.to_json())
    for hidden in ("ANALYST-SECRET", "possible_lead", "features_consistent", "'rank'", "'score'", env.analyst.username):
        assert hidden not in shown, hidden
    assert task.subject_id == env.subjects[target] and task.photos and task.photos[0].landmarks
    assert task.probes[0]["landmarks"] is not None
    assert adj.candidate_photo(rt, reviewer, proposed.candidate_id).startswith(b"\x89PNG")
    body, media = adj.lead_photo(rt, reviewer, lead.id, task.image_id)
    assert media == "image/jpeg" and body[:2] == b"\xff\xd8"
    with pytest.raises(NotFound):
        adj.lead_photo(rt, reviewer, lead.id, other.image_id)  # not a photo of this lead's candidate
    with pytest.raises(PermissionDenied):
        adj.lead_photo(rt, env.investigator, lead.id, task.image_id)
    with pytest.raises(PermissionDenied, match="different analyst"):
        adj.lead_photo(rt, env.analyst, lead.id, task.image_id)
    with rt.session_factory() as session:
        row = session.get(Lead, lead.id)
        assert row is not None and row.verification_started_at is not None

    # The verifier concludes on the same scale, with their own checklist: excluded -> disputed.
    with pytest.raises(ValidationError, match="give your conclusion"):
        adj.verify_lead(rt, reviewer, lead.id, "maybe", "n")
    done = adj.verify_lead(rt, reviewer, lead.id, "excluded", "ears differ on close look",
                           {"ears": "dissimilar", "nose": "similar"})
    assert done.status == "disputed" and done.verifier_conclusion == "excluded"
    # Concluded: the seal lifts, but the first analyst's marks stay with the analyst.
    listed = adj.candidate_list(rt, reviewer, cs)
    assert len(listed) == 5 and all(c.conclusion is None and not c.marks_visible for c in listed)

    # The supervisor sees both sides, and the candidate's photos through the lead.
    view = adj.disagreement_view(rt, env.supervisor, lead.id)
    assert view["analyst"]["checklist"] == {"ears": "similar", "nose": "similar"}
    assert view["analyst"]["reason"].startswith("Features consistent")
    assert view["verifier"]["checklist"]["ears"] == "dissimilar" and view["verifier"]["conclusion"] == "excluded"
    assert view["photos"] and view["probes"][0]["probe_id"] == probe.id and view["may_decide"]
    original, media = adj.lead_photo(rt, env.supervisor, lead.id, view["image_id"], view="original")
    assert media.startswith("image/") and len(original) > 1000
    with pytest.raises(PermissionDenied):
        adj.disagreement_view(rt, reviewer, lead.id)
    decided = adj.resolve_disagreement(rt, env.supervisor, lead.id, "verified", "ear shape consistent at 4x zoom")
    assert decided.status == "verified"
    with pytest.raises(PermissionDenied):
        adj.lead_photo(rt, env.supervisor, lead.id, view["image_id"])  # no longer disputed: no verify right
