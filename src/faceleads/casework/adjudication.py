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
from faceleads.gallery.models import Encounter, SearchCandidate, Subject
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.visibility import gallery_shared


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

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = round(self.score, 4)
        return data


@dataclass(frozen=True)
class VerificationTask:
    """What a blind verifier sees: the probe(s) as searched and the candidate — never the first conclusion."""

    lead_id: int
    case_occurrence: str
    probes: list[dict[str, Any]]
    candidate_id: int
    rank: int
    score: float
    subject_number: str
    agency: str
    booking_number: str
    booking_date: str
    image_id: int

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = round(self.score, 4)
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
                    t(lead.decided_at), lead.released_by, t(lead.released_at))


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
    """The stored candidate list (the view is audited). The marks (conclusion, notes, checklist) are shown only to
    the analyst who ran the search: another analyst may be a blind verifier of its leads.
    """
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", None)
        cs, case = get_case_search(session, case_search_id)
        authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", case.agency_id,
                  case.occurrence_number)
        require_unlocked(rt, session, actor, cs, case, "view_candidates")
        own = same_person(actor, cs.analyst, cs.analyst_user_id)
        marks = {a.candidate_id: a for a in session.scalars(
            select(Adjudication).where(Adjudication.case_search_id == cs.id))} if own else {}
        out = []
        for c, num, code, booking, day in _candidate_rows(session, cs.search_id):
            a = marks.get(c.id)
            out.append(CandidateView(c.id, c.rank, c.score, c.subject_id, num, code, booking, day, c.image_id,
                                     a.conclusion if a else None, a.notes if a else None,
                                     dict(a.checklist or {}) if a else {}))
        audit.record(session, actor, "view_candidates", f"case_search:{cs.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"search_id": cs.search_id, "candidate_count": len(out)})
        return out


def _own_search(actor: Actor, cs: CaseSearch) -> None:
    if not same_person(actor, cs.analyst, cs.analyst_user_id):
        raise PermissionDenied(f"only the analyst who ran search {cs.id} ({cs.analyst}) adjudicates its candidates")


def adjudicate(
    rt: GalleryRuntime,
    actor: Actor,
    case_search_id: int,
    rank: int,
    conclusion: str,
    notes: str,
    checklist: Mapping[str, str] | None = None,
) -> CandidateView:
    """Mark candidate ``rank`` excluded / possible_lead / inconclusive with notes (and optionally the feature
    checklist). A mark can be changed until the adjudication is submitted.
    """
    try:
        verdict = Conclusion(conclusion)
    except ValueError:
        raise ValidationError(
            f"conclusion must be one of {', '.join(c.value for c in Conclusion)}, got {conclusion!r}"
        ) from None
    text = clean_text(notes, "notes", 4000)
    marks = validate_checklist(checklist)
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", None)
        cs, case = get_case_search(session, case_search_id)
        authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", case.agency_id,
                  case.occurrence_number)
        require_certified(session, actor, as_utc(utcnow()))
        _own_search(actor, cs)
        require_unlocked(rt, session, actor, cs, case, "adjudicate")
        if cs.status != SearchStatus.ADJUDICATING.value:
            raise ValidationError(f"search {cs.id} was already submitted; its conclusions are final")
        rows = {c.rank: (c, num, code, booking, day) for c, num, code, booking, day in
                _candidate_rows(session, cs.search_id)}
        if rank not in rows:
            raise NotFound(f"search {cs.id} has no candidate ranked {rank} (it has {len(rows)})")
        cand, num, code, booking, day = rows[rank]
        mark = session.scalars(select(Adjudication).where(Adjudication.case_search_id == cs.id,
                                                          Adjudication.candidate_id == cand.id)).first()
        if mark is None:
            mark = Adjudication(case_search_id=cs.id, candidate_id=cand.id, conclusion=verdict.value, notes=text,
                                checklist=marks, analyst=actor.username, analyst_user_id=actor.user_id)
            session.add(mark)
        else:
            mark.conclusion, mark.notes, mark.checklist, mark.at = verdict.value, text, marks, utcnow()
        session.flush()
        audit.record(session, actor, "adjudicate", f"candidate:{cand.id}", audit.Outcome.OK,
                     case=case.occurrence_number,
                     details={"rank": rank, "conclusion": verdict.value, "checklist_count": len(marks)})
        return CandidateView(cand.id, cand.rank, cand.score, cand.subject_id, num, code, booking, day,
                             cand.image_id, mark.conclusion, mark.notes, dict(mark.checklist))


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


