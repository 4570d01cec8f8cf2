"""Probe evidence: intake (photo or recorded video), the non-destructive edit list, face choice (detected or drawn),
quality and its supervisor override, and the probe images (original and edited) for viewing and reports.

Originals are hashed on intake and stored encrypted under the case's key; they are never altered. The edited image
is derived from the original on demand. Probes are never enrolled into the gallery.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from faceleads.casework import edits as edit_ops
from faceleads.casework.common import (
    as_utc,
    authorise,
    case_key,
    clean_text,
    evidence_context,
    frame_context,
    get_case,
    get_probe,
    probe_template_context,
    require_open,
    same_person,
)
from faceleads.casework.models import Authorisation, Case, Evidence, Probe, ProbeEditEvent
from faceleads.casework.video import TrackerConfig, VideoAnalysis, analyse_video, check_video_path
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, enforce
from faceleads.core.uow import transaction
from faceleads.db import utcnow
from faceleads.errors import ImageError, NoFaceError, NotFound, PermissionDenied, ValidationError
from faceleads.gallery.enrolment import enrolment_lock
from faceleads.gallery.runtime import GalleryRuntime
from faceleads.gallery.templates import blob_dim
from faceleads.storage.crypto import decrypt_embedding, encrypt_embedding
from faceleads.vision.compare import compare_crop, crop_landmarks
from faceleads.vision.imaging import encode_jpeg, encode_png, load_image
from faceleads.vision.types import Face, FloatArray, ImageArray


@dataclass(frozen=True)
class ProbeInfo:
    """A probe as the analyst sees it (no pixels, no template)."""

    id: int
    case_id: int
    evidence_id: int
    kind: str  # "photo" or "video_frame"
    evidence_sha256: str
    frame_index: int | None
    frame_time_s: float | None
    track_number: int | None
    edits: list[dict[str, Any]]
    edits_described: str
    face_source: str | None
    face_index: int | None
    faces_found: int | None
    face_box: list[float] | None
    face_landmarks: list[list[float]] | None  # eyes, nose, mouth corners (for the comparison overlay)
    quality: float | None
    quality_floor: float
    below_floor: bool
    quality_override: str | None
    searchable: bool
    model_version: str | None
    width: int  # of the evidence original (the edited image may differ after rotate or crop)
    height: int
    # Provenance of the evidence (not biometric): where it came from, who obtained it, when, on what legal basis.
    source: str = ""
    obtained_by: str = ""
    obtained_at: datetime | None = None
    legal_basis: str = ""
    received_by: str = ""
    received_at: datetime | None = None
    filename: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("obtained_at", "received_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@dataclass(frozen=True)
class FaceChoice:
    """A face found in the edited probe, for the analyst to pick."""

    index: int  # 1-based, most prominent first
    box: list[float]
    quality: float
    detector_score: float
    found_by: str = "detector"  # detection path (docs/detection.md)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VideoIntake:
    """What a video intake produced: the evidence row, the analysis summary and the probes made of best shots."""

    evidence_id: int
    sha256: str
    analysis: dict[str, object]
    probe_ids: list[int]
    probes_by_track: dict[int, list[int]]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------- helpers


def _override_text(session: Any, probe: Probe) -> str | None:
    if probe.quality_override_id is None:
        return None
    auth = session.get(Authorisation, probe.quality_override_id)
    if auth is None:
        return None
    return f"by {auth.by_username} at {as_utc(auth.at):%Y-%m-%d %H:%M:%S} UTC: {auth.reason}"


def probe_info(rt: GalleryRuntime, session: Any, probe: Probe) -> ProbeInfo:
    """The public view of a probe row."""
    floor = rt.settings.quality_floor
    q = probe.quality_overall
    below = q is not None and q < floor
    override = _override_text(session, probe)
    return ProbeInfo(
        id=probe.id,
        case_id=probe.case_id,
        evidence_id=probe.evidence_id,
        kind="video_frame" if probe.frame_address else "photo",
        evidence_sha256=probe.evidence.sha256,
        frame_index=probe.frame_index,
        frame_time_s=probe.frame_time_s,
        track_number=probe.track_number,
        edits=list(probe.edits or []),
        edits_described=edit_ops.describe(edit_ops.parse_edits(probe.edits or [])),
        face_source=probe.face_source,
        face_index=probe.face_index,
        faces_found=probe.faces_found,
        face_box=probe.face_box,
        face_landmarks=probe.face_landmarks,
        quality=q,
        quality_floor=floor,
        below_floor=below,
        quality_override=override,
        searchable=probe.template is not None and (not below or override is not None),
        model_version=probe.model_version,
        width=probe.evidence.width,
        height=probe.evidence.height,
        source=probe.evidence.source,
        obtained_by=probe.evidence.obtained_by,
        obtained_at=as_utc(probe.evidence.obtained_at),
        legal_basis=probe.evidence.legal_basis,
        received_by=probe.evidence.received_by,
        received_at=as_utc(probe.evidence.received_at),
        filename=probe.evidence.filename,
    )


def _read_source(source: Path | bytes, limit: int, what: str) -> tuple[bytes, str]:
    if isinstance(source, Path):
        if not source.is_file():
            raise ImageError(f"{what} {source} does not exist")
        size = source.stat().st_size
        if size > limit:
            raise ImageError(f"{what} {source.name} is {size} bytes, over the limit of {limit}")
        return source.read_bytes(), source.name
    data = bytes(source)
    if len(data) > limit:
        raise ImageError(f"{what} is {len(data)} bytes, over the limit of {limit}")
    return data, ""


def _intake_fields(source: str, obtained_by: str, obtained_at: datetime | None, legal_basis: str
                   ) -> tuple[str, str, datetime, str]:
    src = clean_text(source, "evidence source", 2000)
    by = clean_text(obtained_by, "obtained by", 200)
    basis = clean_text(legal_basis, "legal basis", 2000)
    if obtained_at is None:
        raise ValidationError("when the evidence was obtained is required")
    when = as_utc(obtained_at)
    if when > utcnow():
        raise ValidationError(f"evidence obtained-at time {when.isoformat()} is in the future")
    return src, by, when, basis


def original_pixels(rt: GalleryRuntime, case: Case, probe: Probe) -> ImageArray:
    """The probe's original pixels (the evidence photo, or the stored video frame), decrypted and decoded."""
    key_id = case.key_id
    case_key(rt, case)
    if probe.frame_address and probe.frame_sha256:
        data = rt.store.get(key_id, probe.frame_address, frame_context(probe.frame_sha256))
    else:
        ev = probe.evidence
        if ev.store_address is None:
            raise ImageError(f"evidence {ev.id} has no stored original (purged)")
        data = rt.store.get(key_id, ev.store_address, evidence_context(ev.sha256))
    return load_image(data, rt.settings).pixels


