"""Which galleries an agency may search, for which purpose, at which time: the one place that decides it.

An agency sees its own galleries whose stated purposes include the search's purpose, plus every gallery shared
with it by an active sharing agreement (not revoked, ``starts_on <= day < ends_on``) that lists the purpose.
Nothing else: there is no implicit cross-agency visibility.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads.db import utcnow
from faceleads.gallery.models import Gallery, GalleryShare

DEFAULT_PURPOSE = "criminal-investigation"


def _day(at: datetime | date | None) -> date:
    if at is None:
        return utcnow().date()
    if isinstance(at, datetime):
        return at.date()
    return at


def share_is_active(share: GalleryShare, purpose: str, at: datetime | date | None = None) -> bool:
    """Whether ``share`` allows searching for ``purpose`` on the day of ``at`` (default: today, UTC)."""
    day = _day(at)
    if share.revoked_at is not None:
        return False
    if purpose not in (share.purposes or []):
        return False
    if day < share.starts_on:
        return False
    return share.ends_on is None or day < share.ends_on


def visible_gallery_ids(session: Session, agency_id: int, purpose: str, at: datetime | date | None = None) -> list[int]:
    """Sorted ids of the galleries ``agency_id`` may search for ``purpose`` at ``at`` (default: now)."""
    ids: set[int] = set()
    for gallery in session.scalars(select(Gallery).where(Gallery.agency_id == agency_id)):
        if purpose in (gallery.purposes or []):
            ids.add(gallery.id)
    shares = session.scalars(select(GalleryShare).where(GalleryShare.agency_id == agency_id))
    for share in shares:
        # A share cannot widen the owner's own purposes: the gallery must be searchable for it at all.
        if share_is_active(share, purpose, at) and purpose in (share.gallery.purposes or []):
            ids.add(share.gallery_id)
    return sorted(ids)


def gallery_visible(
    session: Session, agency_id: int, gallery_id: int, purpose: str, at: datetime | date | None = None
) -> bool:
    """Whether one gallery is visible to ``agency_id`` for ``purpose`` at ``at``."""
    return gallery_id in visible_gallery_ids(session, agency_id, purpose, at)


def gallery_shared(
    session: Session, agency_id: int, gallery_id: int, purpose: str | None = None, at: datetime | date | None = None
) -> bool:
    """Whether ``agency_id`` may see ``gallery_id``'s records: its own gallery, or a sharing agreement in force
    covers the gallery (for ``purpose``, or for any of the gallery's purposes when None).

    This is the ``shared`` answer the central policy needs for a shareable action on another agency's record; it
    is always True or False (never unknown), so the policy's check fails closed.
    """
    gallery = session.get(Gallery, gallery_id)
    if gallery is None:
        return False
    if gallery.agency_id == agency_id:
        return True
    wanted = [purpose] if purpose is not None else list(gallery.purposes or [])
    for share in session.scalars(
        select(GalleryShare).where(GalleryShare.agency_id == agency_id, GalleryShare.gallery_id == gallery_id)
    ):
        if any(share_is_active(share, p, at) and p in (gallery.purposes or []) for p in wanted):
            return True
    return False
