"""Running a search for a request: every precondition of a lawful search, single or fused probes, and the link
between the casework request and the gallery's stored search record (whose candidate list is never changed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.casework import blind
from faceleads.casework import edits as edit_ops
from faceleads.casework.cases import purpose_authorisation
from faceleads.casework.common import (
    as_utc,
    authorise,
    clean_text,
    get_case_search,
    get_request,
    require_certified,
    require_open,
)
from faceleads.casework.fusion import fuse_templates
from faceleads.casework.models import Case, CaseRequest, CaseSearch, Probe, Ratification, RequestStatus
from faceleads.casework.probes import probe_template
from faceleads.casework.regimes import exigent_deadline, ratification_state, regime_of, require_unlocked, windows
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action
from faceleads.core.regime import Regime, in_force
from faceleads.core.uow import transaction
from faceleads.db import utcnow
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.gallery.models import SearchRecord
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.search import SearchResult, check_length, search_embedding
from faceleads.gallery.visibility import visible_gallery_ids


@dataclass(frozen=True)
class CaseSearchInfo:
    """A search made for a request, with the probes (and edits) it used and its stored candidate list."""

    id: int
    case_id: int
    request_id: int
    search_id: int
    status: str
    analyst: str
    created_at: datetime
    probes_used: list[dict[str, Any]]
    fused: bool
    result: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data


def run_search(
    rt: GalleryRuntime,
    actor: Actor,
    request_id: int,
    probe_ids: Sequence[int],
    *,
    top: int | None = None,
    floor: float | None = None,
    at: datetime | date | None = None,
) -> CaseSearchInfo:
    """Search the gallery for a request with one probe, or several probes of the same person fused by quality.

    This is the only way a 1:N search runs (the quick search short form ends here too). Refused when: the actor
    may not search (role, or certification expired); the case is not open or lacks an offence, investigator or
    justification, or the request a justification; the purpose was withdrawn; the purpose's regime for the agency
    changed since the request was opened, or is live deployment; the purpose awaits (or was refused) a supervisor's
    authorisation, or that authorisation expired; an exigent request was declared longer ago than the ratification
    window; no gallery may be searched for the purpose (within the authorisation's gallery scope); a probe has no
    face chosen; a probe is below the quality floor without a supervisor's recorded override. Every refusal is
    audited. A search on an exigent request must be ratified by a supervisor within the agency's window
    (``casework.regimes``).
    """
    return run_search_with_result(rt, actor, request_id, probe_ids, top=top, floor=floor, at=at)[0]


def run_search_with_result(
    rt: GalleryRuntime,
    actor: Actor,
    request_id: int,
    probe_ids: Sequence[int],
    *,
    top: int | None = None,
    floor: float | None = None,
    at: datetime | date | None = None,
) -> tuple[CaseSearchInfo, SearchResult]:
    """:func:`run_search`, also returning the gallery's search result (candidates with their booking details)."""
    if not probe_ids:
        raise ValidationError("a search needs at least one probe")
    ids = list(dict.fromkeys(int(p) for p in probe_ids))
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.SEARCH, f"request:{request_id}", None)
        req, case = get_request(session, request_id)
        authorise(rt.session_factory, actor, Action.SEARCH, f"request:{request_id}", case.agency_id,
                  case.occurrence_number)
        try:
            check_length(top, rt.settings.candidate_list_length)
            if floor is not None and not -1.0 <= floor <= 1.0:
                raise ValidationError(f"score floor must be between -1 and 1, got {floor}")
            prepared = _prepare(rt, session, actor, req, case, ids, at)
        except (PermissionDenied, ValidationError) as exc:
            # A refused search is audited like any other refusal, with the reason (never the probe).
            outcome = audit.Outcome.DENIED if isinstance(exc, PermissionDenied) else "refused"
            audit.record_now(rt.session_factory, actor, audit.AuditAction.SEARCH, f"request:{request_id}", outcome,
                             case=case.occurrence_number, purpose=req.purpose.code,
                             details={"reason": str(exc)[:400]})
            raise
    (vectors, qualities, used, overrides, occurrence, offence_code, justification, purpose_code, face_index,
     faces_found) = prepared.core
    case_id, regime = case.id, prepared.regime
    if len(vectors) == 1:
        vector, weights = vectors[0], [1.0]
    else:
        fused = fuse_templates(vectors, qualities)
        vector, weights = fused.vector, fused.weights
    for entry, weight in zip(used, weights, strict=True):
        entry["weight"] = round(weight, 6)
    result: SearchResult = search_embedding(
        rt, actor, vector,
        probe_sha256=used[0]["evidence_sha256"], face_index=face_index, faces_found=faces_found,
        probe_quality=float(sum(w * q for w, q in zip(weights, qualities, strict=True))),
        case=occurrence, offence=offence_code, reason=justification, purpose=purpose_code,
        top=top, floor=floor, at=at, gallery_scope=prepared.gallery_scope, regime=regime.value,
    )
    with transaction(rt.session_factory) as session:
        cs = CaseSearch(case_id=case_id, request_id=request_id, search_id=result.search_id, probes_used=used,
                        quality_override_ids=overrides, analyst=actor.username, analyst_user_id=actor.user_id,
                        regime=regime.value)
        if regime is Regime.EXIGENT:
            cs.ratify_by = exigent_deadline(session, rt.settings, prepared.agency_id, utcnow())
            cs.ratification = Ratification.PENDING.value
        session.add(cs)
        session.flush()
        audit.record(session, actor, "case_search", f"case_search:{cs.id}", audit.Outcome.OK, case=occurrence,
                     purpose=purpose_code,
                     details={"search_id": result.search_id, "probe_count": len(used),
                              "fused": len(used) > 1, "candidate_count": len(result.candidates),
                              "override_count": len(overrides), "regime": regime.value,
                              "ratify_by": as_utc(cs.ratify_by).isoformat() if cs.ratify_by else None})
        info = CaseSearchInfo(cs.id, case_id, request_id, result.search_id, cs.status, actor.username,
                              as_utc(cs.created_at), used, len(used) > 1, result.to_json())
        return info, result