def edited_pixels(rt: GalleryRuntime, case: Case, probe: Probe) -> ImageArray:
    """The probe as searched: its edit list applied to the original."""
    return edit_ops.apply_edits(original_pixels(rt, case, probe), edit_ops.parse_edits(probe.edits or []))


def probe_template(rt: GalleryRuntime, case: Case, probe: Probe) -> FloatArray:
    """The decrypted template of a probe's chosen face."""
    if probe.template is None or probe.model_version is None:
        raise ValidationError(f"probe {probe.id} has no face chosen yet: pick a face or draw a box")
    key = case_key(rt, case)
    context = probe_template_context(case.key_id, probe.id, probe.edits_version, probe.model_version)
    return decrypt_embedding(key, probe.template, context, dim=blob_dim(probe.template))


def _store_face(rt: GalleryRuntime, case: Case, probe: Probe, face: Face, source: str, index: int | None,
                found: int | None) -> None:
    if face.embedding is None:
        raise NoFaceError("the face could not be embedded")
    key = case_key(rt, case)
    model_version = rt.model_version
    probe.face_source = source
    probe.face_index = index
    probe.faces_found = found
    probe.face_box = [round(float(v), 2) for v in face.box]
    probe.face_landmarks = [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks]
    probe.quality = {k: float(v) for k, v in face.quality.as_dict().items()}
    probe.quality_overall = float(face.quality.overall)
    probe.model_version = model_version
    vector = np.asarray(face.embedding, np.float32)
    probe.template = encrypt_embedding(
        key, vector, probe_template_context(case.key_id, probe.id, probe.edits_version, model_version), dim=vector.size
    )
    probe.quality_override_id = None  # an override covers one face at one quality, never a later choice


