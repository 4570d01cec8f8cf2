"""Adjudication of a stored candidate list, blind verification of possible leads, supervisor resolution of
disagreements, and release of verified leads.

The candidate list itself (the gallery's ``SearchCandidate`` rows) is never changed: conclusions are separate rows.
The verifier's view (:func:`verification_task`) is built from a fixed set of fields that excludes the first
analyst's conclusion, notes and checklist, so blindness does not depend on a caller remembering to hide them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.casework import blind
from faceleads.casework.common import (
    as_utc,
    authorise,
    clean_text,
    get_case_search,
    get_lead,
    require_certified,
    same_person,
)
from faceleads.casework.models import (
    FEATURES,
    Adjudication,
    Case,
    CaseRequest,
    CaseSearch,
    Conclusion,
    FeatureFinding,
    Lead,
    LeadStatus,
    Priority,
    Probe,
    SearchStatus,
    VerificationResult,
)
from faceleads.casework.regimes import require_unlocked
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.gallery.access import record_access
from faceleads.gallery.geometry import template_geometry
from faceleads.gallery.models import Encounter, Image, SearchCandidate, Subject, SubjectStatus
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.viewing import PhotoView, photo_views
from faceleads.gallery.visibility import gallery_shared
from faceleads.vision.compare import compare_crop, crop_landmarks
from faceleads.vision.imaging import encode_png, load_image, media_type

# Reason codes: a standard reason per conclusion, so that excluding 19 obviously different candidates does not need
# 19 typed notes. "other" always needs a note, and a possible lead always needs one: it goes to a colleague.
REASON_CODES: dict[str, tuple[tuple[str, str], ...]] = {
    Conclusion.EXCLUDED.value: (
        ("features_differ", "One or more facial features clearly differ"),
        ("shape_differs", "Face shape or proportions differ"),
        ("marks_differ", "A scar, mark or tattoo differs"),
        ("age_incompatible", "Apparent age incompatible with the dates"),
        ("sex_differs", "Apparent sex differs"),
        ("other", "Other (explain in the notes)"),
    ),
    Conclusion.INCONCLUSIVE.value: (
        ("probe_quality", "Probe quality too low to conclude"),
        ("occluded", "Key features hidden (mask, hat, hand, glasses)"),
        ("pose", "Pose or angle prevents comparison"),
        ("time_gap", "Too much time between the images"),
        ("other", "Other (explain in the notes)"),
    ),
    Conclusion.POSSIBLE_LEAD.value: (
        ("features_consistent", "Features consistent, no unexplained difference"),
        ("marks_consistent", "A distinguishing mark is consistent"),
        ("other", "Other (explain in the notes)"),
    ),
}


def reason_label(conclusion: str | None, code: str | None) -> str:
    """The wording of a reason code ('' when none)."""
    return dict(REASON_CODES.get(conclusion or "", ())).get(code or "", code or "")


def check_reason(conclusion: Conclusion, reason_code: str | None, notes: str) -> str | None:
    """The reason code, checked against the conclusion; the notes are required when the code does not say it all."""
    code = (reason_code or "").strip() or None
    allowed = dict(REASON_CODES[conclusion.value])
    if code is not None and code not in allowed:
        wording = "; ".join(f"{k} ({v})" for k, v in allowed.items())
        raise ValidationError(f"reason {code!r} does not fit the conclusion {conclusion.value.replace('_', ' ')}: "
                              f"choose one of {wording}")  # fmt: skip
    if not notes and (code in (None, "other") or conclusion is Conclusion.POSSIBLE_LEAD):
        if conclusion is Conclusion.POSSIBLE_LEAD:
            raise ValidationError("a possible lead needs notes: say what you compared and why it may be the person")
        raise ValidationError("give a reason: choose a reason code, or write notes (a reason 'other' needs notes)")
    return code


@dataclass(frozen=True)
class CandidateView:
    """One stored candidate with the analyst's mark (None until marked)."""

    candidate_id: int
    rank: int
    score: float
    subject_id: int
    subject_number: str
    agency: str
    booking_number: str
    booking_date: str
    image_id: int
    conclusion: str | None
    notes: str | None
    checklist: dict[str, str]
    reason_code: str | None = None
    marks_visible: bool = True  # False: the marks are the first analyst's and hidden from this viewer

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = round(self.score, 4)
        return data


@dataclass(frozen=True)
class VerificationTask:
    """What a blind verifier sees: the probe(s) as searched and the one proposed candidate with its photos.

    Nothing else of the search: no rank, no score, no other candidate, no analyst, no conclusion, notes or
    checklist (the verifier reaches their own conclusion on the same scale).
    """

    lead_id: int
    case_occurrence: str
    offence: str
    priority: str
    probes: list[dict[str, Any]]
    candidate_id: int
    subject_id: int
    subject_number: str
    agency: str
    booking_number: str
    booking_date: str
    image_id: int
    photos: list[PhotoView]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["photos"] = [p.to_json() for p in self.photos]
        return data


