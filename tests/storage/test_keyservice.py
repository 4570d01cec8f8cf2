"""The server key service: data keys in a database of their own, under credentials of their own, agreeing across
processes at once; a missing key is reported as missing, never as destroyed; the gallery runs on it end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from faceleads.cli.context import cli_actor
from faceleads.db import make_engine
from faceleads.errors import ConfigurationError, KeyDestroyedError, NotFound
from faceleads.gallery.enrolment import enrol_record
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.storage.crypto import generate_key
from faceleads.storage.keyservice import SqlKeyStore
from faceleads.storage.keystore import KeyService
from tests import dbs
from tests.conftest import lfw_identities
from tests.gallery.conftest import record
from tests.lawful import list_authorities

MASTER = bytes(range(32))


@pytest.fixture
def keystore_url(tmp_path: Path) -> Iterator[str]:
    """A keystore database: on PostgreSQL one owned by a role of its own; on SQLite a file of its own."""
    if not dbs.ON_POSTGRES:
        yield f"sqlite:///{tmp_path / 'keys.db'}"
        return
    url, _, names = dbs.new_role_database("keys")
    yield url
    dbs.drop_role_database(names)


@pytest.fixture
def ks(keystore_url: str) -> Iterator[SqlKeyStore]:
    store = SqlKeyStore(keystore_url, MASTER)
    yield store
    store.close()


def test_protocol_and_round_trip(ks: SqlKeyStore) -> None:
    assert isinstance(ks, KeyService)
    ks.create("subject:a")
    ks.create("subject:a")  # idempotent
    key = ks.get("subject:a")
    assert len(key) == 32 and ks.get("subject:a") == key and ks.exists("subject:a")
    ks.create("subject:b")
    assert ks.get("subject:b") != key
    with ks.engine.connect() as conn:
        stored = conn.execute(text("SELECT wrapped FROM data_keys WHERE key_id = 'subject:a'")).scalar_one()
    assert key not in bytes(stored), "keys are stored wrapped by the master key, never in the clear"
    with pytest.raises(NotFound):
        ks.get("subject:never")


def test_destroy_lookup_and_other_instances(keystore_url: str, ks: SqlKeyStore) -> None:
    other = SqlKeyStore(keystore_url, MASTER)  # another server
    try:
        for k in ("subject:a", "subject:b"):
            ks.create(k)
        assert other.get("subject:a") == ks.get("subject:a")
        ks.destroy("subject:a")
        ks.destroy("subject:a")  # idempotent
        with pytest.raises(KeyDestroyedError):
            other.get("subject:a")  # at once, on every server
        with pytest.raises(KeyDestroyedError):
            other.create("subject:a")  # ids are never reused
        looked = other.lookup(["subject:a", "subject:b", "subject:gone"])
        assert set(looked.live) == {"subject:b"} and looked.live["subject:b"] == ks.get("subject:b")
        assert looked.destroyed == {"subject:a"} and looked.missing == {"subject:gone"}
        other.destroy("case:unknown")  # a tombstone, so it can never be created
        assert ks.is_destroyed("case:unknown") and ks.destroyed_ids() == ["case:unknown", "subject:a"]
        assert ks.key_ids() == ["subject:b"]
        with ks.engine.connect() as conn:
            wrapped = conn.execute(text("SELECT wrapped FROM data_keys WHERE key_id = 'subject:a'")).scalar_one()
        assert wrapped is None
    finally:
        other.close()


def test_wrong_master_key_is_refused_and_rewrap(keystore_url: str, ks: SqlKeyStore) -> None:
    ks.create("subject:a")
    key = ks.get("subject:a")
    with pytest.raises(ConfigurationError, match="master key does not open"):
        SqlKeyStore(keystore_url, generate_key())
    new_master = generate_key()
    assert ks.rewrap(new_master) == 1
    again = SqlKeyStore(keystore_url, new_master)
    try:
        assert again.get("subject:a") == key
    finally:
        again.close()


@pytest.mark.skipif(not dbs.ON_POSTGRES, reason="separate credentials are a database-server feature")
def test_keystore_database_is_closed_to_other_roles() -> None:
    """The application's main-database role cannot even connect to the keystore database."""
    owner_url, outsider_url, names = dbs.new_role_database("keys")
    try:
        SqlKeyStore(owner_url, MASTER).close()
        outsider = make_engine(outsider_url)
        with pytest.raises(OperationalError, match="permission denied"), outsider.connect():
            pass
        outsider.dispose()
        with pytest.raises(ConfigurationError, match="cannot open the keystore database"):
            SqlKeyStore(outsider_url, MASTER)
    finally:
        dbs.drop_role_database(names)


def test_gallery_with_the_server_keystore(tmp_path: Path, keystore_url: str, engine: Any) -> None:
    people = lfw_identities()
    settings = dbs.settings_for(tmp_path / "data", keystore_url=keystore_url)
    rt = GalleryRuntime(settings, face_engine=engine)
    try:
        assert isinstance(rt.keystore, SqlKeyStore)
        list_authorities(rt, "MET")
        actor = cli_actor(rt, "MET")
        result = enrol_record(rt, actor, record("AJ_Cook", "B1"), [people["AJ_Cook"][0]])
        assert not (tmp_path / "data" / "keys").exists(), "no keystore file on this host"
        assert rt.start().total == 1
        from faceleads.gallery.models import Subject

        with rt.session_factory() as session:
            subject = session.get(Subject, result.subject_id)
            assert subject is not None and rt.keystore.exists(subject.key_id)
    finally:
        rt.close()
