"""AES-256-GCM primitives, embedding helpers and master key loading."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from faceleads.config import Settings
from faceleads.errors import ConfigurationError, FaceleadsError, IntegrityError, ValidationError
from faceleads.storage.crypto import (
    HEADER,
    NONCE_BYTES,
    OVERHEAD,
    decrypt,
    decrypt_embedding,
    encrypt,
    encrypt_embedding,
    generate_key,
    load_master_key,
)

FACES = Path(__file__).resolve().parents[2] / ".." / "shared" / "faces"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FACELEADS_MASTER_KEY", "FACELEADS_MASTER_KEY_FILE", "FACELEADS_MODE", "FACELEADS_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def _photo() -> bytes:
    photos = sorted((FACES / "lfw-dev").rglob("*.jpg"))
    assert photos, f"test data missing under {FACES}"
    return photos[0].read_bytes()


def test_round_trip_real_photo() -> None:
    key = generate_key()
    data = _photo()
    blob = encrypt(key, data, b"rec-1")
    assert blob[:4] == HEADER
    assert len(blob) == len(data) + OVERHEAD
    assert data not in blob
    assert decrypt(key, blob, b"rec-1") == data


def test_nonce_is_random_per_call() -> None:
    key = generate_key()
    a, b = encrypt(key, b"same", b""), encrypt(key, b"same", b"")
    assert a != b
    assert a[4 : 4 + NONCE_BYTES] != b[4 : 4 + NONCE_BYTES]


def test_integrity_error_is_a_faceleads_error() -> None:
    assert issubclass(IntegrityError, FaceleadsError)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b: b[:-1], id="truncated-tag"),
        pytest.param(lambda b: b[:10], id="truncated-header"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:], id="flipped-ciphertext-bit"),
        pytest.param(lambda b: b[:5] + bytes([b[5] ^ 0x80]) + b[6:], id="flipped-nonce-bit"),
        pytest.param(lambda b: b"XLE" + b[3:], id="bad-magic"),
        pytest.param(lambda b: b[:3] + b"\x02" + b[4:], id="unknown-version"),
    ],
)
def test_tampering_is_detected(mutate: object) -> None:
    key = generate_key()
    blob = encrypt(key, b"booking photo bytes" * 10, b"rec-1")
    with pytest.raises(IntegrityError):
        decrypt(key, mutate(blob), b"rec-1")  # type: ignore[operator]


def test_wrong_aad_and_wrong_key_fail() -> None:
    key = generate_key()
    blob = encrypt(key, b"payload", b"rec-1")
    with pytest.raises(IntegrityError, match="another record or key"):
        decrypt(key, blob, b"rec-2")
    with pytest.raises(IntegrityError):
        decrypt(generate_key(), blob, b"rec-1")


def test_bad_key_length_is_refused() -> None:
    with pytest.raises(ValidationError, match="32 bytes, got 16"):
        encrypt(b"k" * 16, b"x", b"")


def test_embedding_round_trip_and_binding() -> None:
    key = generate_key()
    rng = np.random.default_rng(0)
    vec = rng.standard_normal(512).astype(np.float32)
    vec /= np.linalg.norm(vec)
    blob = encrypt_embedding(key, vec, "template:1")
    assert vec.tobytes() not in blob
    out = decrypt_embedding(key, blob, "template:1")
    assert out.dtype == np.float32 and out.shape == (512,)
    np.testing.assert_array_equal(out, vec)
    out[0] = 5.0  # writable copy, not a view on the plaintext buffer
    with pytest.raises(IntegrityError):
        decrypt_embedding(key, blob, "template:2")
    # A generic blob under the same context is not an embedding (domain-separated associated data).
    with pytest.raises(IntegrityError):
        decrypt(key, blob, b"template:1")


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        (np.zeros(128, np.float32), "shape"),
        (np.zeros((1, 512), np.float32), "shape"),
        (np.zeros(512, np.int32), "floating"),
        (np.full(512, np.nan, np.float32), "NaN"),
    ],
)
def test_bad_embeddings_are_refused(vector: np.ndarray, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        encrypt_embedding(generate_key(), vector, "t")


# -- master key ---------------------------------------------------------------------------------------------


def _b64key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_master_key_from_env_value(tmp_path: Path) -> None:
    text = _b64key()
    settings = Settings(mode="production", data_dir=tmp_path, master_key=text)
    assert load_master_key(settings) == base64.b64decode(text)
    assert not (tmp_path / "master.key").exists()


def test_master_key_read_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _b64key()
    monkeypatch.setenv("FACELEADS_MASTER_KEY", text)
    monkeypatch.setenv("FACELEADS_MODE", "production")
    monkeypatch.setenv("FACELEADS_DATA_DIR", str(tmp_path))
    assert load_master_key(Settings()) == base64.b64decode(text)


def test_master_key_from_file(tmp_path: Path) -> None:
    text = _b64key()
    key_file = tmp_path / "secrets" / "mk"
    key_file.parent.mkdir()
    key_file.write_text(text + "\n")
    settings = Settings(mode="production", data_dir=tmp_path, master_key_file=key_file)
    assert load_master_key(settings) == base64.b64decode(text)


def test_missing_master_key_refused_outside_dev(tmp_path: Path) -> None:
    settings = Settings(mode="production", data_dir=tmp_path)
    with pytest.raises(ConfigurationError) as info:
        load_master_key(settings)
    assert "FACELEADS_MASTER_KEY" in str(info.value)
    assert str(tmp_path / "master.key") in str(info.value)
    assert not (tmp_path / "master.key").exists()


def test_dev_mode_generates_key_file_once(tmp_path: Path) -> None:
    settings = Settings(mode="dev", data_dir=tmp_path / "new" / "data")
    key = load_master_key(settings)
    path = settings.effective_master_key_file
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text()) == key
    assert load_master_key(settings) == key  # reused, not regenerated
    assert load_master_key(Settings(mode="dev", data_dir=tmp_path / "new" / "data")) == key
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64 !!", "not valid base64"),
        (base64.b64encode(b"short").decode(), "got 5"),
        (base64.b64encode(b"x" * 64).decode(), "got 64"),
        ("", "got 0"),
    ],
)
def test_malformed_master_key_file(tmp_path: Path, text: str, message: str) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(text)
    for mode in ("dev", "production"):  # dev mode must not silently replace a bad key either
        with pytest.raises(ConfigurationError, match=message):
            load_master_key(Settings(mode=mode, data_dir=tmp_path))
    assert key_file.read_text() == text


def test_malformed_master_key_env_names_variable(tmp_path: Path) -> None:
    settings = Settings(mode="production", data_dir=tmp_path, master_key="abc")
    with pytest.raises(ConfigurationError, match="FACELEADS_MASTER_KEY"):
        load_master_key(settings)


def test_binary_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "master.key").write_bytes(os.urandom(32) + b"\xff")
    with pytest.raises(ConfigurationError, match="master key"):
        load_master_key(Settings(mode="production", data_dir=tmp_path))
