"""Destruction requests: request, eligibility checklist, decision, crash-safe execution and certificate.

See docs/destruction.md. Execution is a resumable state machine; ``DestructionRequest.step`` records the last step
committed, and each step is idempotent, so a run killed at any point (even ``kill -9``) is completed by running it
again:

1. **mark** — one transaction: subject ``destroying`` (search and enrolment ignore every subject that is not
   ``active``), its blob addresses and counts recorded on the request; then the subject leaves this process's index.
2. **shred the key** — ``KeyStore.destroy``: from here every blob and template of the subject is unreadable, in
   this store and in every backup of it.
3. **delete blobs** — the encrypted originals leave the blob store.
4. **delete records** — one transaction: templates deleted; image and encounter rows deleted, except those an
   earlier search's candidate list points at, which are scrubbed to non-biometric tombstones; the subject row is
   reduced to a tombstone (subject number replaced by a one-way hash, demographic fields cleared).
5. **complete** — one transaction: subject ``destroyed``, certificate written and its SHA-256 stored, audited.

No step ever leaves a subject searchable: it stops being ``active`` before anything is deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from faceleads import identifiers
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.uow import transaction
from faceleads.db import Agency, system_lock, utcnow
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.gallery import changefeed
from faceleads.gallery.models import (
    Disposition,
    Encounter,
    FaceTemplate,
    Image,
    SearchCandidate,
    Subject,
    SubjectStatus,
)
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.governance.criteria import (
    DEFAULT_CRITERIA,
    agency_criteria,
    assess,
    from_snapshot,
    snapshot,
    subject_facts,
)
from faceleads.governance.models import DestructionRequest, RequestStatus, Step
from faceleads.identifiers import Kind

#: The default eligibility checklist (an agency may administer its own: :mod:`faceleads.governance.criteria`).
CHECKLIST_ITEMS: dict[str, str] = {c.code: c.text for c in DEFAULT_CRITERIA}

CERTIFICATE_FORMAT = "faceleads-destruction-certificate-v1"
TOMBSTONE_PREFIX = "destroyed:"
MIN_REASON_CHARS = 10

#: Observers called after each committed execution step (with the step's name) and after each blob deleted
#: (``"blob"``). Used by the crash tests to kill the process at a chosen point; useful for tracing too.
step_hooks: list[Callable[[str], None]] = []

ProgressCallback = Callable[[str, int, int], None]


def _after(point: str) -> None:
    for hook in list(step_hooks):
        hook(point)


# --------------------------------------------------------------------------------------------- views


@dataclass(frozen=True)
class RequestView:
    """A destruction request as shown to users (no biometric content)."""

    id: int
    agency: str
    subject_id: int
    subject_number: str
    subject_status: str
    requester: str
    grounds: str
    recorded_by: str
    recorded_at: datetime
    checklist: dict[str, Any]
    status: str
    decision_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    step: int
    runs: int
    completed_at: datetime | None
    certificate_sha256: str | None
    # The request's checklist: [{"code", "text", "check", "parameter", "assessment": {"verdict", "explanation"}}]
    # (the assessment, what the records say, only while the request is open).
    criteria: list[dict[str, Any]] = field(default_factory=list)
    origin: str = "request"

    @property
    def codes(self) -> list[str]:
        return [str(c["code"]) for c in self.criteria]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "id": self.id,
            "agency": self.agency,
            "subject_id": self.subject_id,
            "subject_number": self.subject_number,
            "subject_status": self.subject_status,
            "requester": self.requester,
            "grounds": self.grounds,
            "recorded_by": self.recorded_by,
            "recorded_at": iso_utc(self.recorded_at),
            "checklist": self.checklist,
            "checklist_complete": checklist_complete(self.checklist, self.codes),
            "criteria": self.criteria,
            "items": {str(c["code"]): str(c["text"]) for c in self.criteria},
            "origin": self.origin,
            "status": self.status,
            "decision_reason": self.decision_reason,
            "decided_by": self.decided_by,
            "decided_at": iso_utc(self.decided_at),
            "step": Step(self.step).name.lower(),
            "runs": self.runs,
            "completed_at": iso_utc(self.completed_at),
            "certificate_sha256": self.certificate_sha256,
        }


def iso_utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return audit.iso_utc(moment)


def _criteria_json(session: Session, req: DestructionRequest) -> list[dict[str, Any]]:
    items = from_snapshot(req.criteria)
    facts = subject_facts(session, req.subject_id) if req.status == RequestStatus.REQUESTED.value else None
    out = []
    for item in items:
        data = item.to_json()
        if facts is not None:
            found = assess(item, facts)
            data["assessment"] = {"verdict": found.verdict, "explanation": found.explanation}
        out.append(data)
    return out


def _view(session: Session, req: DestructionRequest) -> RequestView:
    subject = session.get(Subject, req.subject_id)
    code = session.execute(select(Agency.code).where(Agency.id == req.agency_id)).scalar_one()
    return RequestView(
        id=req.id,
        agency=code,
        subject_id=req.subject_id,
        subject_number=subject.subject_number if subject else "?",
        subject_status=subject.status if subject else "missing",
        requester=req.requester,
        grounds=req.grounds,
        recorded_by=req.recorded_by,
        recorded_at=req.recorded_at,
        checklist=dict(req.checklist or {}),
        status=req.status,
        decision_reason=req.decision_reason,
        decided_by=req.decided_by,
        decided_at=req.decided_at,
        step=req.step,
        runs=req.runs,
        completed_at=req.completed_at,
        certificate_sha256=req.certificate_sha256,
        criteria=_criteria_json(session, req),
        origin=req.origin or "request",
    )


def checklist_complete(checklist: dict[str, Any], codes: list[str] | None = None) -> bool:
    """Whether every item of the checklist ``codes`` (default: :data:`CHECKLIST_ITEMS`) is recorded as satisfied."""
    items = CHECKLIST_ITEMS if codes is None else codes
    return all(bool((checklist.get(item) or {}).get("satisfied")) for item in items)


def subject_tombstone_number(agency_id: int, subject_number: str) -> str:
    """What replaces a destroyed subject's number: ``destroyed:`` + 40 hex of SHA-256(agency id, number).

    One-way, so the tombstone does not show the number; recomputable, so a records officer who is asked "was
    subject X destroyed?" can answer. It is a pseudonym, not anonymisation: subject numbers are guessable.
    """
    if subject_number.startswith(TOMBSTONE_PREFIX):
        return subject_number
    digest = hashlib.sha256(f"{agency_id}\0{subject_number}".encode()).hexdigest()[:40]
    return TOMBSTONE_PREFIX + digest


# --------------------------------------------------------------------------------------------- request


def _text(value: str, name: str, limit: int, minimum: int = 1) -> str:
    if not isinstance(value, str) or len(value.strip()) < minimum:
        raise ValidationError(f"{name} is required" if minimum <= 1 else f"{name} needs at least {minimum} characters")
    value = value.strip()
    if len(value) > limit:
        raise ValidationError(f"{name} is limited to {limit} characters")
    return value


def find_subject_id(rt: GalleryRuntime, actor: Actor, subject_number: str) -> int:
    """The id of subject ``subject_number`` of the actor's agency (NotFound otherwise)."""
    number = identifiers.normalise(Kind.SUBJECT, subject_number)
    with rt.session_factory() as session:
        sid = session.execute(
            select(Subject.id).where(Subject.agency_id == actor.agency_id, Subject.subject_number == number)
        ).scalar_one_or_none()
    if sid is None:
        raise NotFound(f"agency {actor.agency_code or actor.agency_id} has no subject {subject_number!r}")
    return int(sid)


