"""1:N search internals: a probe template against every template the searching agency may see, consolidated per
subject.

This module is internal to the domains: the only caller that records a search is
:func:`faceleads.casework.searching.run_search` (an open case, a request, its purpose's rules, adjudication of
every candidate), and an import-linter contract keeps ``web`` and ``cli`` from importing it. Measurement tools use
:func:`rank_subjects`, which records nothing.

Each subject appears at most once in the candidate list, at its best-matching photo, with the encounter that
photo came from and the ids of the subject's other photos. The subject's score is either its best single photo
(``ScoreFusion.BEST``) or the cosine similarity to the mean of its photos' templates
(``ScoreFusion.MEAN_TEMPLATE``); see docs/gallery.md for the measurement behind the default.

Every search is recorded with its case, offence, reason and purpose and its full result. The probe's SHA-256 is
recorded; the probe itself is never enrolled (casework keeps it as encrypted case evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from faceleads import identifiers
from faceleads.config import ScoreFusion
from faceleads.core import audit
from faceleads.core.actor import Actor
from faceleads.core.policy import Action, require
from faceleads.core.uow import transaction
from faceleads.db import Agency
from faceleads.errors import IntegrityError, ValidationError
from faceleads.gallery import lawful
from faceleads.gallery.access import record_candidate_accesses
from faceleads.gallery.models import (
    Encounter,
    FaceTemplate,
    Image,
    SearchCandidate,
    SearchRecord,
    Subject,
    SubjectStatus,
)
from faceleads.gallery.runtime import GalleryRuntime, template_context
from faceleads.gallery.visibility import DEFAULT_PURPOSE, visible_gallery_ids
from faceleads.identifiers import Kind
from faceleads.storage.crypto import decrypt_embedding

MIN_LENGTH, MAX_LENGTH = 2, 50


@dataclass
class Candidate:
    """One subject in a candidate list: an investigative lead, never an identification."""

    rank: int
    score: float
    subject_id: int
    subject_number: str
    agency: str
    gallery_id: int
    encounter_id: int
    booking_number: str
    booking_date: date
    image_id: int
    template_id: int
    other_image_ids: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = round(self.score, 4)
        data["booking_date"] = self.booking_date.isoformat()
        return data


@dataclass
class SearchResult:
    """A recorded search and its candidate list (best first)."""

    search_id: int
    case_number: str
    offence_code: str
    reason: str
    purpose: str
    probe_sha256: str
    face_index: int  # 1-based, in the engine's order (most prominent first)
    faces_found: int
    probe_quality: float | None
    model_version: str
    score_fusion: str
    gallery_ids: list[int]
    gallery_size: int
    k: int
    score_floor: float | None
    created_at: datetime
    candidates: list[Candidate]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["candidates"] = [c.to_json() for c in self.candidates]
        data["notice"] = "Candidates are investigative leads, not identifications; corroborate independently."
        return data


@dataclass(frozen=True)
class RankedSubject:
    """A subject's place in a ranking before the record metadata is attached."""

    subject_id: int
    template_id: int
    score: float


def check_length(k: int | None, default: int) -> int:
    """The candidate list length: ``default`` when None; refused outside 2..50."""
    value = default if k is None else k
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_LENGTH <= value <= MAX_LENGTH:
        raise ValidationError(f"candidate list length must be between {MIN_LENGTH} and {MAX_LENGTH}, got {value!r}")
    return value


def _destroyed_subjects(rt: GalleryRuntime, session: Session, subject_ids: list[int]) -> set[int]:
    """Subjects among ``subject_ids`` that were destroyed (status or key) since the index was built."""
    if not subject_ids:
        return set()
    rows = session.execute(select(Subject.id, Subject.status, Subject.key_id).where(Subject.id.in_(subject_ids))).all()
    # One keystore round trip: a destroyed key is gone from the keystore in every process at once. A key that is
    # missing (not destroyed) is an error: the candidate list would silently lack a subject.
    keys = rt.keystore.lookup({key_id for _, _, key_id in rows})
    if keys.missing:
        missing = sorted(sid for sid, _, key_id in rows if key_id in keys.missing)
        raise IntegrityError(
            f"the data keys of subject(s) {', '.join(map(str, missing[:10]))} are missing from the keystore (they "
            "were not destroyed): the search is refused rather than silently leaving them out (docs/encryption.md)"
        )
    gone = {sid for sid, status, key_id in rows if status != SubjectStatus.ACTIVE.value or key_id in keys.destroyed}
    return gone | (set(subject_ids) - {r[0] for r in rows})


