"""The lawful gallery: each agency's administered list of legal authorities, the check every enrolment goes through,
and the review of records whose authority is not (or no longer) on the list.

- **The list** (:func:`add_authority`, :func:`withdraw_authority`, :func:`list_authorities`): administrators of the
  agency keep it; every change is audited. An entry has a short code and the authority as cited (its title).
- **Enrolment** (:func:`require_listed`, :func:`listed_authority`): a record (one record, a manifest row, a NIST
  import, the API, the web form) is accepted only with the code or title of an active entry of the enrolling agency's
  list; anything else is refused, and the refusal audited. The booking records the entry (``authority_id``) and its
  title.
- **Records not on the list** (enrolled before the list existed, or held under a withdrawn entry) are kept but not
  searched (:mod:`faceleads.gallery.lawful`); :func:`compliance` reports them, and :func:`reattribute` lets a
  records officer attach them to a listed authority after checking the paper record — or they go to destruction.

See docs/gallery.md, "Lawful gallery".
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.gallery import lawful
from faceleads.gallery.models import Encounter, FaceTemplate, Image, LegalAuthority, Subject
from faceleads.gallery.runtime import GalleryRuntime

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/()-]{0,63}$")
MIN_REASON_CHARS = 10


@dataclass(frozen=True)
class AuthorityView:
    """An entry of the list, with how many bookings are held under it."""

    id: int
    code: str
    title: str
    description: str
    active: bool
    added_by: str
    added_at: datetime
    withdrawn_by: str | None
    withdrawn_at: datetime | None
    withdrawal_reason: str | None
    bookings: int

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["added_at"] = audit.iso_utc(self.added_at)
        data["withdrawn_at"] = audit.iso_utc(self.withdrawn_at) if self.withdrawn_at else None
        return data


@dataclass(frozen=True)
class UnlistedGroup:
    """Bookings of the agency held under one authority text that is not an active entry of the list."""

    authority: str  # the text recorded with the bookings
    state: str  # "never listed" (no entry) or "withdrawn <code>"
    bookings: int
    subjects: int
    photos_not_searched: int
    records: list[dict[str, Any]] = field(default_factory=list)  # only with details (records officers)


@dataclass(frozen=True)
class ComplianceReport:
    """Where the agency's gallery stands against its list of legal authorities."""

    agency: str
    listed_bookings: int
    unlisted_bookings: int
    unlisted: list[UnlistedGroup]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _agency_code(session: Session, agency_id: int) -> str:
    return str(session.execute(select(Agency.code).where(Agency.id == agency_id)).scalar_one())


def _text(value: object, name: str, limit: int, minimum: int = 1) -> str:
    if not isinstance(value, str) or len(value.strip()) < minimum:
        raise ValidationError(f"{name} is required" if minimum <= 1 else f"{name} needs at least {minimum} characters")
    text = value.strip()
    if len(text) > limit:
        raise ValidationError(f"{name} is limited to {limit} characters")
    return text


def listed_authority(session: Session, agency_id: int, text: str) -> LegalAuthority | None:
    """The active entry of the agency's list whose code or title is ``text`` (compared case-insensitively, spaces
    collapsed), or None."""
    wanted = lawful.normalise(text)
    if not wanted:
        return None
    for entry in session.scalars(
        select(LegalAuthority).where(LegalAuthority.agency_id == agency_id, LegalAuthority.active.is_(True))
    ):
        if wanted in (lawful.normalise(entry.code), lawful.normalise(entry.title)):
            return entry
    return None


def refusal_reason(agency_code: str, text: str) -> str:
    """What an enrolment under an unlisted authority is told."""
    shown = text.strip()[:200]
    return (
        f"legal authority {shown!r} is not on {agency_code}'s list of legal authorities: enrolment refused "
        "(only records held under a listed authority may enter the gallery; see faceleads authority list)"
    )


