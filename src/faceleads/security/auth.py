"""Sign-in, lockout and sessions.

- :func:`authenticate` checks username, password (argon2id) and, when the user enrolled TOTP, a TOTP code or a
  single-use recovery code, and returns a new session token. Every attempt is audited, success or failure.
- After ``lockout_threshold`` (5) consecutive failures the account is locked for ``lockout_minutes`` (15) or until
  an administrator unlocks it; while locked even the right password is refused (and audited as denied).
- Sessions expire after ``session_idle_minutes`` (30) without use (sliding) and in any case ``session_max_hours``
  (12) after sign-in. Only the SHA-256 of the token is stored.
- :func:`actor_for_session` turns a token into the :class:`Actor` every policy decision is made for; analysts and
  reviewers whose certification has expired lose those two roles there.
- Roles that require a second factor (:func:`totp_required_roles`; in production every role that reaches
  biometric content): a user holding one without TOTP enrolled is refused at sign-in with
  :class:`SecondFactorEnrolmentRequired`, which carries a short-lived *enrolment session* that can only manage the
  user's own account. A session is never worth more than its second factor: an existing session without one acts
  with no role once such a role applies.

Time comes from an injectable ``clock`` so that expiry is tested without sleeping.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from faceleads import identifiers
from faceleads.config import Settings, get_settings
from faceleads.core import audit
from faceleads.core.actor import Actor, Role
from faceleads.core.policy import biometric_roles
from faceleads.core.uow import transaction
from faceleads.db import Agency, utcnow
from faceleads.errors import (
    AuthenticationError,
    ConfigurationError,
    SecondFactorEnrolmentRequired,
    TooManyRequests,
    ValidationError,
)
from faceleads.security import passwords, totp
from faceleads.security.models import AuthSession, Certification, RecoveryCode, User
from faceleads.security.throttle import SignInLimiter

Clock = Callable[[], datetime]

# Roles that exist only for certified examiners: without a valid certification they are not effective.
CERTIFIED_ROLES: frozenset[Role] = frozenset({Role.ANALYST, Role.REVIEWER})
_LAST_SEEN_GRANULARITY = timedelta(seconds=60)  # avoid a database write on every request
ENROLMENT_FACTOR = "enrolment"  # AuthSession.second_factor of an enrolment-only session
ENROLMENT_MINUTES = 15
TOTP_ENROL_HINT = (
    "enrol a TOTP second factor first: 'faceleads account totp-enrol' then 'faceleads account totp-confirm CODE' "
    "(API: POST /api/v1/account/totp/enrol and /confirm with the enrolment token), then sign in again with a code"
)


def totp_required_roles(settings: Settings) -> frozenset[Role]:
    """The roles that may sign in only with TOTP enrolled (``Settings.totp_required_roles``; by default every
    biometric role in production, none in dev mode)."""
    if settings.totp_required_roles is not None:
        try:
            return frozenset(Role(name) for name in settings.totp_required_roles)
        except ValueError:
            raise ConfigurationError(
                f"FACELEADS_TOTP_REQUIRED_ROLES names an unknown role ({', '.join(settings.totp_required_roles)}): "
                f"choose from {', '.join(r.value for r in Role)}"
            ) from None
    return frozenset() if settings.is_dev else biometric_roles()


def _roles_needing_totp(user: User, settings: Settings) -> list[str]:
    """The user's granted roles that require a second factor (empty when TOTP is enrolled)."""
    if user.totp_enabled:
        return []
    required = totp_required_roles(settings)
    return sorted(grant.role for grant in user.role_grants if grant.role in required)


def as_utc(moment: datetime) -> datetime:
    """A timezone-aware UTC datetime (SQLite returns naive values for UTC columns)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def hash_token(token: str) -> str:
    """What the database stores for a session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def has_valid_certification(session: Session, user_id: int, now: datetime) -> bool:
    """Whether the user holds an unrevoked certification that has not expired at ``now``."""
    for cert in session.scalars(select(Certification).where(Certification.user_id == user_id)):
        if cert.revoked_at is None and as_utc(cert.expires_at) > now:
            return True
    return False


