"""First start and demo data for the web app.

- :func:`ensure_admin` creates the first agency and administrator when the database has no user yet (through
  :func:`faceleads.security.users.bootstrap`), with the password from ``FACELEADS_ADMIN_PASSWORD`` or a generated
  one that is returned so it can be printed once.
- :func:`load_demo` adds one demo user per role (certified where the role needs it) and a small demo gallery of
  faces cropped from the sample photos shipped with the model wheel (players.jpg, gdp.jpg, yaoming.jpg), so that a
  newcomer can sign in as the analyst and search at once (e.g. with players.jpg as a multi-face probe). It goes
  through separation of duties like anyone would: the administrator requests the biometric roles, the training
  officer records the certifications, a second system operator approves the first supervisor (the agency has no
  approver yet) and that supervisor approves the rest.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from faceleads.core.actor import Actor
from faceleads.errors import ConfigurationError
from faceleads.gallery import authorities
from faceleads.gallery.enrolment import RecordInput, enrol_record
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.visibility import DEFAULT_PURPOSE
from faceleads.security import approvals, auth, users
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
    ("training", ("training_officer",), "Demo training officer (records certifications)"),
    ("operator", ("system_operator",), "Demo second system operator"),
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
    """Bootstrap the first administrator when there is no user; returns the password used (None if none made).

    Outside dev mode a generated password would end up in the service's logs, so there the password must come
    from ``FACELEADS_ADMIN_PASSWORD`` (or the administrator is made with ``faceleads admin bootstrap``).
    """
    if has_users(rt):
        return None
    if password is None and not rt.settings.is_dev:
        raise ConfigurationError(
            "first start in production mode: set FACELEADS_ADMIN_PASSWORD for the first administrator, or create "
            "it with 'faceleads admin bootstrap' (a generated password is never printed outside dev mode)"
        )
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
    return _actor(rt, ADMIN_USERNAME)


def _actor(rt: GalleryRuntime, username: str) -> Actor:
    with rt.session_factory() as session:
        user = session.scalars(select(User).where(User.username == username)).first()
        if user is None:
            raise LookupError(f"the demo needs the user {username!r}")
        return auth.actor_for_user(session, user)


def _crop(pixels: object, box: list[float], margin: float = 0.8) -> bytes:
    import numpy as np

    image = np.asarray(pixels)
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    left, top = max(0, int(x1 - w * margin)), max(0, int(y1 - h * margin))
    right, bottom = min(image.shape[1], int(x2 + w * margin)), min(image.shape[0], int(y2 + h * margin))
    return encode_jpeg(np.ascontiguousarray(image[top:bottom, left:right]), quality=95)


DEMO_REFUSED = (
    "the demo (users with printed passwords, a gallery of sample faces) is refused outside dev mode: "
    "FACELEADS_MODE is production; start without --demo"
)


def load_demo(rt: GalleryRuntime) -> DemoReport:
    """Create the demo users and gallery once (skipped when the demo users already exist). Dev mode only: demo
    accounts with known passwords never exist in a production system (:class:`ConfigurationError`)."""
    if not rt.settings.is_dev:
        raise ConfigurationError(DEMO_REFUSED)
    report = DemoReport()
    admin = _admin_actor(rt)
    with rt.session_factory() as session:
        if session.scalars(select(User).where(User.username == DEMO_USERS[0][0])).first() is not None:
            report.skipped = True
            return report
    expires = datetime.combine(date.today() + timedelta(days=365), datetime.min.time(), tzinfo=UTC)
    requests: list[approvals.ApprovalInfo] = []
    for username, roles, display in DEMO_USERS:
        password = new_password()
        change = users.create_user(rt.session_factory, admin, admin.agency_code, username, password,
                                   display_name=display, roles=roles)  # fmt: skip
        requests.extend(change.approvals)
        report.passwords[username] = password
    training = _actor(rt, "training")
    for username, roles, _ in DEMO_USERS:
        if {"analyst", "reviewer"} & set(roles):
            requests.extend(users.certify(rt.session_factory, training, username, expires,
                                          reference="DEMO-CERT").approvals)  # fmt: skip
    # The agency's first supervisor: approved by the second operator (no approver exists yet), then the rest by it.
    first = next(a for a in requests if a.kind == "grant_role" and a.role == "supervisor")
    approvals.approve(rt.session_factory, _actor(rt, "operator"), first.id, "demo: first supervisor of the agency")
    supervisor = _actor(rt, "supervisor")
    for pending in requests:
        if pending.id != first.id:
            approvals.approve(rt.session_factory, supervisor, pending.id, "demo data")
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
DEMO_PURPOSES: tuple[tuple[str, str, bool, str], ...] = (  # (code, title, needs authorisation, regime)
    (DEFAULT_PURPOSE, "Criminal investigation of a listed offence", False, "investigative"),
    ("sensitive-investigation", "Sensitive investigation (a supervisor authorises first)", True, "investigative"),
    # Exigent regime: searched at once on the declared reason, threat-to-life priority, ratified within the window.
    ("exigent-threat-to-life", "Exigent threat to life", False, "exigent"),
)


def seed_lists(rt: GalleryRuntime, admin: Actor) -> None:
    """Add the demo offence list and purposes through the casework administration (skips existing entries), and put
    the purposes in their legal regime for ``admin``'s agency (purposes are system-wide, regimes per agency)."""
    from faceleads.casework import admin as lists
    from faceleads.casework import regimes

    known = {o.code for o in lists.list_offences(rt, admin)}
    for code, title, category in DEMO_OFFENCES:
        if code not in known:
            lists.add_offence(rt, admin, code, title, category)
    purposes = {p.code: p for p in lists.list_purposes(rt, admin.agency_id)}
    for code, title, needs_authorisation, regime in DEMO_PURPOSES:
        if code not in purposes:
            lists.add_purpose(rt, admin, code, title, requires_authorisation=needs_authorisation, regime=regime)
        elif purposes[code].regime != regime:
            regimes.set_purpose_regime(rt, admin, code, regime)
