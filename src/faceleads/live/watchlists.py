"""Watch lists: named lists of wanted people built from gallery subjects the agency may use for live watch lists.

A subject may go on a list only when its gallery is held for the ``live-watchlist`` purpose by the actor's agency,
or is shared with it for that purpose by an agreement in force (:mod:`faceleads.gallery.visibility`). Each entry
states its reason (e.g. the warrant number) and an expiry. An entry counts (is frozen into a deployment, stays in a
running deployment's memory) only while it has not expired, its subject is active (not destroyed or being
destroyed), its gallery is still visible for the purpose and it has a template of the current model whose booking
is held under a listed legal authority (:mod:`faceleads.gallery.lawful`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceleads.casework.common import clean_text
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import NotFound, ValidationError
from faceleads.gallery.lawful import lawful_template_clause
from faceleads.gallery.models import FaceTemplate, Subject, SubjectStatus
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.visibility import gallery_visible
from faceleads.live.common import as_utc, deny, get_watchlist_row
from faceleads.live.models import LIVE_PURPOSE, WatchList, WatchListEntry

MAX_ENTRIES = 10_000


def _text(value: object, name: str, limit: int, *, required: bool = True) -> str:
    return clean_text(value, name, limit, required=required)


@dataclass(frozen=True)
class EntryInfo:
    """One entry as shown to people: the subject's number and agency, never a face."""

    id: int
    subject_id: int
    subject_number: str
    agency: str
    reason: str
    expires_at: datetime
    added_by: str
    added_at: datetime
    state: str  # usable / expired / destroyed / not_visible / authority_not_listed / no_template

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["expires_at"] = self.expires_at.isoformat()
        data["added_at"] = self.added_at.isoformat()
        return data


@dataclass(frozen=True)
class WatchListInfo:
    id: int
    name: str
    description: str
    created_by: str
    created_at: datetime
    entries: list[EntryInfo]

    @property
    def usable(self) -> int:
        return sum(1 for e in self.entries if e.state == "usable")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "usable_entries": self.usable,
            "entries": [e.to_json() for e in self.entries],
        }


def entry_state(session: Session, agency_id: int, entry: WatchListEntry, subject: Subject, now: datetime,
                model_version: str | None) -> str:  # fmt: skip
    """Whether an entry counts at ``now`` (see the module docstring), or why not."""
    if subject.status != SubjectStatus.ACTIVE.value:
        return "destroyed"
    if as_utc(entry.expires_at) <= as_utc(now):
        return "expired"
    if not gallery_visible(session, agency_id, subject.gallery_id, LIVE_PURPOSE, now):
        return "not_visible"
    if model_version is not None and template_count(session, subject.id, model_version) == 0:
        # Photos held under an authority that is not (or no longer) on the list are never compared either.
        if template_count(session, subject.id, model_version, lawful_only=False):
            return "authority_not_listed"
        return "no_template"
    return "usable"


def template_count(session: Session, subject_id: int, model_version: str, *, lawful_only: bool = True) -> int:
    """The subject's templates of the model (by default only those lawful to search: docs/gallery.md)."""
    query = select(func.count(FaceTemplate.id)).where(
        FaceTemplate.subject_id == subject_id, FaceTemplate.model_version == model_version
    )
    if lawful_only:
        query = query.where(lawful_template_clause())
    return int(session.scalar(query) or 0)


def _owned(session: Session, actor: Actor, watchlist_id: int) -> WatchList:
    wl = get_watchlist_row(session, watchlist_id)
    if wl.agency_id != actor.agency_id:
        raise NotFound(f"no watch list {watchlist_id}")
    return wl


def create_watchlist(rt: GalleryRuntime, actor: Actor, name: str, description: str = "") -> WatchListInfo:
    """Create an empty watch list of the actor's agency."""
    enforce(rt.session_factory, actor, Action.LIVE_PREPARE, "live_watchlist:new", actor.agency_id)
    name = _text(name, "watch list name", 100)
    description = _text(description, "description", 2000, required=False)
    with transaction(rt.session_factory) as session:
        exists = session.scalars(
            select(WatchList).where(WatchList.agency_id == actor.agency_id, WatchList.name == name)
        ).first()
        if exists is not None:
            raise ValidationError(f"watch list {name!r} already exists")
        wl = WatchList(agency_id=actor.agency_id, name=name, description=description, created_by=actor.username,
                       created_by_user_id=actor.user_id)  # fmt: skip
        session.add(wl)
        session.flush()
        audit.record(session, actor, "live_watchlist_create", f"live_watchlist:{wl.id}", audit.Outcome.OK,
                     details={"name": name})  # fmt: skip
        return _info(session, actor, wl, None)


