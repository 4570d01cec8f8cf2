"""Face images for display: enrolled photos (decrypted, authorised, audited) and probe workspaces, plus aligned
comparison crops.

Gallery images are only ever returned through :func:`gallery_image`, which asks the policy through the request's
:class:`~faceleads.web.deps.Scope` (own agency, or shared by an agreement in force), decrypts the original from the
encrypted store and records the view in the audit log. Responses carry ``Cache-Control: no-store``.

Probes: until the casework domain stores probe evidence, an uploaded probe lives only in this process's memory,
in a per-user workspace that expires after an hour (or at sign-out) — never on disk, never enrolled.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from sqlalchemy.orm import Session

from faceleads.errors import NotFound, ValidationError
from faceleads.gallery.models import FaceTemplate, Image, Subject
from faceleads.governance import audit
from faceleads.security.actor import Actor
from faceleads.security.policy import Action
from faceleads.vision.align import ALIGNED_SIZE, ARCFACE_TEMPLATE, estimate_similarity, transform_points
from faceleads.vision.imaging import encode_jpeg, load_image
from faceleads.vision.types import Face
from faceleads.web.deps import Scope

COMPARE_SIZE = 384  # comparison crops: square, eyes at the same place in every crop
# The ArcFace template fills the middle half of the crop, leaving forehead, ears and chin visible.
_TEMPLATE_SCALE = 0.5


def compare_matrix(landmarks: Any, size: int = COMPARE_SIZE) -> np.ndarray:
    """Similarity transform putting the five landmarks where the scaled ArcFace template puts them in the crop."""
    scale = size * _TEMPLATE_SCALE / ALIGNED_SIZE
    target = ARCFACE_TEMPLATE * scale + size * (1 - _TEMPLATE_SCALE) / 2
    return estimate_similarity(np.asarray(landmarks, dtype=np.float32), target)


def compare_crop(pixels: np.ndarray, landmarks: Any, size: int = COMPARE_SIZE) -> tuple[bytes, list[list[float]]]:
    """(JPEG of the aligned comparison crop, landmarks in crop coordinates)."""
    matrix = compare_matrix(landmarks, size)
    crop = cv2.warpAffine(pixels, matrix, (size, size), flags=cv2.INTER_CUBIC, borderValue=(24, 24, 24))
    points = transform_points(np.asarray(landmarks, dtype=np.float32), matrix)
    return encode_jpeg(np.ascontiguousarray(crop, dtype=np.uint8), quality=92), [
        [round(float(x), 1), round(float(y), 1)] for x, y in points
    ]


# --- gallery images --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GalleryPhoto:
    """A decrypted enrolled photo and what the comparison view needs about it."""

    image_id: int
    subject_id: int
    subject_number: str
    agency_id: int
    data: bytes
    landmarks: list[list[float]] | None
    box: list[float] | None


def _load_gallery_photo(scope: Scope, session: Session, image_id: int, purpose_ref: str) -> GalleryPhoto:
    image = session.get(Image, image_id)
    if image is None:
        raise NotFound(f"no image {image_id}")
    subject = session.get(Subject, image.subject_id)
    # A subject being destroyed (or destroyed) is never shown, even before its key is shredded.
    if subject is None or image.store_address is None or subject.status != "active":
        raise NotFound(f"no image {image_id}")
    scope.require_gallery_item(session, Action.VIEW_GALLERY_IMAGE, f"image:{image_id}", subject.agency_id,
                               image.gallery_id)  # fmt: skip
    data = scope.rt.read_photo(subject, image)
    template = session.query(FaceTemplate).filter(FaceTemplate.image_id == image_id).first()
    return GalleryPhoto(
        image_id=image.id,
        subject_id=subject.id,
        subject_number=subject.subject_number,
        agency_id=subject.agency_id,
        data=data,
        landmarks=[list(p) for p in template.landmarks] if template else None,
        box=list(template.box) if template else None,
    )


def gallery_image(scope: Scope, image_id: int, *, view: str = "original", case: str | None = None) -> tuple[
    bytes, str
]:
    """An enrolled photo (``view`` 'original') or its aligned comparison crop ('aligned'), authorised and audited.

    Returns (bytes, media type).
    """
    if view not in ("original", "aligned"):
        raise ValidationError("view must be 'original' or 'aligned'")
    with scope.rt.session_factory() as session:
        photo = _load_gallery_photo(scope, session, image_id, view)
    if view == "aligned":
        if photo.landmarks is None:
            raise NotFound(f"image {image_id} has no enrolled face to align")
        loaded = load_image(photo.data, scope.rt.settings)
        body, _ = compare_crop(loaded.pixels, photo.landmarks)
        media = "image/jpeg"
    else:
        body, media = photo.data, _media_type(photo.data)
    audit.record_now(
        scope.rt.session_factory,
        scope.actor,
        audit.AuditAction.VIEW_GALLERY_IMAGE,
        f"image:{image_id}",
        case=case[:100] if case else None,
        details={"subject_id": photo.subject_id, "view": view},
    )
    return body, media


def gallery_landmarks(scope: Scope, image_id: int) -> list[list[float]] | None:
    """Landmarks of an enrolled photo's face in comparison-crop coordinates (policy-checked, not an image view)."""
    with scope.rt.session_factory() as session:
        image = session.get(Image, image_id)
        if image is None:
            raise NotFound(f"no image {image_id}")
        subject = session.get(Subject, image.subject_id)
        if subject is None:
            raise NotFound(f"no image {image_id}")
        scope.require_gallery_item(session, Action.VIEW_GALLERY_RECORD, f"image:{image_id}", subject.agency_id,
                                   image.gallery_id)  # fmt: skip
        template = session.query(FaceTemplate).filter(FaceTemplate.image_id == image_id).first()
        if template is None:
            return None
        matrix = compare_matrix(template.landmarks)
        points = transform_points(np.asarray(template.landmarks, dtype=np.float32), matrix)
        return [[round(float(x), 1), round(float(y), 1)] for x, y in points]


