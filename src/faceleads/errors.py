"""Error hierarchy: every refusal names the problem in words a user can act on."""

from __future__ import annotations


class FaceleadsError(Exception):
    """Base class for all expected, user-facing errors."""


class ConfigurationError(FaceleadsError):
    """The settings are unsafe or incomplete for the chosen mode."""


class ImageError(FaceleadsError):
    """An image was refused by the safe intake (format, size, corruption...)."""


class ModelError(FaceleadsError):
    """A face model file is missing or unusable."""


class NoFaceError(FaceleadsError):
    """No usable face was found where one was required."""


class PermissionDenied(FaceleadsError):
    """The central policy refused the action."""


class NotFound(FaceleadsError):
    """A record does not exist or is not visible to the caller."""


class ValidationError(FaceleadsError):
    """Input data is malformed or violates a business rule."""


class IntegrityError(FaceleadsError):
    """Encrypted data failed authentication: tampered, truncated, swapped or bound to another record."""


class KeyDestroyedError(FaceleadsError):
    """A subject's data key was destroyed (crypto-shredded); its encrypted data can never be read again."""


class AuthenticationError(FaceleadsError):
    """Sign-in refused (wrong credentials, locked account, missing second factor) or session invalid/expired."""


class Unavailable(FaceleadsError):
    """Something the action waits for (another server, a worker) did not answer in time; nothing was lost: retry."""


class SecondFactorEnrolmentRequired(AuthenticationError):
    """Sign-in refused because the user's roles require a TOTP second factor that is not enrolled yet.

    ``enrolment_token`` is a short-lived session that allows only the user's own account (enrol TOTP, change the
    password); once TOTP is confirmed the user signs in again with a code.
    """

    def __init__(self, message: str, enrolment_token: str) -> None:
        super().__init__(message)
        self.enrolment_token = enrolment_token


class TooManyRequests(FaceleadsError):
    """A rate limit was reached; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
