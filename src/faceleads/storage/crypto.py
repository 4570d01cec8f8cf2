"""AES-256-GCM primitives and master-key loading (the envelope scheme is described in docs/encryption.md).

Ciphertext format, version 1::

    magic "FLE" (3 bytes) | version 0x01 (1 byte) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)

The 4-byte header is itself authenticated (it is prepended to the caller's associated data), so a blob cannot
be re-labelled as another format version without failing authentication. A new format gets a new version byte;
``decrypt`` dispatches on it, so old blobs stay readable while new ones use the new format.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceleads.config import Settings
from faceleads.errors import ConfigurationError, IntegrityError, ValidationError

# Storage sits below vision: the embedding type is spelt out here rather than imported from it.
FloatArray = npt.NDArray[np.float32]

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAGIC = b"FLE"
VERSION_1 = 1
HEADER = MAGIC + bytes([VERSION_1])
OVERHEAD = len(HEADER) + NONCE_BYTES + TAG_BYTES  # bytes added to every plaintext

EMBEDDING_DIM = 512
_EMBEDDING_DTYPE = np.dtype("<f4")  # little-endian float32, fixed so files are portable across machines
_EMBEDDING_AAD_PREFIX = b"faceleads-embedding|"

MASTER_KEY_ENV = "FACELEADS_MASTER_KEY"
MASTER_KEY_FILE_ENV = "FACELEADS_MASTER_KEY_FILE"


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        size = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
        raise ValidationError(f"an AES-256 key must be exactly {KEY_BYTES} bytes, got {size}")


def generate_key() -> bytes:
    """A fresh random 256-bit key from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` with AES-256-GCM under ``key``, authenticating ``aad`` (not stored in the
    output).

    A random 96-bit nonce is drawn per call. With random nonces NIST SP 800-38D limits one key to 2**32
    encryptions; data keys are per subject and encrypt a handful of blobs each, far below that bound.
    """
    _check_key(key)
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(bytes(key)).encrypt(nonce, bytes(plaintext), HEADER + bytes(aad))
    return HEADER + nonce + sealed


def decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a blob made by :func:`encrypt`.

    Raises :class:`IntegrityError` when the blob is truncated, has an unknown header, was modified, or was
    made with another key or other associated data (which is how a blob swapped between records is detected).
    """
    _check_key(key)
    blob = bytes(blob)
    if len(blob) < OVERHEAD:
        raise IntegrityError(f"encrypted blob is truncated ({len(blob)} bytes, at least {OVERHEAD} needed)")
    if blob[: len(MAGIC)] != MAGIC:
        raise IntegrityError("encrypted blob has no faceleads header (not our ciphertext, or corrupted)")
    version = blob[len(MAGIC)]
    if version != VERSION_1:
        raise IntegrityError(f"encrypted blob has unsupported format version {version}")
    header = blob[: len(HEADER)]
    nonce = blob[len(HEADER) : len(HEADER) + NONCE_BYTES]
    try:
        return AESGCM(bytes(key)).decrypt(nonce, blob[len(HEADER) + NONCE_BYTES :], header + bytes(aad))
    except InvalidTag:
        raise IntegrityError(
            "encrypted blob failed authentication: it was modified, or belongs to another record or key"
        ) from None


def encrypt_embedding(key: bytes, vector: FloatArray, context: str, dim: int = EMBEDDING_DIM) -> bytes:
    """Encrypt a face template (float32, shape ``(dim,)``) bound to ``context`` (e.g. its record id)."""
    arr = np.asarray(vector)
    if arr.shape != (dim,):
        raise ValidationError(f"embedding must have shape ({dim},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValidationError(f"embedding must be floating point, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValidationError("embedding contains NaN or infinite values")
    payload = arr.astype(_EMBEDDING_DTYPE, copy=False).tobytes()
    return encrypt(key, payload, _EMBEDDING_AAD_PREFIX + context.encode("utf-8"))


def decrypt_embedding(key: bytes, blob: bytes, context: str, dim: int = EMBEDDING_DIM) -> FloatArray:
    """Decrypt a template made by :func:`encrypt_embedding`: a writable float32 array, shape ``(dim,)``."""
    payload = decrypt(key, blob, _EMBEDDING_AAD_PREFIX + context.encode("utf-8"))
    if len(payload) != dim * _EMBEDDING_DTYPE.itemsize:
        raise IntegrityError(f"decrypted embedding has {len(payload)} bytes, expected {dim * 4}")
    return np.frombuffer(payload, dtype=_EMBEDDING_DTYPE).astype(np.float32)


def _decode_master_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"master key from {source} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise ConfigurationError(
            f"master key from {source} must decode to {KEY_BYTES} bytes, got {len(key)} "
            "(generate one with: "
            "python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
        )
    return key


def fsync_dir(path: Path) -> None:
    """Make a directory entry change (create/rename/unlink) durable; no-op where dirs cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_key_file(path: Path) -> None:
    """Write a new random key file with mode 0600, atomically and without ever replacing an existing key.

    The key is written to a private temporary file, fsynced, then hard-linked to its final name: ``link``
    fails if the name exists, so two processes starting together cannot overwrite each other's key, and a
    reader never sees a half-written file. The loser simply reads the winner's key.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.b64encode(generate_key()) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)


def load_master_key(settings: Settings) -> bytes:
    """The 32-byte master key that wraps every subject's data key.

    Taken from ``FACELEADS_MASTER_KEY`` (base64 of 32 bytes) if set, else from the key file
    ``settings.effective_master_key_file`` (base64 text). In dev mode a missing key file is generated once
    (mode 0600) and reused afterwards; in any other mode a missing key is refused with
    :class:`ConfigurationError`.
    """
    if settings.master_key:
        return _decode_master_key(settings.master_key, MASTER_KEY_ENV)
    path = settings.effective_master_key_file
    if not path.exists():
        if not settings.is_dev:
            raise ConfigurationError(
                f"no master key: set {MASTER_KEY_ENV} (base64 of 32 bytes) or create the key file {path} "
                f"(or point {MASTER_KEY_FILE_ENV} at it); keys are only generated automatically in dev mode"
            )
        _create_key_file(path)
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise ConfigurationError(f"master key file {path} is not base64 text") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read master key file {path}: {exc.strerror}") from None
    return _decode_master_key(text, f"key file {path}")
