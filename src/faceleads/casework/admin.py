"""Administered lists: each agency's approved offences (with their retention category) and the purposes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads import identifiers
from faceleads.casework import regimes
from faceleads.casework.common import authorise, clean_text
from faceleads.casework.models import Offence, Purpose
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action
from faceleads.core.uow import transaction
from faceleads.errors import NotFound, ValidationError
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.identifiers import Kind


@dataclass(frozen=True)
class OffenceInfo:
    id: int
    code: str
    title: str
    category: str
    retention_days: int
    active: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PurposeInfo:
    id: int
    code: str
    title: str
    requires_authorisation: bool
    active: bool
    # The purpose's legal regime for the agency asked about (None: no agency asked). Purposes are system-wide,
    # regimes per agency (casework.regimes); an exigent purpose's requests are threat-to-life priority.
    regime: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def retention_days(rt: GalleryRuntime, category: str) -> int:
    """Retention period (days from opening) of cases whose offence has ``category``."""
    return rt.settings.retention_days.get(category, rt.settings.retention_default_days)


def _offence_info(rt: GalleryRuntime, o: Offence) -> OffenceInfo:
    return OffenceInfo(o.id, o.code, o.title, o.category, retention_days(rt, o.category), o.active)


def add_offence(rt: GalleryRuntime, actor: Actor, code: str, title: str, category: str) -> OffenceInfo:
    """Add an offence to the actor's agency's approved list. ``category`` must be a configured retention category."""
    code = identifiers.normalise(Kind.OFFENCE, code)
    authorise(rt.session_factory, actor, Action.ADMIN_OFFENCES, f"offence:{code}", actor.agency_id)
    title = clean_text(title, "offence title", 200)
    category = clean_text(category, "offence category", 50)
    known = sorted(rt.settings.retention_days)
    if category not in rt.settings.retention_days:
        raise ValidationError(f"unknown offence category {category!r}; configured categories: {', '.join(known)}")
    with transaction(rt.session_factory) as session:
        if session.scalars(
            select(Offence).where(Offence.agency_id == actor.agency_id, Offence.code == code)
        ).first():
            raise ValidationError(f"offence {code!r} is already on the list")
        offence = Offence(agency_id=actor.agency_id, code=code, title=title, category=category)
        session.add(offence)
        session.flush()
        audit.record(session, actor, "offence_add", f"offence:{offence.id}", audit.Outcome.OK,
                     details={"code": code, "category": category})
        return _offence_info(rt, offence)


def set_offence_active(rt: GalleryRuntime, actor: Actor, code: str, active: bool) -> OffenceInfo:
    """Withdraw an offence from (or restore it to) the approved list; existing cases keep it."""
    authorise(rt.session_factory, actor, Action.ADMIN_OFFENCES, f"offence:{code}", actor.agency_id)
    with transaction(rt.session_factory) as session:
        wanted = identifiers.normalise(Kind.OFFENCE, code)
        offence = session.scalars(
            select(Offence).where(Offence.agency_id == actor.agency_id, Offence.code == wanted)
        ).first()
        if offence is None:
            raise NotFound(f"no offence {code!r} on the list")
        offence.active = active
        audit.record(session, actor, "offence_update", f"offence:{offence.id}", audit.Outcome.OK,
                     details={"code": offence.code, "active": active})
        return _offence_info(rt, offence)


def list_offences(rt: GalleryRuntime, actor: Actor) -> list[OffenceInfo]:
    """The actor's agency's offence list (active and withdrawn)."""
    with rt.session_factory() as session:
        rows = session.scalars(select(Offence).where(Offence.agency_id == actor.agency_id).order_by(Offence.code))
        return [_offence_info(rt, o) for o in rows]


def add_purpose(
    rt: GalleryRuntime, actor: Actor, code: str, title: str, *, requires_authorisation: bool = False,
    regime: str | None = None,
) -> PurposeInfo:
    """Add a search purpose (system-wide). Galleries list the purpose codes they may be searched for.

    ``regime`` (investigative, exigent, live_deployment) also puts the new purpose in that legal regime for the
    actor's agency, in the same transaction (it needs the regime administration right too; see
    :func:`faceleads.casework.regimes.set_purpose_regime`). The regime is the one notion of "exigent": an exigent
    purpose's requests are ready at once, ratified afterwards and always threat-to-life priority.
    """
    code = identifiers.normalise(Kind.PURPOSE, code)
    authorise(rt.session_factory, actor, Action.ADMIN_PURPOSES, f"purpose:{code}", None)
    title = clean_text(title, "purpose title", 200)
    chosen = regimes.checked_regime(regime) if regime else None
    if chosen is not None:
        authorise(rt.session_factory, actor, Action.ADMIN_REGIMES, f"purpose:{code}", actor.agency_id)
    with transaction(rt.session_factory) as session:
        if session.scalars(select(Purpose).where(Purpose.code == code)).first():
            raise ValidationError(f"purpose {code!r} already exists")
        purpose = Purpose(code=code, title=title, requires_authorisation=requires_authorisation)
        session.add(purpose)
        session.flush()
        audit.record(session, actor, "purpose_add", f"purpose:{purpose.id}", audit.Outcome.OK,
                     details={"code": code, "requires_authorisation": requires_authorisation})
        if chosen is not None:
            regimes.assign_regime(session, actor, purpose, chosen)
        return _purpose_info(session, purpose, actor.agency_id)


def _purpose_info(session: Session, p: Purpose, agency_id: int | None) -> PurposeInfo:
    regime = regimes.regime_of(session, agency_id, p).value if agency_id is not None else None
    return PurposeInfo(p.id, p.code, p.title, p.requires_authorisation, p.active, regime)


def set_purpose(
    rt: GalleryRuntime, actor: Actor, code: str, *, requires_authorisation: bool | None = None,
    active: bool | None = None,
) -> PurposeInfo:
    """Change whether a purpose needs a supervisor's authorisation, or withdraw it."""
    authorise(rt.session_factory, actor, Action.ADMIN_PURPOSES, f"purpose:{code}", None)
    with transaction(rt.session_factory) as session:
        wanted = identifiers.normalise(Kind.PURPOSE, code)
        purpose = session.scalars(select(Purpose).where(Purpose.code == wanted)).first()
        if purpose is None:
            raise NotFound(f"no purpose {code!r}")
        if requires_authorisation is not None:
            purpose.requires_authorisation = requires_authorisation
        if active is not None:
            purpose.active = active
        audit.record(session, actor, "purpose_update", f"purpose:{purpose.id}", audit.Outcome.OK,
                     details={"code": purpose.code, "requires_authorisation": purpose.requires_authorisation,
                              "active": purpose.active})
        return _purpose_info(session, purpose, actor.agency_id)


def list_purposes(rt: GalleryRuntime, agency_id: int | None = None) -> list[PurposeInfo]:
    """Every purpose (active and withdrawn); with ``agency_id``, each with its legal regime for that agency."""
    with rt.session_factory() as session:
        return [_purpose_info(session, p, agency_id) for p in session.scalars(select(Purpose).order_by(Purpose.code))]