@dataclass(frozen=True)
class QueueItem:
    """A lead awaiting the actor's blind verification, with what a verifier may know: the case, the offence, the
    priority and how long it has waited (never the analyst, rank, score or conclusion)."""

    lead_id: int
    case_id: int
    case_occurrence: str
    offence: str
    priority: str
    waiting_since: datetime

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["waiting_since"] = self.waiting_since.isoformat()
        return data


@dataclass(frozen=True)
class LeadInfo:
    """A lead's state (for the analyst, supervisor and release; not for the blind verifier)."""

    id: int
    case_id: int
    case_search_id: int
    candidate_id: int
    status: str
    verifier: str | None
    verification: str | None
    verified_at: datetime | None
    supervisor: str | None
    supervisor_decision: str | None
    decided_at: datetime | None
    released_by: str | None
    released_at: datetime | None
    verifier_conclusion: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for k in ("verified_at", "decided_at", "released_at"):
            if data[k] is not None:
                data[k] = data[k].isoformat()
        return data


def _lead_info(lead: Lead) -> LeadInfo:
    def t(x: datetime | None) -> datetime | None:
        return as_utc(x) if x is not None else None

    return LeadInfo(lead.id, lead.case_id, lead.case_search_id, lead.candidate_id, lead.status, lead.verifier,
                    lead.verification, t(lead.verified_at), lead.supervisor, lead.supervisor_decision,
                    t(lead.decided_at), lead.released_by, t(lead.released_at), lead.verifier_conclusion)


def _candidate_rows(session: Session, search_id: int) -> list[tuple[SearchCandidate, str, str, str, str]]:
    rows = session.execute(
        select(SearchCandidate, Subject.subject_number, Agency.code, Encounter.booking_number,
               Encounter.booking_date)
        .join(Subject, Subject.id == SearchCandidate.subject_id)
        .join(Agency, Agency.id == Subject.agency_id)
        .join(Encounter, Encounter.id == SearchCandidate.encounter_id)
        .where(SearchCandidate.search_id == search_id)
        .order_by(SearchCandidate.rank)
    ).all()
    return [(c, num, code, booking, day.isoformat()) for c, num, code, booking, day in rows]


def validate_checklist(checklist: Mapping[str, str] | None) -> dict[str, str]:
    """The optional morphological checklist: feature -> similar / dissimilar / not_visible (unknown keys refused)."""
    if not checklist:
        return {}
    if not isinstance(checklist, Mapping):
        raise ValidationError("the feature checklist must map features to findings")
    out: dict[str, str] = {}
    for feature, finding in checklist.items():
        if feature not in FEATURES:
            raise ValidationError(f"unknown checklist feature {feature!r}; features: {', '.join(FEATURES)}")
        try:
            out[feature] = FeatureFinding(finding).value
        except ValueError:
            allowed = ", ".join(f.value for f in FeatureFinding)
            raise ValidationError(f"checklist {feature}: {finding!r} is not one of {allowed}") from None
    return out


def candidate_list(rt: GalleryRuntime, actor: Actor, case_search_id: int) -> list[CandidateView]:
    """The stored candidate list (the view is audited). The marks (conclusion, reason, notes, checklist) are shown
    only to the analyst who ran the search; while a lead of the search awaits blind verification the whole list is
    sealed for every potential verifier (:mod:`faceleads.casework.blind`).
    """
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", None)
        cs, case = get_case_search(session, case_search_id)
        authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", case.agency_id,
                  case.occurrence_number)
        blind.refuse_if_sealed(rt.session_factory, session, actor, cs, case, "view_candidates")
        require_unlocked(rt, session, actor, cs, case, "view_candidates")
        own = same_person(actor, cs.analyst, cs.analyst_user_id)
        marks = {a.candidate_id: a for a in session.scalars(
            select(Adjudication).where(Adjudication.case_search_id == cs.id))} if own else {}
        out = []
        for c, num, code, booking, day in _candidate_rows(session, cs.search_id):
            a = marks.get(c.id)
            out.append(CandidateView(c.id, c.rank, c.score, c.subject_id, num, code, booking, day, c.image_id,
                                     a.conclusion if a else None, a.notes if a else None,
                                     dict(a.checklist or {}) if a else {}, a.reason_code if a else None, own))
        audit.record(session, actor, "view_candidates", f"case_search:{cs.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"search_id": cs.search_id, "candidate_count": len(out)})
        return out


def _own_search(actor: Actor, cs: CaseSearch) -> None:
    if not same_person(actor, cs.analyst, cs.analyst_user_id):
        raise PermissionDenied(f"only the analyst who ran search {cs.id} ({cs.analyst}) adjudicates its candidates")


def _parse_conclusion(conclusion: str) -> Conclusion:
    try:
        return Conclusion(conclusion)
    except ValueError:
        raise ValidationError("choose a conclusion: excluded, possible lead or inconclusive") from None


def _open_for_marking(rt: GalleryRuntime, session: Session, actor: Actor, case_search_id: int
                      ) -> tuple[CaseSearch, Case]:
    authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", None)
    cs, case = get_case_search(session, case_search_id)
    authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", case.agency_id,
              case.occurrence_number)
    require_certified(session, actor, as_utc(utcnow()))
    _own_search(actor, cs)
    require_unlocked(rt, session, actor, cs, case, "adjudicate")
    if cs.status != SearchStatus.ADJUDICATING.value:
        raise ValidationError(f"search {cs.id} was already submitted; its conclusions are final")
    return cs, case