def _record(session: Session, actor: Actor, req: DestructionRequest, stage: str, **details: Any) -> None:
    audit.record(
        session,
        actor,
        audit.AuditAction.DESTRUCTION,
        f"destruction_request:{req.id}",
        audit.Outcome.OK,
        details={"stage": stage, "subject_id": req.subject_id, **details},
    )


def request_destruction(
    rt: GalleryRuntime, actor: Actor, subject_id: int, *, requester: str, grounds: str
) -> RequestView:
    """Record a request to destroy subject ``subject_id``: who asks and on what grounds.

    Refused (:class:`ValidationError`) for a subject that is not active or already has an open request.
    """
    requester = _text(requester, "requester", 200)
    grounds = _text(grounds, "grounds", 4000, MIN_REASON_CHARS)
    # The role first, then the record's agency: another agency's subject is answered like a missing one.
    enforce(rt.session_factory, actor, Action.DESTRUCTION_REQUEST, f"subject:{subject_id}")
    with rt.session_factory() as session:
        subject = session.get(Subject, subject_id)
        if subject is None:
            raise NotFound(f"no subject {subject_id}")
    enforce(rt.session_factory, actor, Action.DESTRUCTION_REQUEST, f"subject:{subject_id}", subject.agency_id,
            not_found=f"no subject {subject_id}")
    with transaction(rt.session_factory) as session:
        subject = session.get(Subject, subject_id)
        assert subject is not None
        req = open_request(session, actor, subject, requester=requester, grounds=grounds)
        return _view(session, req)