def actor_for_user(session: Session, user: User, now: datetime | None = None) -> Actor:
    """The effective identity of ``user`` at ``now``: granted roles minus analyst/reviewer when uncertified."""
    now = as_utc(now or utcnow())
    roles = {Role(grant.role) for grant in user.role_grants}
    if roles & CERTIFIED_ROLES and not has_valid_certification(session, user.id, now):
        roles -= CERTIFIED_ROLES
    agency = session.get(Agency, user.agency_id)
    return Actor(
        username=user.username,
        agency_id=user.agency_id,
        roles=frozenset(roles),
        user_id=user.id,
        agency_code=agency.code if agency else "",
    )


def actor_for_user_id(session: Session, user_id: int) -> Actor | None:
    """The effective identity of the active user ``user_id`` now, or None (unknown or deactivated).

    Background work submitted by a user (a queued bulk-enrolment job) runs as that user as they are *now*: a user
    deactivated, or who lost a role, since submitting is refused by the work's own authorisation.
    """
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    return actor_for_user(session, user)


@dataclass(frozen=True)
class SignIn:
    """A successful sign-in: the bearer token (shown once) and who signed in."""

    token: str
    actor: Actor
    expires_at: datetime
    second_factor: str


def _check_second_factor(
    session: Session,
    user: User,
    code: str | None,
    now: datetime,
    master_key: bytes | None,
    settings: Settings,
) -> tuple[str | None, str]:
    """(failure reason or None, factor used). Marks the TOTP step or recovery code as used on success."""
    if not user.totp_enabled:
        return None, "none"
    if not code or not code.strip():
        return "second factor missing", "none"
    if totp.looks_like_recovery_code(code):
        digest = totp.hash_recovery_code(code)
        row = session.scalars(
            select(RecoveryCode).where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == digest,
                RecoveryCode.used_at.is_(None),
            )
        ).first()
        if row is None:
            return "recovery code wrong or already used", "recovery"
        row.used_at = now
        return None, "recovery"
    if user.totp_secret_enc is None:
        return "TOTP enabled but no secret stored", "totp"
    from faceleads.storage.crypto import load_master_key

    key = master_key if master_key is not None else load_master_key(settings)
    secret = totp.open_secret(key, user.id, user.totp_secret_enc)
    step = totp.match_step(secret, code, now, last_step=user.totp_last_step)
    if step is None:
        return "TOTP code wrong, expired or already used", "totp"
    user.totp_last_step = step
    return None, "totp"


#: The one answer to every refused sign-in: an unknown user, a wrong password or second factor, a locked or a
#: deactivated account all read the same, so that the answer does not tell which usernames exist or which are
#: locked. The audit entry records the actual reason.
SIGN_IN_REFUSED = (
    "sign-in refused: wrong username, password or second factor, or the account is locked after repeated "
    "failures (it unlocks by itself after a while, or an administrator unlocks it)"
)