def verification_queue(rt: GalleryRuntime, actor: Actor) -> list[int]:
    """Ids of the agency's leads awaiting verification that ``actor`` may verify (not their own)."""
    authorise(rt.session_factory, actor, Action.VERIFY, "leads", actor.agency_id)
    with rt.session_factory() as session:
        rows = session.execute(
            select(Lead, Adjudication)
            .join(Case, Case.id == Lead.case_id)
            .join(Adjudication, Adjudication.id == Lead.adjudication_id)
            .where(Case.agency_id == actor.agency_id, Lead.status == LeadStatus.AWAITING_VERIFICATION.value)
            .order_by(Lead.id)
        ).all()
        return [lead.id for lead, mark in rows if not same_person(actor, mark.analyst, mark.analyst_user_id)]


def _check_verifier(session: Session, actor: Actor, lead: Lead) -> None:
    mark = _analyst_of(session, lead)
    cs = session.get(CaseSearch, lead.case_search_id)
    assert cs is not None
    if same_person(actor, mark.analyst, mark.analyst_user_id) or same_person(actor, cs.analyst, cs.analyst_user_id):
        raise PermissionDenied("a lead must be verified by a different analyst than the one who proposed it")


def verification_task(rt: GalleryRuntime, actor: Actor, lead_id: int) -> VerificationTask:
    """The blind verifier's view of a lead (probe and candidate only; the view is audited)."""
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
        probes = [{k: u.get(k) for k in ("probe_id", "evidence_sha256", "frame_time_s", "edits_described",
                                          "face_box", "quality", "weight")} for u in cs.probes_used]
        audit.record(session, actor, "view_verification", f"lead:{lead.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"candidate_id": c.id})
        return VerificationTask(lead.id, case.occurrence_number, probes, c.id, c.rank, c.score, num, code,
                                booking, day, c.image_id)


def verify_lead(rt: GalleryRuntime, actor: Actor, lead_id: int, result: str, notes: str) -> LeadInfo:
    """Record the blind verifier's agree/disagree with notes. Agreement verifies the lead; disagreement sends it
    to a supervisor. The response tells the verifier only the new status, never the first conclusion's notes.
    """
    try:
        verdict = VerificationResult(result)
    except ValueError:
        raise ValidationError(f"verification must be agree or disagree, got {result!r}") from None
    text = clean_text(notes, "notes", 4000)
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
        lead.status = (LeadStatus.VERIFIED if verdict is VerificationResult.AGREE else LeadStatus.DISPUTED).value
        audit.record(session, actor, audit.AuditAction.VERIFICATION, f"lead:{lead.id}", audit.Outcome.OK,
                     case=case.occurrence_number,
                     details={"offence": case.offence.code, "result": verdict.value, "regime": cs.regime})
        return _lead_info(lead)


def resolve_disagreement(rt: GalleryRuntime, actor: Actor, lead_id: int, decision: str, reason: str) -> LeadInfo:
    """A supervisor decides a disputed lead: ``verified`` or ``rejected``, with the reason recorded."""
    if decision not in (LeadStatus.VERIFIED.value, LeadStatus.REJECTED.value):
        raise ValidationError(f"decision must be verified or rejected, got {decision!r}")
    why = clean_text(reason, "reason", 4000)
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.DECIDE_DISAGREEMENT, f"lead:{lead_id}", None)
        lead, case = get_lead(session, lead_id)
        authorise(rt.session_factory, actor, Action.DECIDE_DISAGREEMENT, f"lead:{lead_id}", case.agency_id,
                  case.occurrence_number)
        require_unlocked(rt, session, actor, _lead_search(session, lead), case, "lead_decision", f"lead:{lead.id}")
        if lead.status != LeadStatus.DISPUTED.value:
            raise ValidationError(f"lead {lead_id} is {lead.status}; only a disputed lead goes to a supervisor")
        mark = _analyst_of(session, lead)
        if same_person(actor, mark.analyst, mark.analyst_user_id) or same_person(
            actor, lead.verifier, lead.verifier_user_id
        ):
            raise PermissionDenied("the supervisor deciding a disagreement cannot be the analyst or the verifier")
        lead.supervisor, lead.supervisor_decision, lead.supervisor_reason = actor.username, decision, why
        lead.decided_at = utcnow()
        lead.status = decision
        audit.record(session, actor, "lead_decision", f"lead:{lead.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"offence": case.offence.code, "decision": decision})
        return _lead_info(lead)


def disagreement_view(rt: GalleryRuntime, actor: Actor, lead_id: int) -> dict[str, Any]:
    """For the supervisor deciding a disputed lead: both conclusions with their notes (the view is audited)."""
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
        assert cand is not None
        audit.record(session, actor, "view_disagreement", f"lead:{lead.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"candidate_id": cand.id})
        return {
            "lead_id": lead.id,
            "case_search_id": lead.case_search_id,
            "candidate_id": cand.id,
            "rank": cand.rank,
            "score": round(cand.score, 4),
            "analyst": {"username": mark.analyst, "conclusion": mark.conclusion, "notes": mark.notes,
                        "checklist": dict(mark.checklist or {}), "at": as_utc(mark.at).isoformat()},
            "verifier": {"username": lead.verifier, "result": lead.verification, "notes": lead.verification_notes,
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


def candidate_photo(rt: GalleryRuntime, actor: Actor, candidate_id: int) -> bytes:
    """The booking photo of a stored candidate (PNG) for the side-by-side comparison; the view is audited.

    The candidate must belong to a search of one of the actor's agency's cases (another agency's candidate is
    answered like a missing one, audited), and its photo's gallery must be the agency's own or shared with it for
    the request's purpose by an agreement in force.
    """
    from faceleads.gallery.models import Image
    from faceleads.vision.imaging import encode_png, load_image

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
        subject = session.get(Subject, cand.subject_id)
        image = session.get(Image, cand.image_id)
        assert subject is not None
        if image is None:
            raise NotFound(f"the photo of candidate {candidate_id} is no longer held (destroyed)")
        # A partner agency's photo stays viewable only while a sharing agreement in force covers its gallery for
        # the request's purpose (revoking the agreement takes effect at once; unknown means no).
        req = session.get(CaseRequest, cs.request_id)
        shared = gallery_shared(session, actor.agency_id, image.gallery_id, req.purpose.code if req else None)
        authorise(rt.session_factory, actor, Action.VIEW_GALLERY_IMAGE, f"image:{cand.image_id}",
                  subject.agency_id, case.occurrence_number, shared=shared,
                  not_found=f"no candidate {candidate_id} in a case search")
        data = rt.read_photo(subject, image)
        audit.record(session, actor, audit.AuditAction.VIEW_GALLERY_IMAGE, f"image:{image.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"candidate_id": cand.id, "case_search_id": cs.id})
        record_access(session, actor, owner_agency_id=subject.agency_id, action=audit.AuditAction.VIEW_GALLERY_IMAGE,
                      object_ref=f"image:{image.id}", subject_id=subject.id, image_id=image.id,
                      gallery_id=image.gallery_id, case=case.occurrence_number,
                      purpose=req.purpose.code if req else None)  # fmt: skip
        return encode_png(load_image(data, rt.settings).pixels)


def show_lead(rt: GalleryRuntime, actor: Actor, lead_id: int) -> LeadInfo:
    """A lead's state (analysts, supervisors; not the blind verification view)."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"lead:{lead_id}", None)
        lead, case = get_lead(session, lead_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"lead:{lead_id}", case.agency_id,
                  case.occurrence_number)
        return _lead_info(lead)


def list_leads(rt: GalleryRuntime, actor: Actor, case_id: int) -> list[LeadInfo]:
    """The leads of a case."""
    from faceleads.casework.common import get_case

    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        return [_lead_info(lead) for lead in session.scalars(
            select(Lead).where(Lead.case_id == case_id).order_by(Lead.id))]


__all__ = [
    "CandidateView",
    "LeadInfo",
    "VerificationTask",
    "adjudicate",
    "candidate_list",
    "candidate_photo",
    "disagreement_view",
    "list_leads",
    "release_lead",
    "resolve_disagreement",
    "show_lead",
    "submit_adjudication",
    "validate_checklist",
    "verification_queue",
    "verification_task",
    "verify_lead",
]