@dataclass(frozen=True)
class Prepared:
    """Everything a lawful search needs, checked: the probe templates and records, and the request's regime and
    the gallery scope of its authorisation (None: every gallery the agency may search for the purpose)."""

    core: tuple[list[Any], list[float], list[dict[str, Any]], list[int], str, str, str, str, int, int]
    regime: Regime
    gallery_scope: list[int] | None
    agency_id: int


def _check_regime(
    rt: GalleryRuntime, session: Session, req: CaseRequest, case: Case, now: datetime
) -> tuple[Regime, list[int] | None]:
    """The request's regime rules at the moment of the search; returns the regime and the gallery scope."""
    purpose = req.purpose
    regime = regime_of(session, case.agency_id, purpose)
    if regime.value != req.regime:
        raise PermissionDenied(
            f"purpose {purpose.code!r} moved from the {req.regime} to the {regime.value} regime since request "
            f"{req.id} was opened: open a new request"
        )
    if regime is Regime.LIVE_DEPLOYMENT:
        raise PermissionDenied(f"purpose {purpose.code!r} belongs to the live deployment regime: no retrospective "
                               "search may use it")
    if regime is Regime.EXIGENT:
        window, _ = windows(session, rt.settings, case.agency_id)
        lapses = as_utc(req.requested_at) + timedelta(hours=window)
        if now >= lapses:
            raise PermissionDenied(
                f"exigent request {req.id} was declared at {as_utc(req.requested_at):%Y-%m-%d %H:%M} UTC and lapsed "
                f"after the {window} h window: declare a new exigent request, or ask for an investigative authorisation"
            )
        return regime, None
    auth = purpose_authorisation(session, req.id)
    if auth is None:
        if purpose.requires_authorisation:
            raise PermissionDenied(
                f"purpose {purpose.code!r} requires a supervisor's authorisation before the search can run"
            )
        return regime, None
    if not auth.granted:
        raise PermissionDenied(f"request {req.id}'s authorisation was refused")
    if not in_force(auth.expires_at, now):
        until = f" at {as_utc(auth.expires_at):%Y-%m-%d %H:%M} UTC" if auth.expires_at else ""
        raise PermissionDenied(
            f"the supervisor's authorisation of request {req.id} expired{until}: a supervisor must authorise it again"
        )
    return regime, list(auth.gallery_ids) if auth.gallery_ids else None