OPEN_STATUSES = (RequestStatus.REQUESTED.value, RequestStatus.APPROVED.value, RequestStatus.EXECUTING.value)


def open_request_id(session: Session, subject_id: int) -> int | None:
    """The subject's open destruction request (requested, approved or executing), if any."""
    return session.execute(
        select(DestructionRequest.id).where(
            DestructionRequest.subject_id == subject_id, DestructionRequest.status.in_(OPEN_STATUSES)
        )
    ).scalar_one_or_none()


def open_request(
    session: Session,
    actor: Actor,
    subject: Subject,
    *,
    requester: str,
    grounds: str,
    origin: str = "request",
    disposition_ids: list[int] | None = None,
) -> DestructionRequest:
    """Record a request in the caller's transaction (the caller has authorised ``destruction_request`` for the
    subject's agency), with a snapshot of the agency's eligibility checklist; audited (``requested``).

    Refused (:class:`ValidationError`) for a subject that is not active or already has an open request.
    """
    if subject.status != SubjectStatus.ACTIVE.value:
        raise ValidationError(f"subject {subject.id} is {subject.status}; only active subjects can be destroyed")
    open_ = open_request_id(session, subject.id)
    if open_ is not None:
        raise ValidationError(f"subject {subject.id} already has an open destruction request ({open_})")
    req = DestructionRequest(
        agency_id=subject.agency_id,
        subject_id=subject.id,
        requester=requester,
        grounds=grounds,
        recorded_by=actor.username,
        recorded_by_user_id=actor.user_id,
        checklist={},
        status=RequestStatus.REQUESTED.value,
        step=int(Step.NOT_STARTED),
        pending_blobs=[],
        counts={},
        criteria=snapshot(agency_criteria(session, subject.agency_id)),
        origin=origin,
        disposition_ids=list(disposition_ids or []),
    )
    session.add(req)
    session.flush()
    _record(session, actor, req, "requested", origin=origin)
    return req


def _load(session: Session, request_id: int) -> DestructionRequest:
    req = session.get(DestructionRequest, request_id)
    if req is None:
        raise NotFound(f"no destruction request {request_id}")
    return req


def _authorise(rt: GalleryRuntime, actor: Actor, action: Action, request_id: int) -> None:
    """The role first, then the request's agency (another agency's request is answered like a missing one)."""
    ref = f"destruction_request:{request_id}"
    enforce(rt.session_factory, actor, action, ref)
    with rt.session_factory() as session:
        agency_id = _load(session, request_id).agency_id
    enforce(rt.session_factory, actor, action, ref, agency_id, not_found=f"no destruction request {request_id}")