def adjudicate(
    rt: GalleryRuntime,
    actor: Actor,
    case_search_id: int,
    rank: int,
    conclusion: str,
    notes: str,
    checklist: Mapping[str, str] | None = None,
    *,
    reason_code: str | None = None,
) -> CandidateView:
    """Mark candidate ``rank`` excluded / possible_lead / inconclusive with a reason code (:data:`REASON_CODES`)
    and/or notes, and optionally the feature checklist. Notes are required for a possible lead and for the reason
    'other'. A mark can be changed until the adjudication is submitted.
    """
    verdict = _parse_conclusion(conclusion)
    text = clean_text(notes, "notes", 4000, required=False)
    code = check_reason(verdict, reason_code, text)
    marks = validate_checklist(checklist)
    with transaction(rt.session_factory) as session:
        cs, case = _open_for_marking(rt, session, actor, case_search_id)
        rows = {c.rank: (c, num, code_, booking, day) for c, num, code_, booking, day in
                _candidate_rows(session, cs.search_id)}
        if rank not in rows:
            raise NotFound(f"search {cs.id} has no candidate ranked {rank} (it has {len(rows)})")
        cand, num, agency_code, booking, day = rows[rank]
        mark = session.scalars(select(Adjudication).where(Adjudication.case_search_id == cs.id,
                                                          Adjudication.candidate_id == cand.id)).first()
        if mark is None:
            mark = Adjudication(case_search_id=cs.id, candidate_id=cand.id, conclusion=verdict.value, notes=text,
                                reason_code=code, checklist=marks, analyst=actor.username,
                                analyst_user_id=actor.user_id)
            session.add(mark)
        else:
            mark.conclusion, mark.notes, mark.checklist, mark.at = verdict.value, text, marks, utcnow()
            mark.reason_code = code
        session.flush()
        audit.record(session, actor, "adjudicate", f"candidate:{cand.id}", audit.Outcome.OK,
                     case=case.occurrence_number,
                     details={"rank": rank, "conclusion": verdict.value, "reason_code": code or "",
                              "checklist_count": len(marks)})
        return CandidateView(cand.id, cand.rank, cand.score, cand.subject_id, num, agency_code, booking, day,
                             cand.image_id, mark.conclusion, mark.notes, dict(mark.checklist), mark.reason_code)


def exclude_remaining(
    rt: GalleryRuntime, actor: Actor, case_search_id: int, reason_code: str, notes: str = ""
) -> list[int]:
    """Mark every candidate not marked yet as excluded with one reason (and optional notes); returns their ranks.

    For the common case of a list with one or two candidates worth a closer look and many obviously different
    faces. Each candidate gets its own mark and audit entry (``bulk``), exactly as if marked one by one; marks
    already made are left alone.
    """
    text = clean_text(notes, "notes", 4000, required=False)
    code = check_reason(Conclusion.EXCLUDED, reason_code, text)
    with transaction(rt.session_factory) as session:
        cs, case = _open_for_marking(rt, session, actor, case_search_id)
        marked = set(session.scalars(select(Adjudication.candidate_id).where(Adjudication.case_search_id == cs.id)))
        ranks = []
        for cand, *_ in _candidate_rows(session, cs.search_id):
            if cand.id in marked:
                continue
            session.add(Adjudication(case_search_id=cs.id, candidate_id=cand.id, conclusion=Conclusion.EXCLUDED.value,
                                     notes=text, reason_code=code, checklist={}, analyst=actor.username,
                                     analyst_user_id=actor.user_id))  # fmt: skip
            audit.record(session, actor, "adjudicate", f"candidate:{cand.id}", audit.Outcome.OK,
                         case=case.occurrence_number,
                         details={"rank": cand.rank, "conclusion": Conclusion.EXCLUDED.value,
                                  "reason_code": code or "", "checklist_count": 0, "bulk": True})  # fmt: skip
            ranks.append(cand.rank)
        if not ranks:
            raise ValidationError("every candidate is already marked: nothing to exclude")
        return ranks


