"""Encrypted content-addressed blob store: binding, tamper/swap detection, shredding, atomicity, orphans."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceleads.errors import IntegrityError, KeyDestroyedError, NotFound, ValidationError
from faceleads.storage.blobs import BlobStore
from faceleads.storage.crypto import generate_key
from faceleads.storage.keystore import KeyStore

FACES = Path(__file__).resolve().parents[2] / ".." / "shared" / "faces"


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    files = sorted((FACES / "lfw-dev").rglob("*.jpg"))[:6]
    assert len(files) == 6, f"test data missing under {FACES}"
    return [f.read_bytes() for f in files]


@pytest.fixture
def keystore(tmp_path: Path) -> Iterator[KeyStore]:
    ks = KeyStore(tmp_path / "keys" / "keystore.db", generate_key())
    ks.create("subject:a")
    ks.create("subject:b")
    yield ks
    ks.close()


@pytest.fixture
def store(tmp_path: Path, keystore: KeyStore) -> BlobStore:
    return BlobStore(tmp_path / "store", keystore)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_round_trip_layout_and_no_plaintext(store: BlobStore, photos: list[bytes]) -> None:
    address = store.put("subject:a", photos[0], "image:1")
    assert len(address) == 64
    path = store.root / address[:2] / address[2:4] / address
    assert path.is_file() and store.path_for(address) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    assert photos[0] not in raw and photos[0][:64] not in raw
    assert store.get("subject:a", address, "image:1") == photos[0]
    assert store.exists(address)
    assert list(store.addresses()) == [address]


def test_address_is_keyed_not_a_bare_hash(store: BlobStore, photos: list[bytes]) -> None:
    a = store.put("subject:a", photos[0], "original")
    b = store.put("subject:b", photos[0], "original")
    assert a != b  # the same photo gets unrelated addresses for different subjects
    assert hashlib.sha256(photos[0]).hexdigest() not in (a, b)
    assert store.address_for("subject:a", photos[0], "original") == a


def test_put_is_idempotent_and_dedupes(store: BlobStore, photos: list[bytes]) -> None:
    first = store.put("subject:a", photos[0], "original")
    mtime = store.path_for(first).stat().st_mtime_ns
    assert store.put("subject:a", photos[0], "original") == first
    assert store.path_for(first).stat().st_mtime_ns == mtime  # not rewritten
    assert len(_files(store.root)) == 1
    # Same photo under another context: a distinct blob (its associated data names its context).
    other = store.put("subject:a", photos[0], "crop")
    assert other != first
    assert store.get("subject:a", other, "crop") == photos[0]


def test_swapped_file_fails_naming_the_address(store: BlobStore, photos: list[bytes]) -> None:
    addr_a = store.put("subject:a", photos[0], "image:1")
    addr_b = store.put("subject:a", photos[1], "image:2")
    shutil.copyfile(store.path_for(addr_a), store.path_for(addr_b))  # blob A copied over blob B's path
    with pytest.raises(IntegrityError, match=addr_b):
        store.get("subject:a", addr_b, "image:2")
    assert store.get("subject:a", addr_a, "image:1") == photos[0]


def test_swap_across_subjects_fails(store: BlobStore, photos: list[bytes]) -> None:
    addr_a = store.put("subject:a", photos[0], "image:1")
    addr_b = store.put("subject:b", photos[1], "image:1")
    shutil.copyfile(store.path_for(addr_a), store.path_for(addr_b))
    with pytest.raises(IntegrityError, match=addr_b):
        store.get("subject:b", addr_b, "image:1")
    with pytest.raises(IntegrityError):
        store.get("subject:b", addr_a, "image:1")  # right file, wrong subject


def test_wrong_context_fails(store: BlobStore, photos: list[bytes]) -> None:
    address = store.put("subject:a", photos[0], "image:1")
    with pytest.raises(IntegrityError, match="image:2"):
        store.get("subject:a", address, "image:2")


@pytest.mark.parametrize("offset", [0, 3, 10, 100, -1])
def test_tampered_byte_fails(store: BlobStore, photos: list[bytes], offset: int) -> None:
    address = store.put("subject:a", photos[0], "image:1")
    path = store.path_for(address)
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match=address):
        store.get("subject:a", address, "image:1")
    # A put of the same photo repairs the damaged copy in place.
    assert store.put("subject:a", photos[0], "image:1") == address
    assert store.get("subject:a", address, "image:1") == photos[0]


def test_truncated_file_fails(store: BlobStore, photos: list[bytes]) -> None:
    address = store.put("subject:a", photos[0], "image:1")
    path = store.path_for(address)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(IntegrityError, match=address):
        store.get("subject:a", address, "image:1")


def test_destroying_subject_key_shreds_only_its_blobs(
    tmp_path: Path, store: BlobStore, keystore: KeyStore, photos: list[bytes]
) -> None:
    a_addrs = [store.put("subject:a", p, f"image:{i}") for i, p in enumerate(photos[:3])]
    b_addr = store.put("subject:b", photos[3], "image:9")
    keystore.destroy("subject:a")
    for i, address in enumerate(a_addrs):
        assert store.exists(address)  # the ciphertext may linger (e.g. in a backup) ...
        with pytest.raises(KeyDestroyedError):
            store.get("subject:a", address, f"image:{i}")  # ... but is unreadable
    with pytest.raises(KeyDestroyedError):
        store.put("subject:a", photos[5], "image:5")
    assert store.get("subject:b", b_addr, "image:9") == photos[3]


def test_old_backup_restored_after_destruction_stays_unreadable(
    tmp_path: Path, store: BlobStore, keystore: KeyStore, photos: list[bytes]
) -> None:
    """The issue-4 scenario: back up store + keystore, destroy, restore both from the old backup."""
    a_addr = store.put("subject:a", photos[0], "image:1")
    b_addr = store.put("subject:b", photos[1], "image:2")
    backup_store = tmp_path / "backup" / "store"
    shutil.copytree(store.root, backup_store)
    keystore.backup(tmp_path / "escrow" / "keystore.db")

    keystore.destroy("subject:a")
    store.delete(a_addr)

    shutil.rmtree(store.root)
    shutil.copytree(backup_store, store.root)
    keystore.restore(tmp_path / "escrow" / "keystore.db")
    assert store.exists(a_addr)  # the ciphertext came back with the old backup ...
    with pytest.raises(KeyDestroyedError):
        store.get("subject:a", a_addr, "image:1")  # ... but not in readable form
    assert store.get("subject:b", b_addr, "image:2") == photos[1]


def test_missing_blob_and_unknown_subject(store: BlobStore, photos: list[bytes]) -> None:
    address = store.put("subject:a", photos[0], "image:1")
    assert store.delete(address) is True
    assert store.delete(address) is False  # idempotent
    assert not store.exists(address)
    with pytest.raises(NotFound, match=address):
        store.get("subject:a", address, "image:1")
    with pytest.raises(NotFound):
        store.put("subject:nobody", photos[0], "image:1")


@pytest.mark.parametrize("bad", ["", "abc", "G" * 64, "A" * 64, "../" + "a" * 61])
def test_bad_addresses_refused(store: BlobStore, bad: str) -> None:
    with pytest.raises(ValidationError, match="invalid blob address"):
        store.get("subject:a", bad, "image:1")
    with pytest.raises(ValidationError):
        store.delete(bad)


def test_bad_context_refused(store: BlobStore) -> None:
    with pytest.raises(ValidationError, match="context"):
        store.put("subject:a", b"x", "")


def test_atomic_writes_leave_no_tmp_files(store: BlobStore, photos: list[bytes]) -> None:
    for i, photo in enumerate(photos):
        store.put("subject:a", photo, f"image:{i}")
    names = [p.name for p in _files(store.root)]
    assert len(names) == len(photos)
    assert not [n for n in names if n.startswith(".tmp-")]


def test_failed_write_cleans_its_tmp_file(
    store: BlobStore, photos: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        store.put("subject:a", photos[0], "image:1")
    monkeypatch.undo()
    assert _files(store.root) == []


def test_remove_orphans(store: BlobStore, photos: list[bytes]) -> None:
    kept = store.put("subject:a", photos[0], "image:1")
    orphan = store.put("subject:a", photos[1], "image:2")
    recent_orphan = store.put("subject:b", photos[2], "image:3")
    shard = store.path_for(kept).parent
    stale_tmp = shard / f".tmp-{kept}-123-deadbeef"
    stale_tmp.write_bytes(b"half a blob")
    stray = shard / "README"  # not ours: never touched
    stray.write_text("x")
    old = time.time() - 7200
    for path in (store.path_for(kept), store.path_for(orphan), stale_tmp):
        os.utime(path, (old, old))

    # With a grace period, the just-written orphan (its record may not be committed yet) is kept.
    assert store.remove_orphans({kept}, min_age_seconds=3600) == 2
    assert not store.exists(orphan) and not stale_tmp.exists()
    assert store.exists(recent_orphan)
    # Without one (no writer running), every unreferenced blob goes.
    assert store.remove_orphans({kept}) == 1
    assert list(store.addresses()) == [kept]
    assert stray.exists()
    assert store.get("subject:a", kept, "image:1") == photos[0]
    assert store.remove_orphans({kept}) == 0
