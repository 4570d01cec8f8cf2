"""Destruction requests on real enrolments: checklist, decision, policy refusals, crash-safe execution (real SIGKILL
of the CLI at several points), search exclusion during and after, certificate without biometric content."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from faceleads.casework import searching
from faceleads.cli import context
from faceleads.cli.context import cli_actor
from faceleads.config import Settings
from faceleads.core import audit
from faceleads.core.actor import Actor, Role
from faceleads.errors import KeyDestroyedError, NotFound, PermissionDenied, ValidationError
from faceleads.gallery.enrolment import enrol_record
from faceleads.gallery.models import Encounter, FaceTemplate, Image, SearchRecord, Subject
from faceleads.gallery.runtime import GalleryRuntime, image_context
from faceleads.governance import destruction
from faceleads.governance.models import DestructionRequest, RequestStatus, Step
from tests.conftest import lfw_identities
from tests.dbs import database_env
from tests.gallery.conftest import record
from tests.lawful import list_authorities, search_on_case

PEOPLE = lfw_identities()
# Three people with at least three photos each: two photos enrolled, the third is the probe.
NAMES = sorted(n for n, p in PEOPLE.items() if len(p) >= 3)[:3]
SEARCH = {"case": "OCC-2025-0042", "offence": "BURG", "reason": "residential burglary, doorbell camera still"}


@pytest.fixture
def rt(settings: Settings, engine) -> Iterator[GalleryRuntime]:  # type: ignore[no-untyped-def]
    runtime = GalleryRuntime(settings, face_engine=engine)
    for code in ("MET", "NYPD"):
        list_authorities(runtime, code)
    yield runtime
    runtime.close()


def _enrol(rt: GalleryRuntime, actor: Actor) -> dict[str, int]:
    """Enrol NAMES (two photos each, one booking); returns name -> subject id."""
    ids = {}
    for i, name in enumerate(NAMES):
        ids[name] = enrol_record(rt, actor, record(name, f"{actor.agency_code}-B{i}"), PEOPLE[name][:2]).subject_id
    return ids


def _candidates(rt: GalleryRuntime, actor: Actor, name: str) -> list[int]:
    """Subject ids a real search with the person's unenrolled third photo returns."""
    return [
        c.subject_id
        for c in search_on_case(
            rt, actor, PEOPLE[name][2], case=SEARCH["case"], offence=SEARCH["offence"], reason=SEARCH["reason"], top=5
        ).candidates
    ]


def _approve(rt: GalleryRuntime, actor: Actor, subject_id: int) -> int:
    req = destruction.request_destruction(
        rt, actor, subject_id, requester="the subject, via counsel", grounds="acquitted at trial on 2025-01-10"
    )
    for item in destruction.CHECKLIST_ITEMS:
        destruction.record_checklist(rt, actor, req.id, item, True, "checked against the court record")
    destruction.decide(rt, actor, req.id, approve=True, reason="acquittal: no lawful basis to keep the photos")
    return req.id


def _dump(obj: object) -> str:
    return json.dumps(obj, default=str)


