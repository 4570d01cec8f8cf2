"""Re-embedding of templates made by another template version (a model upgrade, flip averaging switched on or off,
a recognition model added to or dropped from the fusion).

Stale templates (``model_version`` other than the running pipeline's) are never searched; :func:`stale_templates`
counts them and :func:`reindex` brings them up to date. For each one, the per-model templates it already holds are
reused (decrypted from the row: a fused row keeps each model's own template) and only the missing models are run,
on the face re-aligned from the stored landmarks (decrypted from the sealed geometry,
:mod:`faceleads.gallery.geometry`) in the decrypted original, so adding a second model to a gallery costs one
embedding per photo for that model alone and never changes which face was enrolled. The row is replaced (old
deleted, new inserted, one transaction per photo) so that every process's index notices, and an interrupted
reindex simply continues where it stopped."""

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
from faceleads.gallery.models import FaceTemplate, Image, Subject, SubjectStatus
from faceleads.gallery.runtime import GalleryRuntime, image_context, template_context
from faceleads.gallery.templates import decrypt_members, encrypt_members, template_versions
from faceleads.storage.crypto import encrypt_embedding


@dataclass
class ReindexReport:
    """Outcome of :func:`reindex` (or, with ``dry_run``, what it would do)."""

    model_version: str
    candidates: int = 0
    reembedded: int = 0
    no_face: int = 0  # kept for compatibility: re-alignment uses the stored landmarks, so this stays 0
    failed: int = 0
    reused: int = 0  # per-model templates taken over from the old row without recomputation
    computed: dict[str, int] = field(default_factory=dict)  # model version -> templates computed
    stale_versions: dict[str, int] = field(default_factory=dict)  # template version -> count, before the run
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "candidates": self.candidates,
            "reembedded": self.reembedded,
            "no_face": self.no_face,
            "failed": self.failed,
            "reused": self.reused,
            "computed": self.computed,
            "stale_versions": self.stale_versions,
            "problems": self.problems,
        }


def stale_templates(rt: GalleryRuntime, actor: Actor) -> dict[str, int]:
    """Searchable templates of the actor's agency made by another version than the running one, per version.

    These are not searched until `faceleads reindex` re-embeds them (their scores are not comparable).
    """
    require(actor, Action.REINDEX, actor.agency_id)
    with rt.session_factory() as session:
        versions = template_versions(session, actor.agency_id)
    versions.pop(rt.model_version, None)
    return versions


def _reembed(rt: GalleryRuntime, session: Any, old: FaceTemplate, report: ReindexReport) -> tuple[Any, np.ndarray]:
    """Build the replacement row of ``old`` (not yet added) and its searched template."""
    from faceleads.vision.align import align_face
    from faceleads.vision.imaging import load_image

    engine = rt.face_engine
    fused = engine.recognizer
    image = session.get(Image, old.image_id)
    subject = session.get(Subject, old.subject_id)
    assert image is not None and subject is not None and image.store_address is not None
    key = rt.keystore.get(subject.key_id)
    wanted = {m.version for m in fused.members}
    have = decrypt_members(
        key, subject.key_id, image.sha256, old.model_version, old.embedding, old.member_templates, wanted
    )
    missing = [m for m in fused.members if m.version not in have]
    norms: dict[str, float] = {v: float(e.get("norm", 0.0)) for v, e in (old.member_templates or {}).items()}
    if old.model_version in have:
        norms.setdefault(old.model_version, float(old.embedding_norm))
    if old.geometry is not None:
        # Bound to the subject and the photo, not to the row: the replacement row keeps the same sealed geometry.
        sealed = old.geometry
    else:  # a row from before hardening_1 not sealed yet (sealed at every start, but never written in clear again)
        legacy = template_geometry(rt.keystore, subject, image, old)
        sealed = seal(key, legacy.box, legacy.landmarks, geometry_context(subject.key_id, image.sha256))
    if missing:
        landmarks = template_geometry(rt.keystore, subject, image, old).landmarks
        data = rt.store.get(subject.key_id, image.store_address, image_context(image.sha256))
        # Decoded reduced when large (an aligned 112 px crop needs no more); the stored landmarks refer to the
        # original picture's pixels and are mapped into the decoded ones.
        loaded = load_image(data, rt.settings, reduce_to=rt.settings.decode_reduce_pixels)
        crop = align_face(loaded.pixels, loaded.to_decoded(landmarks))[None]
        for member in missing:
            vectors, raw_norms = member.embed(crop)
            have[member.version] = vectors[0]
            norms[member.version] = float(raw_norms[0])
            report.computed[member.version] = report.computed.get(member.version, 0) + 1
    report.reused += len(fused.members) - len(missing)
    parts = [np.asarray(have[m.version], dtype=np.float32)[None] for m in fused.members]
    vector = fused.compose(parts)[0]
    current = engine.model_version
    members = {} if fused.single else {m.version: (have[m.version], norms.get(m.version, 0.0)) for m in fused.members}
    new = FaceTemplate(
        image_id=image.id,
        subject_id=subject.id,
        gallery_id=image.gallery_id,
        geometry=sealed,
        detector_score=float(old.detector_score),
        quality=dict(old.quality),
        quality_overall=float(old.quality_overall),
        model_name=engine.model_name,
        model_version=current,
        embedding=encrypt_embedding(
            key, vector, template_context(subject.key_id, image.sha256, current), dim=vector.size
        ),
        embedding_norm=norms.get(fused.members[0].version, float(old.embedding_norm)),
        member_templates=encrypt_members(key, subject.key_id, image.sha256, members),
        found_by=old.found_by,
    )
    return new, vector


def reindex(
    rt: GalleryRuntime,
    actor: Actor,
    progress: Callable[[int, int], None] | None = None,
    *,
    dry_run: bool = False,
) -> ReindexReport:
    """Re-embed every template of the actor's agency not made by the running template version.

    ``dry_run``: only count the stale templates per version (``stale_versions``, ``candidates``); nothing changes.
    """
    require(actor, Action.REINDEX, actor.agency_id)
    current = rt.model_version
    report = ReindexReport(current, stale_versions=stale_templates(rt, actor))
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
    if dry_run:
        return report
    if progress:
        progress(0, len(todo))
    for done, template_id in enumerate(todo, start=1):
        try:
            with transaction(rt.session_factory) as session:
                old = session.get(FaceTemplate, template_id)
                if old is None or old.model_version == current:
                    continue  # done meanwhile
                new, vector = _reembed(rt, session, old, report)
                session.delete(old)
                session.flush()
                session.add(new)
                session.flush()
                new_entry = (new.id, new.subject_id, new.gallery_id, vector)
                report.reembedded += 1
            rt.remove_templates([template_id])
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
            details={
                "reembedded_count": report.reembedded,
                "failed_count": report.failed,
                "reused_count": report.reused,
            },
        )
    return report