def _clear_face(probe: Probe) -> None:
    for name in ("face_source", "face_index", "faces_found", "face_box", "face_landmarks", "quality",
                 "quality_overall", "model_version", "template", "quality_override_id"):
        setattr(probe, name, None)


# --------------------------------------------------------------------------------------------- intake


def add_photo(
    rt: GalleryRuntime,
    actor: Actor,
    case_id: int,
    photo: Path | bytes,
    *,
    source: str,
    obtained_by: str,
    obtained_at: datetime | None,
    legal_basis: str,
    filename: str = "",
) -> ProbeInfo:
    """Take in an evidence photo: validate it through the safe intake, hash it, store it encrypted under the
    case key, and create its probe (no edits, no face chosen yet).
    """
    src, by, when, basis = _intake_fields(source, obtained_by, obtained_at, legal_basis)
    data, name = _read_source(photo, rt.settings.max_file_bytes, "evidence photo")
    # Refuses unreadable, oversize or corrupt images before storing (decoded reduced: only checked here).
    image = load_image(data, rt.settings, reduce_to=rt.settings.decode_reduce_pixels)
    # The shared store-writer lock keeps a concurrent orphan sweep from taking this blob before the commit.
    with enrolment_lock(rt.settings, exclusive=False), transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.SUBMIT_EVIDENCE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.SUBMIT_EVIDENCE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        require_open(case)
        case_key(rt, case)
        address = rt.store.put(case.key_id, data, evidence_context(image.sha256))
        ev = Evidence(
            case_id=case.id, kind="photo", filename=clean_text(filename or name, "file name", 300, required=False),
            sha256=image.sha256, format=image.format, size_bytes=image.size_bytes, width=image.width,
            height=image.height, store_address=address, source=src, obtained_by=by, obtained_at=when,
            legal_basis=basis, received_by=actor.username,
        )
        session.add(ev)
        session.flush()
        probe = Probe(case_id=case.id, evidence_id=ev.id, edits=[], created_by=actor.username)
        probe.evidence = ev
        session.add(probe)
        session.flush()
        audit.record(session, actor, "evidence_add", f"evidence:{ev.id}", audit.Outcome.OK,
                     case=case.occurrence_number,
                     details={"kind": "photo", "evidence_sha256": image.sha256, "probe_id": probe.id})
        return probe_info(rt, session, probe)