def record_checklist(
    rt: GalleryRuntime, actor: Actor, request_id: int, item: str, satisfied: bool, note: str = ""
) -> RequestView:
    """Record one item of the request's eligibility checklist as satisfied or not, with a note.

    An item the records can decide (:mod:`faceleads.governance.criteria`) cannot be recorded against them: a
    contradicting recording is refused (and the refusal audited); an undetermined one needs a note saying how it
    was checked.
    """
    note = (note or "").strip()
    if len(note) > 1000:
        raise ValidationError("a checklist note is limited to 1000 characters")
    if not satisfied and not note:
        raise ValidationError(f"say why {item!r} is not satisfied (--note)")
    _authorise(rt, actor, Action.DESTRUCTION_DECIDE, request_id)
    with rt.session_factory() as session:
        req = _load(session, request_id)
        items = {c.code: c for c in from_snapshot(req.criteria)}
        if item not in items:
            raise ValidationError(f"unknown checklist item {item!r}; this request's items: {', '.join(items)}")
        found = assess(items[item], subject_facts(session, req.subject_id))
    if items[item].check != "manual" and satisfied and found.verdict is not True:
        if found.verdict is False:
            reason = f"{item!r} cannot be recorded as satisfied: the records say {found.explanation}"
            audit.record_now(rt.session_factory, actor, audit.AuditAction.DESTRUCTION,
                             f"destruction_request:{request_id}", audit.Outcome.DENIED,
                             details={"stage": "checklist", "item": item, "reason": reason[:500]})  # fmt: skip
            raise ValidationError(reason)
        if not note:
            raise ValidationError(f"the records cannot decide {item!r} ({found.explanation}): say how it was "
                                  "checked (--note)")  # fmt: skip
    with transaction(rt.session_factory) as session:
        req = _load(session, request_id)
        if req.status != RequestStatus.REQUESTED.value:
            raise ValidationError(f"request {request_id} is {req.status}; its checklist can no longer change")
        checklist = dict(req.checklist or {})
        checklist[item] = {
            "satisfied": bool(satisfied),
            "note": note,
            "by": actor.username,
            "at": audit.iso_utc(utcnow()),
        }
        req.checklist = checklist  # reassigned so the JSON column is seen as changed
        _record(session, actor, req, "checklist", item=item, satisfied=bool(satisfied))
        return _view(session, req)


def decide(rt: GalleryRuntime, actor: Actor, request_id: int, *, approve: bool, reason: str) -> RequestView:
    """Approve or deny a request, with a written reason (records officer or supervisor of the agency).

    Approval needs every checklist item satisfied. The decision is made by someone other than the user who
    recorded the request (separation of duties; not checkable for the dev-mode system actor).
    """
    _authorise(rt, actor, Action.DESTRUCTION_DECIDE, request_id)
    try:
        reason = _text(reason, "a decision reason", 4000, MIN_REASON_CHARS)
    except ValidationError as exc:
        # A decision without a written reason is refused, and the refusal is on the record.
        verdict = "a denial" if not approve else "an approval"
        message = f"{verdict} needs a written reason: {exc}"
        audit.record_now(rt.session_factory, actor, audit.AuditAction.DESTRUCTION, f"destruction_request:{request_id}",
                         audit.Outcome.DENIED, details={"stage": "denied" if not approve else "approved",
                                                        "reason": message[:500]})  # fmt: skip
        raise ValidationError(message) from None
    with transaction(rt.session_factory) as session:
        req = _load(session, request_id)
        if req.status != RequestStatus.REQUESTED.value:
            raise ValidationError(f"request {request_id} is already {req.status}")
        if (
            actor.user_id is not None
            and req.recorded_by_user_id is not None
            and actor.user_id == req.recorded_by_user_id
        ):
            raise PermissionDenied(
                f"{actor.username} recorded request {request_id}; another records officer or a supervisor decides it"
            )
        codes = [c.code for c in from_snapshot(req.criteria)]
        if approve and not checklist_complete(req.checklist or {}, codes):
            missing = [i for i in codes if not ((req.checklist or {}).get(i) or {}).get("satisfied")]
            raise ValidationError(
                f"request {request_id} cannot be approved: checklist item(s) not satisfied: {', '.join(missing)}"
            )
        req.status = (RequestStatus.APPROVED if approve else RequestStatus.DENIED).value
        req.decision_reason = reason
        req.decided_by = actor.username
        req.decided_by_user_id = actor.user_id
        req.decided_at = utcnow()
        _record(session, actor, req, req.status)
        return _view(session, req)


