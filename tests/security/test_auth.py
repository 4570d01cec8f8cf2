"""Sign-in, argon2id, lockout, session expiry (injected clock), TOTP and recovery codes, certification expiry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from faceleads.config import Settings
from faceleads.core.actor import Role
from faceleads.core.audit import AuditEntry, verify_chain
from faceleads.core.uow import transaction
from faceleads.errors import AuthenticationError, IntegrityError
from faceleads.security import auth, passwords, totp, users
from faceleads.security.models import AuthSession, User
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


@pytest.fixture()
def env(tmp_path: Path) -> tuple[sessionmaker[Session], Settings, Clock, int]:
    factory = make_factory(tmp_path)
    agency = add_agency(factory, "METRO")
    add_user(factory, agency, "alice", {Role.ANALYST}, certified_until=T0 + timedelta(days=30))
    return factory, make_settings(tmp_path), Clock(), agency


def _login(env: tuple[sessionmaker[Session], Settings, Clock, int], password: str = PASSWORD,
           code: str | None = None, username: str = "alice") -> auth.SignIn:  # fmt: skip
    factory, settings, clock, _ = env
    return auth.authenticate(factory, username, password, code, settings=settings, master_key=MASTER_KEY, clock=clock)


def _audit(factory: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with factory() as session:
        return [
            (e.action, e.outcome, str(e.details.get("reason", "")))
            for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        ]


def test_argon2id_hash_and_rules() -> None:
    digest = passwords.hash_password("a-long-passphrase-42")
    assert digest.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify_password(digest, "a-long-passphrase-42")
    assert not passwords.verify_password(digest, "a-long-passphrase-43")
    assert not passwords.verify_password("not a hash", "x")
    assert passwords.hash_password("a-long-passphrase-42") != digest  # salted
    assert not passwords.needs_rehash(digest)
    for bad, why in (("short", "at least 12"), ("aaaaaaaaaaaaaaaa", "repeated"), ("xx-alice-xx-123", "username")):
        with pytest.raises(Exception, match=why):
            passwords.check_password_rules(bad, username="alice")


def test_sign_in_and_session(env: tuple[sessionmaker[Session], Settings, Clock, int]) -> None:
    factory, settings, clock, agency = env
    signed = _login(env)
    assert signed.actor.username == "alice" and signed.actor.roles == {Role.ANALYST}
    assert signed.actor.agency_id == agency and signed.actor.agency_code == "METRO"
    with factory() as session:
        stored = session.scalars(select(AuthSession)).one()
        assert stored.token_hash == auth.hash_token(signed.token) and signed.token not in stored.token_hash
    with transaction(factory) as session:
        actor = auth.actor_for_session(session, signed.token, settings=settings, clock=clock)
    assert actor == signed.actor
    with pytest.raises(AuthenticationError, match="not signed in"), transaction(factory) as session:
        auth.actor_for_session(session, "forged-token", settings=settings, clock=clock)
    with transaction(factory) as session:
        assert auth.logout(session, signed.token, clock=clock)
    with pytest.raises(AuthenticationError), transaction(factory) as session:
        auth.actor_for_session(session, signed.token, settings=settings, clock=clock)
    assert [a for a, _, _ in _audit(factory)] == ["login", "logout"]


def test_wrong_password_and_unknown_user_are_audited(env: tuple[sessionmaker[Session], Settings, Clock, int]) -> None:
    factory = env[0]
    with pytest.raises(AuthenticationError, match="sign-in refused"):
        _login(env, "wrong-password-123")
    with pytest.raises(AuthenticationError, match="sign-in refused"):
        _login(env, username="nobody")
    assert _audit(factory) == [("login", "failed", "wrong password"), ("login", "failed", "unknown user")]


def test_lockout_after_five_failures(env: tuple[sessionmaker[Session], Settings, Clock, int]) -> None:
    factory, settings, clock, _ = env
    for attempt in range(1, 6):
        with pytest.raises(AuthenticationError) as failure:
            _login(env, f"wrong-password-{attempt}")
        assert str(failure.value) == auth.SIGN_IN_REFUSED  # the lock is not announced (enumeration)
    # Locked: the right password is refused too, and the refusal is audited.
    with pytest.raises(AuthenticationError, match="sign-in refused"):
        _login(env)
    clock.advance(minutes=settings.lockout_minutes - 1)
    with pytest.raises(AuthenticationError, match="sign-in refused"):
        _login(env)
    log = _audit(factory)
    assert [o for a, o, _ in log if a == "login"] == ["failed"] * 5 + ["denied", "denied"]
    assert ("account_locked", "ok", "") in log
    assert log[-1] == ("login", "denied", "account locked")
    # The lock ends by itself after lockout_minutes.
    clock.advance(minutes=2)
    assert _login(env).actor.username == "alice"
    with factory() as session:
        user = session.scalars(select(User)).one()
        assert user.failed_attempts == 0 and user.locked_until is None
        assert verify_chain(session).ok


def test_every_refusal_reads_the_same_and_costs_one_hash(
    env: tuple[sessionmaker[Session], Settings, Clock, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Username enumeration: unknown, wrong password, locked (even with the right password), deactivated and
    malformed usernames get one message after exactly one argon2id verification each (counted, not timed)."""
    factory, _, _, agency = env
    add_user(factory, agency, "dave", {Role.INVESTIGATOR})
    with transaction(factory) as session:
        session.scalars(select(User).where(User.username == "dave")).one().active = False
    calls: list[str] = []
    real = passwords._HASHER

    class CountingHasher:
        """The real argon2id hasher, counting verifications."""

        def verify(self, hash_: str, secret: str) -> bool:
            calls.append(hash_)
            return bool(real.verify(hash_, secret))

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    monkeypatch.setattr(passwords, "_HASHER", CountingHasher())

    def refusal(password: str = PASSWORD, username: str = "alice") -> str:
        calls.clear()
        with pytest.raises(AuthenticationError) as refused:
            _login(env, password, username=username)
        assert len(calls) == 1, (username, password, calls)  # the same hash work on every path
        return str(refused.value)

    messages = {
        "unknown user": refusal(username="nobody"),
        "malformed username": refusal(username="al\u200bice"),
        "deactivated, right password": refusal(username="dave"),
        "wrong password": refusal("wrong-password-1"),
    }
    for attempt in range(2, 6):
        messages[f"wrong password {attempt}"] = refusal(f"wrong-password-{attempt}")  # the 5th locks the account
    messages["locked, right password"] = refusal()
    messages["locked, wrong password"] = refusal("wrong-password-6")
    assert len(set(messages.values())) == 1, messages
    assert "nobody" not in next(iter(messages.values()))
    reasons = [r for a, _, r in _audit(factory) if a == "login"]
    assert reasons[:3] == ["unknown user", "unknown user", "account deactivated"]  # the log keeps the truth
    assert reasons[-2:] == ["account locked", "account locked"]


