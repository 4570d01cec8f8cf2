"""Live deployment tests: a real runtime (SQLite, encrypted store, real face models), users per role in agencies
AGA and AGB, a gallery held for live watch lists, a stored calibration from real impostor scores, and a test video
composed from real photos of listed and non-listed people."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceleads.config import Settings
from faceleads.core.actor import Actor, Role
from faceleads.db import utcnow
from faceleads.evaluation.stored import save_calibration
from faceleads.gallery.enrolment import RecordInput, enrol_record
from faceleads.gallery.galleries import create_gallery, share_gallery
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.live import scenes, watchlists
from faceleads.live.models import LIVE_PURPOSE
from faceleads.security.auth import actor_for_user
from faceleads.security.models import User
from faceleads.vision.imaging import load_image
from tests.lawful import list_authorities
from tests.live.faces import sample_people
from tests.security.identity_helpers import add_agency, add_user

AUTHORITY = "Police and Criminal Evidence Act 1984 s.64A"
USERS: dict[str, tuple[str, set[Role]]] = {
    "sup1": ("AGA", {Role.SUPERVISOR}),
    "sup2": ("AGA", {Role.SUPERVISOR}),
    "analyst": ("AGA", {Role.ANALYST}),
    "officer": ("AGA", {Role.INVESTIGATOR}),
    "officer2": ("AGA", {Role.INVESTIGATOR}),
    "auditor": ("AGA", {Role.AUDITOR}),
    "records": ("AGA", {Role.RECORDS_OFFICER}),
    "admin": ("AGA", {Role.ADMINISTRATOR}),
    "admin-b": ("AGB", {Role.ADMINISTRATOR}),
    "records-b": ("AGB", {Role.RECORDS_OFFICER}),
    "sup-b": ("AGB", {Role.SUPERVISOR}),
}
N_LISTED, N_UNLISTED, N_CALIBRATION = 3, 4, 40


@dataclass
class LiveEnv:
    rt: GalleryRuntime
    settings: Settings
    tmp: Path
    actors: dict[str, Actor] = field(default_factory=dict)
    agencies: dict[str, int] = field(default_factory=dict)
    listed: dict[str, str] = field(default_factory=dict)  # identity -> subject number (on the watch list)
    unlisted: list[str] = field(default_factory=list)  # identities in the video, not on the list
    photos: dict[str, list[Path]] = field(default_factory=dict)
    subjects: dict[str, int] = field(default_factory=dict)  # subject number -> id
    watchlist_id: int = 0
    video: Path | None = None
    truth: list[tuple[float, float, str]] = field(default_factory=list)


def _actors(rt: GalleryRuntime) -> dict[str, Actor]:
    out = {}
    with rt.session_factory() as session:
        for name in USERS:
            user = session.query(User).filter(User.username == name).one()
            out[name] = actor_for_user(session, user)
    return out


def impostor_scores(engine: Any, photos: list[Path]) -> np.ndarray:
    """Cosine scores of every pair of photos of different people (real impostor comparisons)."""
    vectors = []
    for path in photos:
        faces = engine.detect(load_image(path).pixels, embed=True, max_faces=1)
        if faces:
            vectors.append(faces[0].embedding)
    matrix = np.stack(vectors)
    scores = matrix @ matrix.T
    return np.array([scores[i, j] for i, j in itertools.combinations(range(len(vectors)), 2)])


def build_video(
    env: LiveEnv, engine: Any, path: Path, identities: list[str], *, width: int = 640, height: int = 360,
    fps: float = 10.0, dwell_s: float = 2.5, concurrent: int = 3, face_px: float = 90.0,
) -> scenes.Scene:  # fmt: skip
    patches = [scenes.patch_from_photo(engine, who, env.photos[who][-1]) for who in identities]
    appearances, duration = scenes.schedule(patches, width=width, height=height, dwell_s=dwell_s,
                                            concurrent=concurrent, face_px=face_px)  # fmt: skip
    return scenes.write_scene(path, appearances, duration, width=width, height=height, fps=fps)


def build_live_env(tmp: Path, engine: Any) -> Iterator[LiveEnv]:
    people = sample_people(engine, tmp / "faces", N_LISTED + N_UNLISTED)
    if people is None:
        pytest.skip("no real face photos: ../shared/faces is absent and the model wheel's sample photos too")
    settings = Settings(data_dir=tmp / "data")
    rt = GalleryRuntime(settings, face_engine=engine)
    env = LiveEnv(rt, settings, tmp)
    for code in ("AGA", "AGB"):
        env.agencies[code] = add_agency(rt.session_factory, code)
    certified = utcnow() + timedelta(days=365)
    for name, (code, roles) in USERS.items():
        add_user(rt.session_factory, env.agencies[code], name, roles,
                 certified_until=certified if Role.ANALYST in roles else None)  # fmt: skip
    env.actors = _actors(rt)
    admin, admin_b = env.actors["admin"], env.actors["admin-b"]
    create_gallery(rt, admin, "wanted", AUTHORITY, ["criminal-investigation", LIVE_PURPOSE])
    create_gallery(rt, admin_b, "b-private", AUTHORITY, ["criminal-investigation"])
    create_gallery(rt, admin_b, "b-shared", AUTHORITY, ["criminal-investigation", LIVE_PURPOSE])
    share_gallery(rt, admin_b, "b-shared", "AGA", [LIVE_PURPOSE], date.today() - timedelta(days=1))
    for code in ("AGA", "AGB"):
        list_authorities(rt, code)
    names = list(people)
    env.photos = people
    listed, env.unlisted = names[:N_LISTED], names[N_LISTED:]
    records = Actor("records", env.agencies["AGA"], frozenset({Role.RECORDS_OFFICER}), None, "AGA")
    records_b = Actor("records-b", env.agencies["AGB"], frozenset({Role.RECORDS_OFFICER}), None, "AGB")
    for i, who in enumerate(names):
        number = f"AGA-{i:03d}"
        result = enrol_record(rt, records, RecordInput(number, f"AGA-B{i:03d}", date(2021, 1, 2), AUTHORITY,
                                                       gallery="wanted"), [people[who][0]])  # fmt: skip
        env.subjects[number] = result.subject_id
        if who in listed:
            env.listed[who] = number
    other = list(people.values())
    for number, gallery in (("B-001", "b-private"), ("B-002", "b-shared")):
        result = enrol_record(rt, records_b, RecordInput(number, number + "-BK", date(2021, 1, 2), AUTHORITY,
                                                         gallery=gallery), [other[0][0]])  # fmt: skip
        env.subjects[number] = result.subject_id
    # The agency's calibration, from real impostor comparisons.
    from tests.live.faces import lfw_people

    pool = [p[0] for p in list(lfw_people(1).values())[-N_CALIBRATION:]] or [p[0] for p in people.values()]
    save_calibration(rt.session_factory, env.actors["sup1"], source="calibrate", model_version=rt.model_version,
                     impostor_scores=impostor_scores(engine, pool), dataset="test photos")  # fmt: skip
    wl = watchlists.create_watchlist(rt, env.actors["analyst"], "Hot spot warrants")
    env.watchlist_id = wl.id
    for number in env.listed.values():
        watchlists.add_entry(rt, env.actors["analyst"], wl.id, number, f"WARRANT-{number}",
                             utcnow() + timedelta(days=7))  # fmt: skip
    scene = build_video(env, engine, tmp / "street.mp4", [*listed, *env.unlisted])
    env.video, env.truth = scene.video, scene.truth
    yield env
    rt.close()


@pytest.fixture(scope="session")
def live_env(tmp_path_factory: pytest.TempPathFactory, engine: Any) -> Iterator[LiveEnv]:
    yield from build_live_env(tmp_path_factory.mktemp("live"), engine)
