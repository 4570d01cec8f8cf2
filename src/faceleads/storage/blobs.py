"""Content-addressed, encrypted blob store for originals, face crops and other per-subject files.

Every blob is encrypted (AES-256-GCM) with its subject's data key from the :class:`KeyStore`, with associated
data ``"<key id>|<context>|<address>"`` that binds it to its subject, its record and its own name: a file
copied over another blob's path, moved to another subject or presented for another record fails to decrypt.

Layout: ``<root>/<a0a1>/<a2a3>/<address>`` where ``address`` is 64 hex characters. Writes are atomic (private
temporary file in the same directory, fsync, ``os.replace``, directory fsync), so a crash leaves either the
whole blob or nothing (plus, at worst, a ``.tmp-*`` file that :meth:`BlobStore.remove_orphans` cleans up).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from faceleads.config import Settings
from faceleads.errors import IntegrityError, NotFound, ValidationError
from faceleads.storage.crypto import decrypt, encrypt, fsync_dir
from faceleads.storage.keystore import KeyStore, validate_key_id

__all__ = ["BlobStore", "default_store_root"]

_ADDRESS_RE = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"
_ADDRESS_DOMAIN = b"faceleads-blob-address-v1\x00"


def default_store_root(settings: Settings) -> Path:
    """``<data_dir>/store``."""
    return settings.data_dir / "store"


def _check_address(address: str) -> str:
    if not isinstance(address, str) or not _ADDRESS_RE.fullmatch(address):
        raise ValidationError(f"invalid blob address {address!r}: expected 64 lowercase hex characters")
    return address


def _check_context(context: str) -> str:
    if not isinstance(context, str) or not context or "\x00" in context:
        raise ValidationError(f"invalid blob context {context!r}: expected a non-empty string without NUL")
    return context


class BlobStore:
    """Encrypted, content-addressed files under ``root`` (see the module docstring for the guarantees)."""

    def __init__(self, root: Path, keystore: KeyStore) -> None:
        self.root = Path(root)
        self.keystore = keystore
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    @classmethod
    def from_settings(cls, settings: Settings, keystore: KeyStore) -> BlobStore:
        """The store at :func:`default_store_root`."""
        return cls(default_store_root(settings), keystore)

    # -- addressing ----------------------------------------------------------------------------------------

    @staticmethod
    def _address(data_key: bytes, data: bytes, context: str) -> str:
        # Keyed (HMAC with the subject's data key), so the address reveals nothing about the image — a bare
        # SHA-256 would let anyone holding a copy of a photo test whether it is in the gallery. The context is
        # MACed too (length-prefixed, so no two (context, data) pairs collide): the blob's associated data
        # names its context, so one address must never be asked to hold one photo under two different
        # contexts.
        ctx = context.encode("utf-8")
        mac = hmac.new(data_key, _ADDRESS_DOMAIN, hashlib.sha256)
        mac.update(len(ctx).to_bytes(8, "big"))
        mac.update(ctx)
        mac.update(data)
        return mac.hexdigest()

    @staticmethod
    def _aad(key_id: str, context: str, address: str) -> bytes:
        return f"{key_id}|{context}|{address}".encode()

    def path_for(self, address: str) -> Path:
        """Where the blob ``address`` lives (whether or not it exists)."""
        _check_address(address)
        return self.root / address[0:2] / address[2:4] / address

    def address_for(self, key_id: str, data: bytes, context: str) -> str:
        """The address :meth:`put` would give ``data`` (to check for an existing copy without writing)."""
        validate_key_id(key_id)
        _check_context(context)
        return self._address(self.keystore.get(key_id), bytes(data), context)

    # -- read / write --------------------------------------------------------------------------------------

    def put(self, key_id: str, data: bytes, context: str) -> str:
        """Encrypt ``data`` with ``key_id``'s data key and store it; returns its address.

        Idempotent: the same bytes stored again for the same subject and context get the same address and are
        written once (an existing copy that no longer decrypts is replaced). Raises :class:`KeyDestroyedError`
        if the subject's key was destroyed and :class:`NotFound` if it was never created.
        """
        validate_key_id(key_id)
        _check_context(context)
        data = bytes(data)
        data_key = self.keystore.get(key_id)
        address = self._address(data_key, data, context)
        path = self.path_for(address)
        aad = self._aad(key_id, context, address)
        if path.exists():
            try:
                decrypt(data_key, path.read_bytes(), aad)
                return address
            except (IntegrityError, FileNotFoundError):
                pass  # damaged, swapped or concurrently deleted: write a good copy over it
        self._write_atomic(path, encrypt(data_key, data, aad))
        return address

    def get(self, key_id: str, address: str, context: str) -> bytes:
        """Read and decrypt the blob ``address`` of subject ``key_id`` stored with ``context``.

        Raises :class:`IntegrityError` (naming the address) if the file was modified, swapped with another
        blob or is asked for under another subject or context; :class:`KeyDestroyedError` if the subject's key
        was destroyed; :class:`NotFound` if there is no such blob.
        """
        validate_key_id(key_id)
        _check_context(context)
        path = self.path_for(address)
        data_key = self.keystore.get(key_id)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {address} is not in the store {self.root}") from None
        try:
            data = decrypt(data_key, blob, self._aad(key_id, context, address))
        except IntegrityError as exc:
            raise IntegrityError(
                f"blob {address} (subject {key_id!r}, context {context!r}) failed to decrypt: {exc}"
            ) from None
        # The AEAD already binds the address; checking the content address too keeps the store honest even if
        # a future format stops authenticating it.
        if not hmac.compare_digest(self._address(data_key, data, context), address):
            raise IntegrityError(f"blob {address} content does not match its address")
        return data

    def delete(self, address: str) -> bool:
        """Remove the blob ``address``; returns whether a file was removed (idempotent)."""
        path = self.path_for(address)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(path.parent)
        return True

    def exists(self, address: str) -> bool:
        """Whether the blob file ``address`` is present (it may be unreadable if its key was destroyed)."""
        return self.path_for(address).is_file()

    def _shard_dirs(self) -> Iterator[Path]:
        for first in sorted(self.root.iterdir()):
            if not first.is_dir() or len(first.name) != 2:
                continue
            for second in sorted(first.iterdir()):
                if second.is_dir() and len(second.name) == 2:
                    yield second

    def addresses(self) -> Iterator[str]:
        """Every blob address in the store (for orphan checks and resuming interrupted work)."""
        for shard in self._shard_dirs():
            for entry in sorted(shard.iterdir()):
                if _ADDRESS_RE.fullmatch(entry.name) and entry.is_file():
                    yield entry.name

    def remove_orphans(self, referenced: set[str], *, min_age_seconds: float = 0.0) -> int:
        """Delete blobs whose address is not in ``referenced``, and leftover temporary files; returns the
        count.

        Run it when no writer is active (e.g. at the start of a resumed batch), or pass ``min_age_seconds`` so
        files written very recently — a blob whose record is not committed yet, a temporary file being written
        — are left alone.
        """
        cutoff = time.time() - min_age_seconds
        removed = 0
        for shard in list(self._shard_dirs()):
            for entry in list(shard.iterdir()):
                name = entry.name
                is_tmp = name.startswith(_TMP_PREFIX)
                if not is_tmp and (not _ADDRESS_RE.fullmatch(name) or name in referenced):
                    continue
                try:
                    if min_age_seconds > 0 and entry.stat().st_mtime > cutoff:
                        continue
                    entry.unlink()
                except FileNotFoundError:
                    continue
                removed += 1
        return removed

    # -- plumbing ------------------------------------------------------------------------------------------

    def _write_atomic(self, path: Path, payload: bytes) -> None:
        shard = path.parent
        if not shard.is_dir():
            shard.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Make the new directory entries durable, or a crash could lose a blob whose record was committed.
            fsync_dir(shard.parent)
            fsync_dir(shard.parent.parent)
        tmp = shard / f"{_TMP_PREFIX}{path.name}-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                view = memoryview(payload)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        fsync_dir(shard)