def test_full_destruction_and_certificate(rt: GalleryRuntime) -> None:
    actor = cli_actor(rt, "MET")
    ids = _enrol(rt, actor)
    a, b = NAMES[0], NAMES[1]
    sid = ids[a]
    earlier = search_on_case(
        rt, actor, PEOPLE[a][2], case=SEARCH["case"], offence=SEARCH["offence"], reason=SEARCH["reason"], top=5
    )
    assert earlier.candidates[0].subject_id == sid  # the index is built and holds A
    with rt.session_factory() as session:
        subject = session.get(Subject, sid)
        assert subject is not None
        key_id, number = subject.key_id, subject.subject_number
        images = session.scalars(select(Image).where(Image.subject_id == sid)).all()
        addresses = [i.store_address for i in images]
        shas = [i.sha256 for i in images]
    assert len(addresses) == 2 and all(rt.store.exists(str(x)) for x in addresses)

    req = destruction.request_destruction(rt, actor, sid, requester="subject", grounds="no further action taken")
    assert req.status == "requested" and not destruction.checklist_complete(req.checklist)
    with pytest.raises(ValidationError, match="already has an open destruction request"):
        destruction.request_destruction(rt, actor, sid, requester="subject", grounds="no further action taken")
    with pytest.raises(ValidationError, match="checklist item"):
        destruction.decide(rt, actor, req.id, approve=True, reason="looks fine to me, approve")
    with pytest.raises(ValidationError, match="unknown checklist item"):
        destruction.record_checklist(rt, actor, req.id, "vibes", True)
    with pytest.raises(ValidationError, match="not satisfied"):
        destruction.record_checklist(rt, actor, req.id, "retention_rules_allow", False)
    with pytest.raises(ValidationError, match="only an approved request"):
        destruction.execute(rt, actor, req.id)
    for item in destruction.CHECKLIST_ITEMS:
        destruction.record_checklist(rt, actor, req.id, item, True, "verified")
    approved = destruction.decide(rt, actor, req.id, approve=True, reason="no charge brought within the period")
    assert approved.status == "approved" and approved.decided_by == actor.username

    cert = destruction.execute(rt, actor, req.id)

    # The certificate: what, when, by whom, on whose request and decision — and nothing biometric.
    assert cert["request_id"] == req.id and cert["subject_id"] == sid and cert["agency"] == "MET"
    assert cert["data_key_destroyed"] == key_id and cert["data_key_confirmed_destroyed"] is True
    assert cert["destroyed"]["images"] == 2 and cert["destroyed"]["templates"] == 2
    assert cert["destroyed"]["blobs"] == 2 and cert["destroyed"]["templates_deleted"] == 2
    assert cert["decision"] == "approved" and cert["decided_by"] == actor.username and cert["completed_at"]
    assert all(cert["checklist"].values())
    text = _dump(cert)
    for secret in [*shas, *map(str, addresses), number]:
        assert secret not in text
    assert len(text) < 4000  # no image or template could hide in it
    view = destruction.get_request(rt, actor, req.id)
    assert view.status == "completed" and view.step == Step.COMPLETED and view.certificate_sha256
    assert view.subject_status == "destroyed"

    # Key shredded, blobs gone, templates gone, index entries gone, subject a tombstone.
    assert rt.keystore.is_destroyed(key_id)
    with pytest.raises(KeyDestroyedError):
        rt.keystore.get(key_id)
    assert not any(rt.store.exists(str(x)) for x in addresses)
    assert rt.subject_template_ids(sid) == set()
    rt.verify_index()
    with rt.session_factory() as session:
        assert session.scalar(select(func.count()).where(FaceTemplate.subject_id == sid)) == 0
        tomb = session.get(Subject, sid)
        assert tomb is not None and tomb.status == "destroyed" and tomb.destroyed_at is not None
        assert tomb.subject_number == destruction.subject_tombstone_number(actor.agency_id, number)
        assert tomb.sex is None and tomb.birth_year is None
        # Image rows cited by the earlier search stay as scrubbed tombstones; nothing else of A remains.
        left = session.scalars(select(Image).where(Image.subject_id == sid)).all()
        cited = {c.image_id for c in earlier.candidates if c.subject_id == sid}
        assert {i.id for i in left} == cited
        assert all(i.store_address is None and i.sha256.startswith("destroyed:") for i in left)
        encounters = session.scalars(select(Encounter).where(Encounter.subject_id == sid)).all()
        assert all(e.booking_number.startswith("destroyed:") and e.charge == "" for e in encounters)

    # Search never returns A again; B still works.
    assert sid not in _candidates(rt, actor, a)
    assert _candidates(rt, actor, b)[0] == ids[b]
    # A fresh process (a fresh runtime building its index from the database) never indexes A.
    fresh = GalleryRuntime(rt.settings, face_engine=rt.face_engine)
    try:
        assert sid not in _candidates(fresh, actor, a)
        fresh.verify_index()
    finally:
        fresh.close()

    # The earlier search keeps its audit trail and candidate list; it shows A as destroyed, with no image.
    shown = searching.show_search(rt, actor, earlier.search_id)  # still viewable through its case search
    assert sid in {c["subject_id"] for c in shown.result["candidates"]}
    with rt.session_factory() as session:
        stored = session.get(SearchRecord, earlier.search_id)
        assert stored is not None
        row = next(c for c in stored.candidates if c.subject_id == sid)
        assert row.subject.status == "destroyed"
        image = session.get(Image, row.image_id)
        assert image is not None and image.store_address is None
        entries = session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.seq)).all()
        assert audit.verify_chain(session).ok
    assert any(e.action == "search" and e.object_ref == f"search:{earlier.search_id}" for e in entries)
    stages = [e.details.get("stage") for e in entries if e.object_ref == f"destruction_request:{req.id}"]
    assert stages[:1] == ["requested"] and stages[-5:] == [
        "started", "key_destroyed", "blobs_deleted", "records_deleted", "completed",
    ]  # fmt: skip
    log_text = _dump([e.as_dict() for e in entries])
    for secret in [*shas, *map(str, addresses)]:
        assert secret not in log_text

    # Idempotent: a re-run changes nothing and returns the same certificate.
    assert destruction.execute(rt, actor, req.id) == cert
    assert destruction.certificate(rt, actor, req.id) == cert
    with rt.session_factory() as session:
        assert session.get(DestructionRequest, req.id).runs == 1  # type: ignore[union-attr]
    # The destroyed subject cannot be requested again.
    with pytest.raises(ValidationError, match="only active subjects"):
        destruction.request_destruction(rt, actor, sid, requester="x", grounds="a second request for it")
    # A tampered certificate is detected.
    with rt.session_factory.begin() as session:
        stored_req = session.get(DestructionRequest, req.id)
        assert stored_req is not None
        stored_req.certificate_json = stored_req.certificate_json.replace('"images":2', '"images":1')  # type: ignore[union-attr]
    from faceleads.errors import IntegrityError

    with pytest.raises(IntegrityError, match="does not match"):
        destruction.certificate(rt, actor, req.id)