def require_listed(rt: GalleryRuntime, actor: Actor, text: str, object_ref: str, *, rows: int = 1) -> LegalAuthority:
    """The listed entry for ``text``; otherwise the refusal is audited (action ``enrol``, outcome denied) and
    :class:`PermissionDenied` raised. Call it before opening the enrolment's transaction."""
    with rt.session_factory() as session:
        entry = listed_authority(session, actor.agency_id, text)
        if entry is not None:
            session.expunge(entry)
            return entry
        code = actor.agency_code or _agency_code(session, actor.agency_id)
    reason = refusal_reason(code, text)
    audit.record_now(rt.session_factory, actor, audit.AuditAction.ENROL, object_ref[:300], audit.Outcome.DENIED,
                     details={"reason": reason[:500], "authority": text.strip()[:200], "row_count": rows})  # fmt: skip
    raise PermissionDenied(reason)


# --------------------------------------------------------------------------------------------- the list


def _counts(session: Session, agency_id: int) -> dict[int, int]:
    rows = session.execute(
        select(Encounter.authority_id, func.count(Encounter.id))
        .where(Encounter.agency_id == agency_id, Encounter.authority_id.is_not(None))
        .group_by(Encounter.authority_id)
    )
    return {int(authority_id): int(n) for authority_id, n in rows if authority_id is not None}


def _view(entry: LegalAuthority, bookings: int) -> AuthorityView:
    return AuthorityView(entry.id, entry.code, entry.title, entry.description, entry.active, entry.added_by,
                         entry.added_at, entry.withdrawn_by, entry.withdrawn_at, entry.withdrawal_reason,
                         bookings)  # fmt: skip


def add_authority(rt: GalleryRuntime, actor: Actor, code: str, title: str, description: str = "") -> AuthorityView:
    """Add an entry to the actor's agency's list (administrators); audited."""
    enforce(rt.session_factory, actor, Action.ADMIN_RECORDS_POLICY, "legal_authorities", actor.agency_id)
    code = _text(code, "authority code", 64)
    if not CODE_PATTERN.match(code):
        raise ValidationError(f"bad authority code {code!r}: letters, digits, spaces and . _ / ( ) - (at most 64)")
    title = _text(title, "authority title (the authority as cited)", 500, 3)
    description = _text(description, "description", 2000, 0) if description else ""
    with transaction(rt.session_factory) as session:
        # The checks below compare normalised codes and titles, which no constraint can express: two administrators
        # adding "PACE" and "pace" at once would both pass them. Adds to one agency's list take turns on its row
        # (PostgreSQL; SQLite has one writer at a time and refuses a write from a stale read).
        session.scalars(select(Agency.id).where(Agency.id == actor.agency_id).with_for_update()).one_or_none()
        entries = session.scalars(select(LegalAuthority).where(LegalAuthority.agency_id == actor.agency_id)).all()
        for other in entries:
            if lawful.normalise(other.code) == lawful.normalise(code):
                state = "" if other.active else " (withdrawn: codes are not reused, choose another)"
                raise ValidationError(f"authority code {code!r} is already on the list{state}")
            if other.active and lawful.normalise(code) == lawful.normalise(other.title):
                raise ValidationError(f"authority code {code!r} is the title of entry {other.code!r}")
            taken = (lawful.normalise(other.title), lawful.normalise(other.code))
            if other.active and lawful.normalise(title) in taken:
                raise ValidationError(f"{title!r} is already on the list as {other.code!r}")
        entry = LegalAuthority(agency_id=actor.agency_id, code=code, title=title, description=description,
                               active=True, added_by=actor.username, added_by_user_id=actor.user_id)  # fmt: skip
        session.add(entry)
        session.flush()
        # Records enrolled earlier under exactly this text stay unlisted until a records officer re-attributes them
        # (reattribute): adding an entry never makes a held record lawful by itself.
        audit.record(session, actor, "authority_add", f"legal_authority:{entry.id}", audit.Outcome.OK,
                     details={"code": code, "title": title[:200]})  # fmt: skip
        return _view(entry, 0)