def test_success_resets_the_failure_count(env: tuple[sessionmaker[Session], Settings, Clock, int]) -> None:
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            _login(env, "wrong-password-x")
    _login(env)
    for _ in range(4):
        with pytest.raises(AuthenticationError, match="sign-in refused"):
            _login(env, "wrong-password-y")
    _login(env)  # never reached five in a row


def test_administrator_unlocks(env: tuple[sessionmaker[Session], Settings, Clock, int]) -> None:
    factory, _, _, agency = env
    add_user(factory, agency, "root-admin", {Role.ADMINISTRATOR})
    with factory() as session:
        admin = auth.actor_for_user(session, session.scalars(select(User).where(User.username == "root-admin")).one())
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            _login(env, "wrong-password-z")
    with pytest.raises(AuthenticationError, match="sign-in refused"):
        _login(env)
    users.unlock(factory, admin, "alice")
    assert _login(env).actor.username == "alice"
    assert ("account_unlock", "ok", "") in _audit(factory)


def test_idle_expiry_slides_and_absolute_limit(env: tuple[sessionmaker[Session], Settings, Clock, int]) -> None:
    factory, settings, clock, _ = env
    signed = _login(env)

    def use() -> None:
        with transaction(factory) as session:
            auth.actor_for_session(session, signed.token, settings=settings, clock=clock)

    # Used every 29 minutes: the idle timeout slides, for well over 30 minutes in total.
    for _ in range(6):
        clock.advance(minutes=29)
        use()
    clock.advance(minutes=30, seconds=1)
    with pytest.raises(AuthenticationError, match="30 minutes without use"):
        use()

    # A session in constant use still ends at the absolute limit.
    clock.now = T0 + timedelta(days=1)
    fresh = _login(env)
    signed = fresh
    for _ in range(settings.session_max_hours * 3 - 1):
        clock.advance(minutes=20)
        use()
    clock.advance(minutes=20)
    with pytest.raises(AuthenticationError, match="maximum lifetime"):
        use()


def test_deactivated_user_loses_sessions_and_sign_in(env: tuple[sessionmaker[Session], Settings, Clock, int]) -> None:
    factory, settings, clock, agency = env
    add_user(factory, agency, "root-admin", {Role.ADMINISTRATOR})
    with factory() as session:
        admin = auth.actor_for_user(session, session.scalars(select(User).where(User.username == "root-admin")).one())
    signed = _login(env)
    users.set_active(factory, admin, "alice", False)
    with pytest.raises(AuthenticationError), transaction(factory) as session:
        auth.actor_for_session(session, signed.token, settings=settings, clock=clock)
    with pytest.raises(AuthenticationError):
        _login(env)
    assert _audit(factory)[-1] == ("login", "denied", "account deactivated")


def test_expired_certification_drops_analyst_role(env: tuple[sessionmaker[Session], Settings, Clock, int]) -> None:
    factory, _settings, clock, _ = env
    signed = _login(env)
    assert Role.ANALYST in signed.actor.roles
    clock.now = T0 + timedelta(days=30, seconds=1)
    assert Role.ANALYST not in _login(env).actor.roles
    with factory() as session:
        user = session.scalars(select(User)).one()
        assert auth.actor_for_user(session, user, T0).roles == {Role.ANALYST}
        assert auth.actor_for_user(session, user, clock.now).roles == frozenset()