def find_subject(session: Session, actor: Actor, subject_number: str, agency_code: str | None = None) -> Subject:
    """A subject by its agency's subject number (default: the actor's agency)."""
    number = _text(subject_number, "subject number", 64)
    agency_id = actor.agency_id
    if agency_code:
        agency = session.scalars(select(Agency).where(Agency.code == agency_code.strip().upper())).first()
        if agency is None:
            raise NotFound(f"no agency {agency_code!r}")
        agency_id = agency.id
    subject = session.scalars(
        select(Subject).where(Subject.agency_id == agency_id, Subject.subject_number == number)
    ).first()
    if subject is None:
        raise NotFound(f"no subject {number!r} in that agency's galleries")
    return subject


def add_entry(
    rt: GalleryRuntime,
    actor: Actor,
    watchlist_id: int,
    subject_number: str,
    reason: str,
    expires_at: datetime,
    *,
    agency_code: str | None = None,
) -> EntryInfo:
    """Put a gallery subject on a watch list, with its reason (e.g. warrant number) and expiry."""
    factory = rt.session_factory
    enforce(factory, actor, Action.LIVE_PREPARE, f"live_watchlist:{watchlist_id}", actor.agency_id)
    reason = _text(reason, "reason (e.g. warrant number)", 200)
    now = utcnow()
    if as_utc(expires_at) <= now:
        raise ValidationError("the entry's expiry must be in the future")
    with factory() as session:
        _owned(session, actor, watchlist_id)
        subject = find_subject(session, actor, subject_number, agency_code)
        ref = f"subject:{subject.id}"
        visible = gallery_visible(session, actor.agency_id, subject.gallery_id, LIVE_PURPOSE, now)
        # Another agency's subject needs a sharing agreement for this purpose (the policy's shareable read) ...
        enforce(factory, actor, Action.VIEW_GALLERY_RECORD, ref, subject.agency_id, shared=visible)
        # ... and even an own gallery must be held for live watch lists.
        if not visible:
            raise deny(factory, actor, Action.LIVE_PREPARE, ref,
                       f"subject {subject.subject_number!r} is in a gallery not held or shared for the purpose "
                       f"{LIVE_PURPOSE!r}: it cannot go on a watch list")  # fmt: skip
        if subject.status != SubjectStatus.ACTIVE.value:
            raise ValidationError(f"subject {subject.subject_number!r} was destroyed")
        subject_id = subject.id
    with transaction(factory) as session:
        wl = _owned(session, actor, watchlist_id)
        count = session.scalar(select(func.count(WatchListEntry.id)).where(WatchListEntry.watchlist_id == wl.id))
        if (count or 0) >= MAX_ENTRIES:
            raise ValidationError(f"a watch list holds at most {MAX_ENTRIES} entries")
        dup = session.scalars(
            select(WatchListEntry).where(WatchListEntry.watchlist_id == wl.id, WatchListEntry.subject_id == subject_id)
        ).first()
        if dup is not None:
            raise ValidationError(f"subject {subject_number!r} is already on watch list {wl.name!r}")
        entry = WatchListEntry(watchlist_id=wl.id, subject_id=subject_id, reason=reason, expires_at=as_utc(expires_at),
                               added_by=actor.username, added_by_user_id=actor.user_id)  # fmt: skip
        session.add(entry)
        session.flush()
        audit.record(session, actor, "live_watchlist_add", f"live_watchlist:{wl.id}", audit.Outcome.OK,
                     details={"entry_id": entry.id, "subject_id": subject_id, "reason": reason,
                              "expires_at": as_utc(expires_at).isoformat()})  # fmt: skip
        subject_row = session.get(Subject, subject_id)
        assert subject_row is not None
        return _entry_info(session, actor, entry, subject_row, now, None)


