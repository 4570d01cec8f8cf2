"""Which gallery records are lawful to search: the one definition, used by the search index, the search itself and
the live watch lists.

A face template is lawful when the booking (encounter) of its photo is held under an **active** entry of the owning
agency's list of legal authorities (:class:`~faceleads.gallery.models.LegalAuthority`). A record enrolled before the
list existed (no ``authority_id``), or held under an entry that was since withdrawn, is not searched until a records
officer reviews it (``faceleads.gallery.authorities.reattribute``) or it is destroyed.

The search index of every process compares :func:`generation` before a search: services that change lawfulness
without adding or deleting a template (withdrawing an authority, re-attributing records) call :func:`bump` in their
transaction, so other processes re-check their template set at their next search.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, exists, select, update
from sqlalchemy.orm import Session

from faceleads.gallery.models import Encounter, FaceTemplate, GalleryState, Image, LegalAuthority

_SPACES = re.compile(r"\s+")
S = TypeVar("S", bound=Select[Any])


def normalise(text: str) -> str:
    """The form authorities are compared in: case-folded, whitespace collapsed."""
    return _SPACES.sub(" ", (text or "").strip()).casefold()


def lawful_template_clause() -> ColumnElement[bool]:
    """A condition on :class:`FaceTemplate` rows: the template's booking is held under an active listed authority
    of the record's own agency."""
    return exists(
        select(Image.id)
        .join(Encounter, Encounter.id == Image.encounter_id)
        .join(LegalAuthority, LegalAuthority.id == Encounter.authority_id)
        .where(
            Image.id == FaceTemplate.image_id,
            LegalAuthority.active.is_(True),
            LegalAuthority.agency_id == Encounter.agency_id,
        )
    )


def only_lawful(query: S) -> S:
    """Restrict a select over :class:`FaceTemplate` to lawful templates by joining photo, booking and authority.

    The same rule as :func:`lawful_template_clause`, as joins: over a whole gallery the database plans them better
    than the correlated condition (``benchmarks/lawful_overhead.py``). For the search index's template set.
    """
    return (
        query.join(Image, Image.id == FaceTemplate.image_id)
        .join(Encounter, Encounter.id == Image.encounter_id)
        .join(LegalAuthority, LegalAuthority.id == Encounter.authority_id)
        .where(LegalAuthority.active.is_(True), LegalAuthority.agency_id == Encounter.agency_id)
    )


def unlawful_template_ids(session: Session, template_ids: list[int]) -> set[int]:
    """Those of ``template_ids`` that are not lawful to search (see the module docstring)."""
    if not template_ids:
        return set()
    lawful = set(
        session.execute(
            select(FaceTemplate.id).where(FaceTemplate.id.in_(template_ids), lawful_template_clause())
        ).scalars()
    )
    return set(template_ids) - lawful


def generation(session: Session) -> int:
    """The lawfulness generation (0 when the row is missing)."""
    value = session.execute(select(GalleryState.lawful_generation).where(GalleryState.id == 1)).scalar_one_or_none()
    return int(value or 0)


def bump(session: Session) -> None:
    """Record, in the caller's transaction, that which templates are lawful changed."""
    changed = session.execute(
        update(GalleryState).where(GalleryState.id == 1).values(lawful_generation=GalleryState.lawful_generation + 1)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        session.add(GalleryState(id=1, lawful_generation=1))
        session.flush()


__all__ = ["bump", "generation", "lawful_template_clause", "normalise", "only_lawful", "unlawful_template_ids"]