def add_video(
    rt: GalleryRuntime,
    actor: Actor,
    case_id: int,
    video: Path,
    *,
    source: str,
    obtained_by: str,
    obtained_at: datetime | None,
    legal_basis: str,
    every_s: float | None = None,
    max_frames: int | None = None,
    shots_per_track: int = 3,
    min_observations: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> VideoIntake:
    """Take in a recorded video: hash and store it encrypted, sample frames, detect and track faces, and make
    the best ``shots_per_track`` shots of each track into probes (frame index and time recorded, the tracked
    face pre-selected).
    """
    src, by, when, basis = _intake_fields(source, obtained_by, obtained_at, legal_basis)
    if not 1 <= shots_per_track <= 20:
        raise ValidationError(f"shots per track must be between 1 and 20, got {shots_per_track}")
    check_video_path(video, rt.settings.max_video_bytes)
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.SUBMIT_EVIDENCE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.SUBMIT_EVIDENCE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        require_open(case)
    analysis: VideoAnalysis = analyse_video(
        rt.face_engine, video,
        every_s=every_s or rt.settings.video_sample_seconds,
        max_frames=max_frames or rt.settings.video_max_frames,
        config=TrackerConfig(shots_per_track=shots_per_track),
        min_observations=min_observations,
        progress=progress,
    )
    data = video.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    probe_ids: list[int] = []
    by_track: dict[int, list[int]] = {}
    with enrolment_lock(rt.settings, exclusive=False), transaction(rt.session_factory) as session:
        case = get_case(session, case_id)
        case_key(rt, case)
        address = rt.store.put(case.key_id, data, evidence_context(sha))
        ev = Evidence(
            case_id=case.id, kind="video", filename=video.name[:300], sha256=sha,
            format=video.suffix.lower().lstrip(".") or "video", size_bytes=len(data),
            width=analysis.info.width, height=analysis.info.height, duration_s=analysis.info.duration_s,
            fps=analysis.info.fps, store_address=address, source=src, obtained_by=by, obtained_at=when,
            legal_basis=basis, received_by=actor.username,
        )
        session.add(ev)
        session.flush()
        for track in analysis.tracks:
            for shot in track.shots:
                png = encode_png(shot.frame)
                frame_sha = hashlib.sha256(png).hexdigest()
                probe = Probe(
                    case_id=case.id, evidence_id=ev.id, frame_index=shot.observation.frame_index,
                    frame_time_s=shot.observation.time_s, track_number=track.number, frame_sha256=frame_sha,
                    frame_address=rt.store.put(case.key_id, png, frame_context(frame_sha)), edits=[],
                    created_by=actor.username,
                )
                probe.evidence = ev
                session.add(probe)
                session.flush()
                _store_face(rt, case, probe, shot.observation.face, "tracked", None, None)
                probe_ids.append(probe.id)
                by_track.setdefault(track.number, []).append(probe.id)
        audit.record(session, actor, "evidence_add", f"evidence:{ev.id}", audit.Outcome.OK,
                     case=case.occurrence_number,
                     details={"kind": "video", "evidence_sha256": sha, "frames_sampled": analysis.frames_sampled,
                              "track_count": len(analysis.tracks), "probe_count": len(probe_ids)})
        return VideoIntake(ev.id, sha, analysis.summary(), probe_ids, by_track)


# --------------------------------------------------------------------------------------------- probe work


def show_probe(rt: GalleryRuntime, actor: Actor, probe_id: int) -> ProbeInfo:
    """A probe of the actor's agency (metadata only)."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"probe:{probe_id}", None)
        probe, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        return probe_info(rt, session, probe)


def list_probes(rt: GalleryRuntime, actor: Actor, case_id: int) -> list[ProbeInfo]:
    """The probes of a case."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", None)
        case = get_case(session, case_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"case:{case_id}", case.agency_id,
                  case.occurrence_number)
        rows = session.scalars(select(Probe).where(Probe.case_id == case_id).order_by(Probe.id))
        return [probe_info(rt, session, p) for p in rows]


def set_edits(
    rt: GalleryRuntime, actor: Actor, probe_id: int, edits: Sequence[dict[str, Any]] | str | None
) -> ProbeInfo:
    """Replace a probe's edit list (validated; applied once to check it fits the image). The change is logged
    with a new version; the chosen face and any quality override are cleared (pick the face again).
    """
    steps = edit_ops.parse_edits(edits)
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.EDIT_PROBE, f"probe:{probe_id}", None)
        probe, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.EDIT_PROBE, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        require_open(case)
        edit_ops.apply_edits(original_pixels(rt, case, probe), steps)  # e.g. a crop outside the image
        probe.edits = edit_ops.edits_to_json(steps)
        probe.edits_version += 1
        _clear_face(probe)
        session.add(ProbeEditEvent(probe_id=probe.id, version=probe.edits_version, edits=probe.edits,
                                   by_username=actor.username))
        session.flush()
        audit.record(session, actor, "probe_edit", f"probe:{probe.id}", audit.Outcome.OK,
                     case=case.occurrence_number,
                     details={"version": probe.edits_version, "steps": len(steps),
                              "operations": ",".join(s.op for s in steps)[:400]})
        return probe_info(rt, session, probe)


