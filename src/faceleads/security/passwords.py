"""Password hashing with argon2id (RFC 9106) and the password rules.

Parameters are argon2-cffi's defaults, which follow RFC 9106's second recommended option: time cost 3,
64 MiB memory, parallelism 4, 16-byte salt, 32-byte hash. Hashes made with older parameters are upgraded on
the next successful sign-in (:func:`needs_rehash`).
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from faceleads.errors import ValidationError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 accepts more, but an unbounded input is a denial-of-service lever

_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4, hash_len=32, salt_len=16, type=Type.ID)


@functools.cache
def _dummy_hash() -> str:
    """A real hash, verified against when the username is unknown so that the time taken does not reveal whether
    an account exists (made on first use, not at import)."""
    return _HASHER.hash("faceleads-dummy-password-for-timing")


def check_password_rules(password: str, *, username: str | None = None) -> None:
    """Refuse a password that is too short, too long, or contains the username."""
    if not isinstance(password, str):
        raise ValidationError("password must be text")
    if len(password) < MIN_LENGTH:
        raise ValidationError(f"password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise ValidationError(f"password must be at most {MAX_LENGTH} characters long")
    if username and username.lower() in password.lower():
        raise ValidationError("password must not contain the username")
    if len(set(password)) < 4:
        raise ValidationError("password must not be made of one or two repeated characters")


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string starting with ``$argon2id$``)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches; False for a malformed stored hash rather than an exception."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def burn_time(password: str) -> None:
    """Spend the time of one verification (for unknown usernames)."""
    verify_password(_dummy_hash(), password[:MAX_LENGTH])


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with parameters other than the current ones."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
