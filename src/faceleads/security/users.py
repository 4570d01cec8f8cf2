"""Administration of agencies, users, roles and certifications, and each user's own account (password, TOTP).

Every function takes a session factory and the acting :class:`Actor`, asks the central policy
(:func:`faceleads.core.policy.enforce`, which audits refusals), does its work in one transaction and audits it
in that same transaction, so that a change and its audit entry commit together.

Separation of duties: nobody changes their own roles or certifications (an administrator cannot make themselves an
analyst and so reach biometric content), and administrators act only on users of their own agency. A change that
gives someone access to biometric content — a biometric role, a certification, a password or second-factor reset of
a biometric user — is only *requested* here and waits for a second person's approval
(:mod:`faceleads.security.approvals`); nobody certifies a user whose account they created. Agencies are created by a
system operator, each with its first administrator; only system operators grant the system-level roles
(``system_operator``, ``oversight``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from faceleads import identifiers
from faceleads.config import Settings, get_settings
from faceleads.core import audit
from faceleads.core.actor import Actor, Role
from faceleads.core.policy import SYSTEM_ROLES, Action, biometric_roles, enforce
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import NotFound, PermissionDenied, ValidationError
from faceleads.security import approvals, passwords, totp
from faceleads.security.approvals import ApprovalInfo
from faceleads.security.auth import ENROLMENT_FACTOR, Clock, actor_for_user, as_utc, revoke_user_sessions
from faceleads.security.models import ApprovalKind, RecoveryCode, RoleGrant, User
from faceleads.storage.crypto import load_master_key


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    """Role names to roles; ValidationError naming an unknown one."""
    roles = set()
    for name in names:
        try:
            roles.add(Role(name.strip().lower().replace("-", "_").replace(" ", "_")))
        except ValueError:
            raise ValidationError(f"unknown role {name!r}: choose from {', '.join(r.value for r in Role)}") from None
    return frozenset(roles)


def _user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == identifiers.username(username))).first()
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def agency_by_code(session: Session, code: str) -> Agency:
    """The agency with ``code``; NotFound otherwise."""
    agency = session.scalars(select(Agency).where(Agency.code == identifiers.agency_code(code))).first()
    if agency is None:
        raise NotFound(f"no agency with code {code!r}")
    return agency


def _target_agency_id(session_factory: sessionmaker[Session], username: str) -> int:
    """The agency of the user an admin action is about (looked up before the policy decision)."""
    with session_factory() as session:
        return _user(session, username).agency_id


def _not_self(actor: Actor, username: str, what: str) -> None:
    # Compared in normal form: a look-alike spelling of one's own name is still oneself.
    if actor.username == identifiers.username(username):
        raise PermissionDenied(f"nobody may {what} themselves; another administrator must do it")


@dataclass(frozen=True)
class Change:
    """The result of an administration request: applied now, unchanged, or waiting for a second person."""

    done: bool
    message: str
    approvals: tuple[ApprovalInfo, ...] = ()  # the requests now waiting for a second person
    ref: int | None = None  # e.g. the new user's id

    @property
    def pending(self) -> bool:
        return bool(self.approvals)

    def to_json(self) -> dict[str, object]:
        return {"done": self.done, "pending": self.pending, "message": self.message, "id": self.ref,
                "approvals": [a.to_json() for a in self.approvals]}


def _pending(approval: ApprovalInfo) -> Change:
    return Change(False, f"waiting for a second person's approval (request {approval.id}): {approval.description}",
                  (approval,))


def _holds_biometric_role(user: User) -> bool:
    bio = {r.value for r in biometric_roles()}
    return any(grant.role in bio for grant in user.role_grants)


@dataclass(frozen=True)
class UserInfo:
    """What administration screens show about a user (never secrets)."""

    id: int
    username: str
    display_name: str
    agency_code: str
    roles: tuple[str, ...]
    effective_roles: tuple[str, ...]
    active: bool
    locked_until: datetime | None
    totp_enabled: bool
    certified_until: datetime | None


# --- agencies and users ----------------------------------------------------------------------------------------


def bootstrap(
    session_factory: sessionmaker[Session], agency_code: str, agency_name: str, username: str, password: str
) -> int:
    """Create the first agency and its first user, administrator and system operator; refused once any user exists.
    Returns the user id.

    Whoever runs it has the data directory (database, master key): they are the installation's root of trust. The
    roles given here reach no biometric content.
    """
    agency_code = _check_agency_code(agency_code)
    username = _check_username(username)
    passwords.check_password_rules(password, username=username)
    with transaction(session_factory) as session:
        if session.scalar(select(func.count()).select_from(User)):
            raise PermissionDenied("the system is already set up: bootstrap only creates the very first user")
        agency = session.scalars(select(Agency).where(Agency.code == agency_code)).first()
        if agency is None:
            agency = Agency(code=agency_code, name=agency_name)
            session.add(agency)
            session.flush()
        user = User(agency_id=agency.id, username=username, password_hash=passwords.hash_password(password))
        session.add(user)
        session.flush()
        session.add(RoleGrant(user_id=user.id, role=Role.ADMINISTRATOR.value))
        session.add(RoleGrant(user_id=user.id, role=Role.SYSTEM_OPERATOR.value))
        audit.record(
            session, None, "bootstrap", f"user:{user.id}",
            details={"agency_code": agency_code, "username": username,
                     "roles": f"{Role.ADMINISTRATOR.value},{Role.SYSTEM_OPERATOR.value}"},
        )  # fmt: skip
        return user.id


def _check_agency_code(code: str) -> str:
    """The agency code in its normal form (:mod:`faceleads.identifiers`)."""
    return identifiers.agency_code(code)


def _check_username(username: str) -> str:
    """The username in its normal form (:mod:`faceleads.identifiers`)."""
    return identifiers.username(username)


@dataclass(frozen=True)
class AgencyInfo:
    id: int
    code: str
    name: str
    first_admin: str | None = None


def create_agency(
    session_factory: sessionmaker[Session],
    actor: Actor,
    code: str,
    name: str,
    *,
    admin_username: str,
    admin_password: str,
    admin_display_name: str = "",
) -> AgencyInfo:
    """Create an agency with its first administrator (system operators); both in one audited transaction.

    The first administrator holds no biometric role: the agency's first supervisor is approved by a second person
    (a system operator other than the one who created the agency, while the agency has no approver of its own).
    """
    enforce(session_factory, actor, Action.ADMIN_AGENCIES, f"agency:{str(code)[:32]}")
    code = _check_agency_code(code)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ValidationError("agency name must be 1-200 characters")
    admin_username = _check_username(admin_username)
    admin_display_name = identifiers.free_text(str(admin_display_name or "").strip(), "display name")
    passwords.check_password_rules(admin_password, username=admin_username)
    with transaction(session_factory) as session:
        if session.scalars(select(Agency).where(Agency.code == code)).first() is not None:
            raise ValidationError(f"an agency with code {code!r} already exists")
        if session.scalars(select(User).where(User.username == admin_username)).first() is not None:
            raise ValidationError(f"username {admin_username!r} is already taken")
        agency = Agency(code=code, name=name.strip())
        session.add(agency)
        session.flush()
        user = User(agency_id=agency.id, username=admin_username, display_name=admin_display_name[:200],
                    password_hash=passwords.hash_password(admin_password), created_by=actor.user_id)
        session.add(user)
        session.flush()
        session.add(RoleGrant(user_id=user.id, role=Role.ADMINISTRATOR.value, granted_by=actor.user_id))
        audit.record(session, actor, "agency_create", f"agency:{agency.id}",
                     details={"code": code, "name": name.strip()[:200], "first_admin": admin_username,
                              "first_admin_user_id": user.id})  # fmt: skip
        return AgencyInfo(agency.id, code, agency.name, admin_username)


def list_agencies(session_factory: sessionmaker[Session], actor: Actor) -> list[AgencyInfo]:
    """Every agency (system operators)."""
    enforce(session_factory, actor, Action.ADMIN_AGENCIES, "agencies")
    with session_factory() as session:
        return [AgencyInfo(a.id, a.code, a.name) for a in session.scalars(select(Agency).order_by(Agency.code))]


def create_user(
    session_factory: sessionmaker[Session],
    actor: Actor,
    agency_code: str,
    username: str,
    password: str,
    *,
    display_name: str = "",
    roles: Iterable[str] = (),
) -> Change:
    """Create a user in ``agency_code`` (the administrator's own agency) with initial roles.

    Roles that reach no biometric content are granted at once; each biometric role becomes a request waiting for a
    second person's approval (its :class:`ApprovalInfo` is in the message). ``Change.ref`` is the new user's id.
    """
    username = _check_username(username)
    agency_code = _check_agency_code(agency_code)
    display_name = identifiers.free_text(display_name.strip(), "display name")
    with session_factory() as session:
        agency_id = agency_by_code(session, agency_code).id
    enforce(session_factory, actor, Action.ADMIN_USERS, f"user:{username}", agency_id)
    role_set = parse_roles(roles)
    if role_set:
        enforce(session_factory, actor, Action.ADMIN_ROLES, f"user:{username}", agency_id)
    if role_set & SYSTEM_ROLES:
        enforce(session_factory, actor, Action.ADMIN_SYSTEM_ROLES, f"user:{username}")
    passwords.check_password_rules(password, username=username)
    bio = biometric_roles()
    with transaction(session_factory) as session:
        if session.scalars(select(User).where(User.username == username)).first() is not None:
            raise ValidationError(f"username {username!r} is already taken")
        user = User(
            agency_id=agency_id,
            username=username,
            display_name=display_name[:200],
            password_hash=passwords.hash_password(password),
            created_by=actor.user_id,
        )
        session.add(user)
        session.flush()
        granted = sorted(r.value for r in role_set - bio)
        for role in granted:
            session.add(RoleGrant(user_id=user.id, role=role, granted_by=actor.user_id))
        audit.record(
            session, actor, "user_create", f"user:{user.id}",
            details={"username": username, "agency_code": agency_code, "roles": ",".join(granted),
                     "roles_pending_approval": ",".join(sorted(r.value for r in role_set & bio))},
        )  # fmt: skip
        session.flush()
        pending = [approvals.request(session, actor, ApprovalKind.GRANT_ROLE, user, role=role)
                   for role in sorted(role_set & bio)]
        message = f"created user {username!r} (id {user.id})"
        if granted:
            message += f" with role(s) {', '.join(granted)}"
        if pending:
            message += "; waiting for a second person's approval: " + "; ".join(
                f"request {a.id} ({a.role})" for a in pending)
        return Change(True, message, tuple(pending), user.id)


def _authorise_role_change(session_factory: sessionmaker[Session], actor: Actor, username: str, role: Role) -> None:
    """System roles are granted by system operators (any agency); other roles by the user's agency's admins."""
    if role in SYSTEM_ROLES:
        enforce(session_factory, actor, Action.ADMIN_SYSTEM_ROLES, f"user:{username}")
        with session_factory() as session:
            _user(session, username)
    else:
        enforce(session_factory, actor, Action.ADMIN_ROLES, f"user:{username}",
                _target_agency_id(session_factory, username))


def grant_role(session_factory: sessionmaker[Session], actor: Actor, username: str, role: str) -> Change:
    """Grant a role. A role reaching biometric content is only requested: a second person approves it."""
    (parsed,) = parse_roles([role])
    _authorise_role_change(session_factory, actor, username, parsed)
    _not_self(actor, username, "change the roles of")
    with transaction(session_factory) as session:
        user = _user(session, username)
        if any(grant.role == parsed.value for grant in user.role_grants):
            return Change(False, f"{username} already holds {parsed.value}")
        if parsed in biometric_roles():
            return _pending(approvals.request(session, actor, ApprovalKind.GRANT_ROLE, user, role=parsed))
        session.add(RoleGrant(user_id=user.id, role=parsed.value, granted_by=actor.user_id))
        audit.record(
            session, actor, audit.AuditAction.PERMISSION_CHANGE, f"user:{user.id}",
            details={"change": "grant_role", "role": parsed.value, "username": user.username},
        )  # fmt: skip
        return Change(True, f"granted {parsed.value} to {username}")


def revoke_role(session_factory: sessionmaker[Session], actor: Actor, username: str, role: str) -> bool:
    """Revoke a role (at once: taking access away needs no second person); False when the user did not hold it."""
    (parsed,) = parse_roles([role])
    _authorise_role_change(session_factory, actor, username, parsed)
    _not_self(actor, username, "change the roles of")
    with transaction(session_factory) as session:
        user = _user(session, username)
        grant = next((g for g in user.role_grants if g.role == parsed.value), None)
        if grant is None:
            return False
        user.role_grants.remove(grant)
        audit.record(
            session, actor, audit.AuditAction.PERMISSION_CHANGE, f"user:{user.id}",
            details={"change": "revoke_role", "role": parsed.value, "username": user.username},
        )  # fmt: skip
        return True


def certify(
    session_factory: sessionmaker[Session],
    actor: Actor,
    username: str,
    expires_at: datetime,
    *,
    reference: str = "",
    clock: Clock = utcnow,
) -> Change:
    """Record a facial-comparison certification valid until ``expires_at`` (training officers). It takes effect once
    a second person approves it; nobody certifies themselves or a user whose account they created."""
    enforce(
        session_factory, actor, Action.ADMIN_CERTIFICATIONS, f"user:{username}",
        _target_agency_id(session_factory, username),
    )  # fmt: skip
    _not_self(actor, username, "certify")
    now = as_utc(clock())
    expires_at = as_utc(expires_at)
    if expires_at <= now:
        raise ValidationError(f"certification expiry {expires_at:%Y-%m-%d} is not in the future")
    with transaction(session_factory) as session:
        user = _user(session, username)
        if user.created_by is not None and user.created_by == actor.user_id:
            reason = f"you created {username}'s account: another person records its certification"
            audit.record_now(session_factory, actor, audit.AuditAction.PERMISSION_CHANGE, f"user:{user.id}",
                             audit.Outcome.DENIED, details={"change": "certify", "reason": reason})
            raise PermissionDenied(reason)
        return _pending(approvals.request(session, actor, ApprovalKind.CERTIFY, user, cert_expires_at=expires_at,
                                          cert_reference=reference[:200], now=now))


def revoke_certifications(
    session_factory: sessionmaker[Session], actor: Actor, username: str, *, clock: Clock = utcnow
) -> int:
    """Revoke every current certification of a user (e.g. failed proficiency test); returns how many."""
    enforce(
        session_factory, actor, Action.ADMIN_CERTIFICATIONS, f"user:{username}",
        _target_agency_id(session_factory, username),
    )  # fmt: skip
    _not_self(actor, username, "revoke the certification of")
    now = as_utc(clock())
    with transaction(session_factory) as session:
        user = _user(session, username)
        count = 0
        for cert in user.certifications:
            if cert.revoked_at is None:
                cert.revoked_at = now
                count += 1
        audit.record(
            session, actor, audit.AuditAction.PERMISSION_CHANGE, f"user:{user.id}",
            details={"change": "revoke_certifications", "count": count},
        )  # fmt: skip
        return count


def reset_password(
    session_factory: sessionmaker[Session], actor: Actor, username: str, new_password: str
) -> Change:
    """Set a new password for a user (their sessions end); tell them out of band. For a user holding a biometric
    role it is only requested: it takes effect (and the old password stops working) once a second person
    approves."""
    enforce(
        session_factory,
        actor,
        Action.ADMIN_USERS,
        f"user:{username}",
        _target_agency_id(session_factory, username),
    )
    _not_self(actor, username, "reset the password of")
    passwords.check_password_rules(new_password, username=username)
    new_hash = passwords.hash_password(new_password)
    with transaction(session_factory) as session:
        user = _user(session, username)
        if _holds_biometric_role(user):
            return _pending(approvals.request(session, actor, ApprovalKind.RESET_PASSWORD, user,
                                              password_hash=new_hash))
        user.password_hash = new_hash
        user.password_changed_at = utcnow()
        ended = revoke_user_sessions(session, user.id)
        audit.record(
            session, actor, audit.AuditAction.PERMISSION_CHANGE, f"user:{user.id}",
            details={"change": "reset_password", "sessions_ended": ended},
        )  # fmt: skip
        return Change(True, f"password of {username} reset; their sessions were ended")


def unlock(session_factory: sessionmaker[Session], actor: Actor, username: str) -> None:
    """Lift a lockout and reset the failure counter."""
    enforce(
        session_factory,
        actor,
        Action.ADMIN_USERS,
        f"user:{username}",
        _target_agency_id(session_factory, username),
    )
    with transaction(session_factory) as session:
        user = _user(session, username)
        user.locked_until = None
        user.failed_attempts = 0
        audit.record(session, actor, "account_unlock", f"user:{user.id}", details={"username": user.username})


def set_active(session_factory: sessionmaker[Session], actor: Actor, username: str, active: bool) -> None:
    """Deactivate (sessions end, sign-in refused) or reactivate a user. Users are never deleted: the audit trail
    refers to them."""
    enforce(
        session_factory,
        actor,
        Action.ADMIN_USERS,
        f"user:{username}",
        _target_agency_id(session_factory, username),
    )
    _not_self(actor, username, "deactivate or reactivate")
    with transaction(session_factory) as session:
        user = _user(session, username)
        user.active = active
        ended = 0 if active else revoke_user_sessions(session, user.id)
        audit.record(
            session, actor, audit.AuditAction.PERMISSION_CHANGE, f"user:{user.id}",
            details={"change": "activate" if active else "deactivate", "sessions_ended": ended},
        )  # fmt: skip


def reset_totp(session_factory: sessionmaker[Session], actor: Actor, username: str) -> Change:
    """Remove a user's TOTP and recovery codes (lost device); they enrol again at next sign-in. For a user holding a
    biometric role it is only requested: a second person approves it."""
    enforce(
        session_factory,
        actor,
        Action.ADMIN_USERS,
        f"user:{username}",
        _target_agency_id(session_factory, username),
    )
    _not_self(actor, username, "reset the second factor of")
    with transaction(session_factory) as session:
        user = _user(session, username)
        if _holds_biometric_role(user):
            return _pending(approvals.request(session, actor, ApprovalKind.RESET_TOTP, user))
        approvals.clear_totp(session, user)
        ended = revoke_user_sessions(session, user.id)
        audit.record(
            session, actor, audit.AuditAction.PERMISSION_CHANGE, f"user:{user.id}",
            details={"change": "reset_totp", "sessions_ended": ended},
        )  # fmt: skip
        return Change(True, f"TOTP removed for {username}")


def _user_info(session: Session, user: User, now: datetime) -> UserInfo:
    effective = actor_for_user(session, user, now)
    expiries = [as_utc(c.expires_at) for c in user.certifications if c.revoked_at is None]
    return UserInfo(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        agency_code=effective.agency_code,
        roles=tuple(sorted(g.role for g in user.role_grants)),
        effective_roles=tuple(sorted(effective.roles)),
        active=user.active,
        locked_until=as_utc(user.locked_until) if user.locked_until else None,
        totp_enabled=user.totp_enabled,
        certified_until=max(expiries) if expiries else None,
    )


def list_users(session_factory: sessionmaker[Session], actor: Actor, *, clock: Clock = utcnow) -> list[UserInfo]:
    """The users of the actor's own agency."""
    enforce(session_factory, actor, Action.VIEW_USERS, f"agency:{actor.agency_id}/users", actor.agency_id)
    now = as_utc(clock())
    with session_factory() as session:
        return [_user_info(session, user, now) for user in
                session.scalars(select(User).where(User.agency_id == actor.agency_id).order_by(User.username))]


def own_account(session_factory: sessionmaker[Session], actor: Actor, *, clock: Clock = utcnow) -> UserInfo:
    """The actor's own account (roles, certification, whether TOTP is on); never secrets."""
    enforce(session_factory, actor, Action.MANAGE_OWN_ACCOUNT, f"user:{actor.user_id}")
    with session_factory() as session:
        return _user_info(session, _user(session, actor.username), as_utc(clock()))


# --- own account -----------------------------------------------------------------------------------------------


def change_own_password(
    session_factory: sessionmaker[Session], actor: Actor, old_password: str, new_password: str
) -> None:
    """Change the actor's own password (needs the old one). Other sessions stay open."""
    enforce(session_factory, actor, Action.MANAGE_OWN_ACCOUNT, f"user:{actor.user_id}")
    passwords.check_password_rules(new_password, username=actor.username)
    with transaction(session_factory) as session:
        user = _user(session, actor.username)
        if not passwords.verify_password(user.password_hash, old_password):
            raise PermissionDenied("the current password is wrong")
        user.password_hash = passwords.hash_password(new_password)
        user.password_changed_at = utcnow()
        audit.record(session, actor, "password_change", f"user:{user.id}")


@dataclass(frozen=True)
class TotpEnrolment:
    """What the user needs to add the account to an authenticator app."""

    secret: str
    uri: str
    qr_png: bytes


def begin_totp_enrolment(
    session_factory: sessionmaker[Session],
    actor: Actor,
    master_key: bytes | None = None,
    *,
    settings: Settings | None = None,
) -> TotpEnrolment:
    """Store a new (not yet active) TOTP secret for the actor and return it with its QR code.

    ``master_key`` seals the secret; by default the installation's (``settings``).

    Refused when TOTP is already enabled (an administrator resets it first), so that a stolen session cannot
    silently replace the second factor.
    """
    enforce(session_factory, actor, Action.MANAGE_OWN_ACCOUNT, f"user:{actor.user_id}")
    secret = totp.new_secret()
    with transaction(session_factory) as session:
        user = _user(session, actor.username)
        if user.totp_enabled:
            raise ValidationError("TOTP is already enabled; an administrator must reset it before re-enrolling")
        key = master_key if master_key is not None else load_master_key(settings or get_settings())
        user.totp_secret_enc = totp.seal_secret(key, user.id, secret)
        user.totp_last_step = None
        audit.record(session, actor, "totp_enrol_begin", f"user:{user.id}")
    uri = totp.provisioning_uri(secret, actor.username, actor.agency_code or str(actor.agency_id))
    return TotpEnrolment(secret=secret, uri=uri, qr_png=totp.qr_png(uri))


def confirm_totp_enrolment(
    session_factory: sessionmaker[Session],
    actor: Actor,
    code: str,
    master_key: bytes | None = None,
    *,
    clock: Clock = utcnow,
    settings: Settings | None = None,
) -> list[str]:
    """Enable TOTP once the user proves their app shows the right code; returns the recovery codes (shown once)."""
    enforce(session_factory, actor, Action.MANAGE_OWN_ACCOUNT, f"user:{actor.user_id}")
    now = as_utc(clock())
    with transaction(session_factory) as session:
        user = _user(session, actor.username)
        if user.totp_enabled:
            raise ValidationError("TOTP is already enabled")
        if user.totp_secret_enc is None:
            raise ValidationError("no TOTP enrolment in progress: run 'faceleads account totp-enrol' first")
        key = master_key if master_key is not None else load_master_key(settings or get_settings())
        secret = totp.open_secret(key, user.id, user.totp_secret_enc)
        step = totp.match_step(secret, code, now)
        if step is None:
            raise ValidationError("the code does not match: check the authenticator app's clock and try again")
        user.totp_enabled = True
        user.totp_last_step = step
        codes = _replace_recovery_codes(session, user, now)
        # The enrolment-only sessions have done their job: the user signs in again with a code.
        ended = revoke_user_sessions(session, user.id, now, only_factor=ENROLMENT_FACTOR)
        audit.record(session, actor, "totp_enabled", f"user:{user.id}",
                     details={"recovery_codes": len(codes), "enrolment_sessions_ended": ended})
        return codes


def regenerate_recovery_codes(
    session_factory: sessionmaker[Session], actor: Actor, *, clock: Clock = utcnow
) -> list[str]:
    """Replace the actor's recovery codes with fresh ones (the old ones stop working)."""
    enforce(session_factory, actor, Action.MANAGE_OWN_ACCOUNT, f"user:{actor.user_id}")
    with transaction(session_factory) as session:
        user = _user(session, actor.username)
        if not user.totp_enabled:
            raise ValidationError("recovery codes exist only once TOTP is enabled")
        codes = _replace_recovery_codes(session, user, as_utc(clock()))
        audit.record(session, actor, "recovery_codes_regenerated", f"user:{user.id}")
        return codes


def _replace_recovery_codes(session: Session, user: User, now: datetime) -> list[str]:
    for old in session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)):
        session.delete(old)
    codes = totp.new_recovery_codes()
    for code in codes:
        session.add(RecoveryCode(user_id=user.id, code_hash=totp.hash_recovery_code(code), created_at=now))
    return codes