def edit_history(rt: GalleryRuntime, actor: Actor, probe_id: int) -> list[dict[str, Any]]:
    """Every version of a probe's edit list, oldest first."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"probe:{probe_id}", None)
        _, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.VIEW_CASE, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        rows = session.scalars(
            select(ProbeEditEvent).where(ProbeEditEvent.probe_id == probe_id).order_by(ProbeEditEvent.version)
        )
        return [{"version": r.version, "edits": r.edits, "by": r.by_username, "at": as_utc(r.at).isoformat()}
                for r in rows]


def detect_faces(rt: GalleryRuntime, actor: Actor, probe_id: int) -> list[FaceChoice]:
    """The faces found in the edited probe, most prominent first, with their quality (nothing is stored)."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.EDIT_PROBE, f"probe:{probe_id}", None)
        probe, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.EDIT_PROBE, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        pixels = edited_pixels(rt, case, probe)
    faces = rt.face_engine.detect(pixels)
    return [
        FaceChoice(
            i, [round(float(v), 2) for v in f.box], round(float(f.quality.overall), 4), round(f.score, 4), f.found_by
        )
        for i, f in enumerate(faces, start=1)
    ]


def pick_face(rt: GalleryRuntime, actor: Actor, probe_id: int, face: int = 1) -> ProbeInfo:
    """Choose face number ``face`` (1-based, most prominent first) of the edited probe and compute its template."""
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.EDIT_PROBE, f"probe:{probe_id}", None)
        probe, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.EDIT_PROBE, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        require_open(case)
        pixels = edited_pixels(rt, case, probe)
        faces = rt.face_engine.detect(pixels)
        if not faces:
            raise NoFaceError(f"no face found in probe {probe_id}: crop or enhance it, or draw a box around the face")
        if isinstance(face, bool) or not isinstance(face, int) or not 1 <= face <= len(faces):
            raise ValidationError(f"face must be between 1 and {len(faces)} (faces found in the probe), got {face!r}")
        chosen = faces[face - 1]
        rt.face_engine.embed_faces(pixels, [chosen])
        _store_face(rt, case, probe, chosen, "detected", face, len(faces))
        audit.record(session, actor, "probe_face", f"probe:{probe.id}", audit.Outcome.OK,
                     case=case.occurrence_number,
                     details={"source": "detected", "face_number": face, "face_count": len(faces),
                              "quality": round(float(chosen.quality.overall), 4)})
        return probe_info(rt, session, probe)


def draw_box(rt: GalleryRuntime, actor: Actor, probe_id: int, box: Sequence[float]) -> ProbeInfo:
    """The analyst drew a box (x1, y1, x2, y2 in edited-image pixels) around a face the detector missed; the
    engine finds the landmarks inside it and the template is computed from them.
    """
    values = [float(v) for v in box]
    if len(values) != 4 or not all(np.isfinite(values)) or values[2] <= values[0] or values[3] <= values[1]:
        raise ValidationError(f"a box is x1,y1,x2,y2 with x2 > x1 and y2 > y1, got {box!r}")
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.EDIT_PROBE, f"probe:{probe_id}", None)
        probe, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.EDIT_PROBE, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        require_open(case)
        pixels = edited_pixels(rt, case, probe)
        h, w = pixels.shape[:2]
        if values[0] < 0 or values[1] < 0 or values[2] > w or values[3] > h:
            raise ValidationError(f"box {values} leaves the {w}x{h} (edited) probe image")
        found = rt.face_engine.detect_in_box(pixels, values, embed=True)
        if found is None:
            raise NoFaceError("no face could be located inside the drawn box: draw it a little larger around the face")
        _store_face(rt, case, probe, found, "drawn", None, None)
        probe.face_box = [round(v, 2) for v in values]  # what the analyst drew is what the record shows
        audit.record(session, actor, "probe_face", f"probe:{probe.id}", audit.Outcome.OK,
                     case=case.occurrence_number,
                     details={"source": "drawn", "quality": round(float(found.quality.overall), 4)})
        return probe_info(rt, session, probe)