def submit_adjudication(rt: GalleryRuntime, actor: Actor, case_search_id: int) -> list[LeadInfo]:
    """Submit the conclusions: refused while any candidate is unmarked. Each possible lead becomes a lead
    awaiting blind verification; returns those leads.
    """
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", None)
        cs, case = get_case_search(session, case_search_id)
        authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", case.agency_id,
                  case.occurrence_number)
        require_certified(session, actor, as_utc(utcnow()))
        _own_search(actor, cs)
        require_unlocked(rt, session, actor, cs, case, audit.AuditAction.CONCLUSION)
        if cs.status != SearchStatus.ADJUDICATING.value:
            raise ValidationError(f"search {cs.id} was already submitted")
        marks = {a.candidate_id: a for a in session.scalars(
            select(Adjudication).where(Adjudication.case_search_id == cs.id))}
        rows = _candidate_rows(session, cs.search_id)
        unmarked = [c.rank for c, *_ in rows if c.id not in marks]
        if unmarked:
            raise ValidationError(
                f"every candidate must be marked before submitting; unmarked rank(s): "
                f"{', '.join(map(str, unmarked))}"
            )
        cs.status = SearchStatus.SUBMITTED.value
        cs.submitted_at = utcnow()
        leads = []
        for c, *_ in rows:
            mark = marks[c.id]
            audit.record(session, actor, audit.AuditAction.CONCLUSION, f"candidate:{c.id}", audit.Outcome.OK,
                         case=case.occurrence_number,
                         details={"offence": case.offence.code, "conclusion": mark.conclusion, "rank": c.rank,
                                  "regime": cs.regime})
            if mark.conclusion == Conclusion.POSSIBLE_LEAD.value:
                lead = Lead(case_id=case.id, case_search_id=cs.id, adjudication_id=mark.id, candidate_id=c.id)
                session.add(lead)
                session.flush()
                leads.append(_lead_info(lead))
        return leads


def _analyst_of(session: Session, lead: Lead) -> Adjudication:
    mark = session.get(Adjudication, lead.adjudication_id)
    assert mark is not None
    return mark


def request_priority(session: Session, request_id: int) -> str:
    """The priority of a request (routine when unknown)."""
    req = session.get(CaseRequest, request_id)
    return req.priority if req is not None and req.priority else Priority.ROUTINE.value


def verification_items(rt: GalleryRuntime, actor: Actor) -> list[QueueItem]:
    """The agency's leads awaiting verification that ``actor`` may verify (not their own), most urgent first, then
    oldest first; with the case, offence and priority (nothing of the search itself)."""
    authorise(rt.session_factory, actor, Action.VERIFY, "leads", actor.agency_id)
    from faceleads.casework.models import PRIORITY_ORDER

    with rt.session_factory() as session:
        rows = session.execute(
            select(Lead, Adjudication, Case, CaseSearch.request_id)
            .join(Case, Case.id == Lead.case_id)
            .join(Adjudication, Adjudication.id == Lead.adjudication_id)
            .join(CaseSearch, CaseSearch.id == Lead.case_search_id)
            .where(Case.agency_id == actor.agency_id, Lead.status == LeadStatus.AWAITING_VERIFICATION.value)
            .order_by(Lead.id)
        ).all()
        items = [QueueItem(lead.id, case.id, case.occurrence_number, f"{case.offence.code} {case.offence.title}",
                           request_priority(session, request_id), as_utc(lead.created_at))
                 for lead, mark, case, request_id in rows
                 if not same_person(actor, mark.analyst, mark.analyst_user_id)]  # fmt: skip
    return sorted(items, key=lambda i: (PRIORITY_ORDER.get(i.priority, 9), i.waiting_since, i.lead_id))


def verification_queue(rt: GalleryRuntime, actor: Actor) -> list[int]:
    """Ids of the agency's leads awaiting verification that ``actor`` may verify (not their own)."""
    return sorted(i.lead_id for i in verification_items(rt, actor))


def _check_verifier(session: Session, actor: Actor, lead: Lead) -> None:
    mark = _analyst_of(session, lead)
    cs = session.get(CaseSearch, lead.case_search_id)
    assert cs is not None
    if same_person(actor, mark.analyst, mark.analyst_user_id) or same_person(actor, cs.analyst, cs.analyst_user_id):
        raise PermissionDenied("a lead must be verified by a different analyst than the one who proposed it")


def _probes_as_searched(session: Session, cs: CaseSearch) -> list[dict[str, Any]]:
    """The probe(s) of a search as searched, with the face's landmarks in comparison-crop coordinates."""
    out = []
    for used in cs.probes_used:
        entry = {k: used.get(k) for k in ("probe_id", "evidence_sha256", "frame_time_s", "edits_described",
                                          "face_box", "quality", "weight")}
        probe = session.get(Probe, used["probe_id"])
        points = probe.face_landmarks if probe is not None else None
        # The probe's current face is the one searched only while its edit version is the one searched.
        same = probe is not None and probe.edits_version == used.get("edits_version")
        entry["landmarks"] = crop_landmarks(points) if points and same else None
        entry["landmarks_original"] = points if same else None
        out.append(entry)
    return out