def _best_per_subject(rt: GalleryRuntime, vector: np.ndarray, gallery_ids: list[int], k: int) -> list[RankedSubject]:
    index = rt.template_index()
    total = rt.partition_size(gallery_ids)
    if total == 0:
        return []
    # An engine with a result limit (Milvus: 16,384) caps how far down the template ranking can be looked.
    limit = min(total, index.max_k or total)
    kt = min(limit, k * 4 + 16)
    while True:
        ids, scores = index.search(vector, kt, gallery_ids)
        best: dict[int, RankedSubject] = {}
        subjects = rt.subjects_of(ids[0]).tolist()
        for tid, subject_id, score in zip(ids[0].tolist(), subjects, scores[0].tolist(), strict=True):
            if subject_id < 0 or subject_id in best:
                continue
            best[subject_id] = RankedSubject(subject_id, int(tid), float(score))
            if len(best) == k:
                break
        if len(best) >= k or kt >= limit:
            return list(best.values())
        # Many photos per subject crowded the top: look further down.
        kt = min(limit, kt * 4)


def _decrypt_subject_templates(
    rt: GalleryRuntime, session: Session, subject_ids: list[int]
) -> dict[int, list[tuple[int, np.ndarray]]]:
    rows = session.execute(
        select(
            FaceTemplate.id,
            FaceTemplate.subject_id,
            FaceTemplate.embedding,
            FaceTemplate.model_version,
            Subject.key_id,
            Image.sha256,
        )
        .join(Subject, Subject.id == FaceTemplate.subject_id)
        .join(Image, Image.id == FaceTemplate.image_id)
        .where(FaceTemplate.subject_id.in_(subject_ids), FaceTemplate.model_version == rt.model_version)
        .order_by(FaceTemplate.id)  # of equally close photos, the one shown is the oldest
    ).all()
    out: dict[int, list[tuple[int, np.ndarray]]] = {}
    keys = rt.keystore.lookup({r[4] for r in rows})
    if keys.missing:
        raise IntegrityError(
            "data keys of indexed subjects are missing from the keystore (they were not destroyed): the search is "
            "refused rather than silently leaving them out (docs/encryption.md)"
        )
    for tid, sid, blob, model_version, key_id, sha in rows:
        if tid not in rt.subject_template_ids(sid):
            continue
        key = keys.live.get(key_id)
        if key is None:
            continue  # destroyed since indexing: dropped by rank_subjects
        out.setdefault(sid, []).append(
            (tid, decrypt_embedding(key, blob, template_context(key_id, sha, model_version), dim=rt.embedding_dim))
        )
    return out


def _fused(rt: GalleryRuntime, vector: np.ndarray, gallery_ids: list[int], k: int) -> list[RankedSubject]:
    sidx = rt.subject_index()
    ids, scores = sidx.search(vector, k, gallery_ids)
    subjects = [int(s) for s in ids[0].tolist()]
    if not subjects:
        return []
    with rt.session_factory() as session:
        templates = _decrypt_subject_templates(rt, session, subjects)
    ranked = []
    for sid, score in zip(subjects, scores[0].tolist(), strict=True):
        options = templates.get(sid)
        if not options:
            continue
        # The photo shown for the subject is its single best-matching one.
        tid = max(options, key=lambda t: float(np.dot(t[1], vector)))[0]
        ranked.append(RankedSubject(sid, tid, float(score)))
    return ranked