def get_request(rt: GalleryRuntime, actor: Actor, request_id: int) -> RequestView:
    """One request of the actor's agency (records officer, supervisor, auditor)."""
    _authorise(rt, actor, Action.VIEW_DESTRUCTION, request_id)
    with rt.session_factory() as session:
        return _view(session, _load(session, request_id))


def list_requests(rt: GalleryRuntime, actor: Actor, status: str | None = None) -> list[RequestView]:
    """The actor's agency's requests, newest first, optionally of one status."""
    if status is not None and status not in {s.value for s in RequestStatus}:
        raise ValidationError(f"status must be one of {', '.join(s.value for s in RequestStatus)}, got {status!r}")
    enforce(rt.session_factory, actor, Action.VIEW_DESTRUCTION, "destruction_requests", actor.agency_id)
    with rt.session_factory() as session:
        query = select(DestructionRequest).where(DestructionRequest.agency_id == actor.agency_id)
        if status is not None:
            query = query.where(DestructionRequest.status == status)
        rows = session.scalars(query.order_by(DestructionRequest.id.desc())).all()
        return [_view(session, r) for r in rows]


def certificate_pdf(rt: GalleryRuntime, actor: Actor, request_id: int) -> tuple[bytes, str]:
    """The certificate as a readable PDF and the recorded SHA-256 of the certificate document it restates (the
    document is checked against that hash first; the download is audited)."""
    from faceleads.governance.certificate_pdf import render_certificate

    document = certificate(rt, actor, request_id)
    with rt.session_factory() as session:
        digest = str(_load(session, request_id).certificate_sha256)
    pdf = render_certificate(document, digest, CHECKLIST_ITEMS)
    audit.record_now(rt.session_factory, actor, "destruction_certificate", f"destruction_request:{request_id}",
                     audit.Outcome.OK, details={"format": "pdf", "certificate_sha256": digest})  # fmt: skip
    return pdf, digest


def certificate(rt: GalleryRuntime, actor: Actor, request_id: int) -> dict[str, Any]:
    """The certificate of a completed destruction, after checking it against its stored SHA-256."""
    _authorise(rt, actor, Action.VIEW_DESTRUCTION, request_id)
    with rt.session_factory() as session:
        req = _load(session, request_id)
        if req.status != RequestStatus.COMPLETED.value or req.certificate_json is None:
            raise ValidationError(
                f"request {request_id} is {req.status}; only a completed destruction has a certificate"
            )
        text, digest = req.certificate_json, req.certificate_sha256
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != digest:
        from faceleads.errors import IntegrityError

        raise IntegrityError(f"the certificate of request {request_id} does not match its recorded SHA-256")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


# --------------------------------------------------------------------------------------------- execution


@contextlib.contextmanager
def _execution_lock(rt: GalleryRuntime) -> Iterator[None]:
    """One destruction runs at a time in the whole deployment (two runs of one request would race on its steps);
    a database lock, so servers on different hosts agree (:func:`faceleads.db.system_lock`)."""
    with system_lock(rt.db_engine, "destruction", lock_dir=rt.settings.data_dir):
        yield


