"""TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps) and single-use recovery codes.

Enrolment: :func:`new_secret` -> show :func:`provisioning_uri` as a QR code (:func:`qr_png` / :func:`qr_svg`) -> the
user types the first code, which :func:`match_step` checks -> TOTP is enabled and recovery codes are issued.

A code is accepted within one step either side of the current one (clock drift of up to 30 s), and never twice: the
accepted step is stored and any code for that step or an earlier one is refused (replay). Secrets are kept
encrypted at rest (AES-256-GCM under a key derived from the master key, bound to the user id).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from datetime import datetime

import pyotp
import qrcode
import qrcode.image.svg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from faceleads.storage import crypto

ISSUER = "faceleads"
STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: easy to type from paper
_RECOVERY_LENGTH = 16  # 16 symbols of 32 = 80 bits


def new_secret() -> str:
    """A fresh base32 TOTP secret (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, username: str, agency_code: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=f"{username}@{agency_code}", issuer_name=ISSUER
    )


def qr_png(uri: str) -> bytes:
    """The URI as a QR code PNG (error correction M)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    qr.add_data(uri)
    qr.make(fit=True)
    image = qr.make_image()  # Pillow backend (Pillow is a project dependency)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def qr_svg(uri: str) -> str:
    """The URI as a standalone SVG QR code (for the web page; no raster library needed)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode")


def step_of(moment: datetime) -> int:
    """The TOTP time step containing ``moment``."""
    return int(moment.timestamp()) // STEP_SECONDS


def match_step(secret: str, code: str, moment: datetime, *, last_step: int | None = None) -> int | None:
    """The time step ``code`` is valid for (within ±1 step of ``moment``), or None.

    Steps at or before ``last_step`` (already used) are refused, so a code cannot be replayed.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now_step = step_of(moment)
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def code_at(secret: str, moment: datetime) -> str:
    """The code an authenticator shows at ``moment`` (for tests and the enrolment check)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step_of(moment))


# --- secret at rest --------------------------------------------------------------------------------------------


def _totp_key(master_key: bytes) -> bytes:
    """A key used only for TOTP secrets, derived from the master key (keys are never reused across purposes)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"faceleads/totp-secret/v1").derive(master_key)


def _aad(user_id: int) -> bytes:
    return f"faceleads-totp|user:{user_id}".encode()


def seal_secret(master_key: bytes, user_id: int, secret: str) -> bytes:
    """Encrypt a TOTP secret for storage, bound to its user (a secret copied to another user fails to open)."""
    return crypto.encrypt(_totp_key(master_key), secret.encode("ascii"), _aad(user_id))


def open_secret(master_key: bytes, user_id: int, blob: bytes) -> str:
    """Decrypt a stored TOTP secret (raises :class:`faceleads.errors.IntegrityError` if tampered or moved)."""
    return crypto.decrypt(_totp_key(master_key), blob, _aad(user_id)).decode("ascii")


# --- recovery codes --------------------------------------------------------------------------------------------


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Fresh recovery codes, formatted ``XXXX-XXXX-XXXX-XXXX`` (shown once, stored hashed)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4)))
    return codes


def normalise_recovery_code(code: str) -> str:
    """Upper-case without separators or spaces, so that the user may type it any way."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_recovery_code(code: str) -> str:
    """SHA-256 of the normalised code (80 bits of entropy make a slow hash unnecessary)."""
    return hashlib.sha256(normalise_recovery_code(code).encode("ascii", "replace")).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    """Whether the input has the shape of a recovery code rather than a 6-digit TOTP code."""
    return len(normalise_recovery_code(code)) == _RECOVERY_LENGTH
