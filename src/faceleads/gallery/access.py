"""Partner accesses: the owning agency sees every read of its booking records by other agencies.

Sharing agreements let a partner agency search and view an agency's galleries. Each such access — a subject record
or photo viewed, landmarks read, a subject returned as a candidate of the partner's search — is written as a
:class:`~faceleads.gallery.models.PartnerAccess` row in the same transaction as the read's own audit entry, by the
service that does the read (:mod:`faceleads.gallery.viewing`, :mod:`faceleads.gallery.search`, the casework
candidate photo). :func:`list_partner_accesses` is what the owning agency's auditors and administrators (and
oversight, across agencies) read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce, reads_every_agency
from faceleads.db import Agency, utcnow
from faceleads.errors import ValidationError
from faceleads.gallery.models import PartnerAccess, Subject
from faceleads.gallery.runtime import GalleryRuntime

MAX_PAGE = 500


def record_access(
    session: Session,
    actor: Actor,
    *,
    owner_agency_id: int,
    action: str,
    object_ref: str,
    subject_id: int,
    image_id: int | None = None,
    gallery_id: int | None = None,
    case: str | None = None,
    purpose: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Record a read of another agency's record (in the caller's transaction); False when it is the actor's own."""
    if owner_agency_id == actor.agency_id:
        return False
    session.add(PartnerAccess(
        owner_agency_id=owner_agency_id, accessor_agency_id=actor.agency_id, accessor_user_id=actor.user_id,
        accessor_username=actor.username[:150], action=action[:64], object_ref=object_ref[:300],
        subject_id=subject_id, image_id=image_id, gallery_id=gallery_id, case_ref=(case or None) and case[:100],
        purpose=(purpose or None) and purpose[:100], at=at or utcnow(),
    ))  # fmt: skip
    return True


class _CandidateLike(Protocol):
    subject_id: int
    image_id: int
    gallery_id: int
    rank: int


def record_candidate_accesses(
    session: Session, actor: Actor, candidates: Iterable[_CandidateLike], search_id: int, case: str, purpose: str
) -> int:
    """Record every partner agency's subject that a search returned as a candidate; returns how many."""
    cands = list(candidates)
    if not cands:
        return 0
    owners = dict(session.execute(
        select(Subject.id, Subject.agency_id).where(Subject.id.in_([c.subject_id for c in cands]))).all())
    count = 0
    for c in cands:
        owner = owners.get(c.subject_id)
        if owner is not None and record_access(
            session, actor, owner_agency_id=owner, action="search_candidate", object_ref=f"search:{search_id}",
            subject_id=c.subject_id, image_id=c.image_id, gallery_id=c.gallery_id, case=case, purpose=purpose,
        ):  # fmt: skip
            count += 1
    return count


@dataclass(frozen=True)
class PartnerAccessView:
    """One access by a partner agency to one of the owner's records (ids, never images)."""

    id: int
    at: datetime
    owner_agency: str
    partner_agency: str
    partner_user: str
    action: str
    object_ref: str
    subject_id: int
    subject_number: str | None
    image_id: int | None
    gallery_id: int | None
    case: str | None
    purpose: str | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


@dataclass(frozen=True)
class PartnerAccessPage:
    total: int
    accesses: list[PartnerAccessView]
    by_partner: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "by_partner": self.by_partner, "accesses": [a.to_json() for a in self.accesses]}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def list_partner_accesses(
    rt: GalleryRuntime,
    actor: Actor,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    partner: str | None = None,
    agency_code: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> PartnerAccessPage:
    """Accesses by partner agencies to the actor's agency's records, newest first (auditors, administrators), with
    a count per partner agency. Oversight reads every agency's (``agency_code`` narrows it to one owner). The read
    is audited."""
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE or not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"limit must be 1 to {MAX_PAGE} and offset 0 or more")
    enforce(rt.session_factory, actor, Action.VIEW_PARTNER_ACCESS, "partner_accesses", actor.agency_id)
    every = reads_every_agency(actor, Action.VIEW_PARTNER_ACCESS)
    with rt.session_factory() as session:
        codes = dict(session.execute(select(Agency.id, Agency.code)).all())
        ids = {code: agency_id for agency_id, code in codes.items()}
        where = []
        owner_code = (agency_code or "").strip().upper()
        if owner_code:
            if owner_code not in ids:
                raise ValidationError(f"unknown agency {owner_code!r}")
            enforce(rt.session_factory, actor, Action.VIEW_PARTNER_ACCESS, f"partner_accesses/agency:{owner_code}",
                    ids[owner_code])
            where.append(PartnerAccess.owner_agency_id == ids[owner_code])
        elif not every:
            where.append(PartnerAccess.owner_agency_id == actor.agency_id)
        partner_code = (partner or "").strip().upper()
        if partner_code:
            where.append(PartnerAccess.accessor_agency_id == ids.get(partner_code, -1))
        if since is not None:
            where.append(PartnerAccess.at >= since)
        if until is not None:
            where.append(PartnerAccess.at < until)
        total = session.scalar(select(func.count()).select_from(PartnerAccess).where(*where)) or 0
        per_partner = session.execute(
            select(PartnerAccess.accessor_agency_id, func.count()).where(*where)
            .group_by(PartnerAccess.accessor_agency_id)).all()
        rows = session.scalars(select(PartnerAccess).where(*where).order_by(PartnerAccess.id.desc())
                               .limit(limit).offset(offset)).all()
        numbers = dict(session.execute(select(Subject.id, Subject.subject_number).where(
            Subject.id.in_({r.subject_id for r in rows}))).all()) if rows else {}
        views = [
            PartnerAccessView(
                r.id, _utc(r.at), codes.get(r.owner_agency_id, str(r.owner_agency_id)),
                codes.get(r.accessor_agency_id, str(r.accessor_agency_id)), r.accessor_username, r.action,
                r.object_ref, r.subject_id, numbers.get(r.subject_id), r.image_id, r.gallery_id, r.case_ref, r.purpose,
            )
            for r in rows
        ]
        by_partner = sorted((codes.get(a, str(a)), int(n)) for a, n in per_partner)  # shown as a list, by code
        page = PartnerAccessPage(total, views, dict(by_partner))
    audit.record_now(rt.session_factory, actor, "view_partner_accesses", "partner_accesses", audit.Outcome.OK,
                     details={"owner": owner_code or (None if every else actor.agency_code), "partner":
                              partner_code or None, "returned": len(page.accesses), "total": page.total})
    return page