def _enrol_totp(env: tuple[sessionmaker[Session], Settings, Clock, int]) -> tuple[str, list[str]]:
    factory, _, clock, _ = env
    actor = _login(env).actor
    enrolment = users.begin_totp_enrolment(factory, actor, MASTER_KEY)
    assert enrolment.qr_png.startswith(b"\x89PNG\r\n\x1a\n") and len(enrolment.qr_png) > 500
    assert enrolment.uri.startswith("otpauth://totp/faceleads:alice%40METRO?secret=")
    with pytest.raises(Exception, match="does not match"):
        users.confirm_totp_enrolment(factory, actor, "000000" if totp.code_at(enrolment.secret, clock.now) != "000000"
                                     else "111111", MASTER_KEY, clock=clock)  # fmt: skip
    codes = users.confirm_totp_enrolment(
        factory, actor, totp.code_at(enrolment.secret, clock.now), MASTER_KEY, clock=clock
    )
    return enrolment.secret, codes


def test_totp_second_factor(env: tuple[sessionmaker[Session], Settings, Clock, int]) -> None:
    factory, _, clock, _ = env
    secret, codes = _enrol_totp(env)
    assert len(codes) == 10 and len(set(codes)) == 10
    with factory() as session:
        user = session.scalars(select(User)).one()
        assert user.totp_enabled and user.totp_secret_enc is not None
        assert secret.encode() not in user.totp_secret_enc  # encrypted at rest
    # The confirmation code's step was used: the same code cannot sign in (replay).
    with pytest.raises(AuthenticationError):
        _login(env, code=totp.code_at(secret, clock.now))
    with pytest.raises(AuthenticationError):
        _login(env)  # second factor missing
    clock.advance(seconds=30)
    with pytest.raises(AuthenticationError):
        _login(env, code="123456" if totp.code_at(secret, clock.now) != "123456" else "654321")  # wrong code
    assert _login(env, code=totp.code_at(secret, clock.now)).second_factor == "totp"
    with pytest.raises(AuthenticationError):
        _login(env, code=totp.code_at(secret, clock.now))  # replay within the window
    # Drift: the previous step's code is still accepted once the clock has moved on by one step...
    clock.advance(seconds=60)
    code_prev = totp.code_at(secret, clock.now - timedelta(seconds=30))
    assert _login(env, code=code_prev).second_factor == "totp"
    # ...but a code two steps old is not.
    clock.advance(seconds=90)
    with pytest.raises(AuthenticationError):
        _login(env, code=totp.code_at(secret, clock.now - timedelta(seconds=60)))
    reasons = [r for a, o, r in _audit(factory) if a == "login" and o == "failed"]
    assert reasons[:3] == ["TOTP code wrong, expired or already used", "second factor missing",
                           "TOTP code wrong, expired or already used"]  # fmt: skip


def test_recovery_codes_are_single_use(env: tuple[sessionmaker[Session], Settings, Clock, int]) -> None:
    factory, _, clock, _ = env
    _, codes = _enrol_totp(env)
    typed = codes[3].lower().replace("-", " ")  # however the user types it
    assert _login(env, code=typed).second_factor == "recovery"
    with pytest.raises(AuthenticationError):
        _login(env, code=codes[3])
    assert _login(env, code=codes[4]).second_factor == "recovery"
    with pytest.raises(AuthenticationError):
        _login(env, code="ABCD-EFGH-JKLM-NPQR")
    fresh = users.regenerate_recovery_codes(factory, _login(env, code=codes[5]).actor, clock=clock)
    with pytest.raises(AuthenticationError):
        _login(env, code=codes[6])  # replaced
    assert _login(env, code=fresh[0]).second_factor == "recovery"


def test_totp_secret_is_bound_to_its_user() -> None:
    blob = totp.seal_secret(MASTER_KEY, 1, "JBSWY3DPEHPK3PXP")
    assert totp.open_secret(MASTER_KEY, 1, blob) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(IntegrityError):
        totp.open_secret(MASTER_KEY, 2, blob)
    with pytest.raises(IntegrityError):
        totp.open_secret(bytes(32), 1, blob)


def test_totp_window_units() -> None:
    secret = totp.new_secret()
    now = T0
    step = totp.step_of(now)
    assert totp.match_step(secret, totp.code_at(secret, now), now) == step
    assert totp.match_step(secret, totp.code_at(secret, now + timedelta(seconds=30)), now) == step + 1
    assert totp.match_step(secret, totp.code_at(secret, now + timedelta(seconds=60)), now) is None
    assert totp.match_step(secret, totp.code_at(secret, now), now, last_step=step) is None
    assert totp.match_step(secret, "12345", now) is None and totp.match_step(secret, "abcdef", now) is None
    assert totp.qr_svg("otpauth://totp/x?secret=AAAA").lstrip().startswith("<")