def withdraw_authority(rt: GalleryRuntime, actor: Actor, code: str, reason: str) -> AuthorityView:
    """Withdraw an entry (administrators): no new enrolment under it, and the bookings held under it stop being
    searched until reviewed. Audited with the number of bookings affected."""
    enforce(rt.session_factory, actor, Action.ADMIN_RECORDS_POLICY, f"legal_authority:{code[:64]}", actor.agency_id)
    reason = _text(reason, "a withdrawal reason", 2000, MIN_REASON_CHARS)
    with transaction(rt.session_factory) as session:
        entry = session.scalars(
            select(LegalAuthority).where(LegalAuthority.agency_id == actor.agency_id, LegalAuthority.code == code)
        ).first()
        if entry is None:
            raise NotFound(f"no legal authority {code!r} on your agency's list")
        if not entry.active:
            raise ValidationError(f"legal authority {code!r} was already withdrawn")
        entry.active = False
        entry.withdrawn_by, entry.withdrawn_at, entry.withdrawal_reason = actor.username, utcnow(), reason
        bookings = _counts(session, actor.agency_id).get(entry.id, 0)
        lawful.bump(session)
        audit.record(session, actor, "authority_withdraw", f"legal_authority:{entry.id}", audit.Outcome.OK,
                     details={"code": entry.code, "booking_count": bookings, "reason": reason[:500]})  # fmt: skip
        view = _view(entry, bookings)
    if rt.index_built:
        rt.sync_index()
    return view


def list_authorities(rt: GalleryRuntime, actor: Actor, *, include_withdrawn: bool = True) -> list[AuthorityView]:
    """The actor's agency's list (administrators, records officers, supervisors, auditors)."""
    enforce(rt.session_factory, actor, Action.VIEW_RECORDS_POLICY, "legal_authorities", actor.agency_id)
    with rt.session_factory() as session:
        query = select(LegalAuthority).where(LegalAuthority.agency_id == actor.agency_id)
        if not include_withdrawn:
            query = query.where(LegalAuthority.active.is_(True))
        counts = _counts(session, actor.agency_id)
        rows = session.scalars(query.order_by(LegalAuthority.active.desc(), LegalAuthority.code)).all()
        return [_view(e, counts.get(e.id, 0)) for e in rows]


# --------------------------------------------------------------------------------------------- review


def _unlisted_filter(agency_id: int) -> Any:
    inactive = select(LegalAuthority.id).where(LegalAuthority.active.is_(False))
    return (Encounter.agency_id == agency_id) & or_(Encounter.authority_id.is_(None),
                                                    Encounter.authority_id.in_(inactive))  # fmt: skip


def compliance(rt: GalleryRuntime, actor: Actor, *, details: bool = False) -> ComplianceReport:
    """The agency's bookings held under an authority that is not an active entry of its list, grouped by the
    authority text recorded, with how many photos are therefore not searched.

    Counts for anyone who may read the list; ``details`` (the bookings themselves: booking and subject numbers,
    dates) for records officers, who review them. The read is audited.
    """
    action = Action.REVIEW_RECORDS if details else Action.VIEW_RECORDS_POLICY
    enforce(rt.session_factory, actor, action, "gallery/compliance", actor.agency_id)
    with rt.session_factory() as session:
        code = actor.agency_code or _agency_code(session, actor.agency_id)
        withdrawn = dict(
            session.execute(
                select(LegalAuthority.id, LegalAuthority.code).where(
                    LegalAuthority.agency_id == actor.agency_id, LegalAuthority.active.is_(False)
                )
            )
            .all()
        )
        total = int(session.scalar(select(func.count(Encounter.id)).where(Encounter.agency_id == actor.agency_id))
                    or 0)  # fmt: skip
        rows = session.execute(
            select(Encounter.id, Encounter.legal_authority, Encounter.authority_id, Encounter.booking_number,
                   Encounter.booking_date, Subject.id, Subject.subject_number)
            .join(Subject, Subject.id == Encounter.subject_id)
            .where(_unlisted_filter(actor.agency_id))
            .order_by(Encounter.legal_authority, Encounter.booking_number)
        ).all()  # fmt: skip
        photos = dict(
            session.execute(
                select(Image.encounter_id, func.count(FaceTemplate.id))
                .join(FaceTemplate, FaceTemplate.image_id == Image.id)
                .where(Image.encounter_id.in_([r[0] for r in rows]))
                .group_by(Image.encounter_id)
            )
            .all()
        ) if rows else {}  # fmt: skip
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for enc_id, text, authority_id, booking, booked, subject_id, number in rows:
        state = "never listed" if authority_id is None else f"withdrawn {withdrawn.get(authority_id, '?')}"
        group = groups.setdefault((text, state), {"subjects": set(), "bookings": 0, "photos": 0, "records": []})
        group["subjects"].add(subject_id)
        group["bookings"] += 1
        group["photos"] += int(photos.get(enc_id, 0))
        if details:
            group["records"].append({"booking_number": booking, "booking_date": booked.isoformat(),
                                     "subject_id": subject_id, "subject_number": number})  # fmt: skip
    unlisted = [UnlistedGroup(text, state, g["bookings"], len(g["subjects"]), g["photos"], g["records"])
                for (text, state), g in sorted(groups.items())]  # fmt: skip
    report = ComplianceReport(code, total - len(rows), len(rows), unlisted)
    audit.record_now(rt.session_factory, actor, "authority_compliance", "gallery/compliance", audit.Outcome.OK,
                     details={"details": details, "unlisted_count": len(rows)})  # fmt: skip
    return report


