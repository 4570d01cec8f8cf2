"""Searching in tests the only way the product allows: on an open case of the actor's agency, through casework.

:func:`search_on_case` registers what a lawful search needs when it is missing (an offence on the agency's
approved list, the purpose, an open case — through the administration and casework services, as an administrator
and an investigator of the same agency would) and then runs :func:`faceleads.casework.quick.quick_search`. It
returns the gallery's search result (candidates with their booking details).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select

from faceleads.casework import admin, cases
from faceleads.casework.models import Case, Offence, Purpose
from faceleads.casework.quick import QuickSearchResult, quick_search
from faceleads.core.actor import Actor, Role
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.search import SearchResult
from faceleads.gallery.visibility import DEFAULT_PURPOSE

CASE = "OCC-2024-0001"
OFFENCE = "ROB"
REASON = "street robbery, CCTV still"
LEGAL_BASIS = "Seized from the shop's CCTV under a production order"


def _helper(actor: Actor, role: Role, name: str) -> Actor:
    return replace(actor, username=f"{name}@{actor.agency_code or actor.agency_id}", roles=frozenset({role}),
                   user_id=None)  # fmt: skip


def register_case(
    rt: GalleryRuntime, actor: Actor, case: str = CASE, offence: str = OFFENCE, purposes: tuple[str, ...] = ()
) -> int:
    """The id of the open case ``case`` of the actor's agency, registering offence, purposes and case if missing."""
    with rt.session_factory() as session:
        has_offence = session.scalars(
            select(Offence).where(Offence.agency_id == actor.agency_id, Offence.code == offence)
        ).first()
        known_purposes = set(session.scalars(select(Purpose.code)).all())
        existing = session.scalars(
            select(Case.id).where(Case.agency_id == actor.agency_id, Case.occurrence_number == case)
        ).first()
    administrator = _helper(actor, Role.ADMINISTRATOR, "admin")
    if has_offence is None:
        admin.add_offence(rt, administrator, offence, f"offence {offence}", "serious")
    for purpose in {DEFAULT_PURPOSE, *purposes} - known_purposes:
        admin.add_purpose(rt, administrator, purpose, f"purpose {purpose}")
    if existing is not None:
        return int(existing)
    investigator = _helper(actor, Role.INVESTIGATOR, "investigator")
    return cases.open_case(rt, investigator, case, offence, "test case: suspect photographed at the scene").id


def quick(
    rt: GalleryRuntime,
    actor: Actor,
    probe: Path | bytes,
    *,
    case: str = CASE,
    offence: str = OFFENCE,
    reason: str = REASON,
    purpose: str = DEFAULT_PURPOSE,
    face: int | None = None,
    top: int | None = None,
    floor: float | None = None,
    at: datetime | date | None = None,
) -> QuickSearchResult:
    """Register the case if needed and run the quick search on it."""
    register_case(rt, actor, case, offence, (purpose,))
    return quick_search(rt, actor, case, probe, reason=reason, legal_basis=LEGAL_BASIS, purpose=purpose, face=face,
                        top=top, floor=floor, at=at)  # fmt: skip


def search_on_case(rt: GalleryRuntime, actor: Actor, probe: Path | bytes, **kwargs: object) -> SearchResult:
    """:func:`quick`, returning the gallery's search result."""
    return quick(rt, actor, probe, **kwargs).search  # type: ignore[arg-type]


# --- the lawful gallery: the authorities test agencies hold their booking photos under ------------------------------

PACE = ("PACE-64A", "Police and Criminal Evidence Act 1984 s.64A")
# Other authorities the test data is enrolled under (each a listed entry of the agencies under test).
TEST_AUTHORITIES: tuple[tuple[str, str], ...] = (
    PACE,
    ("PACE", "PACE s.64A"),
    ("PACE-1984", "PACE 1984 s.64A"),
    ("CRA-12", "Custody Records Act s.12"),
    ("BA-3", "Booking Act s.3"),
    ("ACT", "Booking Act"),
    ("LFW", "LFW evaluation (test data)"),
)


def list_authorities(
    rt: GalleryRuntime, agency_code: str, entries: tuple[tuple[str, str], ...] = TEST_AUTHORITIES
) -> int:
    """Put ``entries`` (code, title) on the list of agency ``agency_code`` (created if missing) through the service,
    as an administrator of that agency would; returns the agency id. Idempotent."""
    from faceleads.db import Agency
    from faceleads.gallery.authorities import add_authority
    from faceleads.gallery.models import LegalAuthority

    code = agency_code.upper()
    with rt.session_factory() as session:
        agency = session.scalars(select(Agency).where(Agency.code == code)).first()
        if agency is None:
            agency = Agency(code=code, name=code)
            session.add(agency)
            session.commit()
        agency_id = agency.id
        have = set(session.scalars(select(LegalAuthority.code).where(LegalAuthority.agency_id == agency_id)))
    administrator = Actor(f"admin@{code}", agency_id, frozenset({Role.ADMINISTRATOR}), None, code)
    for entry_code, title in entries:
        if entry_code not in have:
            add_authority(rt, administrator, entry_code, title)
    return int(agency_id)