def purge_records(session: Session, subject: Subject) -> dict[str, int]:
    """Step 4 inside the caller's transaction: delete the subject's templates, and its image and encounter rows
    unless an earlier search's candidate list refers to them (then they are scrubbed to tombstones); reduce the
    subject to a tombstone; delete its disposition events. Returns counts. Idempotent.
    """
    sid = subject.id
    templates = session.execute(delete(FaceTemplate).where(FaceTemplate.subject_id == sid)).rowcount  # type: ignore[attr-defined]
    # Disposition events (court references of the subject's bookings) go with the records; the request that led
    # here keeps its grounds.
    dispositions = session.execute(delete(Disposition).where(Disposition.subject_id == sid)).rowcount  # type: ignore[attr-defined]
    cited_images = set(
        session.execute(select(SearchCandidate.image_id).where(SearchCandidate.subject_id == sid)).scalars()
    )
    cited_encounters = set(
        session.execute(select(SearchCandidate.encounter_id).where(SearchCandidate.subject_id == sid)).scalars()
    )
    images_deleted = images_scrubbed = 0
    for image in session.scalars(select(Image).where(Image.subject_id == sid)).all():
        if image.id in cited_images:
            tomb = f"{TOMBSTONE_PREFIX}{image.id}"
            if image.sha256 != tomb:
                # The photo's plain SHA-256 would let a holder of the photo confirm it was enrolled: it goes.
                image.sha256 = tomb
                image.format = ""
                image.size_bytes = image.width = image.height = image.face_count = 0
                image.capture_date = None
                image.source = ""
                image.store_address = None
                image.flags = ["destroyed"]
                images_scrubbed += 1
            cited_encounters.add(image.encounter_id)
        else:
            session.delete(image)
            images_deleted += 1
    session.flush()
    encounters_deleted = encounters_scrubbed = 0
    for enc in session.scalars(select(Encounter).where(Encounter.subject_id == sid)).all():
        if enc.id in cited_encounters:
            tomb = f"{TOMBSTONE_PREFIX}{enc.id}"
            if enc.booking_number != tomb:
                enc.booking_number = tomb
                enc.charge = ""
                encounters_scrubbed += 1
        else:
            session.delete(enc)
            encounters_deleted += 1
    subject.subject_number = subject_tombstone_number(subject.agency_id, subject.subject_number)
    subject.sex = None
    subject.birth_year = None
    subject.population_group = None
    session.flush()
    return {
        "templates_deleted": int(templates or 0),
        "image_rows_deleted": images_deleted,
        "image_rows_scrubbed": images_scrubbed,
        "encounters_deleted": encounters_deleted,
        "encounters_scrubbed": encounters_scrubbed,
        "dispositions_deleted": int(dispositions or 0),
    }


def subject_blob_addresses(session: Session, subject_id: int) -> list[str]:
    """Store addresses of the subject's enrolled originals (sorted)."""
    rows = session.execute(
        select(Image.store_address).where(Image.subject_id == subject_id, Image.store_address.is_not(None))
    ).scalars()
    return sorted({str(a) for a in rows})


def delete_blobs(rt: GalleryRuntime, addresses: list[str], progress: ProgressCallback | None = None) -> int:
    """Remove blob files (idempotent); returns how many files were present and removed."""
    removed = 0
    for i, address in enumerate(addresses, 1):
        if rt.store.delete(address):
            removed += 1
        _after("blob")
        if progress is not None:
            progress("deleting encrypted blobs", i, len(addresses))
    return removed


def execute(
    rt: GalleryRuntime, actor: Actor, request_id: int, *, progress: ProgressCallback | None = None
) -> dict[str, Any]:
    """Carry out an approved destruction (records officer), resuming where an earlier run stopped.

    Returns the certificate. Re-running a completed request returns its certificate and changes nothing.
    """
    _authorise(rt, actor, Action.DESTRUCTION_EXECUTE, request_id)
    with _execution_lock(rt):
        with transaction(rt.session_factory) as session:
            req = _load(session, request_id)
            if req.status == RequestStatus.COMPLETED.value:
                _record(session, actor, req, "already_completed")
                done = True
            elif req.status not in (RequestStatus.APPROVED.value, RequestStatus.EXECUTING.value):
                raise ValidationError(f"request {request_id} is {req.status}; only an approved request is executed")
            else:
                done = False
                _mark(session, actor, req)
            subject_id = req.subject_id
        if done:
            return certificate(rt, actor, request_id)
        # Out of this process's index at once; then wait until every other live process has applied the status
        # change from the feed (dropped the subject's templates from its memory) before the key is destroyed.
        rt.remove_subject(subject_id)
        _after("marked")
        _await_index_removal(rt, actor, request_id)
        _shred_key(rt, actor, request_id)
        _delete_blobs_step(rt, actor, request_id, progress)
        _delete_records_step(rt, actor, request_id)
        _complete(rt, actor, request_id)
    return certificate(rt, actor, request_id)