def authenticate(
    session_factory: sessionmaker[Session],
    username: str,
    password: str,
    second_factor: str | None = None,
    *,
    settings: Settings | None = None,
    master_key: bytes | None = None,
    clock: Clock = utcnow,
    client: str = "cli",
    limiter: SignInLimiter | None = None,
    address: str | None = None,
) -> SignIn:
    """Sign a user in and return a new session token; raise :class:`AuthenticationError` otherwise.

    Failures are committed (counter, lockout, audit entry) before the error is raised. Every failure raises the
    same :data:`SIGN_IN_REFUSED` message after the same work — exactly one argon2id verification, against the
    account's hash or, for an unknown username, a dummy hash — so neither the message nor the time taken tells an
    unknown user from a wrong password, a locked or a deactivated account. Only the audit entry has the reason.

    The one distinct answer is :class:`SecondFactorEnrolmentRequired` (a role of the user requires TOTP and none is
    enrolled). It is given only after the same single verification found the password right on an active, unlocked
    account, so it reveals nothing to someone who does not already hold the password; it carries a short session
    that can do nothing but enrol the second factor (the web's account page, ``faceleads account totp-enrol``).
    With a ``limiter`` (the web app's), an attempt from ``address`` beyond its rate is refused with
    :class:`TooManyRequests` before any check (the same answer for every username), and the refusal is audited too.
    """
    settings = settings or get_settings()
    now = as_utc(clock())
    if limiter is not None:
        try:
            limiter.check(address or client, username if isinstance(username, str) else "")
        except TooManyRequests:
            audit.record_now(
                session_factory, None, audit.AuditAction.LOGIN, "user:(throttled)", audit.Outcome.DENIED,
                details={"attempted_username": str(username)[:150], "reason": "rate limited", "client": client[:100]},
                at=now,
            )  # fmt: skip
            raise
    failure = False
    result: SignIn | None = None
    enrolment: SecondFactorEnrolmentRequired | None = None
    try:
        lookup: str | None = identifiers.username(username)
    except ValidationError:
        lookup = None  # cannot exist; answered exactly like an unknown username
    with transaction(session_factory) as session:
        user = session.scalars(select(User).where(User.username == lookup)).first() if lookup else None
        if user is None:
            passwords.burn_time(password)
            audit.record(
                session,
                None,
                audit.AuditAction.LOGIN,
                "user:(unknown)",
                audit.Outcome.FAILED,
                details={
                    "attempted_username": username[:150],
                    "reason": "unknown user",
                    "client": client[:100],
                },
                at=now,
            )
            failure = True
        else:
            actor = actor_for_user(session, user, now)
            ref = f"user:{user.id}"
            locked_until = as_utc(user.locked_until) if user.locked_until else None
            # The password is checked on every path, locked and deactivated accounts included: same work.
            password_ok = passwords.verify_password(user.password_hash, password)
            if not user.active:
                audit.record(
                    session, actor, audit.AuditAction.LOGIN, ref, audit.Outcome.DENIED,
                    details={"reason": "account deactivated", "client": client[:100]}, at=now,
                )  # fmt: skip
                failure = True
            elif locked_until is not None and locked_until > now:
                audit.record(
                    session, actor, audit.AuditAction.LOGIN, ref, audit.Outcome.DENIED,
                    details={"reason": "account locked", "locked_until": locked_until.isoformat(),
                             "client": client[:100]},
                    at=now,
                )  # fmt: skip
                failure = True
            else:
                reason: str | None = None
                factor = "none"
                # Only a right password on an active, unlocked account reaches the TOTP-required answer: it
                # tells nothing to someone who does not already hold the password (see authenticate's docstring).
                needing = _roles_needing_totp(user, settings) if password_ok else []
                if not password_ok:
                    reason = "wrong password"
                elif needing:
                    enrolment = _open_enrolment_session(session, user, actor, needing, now, client)
                else:
                    reason, factor = _check_second_factor(session, user, second_factor, now, master_key, settings)
                if reason is not None:
                    _record_failure(session, user, actor, reason, now, settings, client)
                    failure = True
                elif enrolment is None:
                    result = _open_session(session, user, actor, password, factor, now, settings, client)
    if failure:
        raise AuthenticationError(SIGN_IN_REFUSED)
    if enrolment is not None:
        raise enrolment
    assert result is not None
    return result


def _record_failure(
    session: Session, user: User, actor: Actor, reason: str, now: datetime, settings: Settings, client: str
) -> None:
    """Count a failed attempt, lock the account at the threshold, audit."""
    # Increment in SQL so that concurrent failures are all counted.
    session.execute(update(User).where(User.id == user.id).values(failed_attempts=User.failed_attempts + 1))
    session.refresh(user, ["failed_attempts"])
    attempts = user.failed_attempts
    audit.record(
        session, actor, audit.AuditAction.LOGIN, f"user:{user.id}", audit.Outcome.FAILED,
        details={"reason": reason, "consecutive_failures": attempts, "client": client[:100]}, at=now,
    )  # fmt: skip
    if attempts >= settings.lockout_threshold:
        user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
        user.failed_attempts = 0  # a fresh allowance once the lock ends
        audit.record(
            session, actor, "account_locked", f"user:{user.id}", audit.Outcome.OK,
            details={"consecutive_failures": attempts, "minutes": settings.lockout_minutes}, at=now,
        )  # fmt: skip


def _open_session(
    session: Session,
    user: User,
    actor: Actor,
    password: str,
    factor: str,
    now: datetime,
    settings: Settings,
    client: str,
) -> SignIn:
    user.failed_attempts = 0
    user.locked_until = None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    expires_at = now + timedelta(hours=settings.session_max_hours)
    token = _new_session(session, user, now, expires_at, client, factor)
    audit.record(
        session, actor, audit.AuditAction.LOGIN, f"user:{user.id}", audit.Outcome.OK,
        details={"second_factor": factor, "client": client[:100]}, at=now,
    )  # fmt: skip
    return SignIn(token=token, actor=actor, expires_at=expires_at, second_factor=factor)


def _new_session(session: Session, user: User, now: datetime, expires_at: datetime, client: str, factor: str) -> str:
    """Store a new session (only the token's SHA-256) and return the token."""
    token = secrets.token_urlsafe(32)
    session.add(AuthSession(token_hash=hash_token(token), user_id=user.id, created_at=now, last_seen_at=now,
                            expires_at=expires_at, client=client[:100], second_factor=factor))
    return token