def _prepare(
    rt: GalleryRuntime,
    session: Session,
    actor: Actor,
    req: CaseRequest,
    case: Case,
    ids: list[int],
    at: datetime | date | None,
) -> Prepared:
    """Check every precondition of a lawful search and decrypt the probe templates."""
    now = as_utc(utcnow())
    require_certified(session, actor, now)
    require_open(case)
    # Belt and braces: these are required at creation, but a search must never run without them.
    for name, value in (("occurrence number", case.occurrence_number), ("investigator", case.investigator),
                        ("case justification", case.justification),
                        ("request justification", req.justification)):
        clean_text(value, name, 4000)
    if case.offence is None or not case.offence.code:
        raise ValidationError("the case has no offence")
    purpose = req.purpose
    if req.status == RequestStatus.AWAITING_AUTHORISATION.value:
        raise PermissionDenied(
            f"purpose {purpose.code!r} requires a supervisor's authorisation before the search can run"
        )
    if req.status != RequestStatus.READY.value:
        raise PermissionDenied(f"request {req.id} is {req.status}; it cannot be searched")
    if not purpose.active:
        raise ValidationError(f"purpose {purpose.code!r} has been withdrawn")
    regime, scope = _check_regime(rt, session, req, case, now)
    searchable = visible_gallery_ids(session, actor.agency_id, purpose.code, at)
    if scope is not None:
        searchable = [g for g in searchable if g in set(scope)]
    if not searchable:
        within = " within the authorisation's galleries" if scope is not None else ""
        raise PermissionDenied(
            f"no gallery may be searched for purpose {purpose.code!r} by agency "
            f"{actor.agency_code or actor.agency_id}{within}"
        )
    probes: list[Probe] = []
    for pid in ids:
        probe = session.get(Probe, pid)
        if probe is None or probe.case_id != case.id:
            raise ValidationError(f"probe {pid} is not evidence of case {case.occurrence_number}")
        probes.append(probe)
    blind.refuse_sealed_evidence(rt.session_factory, session, actor, case, probes)
    floor_q = rt.settings.quality_floor
    vectors, qualities, used, overrides = [], [], [], []
    for probe in probes:
        vector = probe_template(rt, case, probe)  # refuses a probe without a chosen face
        if probe.model_version != rt.model_version:
            raise ValidationError(f"probe {probe.id} was made with another model: pick its face again")
        q = float(probe.quality_overall or 0.0)
        if q < floor_q and probe.quality_override_id is None:
            raise PermissionDenied(
                f"probe {probe.id} quality {q:.3f} is below the floor {floor_q}: a supervisor must record an "
                "override reason before it can be searched"
            )
        if probe.quality_override_id is not None:
            overrides.append(probe.quality_override_id)
        vectors.append(vector)
        qualities.append(q)
        used.append({
            "probe_id": probe.id,
            "evidence_id": probe.evidence_id,
            "evidence_sha256": probe.evidence.sha256,
            "frame_index": probe.frame_index,
            "frame_time_s": probe.frame_time_s,
            "track_number": probe.track_number,
            "edits": list(probe.edits or []),
            "edits_version": probe.edits_version,
            "edits_described": edit_ops.describe(edit_ops.parse_edits(probe.edits or [])),
            "face_source": probe.face_source,
            "face_index": probe.face_index,
            "face_box": probe.face_box,
            "face_landmarks": probe.face_landmarks,  # in the edited image, for the report's aligned crop
            "quality": q,
        })
    first = probes[0]
    return Prepared((vectors, qualities, used, overrides, case.occurrence_number, case.offence.code,
                     req.justification, purpose.code, first.face_index or 0, first.faces_found or 1),
                    regime, scope, case.agency_id)


