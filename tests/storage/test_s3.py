"""The blob store on an S3-compatible object store (moto's S3 server on loopback, spoken to through boto3 over HTTP):
the same guarantees as the local folder — ciphertext only, swaps and tampering detected, orphans swept — and a
gallery running on it end to end, destruction included."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from faceleads.cli.context import cli_actor
from faceleads.errors import IntegrityError, KeyDestroyedError, NotFound
from faceleads.gallery.enrolment import enrol_record
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.storage.blobs import BlobStore, LocalFolderBackend
from faceleads.storage.crypto import generate_key
from faceleads.storage.keystore import KeyStore
from faceleads.storage.s3 import S3Backend
from tests.conftest import lfw_identities
from tests.dbs import settings_for
from tests.gallery.conftest import record
from tests.lawful import list_authorities

moto_server = pytest.importorskip("moto.server")

PEOPLE = lfw_identities()
BUCKET = "faceleads-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto) on a free loopback port for this module."""
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    _client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(s3={"addressing_style": "path"}))  # fmt: skip


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """The same store contract on both backends."""
    keystore = KeyStore(tmp_path / "keys" / "keystore.db", generate_key())
    if request.param == "local":
        backend: Any = LocalFolderBackend(tmp_path / "store")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        backend = S3Backend(_client(endpoint), BUCKET, f"t-{tmp_path.name}/")
    yield BlobStore(backend, keystore)
    keystore.close()


def _raw_write(store: BlobStore, address: str, payload: bytes) -> None:
    store.backend.write(address, payload)  # below the encryption layer: what an attacker with storage access does


def test_round_trip_ciphertext_only_and_idempotent(store: BlobStore) -> None:
    store.keystore.create("subject:a")
    photo = PEOPLE["AJ_Cook"][0].read_bytes()
    address = store.put("subject:a", photo, "gallery-image|x")
    assert store.get("subject:a", address, "gallery-image|x") == photo
    stored = store.backend.read(address)
    assert photo not in stored and photo[100:200] not in stored  # never the plaintext
    assert store.put("subject:a", photo, "gallery-image|x") == address
    assert list(store.addresses()) == [address]
    assert store.exists(address)


def test_swapped_or_tampered_blob_fails(store: BlobStore) -> None:
    for key in ("subject:a", "subject:b"):
        store.keystore.create(key)
    a = store.put("subject:a", b"photo of a", "ctx")
    b = store.put("subject:b", b"photo of b", "ctx")
    _raw_write(store, b, store.backend.read(a))  # a's blob copied over b's name
    with pytest.raises(IntegrityError, match=b):
        store.get("subject:b", b, "ctx")
    blob = bytearray(store.backend.read(a))
    blob[-1] ^= 1
    _raw_write(store, a, bytes(blob))
    with pytest.raises(IntegrityError):
        store.get("subject:a", a, "ctx")
    # put() repairs a damaged copy of the same content
    assert store.put("subject:a", b"photo of a", "ctx") == a
    assert store.get("subject:a", a, "ctx") == b"photo of a"


def test_missing_destroyed_and_orphans(store: BlobStore) -> None:
    store.keystore.create("subject:a")
    kept = store.put("subject:a", b"kept", "ctx")
    orphan = store.put("subject:a", b"orphan", "ctx")
    with pytest.raises(NotFound):
        store.get("subject:a", "f" * 64, "ctx")
    assert store.remove_orphans({kept}, min_age_seconds=3600) == 0  # too recent: maybe not committed yet
    assert store.remove_orphans({kept}) == 1
    assert set(store.addresses()) == {kept} and not store.exists(orphan)
    assert store.delete(kept) and not store.delete(kept)
    store.keystore.destroy("subject:a")
    with pytest.raises(KeyDestroyedError):
        store.put("subject:a", b"again", "ctx")


def test_gallery_on_object_storage_end_to_end(tmp_path: Path, s3_endpoint: str, engine: Any) -> None:
    settings = settings_for(tmp_path / "data", blob_store="s3", s3_bucket=BUCKET, s3_prefix="gallery/",
                            s3_endpoint_url=s3_endpoint, s3_region="us-east-1", s3_access_key_id="test",
                            s3_secret_access_key="test")  # fmt: skip
    rt = GalleryRuntime(settings, face_engine=engine)
    try:
        list_authorities(rt, "MET")
        actor = cli_actor(rt, "MET")
        result = enrol_record(rt, actor, record("AJ_Cook", "B1"), [PEOPLE["AJ_Cook"][0]])
        assert not (tmp_path / "data" / "store").exists() or not any((tmp_path / "data" / "store").rglob("*"))
        objects = _client(s3_endpoint).list_objects_v2(Bucket=BUCKET, Prefix="gallery/")["Contents"]
        assert len(objects) == 1
        from faceleads.gallery.models import Image, Subject

        with rt.session_factory() as session:
            image = session.get(Image, result.photos[0].image_id)
            subject = session.get(Subject, result.subject_id)
            assert image is not None and subject is not None
            assert rt.read_photo(subject, image) == PEOPLE["AJ_Cook"][0].read_bytes()
        from faceleads.governance import destruction

        req = destruction.request_destruction(rt, actor, result.subject_id, requester="the subject, via counsel",
                                              grounds="acquitted at trial on 2025-01-10")  # fmt: skip
        for item in destruction.CHECKLIST_ITEMS:
            destruction.record_checklist(rt, actor, req.id, item, True, "checked")
        destruction.decide(rt, actor, req.id, approve=True, reason="acquittal: no lawful basis to keep the photos")
        cert = destruction.execute(rt, actor, req.id)
        assert cert["destroyed"]["blobs"] == 1
        assert "Contents" not in _client(s3_endpoint).list_objects_v2(Bucket=BUCKET, Prefix="gallery/")
    finally:
        rt.close()
