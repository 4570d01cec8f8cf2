"""Quick search: the short form of the one lawful search path (CLI ``faceleads search``, ``POST /api/v1/searches``
and the web "Quick search" page all call :func:`quick_search`).

It is not a second way to search the gallery. It takes the occurrence number of a case that is registered and open
for the actor's agency, opens (or reuses) a request on that case for the purpose, takes the photo in as evidence
of the case (hashed, stored encrypted under the case key), picks the face and runs
:func:`faceleads.casework.searching.run_search`, so every rule of a case search applies — the purpose's
authorisation, the analyst's certification, the quality floor, the candidate-list length (2–50) — and the
candidates land in the normal adjudication flow, where every one must be marked.

When the occurrence number is not an open case of the agency nothing is stored except the audited refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from faceleads import identifiers
from faceleads.casework import admin as admin_ops
from faceleads.casework import cases as case_ops
from faceleads.casework import probes as probe_ops
from faceleads.casework.admin import PurposeInfo
from faceleads.casework.common import as_utc, clean_text
from faceleads.casework.models import Case, CaseRequest, CaseStatus
from faceleads.casework.searching import CaseSearchInfo, run_search_with_result
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.regime import Regime
from faceleads.db import utcnow
from faceleads.errors import FaceleadsError, ImageError, NoFaceError, NotFound, PermissionDenied, ValidationError
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.search import SearchResult
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.identifiers import Kind
from faceleads.vision.imaging import load_image


@dataclass(frozen=True)
class QuickSearchResult:
    """Where the quick search landed: the case, the request, the evidence's probe and the case search whose
    candidates now await adjudication."""

    case_id: int
    occurrence_number: str
    request_id: int
    request_opened: bool
    probe_id: int
    case_search: CaseSearchInfo
    search: SearchResult

    @property
    def case_search_id(self) -> int:
        return self.case_search.id

    def to_json(self) -> dict[str, Any]:
        data = self.search.to_json()
        data.update(
            case_id=self.case_id,
            occurrence_number=self.occurrence_number,
            request_id=self.request_id,
            request_opened=self.request_opened,
            probe_id=self.probe_id,
            case_search_id=self.case_search.id,
            status=self.case_search.status,
            next_step="adjudicate every candidate (excluded / possible lead / inconclusive), then submit",
        )
        return data


def _refuse(rt: GalleryRuntime, actor: Actor, occurrence: str, outcome: str, reason: str,
            purpose: str | None = None) -> None:
    """Record a refused quick search in its own transaction (it survives the caller's error)."""
    audit.record_now(rt.session_factory, actor, audit.AuditAction.SEARCH, f"case:{occurrence[:100] or '-'}",
                     outcome, case=occurrence[:100] or None, purpose=(purpose or "")[:100] or None,
                     details={"reason": reason[:400], "path": "quick_search"})


def open_case_of(rt: GalleryRuntime, actor: Actor, occurrence_number: object, purpose: str | None = None) -> Case:
    """The open case of the actor's agency with this occurrence number; refused (and audited) otherwise.

    Cases of other agencies are never looked at: for them, as for an unknown number, the answer is that the agency
    has no such case.
    """
    occurrence = occurrence_number.strip() if isinstance(occurrence_number, str) else ""
    purpose = purpose.strip()[:100] or None if isinstance(purpose, str) else None  # as recorded in the audit entry
    enforce(rt.session_factory, actor, Action.SEARCH, f"case:{occurrence[:100] or '-'}", actor.agency_id,
            case=occurrence[:100] or None, purpose=purpose)
    who = actor.agency_code or f"agency {actor.agency_id}"
    if not occurrence:
        reason = "a search needs the occurrence number of an open case (--case)"
        _refuse(rt, actor, occurrence, audit.Outcome.DENIED, reason, purpose)
        raise PermissionDenied(reason)
    try:
        # The form cases are stored in: a look-alike (zero-width, bidi, control characters) is refused, not missed.
        occurrence = identifiers.occurrence_number(occurrence)
    except ValidationError as exc:
        _refuse(rt, actor, occurrence, "refused", str(exc), purpose)
        raise
    with rt.session_factory() as session:
        case = session.scalars(
            select(Case).where(Case.agency_id == actor.agency_id, Case.occurrence_number == occurrence)
        ).first()
        if case is None:
            reason = (f"{occurrence!r} is not a case of {who}: every search runs on a registered, open case "
                      "(open one first: faceleads case open / Cases page)")
        elif case.status != CaseStatus.OPEN.value:
            reason = f"case {occurrence!r} of {who} is {case.status}; only an open case can be searched"
        else:
            _ = case.offence  # loaded for the caller
            session.expunge(case)
            return case
    _refuse(rt, actor, occurrence, audit.Outcome.DENIED, reason, purpose)
    raise PermissionDenied(reason)


def _check_photo(rt: GalleryRuntime, photo: Path | bytes, face: int) -> None:
    """Refuse an unreadable photo, one without a face, or a face number it does not have."""
    data = photo.read_bytes() if isinstance(photo, Path) else bytes(photo)
    if len(data) > rt.settings.max_file_bytes:
        raise ImageError(f"probe is {len(data)} bytes, over the limit of {rt.settings.max_file_bytes}")
    # Only a check (the face is picked from the stored evidence later): decoded reduced when large.
    faces = rt.face_engine.detect_loaded(load_image(data, rt.settings, reduce_to=rt.settings.decode_reduce_pixels))
    if not faces:
        raise NoFaceError("no face found in the probe: crop it closer, or add it to the case and draw a box")
    if face > len(faces):
        raise ValidationError(f"face must be between 1 and {len(faces)} (faces found in the probe), got {face}")


def quick_search(
    rt: GalleryRuntime,
    actor: Actor,
    occurrence_number: str,
    photo: Path | bytes,
    *,
    reason: str,
    legal_basis: str,
    purpose: str = DEFAULT_PURPOSE,
    offence: str | None = None,
    request_id: int | None = None,
    face: int | None = None,
    top: int | None = None,
    floor: float | None = None,
    source: str | None = None,
    obtained_by: str | None = None,
    obtained_at: datetime | None = None,
    filename: str = "",
    at: datetime | date | None = None,
) -> QuickSearchResult:
    """Search a probe photo on an open case of the actor's agency, through the full casework flow.

    ``reason`` is the justification of the request opened for ``purpose`` (unless ``request_id`` names a request of
    the case to use); ``offence``, when given, must be the case's offence. ``legal_basis``, ``source``,
    ``obtained_by`` (default: the actor) and ``obtained_at`` (default: now) describe the evidence. ``face`` picks a
    face of the photo (1 = most prominent, the default). Raises :class:`PermissionDenied` when the case is not an
    open case of the agency or a rule of the search refuses it, :class:`ValidationError` for bad input; every
    refusal is in the audit log.
    """
    case = open_case_of(rt, actor, occurrence_number, purpose if isinstance(purpose, str) else None)
    occurrence = case.occurrence_number
    try:
        if offence is not None and offence.strip():
            wanted = identifiers.normalise(Kind.OFFENCE, offence)
            if wanted != case.offence.code:
                raise ValidationError(f"case {occurrence!r} is for offence {case.offence.code!r}, not {wanted!r}")
        why = clean_text(reason, "reason (justification of the request)", 4000)
        basis = clean_text(legal_basis, "legal basis of the evidence (--legal-basis)", 2000)
        if isinstance(photo, Path) and not photo.is_file():
            raise ImageError(f"probe {photo} does not exist")
        if face is not None and (isinstance(face, bool) or not isinstance(face, int) or face < 1):
            raise ValidationError(f"face must be a number from 1, got {face!r}")
        _check_photo(rt, photo, face or 1)  # before anything is stored: a bad upload leaves no request behind
    except FaceleadsError as exc:
        _refuse(rt, actor, occurrence, "refused", str(exc), purpose)
        raise
    opened = False
    if request_id is not None:
        with rt.session_factory() as session:
            req = session.get(CaseRequest, request_id)
            if req is None or req.case_id != case.id:
                _refuse(rt, actor, occurrence, "refused", f"request {request_id} is not a request of this case")
                raise NotFound(f"case {occurrence!r} has no request {request_id}")
        rid = request_id
    else:
        rid = case_ops.open_request(rt, actor, case.id, purpose, why).id
        opened = True
    probe = probe_ops.add_photo(
        rt, actor, case.id, photo,
        source=source or f"quick search upload by {actor.username}",
        obtained_by=obtained_by or actor.username,
        obtained_at=as_utc(obtained_at) if obtained_at else utcnow(),
        legal_basis=basis,
        filename=filename or (photo.name if isinstance(photo, Path) else ""),
    )  # fmt: skip
    probe_ops.pick_face(rt, actor, probe.id, face or 1)
    try:
        info, result = run_search_with_result(rt, actor, rid, [probe.id], top=top, floor=floor, at=at)
    except PermissionDenied as exc:
        raise PermissionDenied(f"{exc} (the evidence is kept as probe {probe.id} of case {occurrence}, "
                               f"request {rid})") from None
    return QuickSearchResult(case.id, occurrence, rid, opened, probe.id, info, result)


@dataclass(frozen=True)
class SearchForm:
    """What the quick search form offers the actor: the agency's open cases and the active purposes."""

    cases: list[case_ops.CaseInfo]
    purposes: list[PurposeInfo]


def search_form(rt: GalleryRuntime, actor: Actor) -> SearchForm:
    """The choices of the quick search form (analysts; a refusal is audited)."""
    enforce(rt.session_factory, actor, Action.SEARCH, "quick_search:form", actor.agency_id)
    return SearchForm(case_ops.list_cases(rt, actor, status=CaseStatus.OPEN.value),
                      [p for p in admin_ops.list_purposes(rt, actor.agency_id)
                       if p.active and p.regime != Regime.LIVE_DEPLOYMENT.value])