def test_deny_path_and_policy_refusals(rt: GalleryRuntime) -> None:
    officer = cli_actor(rt, "MET", roles=[Role.RECORDS_OFFICER])
    ids = _enrol(rt, officer)
    sid = ids[NAMES[0]]
    other = cli_actor(rt, "NYPD", roles=[Role.RECORDS_OFFICER, Role.SUPERVISOR])
    analyst = cli_actor(rt, "MET", roles=[Role.ANALYST])
    auditor = cli_actor(rt, "MET", roles=[Role.AUDITOR])
    supervisor = cli_actor(rt, "MET", roles=[Role.SUPERVISOR])
    grounds = {"requester": "subject", "grounds": "case discontinued by prosecutor"}

    with pytest.raises(PermissionDenied, match="records_officer"):
        destruction.request_destruction(rt, analyst, sid, **grounds)
    # Another agency's subject is answered exactly like a missing one (the refusal is still audited).
    with pytest.raises(NotFound, match=f"^no subject {sid}$"):
        destruction.request_destruction(rt, other, sid, **grounds)
    with pytest.raises(PermissionDenied):
        destruction.request_destruction(rt, supervisor, sid, **grounds)  # supervisors decide, they do not request
    with pytest.raises(ValidationError, match="at least 10"):
        destruction.request_destruction(rt, officer, sid, requester="subject", grounds="because")
    with pytest.raises(NotFound):
        destruction.request_destruction(rt, officer, 999_999, **grounds)
    req = destruction.request_destruction(rt, officer, sid, **grounds)
    for actor, refusal in ((other, NotFound), (analyst, PermissionDenied), (auditor, PermissionDenied)):
        with pytest.raises(refusal):
            destruction.decide(rt, actor, req.id, approve=False, reason="not my agency but deny anyway")
        with pytest.raises(refusal):
            destruction.record_checklist(rt, actor, req.id, "retention_rules_allow", True)
    with pytest.raises(NotFound, match=f"no destruction request {req.id}"):
        destruction.get_request(rt, other, req.id)
    assert destruction.get_request(rt, auditor, req.id).status == "requested"  # auditors may look
    assert [v.id for v in destruction.list_requests(rt, auditor)] == [req.id]
    assert destruction.list_requests(rt, other) == []  # scoped to the caller's agency

    # Separation of duties between real users: whoever recorded a request does not decide it.
    alice = Actor("alice", officer.agency_id, frozenset({Role.RECORDS_OFFICER}), user_id=101, agency_code="MET")
    bob = Actor("bob", officer.agency_id, frozenset({Role.SUPERVISOR}), user_id=102, agency_code="MET")
    req2 = destruction.request_destruction(rt, alice, ids[NAMES[1]], **grounds)
    for item in destruction.CHECKLIST_ITEMS:
        destruction.record_checklist(rt, alice, req2.id, item, True, "ok")
    with pytest.raises(PermissionDenied, match="another records officer or a supervisor"):
        destruction.decide(rt, alice, req2.id, approve=True, reason="approving my own request")
    decided = destruction.decide(rt, bob, req2.id, approve=True, reason="grounds verified by supervisor")
    assert decided.status == "approved"
    with pytest.raises(PermissionDenied, match="destruction execute"):
        destruction.execute(rt, bob, req2.id)  # supervisors decide; records officers execute
    with pytest.raises(NotFound):
        destruction.execute(rt, other, req2.id)

    # Deny with a written reason: final, never executed, the subject stays searchable.
    with pytest.raises(ValidationError, match="at least 10"):
        destruction.decide(rt, supervisor, req.id, approve=False, reason="no")
    denied = destruction.decide(rt, supervisor, req.id, approve=False, reason="a retrial has been ordered")
    assert denied.status == RequestStatus.DENIED and denied.decision_reason == "a retrial has been ordered"
    with pytest.raises(ValidationError, match="already denied"):
        destruction.decide(rt, supervisor, req.id, approve=True, reason="changed my mind after all")
    with pytest.raises(ValidationError, match="only an approved request"):
        destruction.execute(rt, officer, req.id)
    with pytest.raises(ValidationError, match="only a completed destruction"):
        destruction.certificate(rt, officer, req.id)
    searcher = cli_actor(rt, "MET", roles=[Role.ANALYST])
    assert sid in _candidates(rt, searcher, NAMES[0])

    # Every refusal above went into the audit log as denied; the chain verifies.
    with rt.session_factory() as session:
        denials = session.scalars(
            select(audit.AuditEntry).where(audit.AuditEntry.outcome == audit.Outcome.DENIED)
        ).all()
        assert audit.verify_chain(session).ok
    assert {e.action for e in denials} >= {"destruction_request", "destruction_decide", "destruction_execute"}
    assert any(e.username == other.username for e in denials)