def _media_type(data: bytes) -> str:
    from faceleads.vision.imaging import image_format

    fmt = image_format(data) or "JPEG"
    return {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "TIFF": "image/tiff",
            "WEBP": "image/webp"}.get(fmt, "application/octet-stream")  # fmt: skip


# --- probe workspaces ------------------------------------------------------------------------------------------


@dataclass
class ProbeFace:
    """A face found in a probe (or drawn by the analyst), without its embedding."""

    number: int  # 1-based, most prominent first (the search's face numbering)
    box: list[float]
    landmarks: list[list[float]]
    score: float
    quality: dict[str, float]
    drawn: bool = False
    found_by: str = "detector"  # detection path (docs/detection.md)

    @classmethod
    def from_face(cls, number: int, face: Face, drawn: bool = False) -> ProbeFace:
        data = face.to_json()
        return cls(number, data["box"], data["landmarks"], data["score"], data["quality"], drawn, face.found_by)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "box": self.box,
            "landmarks": self.landmarks,
            "score": self.score,
            "quality": self.quality,
            "drawn": self.drawn,
            "found_by": self.found_by,
        }


@dataclass
class Probe:
    """An uploaded probe held in memory for one user."""

    probe_id: str
    user_id: int | None
    agency_id: int
    data: bytes = field(repr=False)
    sha256: str
    width: int
    height: int
    filename: str
    faces: list[ProbeFace]
    created: float = field(default_factory=time.monotonic)
    searches: list[int] = field(default_factory=list)


class ProbeWorkspace:
    """Per-user in-memory probes with a time limit and count and byte bounds (oldest dropped first)."""

    def __init__(self, ttl_seconds: float = 3600.0, max_probes: int = 200, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.ttl = ttl_seconds
        self.max_probes = max_probes
        self.max_bytes = max_bytes
        self._probes: dict[str, Probe] = {}
        self._lock = threading.Lock()

    def add(self, actor: Actor, data: bytes, sha256: str, width: int, height: int, filename: str,
            faces: list[ProbeFace]) -> Probe:  # fmt: skip
        """Keep a probe for ``actor``; returns it with a fresh unguessable id."""
        probe = Probe(secrets.token_urlsafe(12), actor.user_id, actor.agency_id, data, sha256, width, height,
                      filename[:200], faces)  # fmt: skip
        with self._lock:
            self._expire()
            while self._probes and (
                len(self._probes) >= self.max_probes
                or sum(len(p.data) for p in self._probes.values()) + len(data) > self.max_bytes
            ):
                oldest = min(self._probes.values(), key=lambda p: p.created)
                del self._probes[oldest.probe_id]
            self._probes[probe.probe_id] = probe
        return probe

    def get(self, actor: Actor, probe_id: str) -> Probe:
        """The actor's probe (NotFound for another user's, or an expired one)."""
        with self._lock:
            self._expire()
            probe = self._probes.get(probe_id)
        if probe is None or probe.user_id != actor.user_id or probe.agency_id != actor.agency_id:
            raise NotFound("no such probe in your workspace (probes are kept for one hour): upload it again")
        return probe

    def mine(self, actor: Actor) -> list[Probe]:
        """The actor's probes, newest first."""
        with self._lock:
            self._expire()
            own = [p for p in self._probes.values() if p.user_id == actor.user_id]
        return sorted(own, key=lambda p: -p.created)

    def drop_user(self, user_id: int | None) -> None:
        """Forget every probe of a user (sign-out)."""
        with self._lock:
            for key in [k for k, p in self._probes.items() if p.user_id == user_id]:
                del self._probes[key]

    def _expire(self) -> None:
        limit = time.monotonic() - self.ttl
        for key in [k for k, p in self._probes.items() if p.created < limit]:
            del self._probes[key]