def rank_subjects(
    rt: GalleryRuntime,
    vector: np.ndarray,
    gallery_ids: list[int],
    k: int,
    *,
    fusion: ScoreFusion | None = None,
    floor: float | None = None,
) -> list[RankedSubject]:
    """The top ``k`` subjects for a unit-norm probe embedding within ``gallery_ids`` (no authorisation, no
    recording: callers are :func:`search_embedding` and the measurement tools).

    Subjects destroyed, and templates whose booking stopped being lawful (docs/gallery.md, "Lawful gallery"), since
    the index was last synchronised are dropped from the index on the way.
    """
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    method = fusion or rt.fusion
    while True:
        ranked = (_fused if method is ScoreFusion.MEAN_TEMPLATE else _best_per_subject)(rt, vector, gallery_ids, k)
        with rt.session_factory() as session:
            gone = _destroyed_subjects(rt, session, [r.subject_id for r in ranked])
            # A record whose legal authority was withdrawn since the index was synchronised never reaches a list.
            unlawful = lawful.unlawful_template_ids(session, [r.template_id for r in ranked])
        if not gone and not unlawful:
            break
        for sid in gone:
            rt.remove_subject(sid)
        rt.remove_templates(unlawful)
    ranked.sort(key=lambda r: (-r.score, r.subject_id))
    if floor is not None:
        ranked = [r for r in ranked if r.score >= floor]
    return ranked


def _check_request(
    rt: GalleryRuntime,
    actor: Actor,
    case: str,
    offence: str,
    reason: str,
    purpose: str,
    top: int | None,
    floor: float | None,
) -> tuple[int, str, str, str, str]:
    """Authorise and validate a search's justification and parameters.

    Returns (candidate list length, case, offence, reason, purpose) in their normal forms
    (:mod:`faceleads.identifiers`), which is what the search is recorded with.
    """
    require(actor, Action.SEARCH)
    fields = {"case": case, "offence": offence, "reason": reason, "purpose": purpose}
    for name, value in fields.items():
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"a search needs a {name} (--{name})")
    case = identifiers.normalise(Kind.OCCURRENCE, case)
    offence = identifiers.normalise(Kind.OFFENCE, offence)
    purpose = identifiers.normalise(Kind.PURPOSE, purpose)
    reason = identifiers.free_text(reason.strip(), "reason")
    k = check_length(top, rt.settings.candidate_list_length)
    if floor is not None and not -1.0 <= floor <= 1.0:
        raise ValidationError(f"score floor must be between -1 and 1, got {floor}")
    return k, case, offence, reason, purpose