def reattribute(
    rt: GalleryRuntime,
    actor: Actor,
    to_code: str,
    reason: str,
    *,
    from_text: str | None = None,
    booking: str | None = None,
) -> int:
    """Attach unlisted bookings to the listed authority ``to_code`` after review (records officers): every unlisted
    booking whose recorded authority text is ``from_text``, or the one booking ``booking``. Returns how many.

    The records become searchable again; the old text, the new entry and the reason are audited. A booking already
    held under an active entry is not touched (it is not under review).
    """
    enforce(rt.session_factory, actor, Action.REVIEW_RECORDS, "gallery/compliance", actor.agency_id)
    if (from_text is None) == (booking is None):
        raise ValidationError("name the records with exactly one of: the authority text they were enrolled with, "
                              "or one booking number")  # fmt: skip
    reason = _text(reason, "a review reason (what was checked)", 2000, MIN_REASON_CHARS)
    with transaction(rt.session_factory) as session:
        target = session.scalars(
            select(LegalAuthority).where(LegalAuthority.agency_id == actor.agency_id, LegalAuthority.code == to_code,
                                         LegalAuthority.active.is_(True))
        ).first()  # fmt: skip
        if target is None:
            raise NotFound(f"no active legal authority {to_code!r} on your agency's list")
        candidates = session.scalars(select(Encounter).where(_unlisted_filter(actor.agency_id))).all()
        if booking is not None:
            chosen = [e for e in candidates if e.booking_number == booking.strip()]
            if not chosen:
                raise NotFound(f"no booking {booking!r} of your agency awaiting review")
        else:
            wanted = lawful.normalise(from_text or "")
            chosen = [e for e in candidates if lawful.normalise(e.legal_authority) == wanted]
            if not chosen:
                raise NotFound(f"no booking of your agency awaiting review was enrolled under {from_text!r}")
        old_texts = sorted({e.legal_authority for e in chosen})
        for enc in chosen:
            enc.authority_id = target.id
            enc.legal_authority = target.title
        lawful.bump(session)
        audit.record(session, actor, "authority_review", f"legal_authority:{target.id}", audit.Outcome.OK,
                     details={"code": target.code, "booking_count": len(chosen),
                              "from_authority": "; ".join(old_texts)[:300], "booking_number": booking,
                              "reason": reason[:500]})  # fmt: skip
        count = len(chosen)
    if rt.index_built:
        rt.sync_index()
    return count


__all__ = [
    "AuthorityView",
    "ComplianceReport",
    "UnlistedGroup",
    "add_authority",
    "compliance",
    "list_authorities",
    "listed_authority",
    "reattribute",
    "refusal_reason",
    "require_listed",
    "withdraw_authority",
]
