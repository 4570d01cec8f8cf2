"""Galleries and sharing agreements: create, list, share, revoke."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select

from faceleads import identifiers
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, require
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import NotFound, ValidationError
from faceleads.gallery.models import FaceTemplate, Gallery, GalleryShare
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.identifiers import Kind


def _clean_purposes(purposes: list[str]) -> list[str]:
    cleaned = sorted({identifiers.normalise(Kind.PURPOSE, p) for p in purposes if p and p.strip()})
    if not cleaned:
        raise ValidationError("at least one purpose is required")
    return cleaned


def create_gallery(rt: GalleryRuntime, actor: Actor, name: str, authority: str, purposes: list[str]) -> int:
    """Create a gallery of the actor's agency; returns its id."""
    require(actor, Action.MANAGE_GALLERY, actor.agency_id)
    name = identifiers.normalise(Kind.GALLERY, name)
    if not authority.strip():
        raise ValidationError("a gallery needs the legal authority it is held under (--authority)")
    with transaction(rt.session_factory) as session:
        exists = session.scalars(
            select(Gallery).where(Gallery.agency_id == actor.agency_id, Gallery.name == name)
        ).first()
        if exists is not None:
            raise ValidationError(f"gallery {name!r} already exists")
        gallery = Gallery(
            agency_id=actor.agency_id,
            name=name,
            legal_authority=authority.strip(),
            purposes=_clean_purposes(purposes),
        )
        session.add(gallery)
        session.flush()
        audit.record(
            session,
            actor,
            "gallery_create",
            f"gallery:{gallery.id}",
            audit.Outcome.OK,
            details={"name": name},
        )
        return gallery.id


def share_gallery(
    rt: GalleryRuntime,
    actor: Actor,
    gallery_name: str,
    agency_code: str,
    purposes: list[str],
    starts_on: date,
    ends_on: date | None = None,
    agreement_ref: str = "",
) -> int:
    """Share the actor's gallery with another agency for ``purposes`` from ``starts_on`` until ``ends_on``."""
    require(actor, Action.MANAGE_GALLERY, actor.agency_id)
    if ends_on is not None and ends_on <= starts_on:
        raise ValidationError("a share's end date must be after its start date")
    name = identifiers.normalise(Kind.GALLERY, gallery_name)
    with transaction(rt.session_factory) as session:
        gallery = session.scalars(
            select(Gallery).where(Gallery.agency_id == actor.agency_id, Gallery.name == name)
        ).first()
        if gallery is None:
            raise NotFound(f"your agency has no gallery {gallery_name!r}")
        code = identifiers.agency_code(agency_code)
        other = session.scalars(select(Agency).where(Agency.code == code)).first()
        if other is None:
            raise NotFound(f"unknown agency {agency_code!r}")
        if other.id == actor.agency_id:
            raise ValidationError("a gallery cannot be shared with its own agency")
        share = GalleryShare(
            gallery_id=gallery.id,
            agency_id=other.id,
            purposes=_clean_purposes(purposes),
            starts_on=starts_on,
            ends_on=ends_on,
            agreement_ref=agreement_ref.strip()[:200],
        )
        session.add(share)
        session.flush()
        audit.record(
            session,
            actor,
            "gallery_share",
            f"gallery_share:{share.id}",
            audit.Outcome.OK,
            details={"gallery_id": gallery.id, "agency": other.code},
        )
        return share.id


def revoke_share(rt: GalleryRuntime, actor: Actor, share_id: int) -> None:
    """End a sharing agreement at once."""
    require(actor, Action.MANAGE_GALLERY, actor.agency_id)
    with transaction(rt.session_factory) as session:
        share = session.get(GalleryShare, share_id)
        if share is None or share.gallery.agency_id != actor.agency_id:
            raise NotFound(f"no share {share_id} of your agency's galleries")
        share.revoked_at = utcnow()
        audit.record(session, actor, "gallery_share_revoke", f"gallery_share:{share.id}", audit.Outcome.OK)


def list_galleries(rt: GalleryRuntime, actor: Actor) -> list[dict[str, Any]]:
    """The actor's agency's galleries and those shared with it (any purpose), with template counts, in the order
    they were created (each one's shares likewise)."""
    require(actor, Action.VIEW_GALLERY_RECORD)
    with rt.session_factory() as session:
        codes = dict(session.execute(select(Agency.id, Agency.code)).all())
        counts = dict(
            session.execute(select(FaceTemplate.gallery_id, func.count()).group_by(FaceTemplate.gallery_id))
            .all()
        )
        shared_ids = set(
            session.execute(select(GalleryShare.gallery_id).where(GalleryShare.agency_id == actor.agency_id))
            .scalars()
            .all()
        )
        galleries = session.scalars(
            select(Gallery).where((Gallery.agency_id == actor.agency_id) | Gallery.id.in_(shared_ids))
            .order_by(Gallery.id)
        ).all()
        out = []
        for g in galleries:
            shares = []
            for s in g.shares:
                if g.agency_id == actor.agency_id or s.agency_id == actor.agency_id:
                    until = s.ends_on.isoformat() if s.ends_on else "open"
                    state = " (revoked)" if s.revoked_at else ""
                    who = (
                        codes.get(s.agency_id, "?")
                        if g.agency_id == actor.agency_id
                        else f"by {codes.get(g.agency_id)}"
                    )
                    shares.append(f"{who} {'/'.join(s.purposes)} {s.starts_on.isoformat()}..{until}{state}")
            out.append(
                {
                    "id": g.id,
                    "agency": codes.get(g.agency_id, "?"),
                    "name": g.name,
                    "purposes": list(g.purposes),
                    "legal_authority": g.legal_authority,
                    "templates": int(counts.get(g.id, 0)),
                    "shares": shares,
                }
            )
        return out