def show_case_search(
    rt: GalleryRuntime, actor: Actor, case_search_id: int, *, not_found: str | None = None
) -> CaseSearchInfo:
    """A recorded case search with its stored candidate list (analysts of the agency; the view is audited)."""
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", None)
        try:
            cs, case = get_case_search(session, case_search_id)
        except NotFound:
            raise NotFound(not_found or f"no case search {case_search_id}") from None
        authorise(rt.session_factory, actor, Action.ADJUDICATE, f"case_search:{case_search_id}", case.agency_id,
                  case.occurrence_number, not_found=not_found)
        blind.refuse_if_sealed(rt.session_factory, session, actor, cs, case, "view_candidates")
        require_unlocked(rt, session, actor, cs, case, "view_candidates")
        record = session.get(SearchRecord, cs.search_id)
        assert record is not None
        result = {
            "search_id": record.id,
            "model_version": record.model_version,
            "gallery_size": record.gallery_size,
            "k": record.k,
            "candidates": [{"rank": c.rank, "score": round(c.score, 4), "subject_id": c.subject_id,
                            "encounter_id": c.encounter_id, "image_id": c.image_id} for c in record.candidates],
        }
        audit.record(session, actor, "view_candidates", f"case_search:{cs.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"search_id": record.id})
        return CaseSearchInfo(cs.id, cs.case_id, cs.request_id, cs.search_id, cs.status, cs.analyst,
                              as_utc(cs.created_at), list(cs.probes_used), len(cs.probes_used) > 1, result)


def list_case_searches(rt: GalleryRuntime, actor: Actor, case_id: int) -> list[dict[str, Any]]:
    """The searches of a case (ids, status, analyst, time; no candidates). A search sealed for the actor (a lead
    of it awaits their possible blind verification) is listed as ``{"id", "sealed": True}`` only."""
    from faceleads.casework.common import get_case

    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        sealed = blind.sealed_search_ids(session, actor, case.agency_id, case_id)
        rows = session.scalars(select(CaseSearch).where(CaseSearch.case_id == case_id).order_by(CaseSearch.id))
        now = as_utc(utcnow())
        return [{"id": r.id, "sealed": True} if r.id in sealed else
                {"id": r.id, "request_id": r.request_id, "search_id": r.search_id, "status": r.status,
                 "analyst": r.analyst, "created_at": as_utc(r.created_at).isoformat(),
                 "submitted_at": as_utc(r.submitted_at).isoformat() if r.submitted_at else None,
                 "sealed": False,
                 "probe_ids": [u["probe_id"] for u in r.probes_used], "regime": r.regime,
                 "ratification": ratification_state(r, session, now),
                 "ratify_by": as_utc(r.ratify_by).isoformat() if r.ratify_by else None} for r in rows]


def show_search(rt: GalleryRuntime, actor: Actor, search_id: int) -> CaseSearchInfo:
    """The case search that recorded gallery search ``search_id`` (:func:`show_case_search`: authorised, audited).

    Every recorded search belongs to a case search; one of another agency is answered like a missing one.
    """
    authorise(rt.session_factory, actor, Action.ADJUDICATE, f"search:{search_id}", None)
    with rt.session_factory() as session:
        case_search_id = session.scalars(select(CaseSearch.id).where(CaseSearch.search_id == search_id)).first()
    if case_search_id is None:
        raise NotFound(f"no search {search_id}")
    return show_case_search(rt, actor, case_search_id, not_found=f"no search {search_id}")


def recent_case_searches(rt: GalleryRuntime, actor: Actor, limit: int = 20) -> list[dict[str, Any]]:
    """The actor's own latest case searches (ids, case, status, time; no candidates), newest first."""
    authorise(rt.session_factory, actor, Action.SEARCH, "case_searches/mine", actor.agency_id)
    with rt.session_factory() as session:
        rows = session.execute(
            select(CaseSearch, Case.occurrence_number)
            .join(Case, Case.id == CaseSearch.case_id)
            .where(Case.agency_id == actor.agency_id, CaseSearch.analyst == actor.username)
            .order_by(CaseSearch.id.desc())
            .limit(max(1, min(int(limit), 200)))
        ).all()
        return [{"id": cs.id, "case_id": cs.case_id, "occurrence_number": number, "search_id": cs.search_id,
                 "status": cs.status, "created_at": as_utc(cs.created_at).isoformat()} for cs, number in rows]
