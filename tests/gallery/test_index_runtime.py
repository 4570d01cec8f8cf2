"""The gallery runtime on the Milvus backend (embedded milvus-lite), with real enrolments, searches and a real
destruction: two runtimes ("app servers") share one database and one collection; a restarted runtime reconciles
the collection with the database instead of uploading the gallery again; a destruction run by a process that
never searched still deletes the vectors from the shared engine; the change feed drives the shared engine (a
follower books what is already uploaded, uploads what is missing and deletes what is gone, whoever indexed it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from faceleads.cli.context import cli_actor
from faceleads.config import Settings
from faceleads.errors import ConfigurationError
from faceleads.gallery.enrolment import enrol_record
from faceleads.gallery.index_backend import collection_name
from faceleads.gallery.index_milvus import MilvusIndex
from faceleads.gallery.models import FaceTemplate
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.governance import destruction
from tests.conftest import lfw_identities
from tests.gallery.conftest import record
from tests.lawful import list_authorities, search_on_case

PEOPLE = lfw_identities()
NAMES = sorted(n for n, p in PEOPLE.items() if len(p) >= 3)[:3]
SEARCH = {"case": "OCC-2025-0077", "offence": "ROB", "reason": "robbery, CCTV still from the platform"}


@pytest.fixture
def milvus_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"index_backend": "milvus", "milvus_uri": str(tmp_path / "milvus.db")})


@pytest.fixture
def servers(milvus_settings: Settings, engine) -> Iterator[list[GalleryRuntime]]:  # type: ignore[no-untyped-def]
    """Two runtimes on the same database and the same Milvus collection, as two app servers would be."""
    runtimes = [GalleryRuntime(milvus_settings, face_engine=engine) for _ in range(2)]
    list_authorities(runtimes[0], "MET")
    yield runtimes
    for rt in runtimes:
        rt.close()


def _engine_ids(rt: GalleryRuntime) -> set[int]:
    """What the Milvus collection itself holds (read through a separate client)."""
    s = rt.settings
    name = collection_name(s.milvus_collection_prefix, rt.model_version, 512)
    index = MilvusIndex(str(s.milvus_uri), dim=512, collection=name)
    try:
        return {int(i) for i in index.ids()}
    finally:
        index.close()


def _top(rt: GalleryRuntime, name: str) -> list[int]:
    actor = cli_actor(rt, "MET")
    result = search_on_case(rt, actor, PEOPLE[name][2], **SEARCH, top=5)
    return [c.subject_id for c in result.candidates]


def test_shared_milvus_index_across_servers_restart_and_destruction(
    servers: list[GalleryRuntime], milvus_settings: Settings, engine  # type: ignore[no-untyped-def]
) -> None:
    a, b = servers
    actor = cli_actor(a, "MET")
    subjects = {
        name: enrol_record(a, actor, record(name, f"MET-M{i}"), PEOPLE[name][:2]).subject_id
        for i, name in enumerate(NAMES)
    }
    # Enrolments are written to the shared engine at once, before any server built or searched anything.
    held = _engine_ids(a)
    assert len(held) == 6
    report = a.start()  # adopts the collection and checks it against the database
    assert (report.added, report.removed, report.total) == (0, 0, 6) and a.template_index().persistent

    # Server B never enrolled anything: it adopts the shared collection (nothing decrypted or uploaded again).
    report_b = b.start()
    assert (report_b.added, report_b.removed, report_b.total) == (0, 0, 6)
    for name in NAMES:
        assert _top(b, name)[0] == subjects[name]
        assert _top(a, name)[0] == subjects[name]

    # A restarted server reconciles instead of rebuilding.
    a.close()
    restarted = GalleryRuntime(milvus_settings, face_engine=engine)
    try:
        again = restarted.start()
        assert (again.added, again.removed, again.total) == (0, 0, 6)
        assert _top(restarted, NAMES[1])[0] == subjects[NAMES[1]]
    finally:
        restarted.close()

    # A destruction run by a process whose index was never built (the CLI) deletes the vectors from the engine.
    cli = GalleryRuntime(milvus_settings, face_engine=engine)
    try:
        officer = cli_actor(cli, "MET")
        gone = subjects[NAMES[0]]
        req = destruction.request_destruction(cli, officer, gone, requester="the subject", grounds="acquitted at trial")
        for item in destruction.CHECKLIST_ITEMS:
            destruction.record_checklist(cli, officer, req.id, item, True, "checked against the court record")
        destruction.decide(cli, officer, req.id, approve=True, reason="acquittal: no lawful basis to keep")
        cert = destruction.execute(cli, officer, req.id)
        assert cert["destroyed"]["templates"] == 2
    finally:
        cli.close()
    remaining = _engine_ids(b)
    assert len(remaining) == 4 and remaining < held
    # Server B, which still had the subject booked, drops it and stays consistent with the database.
    for name in NAMES:
        assert gone not in _top(b, name)
    b.sync_index(force=True)
    b.verify_index()
    assert b.subject_template_ids(gone) == set()
    assert len(b.template_index()) == 4


def _drop_from_engine(rt: GalleryRuntime, template_ids: list[int]) -> None:
    """Delete vectors behind every runtime's back (as if the process that enrolled them died before uploading)."""
    s = rt.settings
    index = MilvusIndex(str(s.milvus_uri), dim=512, collection=collection_name(s.milvus_collection_prefix,
                                                                             rt.model_version, 512))  # fmt: skip
    try:
        index.remove(template_ids)
    finally:
        index.close()


