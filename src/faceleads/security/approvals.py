"""Separation of duties: a change that gives someone access to biometric content waits for a second person.

Nobody can, alone, give anyone access to face images, templates or candidate lists. These changes are *requested*
by one person and take effect only when a second person *approves* them:

- granting a role that reaches biometric content (:func:`faceleads.core.policy.biometric_roles`: investigator,
  analyst, reviewer, supervisor, records officer);
- recording a facial-comparison certification (it makes the analyst and reviewer roles effective);
- resetting the password or the second factor of a user who holds such a role (whoever sets a password can sign in
  with it).

The approver holds the approving role (``approve_access``: supervisors) in the same agency, and is neither the
requester, nor the user concerned, nor the person who created that user's account (they chose its first password),
nor someone who created the requester's account. While an agency has no one who could approve, a system operator may
approve the grant of its first approver (supervisor) — and nothing else — under the same rules
(``approve_access_bootstrap``).

A request expires when nobody decides within ``Settings.approval_expiry_hours`` (checked whenever requests are read
or decided, never by a job). Every step — request, approval (and the change it applies), rejection, expiry, and every
refusal — is in the audit log. The state lives in the database (``access_approvals``), so every server agrees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from faceleads.config import Settings, get_settings
from faceleads.core import audit
from faceleads.core.actor import Actor, Role
from faceleads.core.policy import Action, allowed, enforce, holds_role_for, roles_for
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.security.auth import Clock, as_utc, revoke_user_sessions
from faceleads.security.models import (
    AccessApproval,
    ApprovalKind,
    ApprovalStatus,
    Certification,
    RecoveryCode,
    RoleGrant,
    User,
)

MAX_NOTE = 2000


@dataclass(frozen=True)
class ApprovalInfo:
    """A pending (or decided) approval as screens show it. Never holds the new password."""

    id: int
    agency_code: str
    kind: str
    target: str
    role: str | None
    cert_expires_at: datetime | None
    cert_reference: str
    note: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    result_ref: str | None

    @property
    def description(self) -> str:
        """What approving it does, in words."""
        if self.kind == ApprovalKind.GRANT_ROLE:
            return f"grant the role {self.role} to {self.target}"
        if self.kind == ApprovalKind.CERTIFY:
            until = f" valid until {self.cert_expires_at:%Y-%m-%d}" if self.cert_expires_at else ""
            return f"record a facial-comparison certification for {self.target}{until}"
        if self.kind == ApprovalKind.RESET_PASSWORD:
            return f"reset the password of {self.target}"
        return f"reset the TOTP second factor of {self.target}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("cert_expires_at", "requested_at", "expires_at", "decided_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        data["description"] = self.description
        return data


def _info(session: Session, row: AccessApproval) -> ApprovalInfo:
    agency = session.get(Agency, row.agency_id)
    target = session.get(User, row.target_user_id)

    def t(moment: datetime | None) -> datetime | None:
        return as_utc(moment) if moment is not None else None

    return ApprovalInfo(
        id=row.id,
        agency_code=agency.code if agency else "",
        kind=row.kind,
        target=target.username if target else f"user {row.target_user_id}",
        role=row.role,
        cert_expires_at=t(row.cert_expires_at),
        cert_reference=row.cert_reference,
        note=row.note,
        requested_by=row.requested_by_username,
        requested_at=as_utc(row.requested_at),
        expires_at=as_utc(row.expires_at),
        status=row.status,
        decided_by=row.decided_by_username,
        decided_at=t(row.decided_at),
        decision_note=row.decision_note,
        result_ref=row.result_ref,
    )


def _clean_note(note: object, *, required: bool = False) -> str:
    text = note.strip() if isinstance(note, str) else ""
    if required and not text:
        raise ValidationError("a reason is required")
    if len(text) > MAX_NOTE:
        raise ValidationError(f"the note is limited to {MAX_NOTE} characters")
    return text


# --- requesting -------------------------------------------------------------------------------------------------


def request(
    session: Session,
    actor: Actor,
    kind: ApprovalKind,
    target: User,
    *,
    role: Role | None = None,
    cert_expires_at: datetime | None = None,
    cert_reference: str = "",
    password_hash: str | None = None,
    note: str = "",
    now: datetime | None = None,
    settings: Settings | None = None,
) -> ApprovalInfo:
    """Record a request for approval within the caller's transaction (the caller authorised the requester).

    Refused while the same change is already pending for the user (one request, one decision).
    """
    settings = settings or get_settings()
    moment = as_utc(now or utcnow())
    _expire_due(session, moment)
    same_role = AccessApproval.role == role.value if role is not None else AccessApproval.role.is_(None)
    duplicate = session.scalars(
        select(AccessApproval).where(
            AccessApproval.target_user_id == target.id,
            AccessApproval.kind == kind.value,
            AccessApproval.status == ApprovalStatus.PENDING.value,
            same_role,
        )
    ).first()
    if duplicate is not None:
        raise ValidationError(
            f"the same change for {target.username} is already waiting for approval (request {duplicate.id})"
        )
    row = AccessApproval(
        agency_id=target.agency_id,
        kind=kind.value,
        target_user_id=target.id,
        role=role.value if role else None,
        cert_expires_at=cert_expires_at,
        cert_reference=cert_reference[:200],
        password_hash=password_hash,
        note=_clean_note(note),
        requested_by=actor.user_id,
        requested_by_username=actor.username,
        requested_at=moment,
        expires_at=moment + timedelta(hours=settings.approval_expiry_hours),
        status=ApprovalStatus.PENDING.value,
    )
    session.add(row)
    session.flush()
    audit.record(
        session, actor, "approval_request", f"approval:{row.id}",
        details={"kind": kind.value, "role": row.role, "username": target.username, "target_user_id": target.id,
                 "expires": as_utc(row.expires_at).isoformat()},
        at=moment,
    )  # fmt: skip
    return _info(session, row)


# --- expiry -----------------------------------------------------------------------------------------------------


def _expire_due(session: Session, now: datetime) -> int:
    """Mark pending requests past their expiry as expired (audited as the system); returns how many."""
    rows = session.scalars(
        select(AccessApproval).where(
            AccessApproval.status == ApprovalStatus.PENDING.value, AccessApproval.expires_at <= now
        ).order_by(AccessApproval.id)  # the log records the expiries in request order
    ).all()
    for row in rows:
        row.status = ApprovalStatus.EXPIRED.value
        row.password_hash = None  # no stale secret outlives the request
        row.decided_at = now
        audit.record(session, None, "approval_expire", f"approval:{row.id}",
                     details={"kind": row.kind, "role": row.role, "target_user_id": row.target_user_id}, at=now)
    return len(rows)


def expire_due(session_factory: sessionmaker[Session], *, clock: Clock = utcnow) -> int:
    """Expire every request nobody decided in time (the services do this on every read; callable on its own)."""
    with transaction(session_factory) as session:
        return _expire_due(session, as_utc(clock()))


# --- who may decide ---------------------------------------------------------------------------------------------

_APPROVER_ROLES = roles_for(Action.APPROVE_ACCESS)


def _eligible_approvers(session: Session, row: AccessApproval) -> list[str]:
    """Active users of the request's agency who hold the approving role and are neither requester nor target, by
    user name (a refusal names the first few)."""
    names = []
    users = select(User).where(User.agency_id == row.agency_id, User.active.is_(True)).order_by(User.username)
    for user in session.scalars(users):
        if user.id in (row.requested_by, row.target_user_id):
            continue
        if any(grant.role in _APPROVER_ROLES for grant in user.role_grants):
            names.append(user.username)
    return names


def _bootstraps_approver(row: AccessApproval) -> bool:
    """Whether ``row`` would make someone an approver (the only kind a system operator may decide)."""
    return row.kind == ApprovalKind.GRANT_ROLE.value and row.role in {r.value for r in _APPROVER_ROLES}


def _may_decide(actor: Actor) -> bool:
    """Whether the actor holds a role that decides approvals at all (the agency is checked per request)."""
    return holds_role_for(actor, Action.APPROVE_ACCESS) or holds_role_for(actor, Action.APPROVE_ACCESS_BOOTSTRAP)


def _refuse(session_factory: sessionmaker[Session], actor: Actor, action: str, row_id: int, reason: str) -> None:
    audit.record_now(session_factory, actor, action, f"approval:{row_id}", audit.Outcome.DENIED,
                     details={"reason": reason[:400]})
    raise PermissionDenied(reason)


def _authorise_decider(
    session_factory: sessionmaker[Session], session: Session, actor: Actor, row: AccessApproval, verb: str
) -> bool:
    """Authorise a decision on ``row``; returns True when it is the bootstrap form (a system operator)."""
    ref, missing = f"approval:{row.id}", f"no approval request {row.id}"
    if holds_role_for(actor, Action.APPROVE_ACCESS) and allowed(actor, Action.APPROVE_ACCESS, row.agency_id):
        return False
    if holds_role_for(actor, Action.APPROVE_ACCESS_BOOTSTRAP):
        enforce(session_factory, actor, Action.APPROVE_ACCESS_BOOTSTRAP, ref)
        if not _bootstraps_approver(row):
            _refuse(session_factory, actor, f"approval_{verb}", row.id,
                    "a system operator decides only the grant of an agency's first approver (supervisor); every "
                    "other request waits for that approver")
        others = _eligible_approvers(session, row)
        if others:
            _refuse(session_factory, actor, f"approval_{verb}", row.id,
                    f"agency {_info(session, row).agency_code} has its own approvers ({', '.join(others[:5])}); a "
                    "system operator approves only while an agency has none")
        return True
    enforce(session_factory, actor, Action.APPROVE_ACCESS, ref, row.agency_id, not_found=missing)
    return False


def _separation_of_duties(session: Session, actor: Actor, row: AccessApproval) -> str | None:
    """Why ``actor`` may not approve ``row`` (None when they may)."""
    target = session.get(User, row.target_user_id)
    requester = session.get(User, row.requested_by) if row.requested_by is not None else None
    if actor.user_id == row.requested_by or (row.requested_by is None and actor.username == row.requested_by_username):
        return "the requester cannot approve their own request: a second person must"
    if target is not None and actor.user_id == target.id:
        return "nobody approves a change to their own access"
    if target is not None and target.created_by is not None and target.created_by == actor.user_id:
        return f"you created {target.username}'s account (and chose its first password): another person must approve"
    if requester is not None and requester.created_by is not None and requester.created_by == actor.user_id:
        return (f"you created the account of the requester {requester.username}: approving their request would "
                "not be a second person's decision")
    return None


def _load(session: Session, approval_id: int) -> AccessApproval:
    row = session.get(AccessApproval, approval_id)
    if row is None:
        raise NotFound(f"no approval request {approval_id}")
    return row


# --- deciding ---------------------------------------------------------------------------------------------------


def approve(
    session_factory: sessionmaker[Session],
    actor: Actor,
    approval_id: int,
    note: str = "",
    *,
    clock: Clock = utcnow,
) -> ApprovalInfo:
    """Approve a pending request and apply its change, in one transaction; every refusal is audited."""
    now = as_utc(clock())
    text = _clean_note(note)
    with transaction(session_factory) as session:
        _expire_due(session, now)
    if actor.user_id is None:
        audit.record_now(session_factory, actor, "approval_approve", f"approval:{approval_id}", audit.Outcome.DENIED,
                         details={"reason": "approvals are given by a signed-in person"})
        raise PermissionDenied("approvals are given by a signed-in person, not by the system")
    if not _may_decide(actor):
        enforce(session_factory, actor, Action.APPROVE_ACCESS, f"approval:{approval_id}")
    with session_factory() as session:  # decide who may, reading only (refusals are recorded on their own)
        row = _load(session, approval_id)
        bootstrap = _authorise_decider(session_factory, session, actor, row, "approve")
        if row.status != ApprovalStatus.PENDING.value:
            raise ValidationError(f"approval request {row.id} is {row.status}; only a pending request can be approved")
        why_not = _separation_of_duties(session, actor, row)
        if why_not is not None:
            _refuse(session_factory, actor, "approval_approve", row.id, why_not)
    with transaction(session_factory) as session:
        row = _claim(session, approval_id, ApprovalStatus.APPROVED, actor, now)
        result = _apply(session, actor, row, now)
        row.decision_note, row.result_ref = text, result
        row.password_hash = None  # applied: the hash lives on in the user's row only
        audit.record(
            session, actor, "approval_approve", f"approval:{row.id}",
            details={"kind": row.kind, "role": row.role, "target_user_id": row.target_user_id,
                     "requested_by": row.requested_by_username, "bootstrap": bootstrap, "result": result},
            at=now,
        )  # fmt: skip
        return _info(session, row)


def _claim(session: Session, approval_id: int, status: ApprovalStatus, actor: Actor, now: datetime) -> AccessApproval:
    """Decide a pending request, first thing in the transaction: two people deciding the same request at once
    cannot both succeed (the second finds it decided), and on SQLite the write lock is taken before anything is
    read."""
    claimed = session.execute(
        update(AccessApproval)
        .where(AccessApproval.id == approval_id, AccessApproval.status == ApprovalStatus.PENDING.value,
               AccessApproval.expires_at > now)
        .values(status=status.value, decided_by=actor.user_id, decided_by_username=actor.username, decided_at=now,
                password_hash=None if status is not ApprovalStatus.APPROVED else AccessApproval.password_hash)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise ValidationError(f"approval request {approval_id} was decided by someone else, or expired, meanwhile")
    row = session.get(AccessApproval, approval_id, populate_existing=True)
    assert row is not None
    return row


def reject(
    session_factory: sessionmaker[Session],
    actor: Actor,
    approval_id: int,
    note: str,
    *,
    clock: Clock = utcnow,
) -> ApprovalInfo:
    """Reject a pending request with a reason (an approver), or withdraw it (its requester)."""
    now = as_utc(clock())
    text = _clean_note(note, required=True)
    with transaction(session_factory) as session:
        _expire_due(session, now)
    with session_factory() as session:
        row = _load(session, approval_id)
        withdrawn = actor.user_id is not None and actor.user_id == row.requested_by
        if not withdrawn:
            if not _may_decide(actor):
                enforce(session_factory, actor, Action.APPROVE_ACCESS, f"approval:{approval_id}")
            _authorise_decider(session_factory, session, actor, row, "reject")
        if row.status != ApprovalStatus.PENDING.value:
            raise ValidationError(f"approval request {row.id} is {row.status}; only a pending request can be rejected")
    with transaction(session_factory) as session:
        row = _claim(session, approval_id, ApprovalStatus.REJECTED, actor, now)
        row.decision_note = ("withdrawn by the requester: " if withdrawn else "") + text
        audit.record(session, actor, "approval_reject", f"approval:{row.id}",
                     details={"kind": row.kind, "role": row.role, "target_user_id": row.target_user_id,
                              "withdrawn": withdrawn, "reason": text[:400]}, at=now)  # fmt: skip
        return _info(session, row)


def list_approvals(
    session_factory: sessionmaker[Session],
    actor: Actor,
    *,
    status: str | None = ApprovalStatus.PENDING.value,
    clock: Clock = utcnow,
) -> list[ApprovalInfo]:
    """Approval requests of the actor's agency (administrators, supervisors, training officers), newest first.

    A system operator sees, across agencies, the pending requests that only the bootstrap form can decide.
    """
    if status is not None and status not in {s.value for s in ApprovalStatus}:
        raise ValidationError(f"unknown status {status!r}: choose from {', '.join(s.value for s in ApprovalStatus)}")
    now = as_utc(clock())
    with transaction(session_factory) as session:
        _expire_due(session, now)
    own = allowed(actor, Action.VIEW_USERS, actor.agency_id)
    bootstrap = allowed(actor, Action.APPROVE_ACCESS_BOOTSTRAP)
    if not own and not bootstrap:
        enforce(session_factory, actor, Action.VIEW_USERS, "approvals", actor.agency_id)
    out: list[ApprovalInfo] = []
    with session_factory() as session:
        query = select(AccessApproval).order_by(AccessApproval.id.desc())
        if status is not None:
            query = query.where(AccessApproval.status == status)
        for row in session.scalars(query):
            mine = own and row.agency_id == actor.agency_id
            if mine or (bootstrap and row.status == ApprovalStatus.PENDING.value and _bootstraps_approver(row)
                        and not _eligible_approvers(session, row)):
                out.append(_info(session, row))
    return out


# --- applying ---------------------------------------------------------------------------------------------------


def _apply(session: Session, actor: Actor, row: AccessApproval, now: datetime) -> str:
    """Make the approved change (in the caller's transaction) and audit it; returns a short result reference."""
    user = session.get(User, row.target_user_id)
    if user is None:
        raise NotFound(f"the user of approval request {row.id} no longer exists")
    ref = f"user:{user.id}"
    if row.kind == ApprovalKind.GRANT_ROLE.value:
        assert row.role is not None
        if not user.active:
            raise ValidationError(f"{user.username} is deactivated; reactivate the account before granting roles")
        if any(grant.role == row.role for grant in user.role_grants):
            return "already held"
        session.add(RoleGrant(user_id=user.id, role=row.role, granted_by=row.requested_by, granted_at=now))
        audit.record(session, actor, audit.AuditAction.PERMISSION_CHANGE, ref,
                     details={"change": "grant_role", "role": row.role, "username": user.username,
                              "approval_id": row.id}, at=now)  # fmt: skip
        return f"role:{row.role}"
    if row.kind == ApprovalKind.CERTIFY.value:
        assert row.cert_expires_at is not None
        if as_utc(row.cert_expires_at) <= now:
            raise ValidationError("the certification's expiry date has passed; record a new certification")
        cert = Certification(user_id=user.id, reference=row.cert_reference, issued_at=now,
                             expires_at=as_utc(row.cert_expires_at), issued_by=row.requested_by)
        session.add(cert)
        session.flush()
        audit.record(session, actor, audit.AuditAction.PERMISSION_CHANGE, ref,
                     details={"change": "certify", "certification_id": cert.id,
                              "expires": as_utc(row.cert_expires_at).isoformat(), "reference": row.cert_reference,
                              "approval_id": row.id}, at=now)  # fmt: skip
        return f"certification:{cert.id}"
    if row.kind == ApprovalKind.RESET_PASSWORD.value:
        if not row.password_hash:
            raise ValidationError(f"approval request {row.id} holds no password any more")
        user.password_hash = row.password_hash
        user.password_changed_at = now
        ended = revoke_user_sessions(session, user.id, now)
        audit.record(session, actor, audit.AuditAction.PERMISSION_CHANGE, ref,
                     details={"change": "reset_password", "sessions_ended": ended, "approval_id": row.id},
                     at=now)  # fmt: skip
        return "password"
    if row.kind == ApprovalKind.RESET_TOTP.value:
        clear_totp(session, user)
        ended = revoke_user_sessions(session, user.id, now)
        audit.record(session, actor, audit.AuditAction.PERMISSION_CHANGE, ref,
                     details={"change": "reset_totp", "sessions_ended": ended, "approval_id": row.id},
                     at=now)  # fmt: skip
        return "totp"
    raise ValidationError(f"unknown approval kind {row.kind!r}")


def clear_totp(session: Session, user: User) -> None:
    """Remove a user's TOTP secret and recovery codes (they enrol again)."""
    user.totp_enabled = False
    user.totp_secret_enc = None
    user.totp_last_step = None
    for code in session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)):
        session.delete(code)