def _mark(session: Session, actor: Actor, req: DestructionRequest) -> None:
    req.runs = (req.runs or 0) + 1
    if req.step >= Step.MARKED:
        _record(session, actor, req, "resumed", after_step=Step(req.step).name.lower(), run=req.runs)
        return
    subject = session.get(Subject, req.subject_id)
    if subject is None:
        raise NotFound(f"subject {req.subject_id} of request {req.id} no longer exists")
    if subject.status == SubjectStatus.ACTIVE.value:
        subject.status = SubjectStatus.DESTROYING.value
    sid = subject.id
    req.key_id = subject.key_id
    req.pending_blobs = subject_blob_addresses(session, sid)
    req.counts = {
        "images": int(session.scalar(select(func.count()).where(Image.subject_id == sid)) or 0),
        "templates": int(session.scalar(select(func.count()).where(FaceTemplate.subject_id == sid)) or 0),
        "encounters": int(session.scalar(select(func.count()).where(Encounter.subject_id == sid)) or 0),
        "blobs": len(req.pending_blobs),
    }
    req.status = RequestStatus.EXECUTING.value
    req.executed_by = actor.username
    req.executed_by_user_id = actor.user_id
    req.execution_started_at = utcnow()
    req.step = int(Step.MARKED)
    _record(session, actor, req, "started", run=req.runs, **{f"{k}_count": v for k, v in req.counts.items()})


def _advance(
    rt: GalleryRuntime, actor: Actor, request_id: int, step: Step, work: Callable[[Session, DestructionRequest], None]
) -> None:
    """Run ``work`` and record ``step`` in one transaction, unless the request is already past it."""
    with transaction(rt.session_factory) as session:
        req = _load(session, request_id)
        if req.step >= step:
            return
        work(session, req)
        req.step = int(step)
        _record(session, actor, req, step.name.lower())
    _after(step.name.lower())


def _await_index_removal(rt: GalleryRuntime, actor: Actor, request_id: int) -> None:
    """Wait until every live server and worker has removed the marked subject from its index (change feed).

    If one does not within ``Settings.index_follower_wait_seconds``, the destruction stops here, before the key is
    destroyed, with the lagging processes named; the request stays executing and a re-run resumes it.
    """
    with rt.session_factory() as session:
        if _load(session, request_id).step >= Step.KEY_DESTROYED:
            return
        seq = changefeed.latest_seq(session)
    rt.notify_local_change()
    try:
        changefeed.wait_for_followers(rt, seq)
    except changefeed.FollowersLagging as exc:
        with transaction(rt.session_factory) as session:
            req = _load(session, request_id)
            _record(session, actor, req, "paused_index_removal", lagging_count=len(exc.lagging))
        raise changefeed.FollowersLagging(
            f"destruction request {request_id} paused before destroying the key: {exc} Re-run it to resume.",
            exc.lagging,
        ) from None
    _after("index_removed")


def _shred_key(rt: GalleryRuntime, actor: Actor, request_id: int) -> None:
    def work(session: Session, req: DestructionRequest) -> None:
        assert req.key_id is not None
        # Idempotent; made durable (ledger file) before this transaction records the step.
        rt.keystore.destroy(req.key_id)

    _advance(rt, actor, request_id, Step.KEY_DESTROYED, work)


def _delete_blobs_step(rt: GalleryRuntime, actor: Actor, request_id: int, progress: ProgressCallback | None) -> None:
    def work(session: Session, req: DestructionRequest) -> None:
        addresses = list(req.pending_blobs or [])
        delete_blobs(rt, addresses, progress)
        left = [a for a in addresses if rt.store.exists(a)]
        if left:  # pragma: no cover - a filesystem refusing deletes
            raise ValidationError(f"{len(left)} blob(s) of request {req.id} could not be deleted")

    _advance(rt, actor, request_id, Step.BLOBS_DELETED, work)