def override_quality(rt: GalleryRuntime, actor: Actor, probe_id: int, reason: str) -> ProbeInfo:
    """A supervisor allows a probe below the quality floor to be searched, recording who, when and why.

    The override covers the face as currently chosen: re-editing or re-picking clears it.
    """
    why = clean_text(reason, "override reason", 2000)
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.AUTHORISE_EXCEPTION, f"probe:{probe_id}", None)
        probe, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.AUTHORISE_EXCEPTION, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        require_open(case)
        if probe.quality_overall is None:
            raise ValidationError(f"probe {probe_id} has no face chosen: nothing to override yet")
        floor = rt.settings.quality_floor
        if probe.quality_overall >= floor:
            raise ValidationError(f"probe {probe_id} quality {probe.quality_overall:.3f} meets the floor {floor}")
        if same_person(actor, probe.created_by, None):
            raise PermissionDenied("a supervisor cannot override the quality floor for their own probe")
        auth = Authorisation(case_id=case.id, kind="quality_override", probe_id=probe.id,
                             by_username=actor.username, by_user_id=actor.user_id, reason=why,
                             details={"quality": probe.quality_overall, "floor": floor,
                                      "edits_version": probe.edits_version})
        session.add(auth)
        session.flush()
        probe.quality_override_id = auth.id
        audit.record(session, actor, "quality_override", f"probe:{probe.id}", audit.Outcome.OK,
                     case=case.occurrence_number,
                     details={"quality": round(probe.quality_overall, 4), "floor": floor})
        return probe_info(rt, session, probe)


def probe_image(rt: GalleryRuntime, actor: Actor, probe_id: int, *, edited: bool = True) -> bytes:
    """The probe image as PNG (edited, or the original); every view is audited."""
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.VIEW_PROBE_IMAGE, f"probe:{probe_id}", None)
        probe, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.VIEW_PROBE_IMAGE, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        pixels = edited_pixels(rt, case, probe) if edited else original_pixels(rt, case, probe)
        audit.record(session, actor, "view_probe_image", f"probe:{probe.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"edited": edited, "version": probe.edits_version})
        return encode_png(pixels)


def probe_thumbnail(rt: GalleryRuntime, actor: Actor, probe_id: int, *, size: int = 192) -> bytes:
    """A small JPEG of the probe as edited (at most ``size`` pixels a side), for the case page; audited like any
    probe image view."""
    if not 32 <= size <= 512:
        raise ValidationError("thumbnail size must be 32 to 512 pixels")
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.VIEW_PROBE_IMAGE, f"probe:{probe_id}", None)
        probe, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.VIEW_PROBE_IMAGE, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        pixels = edited_pixels(rt, case, probe)
        audit.record(session, actor, "view_probe_image", f"probe:{probe.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"edited": True, "view": "thumbnail",
                                                           "version": probe.edits_version})  # fmt: skip
    import cv2

    h, w = pixels.shape[:2]
    scale = min(1.0, size / max(h, w))
    if scale < 1.0:
        pixels = np.asarray(cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))),
                                       interpolation=cv2.INTER_AREA), dtype=np.uint8)  # fmt: skip
    return encode_jpeg(pixels, quality=82)


# --------------------------------------------------------------------------------------------- other reads

MAX_DETECT_FACES = 50


@dataclass(frozen=True)
class DetectedFaces:
    """Faces found in an uploaded image that is not kept: boxes, landmarks, detector score, quality and the detection
    path that found each face (``found_by``)."""

    sha256: str
    width: int
    height: int
    format: str
    faces: list[dict[str, Any]]