def verification_task(rt: GalleryRuntime, actor: Actor, lead_id: int) -> VerificationTask:
    """The blind verifier's view of a lead: the probe as searched and the one proposed candidate with every photo
    of them (the view is audited; the first opening is recorded for examiner QA)."""
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.VERIFY, f"lead:{lead_id}", None)
        lead, case = get_lead(session, lead_id)
        authorise(rt.session_factory, actor, Action.VERIFY, f"lead:{lead_id}", case.agency_id,
                  case.occurrence_number)
        require_certified(session, actor, as_utc(utcnow()))
        _check_verifier(session, actor, lead)
        if lead.status != LeadStatus.AWAITING_VERIFICATION.value:
            raise ValidationError(f"lead {lead_id} is {lead.status}; it is not awaiting verification")
        cs = session.get(CaseSearch, lead.case_search_id)
        assert cs is not None
        require_unlocked(rt, session, actor, cs, case, "view_verification", f"lead:{lead.id}")
        rows = {c.id: (c, num, code, booking, day) for c, num, code, booking, day in
                _candidate_rows(session, cs.search_id)}
        c, num, code, booking, day = rows[lead.candidate_id]
        if lead.verification_started_at is None:
            lead.verification_started_at = utcnow()
        audit.record(session, actor, "view_verification", f"lead:{lead.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"candidate_id": c.id})
        return VerificationTask(lead.id, case.occurrence_number, f"{case.offence.code} {case.offence.title}",
                                request_priority(session, cs.request_id), _probes_as_searched(session, cs), c.id,
                                c.subject_id, num, code, booking, day, c.image_id,
                                photo_views(rt, session, c.subject_id))  # fmt: skip


def verify_lead(
    rt: GalleryRuntime,
    actor: Actor,
    lead_id: int,
    result: str,
    notes: str,
    checklist: Mapping[str, str] | None = None,
) -> LeadInfo:
    """Record the blind verifier's own conclusion with notes and (optionally) their feature checklist.

    ``result`` is the verifier's conclusion on the analyst's scale — ``possible_lead`` (which agrees and verifies
    the lead), ``inconclusive`` or ``excluded`` (which disagree and send it to a supervisor) — or directly
    ``agree`` / ``disagree``. The response tells the verifier only the new status, never the first analyst's notes.
    """
    try:
        verdict = VerificationResult(result)
        own: str | None = Conclusion.POSSIBLE_LEAD.value if verdict is VerificationResult.AGREE else None
    except ValueError:
        try:
            own = Conclusion(result).value
        except ValueError:
            raise ValidationError(
                "give your conclusion: possible lead (agrees), inconclusive or excluded (both disagree)"
            ) from None
        verdict = VerificationResult.AGREE if own == Conclusion.POSSIBLE_LEAD.value else VerificationResult.DISAGREE
    text = clean_text(notes, "notes", 4000)
    marks = validate_checklist(checklist)
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.VERIFY, f"lead:{lead_id}", None)
        lead, case = get_lead(session, lead_id)
        authorise(rt.session_factory, actor, Action.VERIFY, f"lead:{lead_id}", case.agency_id,
                  case.occurrence_number)
        require_certified(session, actor, as_utc(utcnow()))
        _check_verifier(session, actor, lead)
        cs = _lead_search(session, lead)
        require_unlocked(rt, session, actor, cs, case, audit.AuditAction.VERIFICATION, f"lead:{lead.id}")
        if lead.status != LeadStatus.AWAITING_VERIFICATION.value:
            raise ValidationError(f"lead {lead_id} is {lead.status}; it is not awaiting verification")
        lead.verifier, lead.verifier_user_id = actor.username, actor.user_id
        lead.verification, lead.verification_notes, lead.verified_at = verdict.value, text, utcnow()
        lead.verifier_conclusion, lead.verification_checklist = own, marks
        lead.status = (LeadStatus.VERIFIED if verdict is VerificationResult.AGREE else LeadStatus.DISPUTED).value
        audit.record(session, actor, audit.AuditAction.VERIFICATION, f"lead:{lead.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"offence": case.offence.code, "result": verdict.value,
                                                           "conclusion": own or "", "checklist_count": len(marks),
                                                           "regime": cs.regime})
        return _lead_info(lead)


