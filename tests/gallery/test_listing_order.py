"""Listings keep a stated order on every database: PostgreSQL returns rows without ORDER BY in any order (heap order,
an index's order, an updated row moved to the end), and pages of a listing whose sort key repeats overlap or skip
rows unless a unique key breaks the ties."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update

from faceleads.cli.context import cli_actor
from faceleads.core.actor import Role
from faceleads.core.uow import transaction
from faceleads.gallery import galleries
from faceleads.gallery.models import Gallery, Subject
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.viewing import list_subjects

PURPOSE = "investigation"
NUMBERS = ["S-03", "S-01", "S-02", "S-01-A", "S-04"]


def _setup(rt: GalleryRuntime) -> tuple[int, int]:
    """AGB's gallery (made first) shared with AGA, and AGA's own gallery made after it; (AGA's id, AGB's id)."""
    aga = cli_actor(rt, "AGA", roles=[Role.ADMINISTRATOR, Role.ANALYST])
    agb = cli_actor(rt, "AGB", roles=[Role.ADMINISTRATOR])
    galleries.create_gallery(rt, agb, "partner", "Booking Act s.3", [PURPOSE])
    galleries.share_gallery(rt, agb, "partner", "AGA", [PURPOSE], date(2020, 1, 1))
    galleries.create_gallery(rt, aga, "own", "Booking Act s.3", [PURPOSE])
    return aga.agency_id, agb.agency_id


def test_subject_pages_hold_every_subject_once_when_numbers_repeat_across_agencies(rt: GalleryRuntime) -> None:
    """Subject numbers are unique per agency only: AGA sees its own S-01 and AGB's S-01 (shared gallery). Paging
    through with every page size returns each subject exactly once, by subject number and then id."""
    aga_id, agb_id = _setup(rt)
    analyst = cli_actor(rt, "AGA", roles=[Role.ANALYST])
    with transaction(rt.session_factory) as session:
        gallery_of = {g.agency_id: g.id for g in session.scalars(select(Gallery))}
        # Interleaved so that neither the row order nor either gallery's index order is the id order of a number.
        for i, number in enumerate(NUMBERS):
            owners = (agb_id, aga_id) if i % 2 else (aga_id, agb_id)
            for agency_id in owners:
                session.add(Subject(agency_id=agency_id, gallery_id=gallery_of[agency_id], subject_number=number))
        session.flush()
        # An updated row moves to the end of a PostgreSQL table: without ORDER BY it would come back last.
        first = session.scalars(select(Subject.id).order_by(Subject.id)).first()
        session.execute(update(Subject).where(Subject.id == first).values(birth_year=1990))
        expected = [
            (number, sid)
            for sid, number in session.execute(select(Subject.id, Subject.subject_number)).all()
        ]
    expected.sort()
    assert len(expected) == 2 * len(NUMBERS)

    whole = list_subjects(rt, analyst, purpose=PURPOSE, limit=100)
    assert whole.total == len(expected)
    assert [(s.subject_number, s.subject_id) for s in whole.subjects] == expected
    for size in (1, 2, 3, 4):
        seen = []
        for offset in range(0, len(expected), size):
            page = list_subjects(rt, analyst, purpose=PURPOSE, limit=size, offset=offset)
            assert page.total == len(expected)
            seen += [(s.subject_number, s.subject_id) for s in page.subjects]
        assert seen == expected, f"pages of {size} overlap or skip a subject"


def test_galleries_are_listed_in_creation_order_with_their_shares(rt: GalleryRuntime) -> None:
    """Own and shared galleries in the order they were made (not own first, not the order rows happen to lie in),
    each with its shares in the order they were agreed."""
    _setup(rt)
    agb = cli_actor(rt, "AGB", roles=[Role.ADMINISTRATOR])
    galleries.share_gallery(rt, agb, "partner", "AGA", [PURPOSE], date(2021, 1, 1), agreement_ref="renewal")
    galleries.share_gallery(rt, agb, "partner", "DEV", [PURPOSE], date(2022, 1, 1))
    with transaction(rt.session_factory) as session:
        ids = session.scalars(select(Gallery.id).order_by(Gallery.id)).all()
        # Edited after the others were made: moves to the end of a PostgreSQL table.
        session.execute(update(Gallery).where(Gallery.id == ids[0]).values(legal_authority="Booking Act s.3(2)"))
    aga = cli_actor(rt, "AGA", roles=[Role.ANALYST])
    listed = galleries.list_galleries(rt, aga)
    assert [(g["id"], g["agency"], g["name"]) for g in listed] == [(ids[0], "AGB", "partner"), (ids[1], "AGA", "own")]
    assert listed[0]["shares"] == [f"by AGB {PURPOSE} 2020-01-01..open", f"by AGB {PURPOSE} 2021-01-01..open"]
    owner = galleries.list_galleries(rt, cli_actor(rt, "AGB", roles=[Role.RECORDS_OFFICER]))
    assert [g["name"] for g in owner] == ["partner"]
    assert owner[0]["shares"] == [f"AGA {PURPOSE} 2020-01-01..open", f"AGA {PURPOSE} 2021-01-01..open",
                                  f"DEV {PURPOSE} 2022-01-01..open"]  # fmt: skip
