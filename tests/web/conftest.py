"""Web tests: one app over a real runtime (real face engine, real SQLite, real encrypted store) for the module,
with one user per role in agency AGA, an analyst in agency AGB, and a few LFW people enrolled in AGA."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faceleads.casework import cases
from faceleads.config import Settings
from faceleads.core.actor import Actor, Role
from faceleads.db import utcnow
from faceleads.gallery.enrolment import RecordInput, enrol_record
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.security.auth import actor_for_user
from faceleads.security.models import User
from faceleads.web.app import create_app
from faceleads.web.demo import seed_lists
from tests.conftest import lfw_identities
from tests.dbs import settings_for
from tests.lawful import list_authorities
from tests.security.identity_helpers import PASSWORD, add_agency, add_user

AUTHORITY = "Police and Criminal Evidence Act 1984 s.64A"
ROLE_USERS: dict[str, set[Role]] = {
    "analyst": {Role.ANALYST},
    "reviewer": {Role.REVIEWER},
    "investigator": {Role.INVESTIGATOR},
    "supervisor": {Role.SUPERVISOR},
    "records": {Role.RECORDS_OFFICER},
    "auditor": {Role.AUDITOR},
    "admin": {Role.ADMINISTRATOR},
    "training": {Role.TRAINING_OFFICER},
    "oversight": {Role.OVERSIGHT},
    "operator": {Role.SYSTEM_OPERATOR},
}
GALLERY_PEOPLE = ["Abdullah_Gul", "AJ_Cook", "Aaron_Peirsol", "Ai_Sugiyama", "Adam_Sandler"]
OPEN_CASE, OPEN_CASE_B = "OCC-1", "OCC-B1"  # an open robbery case of AGA, and one of AGB
LEGAL_BASIS = "Seized from the shop's CCTV under a production order"


PEOPLE = lfw_identities()


@dataclass
class WebEnv:
    """The app, its runtime, and signed-in bearer tokens per user name."""

    client: TestClient
    rt: GalleryRuntime
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)
    subject_ids: dict[str, int] = field(default_factory=dict)
    image_ids: dict[str, int] = field(default_factory=dict)
    agency_ids: dict[str, int] = field(default_factory=dict)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def sign_in(self, user: str) -> str:
        response = self.client.post("/api/v1/auth/sign-in", json={"username": user, "password": PASSWORD})
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token


def build_env(tmp: Path, engine: Any, *, users: bool = True) -> Iterator[WebEnv]:
    """Runtime + app + users + a small gallery, inside a running TestClient."""
    # Every test module signs in many users from one address: the per-address limit would turn a fast run into
    # 429s. The per-account limit stays as shipped (tests/web/test_api.py checks it).
    settings = settings_for(tmp / "data", sign_in_attempts_per_address=100_000)
    rt = GalleryRuntime(settings, face_engine=engine)
    factory = rt.session_factory
    aga = add_agency(factory, "AGA")
    agb = add_agency(factory, "AGB")
    certified = utcnow() + timedelta(days=365)
    if users:
        for name, roles in ROLE_USERS.items():
            add_user(factory, aga, name, roles, certified_until=certified if roles & {Role.ANALYST, Role.REVIEWER}
                     else None)  # fmt: skip
        add_user(factory, aga, "analyst2", {Role.ANALYST, Role.REVIEWER}, certified_until=certified)
        add_user(factory, agb, "analyst-b", {Role.ANALYST}, certified_until=certified)
        add_user(factory, agb, "records-b", {Role.RECORDS_OFFICER})
        with factory() as session:
            admin_user = session.query(User).filter(User.username == "admin").one()
            admin_actor = actor_for_user(session, admin_user)
        seed_lists(rt, admin_actor)  # the offence list and purposes casework needs
        seed_lists(rt, Actor("admin-b", agb, frozenset({Role.ADMINISTRATOR}), None, "AGB"))
        # The legal authorities each agency holds its booking photos under (only these may be enrolled).
        for code in ("AGA", "AGB"):
            list_authorities(rt, code)
        # Every search runs on a registered, open case of the searching agency.
        for agency_id, code, number in ((aga, "AGA", OPEN_CASE), (agb, "AGB", OPEN_CASE_B)):
            investigator = Actor(f"investigator-{code}", agency_id, frozenset({Role.INVESTIGATOR}), None, code)
            cases.open_case(rt, investigator, number, "ROB", "Armed robbery at a petrol station; suspect on CCTV")
    app = create_app(settings, runtime=rt)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        env = WebEnv(client, rt, settings, agency_ids={"AGA": aga, "AGB": agb})
        if users:
            for name in [*ROLE_USERS, "analyst2", "analyst-b", "records-b"]:
                env.tokens[name] = env.sign_in(name)
            officer = Actor("records", aga, frozenset({Role.RECORDS_OFFICER}), None, "AGA")
            for i, person in enumerate(GALLERY_PEOPLE):
                result = enrol_record(
                    rt, officer, RecordInput(person, f"AGA-{i:03d}", date(2020, 1, 2), AUTHORITY), [PEOPLE[person][0]]
                )
                env.subject_ids[person] = result.subject_id
                env.image_ids[person] = result.photos[0].image_id
        yield env
    rt.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, engine: Any) -> Iterator[WebEnv]:
    """A module-wide web environment (sign-ins and enrolment are the slow part; done once)."""
    yield from build_env(tmp_path_factory.mktemp("web"), engine)