def _delete_records_step(rt: GalleryRuntime, actor: Actor, request_id: int) -> None:
    def work(session: Session, req: DestructionRequest) -> None:
        subject = session.get(Subject, req.subject_id)
        assert subject is not None
        counts = dict(req.counts or {})
        # A photo committed by an enrolment that raced step 1 (possible on PostgreSQL) has a blob step 3 did not
        # know of: it is unreadable already (key gone), and deleted here with its row.
        late = [a for a in subject_blob_addresses(session, subject.id) if a not in set(req.pending_blobs or [])]
        delete_blobs(rt, late)
        counts["blobs"] = int(counts.get("blobs", 0)) + len(late)
        counts.update(purge_records(session, subject))
        req.counts = counts

    _advance(rt, actor, request_id, Step.RECORDS_DELETED, work)


def _complete(rt: GalleryRuntime, actor: Actor, request_id: int) -> None:
    def work(session: Session, req: DestructionRequest) -> None:
        subject = session.get(Subject, req.subject_id)
        assert subject is not None and req.key_id is not None
        now = utcnow()
        subject.status = SubjectStatus.DESTROYED.value
        subject.destroyed_at = subject.destroyed_at or now
        req.status = RequestStatus.COMPLETED.value
        req.completed_at = now
        req.pending_blobs = []
        cert = build_certificate(session, req, actor, subject, key_gone=rt.keystore.is_destroyed(req.key_id))
        text = json.dumps(cert, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        req.certificate_json = text
        req.certificate_sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()

    _advance(rt, actor, request_id, Step.COMPLETED, work)


def build_certificate(
    session: Session, req: DestructionRequest, actor: Actor, subject: Subject, *, key_gone: bool
) -> dict[str, Any]:
    """The certificate of a destruction: what, when, by whom, on whose request and decision. No biometric data."""
    code = session.execute(select(Agency.code).where(Agency.id == req.agency_id)).scalar_one()
    return {
        "format": CERTIFICATE_FORMAT,
        "request_id": req.id,
        "agency": code,
        "subject_id": subject.id,
        "subject_reference": subject.subject_number,  # the tombstone hash, see subject_tombstone_number
        "requester": req.requester,
        "grounds": req.grounds,
        "recorded_by": req.recorded_by,
        "recorded_at": iso_utc(req.recorded_at),
        "checklist": {item.code: bool((req.checklist or {}).get(item.code, {}).get("satisfied"))
                      for item in from_snapshot(req.criteria)},
        "decision": "approved",
        "decision_reason": req.decision_reason,
        "decided_by": req.decided_by,
        "decided_at": iso_utc(req.decided_at),
        "executed_by": req.executed_by,
        "completed_by": actor.username,
        "execution_started_at": iso_utc(req.execution_started_at),
        "completed_at": iso_utc(req.completed_at),
        "runs": req.runs,
        "data_key_destroyed": req.key_id,
        "data_key_confirmed_destroyed": key_gone,
        "destroyed": {k: int(v) for k, v in sorted((req.counts or {}).items())},
        "statement": (
            "The subject's data key was destroyed (crypto-shredding), its encrypted originals were deleted from the "
            "blob store, its face templates and search-index entries removed and its image records deleted or "
            "scrubbed. Copies of the encrypted data in backups cannot be decrypted: their key no longer exists."
        ),
    }


__all__ = [
    "CHECKLIST_ITEMS",
    "RequestView",
    "certificate",
    "certificate_pdf",
    "checklist_complete",
    "decide",
    "delete_blobs",
    "execute",
    "find_subject_id",
    "get_request",
    "list_requests",
    "open_request",
    "open_request_id",
    "purge_records",
    "record_checklist",
    "request_destruction",
    "step_hooks",
    "subject_blob_addresses",
    "subject_tombstone_number",
]
