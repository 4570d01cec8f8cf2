"""Re-embedding of templates made by another model version (after a model upgrade).

For each such template: the encrypted original is decrypted, the face is detected again (the detection closest
to the stored box is kept), embedded with the current model, and the template is replaced — old row deleted, new
row inserted — in one transaction per photo, so an interrupted reindex simply continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, require
from faceleads.core.uow import transaction
from faceleads.errors import FaceleadsError
from faceleads.gallery.geometry import geometry_context, seal, template_geometry
from faceleads.gallery.models import FaceTemplate, Image, ImageFlag, Subject, SubjectStatus
from faceleads.gallery.runtime import GalleryRuntime, image_context, template_context
from faceleads.storage.crypto import encrypt_embedding


@dataclass
class ReindexReport:
    """Outcome of :func:`reindex`."""

    model_version: str
    candidates: int = 0
    reembedded: int = 0
    no_face: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "candidates": self.candidates,
            "reembedded": self.reembedded,
            "no_face": self.no_face,
            "failed": self.failed,
            "problems": self.problems,
        }


def _iou(a: list[float], b: np.ndarray) -> float:
    ix1, iy1 = max(a[0], float(b[0])), max(a[1], float(b[1]))
    ix2, iy2 = min(a[2], float(b[2])), min(a[3], float(b[3]))
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + float((b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def reindex(rt: GalleryRuntime, actor: Actor, progress: Callable[[int, int], None] | None = None) -> ReindexReport:
    """Re-embed every template of the actor's agency not made by the current model."""
    from faceleads.vision.imaging import load_image

    require(actor, Action.REINDEX, actor.agency_id)
    engine = rt.face_engine
    current = engine.model_version
    report = ReindexReport(current)
    with rt.session_factory() as session:
        todo = list(
            session.execute(
                select(FaceTemplate.id)
                .join(Subject, Subject.id == FaceTemplate.subject_id)
                .where(
                    Subject.agency_id == actor.agency_id,
                    Subject.status == SubjectStatus.ACTIVE.value,
                    FaceTemplate.model_version != current,
                )
                .order_by(FaceTemplate.id)
            ).scalars()
        )
    report.candidates = len(todo)
    if progress:
        progress(0, len(todo))
    for done, template_id in enumerate(todo, start=1):
        try:
            with transaction(rt.session_factory) as session:
                old = session.get(FaceTemplate, template_id)
                if old is None or old.model_version == current:
                    continue  # done meanwhile
                image = session.get(Image, old.image_id)
                subject = session.get(Subject, old.subject_id)
                assert image is not None and subject is not None and image.store_address is not None
                data = rt.store.get(subject.key_id, image.store_address, image_context(image.sha256))
                loaded = load_image(data, rt.settings, reduce_to=rt.settings.decode_reduce_pixels)
                pixels = loaded.pixels
                faces = engine.detect_loaded(loaded)
                old_box = template_geometry(rt.keystore, subject, image, old).box
                session.delete(old)
                session.flush()
                new_entry = None
                if not faces:
                    image.flags = sorted({*image.flags, ImageFlag.NO_FACE.value})
                    report.no_face += 1
                else:
                    face = max(faces, key=lambda f: _iou(old_box, f.box))
                    engine.embed_faces(pixels, [face])
                    assert face.embedding is not None and face.embedding_norm is not None
                    key = rt.keystore.get(subject.key_id)
                    context = template_context(subject.key_id, image.sha256, current)
                    new = FaceTemplate(
                        image_id=image.id,
                        subject_id=subject.id,
                        gallery_id=image.gallery_id,
                        geometry=seal(key, face.box, face.landmarks, geometry_context(subject.key_id, image.sha256)),
                        detector_score=float(face.score),
                        quality=face.quality.as_dict(),
                        quality_overall=float(face.quality.overall),
                        model_name=engine.model_name,
                        model_version=current,
                        embedding=encrypt_embedding(key, face.embedding, context),
                        embedding_norm=float(face.embedding_norm),
                    )
                    session.add(new)
                    session.flush()
                    new_entry = (new.id, subject.id, image.gallery_id, np.asarray(face.embedding, np.float32))
                    report.reembedded += 1
            rt.remove_templates([template_id])
            if new_entry is not None:
                rt.add_templates([new_entry])
        except FaceleadsError as exc:
            report.failed += 1
            report.problems.append(f"template {template_id}: {exc}")
        if progress:
            progress(done, len(todo))
    with transaction(rt.session_factory) as session:
        audit.record(
            session,
            actor,
            "reindex",
            f"model:{current}"[:300],
            audit.Outcome.OK,
            details={"reembedded_count": report.reembedded, "failed_count": report.failed},
        )
    return report