def remove_entry(rt: GalleryRuntime, actor: Actor, entry_id: int) -> None:
    """Take an entry off its list (deployments already running keep their frozen copy until it drops out)."""
    enforce(rt.session_factory, actor, Action.LIVE_PREPARE, f"live_watchlist_entry:{entry_id}", actor.agency_id)
    with transaction(rt.session_factory) as session:
        entry = session.get(WatchListEntry, entry_id)
        if entry is None:
            raise NotFound(f"no watch-list entry {entry_id}")
        wl = _owned(session, actor, entry.watchlist_id)
        audit.record(session, actor, "live_watchlist_remove", f"live_watchlist:{wl.id}", audit.Outcome.OK,
                     details={"entry_id": entry.id, "subject_id": entry.subject_id})  # fmt: skip
        session.delete(entry)


def _agency_codes(session: Session) -> dict[int, str]:
    return {a.id: a.code for a in session.scalars(select(Agency))}


def _entry_info(session: Session, actor: Actor, entry: WatchListEntry, subject: Subject, now: datetime,
                model_version: str | None, codes: dict[int, str] | None = None) -> EntryInfo:  # fmt: skip
    codes = codes or _agency_codes(session)
    return EntryInfo(
        id=entry.id,
        subject_id=subject.id,
        subject_number=subject.subject_number,
        agency=codes.get(subject.agency_id, str(subject.agency_id)),
        reason=entry.reason,
        expires_at=as_utc(entry.expires_at),
        added_by=entry.added_by,
        added_at=as_utc(entry.added_at),
        state=entry_state(session, actor.agency_id, entry, subject, now, model_version),
    )


def _info(session: Session, actor: Actor, wl: WatchList, model_version: str | None) -> WatchListInfo:
    now = utcnow()
    codes = _agency_codes(session)
    rows = session.execute(
        select(WatchListEntry, Subject)
        .join(Subject, Subject.id == WatchListEntry.subject_id)
        .where(WatchListEntry.watchlist_id == wl.id)
        .order_by(WatchListEntry.id)
    ).all()
    entries = [_entry_info(session, actor, e, s, now, model_version, codes) for e, s in rows]
    return WatchListInfo(wl.id, wl.name, wl.description, wl.created_by, as_utc(wl.created_at), entries)


def get_watchlist(
    rt: GalleryRuntime, actor: Actor, watchlist_id: int, *, check_templates: bool = False
) -> WatchListInfo:
    """A watch list with every entry's state (``check_templates`` also checks for a template of the current model,
    which loads the face model)."""
    enforce(rt.session_factory, actor, Action.LIVE_VIEW, f"live_watchlist:{watchlist_id}", actor.agency_id)
    model = rt.model_version if check_templates else None
    with rt.session_factory() as session:
        return _info(session, actor, _owned(session, actor, watchlist_id), model)


def list_watchlists(rt: GalleryRuntime, actor: Actor) -> list[WatchListInfo]:
    """The actor's agency's watch lists."""
    enforce(rt.session_factory, actor, Action.LIVE_VIEW, "live_watchlist:list", actor.agency_id)
    with rt.session_factory() as session:
        rows = session.scalars(
            select(WatchList).where(WatchList.agency_id == actor.agency_id).order_by(WatchList.name)
        ).all()
        return [_info(session, actor, wl, None) for wl in rows]


def usable_entries(
    session: Session, agency_id: int, watchlist_id: int, now: datetime, model_version: str
) -> list[tuple[WatchListEntry, Subject, int]]:
    """(entry, subject, templates of ``model_version``) of every entry that counts at ``now``."""
    rows = session.execute(
        select(WatchListEntry, Subject)
        .join(Subject, Subject.id == WatchListEntry.subject_id)
        .where(WatchListEntry.watchlist_id == watchlist_id)
        .order_by(WatchListEntry.id)
    ).all()
    out = []
    for entry, subject in rows:
        if entry_state(session, agency_id, entry, subject, now, None) != "usable":
            continue
        templates = template_count(session, subject.id, model_version)
        if templates:
            out.append((entry, subject, templates))
    return out