def _templates_of(rt: GalleryRuntime, subject_id: int) -> list[int]:
    with rt.session_factory() as session:
        return sorted(session.scalars(select(FaceTemplate.id).where(FaceTemplate.subject_id == subject_id)))


def test_the_change_feed_drives_the_shared_engine(servers: list[GalleryRuntime]) -> None:
    a, b = servers
    actor = cli_actor(a, "MET")
    first = enrol_record(a, actor, record(NAMES[0], "MET-F0"), PEOPLE[NAMES[0]][:2]).subject_id
    assert b.start().added == 0  # adopted: uploaded by the enrolling process

    # Another process enrols: B's feed finds the templates already in the engine and books them, decrypting nothing.
    second = enrol_record(a, actor, record(NAMES[1], "MET-F1"), PEOPLE[NAMES[1]][:2]).subject_id
    report = b.sync_index()
    assert report is not None and (report.added, report.removed, report.total) == (0, 0, 4)
    assert b.subject_template_ids(second) == set(_templates_of(b, second))

    # The enrolling process's upload was lost: the feed entry makes B decrypt and upload the templates itself.
    third = enrol_record(a, actor, record(NAMES[2], "MET-F2"), PEOPLE[NAMES[2]][:2]).subject_id
    lost = _templates_of(a, third)
    _drop_from_engine(a, lost)
    report = b.sync_index()
    assert report is not None and (report.added, report.total) == (2, 6)
    assert set(lost) <= _engine_ids(b) and _top(b, NAMES[2])[0] == third

    # A template enrolled and then deleted by direct SQL before B followed: B never booked it, yet removes it from
    # the engine every server searches (whoever uploaded it).
    extra = enrol_record(a, actor, record("STRAY-1", "MET-F3"), [PEOPLE[NAMES[0]][2]]).subject_id
    stray = _templates_of(a, extra)
    assert extra != first and len(stray) == 1
    assert set(stray) <= _engine_ids(a)
    with a.session_factory.begin() as session:
        session.execute(delete(FaceTemplate).where(FaceTemplate.id.in_(stray)))
    b.sync_index()
    assert not set(stray) & _engine_ids(b)
    assert b.subject_template_ids(extra) == set()
    b.verify_index()
    assert _top(b, NAMES[0])[0] == first


def test_production_refuses_an_unprotected_milvus(settings: Settings) -> None:
    base = {"mode": "production", "master_key": "x" * 44, "database_url": "sqlite:///x.db", "index_backend": "milvus"}
    for update, message in (
        ({"milvus_uri": "http://milvus:19530", "milvus_token": "svc:secret"}, "https://"),
        ({"milvus_uri": "/data/milvus.db", "milvus_token": "svc:secret"}, "https://"),
        ({"milvus_uri": "https://milvus.internal:19530"}, "FACELEADS_MILVUS_TOKEN"),
    ):
        with pytest.raises(ConfigurationError, match=message):
            settings.model_copy(update={**base, **update}).check_safe()
    settings.model_copy(
        update={**base, "milvus_uri": "https://milvus.internal:19530", "milvus_token": "svc:secret"}
    ).check_safe()