_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from faceleads.governance import destruction

    point = sys.argv[1]

    def die(name):
        if name == point:
            os.kill(os.getpid(), signal.SIGKILL)

    destruction.step_hooks.append(die)
    from faceleads.cli.main import app

    app(["destruction", "execute", sys.argv[2], "--agency", "MET", "--json"])
    """
)


def _run_cli(settings: Settings, point: str, request_id: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEADS_")}
    env.update(database_env(settings.data_dir))
    return subprocess.run(
        [sys.executable, "-c", _KILLER, point, str(request_id)], capture_output=True, text=True, env=env, timeout=120
    )


def test_killed_mid_way_resumes_and_search_never_returns_subject(rt: GalleryRuntime) -> None:
    actor = cli_actor(rt, "MET")
    ids = _enrol(rt, actor)
    a, b = NAMES[0], NAMES[1]
    sid = ids[a]
    assert _candidates(rt, actor, a)[0] == sid  # this long-running "server" has A in its in-memory index
    with rt.session_factory() as session:
        subject = session.get(Subject, sid)
        assert subject is not None
        key_id = subject.key_id
        images = session.scalars(select(Image).where(Image.subject_id == sid)).all()
        blobs = [(str(i.store_address), image_context(i.sha256)) for i in images]
    req_id = _approve(rt, actor, sid)

    # Killed (SIGKILL) after each point in turn; the next run resumes. Between runs the state is frozen exactly
    # where the kill left it, and a search by another process must not return A.
    expected_step = {
        "marked": Step.MARKED,
        "blob": Step.KEY_DESTROYED,  # mid step 3: one blob deleted, the other not
        "blobs_deleted": Step.BLOBS_DELETED,
        "records_deleted": Step.RECORDS_DELETED,
    }
    for point, step in expected_step.items():
        proc = _run_cli(rt.settings, point, req_id)
        assert proc.returncode == -9, proc.stderr
        with rt.session_factory() as session:
            req = session.get(DestructionRequest, req_id)
            assert req is not None and req.step == step and req.status == "executing"
            status = session.get(Subject, sid).status  # type: ignore[union-attr]
        assert status == "destroying"
        assert sid not in _candidates(rt, actor, a), f"subject returned by search after kill at {point}"
        if step >= Step.KEY_DESTROYED:
            with pytest.raises(KeyDestroyedError):
                rt.store.get(key_id, *blobs[0])
        if point == "blob":
            assert [rt.store.exists(addr) for addr, _ in blobs].count(True) == 1
    proc = _run_cli(rt.settings, "none", req_id)
    assert proc.returncode == 0, proc.stderr
    cert = json.loads(proc.stdout)
    assert cert["runs"] == 5 and cert["destroyed"]["blobs"] == 2 and cert["destroyed"]["images"] == 2
    assert cert["data_key_destroyed"] == key_id

    # After: gone for good; a re-run is a no-op returning the same certificate; B unaffected.
    assert sid not in _candidates(rt, actor, a)
    assert _candidates(rt, actor, b)[0] == ids[b]
    assert not any(rt.store.exists(addr) for addr, _ in blobs)
    again = _run_cli(rt.settings, "none", req_id)
    assert again.returncode == 0 and json.loads(again.stdout) == cert
    with rt.session_factory() as session:
        assert session.get(Subject, sid).status == "destroyed"  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).where(FaceTemplate.subject_id == sid)) == 0
        assert audit.verify_chain(session).ok
    # The subject number can be enrolled afresh as a new subject (a later, lawful booking): a new id and key.
    new = enrol_record(rt, actor, record(a, "MET-NEW-1"), [PEOPLE[a][2]])
    assert new.subject_id != sid


def test_cli_request_checklist_decide_execute(rt: GalleryRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "_runtime", rt)
    actor = cli_actor(rt, "MET")
    enrol_record(rt, actor, record(NAMES[0], "MET-C1"), PEOPLE[NAMES[0]][:1])
    from faceleads.cli.main import app

    runner = CliRunner()

    def run(*args: str) -> str:
        out = runner.invoke(app, [*args, "--agency", "MET"])
        assert out.exit_code == 0, out.output
        return out.stdout

    made = json.loads(run("destruction", "request", "--subject", NAMES[0], "--requester", "court",
                          "--grounds", "court order 2025/17 to destroy", "--json"))  # fmt: skip
    rid = str(made["id"])
    refused = runner.invoke(app, ["destruction", "decide", rid, "--approve", "--reason", "approve it now please",
                                  "--agency", "MET"])  # fmt: skip
    assert refused.exit_code == 2 and "not satisfied" in refused.output
    for item in destruction.CHECKLIST_ITEMS:
        run("destruction", "checklist", rid, item, "--note", "verified")
    run("destruction", "decide", rid, "--approve", "--reason", "court order verified with the court")
    cert = json.loads(run("destruction", "execute", rid, "--json"))
    assert cert["request_id"] == int(rid)
    listed = json.loads(run("destruction", "list", "--json"))
    assert listed[0]["status"] == "completed" and listed[0]["checklist_complete"]
    assert json.loads(run("destruction", "certificate", rid)) == cert
    with rt.session_factory() as session:
        assert session.get(Subject, made["subject_id"]).status == "destroyed"  # type: ignore[union-attr]
