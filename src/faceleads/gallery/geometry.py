"""Face geometry of enrolled templates — the face box and the five landmarks — encrypted like the embedding.

Landmark positions are biometric (inter-ocular distance, face proportions) and, with the box, locate the face in a
photo of a named person; they are sealed with the subject's data key (AES-256-GCM), bound to the subject and the
photo (:func:`geometry_context`), so that a crypto-shredded subject leaves no readable geometry behind and a database
reader learns nothing from the ``face_templates`` table.

Ciphertext payload: compact JSON ``{"box": [x1, y1, x2, y2], "landmarks": [[x, y] * 5]}`` (image pixels of the
original photo). Rows written before this (clear ``box``/``landmarks`` columns) are sealed at the first start after
the upgrade by :func:`seal_legacy_geometry` — migrations cannot do it because they have no access to the keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from faceleads.core.uow import transaction
from faceleads.errors import IntegrityError, KeyDestroyedError
from faceleads.gallery.models import FaceTemplate, Image, Subject, SubjectStatus
from faceleads.storage.crypto import decrypt, encrypt
from faceleads.storage.keystore import KeyStore

_AAD_PREFIX = b"faceleads-geometry|"


@dataclass(frozen=True)
class Geometry:
    """A face's box (x1, y1, x2, y2) and five landmarks (x, y), in pixels of the original photo."""

    box: list[float]
    landmarks: list[list[float]]


def _clean(box: Any, landmarks: Any) -> Geometry:
    try:
        b = [float(v) for v in box]
        pts = [[float(x), float(y)] for x, y in landmarks]
    except (TypeError, ValueError):
        raise IntegrityError("face geometry is malformed") from None
    if len(b) != 4 or len(pts) != 5 or not all(math.isfinite(v) for v in [*b, *(c for p in pts for c in p)]):
        raise IntegrityError("face geometry must be a box of 4 and 5 landmark points, all finite")
    return Geometry(b, pts)


def seal(key: bytes, box: Any, landmarks: Any, context: str) -> bytes:
    """Encrypt a face's box and landmarks under the subject's ``key``, bound to ``context``
    (:func:`geometry_context`)."""
    geometry = _clean(box, landmarks)
    payload = json.dumps({"box": geometry.box, "landmarks": geometry.landmarks}, separators=(",", ":"))
    return encrypt(key, payload.encode("utf-8"), _AAD_PREFIX + context.encode("utf-8"))


def unseal(key: bytes, blob: bytes, context: str) -> Geometry:
    """Decrypt what :func:`seal` made; :class:`IntegrityError` when tampered, swapped or malformed."""
    data = json.loads(decrypt(key, blob, _AAD_PREFIX + context.encode("utf-8")))
    return _clean(data.get("box"), data.get("landmarks"))


def geometry_context(subject_key_id: str, image_sha256: str) -> str:
    """Associated data binding sealed geometry to its subject and photo (one template per photo)."""
    return f"template-geometry|{subject_key_id}|{image_sha256}"


def template_geometry(keystore: KeyStore, subject: Subject, image: Image, template: FaceTemplate) -> Geometry:
    """The geometry of an enrolled template (decrypted; a row not yet sealed is read as it is)."""
    if template.geometry is not None:
        context = geometry_context(subject.key_id, image.sha256)
        return unseal(keystore.get(subject.key_id), template.geometry, context)
    return _clean(template.box, template.landmarks)


def seal_legacy_geometry(session_factory: sessionmaker[Session], keystore: Callable[[], KeyStore]) -> int:
    """Seal the clear-text geometry of templates written before it was encrypted, and erase the clear columns.

    Run at every start: one indexed query when there is nothing to do, and ``keystore`` is only opened when
    needed. Subjects being or already destroyed have no key: their clear geometry is simply erased. On SQLite the
    freed bytes are overwritten (``secure_delete``) and the WAL is checkpointed, so the clear values do not linger
    in the file. Returns the number of rows changed.
    """
    # Written exactly as the partial index ix_face_templates_clear_geometry, so the check reads that (empty) index.
    legacy = text("face_templates.box IS NOT NULL OR face_templates.landmarks IS NOT NULL")
    with session_factory() as session:
        if session.scalar(select(FaceTemplate.id).where(legacy).limit(1)) is None:
            return 0
    keys = keystore()
    changed = 0
    with transaction(session_factory) as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
        if sqlite:
            session.execute(text("PRAGMA secure_delete=ON"))
        rows = session.execute(
            select(FaceTemplate, Subject, Image)
            .join(Subject, Subject.id == FaceTemplate.subject_id)
            .join(Image, Image.id == FaceTemplate.image_id)
            .where(legacy)
        ).all()
        for template, subject, image in rows:
            if subject.status == SubjectStatus.ACTIVE.value and template.geometry is None:
                try:
                    key = keys.get(subject.key_id)
                except KeyDestroyedError:
                    key = None  # nothing of this subject can be read any more: just erase
                if key is not None:
                    context = geometry_context(subject.key_id, image.sha256)
                    template.geometry = seal(key, template.box, template.landmarks, context)
            template.box = None
            template.landmarks = None
            changed += 1
    if changed:
        with session_factory() as session:
            if session.get_bind().dialect.name == "sqlite":
                session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    return changed