def detect_upload(rt: GalleryRuntime, actor: Actor, data: bytes) -> DetectedFaces:
    """Detect faces in an uploaded image (safe intake first; most prominent first, at most 50). Nothing is stored
    but the audit entry (the image's SHA-256 and the face count): face detection is biometric processing."""
    enforce(rt.session_factory, actor, Action.EDIT_PROBE, "upload:face-detection", actor.agency_id)
    # Decoded reduced when large; boxes and landmarks are given in the original picture's pixels.
    image = load_image(data, rt.settings, reduce_to=rt.settings.decode_reduce_pixels)
    faces = rt.face_engine.detect_loaded(image, max_faces=MAX_DETECT_FACES)
    found = [{"number": n, **{k: f.to_json()[k] for k in ("box", "landmarks", "score", "quality", "found_by")}}
             for n, f in enumerate(faces, start=1)]  # fmt: skip
    audit.record_now(rt.session_factory, actor, "face_detect", f"upload:{image.sha256[:16]}", audit.Outcome.OK,
                     details={"image_sha256": image.sha256, "face_count": len(found)})  # fmt: skip
    return DetectedFaces(image.sha256, image.width, image.height, image.format, found)


def aligned_face(rt: GalleryRuntime, actor: Actor, probe_id: int) -> tuple[bytes, list[list[float]]]:
    """The chosen face of a probe as an aligned comparison crop (JPEG, from the edited image) with its landmarks in
    crop coordinates; the view is audited like any probe image view."""
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.VIEW_PROBE_IMAGE, f"probe:{probe_id}", None)
        probe, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.VIEW_PROBE_IMAGE, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        if not probe.face_landmarks:
            raise NotFound(f"probe {probe_id} has no face chosen")
        crop = compare_crop(edited_pixels(rt, case, probe), probe.face_landmarks)
        audit.record(session, actor, "view_probe_image", f"probe:{probe.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"edited": True, "view": "aligned",
                                                           "version": probe.edits_version})  # fmt: skip
        return crop


def face_landmarks(rt: GalleryRuntime, actor: Actor, probe_id: int) -> list[list[float]] | None:
    """The chosen probe face's landmarks in comparison-crop coordinates (None before a face is chosen); audited."""
    with rt.session_factory() as session:
        authorise(rt.session_factory, actor, Action.VIEW_PROBE_IMAGE, f"probe:{probe_id}", None)
        probe, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.VIEW_PROBE_IMAGE, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        points = crop_landmarks(probe.face_landmarks) if probe.face_landmarks else None
        occurrence = case.occurrence_number
    audit.record_now(rt.session_factory, actor, "view_landmarks", f"probe:{probe_id}", audit.Outcome.OK,
                     case=occurrence, details={"found": points is not None})  # fmt: skip
    return points


def preview_edits(rt: GalleryRuntime, actor: Actor, probe_id: int, edits: Sequence[Mapping[str, Any]]) -> bytes:
    """The probe original with an (unsaved) edit list applied, as JPEG, for the live preview; the view is audited
    (nothing else is stored)."""
    parsed = edit_ops.parse_edits(list(edits))
    with transaction(rt.session_factory) as session:
        authorise(rt.session_factory, actor, Action.EDIT_PROBE, f"probe:{probe_id}", None)
        probe, case = get_probe(session, probe_id)
        authorise(rt.session_factory, actor, Action.EDIT_PROBE, f"probe:{probe_id}", case.agency_id,
                  case.occurrence_number)
        pixels = edit_ops.apply_edits(original_pixels(rt, case, probe), parsed)
        audit.record(session, actor, "view_probe_image", f"probe:{probe.id}", audit.Outcome.OK,
                     case=case.occurrence_number, details={"edited": True, "view": "preview",
                                                           "edit_count": len(parsed)})  # fmt: skip
        return encode_jpeg(pixels, quality=85)
