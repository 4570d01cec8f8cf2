"""Per-subject data keys: wrapping, destruction (crypto-shredding), backup/restore and master key rotation."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceleads.config import Settings
from faceleads.errors import ConfigurationError, KeyDestroyedError, NotFound, ValidationError
from faceleads.storage.crypto import generate_key
from faceleads.storage.keystore import KeyDestroyed, KeyStore, default_keystore_path


@pytest.fixture
def master() -> bytes:
    return generate_key()


@pytest.fixture
def ks(tmp_path: Path, master: bytes) -> Iterator[KeyStore]:
    store = KeyStore(tmp_path / "keys" / "keystore.db", master)
    yield store
    store.close()


def _wrapped(path: Path, key_id: str) -> bytes | None:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT wrapped FROM data_keys WHERE key_id = ?", (key_id,)).fetchone()
    finally:
        conn.close()
    return None if row is None else row[0]


def test_create_is_idempotent_and_keys_are_distinct(ks: KeyStore) -> None:
    ks.create("subject:a")
    first = ks.get("subject:a")
    ks.create("subject:a")
    assert ks.get("subject:a") == first
    assert len(first) == 32
    ks.create("subject:b")
    assert ks.get("subject:b") != first
    assert ks.key_ids() == ["subject:a", "subject:b"]
    assert ks.exists("subject:a") and not ks.exists("subject:c")


def test_keys_are_wrapped_not_stored_in_clear(ks: KeyStore) -> None:
    ks.create("subject:a")
    raw = ks.path.read_bytes()
    assert ks.get("subject:a") not in raw
    assert stat.S_IMODE(ks.path.stat().st_mode) == 0o600


def test_never_created_key_is_not_found(ks: KeyStore) -> None:
    with pytest.raises(NotFound, match="subject:zz"):
        ks.get("subject:zz")


@pytest.mark.parametrize("bad", ["", "a|b", "a\nb", "x" * 201, "spaces here"])
def test_invalid_key_ids_are_refused(ks: KeyStore, bad: str) -> None:
    with pytest.raises(ValidationError, match="invalid key id"):
        ks.create(bad)


def test_destroy(ks: KeyStore) -> None:
    ks.create("subject:a")
    ks.create("subject:b")
    wrapped_before = _wrapped(ks.path, "subject:a")
    assert wrapped_before is not None
    ks.destroy("subject:a")
    ks.destroy("subject:a")  # idempotent
    with pytest.raises(KeyDestroyedError, match="destroyed"):
        ks.get("subject:a")
    assert KeyDestroyed is KeyDestroyedError
    assert ks.is_destroyed("subject:a") and not ks.is_destroyed("subject:b")
    assert len(ks.get("subject:b")) == 32
    assert ks.destroyed_ids() == ["subject:a"]
    assert ks.key_ids() == ["subject:b"]
    # Tombstone row kept, wrapped key gone, and (secure_delete) its bytes are not left in the database file.
    assert _wrapped(ks.path, "subject:a") is None
    assert wrapped_before not in ks.path.read_bytes()
    # One ledger line despite two calls.
    assert ks.ledger_path.read_text().count("subject:a") == 1
    # A destroyed id cannot be re-created.
    with pytest.raises(KeyDestroyedError):
        ks.create("subject:a")


def test_destroying_unknown_id_leaves_tombstone(ks: KeyStore) -> None:
    ks.destroy("subject:never")
    assert ks.is_destroyed("subject:never")
    with pytest.raises(KeyDestroyedError):
        ks.create("subject:never")


def test_wrong_master_key_is_refused_at_open(tmp_path: Path, master: bytes) -> None:
    KeyStore(tmp_path / "ks.db", master).close()
    with pytest.raises(ConfigurationError, match="does not open the keystore"):
        KeyStore(tmp_path / "ks.db", generate_key())


def test_destruction_visible_to_other_instances(tmp_path: Path, master: bytes) -> None:
    a = KeyStore(tmp_path / "ks.db", master)
    b = KeyStore(tmp_path / "ks.db", master)
    a.create("subject:x")
    assert b.get("subject:x") == a.get("subject:x")
    a.destroy("subject:x")
    with pytest.raises(KeyDestroyedError):
        b.get("subject:x")  # no cache of unwrapped keys
    a.close()
    b.close()


def test_restore_older_backup_does_not_resurrect(tmp_path: Path, ks: KeyStore) -> None:
    ks.create("subject:a")
    ks.create("subject:b")
    key_b = ks.get("subject:b")
    backup = tmp_path / "escrow" / "keystore-old.db"
    ks.backup(backup)
    assert _wrapped(backup, "subject:a") is not None  # the old backup does hold a's key
    ks.destroy("subject:a")
    ks.create("subject:c")  # created after the backup: lost by the restore, as expected
    reapplied = ks.restore(backup)
    assert reapplied == 1
    with pytest.raises(KeyDestroyedError):
        ks.get("subject:a")
    assert _wrapped(ks.path, "subject:a") is None
    assert ks.get("subject:b") == key_b
    with pytest.raises(NotFound):
        ks.get("subject:c")
    assert ks.destroyed_ids() == ["subject:a"]


def test_lost_keystore_rebuilt_from_old_backup_reapplies_ledger(tmp_path: Path, master: bytes) -> None:
    """Even if keystore.db itself is lost and an old escrow copy is put in its place, destroyed.log wins."""
    path = tmp_path / "keys" / "keystore.db"
    ks = KeyStore(path, master)
    ks.create("subject:a")
    ks.create("subject:b")
    ks.backup(tmp_path / "old.db")
    ks.destroy("subject:a")
    ks.close()
    path.unlink()
    (tmp_path / "old.db").rename(path)  # operator copies the old backup in by hand
    ks = KeyStore(path, master)
    with pytest.raises(KeyDestroyedError):
        ks.get("subject:a")
    assert len(ks.get("subject:b")) == 32
    ks.close()


def test_destroy_killed_after_ledger_write_completes_on_next_open(tmp_path: Path, master: bytes) -> None:
    """A process really killed (SIGKILL) between the ledger append and the database update."""
    path = tmp_path / "keys" / "keystore.db"
    ks = KeyStore(path, master)
    ks.create("subject:a")
    ks.close()
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from faceleads.storage.keystore import KeyStore
        ks = KeyStore(Path({str(path)!r}), bytes.fromhex({master.hex()!r}))
        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        ks._tombstone = die
        ks.destroy("subject:a")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert proc.returncode == -9, proc.stderr.decode()
    assert _wrapped(path, "subject:a") is not None  # the kill really happened before the database update
    ks = KeyStore(path, master)
    assert _wrapped(path, "subject:a") is None
    with pytest.raises(KeyDestroyedError):
        ks.get("subject:a")
    ks.close()


def test_torn_ledger_line_is_ignored(ks: KeyStore) -> None:
    ks.create("subject:a")
    ks.destroy("subject:a")
    with ks.ledger_path.open("a") as fh:
        fh.write("2026-01-01T00:00:00")  # a crash mid-append: no tab, no id
    ks.create("subject:b")
    ks.destroy("subject:b")
    assert ks.destroyed_ids() == ["subject:a", "subject:b"]


def test_scrub_backup(tmp_path: Path, ks: KeyStore) -> None:
    ks.create("subject:a")
    ks.create("subject:b")
    backup = tmp_path / "escrow.db"
    ks.backup(backup)
    ks.destroy("subject:a")
    assert ks.scrub_backup(backup) == 1
    assert _wrapped(backup, "subject:a") is None
    assert _wrapped(backup, "subject:b") is not None


def test_restore_refuses_garbage(tmp_path: Path, ks: KeyStore) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValidationError, match=r"bad\.db"):
        ks.restore(bad)
    with pytest.raises(NotFound):
        ks.restore(tmp_path / "missing.db")


def test_rewrap(tmp_path: Path, master: bytes) -> None:
    path = tmp_path / "ks.db"
    ks = KeyStore(path, master)
    for i in range(5):
        ks.create(f"subject:{i}")
    ks.destroy("subject:4")
    keys = {i: ks.get(f"subject:{i}") for i in range(4)}
    old_wrapped = _wrapped(path, "subject:0")
    new_master = generate_key()
    assert ks.rewrap(new_master) == 4
    assert _wrapped(path, "subject:0") != old_wrapped
    ks.close()
    with pytest.raises(ConfigurationError):
        KeyStore(path, master)
    ks = KeyStore(path, new_master)
    assert {i: ks.get(f"subject:{i}") for i in range(4)} == keys
    assert ks.is_destroyed("subject:4")
    ks.close()


def test_restore_backup_made_before_master_key_rotation(tmp_path: Path, master: bytes) -> None:
    ks = KeyStore(tmp_path / "ks.db", master)
    ks.create("subject:a")
    key_a = ks.get("subject:a")
    ks.backup(tmp_path / "old.db")
    new_master = generate_key()
    ks.rewrap(new_master)
    with pytest.raises(ConfigurationError, match="does not open"):
        ks.restore(tmp_path / "old.db")
    ks.restore(tmp_path / "old.db", backup_master_key=master)
    assert ks.get("subject:a") == key_a
    ks.close()
    KeyStore(tmp_path / "ks.db", new_master).close()  # rewrapped to the current master key


def test_from_settings_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACELEADS_MASTER_KEY", raising=False)
    monkeypatch.delenv("FACELEADS_MASTER_KEY_FILE", raising=False)
    settings = Settings(mode="dev", data_dir=tmp_path)
    ks = KeyStore.from_settings(settings)
    assert ks.path == default_keystore_path(settings) == tmp_path / "keys" / "keystore.db"
    ks.create("subject:a")
    ks.close()
    with KeyStore.from_settings(settings) as again:
        assert len(again.get("subject:a")) == 32


def _create_many(path: str, master_hex: str, out: str) -> None:
    ks = KeyStore(Path(path), bytes.fromhex(master_hex))
    keys = {}
    for i in range(30):
        ks.create(f"subject:{i}")
        keys[f"subject:{i}"] = ks.get(f"subject:{i}").hex()
    ks.close()
    Path(out).write_text("\n".join(f"{k} {v}" for k, v in sorted(keys.items())))


def test_concurrent_processes_agree_on_keys(tmp_path: Path, master: bytes) -> None:
    """Enrolment workers in separate processes racing to create the same subjects' keys get one key each."""
    import multiprocessing

    path = tmp_path / "keys" / "keystore.db"
    ctx = multiprocessing.get_context("spawn")
    outs = [tmp_path / f"out{i}.txt" for i in range(2)]
    procs = [ctx.Process(target=_create_many, args=(str(path), master.hex(), str(o))) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert outs[0].read_text() == outs[1].read_text()
    with KeyStore(path, master) as ks:
        assert len(ks.key_ids()) == 30
