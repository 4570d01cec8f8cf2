"""Exporting the lead report of a case search: gather the facts, render the PDF, record its SHA-256, audit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.casework import edits as edit_ops
from faceleads.casework.cases import describe_authorisation
from faceleads.casework.common import as_utc, authorise, get_case_search
from faceleads.casework.models import (
    Adjudication,
    Authorisation,
    Case,
    CaseRequest,
    CaseSearch,
    Lead,
    LeadReport,
    LeadStatus,
    Probe,
)
from faceleads.casework.probes import original_pixels
from faceleads.casework.regimes import ratification_state, require_unlocked
from faceleads.casework.report import ReportCandidate, ReportData, ReportPerson, ReportProbe, render_lead_report
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, allowed
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import FaceleadsError, ValidationError
from faceleads.gallery.models import Encounter, Image, SearchCandidate, SearchRecord, Subject
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.vision.imaging import encode_png, load_image
from faceleads.vision.types import ImageArray

THUMB_PX = 480
REPORTABLE = (LeadStatus.VERIFIED.value, LeadStatus.RELEASED.value)


@dataclass(frozen=True)
class ReportExport:
    """An exported report: the PDF bytes, their SHA-256 (recorded) and which leads it states."""

    report_id: int
    pdf: bytes
    sha256: str
    lead_ids: list[int]


def _thumb(pixels: ImageArray) -> bytes:
    h, w = pixels.shape[:2]
    scale = min(1.0, THUMB_PX / max(h, w))
    if scale < 1.0:
        pixels = np.asarray(cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))),
                                       interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return encode_png(pixels)


def _gallery_photo(rt: GalleryRuntime, session: Session, image_id: int) -> bytes | None:
    image = session.get(Image, image_id)
    subject = session.get(Subject, image.subject_id) if image is not None else None
    if image is None or subject is None:
        return None
    try:
        return _thumb(load_image(rt.read_photo(subject, image), rt.settings).pixels)
    except FaceleadsError:
        return None  # destroyed since the search: the report says the image is not available


def _probe_section(rt: GalleryRuntime, session: Session, case: Case, cs: CaseSearch) -> list[ReportProbe]:
    out = []
    for used in cs.probes_used:
        probe = session.get(Probe, used["probe_id"])
        original = edited = None
        if probe is not None:
            try:
                pixels = original_pixels(rt, case, probe)
                original = _thumb(pixels)
                # The edits as searched (recorded with the search), even if the probe was re-edited since.
                edited = _thumb(edit_ops.apply_edits(pixels, edit_ops.parse_edits(used["edits"])))
            except FaceleadsError:
                pass
        where = (f"video frame {used['frame_index']} at {used['frame_time_s']:.2f} s, track {used['track_number']}"
                 if used.get("frame_index") is not None else "photo")
        face = (f"drawn box {used['face_box']}" if used.get("face_source") == "drawn"
                else f"face {used.get('face_index') or 'tracked'}")
        out.append(ReportProbe(
            label=f"probe {used['probe_id']} ({where}, {face})",
            sha256=used["evidence_sha256"],
            edits=used.get("edits_described") or edit_ops.describe(edit_ops.parse_edits(used["edits"])),
            quality=used.get("quality"),
            weight=used.get("weight") if len(cs.probes_used) > 1 else None,
            original_png=original,
            edited_png=edited,
        ))
    return out


def _authorisation_text(
    session: Session, cs: CaseSearch, auth: Authorisation | None, req: CaseRequest, now: datetime
) -> str:
    """The report's line on the legal regime and the supervisor's authorisation or ratification."""
    if cs.regime == "exigent":
        decision = session.get(Authorisation, cs.ratification_id) if cs.ratification_id else None
        state = ratification_state(cs, session, now).replace("_", " ")
        due = f"{as_utc(cs.ratify_by):%Y-%m-%d %H:%M} UTC" if cs.ratify_by else "-"
        return (f"exigent regime: searched at once on the declared reason; supervisor's ratification {state} "
                f"(due {due})" + (f" - {describe_authorisation(decision)}" if decision else ""))
    return describe_authorisation(auth) or ("required" if req.purpose.requires_authorisation else "not required")


def export_report(rt: GalleryRuntime, actor: Actor, case_search_id: int) -> ReportExport:
    """Render the lead report of a case search, record its SHA-256 and audit the export.

    Analysts and supervisors (``export_report``) get the verified and released leads; an investigator
    (``view_report`` only) receives released leads only. Refused when there is no such lead.
    """
    with transaction(rt.session_factory) as session:
        cs, case = get_case_search(session, case_search_id)
        statuses: tuple[str, ...] = REPORTABLE
        if not allowed(actor, Action.EXPORT_REPORT, case.agency_id):
            authorise(rt.session_factory, actor, Action.VIEW_REPORT, f"case_search:{case_search_id}",
                      case.agency_id, case.occurrence_number)
            statuses = (LeadStatus.RELEASED.value,)
        require_unlocked(rt, session, actor, cs, case, audit.AuditAction.EXPORT)
        leads = list(session.scalars(
            select(Lead).where(Lead.case_search_id == cs.id, Lead.status.in_(statuses)).order_by(Lead.id)))
        if not leads:
            state = "verified" if statuses == REPORTABLE else "released"
            raise ValidationError(f"search {cs.id} has no {state} lead to report")
        req = session.get(CaseRequest, cs.request_id)
        record = session.get(SearchRecord, cs.search_id)
        agency = session.get(Agency, case.agency_id)
        assert req is not None and record is not None and agency is not None
        auth = session.scalars(select(Authorisation).where(
            Authorisation.request_id == req.id, Authorisation.kind == "purpose").order_by(Authorisation.id.desc())
        ).first()
        overrides = [session.get(Authorisation, i) for i in cs.quality_override_ids]
        override_text = "; ".join(describe_authorisation(a) or "" for a in overrides if a) or "not needed"
        people = [ReportPerson("analyst (search)", cs.analyst, as_utc(cs.created_at),
                               f"submitted {as_utc(cs.submitted_at):%Y-%m-%d %H:%M} UTC" if cs.submitted_at else "")]
        candidates = []
        for lead in leads:
            cand = session.get(SearchCandidate, lead.candidate_id)
            mark = session.get(Adjudication, lead.adjudication_id)
            assert cand is not None and mark is not None
            subject = session.get(Subject, cand.subject_id)
            encounter = session.get(Encounter, cand.encounter_id)
            owner = session.get(Agency, subject.agency_id) if subject else None
            verification = f"{lead.verification} by {lead.verifier}" if lead.verification else "not verified"
            if lead.supervisor_decision:
                verification += f"; supervisor {lead.supervisor} decided {lead.supervisor_decision}"
            candidates.append(ReportCandidate(
                rank=cand.rank, score=cand.score,
                subject_number=subject.subject_number if subject else "(destroyed)",
                agency=owner.code if owner else "",
                booking_number=encounter.booking_number if encounter else "(destroyed)",
                booking_date=encounter.booking_date.isoformat() if encounter else "",
                conclusion=mark.conclusion, verification=verification,
                photo_png=_gallery_photo(rt, session, cand.image_id),
            ))
            people.append(ReportPerson("analyst (conclusion)", mark.analyst, as_utc(mark.at),
                                       f"rank {cand.rank}: {mark.conclusion}"))
            if lead.verified_at and lead.verifier:
                people.append(ReportPerson("verifier (blind)", lead.verifier, as_utc(lead.verified_at),
                                           f"rank {cand.rank}: {lead.verification}"))
            if lead.decided_at and lead.supervisor:
                people.append(ReportPerson("supervisor", lead.supervisor, as_utc(lead.decided_at),
                                           f"rank {cand.rank}: {lead.supervisor_decision} - "
                                           f"{(lead.supervisor_reason or '')[:200]}"))
            if lead.released_at and lead.released_by:
                people.append(ReportPerson("released by", lead.released_by, as_utc(lead.released_at),
                                           f"rank {cand.rank}"))
        now = as_utc(utcnow())
        report = LeadReport(case_id=case.id, case_search_id=cs.id, lead_ids=[lead.id for lead in leads],
                            sha256="0" * 64, size_bytes=0, created_by=actor.username, created_at=now)
        session.add(report)
        session.flush()
        data = ReportData(
            report_ref=f"{agency.code}-LR-{report.id}",
            generated_at=now, generated_by=actor.username, agency=f"{agency.code} ({agency.name})",
            occurrence_number=case.occurrence_number,
            offence=f"{case.offence.code} - {case.offence.title}",
            investigator=case.investigator, case_justification=case.justification,
            purpose=f"{req.purpose.code} - {req.purpose.title}",
            purpose_authorisation=_authorisation_text(session, cs, auth, req, now),
            request_justification=req.justification,
            search_id=record.id, searched_at=as_utc(record.created_at), model_version=record.model_version,
            gallery_size=record.gallery_size, galleries=", ".join(f"#{g}" for g in record.gallery_ids),
            candidate_list_length=record.k, quality_override=override_text,
            probes=_probe_section(rt, session, case, cs), candidates=candidates,
            people=sorted(people, key=lambda p: p.at),
        )
        pdf = render_lead_report(data)
        digest = hashlib.sha256(pdf).hexdigest()
        report.sha256, report.size_bytes = digest, len(pdf)
        audit.record(session, actor, audit.AuditAction.EXPORT, f"lead_report:{report.id}", audit.Outcome.OK,
                     case=case.occurrence_number, purpose=req.purpose.code,
                     details={"report_sha256": digest, "lead_count": len(leads), "case_search_id": cs.id,
                              "format": "pdf"})
        return ReportExport(report.id, pdf, digest, [lead.id for lead in leads])


def list_reports(rt: GalleryRuntime, actor: Actor, case_id: int) -> list[dict[str, object]]:
    """The reports exported for a case (hashes, who, when)."""
    from faceleads.casework.common import get_case

    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        rows = session.scalars(select(LeadReport).where(LeadReport.case_id == case_id).order_by(LeadReport.id))
        return [{"id": r.id, "case_search_id": r.case_search_id, "lead_ids": r.lead_ids, "sha256": r.sha256,
                 "size_bytes": r.size_bytes, "created_by": r.created_by,
                 "created_at": as_utc(r.created_at).isoformat()} for r in rows]

