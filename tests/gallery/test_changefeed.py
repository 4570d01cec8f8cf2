"""The search-index change feed: every process's index follows the database in commit order, whoever wrote it; a
destruction waits until every live process dropped the subject before the key goes; a missing key is an error."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import delete, select, text, update

from faceleads.cli.context import cli_actor
from faceleads.db import make_engine, utcnow
from faceleads.errors import IntegrityError
from faceleads.gallery import changefeed
from faceleads.gallery.enrolment import enrol_record
from faceleads.gallery.models import FaceTemplate, IndexChange, IndexFollower, Subject
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.governance import destruction
from faceleads.storage.keystore import KeyStore
from tests import dbs
from tests.conftest import lfw_identities
from tests.gallery.conftest import record
from tests.lawful import search_on_case

PEOPLE = lfw_identities()
SEARCH = {"case": "OCC-11", "offence": "ROB", "reason": "street robbery, CCTV still"}
NAMES = sorted(n for n, p in PEOPLE.items() if len(p) >= 3)[:3]


@pytest.fixture
def other(settings, engine) -> Iterator[GalleryRuntime]:  # type: ignore[no-untyped-def]
    """A second runtime on the same database: another server process, as far as the index is concerned."""
    runtime = GalleryRuntime(settings, face_engine=engine)
    yield runtime
    runtime.close()


def _names(rt: GalleryRuntime, probe_of: str) -> list[str]:
    actor = cli_actor(rt, "MET")
    return [c.subject_number for c in search_on_case(rt, actor, PEOPLE[probe_of][2], **SEARCH, top=5).candidates]


def test_other_process_follows_enrolments_deletions_and_an_id_reused(rt, other) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    enrol_record(rt, actor, record(NAMES[0], "B0"), PEOPLE[NAMES[0]][:2])
    assert _names(other, NAMES[0])[0] == NAMES[0]  # the other process builds its index
    built = other.feed_cursor
    # A template deleted by direct SQL, then a new enrolment: on SQLite the new template takes the freed id (the
    # highest), which a (count, max id) check would take for "nothing changed".
    with rt.session_factory.begin() as session:
        top = session.scalars(select(FaceTemplate.id).order_by(FaceTemplate.id.desc())).first()
        session.execute(delete(FaceTemplate).where(FaceTemplate.id == top))
    enrol_record(rt, actor, record(NAMES[1], "B1"), [PEOPLE[NAMES[1]][0]])
    with rt.session_factory() as session:
        newest = session.scalars(select(FaceTemplate.id).order_by(FaceTemplate.id.desc())).first()
    if dbs.ON_POSTGRES:
        assert newest == top + 1  # PostgreSQL never reuses an id
    else:
        assert newest == top  # SQLite reused it
    report = other.sync_index()
    assert report is not None and report.cursor > built
    assert _names(other, NAMES[1])[0] == NAMES[1]
    assert other.subjects_of(np.array([newest]))[0] != -1
    other.verify_index()
    rt.verify_index()


def test_feed_is_numbered_in_commit_order(settings) -> None:  # type: ignore[no-untyped-def]
    """An entry written by a transaction that commits late is numbered after the ones committed before it, so a
    reader that already moved past those still sees it (ids alone would hide it on PostgreSQL)."""
    rt = GalleryRuntime(settings)  # no face engine needed
    try:
        with rt.session_factory() as session:
            start = changefeed.latest_seq(session)
        slow = make_engine(rt.settings.effective_database_url)
        with slow.connect() as late:
            late.execute(text("INSERT INTO index_changes (kind, ref_id) VALUES ('template_insert', 1001)"))
            if not dbs.ON_POSTGRES:
                late.commit()  # SQLite has one writer at a time: the "late" transaction must end first
            with rt.session_factory.begin() as session:
                session.add(IndexChange(kind="template_insert", ref_id=1002))
            with rt.session_factory() as session:
                first = changefeed.read_changes(session, start)
            late.commit()
        slow.dispose()
        with rt.session_factory() as session:
            second = changefeed.read_changes(session, first[-1].seq)
        seen = [c.ref_id for c in first + second]
        assert sorted(seen) == [1001, 1002] and len(seen) == 2
        assert [c.seq for c in first + second] == list(range(start + 1, start + 3))  # dense, in order
        if dbs.ON_POSTGRES:
            assert seen == [1002, 1001]  # committed first, numbered first
    finally:
        rt.close()


def test_pruned_feed_makes_a_lagging_process_reconcile(rt, other) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    enrol_record(rt, actor, record(NAMES[0], "B0"), [PEOPLE[NAMES[0]][0]])
    other.sync_index()
    for i, name in enumerate(NAMES[1:], start=1):
        enrol_record(rt, actor, record(name, f"B{i}"), [PEOPLE[name][0]])
    with rt.session_factory() as session:
        changefeed.latest_seq(session)
        session.execute(update(IndexChange).values(at=utcnow().replace(year=2000)))
        session.commit()
        assert changefeed.prune(session) >= 2
    report = other.sync_index()  # its next entry is gone: it compares with the tables instead
    assert report is not None and report.total == 3
    other.verify_index()


def test_follower_thread_applies_changes_and_acknowledges(rt, other) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    follower = changefeed.FeedFollower(other, "test").start()
    try:
        enrol_record(rt, actor, record(NAMES[0], "B0"), [PEOPLE[NAMES[0]][0]])
        with rt.session_factory() as session:
            target = changefeed.latest_seq(session)
        changefeed.wait_for_followers(rt, target, timeout=20)  # applied without any search on `other`
        assert len(other.template_index()) == 1
        with rt.session_factory() as session:
            rows = changefeed.follower_rows(session)
        assert [r["role"] for r in rows] == ["test"] and rows[0]["applied_seq"] >= target
    finally:
        follower.stop()
    with rt.session_factory() as session:
        assert changefeed.follower_rows(session) == []


def _approve(rt: GalleryRuntime, subject_id: int) -> int:
    actor = cli_actor(rt, "MET")
    req = destruction.request_destruction(
        rt, actor, subject_id, requester="the subject, via counsel", grounds="acquitted at trial on 2025-01-10"
    )
    for item in destruction.CHECKLIST_ITEMS:
        destruction.record_checklist(rt, actor, req.id, item, True, "checked")
    destruction.decide(rt, actor, req.id, approve=True, reason="acquittal: no lawful basis to keep the photos")
    return req.id


def test_destruction_waits_until_every_live_process_dropped_the_subject(rt, other) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    sid = enrol_record(rt, actor, record(NAMES[0], "B0"), PEOPLE[NAMES[0]][:2]).subject_id
    enrol_record(rt, actor, record(NAMES[1], "B1"), [PEOPLE[NAMES[1]][0]])
    follower = changefeed.FeedFollower(other, "server").start()
    assert other.subject_template_ids(sid)
    seen_at_key_destruction: list[set[int]] = []

    def hook(point: str) -> None:
        if point == "index_removed":  # the last step before the key is destroyed
            seen_at_key_destruction.append(other.subject_template_ids(sid))

    destruction.step_hooks.append(hook)
    try:
        destruction.execute(rt, actor, _approve(rt, sid))
    finally:
        destruction.step_hooks.remove(hook)
        follower.stop()
    assert seen_at_key_destruction == [set()], "the other process still held the subject when its key was destroyed"
    assert rt.keystore.is_destroyed(f"{_key_of(rt, sid)}")
    assert NAMES[0] not in _names(other, NAMES[0])


def test_destruction_stops_before_the_key_when_a_live_process_does_not_follow(rt) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    sid = enrol_record(rt, actor, record(NAMES[0], "B0"), [PEOPLE[NAMES[0]][0]]).subject_id
    request_id = _approve(rt, sid)
    # A process that beats but is stuck behind (e.g. wedged index thread): the destruction must not go on.
    with rt.session_factory.begin() as session:
        session.add(IndexFollower(id="stuck", host="app-2", pid=4242, role="server", applied_seq=0))
    rt.settings.index_follower_wait_seconds = 1.0
    with pytest.raises(changefeed.FollowersLagging, match="app-2 pid 4242"):
        destruction.execute(rt, actor, request_id)
    key_id = _key_of(rt, sid)
    assert not rt.keystore.is_destroyed(key_id), "the key must survive until every live process dropped the subject"
    with rt.session_factory() as session:
        assert session.get(Subject, sid).status == "destroying"  # type: ignore[union-attr]
    # The stuck process dies (no more heartbeats): nothing waits for a dead process; a re-run completes.
    with rt.session_factory.begin() as session:
        session.execute(update(IndexFollower).values(heartbeat_at=utcnow().replace(year=2000)))
    cert = destruction.execute(rt, actor, request_id)
    assert cert["data_key_confirmed_destroyed"] is True


def _key_of(rt: GalleryRuntime, subject_id: int) -> str:
    with rt.session_factory() as session:
        return str(session.execute(select(Subject.key_id).where(Subject.id == subject_id)).scalar_one())


def test_missing_key_is_an_error_never_a_destruction(rt, settings, engine) -> None:  # type: ignore[no-untyped-def]
    actor = cli_actor(rt, "MET")
    sids = [enrol_record(rt, actor, record(n, f"B{i}"), [PEOPLE[n][0]]).subject_id for i, n in enumerate(NAMES)]
    assert _names(rt, NAMES[0])[0] == NAMES[0]  # this process has the subject in its index
    lost = _key_of(rt, sids[0])
    # The key vanishes from this host's keystore (a keystore copied from an older backup, a wrong keystore URL):
    # not a destruction, so no tombstone and nothing in the ledger.
    keystore = rt.keystore
    assert isinstance(keystore, KeyStore)
    with keystore._lock:
        keystore._conn.execute("DELETE FROM data_keys WHERE key_id = ?", (lost,))
    assert not keystore.is_destroyed(lost) and not keystore.exists(lost)
    # The running process: its integrity check and its searches report it instead of dropping the subject.
    with pytest.raises(IntegrityError, match="missing from the keystore"):
        rt.verify_index()
    with pytest.raises(IntegrityError, match="missing from the keystore"):
        _names(rt, NAMES[0])
    # A process starting now cannot decrypt the template: the same, never a silent gap.
    fresh = GalleryRuntime(settings, face_engine=engine)
    try:
        with pytest.raises(IntegrityError, match="missing from the keystore"):
            _names(fresh, NAMES[1])
        with pytest.raises(IntegrityError, match="missing from the keystore"):
            fresh.verify_index()
    finally:
        fresh.close()
    # A destroyed key, by contrast, is a legitimate gap.
    keystore.destroy(lost)
    fresh = GalleryRuntime(settings, face_engine=engine)
    try:
        assert NAMES[0] not in _names(fresh, NAMES[0])
        fresh.verify_index()
    finally:
        fresh.close()


def test_concurrent_sequencers_number_every_entry_once(settings) -> None:  # type: ignore[no-untyped-def]
    rt = GalleryRuntime(settings)
    try:
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for i in range(25):
                    with rt.session_factory.begin() as session:
                        session.add(IndexChange(kind="template_insert", ref_id=n * 1000 + i))
                    with rt.session_factory() as session:
                        changefeed.sequence_pending(session)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        with rt.session_factory() as session:
            changes = changefeed.read_changes(session, 0)
        assert [c.seq for c in changes] == list(range(1, 101))
        assert len({c.ref_id for c in changes}) == 100
    finally:
        rt.close()
