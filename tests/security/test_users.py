"""The administration service: every change goes through the policy and the audit log, within one agency."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from faceleads.core.actor import Actor, Role
from faceleads.core.audit import AuditEntry, verify_chain
from faceleads.errors import AuthenticationError, NotFound, PermissionDenied, ValidationError
from faceleads.security import approvals, auth, users
from faceleads.security.models import RoleGrant, User
from tests.security.identity_helpers import PASSWORD, T0, Clock, add_agency, add_user, make_factory, make_settings


@pytest.fixture()
def world(tmp_path: Path) -> tuple[sessionmaker[Session], dict[str, Actor]]:
    """Two agencies, each with an administrator and a training officer; METRO also has an analyst, an auditor and a
    supervisor (the approver)."""
    factory = make_factory(tmp_path)
    metro, county = add_agency(factory, "METRO"), add_agency(factory, "COUNTY")
    add_user(factory, metro, "metro-admin", {Role.ADMINISTRATOR})
    add_user(factory, county, "county-admin", {Role.ADMINISTRATOR})
    add_user(factory, metro, "metro-analyst", {Role.ANALYST}, certified_until=T0 + timedelta(days=365))
    add_user(factory, metro, "metro-auditor", {Role.AUDITOR})
    add_user(factory, metro, "metro-training", {Role.TRAINING_OFFICER})
    add_user(factory, county, "county-training", {Role.TRAINING_OFFICER})
    add_user(factory, metro, "metro-supervisor", {Role.SUPERVISOR})
    actors = {}
    with factory() as session:
        for user in session.scalars(select(User)):
            actors[user.username] = auth.actor_for_user(session, user, T0)
    return factory, actors


def _log(factory: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with factory() as session:
        return [
            (e.action, e.object_ref, e.outcome) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        ]


def _roles(factory: sessionmaker[Session], username: str) -> set[str]:
    with factory() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        return {g.role for g in session.scalars(select(RoleGrant).where(RoleGrant.user_id == user.id))}


def test_bootstrap_only_on_an_empty_system(tmp_path: Path) -> None:
    factory = make_factory(tmp_path)
    user_id = users.bootstrap(factory, "METRO", "Metro Police", "first-admin", PASSWORD)
    assert _roles(factory, "first-admin") == {"administrator", "system_operator"}
    assert _log(factory) == [("bootstrap", f"user:{user_id}", "ok")]
    with pytest.raises(PermissionDenied, match="already set up"):
        users.bootstrap(factory, "EVIL", "Evil", "second-admin", PASSWORD)


def test_create_user_grant_revoke_certify(world: tuple[sessionmaker[Session], dict[str, Actor]]) -> None:
    """Non-biometric roles are granted at once; biometric roles and certifications wait for a supervisor."""
    factory, actors = world
    admin, training, supervisor = actors["metro-admin"], actors["metro-training"], actors["metro-supervisor"]
    created = users.create_user(factory, admin, "METRO", "new-reviewer", PASSWORD,
                                roles=["reviewer", "Investigator", "auditor"])  # fmt: skip
    assert created.done and created.ref is not None
    assert _roles(factory, "new-reviewer") == {"auditor"}  # reviewer and investigator reach biometric content
    assert sorted(a.role or "" for a in created.approvals) == ["investigator", "reviewer"]
    pending = users.grant_role(factory, admin, "new-reviewer", "supervisor")
    assert pending.pending and not pending.done and "waiting for a second person" in pending.message
    with pytest.raises(ValidationError, match="already waiting"):
        users.grant_role(factory, admin, "new-reviewer", "supervisor")
    for request in [*created.approvals, *pending.approvals]:
        approvals.approve(factory, supervisor, request.id, "checked with the unit head")
    assert _roles(factory, "new-reviewer") == {"auditor", "reviewer", "investigator", "supervisor"}
    assert not users.grant_role(factory, admin, "new-reviewer", "supervisor").done  # already held
    assert users.revoke_role(factory, admin, "new-reviewer", "investigator")  # removing access needs no approval
    clock = Clock()
    cert = users.certify(factory, training, "new-reviewer", T0 + timedelta(days=90), reference="FISWG-2026-17",
                         clock=clock)  # fmt: skip
    info = {u.username: u for u in users.list_users(factory, admin, clock=clock)}
    assert info["new-reviewer"].effective_roles == ("auditor", "supervisor")  # not certified until approved
    approvals.approve(factory, supervisor, cert.approvals[0].id, clock=clock)
    info = {u.username: u for u in users.list_users(factory, admin, clock=clock)}
    assert info["new-reviewer"].effective_roles == ("auditor", "reviewer", "supervisor")
    assert info["new-reviewer"].certified_until == T0 + timedelta(days=90)
    assert "county-admin" not in info  # own agency only
    assert users.revoke_certifications(factory, training, "new-reviewer", clock=clock) == 1
    info = {u.username: u for u in users.list_users(factory, admin, clock=clock)}
    assert info["new-reviewer"].effective_roles == ("auditor", "supervisor")
    actions = [a for a, _, _ in _log(factory)]
    assert actions[:3] == ["user_create", "approval_request", "approval_request"]
    assert actions.count("approval_approve") == 4 and actions.count("approval_request") == 4
    with factory() as session:
        assert verify_chain(session).ok


def test_cross_agency_administration_is_denied_and_audited(
    world: tuple[sessionmaker[Session], dict[str, Actor]],
) -> None:
    factory, actors = world
    county_admin = actors["county-admin"]
    attempts = [
        lambda: users.create_user(factory, county_admin, "METRO", "planted", PASSWORD, roles=["analyst"]),
        lambda: users.grant_role(factory, county_admin, "metro-analyst", "supervisor"),
        lambda: users.revoke_role(factory, county_admin, "metro-analyst", "analyst"),
        lambda: users.certify(factory, actors["county-training"], "metro-analyst", T0 + timedelta(days=9),
                              clock=Clock()),
        lambda: users.reset_password(factory, county_admin, "metro-analyst", "another-Passw0rd!"),
        lambda: users.unlock(factory, county_admin, "metro-analyst"),
        lambda: users.set_active(factory, county_admin, "metro-analyst", False),
        lambda: users.reset_totp(factory, county_admin, "metro-analyst"),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied, match="own agency only"):
            attempt()
    log = _log(factory)
    assert len(log) == len(attempts) and all(outcome == "denied" for _, _, outcome in log)
    assert _roles(factory, "metro-analyst") == {"analyst"}


def test_non_administrators_cannot_administer(world: tuple[sessionmaker[Session], dict[str, Actor]]) -> None:
    factory, actors = world
    for name in ("metro-analyst", "metro-auditor", "metro-admin"):
        if name != "metro-admin":
            with pytest.raises(PermissionDenied, match="needs one of the roles administrator"):
                users.grant_role(factory, actors[name], "metro-admin", "analyst")
        with pytest.raises(PermissionDenied, match="system_operator"):  # agencies are the system operator's
            users.create_agency(factory, actors[name], "NEWCO", "New agency", admin_username="newco-admin",
                                admin_password=PASSWORD)  # fmt: skip
    with pytest.raises(PermissionDenied, match="training_officer"):  # certifications are the training officer's
        users.certify(factory, actors["metro-admin"], "metro-analyst", T0 + timedelta(days=9), clock=Clock())
    with pytest.raises(PermissionDenied, match="system_operator"):  # system roles are the system operator's
        users.grant_role(factory, actors["metro-admin"], "metro-auditor", "oversight")
    assert [o for _, _, o in _log(factory)] == ["denied"] * 7


def test_nobody_changes_their_own_roles(world: tuple[sessionmaker[Session], dict[str, Actor]]) -> None:
    """Separation of duties: an administrator cannot make themselves an analyst to reach biometric content."""
    factory, actors = world
    with pytest.raises(PermissionDenied, match="themselves"):
        users.grant_role(factory, actors["metro-admin"], "metro-admin", "analyst")
    with pytest.raises(PermissionDenied, match="themselves"):
        users.certify(factory, actors["metro-training"], "metro-training", T0 + timedelta(days=9), clock=Clock())
    assert _roles(factory, "metro-admin") == {"administrator"}


def test_validation_errors_name_the_problem(world: tuple[sessionmaker[Session], dict[str, Actor]]) -> None:
    factory, actors = world
    admin = actors["metro-admin"]
    with pytest.raises(ValidationError, match="unknown role 'wizard'"):
        users.create_user(factory, admin, "METRO", "someone", PASSWORD, roles=["wizard"])
    with pytest.raises(ValidationError, match="username"):
        users.create_user(factory, admin, "METRO", "Bad Name!", PASSWORD)
    with pytest.raises(ValidationError, match="at least 12"):
        users.create_user(factory, admin, "METRO", "someone", "short")
    with pytest.raises(ValidationError, match="already taken"):
        users.create_user(factory, admin, "METRO", "metro-analyst", PASSWORD)
    with pytest.raises(NotFound, match="no agency"):
        users.create_user(factory, admin, "NOPE", "someone", PASSWORD)
    with pytest.raises(NotFound, match="no user"):
        users.grant_role(factory, admin, "ghost", "analyst")
    with pytest.raises(ValidationError, match="not in the future"):
        users.certify(factory, actors["metro-training"], "metro-analyst", T0 - timedelta(days=1), clock=Clock())
    operator = Actor("op", admin.agency_id, frozenset({Role.SYSTEM_OPERATOR}), None, "METRO")
    with pytest.raises(ValidationError, match="already exists"):
        users.create_agency(factory, operator, "COUNTY", "Duplicate", admin_username="dup-admin",
                            admin_password=PASSWORD)  # fmt: skip
    with pytest.raises(ValidationError, match="already taken"):
        users.create_agency(factory, operator, "NEWCO", "New", admin_username="metro-admin", admin_password=PASSWORD)


def test_password_reset_ends_sessions_and_own_change_needs_old(
    tmp_path: Path, world: tuple[sessionmaker[Session], dict[str, Actor]]
) -> None:
    factory, actors = world
    settings = make_settings(tmp_path)
    signed = auth.authenticate(factory, "metro-analyst", PASSWORD, settings=settings)
    reset = users.reset_password(factory, actors["metro-admin"], "metro-analyst", "brand-new-Passw0rd")
    assert reset.pending  # an analyst's password: a second person approves
    with factory.begin() as session:  # nothing changed yet: the session is still good
        auth.actor_for_session(session, signed.token, settings=settings)
    approvals.approve(factory, actors["metro-supervisor"], reset.approvals[0].id, "user called the help desk")
    with pytest.raises(AuthenticationError), factory.begin() as session:
        auth.actor_for_session(session, signed.token, settings=settings)
    analyst = auth.authenticate(factory, "metro-analyst", "brand-new-Passw0rd", settings=settings).actor
    with pytest.raises(PermissionDenied, match="current password is wrong"):
        users.change_own_password(factory, analyst, PASSWORD, "yet-another-Passw0rd")
    users.change_own_password(factory, analyst, "brand-new-Passw0rd", "yet-another-Passw0rd")
    assert auth.authenticate(factory, "metro-analyst", "yet-another-Passw0rd", settings=settings).actor == analyst
