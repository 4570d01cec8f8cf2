"""Lead reports of a case search: gather the facts, render the PDF, record its SHA-256, keep the PDF (encrypted under
the case key) so that the page showing the hash delivers exactly those bytes, and let a recipient check a copy.

Who gets what: analysts and supervisors (``export_report``) report verified and released leads; an investigator
(``view_report`` only) receives released leads only, and may download a stored report only when every lead in it
has been released. Every export, download and check is audited; while the search is sealed for blind verification
a potential verifier gets nothing (:mod:`faceleads.casework.blind`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.casework import blind
from faceleads.casework import edits as edit_ops
from faceleads.casework.cases import describe_authorisation
from faceleads.casework.common import as_utc, authorise, case_key, get_case, get_case_search
from faceleads.casework.custody import evidence_timeline
from faceleads.casework.models import (
    Adjudication,
    Authorisation,
    Case,
    CaseRequest,
    CaseSearch,
    Evidence,
    Lead,
    LeadReport,
    LeadStatus,
    Probe,
    ProbeEditEvent,
)
from faceleads.casework.probes import original_pixels
from faceleads.casework.regimes import ratification_state, require_unlocked
from faceleads.casework.report import ReportCandidate, ReportData, ReportPerson, ReportProbe, render_lead_report
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, allowed
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import FaceleadsError, IntegrityError, NotFound, ValidationError
from faceleads.gallery.access import record_access
from faceleads.gallery.enrolment import enrolment_lock
from faceleads.gallery.geometry import template_geometry
from faceleads.gallery.models import Encounter, FaceTemplate, Image, SearchCandidate, SearchRecord, Subject
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.vision.compare import compare_crop_pixels, crop_landmarks, draw_box, draw_points
from faceleads.vision.imaging import encode_png, load_image
from faceleads.vision.types import ImageArray

THUMB_PX = 480
SCENE_PX = 900
REPORTABLE = (LeadStatus.VERIFIED.value, LeadStatus.RELEASED.value)


@dataclass(frozen=True)
class ReportExport:
    """An exported report: the PDF bytes, their SHA-256 (recorded) and which leads it states."""

    report_id: int
    pdf: bytes
    sha256: str
    lead_ids: list[int]
    reference: str = ""


@dataclass(frozen=True)
class ReportRecord:
    """A recorded lead report (no content): what a recipient needs to check a copy."""

    id: int
    reference: str
    case_id: int
    occurrence_number: str
    case_search_id: int
    lead_ids: list[int]
    sha256: str
    size_bytes: int
    created_by: str
    created_at: datetime
    stored: bool  # the PDF is kept and can be downloaded again

    @property
    def filename(self) -> str:
        return f"lead-report-{self.reference}.pdf"

    def sha256_file(self) -> str:
        """The detached checksum file (``sha256sum -c`` format)."""
        return f"{self.sha256}  {self.filename}\n"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["filename"] = self.filename
        return data


def report_context(sha256: str) -> str:
    """Blob-store context of a stored lead report (the store adds the case key id and the address)."""
    return f"lead-report|{sha256}"


def _thumb(pixels: ImageArray, px: int = THUMB_PX) -> bytes:
    h, w = pixels.shape[:2]
    scale = min(1.0, px / max(h, w))
    if scale < 1.0:
        pixels = np.asarray(cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))),
                                       interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return encode_png(pixels)


def _face_crop(pixels: ImageArray, landmarks: Any) -> bytes:
    """The aligned comparison crop of a face with its landmarks marked (the comparison view's geometry)."""
    return encode_png(draw_points(compare_crop_pixels(pixels, landmarks), crop_landmarks(landmarks)))


def _gallery_images(rt: GalleryRuntime, session: Session, image_id: int) -> tuple[bytes | None, bytes | None]:
    """(booking photo thumbnail, aligned crop with landmarks) of a candidate photo; None when no longer held."""
    image = session.get(Image, image_id)
    subject = session.get(Subject, image.subject_id) if image is not None else None
    if image is None or subject is None:
        return None, None
    template = session.scalars(select(FaceTemplate).where(FaceTemplate.image_id == image_id)).first()
    try:
        # Decoded reduced when large (a thumbnail and a 384-pixel crop); landmarks are in the original's pixels.
        loaded = load_image(rt.read_photo(subject, image), rt.settings, reduce_to=rt.settings.decode_reduce_pixels)
        # Box and landmarks are sealed with the subject's key (gallery.geometry), like the embedding.
        geometry = template_geometry(rt.keystore, subject, image, template) if template is not None else None
    except FaceleadsError:
        return None, None  # destroyed since the search: the report says the image is not available
    crop = _face_crop(loaded.pixels, loaded.to_decoded(geometry.landmarks)) if geometry is not None else None
    return _thumb(loaded.pixels), crop


def _ts(moment: datetime | None) -> str:
    return f"{as_utc(moment):%Y-%m-%d %H:%M:%S} UTC" if moment else ""


def _provenance(ev: Evidence, used: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("Source", ev.source),
        ("Obtained by", ev.obtained_by),
        ("Obtained at", _ts(ev.obtained_at)),
        ("Legal basis", ev.legal_basis),
        ("Received by", f"{ev.received_by} at {_ts(ev.received_at)}"),
        ("File", f"{ev.filename or '(no name)'} · {ev.format} · {ev.size_bytes} bytes · {ev.width}x{ev.height}"),
        ("Evidence SHA-256", ev.sha256),
    ]
    if used.get("frame_index") is not None:
        rows.append(("Video frame", f"frame {used['frame_index']} at {used['frame_time_s']:.2f} s, "
                                    f"track {used.get('track_number')}"))  # fmt: skip
    return rows


def _probe_section(rt: GalleryRuntime, session: Session, case: Case, cs: CaseSearch) -> list[ReportProbe]:
    out = []
    for used in cs.probes_used:
        probe = session.get(Probe, used["probe_id"])
        original = edited = scene = crop = None
        provenance: list[tuple[str, str]] = []
        history: list[str] = []
        if probe is not None:
            ev = session.get(Evidence, probe.evidence_id)
            if ev is not None:
                provenance = _provenance(ev, used)
            history = [f"version {e.version} by {e.by_username} at {_ts(e.at)}: "
                       f"{edit_ops.describe(edit_ops.parse_edits(e.edits)) or 'no edit'}"
                       for e in session.scalars(select(ProbeEditEvent).where(ProbeEditEvent.probe_id == probe.id)
                                                .order_by(ProbeEditEvent.version))]  # fmt: skip
            try:
                pixels = original_pixels(rt, case, probe)
                original = _thumb(pixels)
                # The edits as searched (recorded with the search), even if the probe was re-edited since.
                searched = edit_ops.apply_edits(pixels, edit_ops.parse_edits(used["edits"]))
                edited = _thumb(searched)
                if used.get("face_box"):
                    scene = _thumb(draw_box(searched, used["face_box"]), SCENE_PX)
                points = used.get("face_landmarks")
                if points is None and probe.edits_version == used.get("edits_version"):
                    points = probe.face_landmarks  # searches recorded before landmarks were kept with them
                if points:
                    crop = _face_crop(searched, points)
            except FaceleadsError:
                pass
        where = (f"video frame {used['frame_index']} at {used['frame_time_s']:.2f} s, track {used['track_number']}"
                 if used.get("frame_index") is not None else "photo")
        if used.get("face_source") == "drawn":
            face = "face in a box drawn by the analyst"
        elif used.get("face_index"):
            face = f"face {used['face_index']} of the faces found (boxed in the image below)"
        else:
            face = "tracked face"
        out.append(ReportProbe(
            label=f"probe {used['probe_id']} ({where}, {face})",
            sha256=used["evidence_sha256"],
            edits=used.get("edits_described") or edit_ops.describe(edit_ops.parse_edits(used["edits"])) or "none",
            quality=used.get("quality"),
            weight=used.get("weight") if len(cs.probes_used) > 1 else None,
            original_png=original, edited_png=edited, scene_png=scene, crop_png=crop,
            provenance=provenance, edit_history=history,
        ))  # fmt: skip
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
    """Render the lead report of a case search, record its SHA-256, keep the PDF encrypted and audit the export.

    Analysts and supervisors (``export_report``) get the verified and released leads; an investigator
    (``view_report`` only) receives released leads only. Refused when there is no such lead.
    """
    with enrolment_lock(rt, exclusive=False), transaction(rt.session_factory) as session:
        cs, case = get_case_search(session, case_search_id)
        statuses: tuple[str, ...] = REPORTABLE
        if not allowed(actor, Action.EXPORT_REPORT, case.agency_id):
            authorise(rt.session_factory, actor, Action.VIEW_REPORT, f"case_search:{case_search_id}",
                      case.agency_id, case.occurrence_number)
            statuses = (LeadStatus.RELEASED.value,)
        blind.refuse_if_sealed(rt.session_factory, session, actor, cs, case, "export")
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
        partner_photos: list[tuple[Subject, int, int]] = []  # (subject, image, gallery) of other agencies' records
        for lead in leads:
            cand = session.get(SearchCandidate, lead.candidate_id)
            mark = session.get(Adjudication, lead.adjudication_id)
            assert cand is not None and mark is not None
            subject = session.get(Subject, cand.subject_id)
            encounter = session.get(Encounter, cand.encounter_id)
            owner = session.get(Agency, subject.agency_id) if subject else None
            verification = f"{lead.verification} by {lead.verifier}" if lead.verification else "not verified"
            if lead.verifier_conclusion:
                verification += f" (own conclusion: {lead.verifier_conclusion.replace('_', ' ')})"
            if lead.supervisor_decision:
                verification += f"; supervisor {lead.supervisor} decided {lead.supervisor_decision}"
            photo, crop = _gallery_images(rt, session, cand.image_id)
            held = session.get(Image, cand.image_id) if photo is not None else None
            if subject is not None and held is not None and subject.agency_id != case.agency_id:
                partner_photos.append((subject, held.id, held.gallery_id))
            candidates.append(ReportCandidate(
                rank=cand.rank, score=cand.score,
                subject_number=subject.subject_number if subject else "(destroyed)",
                agency=owner.code if owner else "",
                booking_number=encounter.booking_number if encounter else "(destroyed)",
                booking_date=encounter.booking_date.isoformat() if encounter else "",
                conclusion=mark.conclusion, verification=verification, photo_png=photo, crop_png=crop,
            ))  # fmt: skip
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
        refs = {f"probe:{u['probe_id']}" for u in cs.probes_used} | {f"evidence:{u.get('evidence_id')}"
                                                                      for u in cs.probes_used}
        custody, custody_total = evidence_timeline(session, actor, case.agency_id, case.occurrence_number, case.id,
                                                   refs)  # fmt: skip
        now = as_utc(utcnow())
        report = LeadReport(case_id=case.id, case_search_id=cs.id, lead_ids=[lead.id for lead in leads],
                            sha256="0" * 64, size_bytes=0, created_by=actor.username, created_at=now)
        session.add(report)
        session.flush()
        reference = f"{agency.code}-LR-{report.id}"
        for subject, image_id, gallery_id in partner_photos:  # the owning agency sees its records in the report
            record_access(session, actor, owner_agency_id=subject.agency_id, action=audit.AuditAction.EXPORT,
                          object_ref=f"lead_report:{report.id}", subject_id=subject.id, image_id=image_id,
                          gallery_id=gallery_id, case=case.occurrence_number, purpose=req.purpose.code)  # fmt: skip
        data = ReportData(
            report_ref=reference,
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
            custody=[(str(e.seq), _ts(e.at), e.username, e.what, e.object_ref) for e in custody],
            custody_total=custody_total,
        )  # fmt: skip
        pdf = render_lead_report(data)
        digest = hashlib.sha256(pdf).hexdigest()
        report.sha256, report.size_bytes = digest, len(pdf)
        case_key(rt, case)
        report.store_address = rt.store.put(case.key_id, pdf, report_context(digest))
        audit.record(session, actor, audit.AuditAction.EXPORT, f"lead_report:{report.id}", audit.Outcome.OK,
                     case=case.occurrence_number, purpose=req.purpose.code,
                     details={"report_sha256": digest, "lead_count": len(leads), "case_search_id": cs.id,
                              "format": "pdf"})
        return ReportExport(report.id, pdf, digest, [lead.id for lead in leads], reference)


def _record(session: Session, report: LeadReport, case: Case) -> ReportRecord:
    code = session.scalar(select(Agency.code).where(Agency.id == case.agency_id)) or str(case.agency_id)
    return ReportRecord(report.id, f"{code}-LR-{report.id}", case.id, case.occurrence_number, report.case_search_id,
                        list(report.lead_ids), report.sha256, report.size_bytes, report.created_by,
                        as_utc(report.created_at), report.store_address is not None)  # fmt: skip


def _authorise_report(rt: GalleryRuntime, session: Session, actor: Actor, report_id: int, what: str
                      ) -> tuple[LeadReport, Case]:
    """A stored report of the actor's agency that they may receive: exporters (analysts, supervisors) any;
    an investigator only one whose every lead has been released."""
    ref = f"lead_report:{report_id}"
    action = Action.EXPORT_REPORT if allowed(actor, Action.EXPORT_REPORT) else Action.VIEW_REPORT
    authorise(rt.session_factory, actor, action, ref, None)
    report = session.get(LeadReport, report_id)
    if report is None:
        raise NotFound(f"no lead report {report_id}")
    case = get_case(session, report.case_id)
    authorise(rt.session_factory, actor, action, ref, case.agency_id, case.occurrence_number)
    cs = session.get(CaseSearch, report.case_search_id)
    assert cs is not None
    blind.refuse_if_sealed(rt.session_factory, session, actor, cs, case, what)
    require_unlocked(rt, session, actor, cs, case, what, ref)
    if action is Action.VIEW_REPORT:
        statuses = set(session.scalars(select(Lead.status).where(Lead.id.in_(list(report.lead_ids)))))
        if statuses != {LeadStatus.RELEASED.value}:
            audit.record_now(rt.session_factory, actor, what, ref, audit.Outcome.DENIED, case=case.occurrence_number,
                             details={"reason": "not every lead of the report is released"})  # fmt: skip
            raise NotFound(f"no lead report {report_id}")
    return report, case


def report_record(rt: GalleryRuntime, actor: Actor, report_id: int) -> ReportRecord:
    """A stored report's reference, SHA-256 and who made it when (authorised like a download; not audited: no
    content)."""
    with rt.session_factory() as session:
        report, case = _authorise_report(rt, session, actor, report_id, "view_report")
        return _record(session, report, case)


def report_pdf(rt: GalleryRuntime, actor: Actor, report_id: int) -> tuple[bytes, ReportRecord]:
    """The stored PDF of a report, checked against its recorded SHA-256 (the download is audited)."""
    with transaction(rt.session_factory) as session:
        report, case = _authorise_report(rt, session, actor, report_id, "report_download")
        if report.store_address is None:
            raise NotFound(f"lead report {report_id} was not kept (made before reports were stored, or purged)")
        pdf = rt.store.get(case.key_id, report.store_address, report_context(report.sha256))
        if hashlib.sha256(pdf).hexdigest() != report.sha256:
            raise IntegrityError(f"lead report {report_id} does not match its recorded SHA-256")
        audit.record(session, actor, "report_download", f"lead_report:{report.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"report_sha256": report.sha256})
        return pdf, _record(session, report, case)


def check_report(rt: GalleryRuntime, actor: Actor, data: bytes) -> tuple[str, ReportRecord | None]:
    """Look up a copy of a report by its SHA-256 among the agency's recorded reports: (its SHA-256, the report or
    None when nothing matches — the copy differs from every report faceleads produced). The check is audited."""
    action = Action.EXPORT_REPORT if allowed(actor, Action.EXPORT_REPORT) else Action.VIEW_REPORT
    authorise(rt.session_factory, actor, action, "lead_report:check", actor.agency_id)
    if not data:
        raise ValidationError("the file to check is empty")
    digest = hashlib.sha256(data).hexdigest()
    with rt.session_factory() as session:
        row = session.execute(
            select(LeadReport, Case).join(Case, Case.id == LeadReport.case_id)
            .where(LeadReport.sha256 == digest, Case.agency_id == actor.agency_id)
            .order_by(LeadReport.id)  # the same bytes issued twice: the first issue
        ).first()
        found = _record(session, row[0], row[1]) if row else None
    audit.record_now(rt.session_factory, actor, "report_check", "lead_report:check", audit.Outcome.OK,
                     case=found.occurrence_number if found else None,
                     details={"sha256": digest, "matched": found.id if found else 0})  # fmt: skip
    return digest, found


@dataclass(frozen=True)
class SearchReports:
    """The reports of one case search the actor may receive, and how many of its leads a new report would state."""

    case_id: int
    occurrence_number: str
    case_search_id: int
    reports: list[ReportRecord]
    reportable_leads: int
    released_only: bool  # the actor receives released leads only (an investigator)


def reports_of_search(rt: GalleryRuntime, actor: Actor, case_search_id: int) -> SearchReports:
    """The lead reports issued for a case search that the actor may receive (no content, not audited)."""
    exporter = allowed(actor, Action.EXPORT_REPORT)
    action = Action.EXPORT_REPORT if exporter else Action.VIEW_REPORT
    ref = f"case_search:{case_search_id}"
    authorise(rt.session_factory, actor, action, ref, None)
    with rt.session_factory() as session:
        cs, case = get_case_search(session, case_search_id)
        authorise(rt.session_factory, actor, action, ref, case.agency_id, case.occurrence_number)
        blind.refuse_if_sealed(rt.session_factory, session, actor, cs, case, "view_report")
        statuses = REPORTABLE if exporter else (LeadStatus.RELEASED.value,)
        leads = {lead.id: lead.status for lead in session.scalars(select(Lead).where(Lead.case_search_id == cs.id))}
        records = []
        for report in session.scalars(select(LeadReport).where(LeadReport.case_search_id == cs.id)
                                      .order_by(LeadReport.id.desc())):
            if exporter or all(leads.get(i) == LeadStatus.RELEASED.value for i in report.lead_ids):
                records.append(_record(session, report, case))
        return SearchReports(case.id, case.occurrence_number, cs.id, records,
                             sum(1 for status in leads.values() if status in statuses), not exporter)


def list_reports(rt: GalleryRuntime, actor: Actor, case_id: int) -> list[dict[str, object]]:
    """The reports exported for a case (hashes, who, when); those of searches sealed for the actor are left out,
    and an investigator sees only reports whose every lead is released."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        sealed = blind.sealed_search_ids(session, actor, case.agency_id, case_id)
        released_only = not allowed(actor, Action.EXPORT_REPORT, case.agency_id)
        status = {lead.id: lead.status for lead in session.scalars(select(Lead).where(Lead.case_id == case_id))}
        rows = session.scalars(select(LeadReport).where(LeadReport.case_id == case_id).order_by(LeadReport.id))
        return [_record(session, r, case).to_json() for r in rows if r.case_search_id not in sealed and (
            not released_only or all(status.get(i) == LeadStatus.RELEASED.value for i in r.lead_ids))]


__all__ = ["ReportExport", "ReportRecord", "SearchReports", "check_report", "export_report", "list_reports",
           "report_pdf", "report_record", "reports_of_search"]