def resolve_disagreement(rt: GalleryRuntime, actor: Actor, lead_id: int, decision: str, reason: str) -> LeadInfo:
    """A supervisor decides a disputed lead: ``verified`` or ``rejected``, with the reason recorded."""
    if decision not in (LeadStatus.VERIFIED.value, LeadStatus.REJECTED.value):
        raise ValidationError("choose a decision: verified (the lead stands) or rejected")
    why = clean_text(reason, "reason", 4000)
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.DECIDE_DISAGREEMENT, f"lead:{lead_id}", None)
        lead, case = get_lead(session, lead_id)
        authorise(rt.session_factory, actor, Action.DECIDE_DISAGREEMENT, f"lead:{lead_id}", case.agency_id,
                  case.occurrence_number)
        require_unlocked(rt, session, actor, _lead_search(session, lead), case, "lead_decision", f"lead:{lead.id}")
        if lead.status != LeadStatus.DISPUTED.value:
            raise ValidationError(f"lead {lead_id} is {lead.status}; only a disputed lead goes to a supervisor")
        _check_decider(session, actor, lead)
        lead.supervisor, lead.supervisor_decision, lead.supervisor_reason = actor.username, decision, why
        lead.decided_at = utcnow()
        lead.status = decision
        audit.record(session, actor, "lead_decision", f"lead:{lead.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"offence": case.offence.code, "decision": decision})
        return _lead_info(lead)


def _check_decider(session: Session, actor: Actor, lead: Lead) -> None:
    mark = _analyst_of(session, lead)
    if same_person(actor, mark.analyst, mark.analyst_user_id) or same_person(
        actor, lead.verifier, lead.verifier_user_id
    ):
        raise PermissionDenied("the supervisor deciding a disagreement cannot be the analyst or the verifier")


def disagreement_view(rt: GalleryRuntime, actor: Actor, lead_id: int) -> dict[str, Any]:
    """For the supervisor deciding a disputed lead: both examiners' conclusions, reason codes, checklists and notes
    side by side, the probe as searched and the candidate with every photo (the view is audited)."""
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.DECIDE_DISAGREEMENT, f"lead:{lead_id}", None)
        lead, case = get_lead(session, lead_id)
        authorise(rt.session_factory, actor, Action.DECIDE_DISAGREEMENT, f"lead:{lead_id}", case.agency_id,
                  case.occurrence_number)
        require_unlocked(rt, session, actor, _lead_search(session, lead), case, "view_disagreement", f"lead:{lead.id}")
        if lead.status != LeadStatus.DISPUTED.value:
            raise ValidationError(f"lead {lead_id} is {lead.status}; only a disputed lead goes to a supervisor")
        mark = _analyst_of(session, lead)
        cand = session.get(SearchCandidate, lead.candidate_id)
        cs = session.get(CaseSearch, lead.case_search_id)
        assert cand is not None and cs is not None
        rows = {c.id: (num, code, booking, day) for c, num, code, booking, day in
                _candidate_rows(session, cs.search_id)}
        num, agency_code, booking, day = rows[cand.id]
        audit.record(session, actor, "view_disagreement", f"lead:{lead.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"candidate_id": cand.id})
        return {
            "lead_id": lead.id,
            "case_id": case.id,
            "case_occurrence": case.occurrence_number,
            "offence": f"{case.offence.code} {case.offence.title}",
            "priority": request_priority(session, cs.request_id),
            "case_search_id": lead.case_search_id,
            "candidate_id": cand.id,
            "rank": cand.rank,
            "score": round(cand.score, 4),
            "subject_id": cand.subject_id,
            "subject_number": num,
            "agency": agency_code,
            "booking_number": booking,
            "booking_date": day,
            "image_id": cand.image_id,
            "probes": _probes_as_searched(session, cs),
            "photos": [p.to_json() for p in photo_views(rt, session, cand.subject_id)],
            "may_decide": not (same_person(actor, mark.analyst, mark.analyst_user_id)
                               or same_person(actor, lead.verifier, lead.verifier_user_id)),
            "analyst": {"username": mark.analyst, "conclusion": mark.conclusion, "notes": mark.notes,
                        "reason_code": mark.reason_code, "reason": reason_label(mark.conclusion, mark.reason_code),
                        "checklist": dict(mark.checklist or {}), "at": as_utc(mark.at).isoformat()},
            "verifier": {"username": lead.verifier, "result": lead.verification, "notes": lead.verification_notes,
                         "conclusion": lead.verifier_conclusion,
                         "checklist": dict(lead.verification_checklist or {}),
                         "at": as_utc(lead.verified_at).isoformat() if lead.verified_at else None},
        }


def release_lead(rt: GalleryRuntime, actor: Actor, lead_id: int) -> LeadInfo:
    """Release a verified lead to the investigator. Anything not verified is refused."""
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.RELEASE_LEAD, f"lead:{lead_id}", None)
        lead, case = get_lead(session, lead_id)
        authorise(rt.session_factory, actor, Action.RELEASE_LEAD, f"lead:{lead_id}", case.agency_id,
                  case.occurrence_number)
        require_unlocked(rt, session, actor, _lead_search(session, lead), case, audit.AuditAction.RELEASE,
                         f"lead:{lead.id}")
        if lead.status != LeadStatus.VERIFIED.value:
            raise PermissionDenied(f"lead {lead_id} is {lead.status}: only a verified lead can be released")
        lead.status = LeadStatus.RELEASED.value
        lead.released_by, lead.released_at = actor.username, utcnow()
        audit.record(session, actor, audit.AuditAction.RELEASE, f"lead:{lead.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"offence": case.offence.code})
        return _lead_info(lead)


def _lead_search(session: Session, lead: Lead) -> CaseSearch:
    cs = session.get(CaseSearch, lead.case_search_id)
    assert cs is not None
    return cs


def _held_image(
    rt: GalleryRuntime, session: Session, actor: Actor, case: Case, cs: CaseSearch, subject: Subject, image: Image,
    not_found: str, *, lead_scoped: bool = False,
) -> bytes:
    """The decrypted bytes of a candidate's photo, after checking that the actor's agency may see its gallery for
    the request's purpose (own, or shared by an agreement in force; revoking the agreement takes effect at once).
    A partner agency's photo read this way is recorded as a partner access for the owning agency (in the caller's
    transaction, beside its audit entry).

    ``lead_scoped``: the caller already authorised a lead-scoped right (verify, decide a dispute) that is not a
    gallery right; only the sharing of a partner agency's photo is checked here (refusal audited, answered 404).
    """
    req = session.get(CaseRequest, cs.request_id)
    purpose = req.purpose.code if req else None
    shared = gallery_shared(session, actor.agency_id, image.gallery_id, purpose)
    if not lead_scoped:
        authorise(rt.session_factory, actor, Action.VIEW_GALLERY_IMAGE, f"image:{image.id}", subject.agency_id,
                  case.occurrence_number, shared=shared, not_found=not_found)
    elif subject.agency_id != actor.agency_id and shared is not True:
        audit.record_now(rt.session_factory, actor, audit.AuditAction.VIEW_GALLERY_IMAGE, f"image:{image.id}",
                         audit.Outcome.DENIED, case=case.occurrence_number,
                         details={"reason": "the partner agency's gallery is not shared for this purpose"})
        raise NotFound(not_found)
    data = rt.read_photo(subject, image)
    record_access(session, actor, owner_agency_id=subject.agency_id, action=audit.AuditAction.VIEW_GALLERY_IMAGE,
                  object_ref=f"image:{image.id}", subject_id=subject.id, image_id=image.id,
                  gallery_id=image.gallery_id, case=case.occurrence_number, purpose=purpose)  # fmt: skip
    return data


def candidate_photo(rt: GalleryRuntime, actor: Actor, candidate_id: int) -> bytes:
    """The booking photo of a stored candidate (PNG) for the side-by-side comparison; the view is audited.

    The candidate must belong to a search of one of the actor's agency's cases (another agency's candidate is
    answered like a missing one, audited), and its photo's gallery must be the agency's own or shared with it for
    the request's purpose by an agreement in force. While the search is sealed for the actor (a lead awaits their
    blind verification) only the proposed candidate's photo is given.
    """
    missing = f"no candidate {candidate_id} in a case search"
    authorise(rt.session_factory, actor, Action.VIEW_GALLERY_IMAGE, f"candidate:{candidate_id}", None)
    with transaction(rt.session_factory) as session:
        cand = session.get(SearchCandidate, candidate_id)
        cs = session.scalars(
            select(CaseSearch).where(CaseSearch.search_id == cand.search_id)).first() if cand else None
        if cand is None or cs is None:
            raise NotFound(missing)
        case = session.get(Case, cs.case_id)
        assert case is not None
        # Case searches are never shared: only the case's own agency sees its candidates.
        authorise(rt.session_factory, actor, Action.VIEW_GALLERY_IMAGE, f"candidate:{candidate_id}", case.agency_id,
                  case.occurrence_number, shared=False, not_found=missing)
        require_unlocked(rt, session, actor, cs, case, audit.AuditAction.VIEW_GALLERY_IMAGE, f"image:{cand.image_id}")
        proposed = session.scalars(select(Lead.id).where(
            Lead.candidate_id == cand.id, Lead.status == LeadStatus.AWAITING_VERIFICATION.value)).first()
        if proposed is None:
            blind.refuse_if_sealed(rt.session_factory, session, actor, cs, case, "view_gallery_image")
        subject = session.get(Subject, cand.subject_id)
        image = session.get(Image, cand.image_id)
        assert subject is not None
        if image is None:
            raise NotFound(f"the photo of candidate {candidate_id} is no longer held (destroyed)")
        data = _held_image(rt, session, actor, case, cs, subject, image, missing)
        audit.record(session, actor, audit.AuditAction.VIEW_GALLERY_IMAGE, f"image:{image.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"candidate_id": cand.id, "case_search_id": cs.id})
        return encode_png(load_image(data, rt.settings).pixels)


def lead_photo(
    rt: GalleryRuntime, actor: Actor, lead_id: int, image_id: int, *, view: str = "aligned"
) -> tuple[bytes, str]:
    """A photo of a lead's candidate (any of their held bookings, for the filmstrip), for the two people who must
    compare it without the candidate list: the blind verifier of a lead awaiting verification and the supervisor
    deciding a disputed lead. ``view``: 'aligned' (comparison crop, JPEG) or 'original'. The view is audited.
    """
    if view not in ("aligned", "original"):
        raise ValidationError("view must be 'aligned' or 'original'")
    missing = f"no photo {image_id} of lead {lead_id}"
    with transaction(rt.session_factory) as session:
        lead = session.get(Lead, lead_id)
        status = lead.status if lead is not None else None
        action = Action.DECIDE_DISAGREEMENT if status == LeadStatus.DISPUTED.value else Action.VERIFY
        authorise(rt.session_factory, actor, action, f"lead:{lead_id}", None)
        lead, case = get_lead(session, lead_id)
        authorise(rt.session_factory, actor, action, f"lead:{lead_id}", case.agency_id, case.occurrence_number)
        if action is Action.VERIFY:
            require_certified(session, actor, as_utc(utcnow()))
            _check_verifier(session, actor, lead)
            if lead.status != LeadStatus.AWAITING_VERIFICATION.value:
                raise ValidationError(f"lead {lead_id} is {lead.status}; it is not awaiting verification")
        cand = session.get(SearchCandidate, lead.candidate_id)
        cs = session.get(CaseSearch, lead.case_search_id)
        image = session.get(Image, image_id)
        assert cand is not None and cs is not None
        require_unlocked(rt, session, actor, cs, case, audit.AuditAction.VIEW_GALLERY_IMAGE, f"image:{image_id}")
        if image is None or image.subject_id != cand.subject_id or image.store_address is None:
            raise NotFound(missing)
        subject = session.get(Subject, cand.subject_id)
        if subject is None or subject.status != SubjectStatus.ACTIVE.value:
            raise NotFound(f"the candidate of lead {lead_id} is no longer held (destroyed)")
        data = _held_image(rt, session, actor, case, cs, subject, image, missing, lead_scoped=True)
        # Box and landmarks are sealed with the subject's key (gallery.geometry), like the embedding.
        template = image.template
        landmarks = template_geometry(rt.keystore, subject, image, template).landmarks if template else None
        audit.record(session, actor, audit.AuditAction.VIEW_GALLERY_IMAGE, f"image:{image.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"lead_id": lead.id, "view": view})
    if view == "original":
        return data, media_type(data)
    if landmarks is None:
        raise NotFound(f"photo {image_id} has no enrolled face to align")
    # Decoded reduced when large (the crop is 384 pixels); landmarks are in the original photo's pixels.
    loaded = load_image(data, rt.settings, reduce_to=rt.settings.decode_reduce_pixels)
    body, _ = compare_crop(loaded.pixels, loaded.to_decoded(landmarks))
    return body, "image/jpeg"


def show_lead(rt: GalleryRuntime, actor: Actor, lead_id: int) -> LeadInfo:
    """A lead's state (analysts, supervisors; not the blind verification view, and sealed for potential
    verifiers while its search has a lead awaiting verification)."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"lead:{lead_id}", None)
        lead, case = get_lead(session, lead_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"lead:{lead_id}", case.agency_id,
                  case.occurrence_number)
        cs = session.get(CaseSearch, lead.case_search_id)
        assert cs is not None
        blind.refuse_if_sealed(rt.session_factory, session, actor, cs, case, "view_lead")
        return _lead_info(lead)


def list_leads(rt: GalleryRuntime, actor: Actor, case_id: int) -> list[LeadInfo]:
    """The leads of a case (those of searches sealed for the actor are left out: see :mod:`blind`)."""
    from faceleads.casework.common import get_case

    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        sealed = blind.sealed_search_ids(session, actor, case.agency_id, case_id)
        return [_lead_info(lead) for lead in session.scalars(
            select(Lead).where(Lead.case_id == case_id).order_by(Lead.id)) if lead.case_search_id not in sealed]


__all__ = [
    "FEATURES",
    "REASON_CODES",
    "CandidateView",
    "LeadInfo",
    "QueueItem",
    "VerificationTask",
    "adjudicate",
    "candidate_list",
    "candidate_photo",
    "check_reason",
    "disagreement_view",
    "exclude_remaining",
    "lead_photo",
    "list_leads",
    "reason_label",
    "release_lead",
    "resolve_disagreement",
    "show_lead",
    "submit_adjudication",
    "validate_checklist",
    "verification_items",
    "verification_queue",
    "verification_task",
    "verify_lead",
]
