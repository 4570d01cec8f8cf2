"""Encrypted face templates of the gallery: the searched (possibly fused) template and each model's own template.

A ``face_templates`` row holds the template of the running recognition pipeline in ``embedding`` (its version in
``model_version``). When that pipeline fuses several models, each model's own template is kept too, in
``member_templates``, encrypted under the subject's key and bound to the subject, the photo and that model's
version, so `reindex` can add a model to, or drop one from, the fusion without recomputing the others. A
single-model template is its model's template (no duplicate is stored).
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceleads.errors import IntegrityError
from faceleads.gallery.models import FaceTemplate, Subject, SubjectStatus
from faceleads.gallery.runtime import template_context
from faceleads.storage.crypto import OVERHEAD, decrypt_embedding, encrypt_embedding

FUSED_PREFIX = "fused("


def is_fused(model_version: str) -> bool:
    """Whether a template version names a fusion of several models (see faceleads.vision.recognition)."""
    return model_version.startswith(FUSED_PREFIX)


def encrypt_members(
    key: bytes, key_id: str, sha256: str, members: Mapping[str, tuple[np.ndarray, float]]
) -> dict[str, Any]:
    """The ``member_templates`` value for several models' unit templates ({version: (vector, raw norm)})."""
    out: dict[str, Any] = {}
    for version, (vector, norm) in members.items():
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        blob = encrypt_embedding(key, vec, template_context(key_id, sha256, version), dim=vec.size)
        out[version] = {"ciphertext": base64.b64encode(blob).decode("ascii"), "norm": float(norm), "dim": vec.size}
    return out


def blob_dim(blob: bytes) -> int:
    """Number of float32 values in an encrypted template (its length less the envelope, over 4)."""
    return max(0, (len(blob) - OVERHEAD) // 4)


def decrypt_members(
    key: bytes,
    key_id: str,
    sha256: str,
    model_version: str,
    embedding: bytes,
    members: Mapping[str, Any],
    wanted: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    """The per-model templates recoverable from a row (only the ``wanted`` versions, when given): its member
    templates, or, for a single-model row, the row's own template.

    A ciphertext that fails authentication (tampered, swapped) is left out: the caller recomputes that model's
    template from the original photo, whose own encryption is checked separately.
    """
    out: dict[str, np.ndarray] = {}
    candidates: list[tuple[str, bytes]] = [
        (version, base64.b64decode(entry["ciphertext"])) for version, entry in (members or {}).items()
    ]
    if not is_fused(model_version):
        candidates.append((model_version, embedding))
    for version, blob in candidates:
        if version in out or (wanted is not None and version not in wanted):
            continue
        try:
            out[version] = decrypt_embedding(
                key, blob, template_context(key_id, sha256, version), dim=blob_dim(blob)
            )
        except IntegrityError:
            continue
    return out


def template_versions(session: Session, agency_id: int) -> dict[str, int]:
    """Number of searchable (active-subject) templates of the agency per template version."""
    rows = session.execute(
        select(FaceTemplate.model_version, func.count())
        .join(Subject, Subject.id == FaceTemplate.subject_id)
        .where(Subject.agency_id == agency_id, Subject.status == SubjectStatus.ACTIVE.value)
        .group_by(FaceTemplate.model_version)
    ).all()
    return {str(version): int(count) for version, count in rows}
