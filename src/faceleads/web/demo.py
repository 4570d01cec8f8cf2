"""First start and demo data for the web app.

- :func:`ensure_admin` creates the first agency and administrator when the database has no user yet (through
  :func:`faceleads.security.users.bootstrap`), with the password from ``FACELEADS_ADMIN_PASSWORD`` or a generated
  one that is returned so it can be printed once.
- :func:`load_demo` adds one demo user per role (certified where the role needs it) and a small demo gallery of
  faces cropped from the sample photos shipped with the model wheel (players.jpg, gdp.jpg, yaoming.jpg), so that a
  newcomer can sign in as the analyst and search at once (e.g. with players.jpg as a multi-face probe).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from faceleads.core.actor import Actor
from faceleads.gallery import authorities
from faceleads.gallery.enrolment import RecordInput, enrol_record
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.security import auth, users
from faceleads.security.models import User
from faceleads.vision.imaging import encode_jpeg, load_image
from faceleads.vision.models import default_model_dir

ADMIN_USERNAME = "admin"
DEMO_AUTHORITY = "Demonstration data (sample photos shipped with the face models)"
DEMO_AUTHORITY_CODE = "DEMO"
DEMO_USERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("analyst", ("analyst",), "Demo analyst"),
    ("reviewer", ("analyst", "reviewer"), "Demo second analyst (blind verification)"),
    ("investigator", ("investigator",), "Demo investigator"),
    ("supervisor", ("supervisor",), "Demo supervisor"),
    ("records", ("records_officer",), "Demo records officer"),
    ("auditor", ("auditor",), "Demo auditor"),
)
SAMPLES: tuple[tuple[str, int, float], ...] = (  # (file, most faces to enrol, lowest quality)
    ("players.jpg", 14, 0.40),
    ("gdp.jpg", 3, 0.40),
    ("yaoming.jpg", 1, 0.40),
)


def new_password() -> str:
    """A random password that passes the password rules (shown once, never stored in clear)."""
    return "fl-" + secrets.token_urlsafe(15)


def has_users(rt: GalleryRuntime) -> bool:
    """Whether any user exists yet."""
    with rt.session_factory() as session:
        return bool(session.scalar(select(func.count()).select_from(User)))


def ensure_admin(rt: GalleryRuntime, password: str | None) -> str | None:
    """Bootstrap the first administrator when there is no user; returns the password used (None if none made)."""
    if has_users(rt):
        return None
    secret = password or new_password()
    code = rt.settings.agency.strip().upper()
    users.bootstrap(rt.session_factory, code, f"{code} (first agency)", ADMIN_USERNAME, secret)
    return secret


@dataclass
class DemoReport:
    """What the demo loader created (passwords are shown once)."""

    passwords: dict[str, str] = field(default_factory=dict)
    subjects: int = 0
    skipped: bool = False


def _admin_actor(rt: GalleryRuntime) -> Actor:
    with rt.session_factory() as session:
        admin = session.scalars(select(User).where(User.username == ADMIN_USERNAME)).first()
        if admin is None:
            raise LookupError("the demo needs the bootstrap administrator 'admin'")
        return auth.actor_for_user(session, admin)


def _crop(pixels: object, box: list[float], margin: float = 0.8) -> bytes:
    import numpy as np

    image = np.asarray(pixels)
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    left, top = max(0, int(x1 - w * margin)), max(0, int(y1 - h * margin))
    right, bottom = min(image.shape[1], int(x2 + w * margin)), min(image.shape[0], int(y2 + h * margin))
    return encode_jpeg(np.ascontiguousarray(image[top:bottom, left:right]), quality=95)


def load_demo(rt: GalleryRuntime) -> DemoReport:
    """Create the demo users and gallery once (skipped when the demo users already exist)."""
    report = DemoReport()
    admin = _admin_actor(rt)
    with rt.session_factory() as session:
        if session.scalars(select(User).where(User.username == DEMO_USERS[0][0])).first() is not None:
            report.skipped = True
            return report
    expires = datetime.combine(date.today() + timedelta(days=365), datetime.min.time(), tzinfo=UTC)
    for username, roles, display in DEMO_USERS:
        password = new_password()
        users.create_user(rt.session_factory, admin, admin.agency_code, username, password, display_name=display,
                          roles=roles)  # fmt: skip
        if {"analyst", "reviewer"} & set(roles):
            users.certify(rt.session_factory, admin, username, expires, reference="DEMO-CERT")
        report.passwords[username] = password
    with rt.session_factory() as session:
        records_user = session.scalars(select(User).where(User.username == "records")).one()
        officer = auth.actor_for_user(session, records_user)
    # The gallery holds only records under a listed legal authority: the demo data's is put on the list first.
    if not any(a.code == DEMO_AUTHORITY_CODE for a in authorities.list_authorities(rt, admin)):
        authorities.add_authority(rt, admin, DEMO_AUTHORITY_CODE, DEMO_AUTHORITY,
                                  "Sample photos shipped with the face models; not real booking records.")  # fmt: skip
    number = 0
    for filename, most, lowest in SAMPLES:
        image = load_image(default_model_dir() / filename, rt.settings)
        faces = [f for f in rt.face_engine.detect(image.pixels) if f.quality.overall >= lowest][:most]
        for face in faces:
            number += 1
            record = RecordInput(
                subject_number=f"DEMO-{number:04d}",
                booking_number=f"DEMO-B{number:04d}",
                booking_date=date(2020, 1, 1) + timedelta(days=number * 17),
                legal_authority=DEMO_AUTHORITY,
                charge="demonstration record",
            )
            enrol_record(rt, officer, record, [_crop(image.pixels, [float(v) for v in face.box])],
                         source=f"demo:{filename}")  # fmt: skip
    report.subjects = number
    seed_lists(rt, admin)
    return report


DEMO_OFFENCES: tuple[tuple[str, str, str], ...] = (
    ("ROB", "Robbery", "serious"),
    ("BURG", "Burglary", "standard"),
    ("ASSAULT", "Assault", "standard"),
    ("SHOP", "Shoplifting", "minor"),
)
DEMO_PURPOSES: tuple[tuple[str, str, bool], ...] = (
    (DEFAULT_PURPOSE, "Criminal investigation of a listed offence", False),
    ("exigent-threat-to-life", "Exigent threat to life", True),
)


def seed_lists(rt: GalleryRuntime, admin: Actor) -> None:
    """Add the demo offence list and purposes through the casework administration (skips existing entries)."""
    from faceleads.casework import admin as lists

    known = {o.code for o in lists.list_offences(rt, admin)}
    for code, title, category in DEMO_OFFENCES:
        if code not in known:
            lists.add_offence(rt, admin, code, title, category)
    purposes = {p.code for p in lists.list_purposes(rt)}
    for code, title, needs_authorisation in DEMO_PURPOSES:
        if code not in purposes:
            lists.add_purpose(rt, admin, code, title, requires_authorisation=needs_authorisation)
