"""Separation of duties: every rule of the approval of a change that gives access to biometric content, and the TOTP
requirement for biometric roles. Real SQLite database, real argon2 hashes, real TOTP codes; every step and refusal
is checked in the audit log."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from faceleads.core.actor import Actor, Role
from faceleads.core.audit import AuditEntry, verify_chain
from faceleads.core.uow import transaction
from faceleads.errors import (
    AuthenticationError,
    NotFound,
    PermissionDenied,
    SecondFactorEnrolmentRequired,
    ValidationError,
)
from faceleads.security import approvals, auth, totp, users
from faceleads.security.models import AccessApproval, RoleGrant, User
from tests.security.identity_helpers import (
    MASTER_KEY,
    PASSWORD,
    T0,
    Clock,
    add_agency,
    add_user,
    make_factory,
    make_settings,
)

World = tuple[sessionmaker[Session], dict[str, Actor]]


def _actors(factory: sessionmaker[Session]) -> dict[str, Actor]:
    with factory() as session:
        return {u.username: auth.actor_for_user(session, u, T0) for u in session.scalars(select(User))}


@pytest.fixture()
def world(tmp_path: Path) -> World:
    """METRO: two administrators, two supervisors, a training officer, an analyst; COUNTY: a supervisor."""
    factory = make_factory(tmp_path)
    metro, county = add_agency(factory, "METRO"), add_agency(factory, "COUNTY")
    for name, roles in (("admin", {Role.ADMINISTRATOR}), ("admin2", {Role.ADMINISTRATOR}),
                        ("sup", {Role.SUPERVISOR}), ("sup2", {Role.SUPERVISOR}),
                        ("trainer", {Role.TRAINING_OFFICER})):  # fmt: skip
        add_user(factory, metro, name, roles)
    add_user(factory, metro, "analyst", {Role.ANALYST}, certified_until=T0 + timedelta(days=300))
    add_user(factory, county, "county-sup", {Role.SUPERVISOR})
    return factory, _actors(factory)


def _roles(factory: sessionmaker[Session], username: str) -> set[str]:
    with factory() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        return {g.role for g in session.scalars(select(RoleGrant).where(RoleGrant.user_id == user.id))}


def _denials(factory: sessionmaker[Session]) -> list[tuple[str, str]]:
    with factory() as session:
        return [(e.action, str(e.details.get("reason", ""))) for e in
                session.scalars(select(AuditEntry).where(AuditEntry.outcome == "denied").order_by(AuditEntry.seq))]


def _new_user(factory: sessionmaker[Session], creator: Actor, name: str, roles: list[str]) -> users.Change:
    return users.create_user(factory, creator, "METRO", name, PASSWORD, roles=roles)


def test_the_second_person_rules(world: World) -> None:
    factory, a = world
    created = _new_user(factory, a["admin"], "newbie", ["analyst"])
    (request,) = created.approvals
    assert _roles(factory, "newbie") == set()
    # The requester cannot approve (even when also holding the approving role elsewhere), nor can the user concerned.
    boss = Actor("admin", a["admin"].agency_id, frozenset({Role.ADMINISTRATOR, Role.SUPERVISOR}), a["admin"].user_id,
                 "METRO")  # fmt: skip
    with pytest.raises(PermissionDenied, match="requester cannot approve"):
        approvals.approve(factory, boss, request.id)
    # Whoever created the user's account cannot approve for it: admin2 creates, admin requests, admin2 (a supervisor
    # too) may not approve.
    other = _new_user(factory, a["admin2"], "other", [])
    grant = users.grant_role(factory, a["admin"], "other", "reviewer").approvals[0]
    creator = Actor("admin2", a["admin2"].agency_id, frozenset({Role.ADMINISTRATOR, Role.SUPERVISOR}),
                    a["admin2"].user_id, "METRO")  # fmt: skip
    with pytest.raises(PermissionDenied, match="you created other's account"):
        approvals.approve(factory, creator, grant.id)
    assert other.ref is not None
    # Nor may a supervisor approve a request of someone whose account they created (no puppets).
    puppet_id = _new_user(factory, creator, "puppet-admin", ["administrator"]).ref
    assert puppet_id is not None
    puppet = _actors(factory)["puppet-admin"]
    sneaky = users.grant_role(factory, puppet, "analyst", "supervisor").approvals[0]
    with pytest.raises(PermissionDenied, match="created the account of the requester"):
        approvals.approve(factory, creator, sneaky.id)
    # Another agency's supervisor: answered like a missing request; a role without the right: 403.
    with pytest.raises(NotFound, match=f"no approval request {request.id}"):
        approvals.approve(factory, a["county-sup"], request.id)
    with pytest.raises(PermissionDenied, match="needs one of the roles supervisor"):
        approvals.approve(factory, a["trainer"], request.id)
    # A supervisor who is neither requester, target nor creator approves: the role is granted, once.
    done = approvals.approve(factory, a["sup"], request.id, "confirmed with the unit head")
    assert done.status == "approved" and done.result_ref == "role:analyst" and done.decided_by == "sup"
    assert _roles(factory, "newbie") == {"analyst"}
    with pytest.raises(ValidationError, match="only a pending request"):
        approvals.approve(factory, a["sup2"], request.id)
    denied = [action for action, _ in _denials(factory)]
    # Three broken rules, the other agency's supervisor (404) and the training officer (403): all audited.
    assert denied == ["approval_approve"] * 3 + ["approve_access"] * 2
    with factory() as session:
        assert verify_chain(session).ok


def test_certification_needs_a_training_officer_who_did_not_create_the_user_and_a_supervisor(world: World) -> None:
    factory, a = world
    trainer_made = _new_user(factory, a["admin"], "fresh", [])
    assert trainer_made.done
    until = T0 + timedelta(days=365)
    # The administrator records no certification at all; the training officer records it; a supervisor approves it.
    with pytest.raises(PermissionDenied, match="training_officer"):
        users.certify(factory, a["admin"], "fresh", until, clock=Clock())
    pending = users.certify(factory, a["trainer"], "fresh", until, reference="FISWG-1", clock=Clock())
    assert pending.pending and "record a facial-comparison certification for fresh" in pending.message
    with factory() as session:
        user = session.scalars(select(User).where(User.username == "fresh")).one()
        assert not auth.has_valid_certification(session, user.id, T0)
    approvals.approve(factory, a["sup"], pending.approvals[0].id, clock=Clock())
    with factory() as session:
        user = session.scalars(select(User).where(User.username == "fresh")).one()
        assert auth.has_valid_certification(session, user.id, T0)
    # A training officer who is also an administrator cannot certify a user they created.
    both = Actor("admin2", a["admin2"].agency_id, frozenset({Role.ADMINISTRATOR, Role.TRAINING_OFFICER}),
                 a["admin2"].user_id, "METRO")  # fmt: skip
    _new_user(factory, both, "made-by-both", [])
    with pytest.raises(PermissionDenied, match="another person records its certification"):
        users.certify(factory, both, "made-by-both", until, clock=Clock())
    assert ("permission_change", "you created made-by-both's account: another person records its certification") in \
        _denials(factory)


def test_credential_resets_of_biometric_users_wait_and_others_do_not(tmp_path: Path, world: World) -> None:
    factory, a = world
    settings = make_settings(tmp_path)
    reset = users.reset_password(factory, a["admin"], "analyst", "admin-knows-this-1")
    assert reset.pending
    with pytest.raises(AuthenticationError):  # the new password does not work before approval
        auth.authenticate(factory, "analyst", "admin-knows-this-1", settings=settings)
    assert auth.authenticate(factory, "analyst", PASSWORD, settings=settings).actor.username == "analyst"
    with factory() as session:
        row = session.get(AccessApproval, reset.approvals[0].id)
        assert row is not None and row.password_hash and row.password_hash.startswith("$argon2id$")
    rejected = approvals.reject(factory, a["sup"], reset.approvals[0].id, "the analyst did not ask for it")
    assert rejected.status == "rejected"
    with factory() as session:
        assert session.get(AccessApproval, rejected.id).password_hash is None  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="reason is required"):
        approvals.reject(factory, a["sup"], rejected.id, "  ")
    # A user without a biometric role: at once.
    _new_user(factory, a["admin"], "clerk", ["auditor"])
    assert users.reset_password(factory, a["admin"], "clerk", "desk-new-password-1").done
    assert users.reset_totp(factory, a["admin"], "clerk").done
    # The analyst's second factor: waits; the requester may withdraw it.
    totp_reset = users.reset_totp(factory, a["admin"], "analyst")
    assert totp_reset.pending
    withdrawn = approvals.reject(factory, a["admin"], totp_reset.approvals[0].id, "wrong user")
    assert withdrawn.decision_note == "withdrawn by the requester: wrong user"


def test_two_supervisors_deciding_at_once_apply_the_change_once(world: World) -> None:
    from concurrent.futures import ThreadPoolExecutor

    factory, a = world
    request = users.certify(factory, a["trainer"], "analyst", T0 + timedelta(days=700), clock=Clock()).approvals[0]
    barrier_outcomes: list[str] = []

    def decide(name: str) -> str:
        try:
            approvals.approve(factory, a[name], request.id, clock=Clock())
            return "approved"
        except ValidationError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=2) as pool:
        barrier_outcomes = list(pool.map(decide, ["sup", "sup2"]))
    assert sorted(o == "approved" for o in barrier_outcomes) == [False, True], barrier_outcomes
    assert any("decided by someone else" in o or "is approved" in o for o in barrier_outcomes)
    with factory() as session:
        user = session.scalars(select(User).where(User.username == "analyst")).one()
        assert len(user.certifications) == 2  # the one from the fixture and this one, applied once
        assert verify_chain(session).ok


def test_requests_expire_when_nobody_decides(world: World) -> None:
    factory, a = world
    clock = Clock()
    request = _new_user(factory, a["admin"], "late", ["analyst"]).approvals[0]
    with transaction(factory) as session:  # the request was made eight days ago
        row = session.get(AccessApproval, request.id)
        assert row is not None
        row.expires_at = T0 - timedelta(days=1)
    assert approvals.list_approvals(factory, a["sup"], clock=clock) == []
    (expired,) = approvals.list_approvals(factory, a["sup"], status="expired", clock=clock)
    assert expired.id == request.id
    with pytest.raises(ValidationError, match="expired"):
        approvals.approve(factory, a["sup"], request.id, clock=clock)
    assert _roles(factory, "late") == set()
    with factory() as session:
        assert session.scalars(select(AuditEntry).where(AuditEntry.action == "approval_expire")).one()
    # Once expired, the same change can be requested again.
    assert users.grant_role(factory, a["admin"], "late", "analyst").pending


def test_the_first_supervisor_of_a_new_agency_is_approved_by_another_system_operator(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    ops = add_agency(factory, "OPS")
    add_user(factory, ops, "op1", {Role.SYSTEM_OPERATOR})
    add_user(factory, ops, "op2", {Role.SYSTEM_OPERATOR})
    a = _actors(factory)
    info = users.create_agency(factory, a["op1"], "NEWCO", "New Police", admin_username="newco-chief",
                               admin_password=PASSWORD)  # fmt: skip
    chief = _actors(factory)["newco-chief"]
    assert _roles(factory, "newco-chief") == {"administrator"} and chief.agency_id == info.id
    first = users.create_user(factory, chief, "NEWCO", "newco-sgt", PASSWORD, roles=["supervisor"]).approvals[0]
    analyst = users.create_user(factory, chief, "NEWCO", "newco-analyst", PASSWORD, roles=["analyst"]).approvals[0]
    # op1 created the chief (knows its first password): op1 may not approve the chief's requests.
    with pytest.raises(PermissionDenied, match="created the account of the requester"):
        approvals.approve(factory, a["op1"], first.id)
    # An operator decides only the first approver, never an analyst.
    assert [r.id for r in approvals.list_approvals(factory, a["op2"])] == [first.id]
    with pytest.raises(PermissionDenied, match="only the grant of an agency's first approver"):
        approvals.approve(factory, a["op2"], analyst.id)
    approvals.approve(factory, a["op2"], first.id, "NEWCO's first supervisor, confirmed with its chief constable")
    assert _roles(factory, "newco-sgt") == {"supervisor"}
    # Now NEWCO has its own approver: operators no longer decide there.
    later = users.grant_role(factory, chief, "newco-analyst", "supervisor").approvals[0]
    with pytest.raises(PermissionDenied, match="has its own approvers"):
        approvals.approve(factory, a["op2"], later.id)
    sgt = _actors(factory)["newco-sgt"]
    approvals.approve(factory, sgt, analyst.id)
    assert _roles(factory, "newco-analyst") == {"analyst"}
    with factory() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "agency_create")).one()
        assert entry.details["first_admin"] == "newco-chief" and entry.username == "op1"
        boot = session.scalars(select(AuditEntry).where(AuditEntry.action == "approval_approve",
                                                        AuditEntry.username == "op2",
                                                        AuditEntry.outcome == "ok")).one()
        assert boot.details["bootstrap"] is True


def test_system_roles_are_granted_only_by_system_operators(world: World) -> None:
    factory, a = world
    with pytest.raises(PermissionDenied, match="system_operator"):
        users.grant_role(factory, a["admin"], "sup", "oversight")
    with pytest.raises(PermissionDenied, match="system_operator"):
        users.create_user(factory, a["admin"], "METRO", "snoop", PASSWORD, roles=["oversight"])
    operator = Actor("root", a["admin"].agency_id, frozenset({Role.SYSTEM_OPERATOR}), None, "METRO")
    assert users.grant_role(factory, operator, "county-sup", "oversight").done  # any agency: a system-level role
    assert users.revoke_role(factory, operator, "county-sup", "oversight")


# --- the second factor required for biometric roles -----------------------------------------------------------


def test_production_requires_totp_for_biometric_roles(tmp_path: Path, world: World) -> None:
    factory, _ = world
    settings = make_settings(tmp_path, mode="production", master_key_file=None)
    assert auth.totp_required_roles(settings) == {Role.INVESTIGATOR, Role.ANALYST, Role.REVIEWER, Role.SUPERVISOR,
                                                  Role.RECORDS_OFFICER}  # fmt: skip
    assert auth.totp_required_roles(make_settings(tmp_path)) == frozenset()  # dev mode: none by default
    assert auth.totp_required_roles(make_settings(tmp_path, totp_required_roles=["auditor"])) == {Role.AUDITOR}
    clock = Clock()
    # An administrator signs in without TOTP; an analyst is refused and pointed to enrolment.
    assert auth.authenticate(factory, "admin", PASSWORD, settings=settings, clock=clock).second_factor == "none"
    # The distinct answer needs the right password: a wrong one gets the one refusal every other failure gets
    # (issue #11: the answer never tells which usernames exist, which are locked, or which need TOTP).
    with pytest.raises(AuthenticationError) as wrong:
        auth.authenticate(factory, "analyst", "not-the-password-1", settings=settings, clock=clock)
    assert not isinstance(wrong.value, SecondFactorEnrolmentRequired) and str(wrong.value) == auth.SIGN_IN_REFUSED
    with transaction(factory) as session:  # that failure counted; the right password below resets the counter
        assert session.scalars(select(User).where(User.username == "analyst")).one().failed_attempts == 1
    with pytest.raises(SecondFactorEnrolmentRequired, match="analyst require a TOTP second factor") as refused:
        auth.authenticate(factory, "analyst", PASSWORD, settings=settings, clock=clock)
    assert "faceleads account totp-enrol" in str(refused.value)
    token = refused.value.enrolment_token
    with transaction(factory) as session:
        limited = auth.actor_for_session(session, token, settings=settings, clock=clock)
    assert limited.roles == frozenset() and limited.username == "analyst"  # own account only
    # Enrol with the enrolment session; confirming ends it; a sign-in with a code then works.
    enrolment = users.begin_totp_enrolment(factory, limited, MASTER_KEY)
    codes = users.confirm_totp_enrolment(factory, limited, totp.code_at(enrolment.secret, clock()), MASTER_KEY,
                                         clock=clock)  # fmt: skip
    assert len(codes) == 10
    with pytest.raises(AuthenticationError), transaction(factory) as session:
        auth.actor_for_session(session, token, settings=settings, clock=clock)
    clock.advance(seconds=60)
    signed = auth.authenticate(factory, "analyst", PASSWORD, totp.code_at(enrolment.secret, clock()),
                               settings=settings, master_key=MASTER_KEY, clock=clock)  # fmt: skip
    assert Role.ANALYST in signed.actor.roles
    with factory() as session:
        refusal = session.scalars(select(AuditEntry).where(AuditEntry.action == "login",
                                                           AuditEntry.outcome == "denied")).one()
        assert session.scalars(select(AuditEntry).where(AuditEntry.action == "login", AuditEntry.outcome == "failed")
                               ).one().details["reason"] == "wrong password"  # fmt: skip
        assert refusal.details["reason"] == "second factor not enrolled"


def test_a_session_without_a_second_factor_loses_biometric_roles_once_they_require_one(
    tmp_path: Path, world: World
) -> None:
    factory, _ = world
    clock = Clock()
    dev = make_settings(tmp_path)
    signed = auth.authenticate(factory, "sup", PASSWORD, settings=dev, clock=clock)
    strict = make_settings(tmp_path, totp_required_roles=["supervisor"])
    with transaction(factory) as session:
        assert auth.actor_for_session(session, signed.token, settings=dev, clock=clock).roles == {Role.SUPERVISOR}
        assert auth.actor_for_session(session, signed.token, settings=strict, clock=clock).roles == frozenset()
