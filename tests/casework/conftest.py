"""Casework test environment: one agency with real users (roles, certifications), an administered offence and purpose
list, a small gallery of real LFW faces enrolled through the gallery API, and probes composed from other photos of
the same people. Built once per module (enrolment and model inference are the slow parts)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from faceleads.casework import admin
from faceleads.core.actor import Actor, Role
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.gallery.enrolment import RecordInput, enrol_record
from faceleads.gallery.galleries import create_gallery
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.security.auth import actor_for_user
from faceleads.security.models import Certification, RoleGrant, User
from faceleads.vision.imaging import encode_jpeg, load_image
from tests.conftest import lfw_identities
from tests.dbs import settings_for
from tests.lawful import list_authorities

AUTHORITY = "Police and Criminal Evidence Act 1984 s.64A"
CI = "criminal-investigation"
EXIGENT = "exigent-threat-to-life"
VICTIM = "victim-identification-cse"
GALLERY_SUBJECTS = 8


def lfw_people(min_photos: int = 4) -> dict[str, list[Path]]:
    """LFW dev identities with at least ``min_photos`` photos, in a stable order."""
    return {k: sorted(v) for k, v in sorted(lfw_identities().items()) if len(v) >= min_photos}


def side_by_side(*paths: Path) -> bytes:
    """A JPEG holding the given photos next to each other (a multi-face probe)."""
    images = [load_image(p).pixels for p in paths]
    h = max(i.shape[0] for i in images)
    canvas = np.full((h + 40, sum(i.shape[1] for i in images) + 40 * len(images), 3), 90, np.uint8)
    x = 20
    for img in images:
        canvas[20 : 20 + img.shape[0], x : x + img.shape[1]] = img
        x += img.shape[1] + 40
    return encode_jpeg(canvas)


def add_user(factory: sessionmaker[Session], agency_id: int, username: str, roles: set[Role],
             certified_until: datetime | None = None) -> int:
    with transaction(factory) as session:
        user = User(agency_id=agency_id, username=username, password_hash="x")
        session.add(user)
        session.flush()
        for role in roles:
            session.add(RoleGrant(user_id=user.id, role=role.value))
        if certified_until is not None:
            session.add(Certification(user_id=user.id, expires_at=certified_until))
        return user.id


def actor_of(factory: sessionmaker[Session], user_id: int, now: datetime | None = None) -> Actor:
    with factory() as session:
        user = session.get(User, user_id)
        assert user is not None
        return actor_for_user(session, user, now)


@dataclass
class Env:
    rt: GalleryRuntime
    admin: Actor
    records: Actor
    investigator: Actor
    analyst: Actor
    reviewer: Actor
    supervisor: Actor
    expired_user_id: int
    people: dict[str, list[Path]]  # enrolled identities -> photos (first enrolled, the rest unseen)
    subjects: dict[str, int]  # identity -> subject id

    def fresh_case(self, number: str, offence: str = "ROB") -> int:
        from faceleads.casework import cases

        return cases.open_case(self.rt, self.investigator, number, offence,
                               "Armed robbery at a petrol station; suspect on CCTV").id


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, engine) -> Iterator[Env]:  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("casework") / "data"
    settings = settings_for(data_dir)
    rt = GalleryRuntime(settings, face_engine=engine)
    factory = rt.session_factory
    with transaction(factory) as session:
        agency = Agency(code="MET", name="Metropolitan Police")
        session.add(agency)
        session.flush()
        agency_id = agency.id
    valid = utcnow() + timedelta(days=365)
    ids = {
        "admin": add_user(factory, agency_id, "ada.admin", {Role.ADMINISTRATOR}),
        "records": add_user(factory, agency_id, "rob.records", {Role.RECORDS_OFFICER}),
        "investigator": add_user(factory, agency_id, "ivy.investigator", {Role.INVESTIGATOR}),
        "analyst": add_user(factory, agency_id, "ann.analyst", {Role.ANALYST, Role.REVIEWER}, valid),
        "reviewer": add_user(factory, agency_id, "rey.reviewer", {Role.ANALYST, Role.REVIEWER}, valid),
        "supervisor": add_user(factory, agency_id, "sue.supervisor", {Role.SUPERVISOR}),
        "expired": add_user(factory, agency_id, "eve.expired", {Role.ANALYST},
                            datetime(2020, 1, 1, tzinfo=UTC)),
    }
    actors = {k: actor_of(factory, v) for k, v in ids.items() if k != "expired"}
    adm = actors["admin"]
    admin.add_offence(rt, adm, "ROB", "Robbery", "serious")
    admin.add_offence(rt, adm, "SHOP", "Shoplifting", "minor")
    admin.add_purpose(rt, adm, CI, "Criminal investigation of a listed offence")
    admin.add_purpose(rt, adm, EXIGENT, "Exigent threat to life", requires_authorisation=True)
    admin.add_purpose(rt, adm, VICTIM, "Victim identification (child sexual exploitation)",
                      requires_authorisation=True)
    create_gallery(rt, adm, "custody", AUTHORITY, [CI, EXIGENT])
    list_authorities(rt, "MET")
    people = dict(list(lfw_people().items())[:GALLERY_SUBJECTS])
    subjects = {}
    for n, (name, photos) in enumerate(people.items(), start=1):
        rec = RecordInput(f"S{n:04d}", f"B{n:04d}", date(2020, 1, n), AUTHORITY, charge="theft", gallery="custody")
        subjects[name] = enrol_record(rt, actors["records"], rec, [photos[0]]).subject_id
    yield Env(rt, adm, actors["records"], actors["investigator"], actors["analyst"], actors["reviewer"],
              actors["supervisor"], ids["expired"], people, subjects)
    rt.close()