def _open_enrolment_session(
    session: Session, user: User, actor: Actor, needing: list[str], now: datetime, client: str
) -> SecondFactorEnrolmentRequired:
    """Refuse the sign-in (audited) and open a short session that can only enrol the second factor."""
    user.failed_attempts = 0  # the password was right: this is not a failed attempt
    token = _new_session(session, user, now, now + timedelta(minutes=ENROLMENT_MINUTES), client, ENROLMENT_FACTOR)
    audit.record(
        session, actor, audit.AuditAction.LOGIN, f"user:{user.id}", audit.Outcome.DENIED,
        details={"reason": "second factor not enrolled", "roles": ",".join(needing), "client": client[:100],
                 "enrolment_session": True},
        at=now,
    )  # fmt: skip
    return SecondFactorEnrolmentRequired(
        f"sign-in refused: the role(s) {', '.join(needing)} require a TOTP second factor, which user "
        f"{user.username!r} has not enrolled; {TOTP_ENROL_HINT}",
        token,
    )


def actor_for_session(
    session: Session, token: str, *, settings: Settings | None = None, clock: Clock = utcnow
) -> Actor:
    """The identity behind a session token, sliding its idle timeout; AuthenticationError if invalid or expired."""
    settings = settings or get_settings()
    now = as_utc(clock())
    if not token:
        raise AuthenticationError("not signed in: run 'faceleads login'")
    row = session.scalars(select(AuthSession).where(AuthSession.token_hash == hash_token(token))).first()
    if row is None or row.revoked_at is not None:
        raise AuthenticationError("not signed in (session unknown or ended): run 'faceleads login'")
    if now - as_utc(row.last_seen_at) > timedelta(minutes=settings.session_idle_minutes):
        raise AuthenticationError(
            f"session expired after {settings.session_idle_minutes} minutes without use: sign in again"
        )
    if now >= as_utc(row.expires_at):
        raise AuthenticationError(
            f"session reached its maximum lifetime of {settings.session_max_hours} hours: sign in again"
        )
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise AuthenticationError("account deactivated")
    if now - as_utc(row.last_seen_at) >= _LAST_SEEN_GRANULARITY:
        row.last_seen_at = now
    actor = actor_for_user(session, user, now)
    if _enrolment_only(row, user, settings):
        # Enrolment-only: the user's own account and nothing else until a second factor is enrolled and used.
        return Actor(actor.username, actor.agency_id, frozenset(), actor.user_id, actor.agency_code)
    return actor


def _enrolment_only(row: AuthSession, user: User, settings: Settings) -> bool:
    return row.second_factor == ENROLMENT_FACTOR or (
        row.second_factor == "none" and bool(_roles_needing_totp(user, settings))
    )


def is_enrolment_session(session: Session, token: str, *, settings: Settings | None = None) -> bool:
    """Whether ``token`` is a session that may only enrol the second factor (for the pages to say so)."""
    settings = settings or get_settings()
    row = session.scalars(select(AuthSession).where(AuthSession.token_hash == hash_token(token or ""))).first()
    user = session.get(User, row.user_id) if row is not None else None
    return row is not None and user is not None and _enrolment_only(row, user, settings)


def logout(session: Session, token: str, *, clock: Clock = utcnow) -> bool:
    """End a session (audited). Returns False when the token was unknown or already ended."""
    now = as_utc(clock())
    row = session.scalars(select(AuthSession).where(AuthSession.token_hash == hash_token(token))).first()
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    user = session.get(User, row.user_id)
    actor = actor_for_user(session, user, now) if user else None
    audit.record(session, actor, audit.AuditAction.LOGOUT, f"user:{row.user_id}", at=now)
    return True


def revoke_user_sessions(
    session: Session, user_id: int, now: datetime | None = None, *, only_factor: str | None = None
) -> int:
    """End every open session of a user (password reset, deactivation, role change), or only those opened with
    ``only_factor`` (e.g. the enrolment sessions once TOTP is on). Returns how many."""
    now = as_utc(now or utcnow())
    query = select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if only_factor is not None:
        query = query.where(AuthSession.second_factor == only_factor)
    rows = session.scalars(query).all()
    for row in rows:
        row.revoked_at = now
    return len(rows)