def search_embedding(
    rt: GalleryRuntime,
    actor: Actor,
    vector: np.ndarray,
    *,
    probe_sha256: str,
    face_index: int,
    faces_found: int,
    probe_quality: float | None,
    case: str,
    offence: str,
    reason: str,
    purpose: str = DEFAULT_PURPOSE,
    top: int | None = None,
    floor: float | None = None,
    at: datetime | date | None = None,
    gallery_scope: Sequence[int] | None = None,
    regime: str = "investigative",
) -> SearchResult:
    """Search an already computed probe template (an edited probe, a drawn box, several fused images) and record
    the search with its result. ``vector``: unit-norm embedding of the current model.

    ``gallery_scope`` (an authorisation's galleries) narrows the galleries the agency may search for the purpose;
    ``regime`` (the legal regime of the request) is recorded with the search for statistics.
    """
    k, case, offence, reason, purpose = _check_request(rt, actor, case, offence, reason, purpose, top, floor)
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    if vector.shape != (rt.embedding_dim,) or not np.all(np.isfinite(vector)):
        raise ValidationError(f"a probe template must be {rt.embedding_dim} finite numbers")
    sha256, quality = probe_sha256, probe_quality
    with rt.session_factory() as session:
        gallery_ids = visible_gallery_ids(session, actor.agency_id, purpose, at)
    if gallery_scope is not None:
        allowed_ids = set(gallery_scope)
        gallery_ids = [g for g in gallery_ids if g in allowed_ids]
    ranked = rank_subjects(rt, vector, gallery_ids, k, floor=floor) if gallery_ids else []
    gallery_size = rt.partition_size(gallery_ids) if gallery_ids else 0
    with transaction(rt.session_factory) as session:
        record = SearchRecord(
            agency_id=actor.agency_id,
            username=actor.username,
            user_id=actor.user_id,
            case_number=case,
            offence_code=offence,
            reason=reason,
            purpose=purpose,
            probe_sha256=sha256,
            face_index=face_index,
            probe_quality=quality,
            model_version=rt.model_version,
            score_fusion=rt.fusion.value,
            gallery_ids=gallery_ids,
            gallery_size=gallery_size,
            k=k,
            score_floor=floor,
        )
        session.add(record)
        session.flush()
        candidates = _describe(session, ranked)
        for c in candidates:
            session.add(
                SearchCandidate(
                    search_id=record.id,
                    rank=c.rank,
                    subject_id=c.subject_id,
                    encounter_id=c.encounter_id,
                    image_id=c.image_id,
                    template_id=c.template_id,
                    score=c.score,
                )
            )
        audit.record(
            session,
            actor,
            audit.AuditAction.SEARCH,
            f"search:{record.id}",
            audit.Outcome.OK,
            case=record.case_number,
            purpose=record.purpose,
            details={
                "offence": record.offence_code,
                "regime": regime,
                "candidate_count": len(candidates),
                "gallery_count": gallery_size,
                "k": k,
            },
        )
        record_candidate_accesses(session, actor, candidates, record.id, record.case_number, record.purpose)
        session.flush()
        return SearchResult(
            search_id=record.id,
            case_number=record.case_number,
            offence_code=record.offence_code,
            reason=record.reason,
            purpose=record.purpose,
            probe_sha256=sha256,
            face_index=face_index,
            faces_found=faces_found,
            probe_quality=quality,
            model_version=record.model_version,
            score_fusion=record.score_fusion,
            gallery_ids=gallery_ids,
            gallery_size=gallery_size,
            k=k,
            score_floor=floor,
            created_at=record.created_at,
            candidates=candidates,
        )


def _describe(session: Session, ranked: list[RankedSubject]) -> list[Candidate]:
    """Attach subject, encounter and photo details to a ranking."""
    if not ranked:
        return []
    tids = [r.template_id for r in ranked]
    sids = [r.subject_id for r in ranked]
    rows = session.execute(
        select(
            FaceTemplate.id,
            Image.id,
            Image.gallery_id,
            Encounter.id,
            Encounter.booking_number,
            Encounter.booking_date,
        )
        .join(Image, Image.id == FaceTemplate.image_id)
        .join(Encounter, Encounter.id == Image.encounter_id)
        .where(FaceTemplate.id.in_(tids))
    ).all()
    by_template = {r[0]: r for r in rows}
    subjects = {
        s.id: (s.subject_number, code)
        for s, code in session.execute(
            select(Subject, Agency.code).join(Agency, Agency.id == Subject.agency_id).where(Subject.id.in_(sids))
        ).all()
    }
    photos: dict[int, list[int]] = {}
    for sid, iid in session.execute(
        select(Image.subject_id, Image.id).where(Image.subject_id.in_(sids)).order_by(Image.id)
    ).all():
        photos.setdefault(sid, []).append(iid)
    out: list[Candidate] = []
    for r in ranked:
        row = by_template.get(r.template_id)
        if row is None or r.subject_id not in subjects:
            continue  # deleted between ranking and description
        _, image_id, gallery_id, encounter_id, booking, booking_date = row
        number, code = subjects[r.subject_id]
        out.append(
            Candidate(
                rank=len(out) + 1,
                score=r.score,
                subject_id=r.subject_id,
                subject_number=number,
                agency=code,
                gallery_id=gallery_id,
                encounter_id=encounter_id,
                booking_number=booking,
                booking_date=booking_date,
                image_id=image_id,
                template_id=r.template_id,
                other_image_ids=[i for i in photos.get(r.subject_id, []) if i != image_id],
            )
        )
    return out


__all__ = [
    "Candidate",
    "RankedSubject",
    "SearchResult",
    "check_length",
    "rank_subjects",
    "search_embedding",
]
